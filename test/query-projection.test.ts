import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, query, type FlightServer } from "@blackice/flight";
import { authorize, basicTokenAuth, pathPrefixPolicy } from "@blackice/flight-security";
import { run, venvPython } from "./helpers/python";

// Query projection (docs/query.md) under pyarrow's Flight client (Arrow C++): results are
// compared with pyarrow's own table.select, value for value and buffer for buffer.
describe("query projection with pyarrow.flight", () => {
  let plain: FlightServer;
  let secured: FlightServer;

  beforeAll(async () => {
    plain = createFlightServer(serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000 }), query());
    const passwords: Record<string, string> = { alice: "alice-password", admin: "admin-password" };
    secured = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000 }),
      basicTokenAuth({ validate: async (user, pass) => (passwords[user] === pass ? { subject: user } : undefined) }),
      // authorize before query(): it resolves query descriptors and tickets to the flight read.
      authorize(pathPrefixPolicy({ alice: ["public"], admin: ["*"] })),
      query(),
    );
    await Promise.all([plain.start(), secured.start()]);
  });
  afterAll(async () => {
    await Promise.all([plain?.shutdown({ graceMs: 100 }), secured?.shutdown({ graceMs: 100 })]);
  });

  it("passes test/python/test_query_projection.py", async () => {
    const result = await run(venvPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.join(__dirname, "python/test_query_projection.py")], {
      env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${plain.port}`, BLACKICE_AUTH_URI: `grpc+tcp://127.0.0.1:${secured.port}` },
      timeoutMs: 240_000,
    });
    if (result.code !== 0) throw new Error(`pytest failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    // 11 column subsets x 3 compressions, the whole flight, bad descriptors, bad tickets, authorization.
    expect(result.stdout).toMatch(/\b37 passed/);
    expect(result.stdout).not.toMatch(/failed|error|skipped/i);
  }, 300_000);
});
