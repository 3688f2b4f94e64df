import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { tableFromArrays } from "apache-arrow";
import { FlightError, StatusCode } from "@blackice/flight-core";
import { FlightClient, cmdDescriptor, createFlightServer, pathDescriptor, query, type FlightServer } from "@blackice/flight";
import { authorize, basicTokenAuth, pathPrefixPolicy, type AccessRequest } from "@blackice/flight-security";
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
    // 11 column subsets x 3 compressions, large batches, the whole flight, bad descriptors, bad tickets, authorization.
    expect(result.stdout).toMatch(/\b38 passed/);
    expect(result.stdout).not.toMatch(/failed|error|skipped/i);
  }, 300_000);
});

describe("authorize placed after query()", () => {
  it("is asked about the queried flight, as a read, and refuses the flights it does not grant", async () => {
    const asked: AccessRequest[] = [];
    const server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      query(),
      authorize((r) => {
        asked.push(r);
        return r.operation === "write" || (r.operation === "read" && r.descriptor?.path[0] === "public");
      }),
    );
    await server.start();
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    try {
      const t = tableFromArrays({ a: Int32Array.from([1, 2]), b: Float64Array.from([0.5, 1.5]) });
      await client.putTable(pathDescriptor("public", "t"), t);
      await client.putTable(pathDescriptor("secret", "t"), t);
      asked.length = 0;
      const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ flight: ["public", "t"], columns: ["b"] })));
      expect([...(await client.getTable(info.endpoint[0]!.ticket!)).getChild("b")!]).toEqual([0.5, 1.5]);
      // The policy saw the flight's path and its store ticket's flight, never the query command.
      expect(asked.map((r) => [r.method, r.operation, r.descriptor?.path])).toEqual([
        ["getFlightInfo", "read", ["public", "t"]],
        ["doGet", "read", ["public", "t"]],
      ]);
      const refused = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ flight: ["secret", "t"], columns: ["b"] }))).catch((e) => e);
      expect(refused).toBeInstanceOf(FlightError);
      expect((refused as FlightError).code).toBe(StatusCode.UNAUTHENTICATED); // refused, and the call has no identity
      const ticket = Buffer.from(`blackice.query.v1:{"ticket":"${Buffer.from("p:secret/t").toString("base64")}","columns":["b"]}`);
      const forged = await client.getTable(ticket).catch((e) => e);
      expect((forged as FlightError).code).toBe(StatusCode.UNAUTHENTICATED);
    } finally {
      client.close();
      await server.shutdown({ graceMs: 100 });
    }
  });
});
