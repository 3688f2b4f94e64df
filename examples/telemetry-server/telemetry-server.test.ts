// Starts examples/telemetry-server/server.ts as its own process (ts-node) on port 0, does a
// signed put and get with FlightClient, checks the Merkle root, authentication, that one
// producer cannot overwrite or delete another's flights, admin access (admin actions, gc, the
// full stats) and health, scrapes /metrics, and stops it with SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { tableFromArrays } from "apache-arrow";
import { healthClient } from "../../test/helpers/raw-flight-client";
import { FLIGHT_METHODS, StatusCode, type FlightData } from "@blackice/flight-core";
import { FlightClient, pathDescriptor } from "@blackice/flight";
import { hmacSigner, readMerkleMetadata, verifyFlightStream } from "@blackice/flight-security";

const ROOT = path.resolve(__dirname, "../..");

interface Started {
  child: ChildProcess;
  location: string;
  metricsUrl: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs the example with ts-node and waits for its "listening" log line. */
function start(args: string[]): Promise<Started> {
  const tsNode = require.resolve("ts-node/dist/bin.js", { paths: [ROOT] });
  const child = spawn(process.execPath, [tsNode, "examples/telemetry-server/server.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "1" },
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the example did not start within 30 s:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      for (const line of out.split("\n")) {
        if (!line.startsWith("{")) continue;
        const rec = JSON.parse(line) as { location?: string; metrics?: string };
        if (rec.location && rec.metrics) {
          clearTimeout(timer);
          resolve({ child, location: rec.location, metricsUrl: rec.metrics, output: () => out, exited });
          return;
        }
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the example exited with ${code} before it was ready:\n${out}`));
    });
  });
}

async function failure(p: Promise<unknown>): Promise<{ code: number }> {
  try {
    await p;
  } catch (err) {
    return err as { code: number };
  }
  throw new Error("expected the call to fail");
}

/** A JSON action answer. */
async function actionJson(client: FlightClient, type: string, body?: string): Promise<Record<string, unknown>> {
  const [r] = await client.doAction(type, body);
  return JSON.parse(Buffer.from(r!.body).toString("utf8")) as Record<string, unknown>;
}

/** Every method at zero, then the given counts: the exact shape of a caller's own `calls`. */
function callsWith(counts: Record<string, { total: number; byCode: Record<string, number> }>): Record<string, unknown> {
  return { ...Object.fromEntries(FLIGHT_METHODS.map((m) => [m, { total: 0, byCode: {} }])), ...counts };
}

/** The value of one sample in Prometheus text format, or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("examples/telemetry-server", () => {
  let dir: string;
  let started: Started | undefined;
  const clients: FlightClient[] = [];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "telemetry-server-"));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    if (started && started.child.exitCode === null && started.child.signalCode === null) {
      started.child.kill("SIGKILL");
      await started.exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("serves a signed put and get, Merkle roots, producers confined to their flights, admin actions, gc and full stats for admins only, health and /metrics; stops on SIGTERM", async () => {
    const secret = (name: string): string => {
      const file = path.join(dir, `${name}.secret`);
      fs.writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 }); // as `openssl rand -hex 32 > file`
      return file;
    };
    // One key per producer, named after the host whose flights (telemetry/<host>) it writes.
    const edge1Secret = secret("edge-1");
    const edge2Secret = secret("edge-2");
    const opsSecret = secret("ops");
    started = await start([
      "--port", "0",
      "--metrics-port", "0",
      "--max-memory", "64MiB",
      "--hmac-secret-file", `edge-1:${edge1Secret}`,
      "--hmac-secret-file", `edge-2:${edge2Secret}`,
      "--hmac-secret-file", `ops:${opsSecret}`,
      "--admin-key-id", "ops",
    ]);
    expect(started.location).toMatch(/^grpc\+tcp:\/\/127\.0\.0\.1:\d+$/);
    const edge1 = new FlightClient(started.location, { signer: hmacSigner({ keyId: "edge-1", secretPath: edge1Secret }) });
    const edge2 = new FlightClient(started.location, { signer: hmacSigner({ keyId: "edge-2", secretPath: edge2Secret }) });
    const ops = new FlightClient(started.location, { signer: hmacSigner({ keyId: "ops", secretPath: opsSecret }) });
    const anonymous = new FlightClient(started.location);
    clients.push(edge1, edge2, ops, anonymous);

    // One put and one get, signed.
    const rows = 1000;
    const table = tableFromArrays({
      ts: Float64Array.from({ length: rows }, (_, i) => 1_700_000_000_000 + i * 1000),
      cpu: Float64Array.from({ length: rows }, (_, i) => (i * 7) % 100),
    });
    const descriptor = pathDescriptor("telemetry", "edge-1");
    await edge1.putTable(descriptor, table);
    const info = await edge1.getFlightInfo(descriptor);
    expect(Number(info.totalRecords)).toBe(rows);
    const back = await edge1.getTable(descriptor);
    expect(back.numRows).toBe(rows);
    expect(Array.from(back.getChild("cpu")!.toArray() as Float64Array)).toEqual(Array.from(table.getChild("cpu")!.toArray() as Float64Array));

    // The Merkle root of the FlightInfo covers exactly what DoGet streams.
    const merkle = readMerkleMetadata(info);
    expect(merkle).toBeDefined();
    const verified: FlightData[] = [];
    for await (const m of verifyFlightStream(edge1.doGetRaw(info.endpoint[0]!.ticket!), merkle!)) verified.push(m);
    expect(verified.length).toBe(merkle!.leaves);

    // Unsigned calls are refused; admin actions only for the admin key.
    expect((await failure(anonymous.listActions())).code).toBe(StatusCode.UNAUTHENTICATED);
    expect((await failure(edge1.doAction("admin.get"))).code).toBe(StatusCode.PERMISSION_DENIED);
    const [adminGet] = await ops.doAction("admin.get");
    const admin = JSON.parse(Buffer.from(adminGet!.body).toString("utf8"));
    expect(admin).toMatchObject({ memoryLimitBytes: 64 * 2 ** 20, logLevel: "info", breakers: { store: "closed" } });

    // One producer cannot touch another's flights: it may read them, but an overwrite or a
    // delete is PERMISSION_DENIED and the flight stays as it was.
    const small = tableFromArrays({ ts: Float64Array.of(1, 2, 3), cpu: Float64Array.of(4, 5, 6) });
    await edge2.putTable(pathDescriptor("telemetry", "edge-2"), small);
    expect(Number((await edge2.getFlightInfo(descriptor)).totalRecords)).toBe(rows);
    expect((await failure(edge2.putTable(descriptor, small))).code).toBe(StatusCode.PERMISSION_DENIED);
    expect((await failure(edge2.doAction("delete", JSON.stringify({ path: ["telemetry", "edge-1"] })))).code).toBe(StatusCode.PERMISSION_DENIED);
    expect(Number((await ops.getFlightInfo(descriptor)).totalRecords)).toBe(rows);

    // gc and the full stats are for the admin role; a producer sees only its own calls.
    expect((await failure(edge1.doAction("gc"))).code).toBe(StatusCode.PERMISSION_DENIED);
    const [ownStatsResult] = await edge1.doAction("stats");
    const ownStatsText = Buffer.from(ownStatsResult!.body).toString("utf8");
    expect(JSON.parse(ownStatsText)).toEqual({
      identity: "edge-1",
      calls: callsWith({
        doPut: { total: 1, byCode: { OK: 1 } },
        getFlightInfo: { total: 2, byCode: { OK: 2 } },
        doGet: { total: 2, byCode: { OK: 2 } },
        doAction: { total: 2, byCode: { PERMISSION_DENIED: 2 } },
      }),
    });
    for (const secretOfOthers of ["edge-2", "ops", "rss", "keys"]) expect(ownStatsText).not.toContain(secretOfOthers);
    const full = await actionJson(ops, "stats");
    expect(full).toMatchObject({ flights: 2, memory: { rss: expect.any(Number) }, hmac: { keys: ["edge-1", "edge-2", "ops"] } });
    expect(full).not.toHaveProperty("identity");
    expect(await actionJson(ops, "gc")).toHaveProperty("flightsRemoved");
    // The admin may delete any flight.
    expect(await actionJson(ops, "delete", JSON.stringify({ path: ["telemetry", "edge-2"] }))).toEqual({ deleted: 1, missing: [] });

    // grpc.health.v1.Health beside Flight.
    const health = healthClient(Number(new URL(started.location.replace("grpc+tcp://", "http://")).port));
    const status = await new Promise<string>((resolve, reject) => health.check({ service: "" }, (err, res) => (err ? reject(err) : resolve(res.status))));
    health.close();
    expect(status).toBe("SERVING");

    // /metrics, from the registry the example serves over HTTP.
    const res = await fetch(started.metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(sample(text, 'blackice_flight_calls_total{method="doPut",code="OK"}')).toBe(2);
    expect(sample(text, 'blackice_flight_calls_total{method="doPut",code="PERMISSION_DENIED"}')).toBe(1);
    expect(sample(text, 'blackice_flight_calls_total{method="doGet",code="OK"}')).toBe(2);
    expect(sample(text, 'blackice_flight_calls_total{method="listActions",code="UNAUTHENTICATED"}')).toBe(1);
    expect(sample(text, 'blackice_flight_calls_total{method="doAction",code="PERMISSION_DENIED"}')).toBe(3);
    expect(sample(text, 'blackice_flight_received_bytes_total{method="doPut"}')).toBeGreaterThan(rows * 16);
    expect(sample(text, "blackice_flight_store_flights")).toBe(1);
    expect(sample(text, "blackice_flight_store_rows")).toBe(rows);
    expect(sample(text, "blackice_flight_store_memory_limit_bytes")).toBe(64 * 2 ** 20);
    expect(sample(text, 'blackice_flight_breaker_state{breaker="store"}')).toBe(0);
    expect(sample(text, 'blackice_flight_auth_failures_total{reason="missing"}')).toBe(1);
    // Every finished DoPut (2 OK, 1 refused) is in the duration histogram; which bucket depends on timing.
    expect(sample(text, 'blackice_flight_call_duration_seconds_count{method="doPut"}')).toBe(3);
    expect(sample(text, 'blackice_flight_call_duration_seconds_bucket{le="+Inf",method="doPut"}')).toBe(3);

    // SIGTERM: a graceful stop, exit code 0.
    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);
    const log = started.output();
    expect(log).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);
    expect(log).toMatch(/"method":"doPut".*"code":"OK".*"msg":"call finished"/);
    expect(log).toMatch(/"msg":"stopped"/);
    for (const f of [edge1Secret, edge2Secret, opsSecret]) expect(log).not.toContain(fs.readFileSync(f, "utf8").trim());
  });
});
