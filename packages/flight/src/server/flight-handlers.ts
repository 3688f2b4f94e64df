import {
  serverParts,
  splitIpcStream,
  type Criteria,
  type FlightCall,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type FlightMiddleware,
  type ServerParts,
  checkFunction,
  checkObject,
  checkOptions,
} from "@blackice/flight-core";
import { encapsulateMessage } from "./ipc-encapsulate";

/**
 * What a DoGet handler may return: FlightData messages (schema first), or a whole Arrow IPC
 * stream (`tableToIPC(table, "stream")` of apache-arrow, or bytes from a file), which is cut
 * into one FlightData per IPC message without decoding it.
 */
export type FlightDataSource = AsyncIterable<FlightData> | Iterable<FlightData> | Uint8Array;

/** What a ListFlights handler may return. */
export type FlightInfoSource = AsyncIterable<FlightInfo> | Iterable<FlightInfo>;

/**
 * Handlers over your own data, one per Flight method, as `pyarrow.flight.FlightServerBase`'s
 * `list_flights`, `get_flight_info`, `get_schema` and `do_get`. Each gets the request and the
 * call (headers, identity in `call.context`, `call.signal`, `call.store`). Returning
 * `undefined` passes the call on down the chain, to the server's store: so a handler can serve
 * some descriptors or tickets and leave the rest to the store. A method without a handler
 * always goes to the store.
 */
export interface FlightHandlers {
  /** ListFlights: the flights to list for these criteria (`criteria.expression` is raw bytes). */
  listFlights?: (criteria: Criteria, call: FlightCall<"listFlights">) => FlightInfoSource | undefined | Promise<FlightInfoSource | undefined>;
  /** GetFlightInfo (and PollFlightInfo, answered as complete): the flight's info, see {@link describeFlight}. */
  getFlightInfo?: (descriptor: FlightDescriptor, call: FlightCall<"getFlightInfo" | "pollFlightInfo">) => FlightInfo | undefined | Promise<FlightInfo | undefined>;
  /**
   * GetSchema: the schema as an Arrow IPC stream (its first message is the schema). Without
   * this handler, GetSchema is answered from `getFlightInfo`'s schema when that handler answers.
   */
  getSchema?: (descriptor: FlightDescriptor, call: FlightCall<"getSchema">) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** DoGet: the data of a ticket your `getFlightInfo` or `listFlights` handed out. */
  doGet?: (ticket: Uint8Array, call: FlightCall<"doGet">) => FlightDataSource | undefined | Promise<FlightDataSource | undefined>;
}

const HANDLER_NAMES = ["listFlights", "getFlightInfo", "getSchema", "doGet"] as const;
const EMPTY = new Uint8Array(0);

/**
 * Serves Flight methods from your own data source, beside (or instead of) the server's store:
 * the first-class way to write the DoGet, GetFlightInfo and ListFlights handlers that users of
 * pyarrow's `FlightServerBase` expect (see docs/serving-your-own-data.md). It is a middleware,
 * so put authentication and `authorize(...)` before it to guard it like the store.
 *
 * Errors a handler throws reach the client as they would from the store: a `FlightError`
 * keeps its code (throw `notFound(...)` for a missing flight), anything else becomes INTERNAL.
 *
 * @throws TypeError when `handlers` is not an object of functions named after the methods above.
 *
 * @example
 * const tables = new Map([["prices", tableFromArrays({ price: Float64Array.from([1.5, 2.5]) })]]);
 * createFlightServer(
 *   flightHandlers({
 *     listFlights: () => [...tables].map(([name, t]) => describeFlight({ descriptor: pathDescriptor(name), schema: tableToIPC(t), ticket: name, totalRecords: t.numRows })),
 *     getFlightInfo: (d) => { const t = tables.get(d.path[0] ?? ""); return t && describeFlight({ descriptor: d, schema: tableToIPC(t), ticket: d.path[0]!, totalRecords: t.numRows }); },
 *     doGet: (ticket) => { const t = tables.get(Buffer.from(ticket).toString()); return t && tableToIPC(t, "stream"); },
 *   }),
 * );
 */
export function flightHandlers(handlers: FlightHandlers): ServerParts {
  checkOptions("flightHandlers", handlers, HANDLER_NAMES, true, "handlers");
  for (const [name, handler] of Object.entries(handlers)) checkFunction("flightHandlers", name, handler);
  const h = { ...handlers };
  const middleware: FlightMiddleware = (next) =>
    async function serveOwnData(call: FlightCall) {
      switch (call.method) {
        case "listFlights": {
          if (!h.listFlights) return next(call);
          const infos = await h.listFlights(call.request, call);
          return infos === undefined ? next(call) : toAsync(infos);
        }
        case "getFlightInfo": {
          if (!h.getFlightInfo) return next(call);
          return (await h.getFlightInfo(call.request, call)) ?? next(call);
        }
        case "pollFlightInfo": {
          if (!h.getFlightInfo) return next(call);
          const info = await h.getFlightInfo(call.request, call);
          return info === undefined ? next(call) : { info, flightDescriptor: undefined, progress: 1, expirationTime: undefined };
        }
        case "getSchema": {
          if (h.getSchema) {
            const ipc = await h.getSchema(call.request, call);
            return ipc === undefined ? next(call) : { schema: schemaMessageOf(ipc, "getSchema") };
          }
          if (!h.getFlightInfo) return next(call);
          const info = await h.getFlightInfo(call.request, { ...call, method: "getFlightInfo" } as FlightCall<"getFlightInfo">);
          return info === undefined ? next(call) : { schema: info.schema };
        }
        case "doGet": {
          if (!h.doGet) return next(call);
          const data = await h.doGet(call.request.ticket, call);
          return data === undefined ? next(call) : flightDataOf(data);
        }
        default:
          return next(call);
      }
    };
  return serverParts(middleware);
}

/** What {@link describeFlight} needs to describe one flight. */
export interface FlightDescription {
  descriptor: FlightDescriptor;
  /** The flight's schema as an Arrow IPC stream (`tableToIPC(table)`; only its first message, the schema, is used). */
  schema: Uint8Array;
  /** The ticket DoGet will receive (text is sent as UTF-8). */
  ticket: Uint8Array | string;
  /** -1 (the default) when unknown. */
  totalRecords?: number;
  /** -1 (the default) when unknown. */
  totalBytes?: number;
  /** Where to fetch it; default none, meaning "this server" to Flight clients. */
  locations?: readonly string[];
  appMetadata?: Uint8Array;
}

/**
 * A FlightInfo with one endpoint, for a {@link flightHandlers} handler to return: the schema
 * is taken from an Arrow IPC stream and encapsulated as Flight clients expect.
 *
 * @throws TypeError when `schema` does not start with an IPC message.
 *
 * @example
 * describeFlight({ descriptor: pathDescriptor("prices"), schema: tableToIPC(table), ticket: "prices", totalRecords: table.numRows });
 */
export function describeFlight(d: FlightDescription): FlightInfo {
  checkObject("describeFlight", "description", d);
  if (typeof d.ticket !== "string" && !(d.ticket instanceof Uint8Array)) throw new TypeError("describeFlight: ticket must be a string or a Uint8Array");
  return {
    schema: schemaMessageOf(d.schema, "describeFlight"),
    flightDescriptor: d.descriptor,
    endpoint: [
      {
        ticket: { ticket: typeof d.ticket === "string" ? Buffer.from(d.ticket, "utf8") : d.ticket },
        location: (d.locations ?? []).map((uri) => ({ uri })),
        expirationTime: undefined,
        appMetadata: EMPTY,
      },
    ],
    totalRecords: d.totalRecords ?? -1,
    totalBytes: d.totalBytes ?? -1,
    ordered: false,
    appMetadata: d.appMetadata ?? EMPTY,
  };
}

/** The encapsulated schema message (FlightInfo.schema, SchemaResult.schema) of an IPC stream. */
function schemaMessageOf(ipc: Uint8Array, where: string): Uint8Array {
  if (!(ipc instanceof Uint8Array)) throw new TypeError(`${where}: schema must be an Arrow IPC stream (Uint8Array)`);
  let first;
  try {
    [first] = splitIpcStream(ipc, { maxMessages: 1 });
  } catch (err) {
    throw new TypeError(`${where}: schema is not an Arrow IPC stream (${(err as Error).message})`);
  }
  if (!first) throw new TypeError(`${where}: schema is an empty Arrow IPC stream`);
  return encapsulateMessage(first.header);
}

function flightDataOf(data: FlightDataSource): AsyncIterable<FlightData> {
  if (data instanceof Uint8Array) {
    let messages;
    try {
      // Framing only: the messages' headers and bodies are views of the bytes given.
      messages = splitIpcStream(data);
    } catch (err) {
      // A bug of the handler, not of the caller: INTERNAL with a generic message, this text to onError.
      throw new Error(`flightHandlers: the doGet handler returned bytes that are not an Arrow IPC stream: ${(err as Error).message}`);
    }
    return toAsync(messages.map((m) => ({ flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: EMPTY })));
  }
  return toAsync(data);
}

async function* toAsync<T>(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
  yield* items;
}
