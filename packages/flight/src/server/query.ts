import {
  FlightError,
  StatusCode,
  encodeQueryTicket,
  isQueryTicket,
  parseQueryCommand,
  parseQueryTicket,
  projectIpcSchema,
  type FlightCall,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type FlightMiddleware,
  type PollInfo,
  type QueryCommand,
  type SchemaResult,
  serverParts,
  type ServerParts,
} from "@blackice/flight-core";
import { encapsulateMessage } from "./ipc-encapsulate";

const EMPTY = new Uint8Array(0);

/**
 * The header inside an encapsulated IPC message (FlightInfo.schema, SchemaResult.schema):
 * continuation marker, int32 length, header. Refuses anything else with DATA_LOSS, since the
 * bytes come from the server's own store.
 */
function decapsulate(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || view.getUint32(0, true) !== 0xffffffff) throw new FlightError(StatusCode.DATA_LOSS, "the stored schema is not an encapsulated IPC message");
  const length = view.getInt32(4, true);
  if (length < 0 || 8 + length > bytes.byteLength) throw new FlightError(StatusCode.DATA_LOSS, "the stored schema's length is past its end");
  return bytes.subarray(8, 8 + length);
}

function projectSchemaBytes(encapsulated: Uint8Array, columns: readonly string[] | undefined): Uint8Array {
  if (columns === undefined) return encapsulated;
  return encapsulateMessage(projectIpcSchema(decapsulate(encapsulated), columns).schemaHeader);
}

/** The FlightInfo of a query, from the FlightInfo of the flight it reads. */
function queryInfo(info: FlightInfo, q: QueryCommand, descriptor: FlightDescriptor): FlightInfo {
  return {
    ...info,
    schema: projectSchemaBytes(info.schema, q.columns),
    flightDescriptor: descriptor,
    endpoint: info.endpoint.map((e) => ({
      ...e,
      ticket: e.ticket === undefined ? undefined : { ticket: encodeQueryTicket({ ticket: e.ticket.ticket, columns: q.columns }) },
    })),
    // Rows are the flight's; the projected size is not known without walking every message
    // header, so it is reported as unknown (-1), as the Flight spec allows.
    totalBytes: q.columns === undefined ? info.totalBytes : -1,
  };
}

/** The flight's DoGet stream, projected message by message (headers rewritten, bodies sliced). */
async function* projectStream(messages: AsyncIterable<FlightData>, columns: readonly string[]): AsyncGenerator<FlightData> {
  let projection: ReturnType<typeof projectIpcSchema> | undefined;
  for await (const m of messages) {
    if (m.dataHeader.length === 0) {
      yield m; // metadata only
      continue;
    }
    if (projection === undefined) {
      projection = projectIpcSchema(m.dataHeader, columns);
      yield { flightDescriptor: undefined, dataHeader: projection.schemaHeader, dataBody: EMPTY, appMetadata: m.appMetadata };
      continue;
    }
    const out = projection.project({ header: m.dataHeader, body: m.dataBody });
    if (out !== null) yield { flightDescriptor: undefined, dataHeader: out.header, dataBody: out.body, appMetadata: m.appMetadata };
  }
}

/** Options of {@link query}: none yet (the engine's limits will come with filters). */
export type QueryOptions = Record<string, never>;

/**
 * Queries over stored flights for plain Flight clients (docs/query.md). A CMD descriptor
 * holding a JSON query command, `{"flight":["telemetry","host-1"],"columns":["ts","cpu"]}`,
 * answers GetFlightInfo, PollFlightInfo and GetSchema with the result's schema and a query
 * ticket; a DoGet of that ticket streams only the selected columns. The projection is done on
 * the IPC messages as stored: headers are rewritten, bodies are views of the stored buffers,
 * and no Arrow data is decoded or copied.
 *
 * The query is served by passing the flight's own call down the chain: GetFlightInfo of the
 * flight's path, DoGet of the flight's store ticket. Middleware placed after `query()` (and
 * the store) sees exactly the read a plain client would make; `authorize` also understands
 * query descriptors and tickets, so it may be placed before or after. Place `query()` after
 * the authentication middleware, which checks the call as the client sent it.
 *
 * `where`, `limit` and `sql` are reserved and answered with UNIMPLEMENTED; unknown keys and
 * malformed tickets with INVALID_ARGUMENT; an unknown column with INVALID_ARGUMENT naming it;
 * a missing flight with NOT_FOUND.
 *
 * @example
 * createFlightServer(basicTokenAuth({ validate }), query(), authorize(policy));
 * // pyarrow: info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(
 * //   {"flight": ["telemetry", "host-1"], "columns": ["ts", "cpu"]})))
 * //   client.do_get(info.endpoints[0].ticket).read_all()
 */
export function query(options: QueryOptions = {}): ServerParts {
  if (options === null || typeof options !== "object") throw new TypeError("query: expected an options object");
  const unknown = Object.keys(options);
  if (unknown.length > 0) throw new TypeError(`query: unknown option ${JSON.stringify(unknown[0])}; query() has no options yet`);
  const middleware: FlightMiddleware = (next) =>
    async function queryCall(call: FlightCall) {
      switch (call.method) {
        case "getFlightInfo":
        case "pollFlightInfo":
        case "getSchema": {
          const q = parseQueryCommand(call.request);
          if (q === undefined) return next(call);
          const inner = { ...call, request: q.flight } as FlightCall;
          if (call.method === "getSchema") {
            const result = (await next(inner)) as SchemaResult;
            return { schema: projectSchemaBytes(result.schema, q.columns) };
          }
          if (call.method === "getFlightInfo") return queryInfo((await next(inner)) as FlightInfo, q, call.request);
          const poll = (await next(inner)) as PollInfo;
          return { ...poll, info: poll.info && queryInfo(poll.info, q, call.request) };
        }
        case "doGet": {
          if (!isQueryTicket(call.request.ticket)) return next(call);
          const t = parseQueryTicket(call.request.ticket);
          const messages = (await next({ ...call, request: { ticket: t.ticket } } as FlightCall)) as AsyncIterable<FlightData>;
          return t.columns === undefined ? messages : projectStream(messages, t.columns);
        }
        default:
          return next(call);
      }
    };
  return serverParts(middleware);
}
