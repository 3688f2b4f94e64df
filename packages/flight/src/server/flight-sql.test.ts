import { Table, makeData, makeVector, tableFromArrays, vectorFromArray, Bool, Field, Float64, Int32, Int64, List, TimestampMicrosecond, Utf8 } from "apache-arrow";
import { DescriptorType, FlightError, StatusCode, serverConfig, type FlightCall, type FlightMiddleware } from "@blackice/flight-core";
import { FlightClient } from "../client/flight-client";
import { cmdDescriptor, pathDescriptor } from "../client/descriptors";
import { readArrowSchema } from "../client/arrow-interop";
import * as sql from "../gen/FlightSql";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { FLIGHT_SQL_TYPE_PREFIX, encodeFlightSql, packFlightSql, readAny, unpackFlightSql, type FlightSqlMessages } from "./flight-sql-any";
import { likeMatcher, pathOfTable, tableNameOf } from "./flight-sql-names";
import { flightSql } from "./flight-sql";
import { TABLES_BATCH_BYTES, tablesResult } from "./flight-sql-results";
import { MessageKind, readMessageHeader } from "@blackice/flight-core";
import { encodeTable, loadArrow } from "../client/arrow-interop";

async function codeOf(p: Promise<unknown>): Promise<{ code: StatusCode; message: string } | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(FlightError);
    return { code: (e as FlightError).code, message: (e as FlightError).message };
  }
}

describe("Flight SQL messages in google.protobuf.Any", () => {
  // One message of each kind the server decodes, with every field set, round-tripped.
  const bytes = (v: string | number[]) => new Uint8Array(typeof v === "string" ? Buffer.from(v) : v);
  const samples: { [N in keyof FlightSqlMessages]: FlightSqlMessages[N] } = {
    CommandGetSqlInfo: { info: [0, 1, 504, 10_000] },
    CommandGetCatalogs: {},
    CommandGetDbSchemas: { catalog: "", dbSchemaFilterPattern: "fl%" },
    CommandGetTables: { catalog: undefined, dbSchemaFilterPattern: "flights", tableNameFilterPattern: "telemetry/%", tableTypes: ["TABLE", "VIEW"], includeSchema: true },
    CommandGetTableTypes: {},
    CommandStatementQuery: { query: 'SELECT cpu FROM "telemetry/host-1" WHERE cpu > 0.9', transactionId: undefined },
    CommandPreparedStatementQuery: { preparedStatementHandle: bytes("blackice.sql.prepared.v1:SELECT 1") },
    CommandStatementIngest: {
      tableDefinitionOptions: { ifNotExist: 1, ifExists: 2 },
      table: "telemetry/host-9",
      schema: "flights",
      catalog: undefined,
      temporary: false,
      transactionId: undefined,
      options: { k: "v" },
    },
    TicketStatementQuery: { statementHandle: bytes("blackice.query.v1:{}") },
    ActionCreatePreparedStatementRequest: { query: "SELECT 1", transactionId: bytes([1, 2]) },
    ActionClosePreparedStatementRequest: { preparedStatementHandle: bytes("h") },
    ActionCreatePreparedStatementResult: { preparedStatementHandle: bytes("h"), datasetSchema: bytes([1, 2, 3]), parameterSchema: new Uint8Array(0) },
    DoPutUpdateResult: { recordCount: 12345 },
    DoPutPreparedStatementResult: { preparedStatementHandle: bytes("h2") },
  };

  for (const [name, message] of Object.entries(samples) as [keyof FlightSqlMessages, never][]) {
    it(`packs and unpacks ${name}`, () => {
      const packed = packFlightSql(name, message);
      expect(readAny(packed)?.typeUrl).toBe(FLIGHT_SQL_TYPE_PREFIX + name);
      const back = unpackFlightSql(packed);
      expect(back?.name).toBe(name);
      expect(JSON.parse(JSON.stringify(back?.message))).toEqual(JSON.parse(JSON.stringify(message)));
    });
  }

  it("encodes update results bare, as PutResult.app_metadata carries them", () => {
    const bytes = encodeFlightSql("DoPutUpdateResult", { recordCount: 3 });
    expect([...bytes]).toEqual([0x08, 0x03]); // field 1, varint 3: no Any around it
    expect(sql.DoPutUpdateResult.decode(bytes).recordCount).toBe(3);
  });

  it("tells Flight SQL from other bytes, and names the messages it does not implement", () => {
    expect(unpackFlightSql(Buffer.from('{"flight":["a"]}'))).toBeUndefined();
    expect(unpackFlightSql(Buffer.from("p:telemetry/host-1"))).toBeUndefined();
    expect(unpackFlightSql(new Uint8Array(0))).toBeUndefined();
    // An Any of another package is not Flight SQL.
    const other = new Uint8Array([0x0a, 3, 0x61, 0x2f, 0x62]);
    expect(unpackFlightSql(other)).toBeUndefined();
    const update = Buffer.concat([Buffer.from([0x0a, FLIGHT_SQL_TYPE_PREFIX.length + 22]), Buffer.from(FLIGHT_SQL_TYPE_PREFIX + "CommandStatementUpdate")]);
    expect(unpackFlightSql(update)).toEqual({ name: "CommandStatementUpdate", message: undefined });
  });

  it("refuses a Flight SQL message that does not decode, naming it", () => {
    const url = Buffer.from(FLIGHT_SQL_TYPE_PREFIX + "CommandGetTables");
    const bad = Buffer.concat([Buffer.from([0x0a, url.length]), url, Buffer.from([0x12, 2, 0x0a, 0x7f])]); // catalog claims 127 bytes
    expect(() => unpackFlightSql(bad)).toThrow(/malformed Flight SQL CommandGetTables/);
  });
});

describe("tables and LIKE patterns", () => {
  it("maps flight paths to table names and back", () => {
    expect(tableNameOf(["telemetry", "host-1"])).toBe("telemetry/host-1");
    expect(pathOfTable("telemetry/host-1")).toEqual(["telemetry", "host-1"]);
    expect(tableNameOf(["a/b"])).toBeUndefined();
    expect(tableNameOf(["a", ""])).toBeUndefined();
    expect(tableNameOf([])).toBeUndefined();
    expect(() => pathOfTable("a//b")).toThrow(/not a flight path/);
    expect(() => pathOfTable("")).toThrow(/not a flight path/);
  });

  it("matches % and _ as SQL's LIKE does, with \\ escaping, and nothing else as a wildcard", () => {
    const m = (p: string, s: string) => likeMatcher(p)(s);
    expect(m("telemetry/%", "telemetry/host-1")).toBe(true);
    expect(m("telemetry/%", "Telemetry/host-1")).toBe(false);
    expect(m("%host_1", "telemetry/host-1")).toBe(true);
    expect(m("%host_1", "telemetry/host-10")).toBe(false);
    expect(m("host\\_1", "host_1")).toBe(true);
    expect(m("host\\_1", "host-1")).toBe(false);
    expect(m("a.c", "abc")).toBe(false);
    expect(m("(a)[b]{1}*+?$^|", "(a)[b]{1}*+?$^|")).toBe(true);
    expect(m("_", "é")).toBe(true);
    expect(m("%", "")).toBe(true);
    expect(m("", "")).toBe(true);
    expect(m("", "a")).toBe(false);
    expect(m("a%", "a")).toBe(true);
    expect(m("%a%b%", "xaybz")).toBe(true);
    expect(m("%a%b%", "xbyaz")).toBe(false);
    expect(m("trailing\\", "trailing\\")).toBe(true); // a lone escape at the end is itself
  });

  it("matches a pattern that would make a regular expression backtrack exponentially, at once", () => {
    const started = Date.now();
    expect(likeMatcher("%a".repeat(40) + "%b")("a".repeat(5000))).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("CommandGetTables results", () => {
  it("are split into record batches of at most TABLES_BATCH_BYTES of schemas", () => {
    const schema = new Uint8Array(1024 * 1024);
    const rows = Array.from({ length: 25 }, (_, i) => ({ catalog: null, dbSchema: "flights", table: `t/${i}`, tableType: "TABLE", schema }));
    const batches = [...tablesResult(loadArrow(), rows, true).messages()]
      .map((m) => readMessageHeader(m.dataHeader, m.dataBody.byteLength))
      .filter((h) => h.kind === MessageKind.RECORD_BATCH);
    expect(batches.reduce((n, b) => n + b.rows, 0)).toBe(25);
    expect(batches.every((b) => b.rows <= TABLES_BATCH_BYTES / schema.byteLength)).toBe(true);
    expect(batches.length).toBeGreaterThanOrEqual(7);
    // No tables: one empty batch, as before
    expect([...tablesResult(loadArrow(), [], false).messages()].length).toBeGreaterThanOrEqual(1);
  });
});

describe("flightSql() on a server", () => {
  let server: FlightServer;
  let client: FlightClient;
  const seen: string[] = [];
  // Records the calls that reach the middleware after flightSql().
  const recorder: FlightMiddleware = (next) =>
    async function record(call: FlightCall) {
      if (call.method === "getFlightInfo" || call.method === "getSchema") seen.push(`${call.method} ${call.request.type === DescriptorType.PATH ? call.request.path.join("/") : Buffer.from(call.request.cmd).toString()}`);
      else seen.push(call.method);
      return next(call);
    };
  const table = new Table({ ts: vectorFromArray([1, 2, 3], new Float64()), host: vectorFromArray(["a", "b", "c"], new Utf8()), n: vectorFromArray([1, 2, 3], new Int32()) });
  const cmd = <N extends keyof FlightSqlMessages>(name: N, m: FlightSqlMessages[N]) => cmdDescriptor(packFlightSql(name, m));

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), flightSql(), recorder);
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    await client.putTable(pathDescriptor("telemetry", "host-1"), table);
    await client.putTable(pathDescriptor("telemetry", "host-2"), table);
    await client.putTable(pathDescriptor("other", "x_y"), table);
    await client.putTable(pathDescriptor("a/b"), table); // no table name stands for it
    await client.putTable(cmdDescriptor("some command"), table); // not a path: not a table
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("validates its options when built", () => {
    expect(() => flightSql({ catalog: "x" } as never)).toThrow('flightSql: unknown option "catalog"; known options: dbSchema, serverName');
    expect(() => flightSql({ dbSchema: "" })).toThrow(/dbSchema must be a string of 1 to 256 characters/);
    expect(() => flightSql(null as never)).toThrow(TypeError);
  });

  async function rows(descriptorCmd: ReturnType<typeof cmd>) {
    const info = await client.getFlightInfo(descriptorCmd);
    const t = await client.getTable(info.endpoint[0]!.ticket!);
    // The FlightInfo's schema is the one DoGet streams.
    expect(readArrowSchema(info).fields.map((f) => `${f.name}:${f.type}:${f.nullable}`)).toEqual(t.schema.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`));
    return t.toArray().map((r) => r.toJSON());
  }

  it("lists no catalogs, one db schema, and the table types", async () => {
    expect(await rows(cmd("CommandGetCatalogs", {}))).toEqual([]);
    expect(await rows(cmd("CommandGetDbSchemas", {}))).toEqual([{ catalog_name: null, db_schema_name: "flights" }]);
    expect(await rows(cmd("CommandGetDbSchemas", { dbSchemaFilterPattern: "x%" }))).toEqual([]);
    expect(await rows(cmd("CommandGetDbSchemas", { catalog: "c" }))).toEqual([]);
    expect(await rows(cmd("CommandGetTableTypes", {}))).toEqual([{ table_type: "TABLE" }]);
  });

  it("lists the path flights as tables, sorted, filtered by LIKE patterns, with their schemas when asked", async () => {
    const all = { tableTypes: [] as string[], includeSchema: false };
    const names = async (m: Partial<sql.CommandGetTables>) => (await rows(cmd("CommandGetTables", { ...all, ...m }))).map((r) => (r as { table_name: string }).table_name);
    expect(await names({})).toEqual(["other/x_y", "telemetry/host-1", "telemetry/host-2"]);
    expect(await names({ tableNameFilterPattern: "telemetry/%" })).toEqual(["telemetry/host-1", "telemetry/host-2"]);
    expect(await names({ tableNameFilterPattern: "%x\\_y" })).toEqual(["other/x_y"]);
    expect(await names({ tableTypes: ["VIEW"] })).toEqual([]);
    expect(await names({ catalog: "c" })).toEqual([]);
    expect(await names({ dbSchemaFilterPattern: "nope" })).toEqual([]);
    const withSchema = (await rows(cmd("CommandGetTables", { ...all, tableNameFilterPattern: "telemetry/host-1", includeSchema: true }))) as Record<string, unknown>[];
    expect(withSchema).toHaveLength(1);
    expect(withSchema[0]).toMatchObject({ catalog_name: null, db_schema_name: "flights", table_name: "telemetry/host-1", table_type: "TABLE" });
    expect(readArrowSchema(withSchema[0]!.table_schema as Uint8Array).fields.map((f) => f.name)).toEqual(["ts", "host", "n"]);
    // The listing went down the chain, so authorize placed after flightSql() filters it.
    seen.length = 0;
    await names({});
    expect(seen).toContain("listFlights");
  });

  it("answers CommandGetSqlInfo with the ids asked for, ignoring unknown ones", async () => {
    const got = (await rows(cmd("CommandGetSqlInfo", { info: [sql.SqlInfo.FLIGHT_SQL_SERVER_NAME, sql.SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY, sql.SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION, 10_999] }))) as { info_name: number; value: unknown }[];
    expect(got).toEqual([
      { info_name: 0, value: "BlackIce Flight" },
      { info_name: 3, value: false },
      { info_name: 8, value: 0 },
    ]);
    const everything = (await rows(cmd("CommandGetSqlInfo", { info: [] }))) as { info_name: number; value: unknown }[];
    expect(everything.find((r) => r.info_name === sql.SqlInfo.FLIGHT_SQL_SERVER_BULK_INGESTION)?.value).toBe(true);
    expect(everything.find((r) => r.info_name === sql.SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR)?.value).toBe('"');
  });

  it("answers GetSchema and PollFlightInfo of metadata commands", async () => {
    expect(readArrowSchema(await client.getSchema(cmd("CommandGetTableTypes", {}))).fields.map((f) => f.name)).toEqual(["table_type"]);
    const poll = await client.pollFlightInfo(cmd("CommandGetCatalogs", {}));
    expect(poll.progress).toBe(1);
    expect(readArrowSchema(poll.info!).fields.map((f) => f.name)).toEqual(["catalog_name"]);
  });

  it("ingests as a DoPut of the table's path, answering the rows ingested, with the create/append/fail options", async () => {
    const arrow = loadArrow();
    const ingest = (options: Partial<sql.CommandStatementIngest>) => {
      const command: sql.CommandStatementIngest = { tableDefinitionOptions: { ifNotExist: 1, ifExists: 1 }, table: "new/t", schema: undefined, catalog: undefined, temporary: false, transactionId: undefined, options: {}, ...options };
      return (async () => {
        const out = [];
        for await (const r of client.doPutRaw(cmd("CommandStatementIngest", command), encodeTable(arrow, table)).results) out.push(r);
        return out;
      })();
    };
    seen.length = 0;
    const [result] = await ingest({});
    expect(sql.DoPutUpdateResult.decode(result!.appMetadata).recordCount).toBe(3);
    expect(seen).toEqual(["getFlightInfo new/t", "doPut"]);
    expect((await client.getTable(pathDescriptor("new", "t"))).numRows).toBe(3);
    // create again: the table exists
    expect(await codeOf(ingest({}))).toMatchObject({ code: StatusCode.ALREADY_EXISTS, message: expect.stringContaining('table "new/t" already exists') });
    // append
    await ingest({ tableDefinitionOptions: { ifNotExist: 2, ifExists: 2 }, schema: "flights" });
    expect((await client.getTable(pathDescriptor("new", "t"))).numRows).toBe(6);
    // append to a table that does not exist
    expect(await codeOf(ingest({ table: "none/t", tableDefinitionOptions: { ifNotExist: 2, ifExists: 2 } }))).toMatchObject({ code: StatusCode.NOT_FOUND });
    // refused options, and nothing stored
    expect(await codeOf(ingest({ tableDefinitionOptions: { ifNotExist: 1, ifExists: 3 } }))).toMatchObject({ code: StatusCode.UNIMPLEMENTED, message: expect.stringContaining("REPLACE") });
    expect(await codeOf(ingest({ table: "x/t", tableDefinitionOptions: { ifNotExist: 0, ifExists: 1 } }))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
    expect(await codeOf(ingest({ table: "x/t", temporary: true }))).toMatchObject({ code: StatusCode.UNIMPLEMENTED });
    expect(await codeOf(ingest({ table: "x/t", transactionId: Buffer.from("t") }))).toMatchObject({ code: StatusCode.UNIMPLEMENTED, message: expect.stringContaining("transactions") });
    expect(await codeOf(ingest({ table: "x/t", catalog: "c" }))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
    expect(await codeOf(ingest({ table: "x/t", schema: "other" }))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining('"flights"') });
    expect(await codeOf(ingest({ table: "x//t" }))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
    expect(await codeOf(ingest({ table: "x/t", options: { a: "b" } }))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining('"a"') });
    expect(await codeOf(client.getFlightInfo(pathDescriptor("x", "t")))).toMatchObject({ code: StatusCode.NOT_FOUND });
  });

  it("answers UNIMPLEMENTED, naming what is implemented, for the other commands and actions", async () => {
    const update = cmdDescriptor(Buffer.concat([Buffer.from([0x0a, FLIGHT_SQL_TYPE_PREFIX.length + 21]), Buffer.from(FLIGHT_SQL_TYPE_PREFIX + "CommandGetPrimaryKeys")]));
    const e = await codeOf(client.getFlightInfo(update));
    expect(e).toMatchObject({ code: StatusCode.UNIMPLEMENTED, message: expect.stringContaining("CommandGetPrimaryKeys is not implemented") });
    expect(e!.message).toContain("implemented: CommandGetSqlInfo");
    expect(await codeOf(client.doAction("BeginTransaction", packFlightSql("CommandGetCatalogs", {})))).toMatchObject({ code: StatusCode.UNIMPLEMENTED });
    expect(await codeOf(client.getTable(packFlightSql("CommandStatementIngest", { tableDefinitionOptions: undefined, table: "t", temporary: false, options: {} } as never)))).toMatchObject({
      code: StatusCode.UNIMPLEMENTED,
    });
    // A malformed command, ticket or action body is INVALID_ARGUMENT; the server keeps serving.
    const url = Buffer.from(FLIGHT_SQL_TYPE_PREFIX + "CommandGetTables");
    expect(await codeOf(client.getFlightInfo(cmdDescriptor(Buffer.concat([Buffer.from([0x0a, url.length]), url, Buffer.from([0x12, 2, 0x0a, 0x7f])]))))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
    expect(await codeOf(client.doAction("ClosePreparedStatement", Buffer.from("junk")))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
    expect(await codeOf(client.doAction("ClosePreparedStatement", packFlightSql("ActionClosePreparedStatementRequest", { preparedStatementHandle: Buffer.from("forged") })))).toMatchObject({
      code: StatusCode.INVALID_ARGUMENT,
    });
    expect((await rows(cmd("CommandGetTableTypes", {}))).length).toBe(1);
  });

  it("lists its actions after the server's, and leaves other calls alone", async () => {
    const types = (await client.listActions()).map((a) => a.type);
    expect(types).toEqual(expect.arrayContaining(["CreatePreparedStatement", "ClosePreparedStatement", "stats"]));
    expect((await client.getTable(pathDescriptor("telemetry", "host-1"))).numRows).toBe(3);
    expect((await client.getTable(cmdDescriptor("some command"))).numRows).toBe(3);
  });
});

describe("flightSql() statements, over a stand-in for query()", () => {
  // A middleware in query()'s place: it answers the {"sql": ...} command with a fixed schema
  // and the ticket "engine:<sql>", and a DoGet of that ticket with a one-column table.
  const arrow = loadArrow();
  const result = new Table({ n: vectorFromArray([42], new Int32()) });
  const resultMessages = () => encodeTable(arrow, result);
  const resultSchema = () => {
    const first = resultMessages().next().value!;
    return Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from(new Int32Array([first.dataHeader.byteLength]).buffer), first.dataHeader]);
  };
  const asked: string[] = [];
  const engine: FlightMiddleware = (next) =>
    async function standIn(call: FlightCall) {
      if ((call.method === "getFlightInfo" || call.method === "getSchema") && call.request.type === DescriptorType.CMD) {
        const { sql: statement } = JSON.parse(Buffer.from(call.request.cmd).toString()) as { sql: string };
        asked.push(`${call.method} ${statement}`);
        if (statement.includes("nonsense")) throw new FlightError(StatusCode.INVALID_ARGUMENT, "query: the SQL statement does not parse");
        if (call.method === "getSchema") return { schema: resultSchema() };
        return {
          schema: resultSchema(),
          flightDescriptor: call.request,
          endpoint: [{ ticket: { ticket: Buffer.from(`engine:${statement}`) }, location: [], expirationTime: undefined, appMetadata: new Uint8Array(0) }],
          totalRecords: -1,
          totalBytes: -1,
          ordered: false,
          appMetadata: new Uint8Array(0),
        };
      }
      if (call.method === "doGet" && Buffer.from(call.request.ticket).toString().startsWith("engine:")) {
        asked.push(`doGet ${Buffer.from(call.request.ticket).toString()}`);
        return (async function* rows() {
          yield* resultMessages();
        })();
      }
      return next(call);
    };
  let server: FlightServer;
  let client: FlightClient;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), flightSql(), engine);
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("runs CommandStatementQuery as query()'s sql command, its ticket a TicketStatementQuery wrapping query()'s", async () => {
    asked.length = 0;
    const info = await client.getFlightInfo(cmdDescriptor(packFlightSql("CommandStatementQuery", { query: "SELECT 42 AS n", transactionId: undefined })));
    const ticket = unpackFlightSql(info.endpoint[0]!.ticket!.ticket);
    expect(ticket?.name).toBe("TicketStatementQuery");
    expect(Buffer.from((ticket!.message as sql.TicketStatementQuery).statementHandle).toString()).toBe("engine:SELECT 42 AS n");
    expect([...(await client.getTable(info.endpoint[0]!.ticket!)).getChild("n")!]).toEqual([42]);
    expect(asked).toEqual(["getFlightInfo SELECT 42 AS n", "doGet engine:SELECT 42 AS n"]);
    expect(readArrowSchema(await client.getSchema(cmdDescriptor(packFlightSql("CommandStatementQuery", { query: "SELECT 42 AS n", transactionId: undefined })))).fields.map((f) => f.name)).toEqual(["n"]);
    expect(await codeOf(client.getFlightInfo(cmdDescriptor(packFlightSql("CommandStatementQuery", { query: "SELECT 1", transactionId: Buffer.from("tx") }))))).toMatchObject({ code: StatusCode.UNIMPLEMENTED });
  });

  it("prepares statements into self-contained handles with the dataset schema, runs them, refuses values for a statement without placeholders", async () => {
    const [created] = await client.doAction("CreatePreparedStatement", packFlightSql("ActionCreatePreparedStatementRequest", { query: "SELECT 42 AS n", transactionId: undefined }));
    const prepared = unpackFlightSql(created!.body);
    expect(prepared?.name).toBe("ActionCreatePreparedStatementResult");
    const { preparedStatementHandle: handle, datasetSchema } = prepared!.message as sql.ActionCreatePreparedStatementResult;
    expect(Buffer.from(handle).toString()).toBe("blackice.sql.prepared.v1:SELECT 42 AS n");
    expect(readArrowSchema(datasetSchema).fields.map((f) => f.name)).toEqual(["n"]);
    const command = cmdDescriptor(packFlightSql("CommandPreparedStatementQuery", { preparedStatementHandle: handle }));
    const info = await client.getFlightInfo(command);
    expect([...(await client.getTable(info.endpoint[0]!.ticket!)).getChild("n")!]).toEqual([42]);
    // Binding: an empty parameter stream is acknowledged with the same handle; values are refused.
    const bind = async (table: Table, schemaOnly = false) => {
      const out = [];
      const messages = [...encodeTable(arrow, table)];
      for await (const r of client.doPutRaw(command, schemaOnly ? messages.slice(0, 1) : messages).results) out.push(r);
      return out;
    };
    const [ack] = await bind(tableFromArrays({ p: Float64Array.from([0.5]) }), true);
    expect(Buffer.from(sql.DoPutPreparedStatementResult.decode(ack!.appMetadata).preparedStatementHandle!).toString()).toBe("blackice.sql.prepared.v1:SELECT 42 AS n");
    expect(await codeOf(bind(tableFromArrays({ p: Float64Array.from([0.5]) })))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining("takes 0 parameters; 1 given") });
    expect(await client.doAction("ClosePreparedStatement", packFlightSql("ActionClosePreparedStatementRequest", { preparedStatementHandle: handle }))).toEqual([]);
    // A statement the engine refuses is refused when prepared, with its message.
    expect(await codeOf(client.doAction("CreatePreparedStatement", packFlightSql("ActionCreatePreparedStatementRequest", { query: "SELEC nonsense", transactionId: undefined })))).toMatchObject({
      code: StatusCode.INVALID_ARGUMENT,
      message: expect.stringContaining("does not parse"),
    });
  });

  it("binds one row of parameters into a handle that carries them, written into the statement as literals", async () => {
    asked.length = 0;
    const statement = 'SELECT n FROM "t" WHERE n > $1 AND host = $2 AND ts < $3 AND ok = $4 AND k = $5';
    const [created] = await client.doAction("CreatePreparedStatement", packFlightSql("ActionCreatePreparedStatementRequest", { query: statement, transactionId: undefined }));
    const { preparedStatementHandle: handle } = unpackFlightSql(created!.body)!.message as sql.ActionCreatePreparedStatementResult;
    // Described with NULL in each placeholder's place: the engine takes no placeholders.
    expect(asked).toEqual(['getSchema SELECT n FROM "t" WHERE n > NULL AND host = NULL AND ts < NULL AND ok = NULL AND k = NULL']);
    const command = cmdDescriptor(packFlightSql("CommandPreparedStatementQuery", { preparedStatementHandle: handle }));
    const bind = async (table: Table) => {
      const out = [];
      for await (const r of client.doPutRaw(command, [...encodeTable(arrow, table)]).results) out.push(r);
      return out;
    };
    const params = new Table({
      p: vectorFromArray([0.5], new Float64()),
      h: vectorFromArray(["x' OR '1'='1"], new Utf8()),
      ts: makeVector(makeData({ type: new TimestampMicrosecond(), length: 1, data: BigInt64Array.from([1_700_000_000_123n]) })),
      ok: vectorFromArray([true], new Bool()),
      k: vectorFromArray([null], new Int64()),
    });
    const [ack] = await bind(params);
    const bound = sql.DoPutPreparedStatementResult.decode(ack!.appMetadata).preparedStatementHandle!;
    expect(Buffer.from(bound).toString()).toMatch(/^blackice\.sql\.bound\.v1:/);
    asked.length = 0;
    const info = await client.getFlightInfo(cmdDescriptor(packFlightSql("CommandPreparedStatementQuery", { preparedStatementHandle: bound })));
    const ran = "SELECT n FROM \"t\" WHERE n > 0.5 AND host = 'x'' OR ''1''=''1' AND ts < TIMESTAMP '1970-01-20 16:13:20.000123' AND ok = TRUE AND k = NULL";
    expect(asked).toEqual([`getFlightInfo ${ran}`]);
    expect([...(await client.getTable(info.endpoint[0]!.ticket!)).getChild("n")!]).toEqual([42]);
    // The unbound handle refuses to run: its placeholders have no values.
    expect(await codeOf(client.getFlightInfo(command))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining("takes 5 parameters; 0 given") });
  });

  it("refuses more than one row, a type that cannot be bound, the wrong count, a stream over its bound, and a forged bound handle", async () => {
    const [created] = await client.doAction("CreatePreparedStatement", packFlightSql("ActionCreatePreparedStatementRequest", { query: 'SELECT n FROM "t" WHERE n > $1', transactionId: undefined }));
    const { preparedStatementHandle: handle } = unpackFlightSql(created!.body)!.message as sql.ActionCreatePreparedStatementResult;
    const command = cmdDescriptor(packFlightSql("CommandPreparedStatementQuery", { preparedStatementHandle: handle }));
    const bind = async (table: Table) => {
      const out = [];
      for await (const r of client.doPutRaw(command, [...encodeTable(arrow, table)]).results) out.push(r);
      return out;
    };
    expect(await codeOf(bind(tableFromArrays({ p: Float64Array.from([1, 2]) })))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining("one row of parameters") });
    expect(await codeOf(bind(new Table({ p: vectorFromArray([[1, 2]], new List(new Field("item", new Int32()))) })))).toMatchObject({
      code: StatusCode.INVALID_ARGUMENT,
      message: expect.stringContaining('parameter "p" has the type List<Int32>'),
    });
    expect(await codeOf(bind(tableFromArrays({ p: Float64Array.from([1]), q: Float64Array.from([2]) })))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining("takes 1 parameter; 2 given") });
    expect(await codeOf(bind(new Table({ p: vectorFromArray(["x".repeat(70_000)], new Utf8()) })))).toMatchObject({ code: StatusCode.RESOURCE_EXHAUSTED, message: expect.stringContaining("parameter stream is over") });
    const forged = (json: string) => cmdDescriptor(packFlightSql("CommandPreparedStatementQuery", { preparedStatementHandle: Buffer.from(`blackice.sql.bound.v1:${json}`) }));
    expect(await codeOf(client.getFlightInfo(forged('{"sql":"SELECT n FROM \\"t\\" WHERE n > $1","parameters":[{"type":"int","value":"1 OR 1=1"}]}')))).toMatchObject({
      code: StatusCode.INVALID_ARGUMENT,
      message: expect.stringContaining("an int value must be decimal digits"),
    });
    expect(await codeOf(client.getFlightInfo(forged("{not json")))).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining("malformed bound parameters") });
    // The server is still up.
    const [again] = await bind(tableFromArrays({ p: Float64Array.from([1]) }));
    expect(Buffer.from(sql.DoPutPreparedStatementResult.decode(again!.appMetadata).preparedStatementHandle!).toString()).toContain('"type":"float","value":1');
  });
});
