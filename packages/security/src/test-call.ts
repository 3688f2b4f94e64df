// Test helper (excluded from the build): hand-made FlightCalls and a fake terminal handler.
import {
  CallContext,
  MemoryStore,
  composeMiddleware,
  splitServerParts,
  type FlightCall,
  type FlightData,
  type FlightHandler,
  type FlightInfo,
  type FlightMethod,
  type FlightMiddleware,
  type FlightRequests,
  type FlightResponse,
  type FlightStore,
  type ServerPart,
} from "@blackice/flight-core";

export const METHOD_PATHS: Record<FlightMethod, string> = {
  handshake: "/arrow.flight.protocol.FlightService/Handshake",
  listFlights: "/arrow.flight.protocol.FlightService/ListFlights",
  getFlightInfo: "/arrow.flight.protocol.FlightService/GetFlightInfo",
  pollFlightInfo: "/arrow.flight.protocol.FlightService/PollFlightInfo",
  getSchema: "/arrow.flight.protocol.FlightService/GetSchema",
  doGet: "/arrow.flight.protocol.FlightService/DoGet",
  doPut: "/arrow.flight.protocol.FlightService/DoPut",
  doExchange: "/arrow.flight.protocol.FlightService/DoExchange",
  doAction: "/arrow.flight.protocol.FlightService/DoAction",
  listActions: "/arrow.flight.protocol.FlightService/ListActions",
};

export type HeaderInit = Record<string, string | Uint8Array | Array<string | Uint8Array>>;

/** The store of calls that need none in particular (no background GC, so nothing to close). */
const idleStore = new MemoryStore({ enableGC: false });

export function makeCall<M extends FlightMethod>(
  method: M,
  request: FlightRequests[M],
  options: { headers?: HeaderInit; rawRequest?: Uint8Array; context?: CallContext; store?: FlightStore } = {},
): FlightCall<M> {
  const headers = new Map<string, Array<string | Uint8Array>>();
  for (const [k, v] of Object.entries(options.headers ?? {})) headers.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
  return {
    method,
    request,
    context: options.context ?? new CallContext(),
    headers,
    responseHeaders: new Map<string, string>(),
    signal: new AbortController().signal,
    peer: "127.0.0.1:50000",
    path: METHOD_PATHS[method],
    deadline: undefined,
    rawRequest: options.rawRequest,
    store: options.store ?? idleStore,
  } as unknown as FlightCall<M>;
}

export async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export function flightInfo(path: string[], appMetadata: Uint8Array = new Uint8Array(0)): FlightInfo {
  return {
    schema: new Uint8Array(0),
    flightDescriptor: { type: 1, cmd: new Uint8Array(0), path },
    endpoint: [],
    totalRecords: -1,
    totalBytes: -1,
    ordered: false,
    appMetadata,
  };
}

/** A fake terminal handler that records whether it ran and what it received. */
export function fakeTerminal(options: { listed?: FlightInfo[]; info?: FlightInfo } = {}) {
  const state = { handlerExecuted: false, calls: [] as FlightCall[], received: [] as FlightData[] };
  const handler: FlightHandler = async function fakeHandler(call) {
    state.handlerExecuted = true;
    state.calls.push(call);
    switch (call.method) {
      case "doPut":
      case "doExchange": {
        for await (const m of call.request) state.received.push(m);
        return fromArray([]) as FlightResponse;
      }
      case "handshake":
        return (async function* () {
          for await (const r of call.request) yield { protocolVersion: r.protocolVersion, payload: Buffer.from("next") };
        })();
      case "listFlights":
        return fromArray(options.listed ?? []);
      case "getFlightInfo":
        return options.info ?? flightInfo(call.request.path);
      case "pollFlightInfo":
        return { info: options.info ?? flightInfo(call.request.path), flightDescriptor: undefined, progress: 1, expirationTime: undefined };
      case "getSchema":
        return { schema: new Uint8Array(0) };
      case "doAction":
        return fromArray([{ body: Buffer.from("ok") }]);
      default:
        return fromArray([]) as FlightResponse;
    }
  };
  return { handler, state };
}

/** The middleware of some server parts, composed around a handler. */
export function compose(parts: ServerPart | ServerPart[], handler: FlightHandler): FlightHandler {
  const { middleware } = splitServerParts(Array.isArray(parts) ? parts : [parts]);
  return composeMiddleware(middleware as FlightMiddleware[], handler);
}
