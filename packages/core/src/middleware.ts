import type { CallContext } from "./context";
import type {
  Action,
  ActionType,
  Criteria,
  Empty,
  FlightData,
  FlightDescriptor,
  FlightInfo,
  HandshakeRequest,
  HandshakeResponse,
  PollInfo,
  PutResult,
  Result,
  SchemaResult,
  Ticket,
} from "./flight-types";
import type { FlightStore } from "./store/flight-store";
import { splitServerParts, type ServerPart } from "./server-parts";

/** The ten Flight RPCs, as they are told apart in a {@link FlightCall}. */
export type FlightMethod =
  | "handshake"
  | "listFlights"
  | "getFlightInfo"
  | "pollFlightInfo"
  | "getSchema"
  | "doGet"
  | "doPut"
  | "doExchange"
  | "doAction"
  | "listActions";

/** All methods, in protocol order. */
export const FLIGHT_METHODS: readonly FlightMethod[] = [
  "handshake",
  "listFlights",
  "getFlightInfo",
  "pollFlightInfo",
  "getSchema",
  "doGet",
  "doPut",
  "doExchange",
  "doAction",
  "listActions",
];

/** The methods whose request type (`FlightRequests`) is an AsyncIterable. */
type StreamingRequestMethod = { [K in FlightMethod]: FlightRequests[K] extends AsyncIterable<unknown> ? K : never }[FlightMethod];
/** The methods whose response type (`FlightResponses`) is an AsyncIterable. */
type StreamingResponseMethod = { [K in FlightMethod]: FlightResponses[K] extends AsyncIterable<unknown> ? K : never }[FlightMethod];
/** Compiles only when the list names exactly the methods of `M`. */
type Exactly<L extends readonly M[], M extends string> = [M] extends [L[number]] ? L : never;

const STREAMING_REQUEST_LIST = ["handshake", "doPut", "doExchange"] as const;
const STREAMING_RESPONSE_LIST = ["handshake", "listFlights", "doGet", "doPut", "doExchange", "doAction", "listActions"] as const;

/**
 * Methods whose request is an AsyncIterable (client streaming); the others receive one
 * message. Checked against {@link FlightRequests} when compiled.
 */
export const STREAMING_REQUEST_METHODS: ReadonlySet<FlightMethod> = new Set<FlightMethod>(STREAMING_REQUEST_LIST satisfies Exactly<typeof STREAMING_REQUEST_LIST, StreamingRequestMethod>);

/**
 * Methods whose response is an AsyncIterable (server streaming); the others return one
 * message. Checked against {@link FlightResponses} when compiled.
 */
export const STREAMING_RESPONSE_METHODS: ReadonlySet<FlightMethod> = new Set<FlightMethod>(STREAMING_RESPONSE_LIST satisfies Exactly<typeof STREAMING_RESPONSE_LIST, StreamingResponseMethod>);

/** What each method receives. Client-streaming methods receive an AsyncIterable. */
export interface FlightRequests {
  handshake: AsyncIterable<HandshakeRequest>;
  listFlights: Criteria;
  getFlightInfo: FlightDescriptor;
  pollFlightInfo: FlightDescriptor;
  getSchema: FlightDescriptor;
  doGet: Ticket;
  doPut: AsyncIterable<FlightData>;
  doExchange: AsyncIterable<FlightData>;
  doAction: Action;
  listActions: Empty;
}

/** What each method returns. Server-streaming methods return an AsyncIterable. */
export interface FlightResponses {
  handshake: AsyncIterable<HandshakeResponse>;
  listFlights: AsyncIterable<FlightInfo>;
  getFlightInfo: FlightInfo;
  pollFlightInfo: PollInfo;
  getSchema: SchemaResult;
  doGet: AsyncIterable<FlightData>;
  doPut: AsyncIterable<PutResult>;
  doExchange: AsyncIterable<FlightData>;
  doAction: AsyncIterable<Result>;
  listActions: AsyncIterable<ActionType>;
}

/** Request metadata: lower-case names; `-bin` names carry bytes. */
export type CallHeaders = ReadonlyMap<string, ReadonlyArray<string | Uint8Array>>;

/** What every call carries besides its request. */
export interface CallInfo {
  /** Typed per-call values (identity, session, logger...). */
  readonly context: CallContext;
  /** Request metadata, names lower-cased. */
  readonly headers: CallHeaders;
  /** Response headers to send with the first response (set by middleware or handler). */
  readonly responseHeaders: Map<string, string>;
  /** Aborted when the client cancels, the deadline passes or the server shuts down. */
  readonly signal: AbortSignal;
  /** The client's address, `ip:port`. */
  readonly peer: string;
  /** The gRPC path, `/arrow.flight.protocol.FlightService/DoGet`. */
  readonly path: string;
  /** The client's deadline as epoch milliseconds, if it set one. */
  readonly deadline: number | undefined;
  /** The serialized request of a unary or server-streaming call, as received. */
  readonly rawRequest: Uint8Array | undefined;
  /** The client's certificate, when the call came over mutual TLS. */
  readonly peerCertificate?: PeerCertificateInfo;
  /**
   * The store the server serves from (after `wrapStore` wrappers): how middleware and actions
   * reach flights, instead of being handed a store when they are made.
   */
  readonly store: FlightStore;
}

/** What a call carries of the client certificate it was made with (mutual TLS). */
export interface PeerCertificateInfo {
  /** The subject's common name, or "" when it has none. */
  readonly subjectCN: string;
  /** SHA-256 fingerprint, colon-separated upper-case hex as Node prints it. */
  readonly fingerprint256: string;
  /** The certificate, DER-encoded. */
  readonly raw: Uint8Array;
}

/** One call, told apart by its literal `method` field. */
export type FlightCall<M extends FlightMethod = FlightMethod> = {
  [K in M]: CallInfo & { readonly method: K; readonly request: FlightRequests[K] };
}[M];

/** The response of a call of method M. */
export type FlightResponse<M extends FlightMethod = FlightMethod> = FlightResponses[M];

/**
 * Serves one call. Async only: a server-streaming response is an AsyncIterable that the
 * binding pulls from with backpressure.
 */
export type FlightHandler = (call: FlightCall) => Promise<FlightResponse>;

/**
 * The one extension point. A middleware wraps the next handler; `createFlightServer(a, b, c)`
 * makes `a` the outermost. A middleware that needs every streamed message wraps the
 * iterable in an `async function*`.
 *
 * @example
 * const logCalls: FlightMiddleware = (next) => async function logCalls(call) {
 *   const started = Date.now();
 *   try { return await next(call); }
 *   finally { console.log(call.method, Date.now() - started, "ms"); }
 * };
 */
export type FlightMiddleware = (next: FlightHandler) => FlightHandler;

/**
 * Composes middleware around a handler; the first middleware is the outermost. Takes server
 * parts as `createFlightServer` does (a factory's {@link ServerParts} too) and uses their
 * middleware; settings among them are skipped, as they configure a server, not a call.
 *
 * @example
 * const handler = composeMiddleware([authorize(policy), callLogger({ logger })], storeHandler);
 */
export function composeMiddleware(middlewares: readonly ServerPart[], handler: FlightHandler): FlightHandler {
  const { middleware } = splitServerParts(middlewares);
  let h = handler;
  for (let i = middleware.length - 1; i >= 0; i--) h = middleware[i](h);
  return h;
}
