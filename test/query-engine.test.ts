import * as path from "node:path";
import { spawn } from "node:child_process";
import { tableFromArrays } from "apache-arrow";
import { FlightError, StatusCode, serverConfig } from "@blackice/flight-core";
import { FlightClient, cmdDescriptor, createFlightServer, createQueryEngine, pathDescriptor, query, type FlightServer, type QueryEngine } from "@blackice/flight";
import { authorize, type AccessRequest } from "@blackice/flight-security";
import { run, venvPython } from "./helpers/python";

// Filters and SQL on the embedded engine (docs/query.md) under pyarrow's Flight client, with
// DuckDB as the independent engine (test/python/test_query_engine.py).
describe("query engine with pyarrow.flight and DuckDB", () => {
  let plain: FlightServer;
  let small: FlightServer;
  let engine: QueryEngine;
  let smallEngine: QueryEngine;

  beforeAll(async () => {
    engine = createQueryEngine({ processes: 2 });
    smallEngine = createQueryEngine({ processes: 1, maxInputBytes: 200_000, timeoutMs: 3000 });
    plain = createFlightServer(serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000 }), query({ engine }));
    small = createFlightServer(serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000 }), query({ engine: smallEngine }));
    await Promise.all([plain.start(), small.start()]);
  });
  afterAll(async () => {
    await Promise.all([plain?.shutdown({ graceMs: 100 }), small?.shutdown({ graceMs: 100 })]);
    await Promise.all([engine?.close(), smallEngine?.close()]);
  });

  it("passes test/python/test_query_engine.py", async () => {
    const result = await run(venvPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.join(__dirname, "python/test_query_engine.py")], {
      env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${plain.port}`, BLACKICE_SMALL_URI: `grpc+tcp://127.0.0.1:${small.port}` },
      timeoutMs: 400_000,
    });
    if (result.code !== 0) throw new Error(`pytest failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    // 5 filters, 1 columns+limit, 34 SQL queries + the count check, 2 error tests, 9 unreadable types, input cap, deadline.
    expect(result.stdout).toMatch(/\b54 passed/);
    expect(result.stdout).not.toMatch(/failed|error|skipped/i);
  }, 420_000);

  it("kills the engine process of a query whose client went away, and serves the next one", async () => {
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${small.port}`);
    try {
      const n = 1500;
      const t = tableFromArrays({ cpu: Float64Array.from({ length: n }, (_, i) => (i % 97) / 97) });
      await client.putTable(pathDescriptor("cancel", "t"), t);
      const sql = 'SELECT count(*) AS n FROM "cancel/t" a CROSS JOIN "cancel/t" b CROSS JOIN "cancel/t" d WHERE a.cpu + b.cpu > d.cpu';
      const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ sql })));
      const ticket = Buffer.from(info.endpoint[0]!.ticket!.ticket).toString("base64");
      const killedBefore = smallEngine.stats().killed;
      // A pyarrow process redeems the ticket and is killed mid-query (SIGKILL: its connection drops).
      const py = spawn(venvPython(), ["-c", `import base64, pyarrow.flight as f; f.FlightClient("grpc+tcp://127.0.0.1:${small.port}").do_get(f.Ticket(base64.b64decode("${ticket}"))).read_all()`]);
      const deadline = Date.now() + 20_000;
      while (smallEngine.stats().running === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(smallEngine.stats().running).toBe(1);
      py.kill("SIGKILL");
      while (smallEngine.stats().running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(smallEngine.stats().running).toBe(0);
      // Killed by the cancellation (the deadline test in pytest shows the 3 s timeout's own message).
      expect(smallEngine.stats().killed).toBe(killedBefore + 1);
      const again = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ sql: 'SELECT count(*) AS n FROM "cancel/t"' })));
      expect((await client.getTable(again.endpoint[0]!.ticket!)).getChild("n")!.get(0)).toBe(n);
    } finally {
      client.close();
    }
  }, 60_000);
});

describe("authorize and SQL over several flights", () => {
  it("asks the policy about every flight a statement reads, and refuses when one is denied", async () => {
    const asked: AccessRequest[] = [];
    const engine = createQueryEngine();
    const server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      // authorize before query(): it reads the statement's tables from the descriptor and ticket.
      authorize((r) => {
        asked.push(r);
        return r.operation === "write" || (r.operation === "read" && r.descriptor?.path[0] === "public");
      }),
      query({ engine }),
    );
    await server.start();
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    try {
      const t = tableFromArrays({ k: Int32Array.from([1, 2]), v: Float64Array.from([0.5, 1.5]) });
      await client.putTable(pathDescriptor("public", "a"), t);
      await client.putTable(pathDescriptor("public", "b"), t);
      await client.putTable(pathDescriptor("secret", "c"), t);
      asked.length = 0;
      const ok = 'SELECT a.k, b.v FROM "public/a" a JOIN "public/b" b ON a.k = b.k';
      const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ sql: ok })));
      expect((await client.getTable(info.endpoint[0]!.ticket!)).numRows).toBe(2);
      expect(asked.map((r) => [r.method, r.operation, r.descriptor?.path])).toEqual([
        ["getFlightInfo", "read", ["public", "a"]],
        ["getFlightInfo", "read", ["public", "b"]],
        ["doGet", "read", ["public", "a"]],
        ["doGet", "read", ["public", "b"]],
      ]);
      const mixed = 'SELECT a.k FROM "public/a" a WHERE a.k IN (SELECT k FROM "secret/c")';
      const refused = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ sql: mixed }))).catch((e) => e);
      expect((refused as FlightError).code).toBe(StatusCode.UNAUTHENTICATED); // refused, and the call has no identity
      const forged = await client.getTable(Buffer.from(`blackice.query.v1:${JSON.stringify({ sql: mixed })}`)).catch((e) => e);
      expect((forged as FlightError).code).toBe(StatusCode.UNAUTHENTICATED);
    } finally {
      client.close();
      await server.shutdown({ graceMs: 100 });
      await engine.close();
    }
  });
});
