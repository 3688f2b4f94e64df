import {
  FlightError,
  StatusCode,
  encodeQueryTicket,
  isQueryTicket,
  parseQueryCommand,
  parseQueryTicket,
  kBatchPruning,
  projectIpcSchema,
  rangePredicatesOf,
  readSchema,
  sqlTableDescriptor,
  type BatchPruningRequest,
  type BatchSelection,
  type SqlTableRef,
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
  checkObject,
  checkOptions,
} from "@blackice/flight-core";
import { decapsulateMessage, encapsulateMessage } from "./ipc-encapsulate";
import { createQueryEngine, type QueryEngineOptions } from "../query/engine-pool";
import type { EngineTable, QueryEngine } from "../query/query-engine";

const EMPTY = new Uint8Array(0);

function projectSchemaBytes(encapsulated: Uint8Array, columns: readonly string[] | undefined): Uint8Array {
  if (columns === undefined) return encapsulated;
  return encapsulateMessage(projectIpcSchema(decapsulateMessage(encapsulated, "the stored schema"), columns).schemaHeader);
}

/** The FlightInfo of a query, from the FlightInfo of the flight it reads. */
function queryInfo(info: FlightInfo, q: QueryCommand & { flight: FlightDescriptor }, descriptor: FlightDescriptor): FlightInfo {
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

/** Options of {@link query}. */
export interface QueryOptions {
  /**
   * The engine that runs `where`, `limit` and `sql` queries: one made with
   * `createQueryEngine` (to share it, or to close it), or the options to make one with.
   * Default: an engine with `createQueryEngine`'s defaults, whose processes start on the
   * first such query.
   */
  readonly engine?: QueryEngine | QueryEngineOptions;
}

function isEngine(e: unknown): e is QueryEngine {
  return e !== null && typeof e === "object" && typeof (e as QueryEngine).run === "function" && typeof (e as QueryEngine).resultSchema === "function";
}

const NO_BYTES = new Uint8Array(0);

/** Response headers of a DoGet of a `where`/`sql` query: record batches its flights' DoGets read and skipped (batch pruning). */
export const BATCHES_READ_HEADER = "x-blackice-batches-read";
export const BATCHES_SKIPPED_HEADER = "x-blackice-batches-skipped";

/** What batch pruning did over the tables of one statement. */
class PruningTally {
  read = 0;
  skipped = 0;
  add(s: BatchSelection): void {
    if (s.batchesRead >= 0) this.read += s.batchesRead;
    this.skipped += s.batchesSkipped;
  }
}

/**
 * Asks the DoGet of one flight (through the chain, to the store handler) to read only the
 * record batches whose statistics allow a row matching the statement's range predicates on
 * that table (docs/query.md, "Batch pruning"); with none, it reads them all and counts them.
 */
function requestPruning(call: FlightCall, sql: string, ref: SqlTableRef, schema: Uint8Array, ticket: Uint8Array, tally: PruningTally): void {
  let fields;
  try {
    fields = readSchema(decapsulateMessage(schema, "the stored schema")).fields;
  } catch {
    return; // the engine reports a schema it cannot read
  }
  // With no usable predicate the DoGet still reports its batches (all read).
  const predicates = rangePredicatesOf(sql, ref.name, fields);
  // One map per call, keyed by store ticket: a statement's tables are read by distinct tickets.
  let requests = call.context.get(kBatchPruning) as Map<string, BatchPruningRequest> | undefined;
  if (requests === undefined) {
    requests = new Map();
    call.context.set(kBatchPruning, requests);
  }
  requests.set(Buffer.from(ticket).toString("base64"), { predicates, onSelection: (s) => tally.add(s) });
}

/**
 * The tables of a statement, read through the rest of the chain: GetFlightInfo of each
 * flight's path (schema, size, ticket), then DoGet of its ticket when the engine reads it.
 * Middleware after `query()` sees each flight's own reads. With `pruning`, each DoGet is
 * asked to skip the batches that cannot match the statement's WHERE.
 */
function tablesThrough(
  call: FlightCall,
  next: (call: FlightCall) => Promise<unknown>,
  pruning?: { sql: string; tally: PruningTally },
): (ref: SqlTableRef) => Promise<EngineTable | undefined> {
  return async (ref) => {
    let info: FlightInfo;
    try {
      info = (await next({ ...call, method: "getFlightInfo", request: sqlTableDescriptor(ref) } as FlightCall)) as FlightInfo;
    } catch (err) {
      if (err instanceof FlightError && err.code === StatusCode.NOT_FOUND) return undefined;
      throw err;
    }
    const ticket = info.endpoint.find((e) => e.ticket !== undefined)?.ticket?.ticket;
    return {
      schema: info.schema,
      bytes: info.totalBytes,
      messages: () => {
        if (ticket === undefined) throw new FlightError(StatusCode.NOT_FOUND, `query: flight ${JSON.stringify(ref.name)} has no ticket`);
        if (pruning !== undefined) requestPruning(call, pruning.sql, ref, info.schema, ticket, pruning.tally);
        return (async function* flightMessages() {
          yield* (await next({ ...call, method: "doGet", request: { ticket } } as FlightCall)) as AsyncIterable<FlightData>;
        })();
      },
    };
  };
}

const timeLeft = (call: FlightCall): number | undefined => (call.deadline === undefined ? undefined : call.deadline - Date.now());

/** The FlightInfo of an engine query: the result's schema, one endpoint with a self-contained ticket, sizes unknown. */
function statementInfo(schema: Uint8Array, sql: string, descriptor: FlightDescriptor): FlightInfo {
  return {
    schema,
    flightDescriptor: descriptor,
    // No location: the ticket is redeemed on the service that issued it (or any replica).
    endpoint: [{ ticket: { ticket: encodeQueryTicket({ sql }) }, location: [], expirationTime: undefined, appMetadata: NO_BYTES }],
    totalRecords: -1,
    totalBytes: -1,
    ordered: false,
    appMetadata: NO_BYTES,
  };
}

/**
 * Queries over stored flights for plain Flight clients (docs/query.md). A CMD descriptor
 * holding a JSON query command answers GetFlightInfo, PollFlightInfo and GetSchema with the
 * result's schema and a query ticket; a DoGet of that ticket streams the result.
 *
 * - `{"flight":["telemetry","host-1"],"columns":["ts","cpu"]}`, a projection, is done on the
 *   IPC messages as stored: headers are rewritten, bodies are views of the stored buffers,
 *   and no Arrow data is decoded or copied.
 * - `where` (a SQL boolean expression) and `limit` beside `flight`, or `{"sql": "SELECT ..."}`
 *   (tables are flight paths joined by "/": `"telemetry/host-1"`), run on the embedded engine
 *   (nodejs-polars in child processes; see `createQueryEngine` for its limits).
 *
 * Each query is served by passing the flights' own calls down the chain: GetFlightInfo of a
 * flight's path, DoGet of its store ticket. Middleware placed after `query()` (and the store)
 * sees exactly the reads a plain client would make; `authorize` also understands query
 * descriptors and tickets (every flight a statement reads), so it may be placed before or
 * after. Place `query()` after the authentication middleware, which checks the call as the
 * client sent it.
 *
 * Errors: unknown keys, malformed tickets, bad SQL (with the engine's or parser's message), an
 * unknown column, or a column type the engine cannot read are INVALID_ARGUMENT; a missing
 * flight NOT_FOUND; a query over the engine's input, result or queue limits
 * RESOURCE_EXHAUSTED; past its time DEADLINE_EXCEEDED.
 *
 * @example
 * createFlightServer(basicTokenAuth({ validate }), query({ engine: { timeoutMs: 10_000 } }), authorize(policy));
 * // pyarrow: info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(
 * //   {"flight": ["telemetry", "host-1"], "columns": ["ts", "cpu"], "where": "cpu > 0.9"})))
 * //   client.do_get(info.endpoints[0].ticket).read_all()
 */
export function query(options: QueryOptions = {}): ServerParts {
  checkOptions("query", options, ["engine"], true);
  if (options.engine !== undefined) checkObject("query", "engine", options.engine, "a QueryEngine or createQueryEngine's options");
  const engine: QueryEngine = isEngine(options.engine) ? options.engine : createQueryEngine(options.engine as QueryEngineOptions | undefined);
  const middleware: FlightMiddleware = (next) =>
    async function queryCall(call: FlightCall) {
      switch (call.method) {
        case "getFlightInfo":
        case "pollFlightInfo":
        case "getSchema": {
          const q = parseQueryCommand(call.request);
          if (q === undefined) return next(call);
          if (q.sql !== undefined) {
            const schema = await engine.resultSchema({ sql: q.sql, table: tablesThrough(call, next), signal: call.signal, timeoutMs: timeLeft(call) });
            if (call.method === "getSchema") return { schema };
            const info = statementInfo(schema, q.sql, call.request);
            if (call.method === "getFlightInfo") return info;
            return { info, flightDescriptor: undefined, progress: 1, expirationTime: undefined } satisfies PollInfo;
          }
          const projection = q as QueryCommand & { flight: FlightDescriptor };
          const inner = { ...call, request: projection.flight } as FlightCall;
          if (call.method === "getSchema") {
            const result = (await next(inner)) as SchemaResult;
            return { schema: projectSchemaBytes(result.schema, q.columns) };
          }
          if (call.method === "getFlightInfo") return queryInfo((await next(inner)) as FlightInfo, projection, call.request);
          const poll = (await next(inner)) as PollInfo;
          return { ...poll, info: poll.info && queryInfo(poll.info, projection, call.request) };
        }
        case "doGet": {
          if (!isQueryTicket(call.request.ticket)) return next(call);
          const t = parseQueryTicket(call.request.ticket);
          if (t.sql !== undefined) {
            const tally = new PruningTally();
            const result = await engine.run({ sql: t.sql, table: tablesThrough(call, next, { sql: t.sql, tally }), signal: call.signal, timeoutMs: timeLeft(call) });
            // Every table was read before the engine ran: the counts are final.
            call.responseHeaders.set(BATCHES_READ_HEADER, String(tally.read));
            call.responseHeaders.set(BATCHES_SKIPPED_HEADER, String(tally.skipped));
            return result.messages;
          }
          const messages = (await next({ ...call, request: { ticket: t.ticket as Uint8Array } } as FlightCall)) as AsyncIterable<FlightData>;
          return t.columns === undefined ? messages : projectStream(messages, t.columns);
        }
        default:
          return next(call);
      }
    };
  return serverParts(middleware);
}
