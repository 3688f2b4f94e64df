// The client the client-side scenarios drive: the library's FlightClient when
// @blackice/flight exports it, else a stand-in.
//
// TODO(FlightClient): the stand-in (standInClient) is a thin client over the package's public
// `flightServiceDefinition` (the same codecs the server uses) and grpc-js, for as long as
// FlightClient is not exported. Delete it once it is. Where FlightClient lacks something a
// scenario needs, the adapter throws a LibraryGapError naming it (docs/conformance.md).
//
// Client middleware is the library's (`ClientMiddleware`, `cookieMiddleware` from
// @blackice/flight): FlightClient takes it as its `middleware` option; the stand-in runs it
// from a grpc-js interceptor the same way.

import * as grpc from "@grpc/grpc-js";
import * as flight from "@blackice/flight";
import {
  FlightError,
  StatusCode,
  type Action,
  type ActionType,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type HandshakeRequest,
  type HandshakeResponse,
  type PollInfo,
  type PutResult,
  type Result,
  type Ticket,
} from "@blackice/flight-core";
import type { ClientCallMiddleware, ClientMiddleware, ReceivedMetadata } from "@blackice/flight";
import { LibraryGapError } from "./scenario-names";

export { cookieMiddleware } from "@blackice/flight";
export type { ClientMiddleware } from "@blackice/flight";

/** An open DoPut: write messages, read acknowledgements as they come. */
export interface PutStream {
  write(message: FlightData): Promise<void>;
  /** The next PutResult; undefined once the server ended the call. */
  nextAck(): Promise<PutResult | undefined>;
  /** Half-closes the request side. */
  end(): void;
}

/** Extra request headers of one call. */
export type Headers = Record<string, string | Uint8Array>;

/** What the integration scenarios need from a Flight client. */
export interface ScenarioClient {
  /** Which client this is: the library's FlightClient, or the stand-in. */
  readonly implementation: ClientImplementation;
  handshake(requests: HandshakeRequest[], headers?: Headers): Promise<HandshakeResponse[]>;
  getFlightInfo(descriptor: FlightDescriptor, headers?: Headers): Promise<FlightInfo>;
  pollFlightInfo(descriptor: FlightDescriptor, headers?: Headers): Promise<PollInfo>;
  doGet(ticket: Ticket, headers?: Headers): Promise<FlightData[]>;
  /** DoPut of `descriptor` (it goes on the first message). */
  doPut(descriptor: FlightDescriptor, headers?: Headers): PutStream;
  /** DoExchange: the first message carries the descriptor naming the exchange. */
  doExchange(descriptor: FlightDescriptor, messages: FlightData[], headers?: Headers): Promise<FlightData[]>;
  doAction(action: Action, headers?: Headers): Promise<Result[]>;
  listActions(headers?: Headers): Promise<ActionType[]>;
  /** A client for another endpoint location (`grpc+tcp://host:port`), with the same middleware. */
  forLocation(uri: string): ScenarioClient;
  close(): void;
}

function toMap(md: grpc.Metadata): ReceivedMetadata {
  const out = new Map<string, Array<string | Uint8Array>>();
  for (const k of Object.keys(md.getMap())) out.set(k.toLowerCase(), md.get(k) as Array<string | Uint8Array>);
  return out;
}

/** Turns a grpc-js error into a FlightError carrying the status code. */
function flightErrorOf(err: unknown): FlightError {
  const e = err as { code?: number; details?: string; message?: string };
  if (typeof e?.code === "number") return new FlightError(e.code as StatusCode, e.details ?? e.message ?? "");
  return FlightError.from(err);
}

const Constructor = grpc.makeGenericClientConstructor(flight.flightServiceDefinition, "FlightService");
type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** Parses `grpc+tcp://host:port` (or `grpc://`); returns `host:port`. */
export function addressOf(uri: string): string {
  const m = /^grpc(?:\+tcp)?:\/\/(.+)$/.exec(uri);
  if (!m) throw new Error(`unsupported location ${JSON.stringify(uri)} (only grpc+tcp:// is used by the integration peers)`);
  return m[1].replace(/\/$/, "");
}

export type ClientImplementation = "FlightClient" | "stand-in";

/** The library's FlightClient, when @blackice/flight exports it. */
function libraryFlightClient(): FlightClientConstructor | undefined {
  return (flight as Record<string, unknown>).FlightClient as FlightClientConstructor | undefined;
}

/** Which client `connect` uses. */
export function clientImplementation(): ClientImplementation {
  return libraryFlightClient() ? "FlightClient" : "stand-in";
}

/** Connects to `host:port` with the given middleware: FlightClient when exported, else the stand-in. */
export function connect(address: string, middleware: ClientMiddleware[] = []): ScenarioClient {
  const FC = libraryFlightClient();
  return FC ? flightClientAdapter(FC, address, middleware) : standInClient(address, middleware);
}

// ------------------------------------------------------------------ over FlightClient

/** The part of @blackice/flight's FlightClient the scenarios use. */
interface FlightClientLike {
  handshake(requests: Iterable<Partial<HandshakeRequest>>, options?: { metadata?: Headers }): Promise<HandshakeResponse[]>;
  getFlightInfo(descriptor: Partial<FlightDescriptor>, options?: { metadata?: Headers }): Promise<FlightInfo>;
  pollFlightInfo(descriptor: Partial<FlightDescriptor>, options?: { metadata?: Headers }): Promise<PollInfo>;
  doGetRaw(ticket: Ticket, options?: { metadata?: Headers }): AsyncIterable<FlightData>;
  doPutRaw(descriptor: Partial<FlightDescriptor>, messages: AsyncIterable<Partial<FlightData>>, options?: { metadata?: Headers }): { results: AsyncIterable<PutResult> };
  doExchangeRaw(descriptor: Partial<FlightDescriptor>, messages: Iterable<Partial<FlightData>>, options?: { metadata?: Headers }): AsyncIterable<FlightData>;
  doAction(type: string, body?: Uint8Array, options?: { metadata?: Headers }): Promise<Result[]>;
  listActions(options?: { metadata?: Headers }): Promise<ActionType[]>;
  close(): void;
}
export type FlightClientConstructor = new (location: string, options?: Record<string, unknown>) => FlightClientLike;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/**
 * The scenarios' client over FlightClient. Client middleware goes in FlightClient's
 * `middleware` option; a FlightClient without it makes the scenarios that need it
 * (middleware, session_options) a library gap.
 */
export function flightClientAdapter(FC: FlightClientConstructor, address: string, middleware: ClientMiddleware[] = []): ScenarioClient {
  let client: FlightClientLike;
  try {
    client = new FC(`grpc+tcp://${address}`, middleware.length > 0 ? { middleware } : {});
  } catch (err) {
    if (middleware.length > 0 && err instanceof TypeError && /middleware/.test(err.message)) {
      throw new LibraryGapError(
        `FlightClient has no client middleware option (${err.message}): the middleware scenario adds x-middleware to every call and reads it ` +
          "from the response headers of failing and passing calls; session_options keeps the arrow_flight_session_id cookie from set-cookie " +
          "(headers or trailers) and sends it back",
      );
    }
    throw err;
  }
  const o = (headers?: Headers): { metadata?: Headers } | undefined => (headers ? { metadata: headers } : undefined);
  return {
    implementation: "FlightClient",
    handshake: (requests, h) => client.handshake(requests, o(h)),
    getFlightInfo: (d, h) => client.getFlightInfo(d, o(h)),
    pollFlightInfo: (d, h) => client.pollFlightInfo(d, o(h)),
    doGet: (t, h) => collect(client.doGetRaw(t, o(h))),
    doExchange: (d, messages, h) => collect(client.doExchangeRaw(d, messages, o(h))),
    async doAction(a, h) {
      try {
        return await client.doAction(a.type, a.body, o(h));
      } catch (err) {
        if (a.type === "" && err instanceof TypeError) {
          throw new LibraryGapError(`FlightClient.doAction refuses an empty action type (${err.message}); arrow-go's auth:basic_proto sends Action{} with type ""`);
        }
        throw err;
      }
    },
    listActions: (h) => client.listActions(o(h)),
    doPut(descriptor, h) {
      // Messages are handed to FlightClient through a queue, so that the scenario can wait for
      // each acknowledgement before it writes the next batch.
      const queue: FlightData[] = [];
      let closed = false;
      let wake: (() => void) | undefined;
      async function* source(): AsyncGenerator<FlightData> {
        for (;;) {
          if (queue.length > 0) yield queue.shift()!;
          else if (closed) return;
          else await new Promise<void>((r) => (wake = r));
        }
      }
      const results = client.doPutRaw(descriptor, source(), o(h)).results[Symbol.asyncIterator]();
      const poke = (): void => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      return {
        write: async (m) => {
          queue.push(m);
          poke();
        },
        nextAck: async () => {
          const r = await results.next();
          return r.done ? undefined : r.value;
        },
        end: () => {
          closed = true;
          poke();
        },
      };
    },
    forLocation: (uri) => flightClientAdapter(FC, addressOf(uri), middleware),
    close: () => client.close(),
  };
}

// ------------------------------------------------------------------ the stand-in

/** TODO(FlightClient): delete once FlightClient is exported. A client over grpc-js and the package's service definition. */
export function standInClient(address: string, middleware: ClientMiddleware[] = []): ScenarioClient {
  // The library's middleware, run as FlightClient runs it: started in order, told of headers
  // (the trailers of a trailers-only answer) and completion in reverse order.
  const interceptor: grpc.Interceptor = (options, nextCall) => {
    const path = String(options.method_definition.path);
    const name = path.split("/").pop() ?? "";
    const method = (name.charAt(0).toLowerCase() + name.slice(1)) as Parameters<ClientMiddleware["startCall"]>[0]["method"];
    const calls: ClientCallMiddleware[] = [];
    let gotHeaders = false;
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        for (const m of middleware) {
          const call = m.startCall({ method, path });
          if (!call) continue;
          calls.push(call);
          for (const [k, v] of Object.entries(call.sendingHeaders?.() ?? {})) {
            for (const one of Array.isArray(v) ? v : [v]) metadata.add(k, typeof one === "string" ? one : Buffer.from(one));
          }
        }
        const reversed = [...calls].reverse();
        next(metadata, {
          onReceiveMetadata(md, nextMd) {
            gotHeaders = true;
            const map = toMap(md);
            for (const c of reversed) c.receivedHeaders?.(map);
            nextMd(md);
          },
          onReceiveStatus(status, nextStatus) {
            const trailers = toMap(status.metadata);
            if (!gotHeaders) for (const c of reversed) c.receivedHeaders?.(trailers);
            for (const c of reversed) c.callCompleted?.({ code: status.code as number as StatusCode, details: status.details, trailers });
            nextStatus(status);
          },
        });
      },
    });
  };
  const raw = new Constructor(address, grpc.credentials.createInsecure(), { interceptors: [interceptor] }) as unknown as RawClient;

  const md = (headers?: Headers): grpc.Metadata => {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers ?? {})) m.add(k, typeof v === "string" ? v : Buffer.from(v));
    return m;
  };
  const unary = <T>(method: string, request: unknown, headers?: Headers): Promise<T> =>
    new Promise((resolve, reject) => raw[method](request, md(headers), (err: unknown, res: T) => (err ? reject(flightErrorOf(err)) : resolve(res))));
  const serverStream = async <T>(method: string, request: unknown, headers?: Headers): Promise<T[]> => {
    const call = raw[method](request, md(headers)) as grpc.ClientReadableStream<T>;
    const out: T[] = [];
    try {
      for await (const m of call) out.push(m as T);
    } catch (err) {
      throw flightErrorOf(err);
    }
    return out;
  };
  const bidi = async <T>(method: string, requests: unknown[], headers?: Headers): Promise<T[]> => {
    const call = raw[method](md(headers)) as grpc.ClientDuplexStream<unknown, T>;
    for (const r of requests) call.write(r);
    call.end();
    const out: T[] = [];
    try {
      for await (const m of call) out.push(m as T);
    } catch (err) {
      throw flightErrorOf(err);
    }
    return out;
  };

  const first = (d: FlightDescriptor, m: FlightData, i: number): FlightData => (i === 0 ? { ...m, flightDescriptor: d } : m);
  return {
    implementation: "stand-in",
    handshake: (requests, h) => bidi<HandshakeResponse>("handshake", requests, h),
    getFlightInfo: (d, h) => unary<FlightInfo>("getFlightInfo", d, h),
    pollFlightInfo: (d, h) => unary<PollInfo>("pollFlightInfo", d, h),
    doGet: (t, h) => serverStream<FlightData>("doGet", t, h),
    doExchange: (d, messages, h) => bidi<FlightData>("doExchange", messages.map((m, i) => first(d, m, i)), h),
    doAction: (a, h) => serverStream<Result>("doAction", a, h),
    listActions: (h) => serverStream<ActionType>("listActions", {}, h),
    doPut(descriptor, h) {
      const call = raw.doPut(md(h)) as grpc.ClientDuplexStream<FlightData, PutResult>;
      let written = 0;
      const acks: PutResult[] = [];
      const waiters: Array<{ resolve: (r: PutResult | undefined) => void; reject: (e: unknown) => void }> = [];
      let ended = false;
      let failure: FlightError | undefined;
      const settle = (): void => {
        while (waiters.length > 0 && (acks.length > 0 || ended || failure)) {
          const w = waiters.shift()!;
          if (acks.length > 0) w.resolve(acks.shift());
          else if (failure) w.reject(failure);
          else w.resolve(undefined);
        }
      };
      call.on("data", (r: PutResult) => {
        acks.push(r);
        settle();
      });
      call.on("end", () => {
        ended = true;
        settle();
      });
      call.on("error", (err) => {
        failure = flightErrorOf(err);
        settle();
      });
      return {
        write: (m) =>
          new Promise<void>((resolve, reject) => {
            if (failure) return reject(failure);
            call.write(first(descriptor, m, written++), (err: unknown) => (err ? reject(flightErrorOf(err)) : resolve()));
          }),
        nextAck: () => new Promise((resolve, reject) => {
          waiters.push({ resolve, reject });
          settle();
        }),
        end: () => call.end(),
      };
    },
    forLocation: (uri) => standInClient(addressOf(uri), middleware),
    close: () => raw.close(),
  };
}
