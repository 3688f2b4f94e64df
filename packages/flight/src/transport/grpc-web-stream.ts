// gRPC-Web (grpc/grpc doc/PROTOCOL-WEB.md): gRPC's framing in an ordinary HTTP/1.1 or HTTP/2
// body, so that a browser's fetch() can make the call. Requests and response messages are
// framed as in gRPC (5-byte prefix); the status goes in a last frame with flag 0x80 whose
// payload is the trailers as HTTP/1 header lines, because browsers cannot read HTTP trailers.
import { FlightError, StatusCode, invalidArgument } from "@blackice/flight-core";
import { CallInput, callInputLimits } from "./call-input";
import { metadataFromRawHeaders, metadataToHeaders, parseGrpcTimeout, percentEncode } from "./grpc-metadata";
import type { ByteBudget } from "./byte-budget";
import type { HttpExchange } from "./http-exchange";
import { responseWrittenHook, type TransportCall, type TransportLimits, type TransportMethod } from "./transport";

/** What serving one gRPC-Web call needs from the transport around it. */
export interface GrpcWebContext {
  readonly methods: ReadonlyMap<string, TransportMethod>;
  readonly limits: TransportLimits;
  readonly inFlight: ByteBudget;
  readonly preAuth: ByteBudget;
  readonly readAheadBytes: number;
  readonly shutdownSignal: AbortSignal;
  onInternalError(err: unknown, path: string): void;
  observe(path: string, code: number, durationMs: number): void;
}

const GRPC_WEB = /^application\/grpc-web(-text)?(?:\+proto)?(?:;.*)?$/;
/** Response bytes queued before the writer waits for the socket. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;

/** Whether a request's content-type is gRPC-Web (binary or text). */
export function isGrpcWeb(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.startsWith("application/grpc-web");
}

/** The trailer frame: flag 0x80, length, `name: value\r\n` lines. */
function trailerFrame(trailers: Record<string, string>): Uint8Array {
  let text = "";
  for (const [k, v] of Object.entries(trailers)) text += `${k}: ${v}\r\n`;
  const payload = Buffer.from(text, "latin1");
  const frame = Buffer.allocUnsafe(5 + payload.byteLength);
  frame[0] = 0x80;
  frame.writeUInt32BE(payload.byteLength, 1);
  payload.copy(frame, 5);
  return frame;
}

/**
 * Decodes base64 request text across chunk boundaries (grpc-web-text), four characters at a
 * time; a padded group ends one base64 segment and the next may follow.
 */
class Base64Decoder {
  private rest = "";
  push(chunk: Buffer): Buffer {
    const text = this.rest + chunk.toString("latin1").replace(/\s+/g, "");
    const whole = text.length - (text.length % 4);
    this.rest = text.slice(whole);
    if (!/^[A-Za-z0-9+/=]*$/.test(text)) throw invalidArgument("grpc-web-text body is not base64");
    return Buffer.from(text.slice(0, whole), "base64");
  }
  get atBoundary(): boolean {
    return this.rest.length === 0;
  }
}

/**
 * Serves one gRPC-Web call: unary and server-streaming methods only (browsers cannot stream a
 * request body). The request goes through {@link CallInput}, so its declared length is checked
 * against the method's limit and the server's budgets before it is buffered, exactly as over
 * gRPC; the method's handler and encoder are the ones native gRPC uses. The response is
 * always HTTP 200 with the status in the trailer frame.
 */
export function serveGrpcWeb(ex: HttpExchange, ctx: GrpcWebContext): void {
  const started = performance.now();
  const path = ex.url.split("?")[0]!;
  const contentType = String(ex.headers["content-type"] ?? "");
  const m = GRPC_WEB.exec(contentType);
  if (ex.method !== "POST" || !m) {
    ex.respond(ex.method !== "POST" ? 405 : 415, { allow: "POST", "content-type": "text/plain", "content-length": "0" });
    ex.end();
    ex.body.resume();
    return;
  }
  const text = m[1] !== undefined;
  const responseType = text ? "application/grpc-web-text+proto" : "application/grpc-web+proto";
  const method = ctx.methods.get(path);
  const controller = new AbortController();
  const responseHeaders = new Map<string, string>();
  let finished = false;
  let headersSent = false;
  const timeoutMs = parseGrpcTimeout(ex.headers["grpc-timeout"] as string | undefined);
  const deadline = timeoutMs === undefined || Number.isNaN(timeoutMs) ? undefined : Date.now() + timeoutMs;
  let deadlineTimer: NodeJS.Timeout | undefined;
  const onShutdown = (): void => finish(new FlightError(StatusCode.UNAVAILABLE, "server shutting down"));

  const input =
    method && !method.clientStreaming
      ? new CallInput({
          ...callInputLimits(method, ctx),
          clientStreaming: false,
          pause: () => ex.body.pause(),
          resume: () => ex.body.resume(),
          fail: (err) => finish(err),
          settle: () => Promise.resolve(),
          wasReset: () => ex.closed,
        })
      : undefined;

  const encodeOut = (pieces: Uint8Array[]): Uint8Array[] => {
    if (!text) return pieces;
    // grpc-web-text: each frame base64-encoded on its own (padded groups may follow each
    // other). The copy is the price of the text mode; binary mode writes the pieces as they are.
    return [Buffer.from(Buffer.concat(pieces).toString("base64"), "latin1")];
  };

  function sendHeaders(): void {
    if (headersSent) return;
    headersSent = true;
    ex.respond(200, { "content-type": responseType, "grpc-accept-encoding": "identity", ...metadataToHeaders(responseHeaders) });
  }

  function finish(err?: FlightError): void {
    if (finished) return;
    finished = true;
    const code = err?.code ?? StatusCode.OK;
    if (!controller.signal.aborted) controller.abort(err ?? new FlightError(StatusCode.CANCELLED, "call finished"));
    if (deadlineTimer) clearTimeout(deadlineTimer);
    ctx.shutdownSignal.removeEventListener("abort", onShutdown);
    input?.close();
    ctx.observe(path, code, performance.now() - started);
    if (ex.closed) return;
    const trailers: Record<string, string> = { "grpc-status": String(code) };
    if (err) {
      // Same spelling as native gRPC: percent-encoded UTF-8.
      trailers["grpc-message"] = percentEncode(err.message);
      Object.assign(trailers, metadataToHeaders(err.metadata));
    }
    sendHeaders();
    for (const p of encodeOut([trailerFrame(trailers)])) ex.write(p);
    ex.end();
    // Whatever the client still sends is read and dropped.
    ex.body.resume();
  }

  ex.onClose(() => {
    if (finished) return;
    finished = true;
    const err = new FlightError(StatusCode.CANCELLED, "call cancelled by the client");
    if (!controller.signal.aborted) controller.abort(err);
    if (deadlineTimer) clearTimeout(deadlineTimer);
    ctx.shutdownSignal.removeEventListener("abort", onShutdown);
    input?.close();
    ctx.observe(path, err.code, performance.now() - started);
  });

  if (!method) return finish(new FlightError(StatusCode.UNIMPLEMENTED, `unknown method ${path}`));
  if (!input) return finish(new FlightError(StatusCode.UNIMPLEMENTED, `${path} streams requests, which gRPC-Web cannot carry; use native gRPC`));
  const encoding = ex.headers["grpc-encoding"];
  if (encoding !== undefined && encoding !== "identity") return finish(new FlightError(StatusCode.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported; this server accepts identity`));
  if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) return finish(invalidArgument(`malformed grpc-timeout ${JSON.stringify(ex.headers["grpc-timeout"])}`));
  if (timeoutMs !== undefined) deadlineTimer = setTimeout(() => finish(new FlightError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")), Math.min(timeoutMs, 2 ** 31 - 1));
  if (ctx.shutdownSignal.aborted) return onShutdown();
  ctx.shutdownSignal.addEventListener("abort", onShutdown, { once: true });

  const b64 = text ? new Base64Decoder() : undefined;
  ex.body.on("data", (chunk: Buffer) => {
    if (!b64) return input.push(chunk);
    let bytes: Buffer;
    try {
      bytes = b64.push(chunk);
    } catch (err) {
      return finish(err as FlightError);
    }
    if (bytes.byteLength > 0) input.push(bytes);
  });
  ex.body.once("end", () => (b64 && !b64.atBoundary ? finish(invalidArgument("grpc-web-text body ends inside a base64 group")) : input.end()));
  ex.body.resume();

  (async () => {
    const first = await input.next();
    if (!first) throw invalidArgument("a unary request must be exactly one message; none was sent");
    let request: unknown;
    try {
      request = method.decode(first.bytes);
    } catch (err) {
      throw err instanceof FlightError ? err : invalidArgument(`malformed request message: ${(err as Error).message ?? String(err)}`);
    }
    const rawRequest = first.bytes instanceof Uint8Array ? first.bytes : first.bytes.toUint8Array();
    const call: TransportCall = {
      path,
      headers: metadataFromRawHeaders(ex.rawHeaders as string[]),
      responseHeaders,
      signal: controller.signal,
      peer: ex.peer,
      deadline,
      peerCertificate: ex.peerCertificate,
      rawRequest,
      request,
    };
    const response = await method.handle(call);
    if (finished) return;
    if (!method.serverStreaming) {
      sendHeaders();
      for (const p of encodeOut(method.encode(response))) ex.write(p);
      return;
    }
    const iterator = (response as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    let hook = responseWrittenHook(response);
    try {
      for (;;) {
        if (finished) return;
        const next = await iterator.next();
        if (next.done || finished) break;
        sendHeaders();
        const value = next.value;
        const pieces = encodeOut(method.encode(value));
        ex.cork();
        for (let i = 0; i < pieces.length; i++) {
          const last = i === pieces.length - 1 && hook !== undefined;
          ex.write(pieces[i]!, last ? () => { if (hook?.(value) === false) hook = undefined; } : undefined);
        }
        ex.uncork();
        if (ex.writableLength >= WRITE_HIGH_WATER) await ex.drained();
      }
    } finally {
      if (finished) await iterator.return?.();
    }
  })().then(
    () => finish(),
    (err) => {
      const fe = err instanceof FlightError ? err : FlightError.from(err);
      if (!(err instanceof FlightError) && fe.code === StatusCode.INTERNAL) ctx.onInternalError(err, path);
      finish(fe);
    },
  );
}
