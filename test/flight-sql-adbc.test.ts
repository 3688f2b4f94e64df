import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, flightSql, query, type FlightServer } from "@blackice/flight";
import { authorize, basicTokenAuth, pathPrefixPolicy } from "@blackice/flight-security";
import { run, venvPython } from "./helpers/python";
import * as fs from "node:fs";

const FLIGHT_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, "../packages/flight/package.json"), "utf8")) as { version: string }).version;

// Flight SQL under Python's ADBC Flight SQL driver (the Go driver shipped in the
// adbc-driver-flightsql wheel): login, metadata, ingest, statements, errors.
describe("Flight SQL with ADBC (adbc-driver-flightsql)", () => {
  let server: FlightServer;

  beforeAll(async () => {
    const passwords: Record<string, string> = { alice: "alice-password", bob: "bob-password" };
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      basicTokenAuth({ validate: async (user, pass) => (passwords[user] === pass ? { subject: user } : undefined) }),
      flightSql(),
      query(),
      authorize(pathPrefixPolicy({ alice: ["telemetry", "alice"], bob: ["public"] })),
    );
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });

  it("passes test/python/test_flight_sql_adbc.py", async () => {
    const result = await run(venvPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.join(__dirname, "python/test_flight_sql_adbc.py")], {
      env: { BLACKICE_FLIGHT_SQL_URI: `grpc://127.0.0.1:${server.port}`, BLACKICE_VERSION: FLIGHT_VERSION },
      timeoutMs: 240_000,
    });
    if (result.code !== 0) throw new Error(`pytest failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    expect(result.stdout).toMatch(/\b21 passed/);
    expect(result.stdout).not.toMatch(/failed|error|skipped/i);
  }, 300_000);
});
