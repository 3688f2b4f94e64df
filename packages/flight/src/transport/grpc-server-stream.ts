import * as http2 from "node:http2";
import { FlightError, StatusCode, invalidArgument, type PeerCertificateInfo } from "@blackice/flight-core";
import { CallInput, callInputLimits } from "./call-input";
import { metadataFromRawHeaders, metadataToHeaders, parseGrpcTimeout, percentEncode } from "./grpc-metadata";
import type { ByteBudget } from "./byte-budget";
import { responseWrittenHook, type TransportCall, type TransportLimits, type TransportMethod } from "./transport";

/** What serving one stream needs from the transport around it. */
export interface StreamContext {
  readonly methods: ReadonlyMap<string, TransportMethod>;
  readonly limits: TransportLimits;
  readonly inFlight: ByteBudget;
  readonly preAuth: ByteBudget;
  /** Bytes of complete messages read ahead of a handler before its stream is paused. */
  readonly readAheadBytes: number;
  /** Aborted when the grace of a shutdown is over: open calls end with UNAVAILABLE. */
  readonly shutdownSignal: AbortSignal;
  readonly peer: string;
  readonly peerCertificate: PeerCertificateInfo | undefined;
  /** A PING round trip on the stream's connection. */
  settle(): Promise<void>;
  /** The transport wrote response data (resets ping strikes). */
  onDataSent(): void;
  /** Errors that are not a FlightError (bugs); the caller gets INTERNAL with a generic message. */
  onInternalError(err: unknown, path: string): void;
  /** Every finished call, with its status code. */
  observe(path: string, code: number, durationMs: number): void;
}

/** Response bytes buffered on a stream before the writer waits for the socket. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;
/** Small responses are coalesced into writes of about this size (ListFlights over many flights). */
const COALESCE_BYTES = 64 * 1024;

const GRPC_CONTENT_TYPE = /^application\/grpc(?:$|[+;])/;
/**
 * A reset this close to the call's deadline counts as the deadline: the client's clock started
 * before the request reached the server, so its timer fires first.
 */
const DEADLINE_SLACK_MS = 50;

/**
 * The abort reason of every call that ended normally: built once, because an Error captures a
 * stack trace and a fresh one per call was the largest JavaScript cost of a small call.
 * Frozen so that no listener can change it for the others.
 */
const CALL_FINISHED: FlightError = Object.freeze(Object.assign(new FlightError(StatusCode.CANCELLED, "call finished"), { metadata: Object.freeze({}) }));

/** A FlightError for anything thrown; unexpected errors are reported and hidden. */
function asFlightError(err: unknown, report: (err: unknown) => void): FlightError {
  if (err instanceof FlightError) return err;
  const fe = FlightError.from(err);
  if (fe.code === StatusCode.INTERNAL) report(err);
  return fe;
}

/**
 * Serves one HTTP/2 stream as a gRPC call: checks the request headers, reads request
 * messages through {@link CallInput}, calls the method's handler, writes the responses with
 * backpressure and ends with the status in trailers (or a trailers-only response).
 */
export function serveGrpcStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[], ctx: StreamContext): void {
  const started = performance.now();
  const path = String(headers[":path"] ?? "");
  stream.on("error", () => undefined); // resets and socket errors end the call below

  if (headers[":method"] !== "POST") {
    stream.respond({ ":status": 405, allow: "POST" }, { endStream: true });
    return;
  }
  const contentType = String(headers["content-type"] ?? "");
  if (!GRPC_CONTENT_TYPE.test(contentType)) {
    // HTTP 415, so that a non-gRPC client does not take an error for a success.
    stream.respond({ ":status": 415, "grpc-status": String(StatusCode.INTERNAL), "grpc-message": percentEncode(`content-type ${contentType || "(none)"} is not application/grpc`) }, { endStream: true });
    return;
  }

  const responseHeaders = new Map<string, string>();
  let headersSent = false;
  let finished = false;
  let trailers: Record<string, string> = {};
  const controller = new AbortController();

  const method = ctx.methods.get(path);
  const encoding = headers["grpc-encoding"];
  const timeoutMs = parseGrpcTimeout(headers["grpc-timeout"] as string | undefined);
  const deadline = timeoutMs === undefined || Number.isNaN(timeoutMs) ? undefined : Date.now() + timeoutMs;

  const input = method
    ? new CallInput({
        ...callInputLimits(method, ctx),
        clientStreaming: method.clientStreaming,
        pause: () => stream.pause(),
        resume: () => stream.resume(),
        fail: (err) => finish(err),
        settle: () => ctx.settle(),
        wasReset: () => controller.signal.aborted || stream.aborted || stream.destroyed,
      })
    : undefined;

  let deadlineTimer: NodeJS.Timeout | undefined;
  const onShutdown = (): void => finish(new FlightError(StatusCode.UNAVAILABLE, "server shutting down"));

  function release(): void {
    if (deadlineTimer) clearTimeout(deadlineTimer);
    ctx.shutdownSignal.removeEventListener("abort", onShutdown);
    input?.close();
  }

  /** Ends the call with `err` (or OK). The first end wins; later ones are ignored. */
  function finish(err?: FlightError): void {
    if (finished) return;
    finished = true;
    const code = err?.code ?? StatusCode.OK;
    if (!controller.signal.aborted) controller.abort(err ?? CALL_FINISHED);
    release();
    ctx.observe(path, code, performance.now() - started);
    if (stream.destroyed || stream.closed) return;
    trailers = { "grpc-status": String(code) };
    if (err) {
      trailers["grpc-message"] = percentEncode(err.message);
      Object.assign(trailers, metadataToHeaders(err.metadata));
    }
    if (!headersSent) {
      headersSent = true;
      // Trailers-only: the status rides on the only HEADERS frame.
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-accept-encoding": "identity", ...metadataToHeaders(responseHeaders), ...trailers },
        { endStream: true },
      );
      dropRestOfRequest();
    } else {
      // The trailers follow the last response message ("wantTrailers", see sendHeaders).
      stream.end();
    }
  }

  /**
   * After the status has gone out: the client may still be sending (the call failed
   * mid-stream, or it has not half-closed yet): read and drop the rest, and reset a client
   * that does not stop within a second. Only once the status is sent: a reset before it
   * would throw away response messages and trailers still queued for a slow reader.
   */
  function dropRestOfRequest(): void {
    if (stream.readableEnded || stream.destroyed || stream.closed) return;
    stream.resume();
    const timer = setTimeout(() => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    }, 1000);
    timer.unref();
    stream.once("close", () => clearTimeout(timer));
  }

  function sendHeaders(): void {
    if (headersSent) return;
    headersSent = true;
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-accept-encoding": "identity", ...metadataToHeaders(responseHeaders) },
      { waitForTrailers: true },
    );
    stream.once("wantTrailers", () => {
      stream.sendTrailers(trailers);
      dropRestOfRequest();
    });
  }

  // The client went away: cancel the call's work. A client resets at its deadline, often a
  // moment before the server's own timer fires: that call ended by its deadline.
  stream.once("close", () => {
    if (!finished) {
      const err =
        deadline !== undefined && Date.now() >= deadline - DEADLINE_SLACK_MS
          ? new FlightError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
          : new FlightError(StatusCode.CANCELLED, "call cancelled by the client");
      finished = true;
      if (!controller.signal.aborted) controller.abort(err);
      release();
      ctx.observe(path, err.code, performance.now() - started);
    }
  });

  if (!method) {
    finish(new FlightError(StatusCode.UNIMPLEMENTED, `unknown method ${path}`));
    return;
  }
  if (encoding !== undefined && encoding !== "identity") {
    finish(new FlightError(StatusCode.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported; this server accepts identity`));
    return;
  }
  if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) {
    finish(invalidArgument(`malformed grpc-timeout ${JSON.stringify(headers["grpc-timeout"])}`));
    return;
  }
  if (timeoutMs !== undefined) {
    deadlineTimer = setTimeout(() => finish(new FlightError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")), Math.min(timeoutMs, 2 ** 31 - 1));
  }
  if (ctx.shutdownSignal.aborted) {
    onShutdown();
    return;
  }
  ctx.shutdownSignal.addEventListener("abort", onShutdown, { once: true });

  stream.on("data", (chunk: Buffer) => input!.push(chunk));
  stream.once("end", () => input!.end());

  const metadata = metadataFromRawHeaders(rawHeaders);
  const base = {
    path,
    headers: metadata,
    responseHeaders,
    signal: controller.signal,
    peer: ctx.peer,
    deadline,
    peerCertificate: ctx.peerCertificate,
  };

  const decode = (bytes: Parameters<TransportMethod["decode"]>[0]): unknown => {
    try {
      return method.decode(bytes);
    } catch (err) {
      throw err instanceof FlightError ? err : invalidArgument(`malformed request message: ${(err as Error).message ?? String(err)}`);
    }
  };

  async function* requests(): AsyncGenerator<unknown> {
    for (;;) {
      const m = await input!.next();
      if (!m) return;
      yield decode(m.bytes);
    }
  }

  let corked = false;
  let corkedBytes = 0;
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    corkedBytes = 0;
    stream.uncork();
  };
  /** Writes one message's pieces; `written` runs once they all reached the socket (not on failure). */
  const write = (pieces: Uint8Array[], written?: () => void): void => {
    if (!corked) {
      corked = true;
      stream.cork();
      setImmediate(uncork);
    }
    let size = 0;
    const last = pieces.length - 1;
    for (let i = 0; i <= last; i++) {
      const p = pieces[i]!;
      size += p.byteLength;
      // A stream's write callbacks run in order, so the last piece's covers the whole message.
      if (i === last && written !== undefined) stream.write(p, (err) => err ? undefined : written());
      else stream.write(p);
    }
    corkedBytes += size;
    ctx.onDataSent();
    if (corkedBytes >= COALESCE_BYTES) uncork();
  };
  const waitForSocket = async (): Promise<void> => {
    if (stream.writableLength < WRITE_HIGH_WATER) return;
    uncork();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off("drain", done);
        stream.off("close", done);
        controller.signal.removeEventListener("abort", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
      controller.signal.addEventListener("abort", done);
    });
  };

  (async () => {
    let request: unknown;
    let rawRequest: Uint8Array | undefined;
    if (method.clientStreaming) {
      request = requests();
    } else {
      const m = await input!.next();
      if (!m) throw invalidArgument("a unary request must be exactly one message; none was sent");
      const bytes = m.bytes;
      request = decode(bytes);
      rawRequest = bytes instanceof Uint8Array ? bytes : bytes.toUint8Array();
    }
    const call: TransportCall = { ...base, rawRequest, request };
    const response = await method.handle(call);
    if (finished) return;
    if (!method.serverStreaming) {
      sendHeaders();
      write(method.encode(response));
      uncork();
      return;
    }
    const iterator = (response as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    let hook = responseWrittenHook(response);
    const report = (value: unknown): void => {
      if (hook?.(value) === false) hook = undefined;
    };
    try {
      for (;;) {
        if (finished) return;
        const next = await iterator.next();
        if (next.done || finished) break;
        sendHeaders();
        const value = next.value;
        write(method.encode(value), hook === undefined ? undefined : () => report(value));
        await waitForSocket();
      }
    } finally {
      if (finished) await iterator.return?.();
    }
    uncork();
  })()
    .then(
      () => finish(),
      (err) => finish(asFlightError(err, (e) => ctx.onInternalError(e, path))),
    );
}
