import * as grpc from "@grpc/grpc-js";
import type * as Arrow from "apache-arrow";
import {
  ByteChunks,
  FlightError,
  StatusCode,
  statusCodeName,
  type ActionType,
  type CallSigner,
  type StreamSealer,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type HandshakeRequest,
  type HandshakeResponse,
  type PollInfo,
  type PutResult,
  type Result,
  type SchemaResult,
  type SignableCall,
  type FlightMethod,
  type Ticket,
  checkFunction,
  checkOptionalInt,
  checkOptions,
  checkByteArray,
  checkImplements,
  checkNumberIn,
  checkObject,
  checkString,
} from "@blackice/flight-core";
import { flightServiceDefinition } from "../codec/service-definition";
import * as pb from "../gen/Flight";
import { decodeRecordBatches, encodeTable, isRecordBatchLike, isTableLike, loadArrow, type EncodeTableOptions, type RecordBatchLike, type TableLike } from "./arrow-interop";
import { BatchWriter, type BatchWriterOptions } from "./batch-writer";
import { checkMiddleware, StartedCall, type ClientMiddleware, type ReceivedMetadata } from "./client-middleware";
import { normalizeDescriptor } from "./descriptors";
import { parseLocation } from "./location";
import { ChannelPool, channelPoolOptions, type ChannelPoolOptions, type ChannelPoolStats } from "./channel-pool";
import { decodeDoGet, decoderThreads, type Decoder, type DecoderOptions } from "./worker-decode";

/** Default largest message, sent or received: 64 MiB (the server's default too). */
export const DEFAULT_CLIENT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Default HTTP/2 flow-control window of the client: 16 MiB (the server's default too). */
export const DEFAULT_CLIENT_FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

const MAX_INT32 = 2 ** 31 - 1;
const EMPTY = new Uint8Array(0);

/** A request header value: text, or bytes for a `-bin` header (text given for a `-bin` header is sent as UTF-8). */
export type MetadataValue = string | Uint8Array;

/** Options of one call; every FlightClient method takes them last. */
export interface CallOptions {
  /** Extra request headers for this call (added after the client's `metadata`). */
  metadata?: Record<string, MetadataValue | MetadataValue[]>;
  /** When the call fails with DEADLINE_EXCEEDED: a Date, or milliseconds from now. */
  deadline?: Date | number;
  /** Aborting it cancels the call, which then fails with CANCELLED. */
  signal?: AbortSignal;
  /**
   * Receives the call's response headers (for a call answered with trailers only, such as
   * most failures, the trailers), once, before the call's result. Runs as the innermost
   * {@link ClientMiddleware}'s `receivedHeaders`; it must not throw.
   */
  onResponseHeaders?: (headers: ReceivedMetadata) => void;
}

/** TLS settings of a {@link FlightClient}. */
export interface FlightClientTlsOptions {
  /** PEM CA certificates to trust instead of the system's. */
  rootCerts?: Buffer;
  /** PEM client certificate chain, for mutual TLS (with `key`). */
  cert?: Buffer;
  /** PEM private key of `cert`. */
  key?: Buffer;
  /** The name to check the server certificate against (and send as :authority), e.g. when connecting by IP. */
  serverNameOverride?: string;
}

/** Options of a {@link FlightClient}. */
export interface FlightClientOptions {
  /** Use TLS. Implied by a `grpc+tls://` location; not allowed with an explicit plaintext scheme. */
  tls?: FlightClientTlsOptions;
  /** Headers sent on every call. */
  metadata?: Record<string, string>;
  /** Called once per call; the headers it returns are added to the call (e.g. `hmacSigner` from `@blackice/flight-security`). */
  signer?: CallSigner;
  /**
   * Client middleware, run on every call (unary and streaming, failed ones included); the first
   * is the outermost. See {@link ClientMiddleware}, and `cookieMiddleware()` for sessions.
   */
  middleware?: readonly ClientMiddleware[];
  /** Largest message sent or received, in bytes. Default {@link DEFAULT_CLIENT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** HTTP/2 flow-control window in bytes. Default {@link DEFAULT_CLIENT_FLOW_CONTROL_WINDOW}. */
  flowControlWindow?: number;
  /** Extra grpc-js channel options, applied last (they win over the ones above). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Limits of the channels opened to other locations when a read follows a FlightInfo's
   * endpoint locations (see {@link FlightClient.doGetRaw}): one channel per location, made
   * with this client's options.
   */
  pool?: ChannelPoolOptions;
  /**
   * Where doGet and getTable decode what the server sent: by default a compressed stream in
   * worker threads (the received buffers are moved there, not copied), under a time and heap
   * limit, and any other stream on the calling thread after each message's header is checked
   * against its body, so that a corrupt or hostile stream fails with DATA_LOSS (or
   * RESOURCE_EXHAUSTED) instead of blocking the event loop. See {@link DecoderOptions}.
   */
  decoder?: DecoderOptions;
}

/** A FlightData to send; missing fields are empty. */
export type FlightDataInput = Partial<FlightData>;
/** A ticket: the Ticket message, its bytes, its text, or a FlightEndpoint carrying it. */
export type TicketInput = Ticket | Uint8Array | string | { ticket: Ticket | undefined };
/** What a read takes: a ticket (read on this client's channel), or a FlightInfo (every endpoint, following its locations). */
export type ReadTarget = TicketInput | FlightInfo;
/** A FlightDescriptor, possibly partial (`{ path: [...] }`); see `pathDescriptor`/`cmdDescriptor`. */
export type DescriptorInput = Partial<FlightDescriptor>;
/** What a streaming request accepts. */
export type RequestSource<T> = AsyncIterable<T> | Iterable<T>;

/** Options of {@link FlightClient.putTable}. */
export interface PutTableOptions extends CallOptions, EncodeTableOptions {}

/** An open DoPut: its PutResults, read as they arrive. */
export interface DoPutCall {
  /**
   * The server's PutResults. Iterating starts the call (once; it is single-use); ending the
   * iteration early cancels it. Errors are thrown from here as FlightError.
   */
  readonly results: AsyncIterable<PutResult>;
}

type Method = keyof typeof flightServiceDefinition & FlightMethod;

const identity = (b: Buffer): Buffer => b;
const noop = (): void => {};
const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * Turns what a call failed with into a FlightError: the gRPC status code and details, plus
 * the trailers as `metadata` (e.g. a retry hint a server attached).
 */
function toFlightError(err: unknown): FlightError {
  const fe = FlightError.from(err);
  if (fe === err) return fe;
  const md = (err as { metadata?: { getMap?: () => Record<string, unknown> } } | null)?.metadata;
  if (typeof md?.getMap !== "function") return fe;
  const trailers: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === "string") trailers[k] = v;
  return Object.keys(trailers).length === 0 ? fe : new FlightError(fe.code, fe.message, { cause: err, metadata: trailers });
}

const cancelled = (signal: AbortSignal): FlightError =>
  new FlightError(StatusCode.CANCELLED, "call cancelled before it started", { cause: signal.reason });

/** Runs `fn` when `signal` aborts (now, if it already has); returns the unsubscribe. */
function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return noop;
  if (signal.aborted) {
    fn();
    return noop;
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
}

/** An AbortController that also aborts with `parent`: how a method cancels the calls it made itself. */
function childController(parent: AbortSignal | undefined): { controller: AbortController; unlink: () => void } {
  const controller = new AbortController();
  const unlink = onAbort(parent, () => controller.abort(parent?.reason));
  return { controller, unlink };
}

function addMetadata(md: grpc.Metadata, key: string, value: MetadataValue, what: string): void {
  if (typeof value !== "string" && !(value instanceof Uint8Array)) throw new TypeError(`${what}: the value of "${key}" must be a string or a Uint8Array`);
  const binary = key.toLowerCase().endsWith("-bin");
  if (!binary && typeof value !== "string") throw new TypeError(`${what}: "${key}" is not a -bin header, so its value must be a string`);
  try {
    md.add(key, binary ? (typeof value === "string" ? Buffer.from(value, "utf8") : toBuffer(value)) : (value as string));
  } catch (err) {
    throw new TypeError(`${what}: ${(err as Error).message}`);
  }
}

/** Checks a call's options (a TypeError naming the option, like the constructor's). */
function checkCallOptions(options: CallOptions | undefined): void {
  if (options === undefined) return;
  const where = "FlightClient";
  checkObject(where, "call options", options);
  const { metadata, deadline, signal, onResponseHeaders } = options;
  if (metadata !== undefined) checkObject(where, "options.metadata", metadata, "an object of header values");
  if (deadline !== undefined && !(deadline instanceof Date && !Number.isNaN(deadline.getTime()))) {
    checkNumberIn(where, "options.deadline", deadline, -Infinity, Infinity, "a valid Date or a finite number of milliseconds from now");
  }
  checkImplements(where, "options.signal", signal, ["addEventListener", "removeEventListener"], "an AbortSignal");
  checkFunction(where, "options.onResponseHeaders", onResponseHeaders);
}

/** Fixes a relative deadline to an absolute one, so that the calls a method makes share one budget. */
function absoluteDeadline<T extends CallOptions>(options: T | undefined): T | undefined {
  if (typeof options?.deadline !== "number") return options;
  return { ...options, deadline: new Date(Date.now() + options.deadline) };
}

function checkBytes(value: unknown, what: string): Uint8Array {
  if (value === undefined) return EMPTY;
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  return value;
}

function textOrBytes(value: Uint8Array | string | undefined, what: string): Uint8Array {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return checkBytes(value, what);
}

function checkFlightData(m: FlightDataInput, index: number): FlightData {
  if (m === null || typeof m !== "object") throw new TypeError(`message ${index} must be a FlightData object`);
  const dataHeader = checkBytes(m.dataHeader, `message ${index}: dataHeader`);
  const dataBody = m.dataBody instanceof ByteChunks ? m.dataBody : checkBytes(m.dataBody ?? new Uint8Array(0), `message ${index}: dataBody`);
  const appMetadata = checkBytes(m.appMetadata, `message ${index}: appMetadata`);
  const flightDescriptor = m.flightDescriptor == null ? undefined : normalizeDescriptor(m.flightDescriptor, `message ${index}: flightDescriptor`);
  return { flightDescriptor, dataHeader, dataBody, appMetadata };
}

/**
 * The messages of a DoPut or DoExchange, with the descriptor on the first one (Flight puts it
 * there). If there are no messages, a descriptor-only message still goes out, so that the
 * server learns what the call is about.
 */
async function* withDescriptor(descriptor: FlightDescriptor, messages: RequestSource<FlightDataInput>): AsyncGenerator<FlightData> {
  let index = 0;
  for await (const m of messages) {
    const msg = checkFlightData(m, index);
    yield index === 0 ? { flightDescriptor: descriptor, dataHeader: msg.dataHeader, dataBody: msg.dataBody, appMetadata: msg.appMetadata } : msg;
    index++;
  }
  if (index === 0) yield { flightDescriptor: descriptor, dataHeader: EMPTY, dataBody: EMPTY, appMetadata: EMPTY };
}

/**
 * The messages of a signed stream: each one shown to the signer's sealer as it goes out (the
 * sealer hashes it; nothing is copied), then one trailing message (no header, no body) whose
 * app_metadata is the seal. See `hmacSigner` v2.
 */
async function* sealed(sealer: StreamSealer, messages: RequestSource<FlightData>): AsyncGenerator<FlightData> {
  for await (const m of messages) {
    sealer.update(m);
    yield m;
  }
  yield { flightDescriptor: undefined, dataHeader: EMPTY, dataBody: EMPTY, appMetadata: sealer.seal() };
}

/**
 * Writes `source` to a streaming call, waiting for 'drain' whenever write() returns false, so
 * that a producer faster than the network (or a slow server) is paused instead of buffered.
 */
async function writeAll<T>(call: grpc.ClientDuplexStream<T, unknown>, source: RequestSource<T>, stopped: () => boolean): Promise<void> {
  for await (const message of source) {
    if (stopped()) return;
    if (!call.write(message)) {
      // 'status' too: a call that ended (failed, cancelled) never drains.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          call.off("drain", done);
          call.off("close", done);
          call.off("status", done);
          resolve();
        };
        call.on("drain", done);
        call.on("close", done);
        call.on("status", done);
      });
    }
    if (stopped()) return;
  }
  if (!stopped()) call.end();
}

function normalizeTicket(t: TicketInput, what = "ticket"): Ticket {
  if (typeof t === "string") return { ticket: Buffer.from(t, "utf8") };
  if (t instanceof Uint8Array) return { ticket: t };
  if (t !== null && typeof t === "object") {
    const inner = (t as { ticket?: unknown }).ticket;
    if (inner instanceof Uint8Array) return { ticket: inner };
    // A FlightEndpoint: its ticket field is a Ticket message.
    if (inner !== null && typeof inner === "object" && (inner as { ticket?: unknown }).ticket instanceof Uint8Array) return { ticket: (inner as Ticket).ticket };
  }
  throw new TypeError(`${what} must be a Ticket, a FlightEndpoint, a Uint8Array or a string`);
}

/** Arrow's URI for "this same connection" in an endpoint's locations. */
const REUSE_CONNECTION = "arrow-flight-reuse-connection:";
/** Failures of one location that pass an endpoint to the next: the server is down, or does not hold the flight. */
const FAILOVER_CODES: ReadonlySet<StatusCode> = new Set([StatusCode.UNAVAILABLE, StatusCode.NOT_FOUND]);

function isFlightInfo(x: unknown): x is FlightInfo {
  return x !== null && typeof x === "object" && Array.isArray((x as { endpoint?: unknown }).endpoint);
}

function isDescriptorInput(x: unknown): x is DescriptorInput {
  return x !== null && typeof x === "object" && !(x instanceof Uint8Array) && !("ticket" in x) && ("path" in x || "cmd" in x || "type" in x);
}

/** Checks the constructor's options up front (TypeError naming the option and its valid range). */
function checkClientOptions(location: string, options: FlightClientOptions): void {
  checkOptions("FlightClient", options, ["tls", "metadata", "signer", "middleware", "maxMessageBytes", "flowControlWindow", "channelOptions", "pool", "decoder"], true);
  checkOptionalInt("FlightClient", "maxMessageBytes", options.maxMessageBytes, 1, MAX_INT32);
  checkOptionalInt("FlightClient", "flowControlWindow", options.flowControlWindow, 65_535, MAX_INT32);
  checkFunction("FlightClient", "signer (a CallSigner)", options.signer);
  checkMiddleware(options.middleware);
  if (options.metadata !== undefined) checkObject("FlightClient", "metadata", options.metadata, "an object of header names to strings");
  if (options.channelOptions !== undefined) {
    checkObject("FlightClient", "channelOptions", options.channelOptions, "an object of grpc-js channel options");
    for (const [k, v] of Object.entries(options.channelOptions)) {
      // grpc-js's own option values: strings, numbers, or the objects it takes (interceptors).
      if (v !== undefined && typeof v !== "string" && typeof v !== "number" && (typeof v !== "object" || v === null)) {
        throw new TypeError(`FlightClient: channelOptions["${k}"] must be a string or a number`);
      }
    }
  }
  const tls = options.tls;
  if (tls !== undefined) {
    checkObject("FlightClient", "tls", tls, "an object ({ rootCerts?, cert?, key?, serverNameOverride? })");
    checkOptions("FlightClient", tls, ["rootCerts", "cert", "key", "serverNameOverride"], true, "tls");
    for (const k of ["rootCerts", "cert", "key"] as const) checkByteArray("FlightClient", `tls.${k}`, tls[k], 0, "a Buffer of PEM");
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw new TypeError("FlightClient: tls.cert and tls.key go together (mutual TLS needs both)");
    checkString("FlightClient", "tls.serverNameOverride", tls.serverNameOverride);
    const scheme = parseLocation(location).scheme;
    if (scheme === "grpc+tcp" || scheme === "grpc") {
      throw new TypeError(`FlightClient: tls is set but the location ${JSON.stringify(location)} asks for plaintext (${scheme}://); use grpc+tls:// or host:port`);
    }
  }
}

/**
 * An Arrow Flight client over one grpc-js channel, reused by every call. Each method maps to
 * one Flight RPC; the `Raw` forms send and receive FlightData as it is, the others encode and
 * decode Arrow record batches with the host app's apache-arrow (any copy or version of it is
 * accepted as input). Every method takes {@link CallOptions} last (headers, deadline, abort
 * signal) and fails with a {@link FlightError} carrying the gRPC status code.
 *
 * @example
 * const client = new FlightClient("grpc+tcp://127.0.0.1:8815");
 * try {
 *   await client.putTable(pathDescriptor("sales", "2024"), table);
 *   const copy = await client.getTable(pathDescriptor("sales", "2024"), { deadline: 10_000 });
 * } finally {
 *   client.close();
 * }
 */
export class FlightClient {
  /** The location given to the constructor. */
  readonly location: string;
  /** The grpc-js target (`host:port`). */
  readonly target: string;
  /** Whether the channel uses TLS. */
  readonly secure: boolean;

  private readonly client: grpc.Client;
  private readonly baseMetadata: grpc.Metadata;
  private readonly signer: CallSigner | undefined;
  private readonly middleware: readonly ClientMiddleware[];
  /** grpc-js interceptors given in `channelOptions`: per-call interceptors replace them, so the middleware's carries them along. */
  private readonly channelInterceptors: { interceptors: grpc.Interceptor[]; providers: grpc.InterceptorProvider[] };
  /** Channels to endpoint locations, this one's own included; made on the first read of a FlightInfo. */
  private pool: ChannelPool<FlightClient> | undefined;
  private readonly options: FlightClientOptions;
  /** How doGet and getTable decode (see DecoderOptions.worker); undefined when always on the main thread. */
  private readonly decoder: Decoder | undefined;
  private closed = false;

  constructor(location: string, options: FlightClientOptions = {}) {
    const parsed = parseLocation(location);
    checkClientOptions(location, options);
    channelPoolOptions(options.pool);
    this.decoder = decoderThreads(options.decoder);
    this.options = options;
    this.location = location;
    this.target = parsed.target;
    this.secure = parsed.tls || options.tls !== undefined;
    this.signer = options.signer;
    this.middleware = [...(options.middleware ?? [])];
    const extra = (options.channelOptions ?? {}) as { interceptors?: unknown; interceptor_providers?: unknown };
    this.channelInterceptors = {
      interceptors: Array.isArray(extra.interceptors) ? extra.interceptors : [],
      providers: Array.isArray(extra.interceptor_providers) ? extra.interceptor_providers : [],
    };
    this.baseMetadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) addMetadata(this.baseMetadata, k, v, "FlightClient: metadata");
    const tls = options.tls ?? {};
    const credentials = this.secure
      ? grpc.credentials.createSsl(tls.rootCerts ?? null, tls.key ?? null, tls.cert ?? null)
      : grpc.credentials.createInsecure();
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_CLIENT_MAX_MESSAGE_BYTES;
    const channelOptions: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      // Without this the HTTP/2 window is 64 KiB and a DoGet crawls; the server uses the same default.
      "grpc-node.flow_control_window": options.flowControlWindow ?? DEFAULT_CLIENT_FLOW_CONTROL_WINDOW,
      ...(tls.serverNameOverride ? { "grpc.ssl_target_name_override": tls.serverNameOverride, "grpc.default_authority": tls.serverNameOverride } : {}),
      ...options.channelOptions,
    };
    this.client = new grpc.Client(parsed.target, credentials, channelOptions);
  }

  // ------------------------------------------------------------------ calls

  /**
   * Headers, deadline and signature of one call; then its middleware, started last, so that
   * a call failing before this point reaches none. Once this returns, the call must be made
   * with {@link open}, which completes the middleware if the call cannot be created.
   */
  private async prepare(
    method: Method,
    signable: SignableCall,
    options: CallOptions | undefined,
    stream = false,
  ): Promise<{ metadata: grpc.Metadata; callOptions: grpc.CallOptions; signal?: AbortSignal; started?: StartedCall; sealer?: StreamSealer }> {
    if (this.closed) throw new FlightError(StatusCode.FAILED_PRECONDITION, "FlightClient is closed");
    checkCallOptions(options);
    const signal = options?.signal;
    if (signal?.aborted) throw cancelled(signal);
    const metadata = this.baseMetadata.clone();
    for (const [k, v] of Object.entries(options?.metadata ?? {})) {
      for (const one of Array.isArray(v) ? v : [v]) addMetadata(metadata, k, one, "options.metadata");
    }
    let sealer: StreamSealer | undefined;
    if (this.signer) {
      let headers: Record<string, string>;
      try {
        if (stream && typeof this.signer.signStream === "function") {
          const signed = await this.signer.signStream(signable);
          headers = signed?.headers;
          sealer = signed?.sealer;
          if (!sealer || typeof sealer.update !== "function" || typeof sealer.seal !== "function") throw new TypeError("signStream must return { headers, sealer: { update, seal } }");
        } else {
          headers = await this.signer(signable);
        }
      } catch (err) {
        if (err instanceof FlightError) throw err;
        throw new FlightError(StatusCode.INTERNAL, `the call signer failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      // set, not add: a signature header must not sit beside a stale one from `metadata`.
      for (const [k, v] of Object.entries(headers ?? {})) {
        if (typeof v !== "string") throw new TypeError(`the call signer returned a non-string value for "${k}"`);
        metadata.remove(k);
        addMetadata(metadata, k, v, "the call signer's headers");
      }
      if (signal?.aborted) throw cancelled(signal);
    }
    const deadline = options?.deadline;
    const callOptions: grpc.CallOptions = deadline === undefined ? {} : { deadline: typeof deadline === "number" ? Date.now() + deadline : deadline };
    const onResponseHeaders = options?.onResponseHeaders;
    const middleware = onResponseHeaders ? [...this.middleware, { startCall: () => ({ receivedHeaders: onResponseHeaders }) }] : this.middleware;
    if (middleware.length === 0) return { metadata, callOptions, signal, sealer };
    if (this.closed) throw new FlightError(StatusCode.FAILED_PRECONDITION, "FlightClient is closed");
    const started = StartedCall.start(middleware, { method, path: flightServiceDefinition[method].path }, (k, v) => addMetadata(metadata, k, v, "a client middleware's headers"));
    if (started.empty) return { metadata, callOptions, signal, sealer };
    // Outermost, so that the middleware see what the application will see.
    const mine = started.interceptor();
    const { interceptors, providers } = this.channelInterceptors;
    if (providers.length > 0) callOptions.interceptor_providers = [() => mine, ...providers];
    else callOptions.interceptors = [mine, ...interceptors];
    return { metadata, callOptions, signal, started, sealer };
  }

  /** Creates a call; if grpc-js refuses to (the channel was closed meanwhile), completes its middleware and throws a FlightError. */
  private open<C>(started: StartedCall | undefined, create: () => C): C {
    try {
      return create();
    } catch (err) {
      const fe = this.closed ? new FlightError(StatusCode.FAILED_PRECONDITION, "FlightClient is closed", { cause: err }) : toFlightError(err);
      started?.abandon(fe);
      throw fe;
    }
  }

  private async unary<Res>(method: Method, request: Uint8Array, options: CallOptions | undefined): Promise<Res> {
    const def = flightServiceDefinition[method];
    // Serialized once: the signer signs exactly the bytes that go out.
    const bytes = toBuffer(request);
    const { metadata, callOptions, signal, started } = await this.prepare(method, { path: def.path, message: bytes }, options);
    return new Promise<Res>((resolve, reject) => {
      let dispose = noop;
      const call = this.open(started, () =>
        this.client.makeUnaryRequest<Buffer, Res>(def.path, identity, def.responseDeserialize as (b: Buffer) => Res, bytes, metadata, callOptions, (err, res) => {
          dispose();
          if (err) reject(toFlightError(err));
          else resolve(res as Res);
        }),
      );
      dispose = onAbort(signal, () => call.cancel());
    });
  }

  private async *serverStream<Res>(method: Method, request: Uint8Array, options: CallOptions | undefined): AsyncGenerator<Res> {
    const def = flightServiceDefinition[method];
    const bytes = toBuffer(request);
    const { metadata, callOptions, signal, started } = await this.prepare(method, { path: def.path, message: bytes }, options);
    const call = this.open(started, () =>
      this.client.makeServerStreamRequest<Buffer, Res>(def.path, identity, def.responseDeserialize as (b: Buffer) => Res, bytes, metadata, callOptions),
    );
    yield* readAll<Res>(call, signal);
  }

  private async *bidiStream<Req, Res>(method: Method, signable: SignableCall, source: RequestSource<Req>, options: CallOptions | undefined): AsyncGenerator<Res> {
    const def = flightServiceDefinition[method];
    const seal = method === "doPut" || method === "doExchange";
    const { metadata, callOptions, signal, started, sealer } = await this.prepare(method, signable, options, seal);
    if (sealer) source = sealed(sealer, source as RequestSource<FlightData>) as RequestSource<Req>;
    const call = this.open(started, () =>
      this.client.makeBidiStreamRequest<Req, Res>(def.path, def.requestSerialize as (m: Req) => Buffer, def.responseDeserialize as (b: Buffer) => Res, metadata, callOptions),
    );
    let finished = false;
    call.once("status", () => (finished = true));
    let sourceFailed = false;
    let sourceError: unknown;
    // The requests go out concurrently with reading the responses: a server may answer
    // before it has read everything (DoExchange, acks of DoPut), and waiting for it would
    // deadlock once both directions' windows are full.
    void writeAll(call, source, () => finished).catch((err) => {
      // Once the call has ended, the server has had its say; a later failure of the source
      // (it was being read for nothing) is not the call's outcome.
      if (finished) return;
      sourceFailed = true;
      sourceError = err;
      call.cancel();
    });
    try {
      yield* readAll<Res>(call, signal);
    } catch (err) {
      // The call was cancelled because the requests failed: that failure is the one to report.
      if (sourceFailed) throw sourceError;
      throw err;
    } finally {
      finished = true;
    }
    if (sourceFailed) throw sourceError;
  }

  // ------------------------------------------------------------------ Handshake

  /**
   * Handshake: sends the requests and returns every response. Without an auth middleware a
   * BlackIce server answers each request with an empty payload.
   *
   * @example
   * const [reply] = await client.handshake([{ protocolVersion: 1, payload: Buffer.from("token") }]);
   */
  async handshake(requests: RequestSource<Partial<HandshakeRequest>>, options?: CallOptions): Promise<HandshakeResponse[]> {
    const out: HandshakeResponse[] = [];
    for await (const r of this.handshakeStream(requests, options)) out.push(r);
    return out;
  }

  /**
   * Handshake as a stream, for exchanges where a request depends on an earlier response
   * (pass an async generator that awaits them).
   *
   * @example
   * for await (const reply of client.handshakeStream(challengeResponses())) onReply(reply);
   */
  handshakeStream(requests: RequestSource<Partial<HandshakeRequest>>, options?: CallOptions): AsyncIterable<HandshakeResponse> {
    const path = flightServiceDefinition.handshake.path;
    async function* normalized(): AsyncGenerator<HandshakeRequest> {
      for await (const r of requests) {
        if (r === null || typeof r !== "object") throw new TypeError("each handshake request must be an object { protocolVersion?, payload? }");
        yield { protocolVersion: r.protocolVersion ?? 0, payload: checkBytes(r.payload, "handshake request payload") };
      }
    }
    return this.bidiStream<HandshakeRequest, HandshakeResponse>("handshake", { path }, normalized(), options);
  }

  // ------------------------------------------------------------------ flights

  /**
   * ListFlights. `criteria` is sent as the Criteria expression: a string as UTF-8 (a BlackIce
   * server reads `"a/b"` as a path prefix), an array of path segments as its JSON, bytes as
   * they are.
   *
   * @example
   * for await (const info of client.listFlights(["telemetry"])) console.log(info.flightDescriptor?.path, info.totalRecords);
   */
  listFlights(criteria?: string | Uint8Array | string[], options?: CallOptions): AsyncIterable<FlightInfo> {
    let expression: Uint8Array;
    if (criteria === undefined) expression = EMPTY;
    else if (typeof criteria === "string") expression = Buffer.from(criteria, "utf8");
    else if (criteria instanceof Uint8Array) expression = criteria;
    else if (Array.isArray(criteria) && criteria.every((s) => typeof s === "string")) expression = Buffer.from(JSON.stringify(criteria), "utf8");
    else throw new TypeError("listFlights: criteria must be a string, a Uint8Array or an array of path segments");
    return this.serverStream<FlightInfo>("listFlights", pb.Criteria.encode({ expression }).finish(), options);
  }

  /**
   * GetFlightInfo: where and how to fetch a flight (schema, endpoints with tickets, counts).
   *
   * @example
   * const info = await client.getFlightInfo(pathDescriptor("sales"));
   * const batches = client.doGet(info.endpoint[0].ticket!);
   */
  async getFlightInfo(descriptor: DescriptorInput, options?: CallOptions): Promise<FlightInfo> {
    return this.unary<FlightInfo>("getFlightInfo", pb.FlightDescriptor.encode(normalizeDescriptor(descriptor)).finish(), options);
  }

  /**
   * PollFlightInfo: like GetFlightInfo, for flights that are still being produced.
   *
   * @example
   * const poll = await client.pollFlightInfo(pathDescriptor("sales"));
   * if (poll.flightDescriptor === undefined) console.log("complete", poll.info?.totalRecords);
   */
  async pollFlightInfo(descriptor: DescriptorInput, options?: CallOptions): Promise<PollInfo> {
    return this.unary<PollInfo>("pollFlightInfo", pb.FlightDescriptor.encode(normalizeDescriptor(descriptor)).finish(), options);
  }

  /**
   * GetSchema: the flight's IPC-encapsulated schema (decode it with `readArrowSchema`).
   *
   * @example
   * const schema = readArrowSchema(await client.getSchema(pathDescriptor("sales")));
   */
  async getSchema(descriptor: DescriptorInput, options?: CallOptions): Promise<SchemaResult> {
    return this.unary<SchemaResult>("getSchema", pb.FlightDescriptor.encode(normalizeDescriptor(descriptor)).finish(), options);
  }

  // ------------------------------------------------------------------ DoGet

  /**
   * DoGet, raw: the FlightData messages as received (schema, dictionaries, batches), with
   * their app_metadata. Header and body are views into the received buffers, not copies.
   *
   * @example
   * let messages = 0;
   * for await (const m of client.doGetRaw(info.endpoint[0].ticket!)) messages++;
   */
  doGetRaw(target: ReadTarget, options?: CallOptions): AsyncIterable<FlightData> {
    if (isFlightInfo(target)) return this.readEndpoints(target, options);
    const t = normalizeTicket(target);
    return this.serverStream<FlightData>("doGet", pb.Ticket.encode(t).finish(), options);
  }

  /**
   * Every endpoint of `info` in order, each as its own DoGet stream (its schema first) read
   * from the first of its locations that answers: an endpoint without locations (or with
   * Arrow's `arrow-flight-reuse-connection://?`) is read on this client's channel, others on
   * pooled channels ({@link FlightClientOptions.pool}). A location that fails before the
   * endpoint's first message with UNAVAILABLE or NOT_FOUND (down, or without the flight)
   * passes the endpoint to the next one; a failure after data has been read is thrown, as
   * serving the rest from another replica could repeat or miss messages.
   */
  private async *readEndpoints(info: FlightInfo, options: CallOptions | undefined): AsyncGenerator<FlightData> {
    checkCallOptions(options);
    const opts = absoluteDeadline(options);
    const endpoints = info.endpoint;
    for (let i = 0; i < endpoints.length; i++) {
      const ep = endpoints[i]!;
      if (!ep.ticket) throw new FlightError(StatusCode.INVALID_ARGUMENT, `endpoint ${i + 1} of ${endpoints.length} has no ticket`);
      const uris = (ep.location ?? []).map((l) => l.uri).filter((u) => u !== "" && !u.startsWith(REUSE_CONNECTION));
      yield* this.readEndpoint(`endpoint ${i + 1} of ${endpoints.length}`, ep.ticket, uris.length === 0 ? [this.location] : uris, opts);
    }
  }

  private async *readEndpoint(what: string, ticket: Ticket, locations: string[], options: CallOptions | undefined): AsyncGenerator<FlightData> {
    const failures: string[] = [];
    let lastCode: StatusCode = StatusCode.UNAVAILABLE;
    for (const location of locations) {
      let lease: { channel: FlightClient; release: () => void };
      try {
        lease = await this.channels().acquire(location);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
        failures.push(`${location}: ${err.message}`);
        continue;
      }
      let started = false;
      try {
        for await (const m of lease.channel.doGetRaw(ticket, options)) {
          started = true;
          yield m;
        }
        return;
      } catch (err) {
        const fe = FlightError.from(err);
        if (started || !FAILOVER_CODES.has(fe.code) || options?.signal?.aborted) throw fe;
        lastCode = fe.code;
        failures.push(`${location}: ${statusCodeName(fe.code)} ${fe.message}`);
      } finally {
        lease.release();
      }
    }
    throw new FlightError(lastCode, `${what}: no location could serve it (${failures.join("; ")})`);
  }

  private channels(): ChannelPool<FlightClient> {
    if (this.closed) throw new FlightError(StatusCode.FAILED_PRECONDITION, "FlightClient is closed");
    this.pool ??= new ChannelPool<FlightClient>(
      (location) => new FlightClient(location, { ...this.options, pool: undefined, decoder: { worker: false } }),
      { location: this.location, channel: this },
      this.options.pool,
    );
    return this.pool;
  }

  /** The channels reads of FlightInfos opened (this client's own included), with their calls. */
  poolStats(): ChannelPoolStats {
    return this.pool?.stats() ?? { channels: [], opened: 0 };
  }

  /**
   * DoGet, decoded: record batches, read incrementally as the messages arrive (the reader
   * pulls the next message only when the next batch is asked for, so a slow consumer slows the
   * server instead of filling memory). Dictionaries, including deltas, are applied by
   * apache-arrow's reader. Breaking out of the loop cancels the call.
   *
   * @example
   * for await (const batch of client.doGet(ticket)) total += batch.numRows;
   */
  doGet(target: ReadTarget, options?: CallOptions): AsyncIterable<Arrow.RecordBatch> {
    if (!isFlightInfo(target)) normalizeTicket(target);
    return this.readBatches(target, options, {});
  }

  /**
   * Reads a whole flight into a Table, keeping the batch boundaries. Given a descriptor, the
   * ticket of the first endpoint of its FlightInfo is redeemed on this client's channel
   * (a deadline given in milliseconds covers both calls).
   *
   * @example
   * const table = await client.getTable(pathDescriptor("sales", "2024"));
   * const sameThing = await client.getTable(info.endpoint[0]);
   */
  async getTable(target: ReadTarget | DescriptorInput, options?: CallOptions): Promise<Arrow.Table> {
    const arrow = loadArrow();
    const opts = absoluteDeadline(options);
    let source: ReadTarget;
    if (isDescriptorInput(target)) {
      const info = await this.getFlightInfo(target, opts);
      if (!info.endpoint.some((e) => e.ticket)) throw new FlightError(StatusCode.NOT_FOUND, "the flight's FlightInfo has no endpoint with a ticket");
      source = info;
    } else {
      source = target;
    }
    const state: { schema?: Arrow.Schema } = {};
    const batches: Arrow.RecordBatch[] = [];
    for await (const batch of this.readBatches(source, opts, state)) batches.push(batch);
    if (!state.schema) throw new FlightError(StatusCode.DATA_LOSS, "the DoGet stream carried no schema");
    return new arrow.Table(state.schema, batches);
  }

  private async *readBatches(target: ReadTarget, options: CallOptions | undefined, state: { schema?: Arrow.Schema }): AsyncGenerator<Arrow.RecordBatch> {
    checkCallOptions(options);
    // The call gets a child signal: when the consumer stops early the call is cancelled here,
    // whether or not apache-arrow passes the early return down to its source.
    const { controller, unlink } = childController(options?.signal);
    let done = false;
    try {
      const opts = { ...absoluteDeadline(options), signal: controller.signal };
      // The messages come straight from the channel and nobody else holds them, so their
      // buffers may be moved to the decoding worker.
      const decode = (messages: AsyncIterable<FlightData>): AsyncGenerator<Arrow.RecordBatch> =>
        this.decoder ? decodeDoGet(this.decoder, messages, state, { move: true, signal: controller.signal }) : decodeRecordBatches(messages, state);
      if (isFlightInfo(target)) {
        // Each endpoint is a stream of its own, with its own schema message.
        for (const ep of target.endpoint) yield* decode(this.readEndpoints({ ...target, endpoint: [ep] }, opts));
      } else {
        yield* decode(this.doGetRaw(target, opts));
      }
      done = true;
    } finally {
      unlink();
      if (!done) controller.abort();
    }
  }

  // ------------------------------------------------------------------ DoPut

  /**
   * DoPut, raw: sends `messages` (the first gets the descriptor) and gives the PutResults.
   * Messages are taken from `messages` only as fast as the channel accepts them.
   *
   * @example
   * const { results } = client.doPutRaw(pathDescriptor("raw"), messages);
   * for await (const ack of results) console.log(Buffer.from(ack.appMetadata).toString());
   */
  doPutRaw(descriptor: DescriptorInput, messages: RequestSource<FlightDataInput>, options?: CallOptions): DoPutCall {
    const d = normalizeDescriptor(descriptor);
    const path = flightServiceDefinition.doPut.path;
    const signable = { path, descriptor: pb.FlightDescriptor.encode(d).finish() };
    return { results: this.bidiStream<FlightData, PutResult>("doPut", signable, withDescriptor(d, messages), options) };
  }

  /**
   * Uploads a table: the schema (with the descriptor), then for each record batch the
   * dictionary batches it needs and the batch, encoded with the host's apache-arrow one batch
   * at a time as the channel drains. The table may come from any copy of apache-arrow.
   * `appMetadata(i)` gives the app_metadata of the i-th batch sent (a BlackIce server
   * acknowledges each one with a PutResult of the same bytes); `maxBatchRows` splits longer
   * batches. Resolves once the server ended the call, with every PutResult.
   *
   * @example
   * const { acks } = await client.putTable(pathDescriptor("sales", "2024"), table, {
   *   appMetadata: (i) => Buffer.from(`batch-${i}`),
   *   metadata: { "x-blackice-ttl": "1h" },
   * });
   */
  async putTable(descriptor: DescriptorInput, table: TableLike | RecordBatchLike | Arrow.Table | Arrow.RecordBatch, options: PutTableOptions = {}): Promise<{ acks: PutResult[] }> {
    if (!isTableLike(table) && !isRecordBatchLike(table)) throw new TypeError("putTable: expected an Arrow Table or RecordBatch (with schema.fields and batches or data)");
    const { appMetadata, maxBatchRows, ...callOptions } = options;
    checkFunction("putTable", "appMetadata", appMetadata, false, "a function of the batch index");
    const arrow = loadArrow();
    const messages = encodeTable(arrow, table, { appMetadata, maxBatchRows });
    const acks: PutResult[] = [];
    for await (const ack of this.doPutRaw(descriptor, messages, callOptions).results) acks.push(ack);
    return { acks };
  }

  /**
   * A batching put writer for one flight: `append` rows (objects, or Arrow batches and
   * tables), and they go out through DoPut in record batches of at most `maxRows` rows /
   * `maxBytes` bytes, at most `maxDelayMs` after their first row. A batch is reported
   * committed once the DoPut stream that carried it completed (see {@link BatchWriter}).
   *
   * @example
   * const writer = client.batchWriter(pathDescriptor("events"), { maxRows: 10_000, maxDelayMs: 200, onError: (f) => log(f.error) });
   * for await (const event of source) await writer.append(event);
   * await writer.close();
   */
  batchWriter(descriptor: DescriptorInput, options?: BatchWriterOptions): BatchWriter {
    return new BatchWriter(this, descriptor, options);
  }

  // ------------------------------------------------------------------ DoExchange

  /**
   * DoExchange, raw: sends `messages` (the first gets the descriptor, which names the
   * exchange on a BlackIce server) and yields what the server sends back, as it arrives.
   *
   * @example
   * for await (const m of client.doExchangeRaw(cmdDescriptor("echo"), messages)) handle(m);
   */
  doExchangeRaw(descriptor: DescriptorInput, messages: RequestSource<FlightDataInput>, options?: CallOptions): AsyncIterable<FlightData> {
    const d = normalizeDescriptor(descriptor);
    const path = flightServiceDefinition.doExchange.path;
    const signable = { path, descriptor: pb.FlightDescriptor.encode(d).finish() };
    return this.bidiStream<FlightData, FlightData>("doExchange", signable, withDescriptor(d, messages), options);
  }

  // ------------------------------------------------------------------ actions

  /**
   * DoAction: runs an action and returns all its results. A text body is sent as UTF-8.
   *
   * @example
   * const [pong] = await client.doAction("ping");
   * const stats = JSON.parse(Buffer.from((await client.doAction("stats"))[0].body).toString());
   * await client.doAction("delete", JSON.stringify({ path: ["sales", "2024"] }));
   */
  async doAction(type: string, body?: Uint8Array | string, options?: CallOptions): Promise<Result[]> {
    const out: Result[] = [];
    for await (const r of this.doActionStream(type, body, options)) out.push(r);
    return out;
  }

  /**
   * DoAction as a stream of results, for actions that return many.
   *
   * @example
   * for await (const r of client.doActionStream("gc")) console.log(Buffer.from(r.body).toString());
   */
  doActionStream(type: string, body?: Uint8Array | string, options?: CallOptions): AsyncIterable<Result> {
    // An empty type is legal on the wire (some clients send Action{} during auth); the server decides.
    if (typeof type !== "string") throw new TypeError("doAction: the action type must be a string");
    const request = pb.Action.encode({ type, body: textOrBytes(body, "doAction: body") }).finish();
    return this.serverStream<Result>("doAction", request, options);
  }

  /**
   * ListActions: the actions the server offers.
   *
   * @example
   * const names = (await client.listActions()).map((a) => a.type);
   */
  async listActions(options?: CallOptions): Promise<ActionType[]> {
    const out: ActionType[] = [];
    for await (const a of this.serverStream<ActionType>("listActions", pb.Empty.encode({}).finish(), options)) out.push(a);
    return out;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Closes the channel. Calls already running are left to finish; new calls fail with
   * FAILED_PRECONDITION. Idempotent.
   *
   * @example
   * const client = new FlightClient("127.0.0.1:8815");
   * try { await client.doAction("ping"); } finally { client.close(); }
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pool?.close();
    this.client.close();
    // Idle decoding threads go now; busy ones finish their reads (idle threads are unref'd either way).
    if (this.decoder && this.decoder.threads.stats().streams === 0) void this.decoder.threads.close();
  }
}

/**
 * Reads a call's responses. Network failures are thrown as FlightError; an early stop by the
 * consumer cancels the call. The no-op 'error' listener is there because grpc-js emits
 * 'error' on the stream itself, and one that arrives after the consumer has stopped reading
 * (the status of a call cancelled here) would otherwise be an unhandled 'error' event.
 */
async function* readAll<Res>(call: grpc.ClientReadableStream<Res> | grpc.ClientDuplexStream<unknown, Res>, signal: AbortSignal | undefined): AsyncGenerator<Res> {
  call.on("error", noop);
  const dispose = onAbort(signal, () => call.cancel());
  const iterator = call[Symbol.asyncIterator]() as AsyncIterator<Res>;
  let finished = false;
  try {
    for (;;) {
      let r: IteratorResult<Res>;
      try {
        r = await iterator.next();
      } catch (err) {
        finished = true;
        throw toFlightError(err);
      }
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    dispose();
    if (!finished) {
      call.cancel();
      void Promise.resolve(iterator.return?.()).catch(noop);
    }
  }
}
