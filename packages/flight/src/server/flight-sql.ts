import * as fs from "node:fs";
import * as path from "node:path";
import {
  DescriptorType,
  FlightError,
  MessageKind,
  StatusCode,
  bindSqlParameters,
  invalidArgument,
  readMessageHeader,
  sqlParameterCount,
  type ActionType,
  type FlightCall,
  type FlightData,
  type FlightDescriptor,
  type FlightHandler,
  type FlightInfo,
  type FlightMiddleware,
  type PollInfo,
  type PutResult,
  type Result,
  type SchemaResult,
  type SqlParameterValue,
  checkOptions,
  checkPattern,
} from "@blackice/flight-core";
import { loadArrow, type ArrowModule } from "../client/arrow-interop";
import * as sql from "../gen/FlightSql";
import { encodeFlightSql, packFlightSql, unpackFlightSql, type FlightSqlMessage, type UnknownFlightSqlMessage } from "./flight-sql-any";
import { readParameterRow } from "./flight-sql-parameters";
import { TABLE_TYPE, SEARCH_STRING_ESCAPE, likeMatcher, pathOfTable, tableNameOf } from "./flight-sql-names";
import { catalogsResult, dbSchemasResult, sqlInfoResult, tableTypesResult, tablesResult, type MetadataResult, type SqlInfoValue, type TableRow } from "./flight-sql-results";

const EMPTY = new Uint8Array(0);

/** Default name of the one database schema that holds every table. */
export const DEFAULT_FLIGHT_SQL_DB_SCHEMA = "flights";

/** The prefix of a prepared statement handle: the statement's SQL follows, as UTF-8. */
export const PREPARED_STATEMENT_PREFIX = "blackice.sql.prepared.v1:";

/**
 * The prefix of a prepared statement handle with parameters bound (the answer to a DoPut of
 * parameters): `{"sql": ..., "parameters": [...]}` as UTF-8 JSON follows. The client holds it,
 * so it is checked again in full (its values bound anew) each time it is used.
 */
export const BOUND_STATEMENT_PREFIX = "blackice.sql.bound.v1:";

/** Longest prepared statement handle accepted, bytes (the SQL of a query command is bounded by the descriptor limit). */
export const MAX_PREPARED_HANDLE_BYTES = 64 * 1024;

/** The metadata commands answered by `flightSql()` itself. */
const METADATA_COMMANDS = ["CommandGetSqlInfo", "CommandGetCatalogs", "CommandGetDbSchemas", "CommandGetTables", "CommandGetTableTypes"] as const;
type MetadataCommand = Extract<FlightSqlMessage, { name: (typeof METADATA_COMMANDS)[number] }>;

const IMPLEMENTED =
  "implemented: CommandGetSqlInfo, CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables, CommandGetTableTypes, " +
  "CommandStatementQuery, CommandPreparedStatementQuery, CommandStatementIngest, and the actions CreatePreparedStatement and ClosePreparedStatement";

/** The Flight SQL actions: the two served, and the others the specification defines (UNIMPLEMENTED). */
const SERVED_ACTIONS: readonly ActionType[] = [
  { type: "CreatePreparedStatement", description: "Flight SQL: prepare a SQL query (ActionCreatePreparedStatementRequest); the handle carries the statement, so it works on any replica" },
  { type: "ClosePreparedStatement", description: "Flight SQL: close a prepared statement (nothing is held on the server)" },
];
const OTHER_SQL_ACTIONS = new Set(["CreatePreparedSubstraitPlan", "BeginTransaction", "EndTransaction", "BeginSavepoint", "EndSavepoint", "CancelQuery"]);

function unimplemented(what: string): FlightError {
  return new FlightError(StatusCode.UNIMPLEMENTED, `Flight SQL ${what} is not implemented by this server; ${IMPLEMENTED}`);
}

/** Options of {@link flightSql}. */
export interface FlightSqlOptions {
  /**
   * The name of the database schema every table is listed in (`db_schema_name`). There are no
   * catalogs (`catalog_name` is null). Default `"flights"`. SQL statements name tables without
   * it: `SELECT * FROM "telemetry/host-1"`.
   */
  readonly dbSchema?: string;
  /** `FLIGHT_SQL_SERVER_NAME` of CommandGetSqlInfo. Default `"BlackIce Flight"`. */
  readonly serverName?: string;
}

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, "../../package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/**
 * The CommandGetSqlInfo answers: only facts this server can stand behind. Statements are
 * read-only SELECTs run by `query()`'s engine; ingest writes; there are no transactions, no
 * Substrait, no cancellation action, no DDL statements and no catalogs.
 */
function sqlInfoValues(serverName: string, arrowVersion: string): Map<number, SqlInfoValue> {
  const I = sql.SqlInfo;
  return new Map<number, SqlInfoValue>([
    [I.FLIGHT_SQL_SERVER_NAME, { string: serverName }],
    [I.FLIGHT_SQL_SERVER_VERSION, { string: packageVersion() }],
    [I.FLIGHT_SQL_SERVER_ARROW_VERSION, { string: arrowVersion }],
    [I.FLIGHT_SQL_SERVER_READ_ONLY, { bool: false }],
    [I.FLIGHT_SQL_SERVER_SQL, { bool: true }],
    [I.FLIGHT_SQL_SERVER_SUBSTRAIT, { bool: false }],
    [I.FLIGHT_SQL_SERVER_TRANSACTION, { int32Bitmask: sql.SqlSupportedTransaction.SQL_SUPPORTED_TRANSACTION_NONE }],
    [I.FLIGHT_SQL_SERVER_CANCEL, { bool: false }],
    [I.FLIGHT_SQL_SERVER_BULK_INGESTION, { bool: true }],
    [I.FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED, { bool: false }],
    // Prepared statement handles hold their statement: nothing on the server expires.
    [I.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT, { int32Bitmask: 0 }],
    [I.FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT, { int32Bitmask: 0 }],
    [I.SQL_DDL_CATALOG, { bool: false }],
    [I.SQL_DDL_SCHEMA, { bool: false }],
    [I.SQL_DDL_TABLE, { bool: false }],
    [I.SQL_IDENTIFIER_QUOTE_CHAR, { string: '"' }],
    [I.SQL_SEARCH_STRING_ESCAPE, { string: SEARCH_STRING_ESCAPE }],
    [I.SQL_CATALOG_TERM, { string: "" }],
    [I.SQL_SCHEMA_TERM, { string: "schema" }],
    [I.SQL_ALL_TABLES_ARE_SELECTABLE, { bool: true }],
    [I.SQL_TRANSACTIONS_SUPPORTED, { bool: false }],
    [I.SQL_SELECT_FOR_UPDATE_SUPPORTED, { bool: false }],
    [I.SQL_STORED_PROCEDURES_SUPPORTED, { bool: false }],
    [I.SQL_SAVEPOINTS_SUPPORTED, { bool: false }],
    [I.SQL_BATCH_UPDATES_SUPPORTED, { bool: false }],
  ]);
}

/** The descriptor of the query command that runs `statement` (docs/query.md): `{"sql": "..."}`. */
function sqlDescriptor(statement: string): FlightDescriptor {
  return { type: DescriptorType.CMD, cmd: new Uint8Array(Buffer.from(JSON.stringify({ sql: statement }), "utf8")), path: [] };
}

function encodePreparedHandle(statement: string): Uint8Array {
  const handle = new Uint8Array(Buffer.from(PREPARED_STATEMENT_PREFIX + statement, "utf8"));
  if (handle.byteLength > MAX_PREPARED_HANDLE_BYTES) throw new FlightError(StatusCode.RESOURCE_EXHAUSTED, `the statement is too long for a prepared statement handle (${handle.byteLength} bytes; at most ${MAX_PREPARED_HANDLE_BYTES})`);
  return handle;
}

/** A prepared statement: its SQL, and the values bound to its placeholders (none until a DoPut binds them). */
interface PreparedStatement {
  readonly sql: string;
  readonly parameters: readonly SqlParameterValue[];
}

function startsWith(handle: Uint8Array, prefix: string): boolean {
  const p = Buffer.from(prefix, "utf8");
  return handle.byteLength >= p.length && Buffer.from(handle.buffer, handle.byteOffset, p.length).equals(p);
}

function encodeBoundHandle(statement: PreparedStatement): Uint8Array {
  const handle = new Uint8Array(Buffer.from(BOUND_STATEMENT_PREFIX + JSON.stringify({ sql: statement.sql, parameters: statement.parameters }), "utf8"));
  if (handle.byteLength > MAX_PREPARED_HANDLE_BYTES) throw new FlightError(StatusCode.RESOURCE_EXHAUSTED, `the statement and its parameters are too long for a prepared statement handle (${handle.byteLength} bytes; at most ${MAX_PREPARED_HANDLE_BYTES})`);
  return handle;
}

/**
 * The statement of a prepared statement handle, made by {@link encodePreparedHandle} or
 * {@link encodeBoundHandle}; INVALID_ARGUMENT for anything else. A bound handle's values are
 * only read here as JSON: `bindSqlParameters` checks each when it binds them.
 */
function decodeHandle(handle: Uint8Array): PreparedStatement {
  const notOurs = (why: string) => invalidArgument(`not a prepared statement handle of this server${why}`);
  if (handle.byteLength > MAX_PREPARED_HANDLE_BYTES) throw notOurs(" (too long)");
  const bound = startsWith(handle, BOUND_STATEMENT_PREFIX);
  if (!bound && !startsWith(handle, PREPARED_STATEMENT_PREFIX)) throw notOurs("");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(handle.subarray(Buffer.byteLength(bound ? BOUND_STATEMENT_PREFIX : PREPARED_STATEMENT_PREFIX)));
  } catch {
    throw notOurs(" (its statement is not UTF-8)");
  }
  if (!bound) return { sql: text, parameters: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw notOurs(" (malformed bound parameters)");
  }
  const o = parsed as { sql?: unknown; parameters?: unknown };
  if (o === null || typeof o !== "object" || Array.isArray(o) || Object.keys(o).length !== 2 || typeof o.sql !== "string" || !Array.isArray(o.parameters)) {
    throw notOurs(" (malformed bound parameters)");
  }
  return { sql: o.sql, parameters: o.parameters as SqlParameterValue[] };
}

/** The SQL a prepared statement handle runs: its parameters bound, checked again (see {@link decodeHandle}). */
function decodePreparedHandle(handle: Uint8Array): string {
  const { sql: statement, parameters } = decodeHandle(handle);
  return bindSqlParameters(statement, parameters);
}

function requireNoTransaction(transactionId: Uint8Array | undefined): void {
  if (transactionId !== undefined) throw new FlightError(StatusCode.UNIMPLEMENTED, "Flight SQL transactions are not supported by this server (FLIGHT_SQL_SERVER_TRANSACTION is NONE)");
}

/** A FlightInfo whose one endpoint's ticket is `ticket`, with no location (read it from this server). */
function infoOf(descriptor: FlightDescriptor, schema: Uint8Array, ticket: Uint8Array): FlightInfo {
  return {
    schema,
    flightDescriptor: descriptor,
    endpoint: [{ ticket: { ticket }, location: [], expirationTime: undefined, appMetadata: EMPTY }],
    totalRecords: -1,
    totalBytes: -1,
    ordered: false,
    appMetadata: EMPTY,
  };
}

/** Yields the given first message and then the rest of the stream. */
async function* prepend<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  yield first;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

/**
 * Arrow Flight SQL over stored flights (docs/query.md, "Flight SQL"), so that SQL clients
 * (ADBC, JDBC, ODBC) work against the server. Stored flights are tables: the flight at path
 * `["telemetry", "host-1"]` is the table `telemetry/host-1`, in no catalog and in the one
 * database schema `options.dbSchema` (default `flights`), of type `TABLE`.
 *
 * Served here: CommandGetSqlInfo, CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables
 * (with `include_schema` and LIKE filter patterns), CommandGetTableTypes, CommandStatementIngest
 * (a DoPut into the table's flight, passed down the chain as a plain DoPut of its path, so it
 * is validated, limited and authorized exactly as one), the CreatePreparedStatement and
 * ClosePreparedStatement actions. CommandStatementQuery and CommandPreparedStatementQuery are
 * turned into the `{"sql": ...}` query command of `query()` and passed down the chain, so
 * `query()` (with its engine) must come after `flightSql()`; their tickets are
 * TicketStatementQuery messages wrapping `query()`'s self-contained query tickets. A DoPut of
 * CommandPreparedStatementQuery binds one row of parameters to the statement's `$1`, `$2`, ...
 * placeholders (written in as literals by `bindSqlParameters`; the new handle carries the
 * values, checked again whenever it is used). Every other
 * Flight SQL command and action is UNIMPLEMENTED with a message listing what is implemented.
 * Calls that are not Flight SQL pass through untouched.
 *
 * Metadata lists what a ListFlights down the chain lists, so `authorize` placed after
 * `flightSql()` hides the flights a caller may not list. Place `flightSql()` after the
 * authentication middleware (`basicTokenAuth`: ADBC's username/password options log in with
 * its Handshake; or `jwtAuth`: ADBC's `authorization_header` option) and before `query()` and
 * `authorize`. Needs apache-arrow (a peer dependency) to encode its metadata results.
 *
 * @example
 * createFlightServer(basicTokenAuth({ validate }), flightSql(), query(), authorize(policy));
 * // Python: adbc_driver_flightsql.dbapi.connect("grpc://127.0.0.1:8815",
 * //   db_kwargs={"username": "alice", "password": "s3cret"})
 */
export function flightSql(options: FlightSqlOptions = {}): FlightMiddleware {
  checkOptions("flightSql", options, ["dbSchema", "serverName"], true);
  const NAME = /^[\s\S]{1,256}$/;
  const dbSchema = checkPattern("flightSql", "dbSchema", options.dbSchema, NAME, "a string of 1 to 256 characters", DEFAULT_FLIGHT_SQL_DB_SCHEMA);
  const serverName = checkPattern("flightSql", "serverName", options.serverName, NAME, "a string of 1 to 256 characters", "BlackIce Flight");
  let arrow: ArrowModule;
  try {
    arrow = loadArrow();
  } catch {
    throw new TypeError("flightSql needs apache-arrow (a peer dependency of @blackice/flight) to encode its metadata results: npm install apache-arrow");
  }
  const arrowVersion = (() => {
    try {
      // The package's exports map hides package.json: find it beside the resolved entry point.
      let dir = path.dirname(require.resolve("apache-arrow"));
      while (!fs.existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
      return (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "unknown";
    }
  })();
  const sqlInfo = sqlInfoValues(serverName, arrowVersion);

  /** The tables a caller may list: a ListFlights down the chain, path flights with a table name. */
  async function listTables(call: FlightCall, next: FlightHandler): Promise<{ name: string; schema: Uint8Array }[]> {
    const infos = (await next({ ...call, method: "listFlights", request: { expression: EMPTY } } as FlightCall)) as AsyncIterable<FlightInfo>;
    const out: { name: string; schema: Uint8Array }[] = [];
    for await (const info of infos) {
      const d = info.flightDescriptor;
      const name = d && d.type === DescriptorType.PATH ? tableNameOf(d.path) : undefined;
      if (name !== undefined) out.push({ name, schema: info.schema });
    }
    return out;
  }

  /** A metadata command's result. Only DoGet (`withRows`) lists the flights; FlightInfo and GetSchema need just the schema. */
  async function metadata(command: MetadataCommand, call: FlightCall, next: FlightHandler, withRows: boolean): Promise<MetadataResult> {
    switch (command.name) {
      case "CommandGetSqlInfo": {
        const ids = command.message.info.length > 0 ? command.message.info : [...sqlInfo.keys()];
        const rows = withRows ? ids.filter((id) => sqlInfo.has(id)).map((id) => ({ id, value: sqlInfo.get(id)! })) : [];
        return sqlInfoResult(arrow, rows);
      }
      case "CommandGetCatalogs":
        return catalogsResult(arrow, []);
      case "CommandGetDbSchemas": {
        const { catalog, dbSchemaFilterPattern } = command.message;
        const shown = withRows && (catalog === undefined || catalog === "") && (dbSchemaFilterPattern === undefined || likeMatcher(dbSchemaFilterPattern)(dbSchema));
        return dbSchemasResult(arrow, shown ? [{ catalog: null, dbSchema }] : []);
      }
      case "CommandGetTables": {
        const m = command.message;
        let rows: TableRow[] = [];
        const inScope =
          (m.catalog === undefined || m.catalog === "") &&
          (m.dbSchemaFilterPattern === undefined || likeMatcher(m.dbSchemaFilterPattern)(dbSchema)) &&
          (m.tableTypes.length === 0 || m.tableTypes.includes(TABLE_TYPE));
        if (withRows && inScope) {
          const matches = m.tableNameFilterPattern === undefined ? () => true : likeMatcher(m.tableNameFilterPattern);
          rows = (await listTables(call, next))
            .filter((t) => matches(t.name))
            .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
            .map((t) => ({ catalog: null, dbSchema, table: t.name, tableType: TABLE_TYPE, schema: t.schema }));
        }
        return tablesResult(arrow, rows, m.includeSchema);
      }
      case "CommandGetTableTypes":
        return tableTypesResult(arrow, withRows ? [TABLE_TYPE] : []);
    }
  }

  const isMetadata = (m: FlightSqlMessage): m is MetadataCommand => (METADATA_COMMANDS as readonly string[]).includes(m.name);

  /** The SQL statement a query command runs, or undefined for a command that is not a statement. */
  function statementOf(m: FlightSqlMessage): string | undefined {
    if (m.name === "CommandStatementQuery") {
      requireNoTransaction(m.message.transactionId);
      return m.message.query;
    }
    if (m.name === "CommandPreparedStatementQuery") return decodePreparedHandle(m.message.preparedStatementHandle);
    return undefined;
  }

  /** FlightInfo of a statement: `query()`'s, its tickets wrapped as TicketStatementQuery. */
  async function statementInfo(statement: string, call: FlightCall, next: FlightHandler): Promise<FlightInfo> {
    const info = (await next({ ...call, method: "getFlightInfo", request: sqlDescriptor(statement) } as FlightCall)) as FlightInfo;
    return {
      ...info,
      flightDescriptor: call.request as FlightDescriptor,
      endpoint: info.endpoint.map((e) => ({ ...e, ticket: e.ticket && { ticket: packFlightSql("TicketStatementQuery", { statementHandle: e.ticket.ticket }) } })),
    };
  }

  async function statementSchema(statement: string, call: FlightCall, next: FlightHandler): Promise<Uint8Array> {
    return ((await next({ ...call, method: "getSchema", request: sqlDescriptor(statement) } as FlightCall)) as SchemaResult).schema;
  }

  async function describe(m: FlightSqlMessage | UnknownFlightSqlMessage, call: FlightCall, next: FlightHandler): Promise<FlightInfo> {
    if (m.message === undefined) throw unimplemented(m.name);
    const descriptor = call.request as FlightDescriptor;
    if (isMetadata(m)) return infoOf(descriptor, (await metadata(m, call, next, false)).schema, descriptor.cmd);
    const statement = statementOf(m);
    if (statement !== undefined) return statementInfo(statement, call, next);
    throw unimplemented(`${m.name} in ${call.method}`);
  }

  async function schemaOf(m: FlightSqlMessage | UnknownFlightSqlMessage, call: FlightCall, next: FlightHandler): Promise<SchemaResult> {
    if (m.message === undefined) throw unimplemented(m.name);
    if (isMetadata(m)) return { schema: (await metadata(m, call, next, false)).schema };
    const statement = statementOf(m);
    if (statement !== undefined) return { schema: await statementSchema(statement, call, next) };
    throw unimplemented(`${m.name} in GetSchema`);
  }

  async function doGet(m: FlightSqlMessage | UnknownFlightSqlMessage, call: FlightCall<"doGet">, next: FlightHandler): Promise<AsyncIterable<FlightData>> {
    if (m.message === undefined) throw unimplemented(m.name);
    if (isMetadata(m)) {
      const result = await metadata(m, call, next, true);
      return (async function* metadataRows() {
        yield* result.messages();
      })();
    }
    if (m.name === "TicketStatementQuery") {
      // The handle is query()'s own ticket, redeemed down the chain: query() checks it, and
      // authorize sees the read of each flight it names.
      return (await next({ ...call, request: { ticket: m.message.statementHandle } } as FlightCall)) as AsyncIterable<FlightData>;
    }
    throw unimplemented(`${m.name} as a DoGet ticket`);
  }

  /**
   * CommandStatementIngest: the stream is passed down the chain as a DoPut of the table's
   * path, then answered with one PutResult holding a DoPutUpdateResult (rows ingested).
   */
  async function* ingest(command: sql.CommandStatementIngest, first: FlightData, rest: AsyncIterator<FlightData>, call: FlightCall<"doPut">, next: FlightHandler): AsyncGenerator<PutResult> {
    requireNoTransaction(command.transactionId);
    if (command.temporary) throw new FlightError(StatusCode.UNIMPLEMENTED, "Flight SQL temporary tables are not supported by this server");
    if (command.catalog !== undefined && command.catalog !== "") throw invalidArgument(`there are no catalogs: ingest with no catalog (got ${JSON.stringify(command.catalog)})`);
    if (command.schema !== undefined && command.schema !== "" && command.schema !== dbSchema) {
      throw invalidArgument(`unknown db_schema ${JSON.stringify(command.schema)}; the only one is ${JSON.stringify(dbSchema)}`);
    }
    const unknownOptions = Object.keys(command.options);
    if (unknownOptions.length > 0) throw invalidArgument(`unknown ingest option ${JSON.stringify(unknownOptions[0])}; this server takes none`);
    const flightPath = pathOfTable(command.table);
    const descriptor: FlightDescriptor = { type: DescriptorType.PATH, cmd: EMPTY, path: flightPath };
    const { ifNotExist, ifExists } = command.tableDefinitionOptions ?? { ifNotExist: 0, ifExists: 0 };
    const NotExist = sql.CommandStatementIngest_TableDefinitionOptions_TableNotExistOption;
    const Exists = sql.CommandStatementIngest_TableDefinitionOptions_TableExistsOption;
    if (ifNotExist !== NotExist.TABLE_NOT_EXIST_OPTION_CREATE && ifNotExist !== NotExist.TABLE_NOT_EXIST_OPTION_FAIL) {
      throw invalidArgument("CommandStatementIngest: table_definition_options.if_not_exist must be CREATE or FAIL");
    }
    if (ifExists === Exists.TABLE_EXISTS_OPTION_REPLACE) {
      throw new FlightError(StatusCode.UNIMPLEMENTED, "CommandStatementIngest: REPLACE is not supported (a flight is appended to or created, never replaced in one step); use APPEND, or FAIL");
    }
    if (ifExists !== Exists.TABLE_EXISTS_OPTION_APPEND && ifExists !== Exists.TABLE_EXISTS_OPTION_FAIL) {
      throw invalidArgument("CommandStatementIngest: table_definition_options.if_exists must be APPEND or FAIL");
    }
    // Whether the table exists, asked down the chain, so a caller learns nothing of a flight
    // it may not read. Not atomic with the put: two racing creates may both find no table,
    // and then the second appends (or is refused for a different schema).
    let exists = true;
    try {
      await next({ ...call, method: "getFlightInfo", request: descriptor } as FlightCall);
    } catch (err) {
      if (FlightError.from(err).code !== StatusCode.NOT_FOUND) throw err;
      exists = false;
    }
    if (exists && ifExists === Exists.TABLE_EXISTS_OPTION_FAIL) throw new FlightError(StatusCode.ALREADY_EXISTS, `table ${JSON.stringify(command.table)} already exists`);
    if (!exists && ifNotExist === NotExist.TABLE_NOT_EXIST_OPTION_FAIL) throw new FlightError(StatusCode.NOT_FOUND, `table ${JSON.stringify(command.table)} does not exist`);

    let rows = 0;
    // Counts rows from each record batch header as it passes (a flatbuffer read, no data
    // decoded); the store handler validates the same messages in full.
    async function* counted(): AsyncGenerator<FlightData> {
      for await (const m of prepend({ ...first, flightDescriptor: descriptor }, rest)) {
        if (m.dataHeader.byteLength > 0) {
          const info = readMessageHeader(m.dataHeader, m.dataBody.byteLength);
          if (info.kind === MessageKind.RECORD_BATCH) rows += info.rows;
        }
        yield m;
      }
    }
    const acks = (await next({ ...call, request: counted() } as FlightCall)) as AsyncIterable<PutResult>;
    // The store acknowledges batches that carried app_metadata; a Flight SQL client expects
    // exactly one DoPutUpdateResult, so those are consumed here.
    for await (const _ of acks) void _;
    yield { appMetadata: encodeFlightSql("DoPutUpdateResult", { recordCount: rows }) };
  }

  /**
   * DoPut of CommandPreparedStatementQuery: binds one row of parameters. The answer is a new
   * handle that carries the statement and the values; the values are checked now (bound once)
   * and again whenever the handle is used. Nothing is stored on the server.
   */
  async function* bindParameters(command: sql.CommandPreparedStatementQuery, rest: AsyncIterator<FlightData>): AsyncGenerator<PutResult> {
    const { sql: statement } = decodeHandle(command.preparedStatementHandle);
    const row = await readParameterRow(arrow, rest);
    const parameters = row ?? [];
    bindSqlParameters(statement, parameters);
    const handle = row === undefined ? command.preparedStatementHandle : encodeBoundHandle({ sql: statement, parameters });
    yield { appMetadata: encodeFlightSql("DoPutPreparedStatementResult", { preparedStatementHandle: handle }) };
  }

  async function doPut(call: FlightCall<"doPut">, next: FlightHandler): Promise<AsyncIterable<PutResult>> {
    const iterator = call.request[Symbol.asyncIterator]();
    const first = await iterator.next();
    const d = first.done ? undefined : first.value.flightDescriptor;
    const m = d && d.type === DescriptorType.CMD ? unpackFlightSql(d.cmd) : undefined;
    if (m === undefined) {
      const rest: AsyncIterable<FlightData> = first.done ? { [Symbol.asyncIterator]: () => iterator } : prepend(first.value, iterator);
      return next({ ...call, request: rest } as FlightCall) as Promise<AsyncIterable<PutResult>>;
    }
    if (m.message === undefined) throw unimplemented(m.name);
    if (m.name === "CommandStatementIngest") return ingest(m.message, first.value as FlightData, iterator, call, next);
    if (m.name === "CommandPreparedStatementQuery") return bindParameters(m.message, prepend(first.value as FlightData, iterator));
    throw unimplemented(`${m.name} in DoPut`);
  }

  async function doAction(call: FlightCall<"doAction">, next: FlightHandler): Promise<AsyncIterable<Result>> {
    const { type, body } = call.request;
    if (type === "CreatePreparedStatement") {
      const m = unpackFlightSql(body);
      if (m === undefined || m.message === undefined || m.name !== "ActionCreatePreparedStatementRequest") throw invalidArgument("CreatePreparedStatement: the body must be an ActionCreatePreparedStatementRequest packed in a google.protobuf.Any");
      requireNoTransaction(m.message.transactionId);
      const handle = encodePreparedHandle(m.message.query);
      // The result schema, from query()'s engine: a statement that does not parse is refused
      // here, with the engine's message. A statement with placeholders is described with NULL
      // bound to each (the engine takes no placeholders); its parameter schema is left empty,
      // as the types are the client's to choose.
      const n = sqlParameterCount(m.message.query);
      const described = n === 0 ? m.message.query : bindSqlParameters(m.message.query, Array.from({ length: n }, () => ({ type: "null" }) as const));
      const datasetSchema = await statementSchema(described, call, next);
      const answer = packFlightSql("ActionCreatePreparedStatementResult", { preparedStatementHandle: handle, datasetSchema, parameterSchema: EMPTY });
      return (async function* prepared() {
        yield { body: answer };
      })();
    }
    if (type === "ClosePreparedStatement") {
      const m = unpackFlightSql(body);
      if (m === undefined || m.message === undefined || m.name !== "ActionClosePreparedStatementRequest") throw invalidArgument("ClosePreparedStatement: the body must be an ActionClosePreparedStatementRequest packed in a google.protobuf.Any");
      decodeHandle(m.message.preparedStatementHandle);
      return (async function* closed() {})();
    }
    if (OTHER_SQL_ACTIONS.has(type)) throw unimplemented(`action ${type}`);
    return next(call) as Promise<AsyncIterable<Result>>;
  }

  return (next) =>
    async function flightSqlCall(call: FlightCall) {
      switch (call.method) {
        case "getFlightInfo":
        case "pollFlightInfo":
        case "getSchema": {
          const d = call.request;
          const m = d.type === DescriptorType.CMD ? unpackFlightSql(d.cmd) : undefined;
          if (m === undefined) return next(call);
          if (call.method === "getSchema") return schemaOf(m, call, next);
          const info = await describe(m, call, next);
          if (call.method === "getFlightInfo") return info;
          // Results are complete when described: nothing to poll again.
          return { info, flightDescriptor: undefined, progress: 1, expirationTime: undefined } satisfies PollInfo;
        }
        case "doGet": {
          const m = unpackFlightSql(call.request.ticket);
          return m === undefined ? next(call) : doGet(m, call, next);
        }
        case "doPut":
          return doPut(call, next);
        case "doAction":
          return doAction(call, next);
        case "listActions": {
          const listed = (await next(call)) as AsyncIterable<ActionType>;
          return (async function* withFlightSqlActions() {
            yield* listed;
            yield* SERVED_ACTIONS;
          })();
        }
        default:
          return next(call);
      }
    };
}
