// The interface between a server transport and the services it carries. A transport (today
// `Http2GrpcTransport`, gRPC on node:http2) parses frames, enforces limits and turns each
// stream into a TransportCall; the services (Flight, grpc.health.v1) never see HTTP/2.
import type { Bytes, CallHeaders, PeerCertificateInfo, TlsSetting } from "@blackice/flight-core";
import type { HttpExchange } from "./http-exchange";

export type { HttpExchange } from "./http-exchange";

/** What a method handler receives for one call. */
export interface TransportCall {
  /** The gRPC path, `/package.Service/Method`. */
  readonly path: string;
  /** Request metadata, names lower-cased, `-bin` values decoded. */
  readonly headers: CallHeaders;
  /** Response headers sent with the first response message (or the status). */
  readonly responseHeaders: Map<string, string>;
  /** Aborted (with a FlightError reason) on cancellation, deadline, idle timeout or shutdown. */
  readonly signal: AbortSignal;
  /** The client's address, `ip:port` (`[v6]:port`). */
  readonly peer: string;
  /** The client's deadline, epoch ms. */
  readonly deadline: number | undefined;
  /** The client certificate, on mutual TLS. */
  readonly peerCertificate: PeerCertificateInfo | undefined;
  /** The request message's bytes, for unary and server-streaming calls. */
  readonly rawRequest: Uint8Array | undefined;
  /** The decoded request, or an AsyncIterable of them for client-streaming calls. */
  readonly request: unknown;
}

/** One method of a service, as the transport serves it. */
export interface TransportMethod {
  readonly clientStreaming: boolean;
  readonly serverStreaming: boolean;
  /** Largest request message in bytes, checked on its length prefix before it is buffered. */
  readonly maxRequestBytes: number;
  /** Parses one request message; a thrown error refuses the call with INVALID_ARGUMENT (or its FlightError code). */
  decode(bytes: Bytes): unknown;
  /** One response message as the pieces of its gRPC frame (5-byte prefix included). */
  encode(response: unknown): Uint8Array[];
  /** Serves the call: the response, or an AsyncIterable of them for server-streaming methods. */
  handle(call: TransportCall): Promise<unknown>;
}

/** Limits a transport enforces before bytes are held; see docs/security.md. */
export interface TransportLimits {
  /** Largest message of any call, bytes. */
  readonly maxMessageBytes: number;
  /** Largest first message of a call: what a caller may send before any middleware accepted it. */
  readonly maxFirstMessageBytes: number;
  /** Server-wide bytes of messages received and not yet consumed by their handlers. */
  readonly maxInFlightBytes: number;
  /** Server-wide bytes of first messages not yet accepted (the pre-authentication budget). */
  readonly maxPreAuthBytes: number;
  /** A call waiting for a request message for this long ends with DEADLINE_EXCEEDED, ms. */
  readonly callIdleTimeoutMs: number;
  /** Concurrent streams per connection. */
  readonly maxConcurrentStreams: number;
}

/** HTTP/2 and connection settings of a transport. */
export interface TransportSettings extends TransportLimits {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsSetting | undefined;
  /** Per-stream and connection receive window, bytes. */
  readonly flowControlWindow: number;
  /** Largest DATA frame the transport accepts, bytes (16 KiB to 16 MiB - 1). */
  readonly maxFrameBytes: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** A client may ping no more often than this (without data in between) before it gets GOAWAY. */
  readonly minPingIntervalMs: number;
  readonly maxConnectionIdleMs: number;
  readonly maxConnectionAgeMs: number;
  /** Web origins that get CORS headers on gRPC-Web and plain-HTTP responses; empty = CORS off. */
  readonly corsOrigins: readonly string[];
}

/** What plain-HTTP routes get for one request that is neither gRPC nor gRPC-Web. */
export interface HttpRequestContext {
  readonly exchange: HttpExchange;
  /** Aborted when the client goes away, or with UNAVAILABLE when the server's shutdown grace is over. */
  readonly signal: AbortSignal;
  /**
   * Runs a method of the served services (`/package.Service/Method`) as a call carrying this
   * request's headers, peer and client certificate, with `rawRequest` as its request message
   * (checked against the method's size limit and decoded by the method, as over gRPC).
   * Resolves to the method's response: a value, or an AsyncIterable for server streaming.
   */
  invoke(path: string, rawRequest: Uint8Array): Promise<unknown>;
}

/**
 * Serves plain-HTTP requests (the transport answers CORS preflights, gRPC and gRPC-Web
 * itself). Resolves when the response is complete; a rejection with a FlightError is
 * answered with its HTTP status (see `http-status.ts`).
 */
export type HttpRoutes = (request: HttpRequestContext) => Promise<void>;

/** What a transport reports for `stats`. */
export interface TransportStats {
  connections: number;
  openCalls: number;
  inFlightBytes: number;
  preAuthBytes: number;
}

/** A server transport: binds, serves the methods it was given, and shuts down gracefully. */
export interface ServerTransport {
  /** Binds and starts serving; rejects with `cannot listen on ...` if the address is taken. */
  listen(): Promise<{ host: string; port: number }>;
  /**
   * Stops accepting calls (GOAWAY to every connection), lets open calls finish, and after
   * `graceMs` cancels what is left with UNAVAILABLE and closes every connection.
   */
  shutdown(graceMs: number): Promise<void>;
  stats(): TransportStats;
}

/** Hooks of responses whose service wants to hear when each message is written (see {@link onResponseWritten}). */
const writtenHooks = new WeakMap<object, WrittenHook>();

/** Hears that one message of a response was written; returning false stops the reports. */
export type WrittenHook = (message: unknown) => boolean | void;

/**
 * Asks the transport to call `hook(message)` for each message of the server-streaming
 * `response` once its bytes have been written to the socket and the transport no longer
 * references them (not for a message whose write failed). The transport looks the hook up by
 * the identity of the response it is given: a response that middleware wrapped on its way out
 * has no hook, so its messages are never reported (and a service must then assume they are
 * held forever). Once the hook returns false, later messages are not reported. Used by DoGet to let a store reuse read buffers (see `ReadLease`).
 */
export function onResponseWritten(response: object, hook: WrittenHook): void {
  writtenHooks.set(response, hook);
}

/** The hook {@link onResponseWritten} registered for exactly this response object, if any. */
export function responseWrittenHook(response: unknown): WrittenHook | undefined {
  return typeof response === "object" && response !== null ? writtenHooks.get(response) : undefined;
}
