// The client the client-side scenarios drive.
//
// TODO(FlightClient): @blackice/flight's FlightClient is being written. Until it is exported,
// this is a thin stand-in over the package's public `flightServiceDefinition` (the same
// codecs the server uses) and grpc-js. Every capability below is one the library's
// FlightClient needs for the integration suite; when FlightClient lands, `connect()` should
// return an adapter over it and this transport code goes away. See docs/conformance.md.

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

/** Request and response metadata: lower-case names; `-bin` names carry bytes. */
export type Metadata = Map<string, Array<string | Uint8Array>>;

/** A client middleware: adds request headers, sees response headers and trailers (also of failed calls). */
export interface ClientMiddleware {
  /** Headers to add to a call. */
  outgoing?(method: string): Record<string, string | Uint8Array> | undefined;
  /** The response headers, when they arrive. */
  headers?(method: string, md: Metadata): void;
  /** The trailers, with the call's final status code. */
  trailers?(method: string, md: Metadata, code: number): void;
}

/** An open DoPut: write messages, read acknowledgements as they come. */
export interface PutStream {
  write(message: FlightData): Promise<void>;
  /** The next PutResult; undefined once the server ended the call. */
  nextAck(): Promise<PutResult | undefined>;
  /** Half-closes the request side. */
  end(): void;
}

/** What the integration scenarios need from a Flight client. */
export interface ScenarioClient {
  handshake(requests: HandshakeRequest[]): Promise<HandshakeResponse[]>;
  getFlightInfo(descriptor: FlightDescriptor): Promise<FlightInfo>;
  pollFlightInfo(descriptor: FlightDescriptor): Promise<PollInfo>;
  doGet(ticket: Ticket): Promise<FlightData[]>;
  doPut(): PutStream;
  doExchange(messages: FlightData[]): Promise<FlightData[]>;
  doAction(action: Action): Promise<Result[]>;
  listActions(): Promise<ActionType[]>;
  /** A client for another endpoint location (`grpc+tcp://host:port`), with the same middleware. */
  forLocation(uri: string): ScenarioClient;
  close(): void;
}

/** Cookies as a client middleware: stores `set-cookie` from headers and trailers, sends them back. */
export function cookieMiddleware(): ClientMiddleware {
  const jar = new Map<string, string>();
  const take = (md: Metadata): void => {
    for (const raw of md.get("set-cookie") ?? []) {
      const text = typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8");
      const [pair, ...attrs] = text.split(";").map((s) => s.trim());
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq);
      const expired = attrs.some((a) => /^max-age=\s*(-\d+|0)$/i.test(a)) || attrs.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now());
      if (expired) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1));
    }
  };
  return {
    outgoing: () => (jar.size > 0 ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") } : undefined),
    headers: (_m, md) => take(md),
    trailers: (_m, md) => take(md),
  };
}

function toMap(md: grpc.Metadata): Metadata {
  const out: Metadata = new Map();
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

/** Connects to `host:port` with the given middleware. */
export function connect(address: string, middleware: ClientMiddleware[] = []): ScenarioClient {
  const interceptor: grpc.Interceptor = (options, nextCall) => {
    const method = String(options.method_definition.path).split("/").pop() ?? "";
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        for (const m of middleware) {
          for (const [k, v] of Object.entries(m.outgoing?.(method) ?? {})) metadata.add(k, typeof v === "string" ? v : Buffer.from(v));
        }
        next(metadata, {
          onReceiveMetadata(md, nextMd) {
            const map = toMap(md);
            for (const m of middleware) m.headers?.(method, map);
            nextMd(md);
          },
          onReceiveStatus(status, nextStatus) {
            const map = toMap(status.metadata);
            for (const m of middleware) m.trailers?.(method, map, status.code);
            nextStatus(status);
          },
        });
      },
    });
  };
  const raw = new Constructor(address, grpc.credentials.createInsecure(), { interceptors: [interceptor] }) as unknown as RawClient;

  const unary = <T>(method: string, request: unknown): Promise<T> =>
    new Promise((resolve, reject) => raw[method](request, (err: unknown, res: T) => (err ? reject(flightErrorOf(err)) : resolve(res))));
  const serverStream = async <T>(method: string, request: unknown): Promise<T[]> => {
    const call = raw[method](request) as grpc.ClientReadableStream<T>;
    const out: T[] = [];
    try {
      for await (const m of call) out.push(m as T);
    } catch (err) {
      throw flightErrorOf(err);
    }
    return out;
  };
  const bidi = async <T>(method: string, requests: unknown[]): Promise<T[]> => {
    const call = raw[method]() as grpc.ClientDuplexStream<unknown, T>;
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

  return {
    handshake: (requests) => bidi<HandshakeResponse>("handshake", requests),
    getFlightInfo: (d) => unary<FlightInfo>("getFlightInfo", d),
    pollFlightInfo: (d) => unary<PollInfo>("pollFlightInfo", d),
    doGet: (t) => serverStream<FlightData>("doGet", t),
    doExchange: (messages) => bidi<FlightData>("doExchange", messages),
    doAction: (a) => serverStream<Result>("doAction", a),
    listActions: () => serverStream<ActionType>("listActions", {}),
    doPut() {
      const call = raw.doPut() as grpc.ClientDuplexStream<FlightData, PutResult>;
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
            call.write(m, (err: unknown) => (err ? reject(flightErrorOf(err)) : resolve()));
          }),
        nextAck: () => new Promise((resolve, reject) => {
          waiters.push({ resolve, reject });
          settle();
        }),
        end: () => call.end(),
      };
    },
    forLocation: (uri) => connect(addressOf(uri), middleware),
    close: () => raw.close(),
  };
}
