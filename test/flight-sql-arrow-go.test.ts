import * as fs from "node:fs";
import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, flightSql, query, type FlightServer } from "@blackice/flight";
import { run } from "./helpers/python";

// arrow-go's Flight SQL integration scenarios (flight_sql, flight_sql:extension,
// flight_sql:ingestion) with its integration client against flightSql() over an empty store.
// The scenarios check a server of canned fixtures (docs/conformance.md, "Flight SQL"): after
// the checks a real server can pass, each stops at the first canned answer. The test pins
// where: a scenario that gets further, or stops earlier or elsewhere, fails it.
const CLIENT = path.resolve(__dirname, "../.cache/go-bin/arrow-flight-integration-client");

describe("arrow-go's flight_sql integration scenarios against flightSql()", () => {
  let server: FlightServer;

  beforeAll(async () => {
    if (!fs.existsSync(CLIENT)) throw new Error(`${CLIENT} is missing: run scripts/install-go-peers.sh (npm test does, through scripts/ensure-test-peers.js)`);
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), flightSql(), query());
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });

  const scenario = (name: string) => run(CLIENT, ["-host", "127.0.0.1", "-port", String(server.port), "-scenario", name], { timeoutMs: 60_000 });

  it("flight_sql: catalogs, db schemas, tables (with and without schemas) and table types match arrow-go's reference schemas; it stops at CommandGetPrimaryKeys", async () => {
    const r = await scenario("flight_sql");
    // The checks before it (DoGet and GetSchema of each metadata command, compared with
    // flightsql/schema_ref) passed: the first refusal is the first command not implemented.
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/code = Unimplemented desc = Flight SQL CommandGetPrimaryKeys is not implemented by this server/);
  }, 90_000);

  it("flight_sql:extension: the same, and CommandGetSqlInfo's schema matches; it stops at the fixture's SqlInfo values", async () => {
    const r = await scenario("flight_sql:extension");
    expect(r.code).not.toBe(0);
    // A SqlInfo value of the fixture server (which one depends on Go's map order), e.g. 8,
    // FLIGHT_SQL_SERVER_TRANSACTION: the fixture says savepoints (2), this server has no
    // transactions (0). The values were read: the union's schema matched arrow-go's.
    expect(r.stderr).toMatch(/panic: expected: '%!s\(\w+=[^)]*\)', got: '%!s\(\w+=[^)]*\)': \d+ did not match/);
    expect(r.stderr).not.toMatch(/schemas did not match/);
  }, 90_000);

  it("flight_sql:ingestion: it ingests inside a transaction, refused as UNIMPLEMENTED", async () => {
    const r = await scenario("flight_sql:ingestion");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/code = Unimplemented desc = Flight SQL transactions are not supported by this server/);
  }, 90_000);
});
