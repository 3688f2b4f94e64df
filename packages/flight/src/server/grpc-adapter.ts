import * as grpc from "@grpc/grpc-js";
import { once } from "node:events";
import {
  CallContext,
  FlightError,
  StatusCode,
  type CallHeaders,
  type FlightCall,
  type FlightHandler,
  type FlightMethod,
} from "@blackice/flight-core";
import { flightServiceDefinition, RAW_REQUEST } from "../codec/service-definition";
import { coalesceFramed, installPreframedResponses } from "./preframed-responses";

/** Observes every finished call (for `stats`, metrics). */
export type CallObserver = (method: FlightMethod, code: number, durationMs: number) => void;

/** What the adapter needs from the server around it. */
export interface AdapterOptions {
  handler: FlightHandler;
  observe: CallObserver;
  /** Aborted when the server shuts down: every call's signal follows it. */
  shutdownSignal: AbortSignal;
  /**
   * Resolves once everything the peer sent before now has been processed (an HTTP/2 PING
   * round trip). Used before a client stream counts as complete; see readAll.
   */
  settlePeer?: (peer: string) => Promise<unknown>;
  /** Called for errors that are not a FlightError (bugs, transport errors); never with secrets. */
  onInternalError?: (err: unknown, method: FlightMethod) => void;
}

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

function headersOf(md: grpc.Metadata): CallHeaders {
  const out = new Map<string, Array<string | Uint8Array>>();
  for (const k of Object.keys(md.getMap())) out.set(k.toLowerCase(), md.get(k) as Array<string | Uint8Array>);
  return out;
}

function toServiceError(err: FlightError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(err.metadata)) metadata.set(k, v);
  return { code: err.code as unknown as grpc.status, details: err.message, metadata };
}

/**
 * Builds the per-call information every middleware sees, and ties the call's signal to
 * client cancellation, the deadline and server shutdown.
 */
function callInfo(call: AnyCall, method: FlightMethod, shutdown: AbortSignal) {
  const controller = new AbortController();
  const abort = (reason: string): void => {
    if (!controller.signal.aborted) controller.abort(new FlightError(StatusCode.CANCELLED, reason));
  };
  // grpc-js also emits "cancelled" when a finished call's stream closes: unsubscribe on
  // release so a completed call does not build an error and abort its signal afterwards.
  const onCancelled = (): void => abort("call cancelled by the client");
  (call as unknown as NodeJS.EventEmitter).on("cancelled", onCancelled);
  // UNAVAILABLE, not CANCELLED: the client did nothing wrong and may retry elsewhere.
  const onShutdown = (): void => {
    if (!controller.signal.aborted) controller.abort(new FlightError(StatusCode.UNAVAILABLE, "server shutting down"));
  };
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener("abort", onShutdown, { once: true });
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
  const request = (call as { request?: unknown }).request;
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  const peerCertificate =
    cert && typeof cert.fingerprint256 === "string" && cert.raw
      ? { subjectCN: typeof cert.subject?.CN === "string" ? cert.subject.CN : "", fingerprint256: cert.fingerprint256, raw: new Uint8Array(cert.raw) }
      : undefined;
  const raw = request && typeof request === "object" ? (request as Record<symbol, Uint8Array>)[RAW_REQUEST] : undefined;
  return {
    info: {
      method,
      context: new CallContext(),
      headers: headersOf(call.metadata),
      responseHeaders: new Map<string, string>(),
      signal: controller.signal,
      peer: call.getPeer(),
      path: flightServiceDefinition[method].path,
      deadline: deadlineMs,
      rawRequest: raw,
      peerCertificate,
    },
    release: () => {
      shutdown.removeEventListener("abort", onShutdown);
      (call as unknown as NodeJS.EventEmitter).off("cancelled", onCancelled);
    },
  };
}

function sendHeaders(call: AnyCall, headers: Map<string, string>, sent: { done: boolean }): void {
  if (sent.done) return;
  sent.done = true;
  if (headers.size === 0) return;
  const md = new grpc.Metadata();
  for (const [k, v] of headers) md.set(k, v);
  call.sendMetadata(md);
}

/** Writes messages from an iterable with backpressure; stops when the call is cancelled. */
async function pump(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  source: AsyncIterable<unknown>,
  signal: AbortSignal,
  beforeFirst: () => void,
): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const next = await iterator.next();
      if (next.done) break;
      beforeFirst();
      if (!call.write(next.value)) {
        // A slow reader: wait for grpc-js to drain instead of buffering the whole flight.
        // once() with a signal removes both of its listeners, whichever comes first.
        await once(call, "drain", { signal }).catch(() => undefined);
      }
    }
  } finally {
    if (signal.aborted) await iterator.return?.();
  }
}

/** Turns an async iterable of client messages out of a readable grpc-js call. */
async function* readAll<T>(
  call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  signal: AbortSignal,
  settle: () => Promise<unknown>,
): AsyncGenerator<T> {
  // destroyOnReturn: false: a plain `for await` destroys the Duplex when the client's side
  // ends, which would also kill the response side before the handler has answered.
  try {
    for await (const m of call.iterator({ destroyOnReturn: false }) as AsyncIterable<T>) {
      if (signal.aborted) throw signal.reason;
      yield m;
    }
  } catch (err) {
    // A client that vanished (killed, connection reset) ends its stream early: that is a
    // cancellation, not a server bug.
    if ((err as { code?: unknown }).code === "ERR_STREAM_PREMATURE_CLOSE") throw new FlightError(StatusCode.CANCELLED, "the client closed the stream");
    throw err;
  }
  // A grpc-js client cancels by ending its side (END_STREAM) and then resetting the stream
  // (RST_STREAM), possibly in a later TCP segment; both look like a normal end here until
  // the reset arrives. So before the stream counts as complete (and a DoPut commits), wait
  // for a PING round trip: any reset the client sent before answering has been read by
  // then. One more turn lets grpc-js turn the reset into "cancelled".
  await settle();
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (signal.aborted) throw signal.reason;
}

/**
 * Binds a {@link FlightHandler} (the composed middleware chain) to grpc-js. Every call is
 * turned into a FlightCall; every thrown error into a status with the FlightError's code,
 * the same on unary and streaming paths; anything else into INTERNAL with a generic text.
 */
export function createGrpcImplementation(opts: AdapterOptions): grpc.UntypedServiceImplementation {
  const { handler, observe, shutdownSignal } = opts;

  const fail = (method: FlightMethod, err: unknown): FlightError => {
    const fe = FlightError.from(err);
    if (!(err instanceof FlightError) && fe.code === StatusCode.INTERNAL) opts.onInternalError?.(err, method);
    return fe;
  };

  const unary = (method: FlightMethod) =>
    function handleUnary(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
      const started = performance.now();
      const { info, release } = callInfo(call, method, shutdownSignal);
      const sent = { done: false };
      handler({ ...info, request: call.request } as FlightCall)
        .then((res) => {
          sendHeaders(call, info.responseHeaders, sent);
          callback(null, res);
          observe(method, 0, performance.now() - started);
        })
        .catch((err) => {
          const fe = fail(method, err);
          sendHeaders(call, info.responseHeaders, sent);
          callback(toServiceError(fe) as grpc.ServiceError);
          observe(method, fe.code, performance.now() - started);
        })
        .finally(release);
    };

  const streaming = (method: FlightMethod, clientStreaming: boolean) =>
    function handleStreaming(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): void {
      const started = performance.now();
      const { info, release } = callInfo(call, method, shutdownSignal);
      const sent = { done: false };
      const settle = () => opts.settlePeer?.(info.peer) ?? Promise.resolve();
      const request = clientStreaming ? readAll(call as grpc.ServerDuplexStream<unknown, unknown>, info.signal, settle) : (call as { request: unknown }).request;
      (async () => {
        let response = (await handler({ ...info, request } as FlightCall)) as AsyncIterable<unknown>;
        // Many small FlightInfos: one grpc-js write per ~64 KiB instead of one per flight.
        if (method === "listFlights" && installPreframedResponses()) {
          response = coalesceFramed(response, flightServiceDefinition.listFlights.responseSerialize);
        }
        await pump(call, response, info.signal, () => sendHeaders(call, info.responseHeaders, sent));
      })()
        .then(() => {
          if (info.signal.aborted) throw info.signal.reason;
          sendHeaders(call, info.responseHeaders, sent);
          call.end();
          observe(method, 0, performance.now() - started);
        })
        .catch((err) => {
          const fe = fail(method, err);
          if (!call.cancelled) {
            sendHeaders(call, info.responseHeaders, sent);
            call.emit("error", toServiceError(fe));
          }
          observe(method, fe.code, performance.now() - started);
        })
        .finally(release);
    };

  return {
    handshake: streaming("handshake", true),
    listFlights: streaming("listFlights", false),
    getFlightInfo: unary("getFlightInfo"),
    pollFlightInfo: unary("pollFlightInfo"),
    getSchema: unary("getSchema"),
    doGet: streaming("doGet", false),
    doPut: streaming("doPut", true),
    doExchange: streaming("doExchange", true),
    doAction: streaming("doAction", false),
    listActions: streaming("listActions", false),
  } as grpc.UntypedServiceImplementation;
}
