import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { FlightError, StatusCode } from "@blackice/flight-core";
import { WorkerPool, type WorkerLease, type WorkerPoolOptions } from "./worker-pool";

// A worker speaking the pool's protocol, with requests that misbehave on purpose. It is plain
// JavaScript written to a temporary file, because a worker thread cannot load TypeScript.
const SCRIPT = `
const { parentPort, threadId, resourceLimits } = require("node:worker_threads");
let kept = [];
parentPort.on("message", (m) => {
  if (m.reset) { kept = []; return; }
  const r = m.request;
  if (r.op === "keep") { kept.push(r.value); parentPort.postMessage({ ok: true, value: { threadId, kept, resourceLimits } }); }
  else if (r.op === "refuse") parentPort.postMessage({ ok: false, error: "not this one" });
  else if (r.op === "spin") { const end = Date.now() + r.ms; while (Date.now() < end); parentPort.postMessage({ ok: true, value: null }); }
  else if (r.op === "throw") throw new Error("boom");
  else if (r.op === "hog") { const a = []; for (;;) a.push({ n: a.length, s: String(a.length) }); }
});
parentPort.postMessage({ ready: true });
`;

type Kept = { threadId: number; kept: string[]; resourceLimits: Record<string, number> };

describe("WorkerPool", () => {
  let dir: string;
  let script: string;
  const pools: WorkerPool[] = [];
  const pool = (options: Omit<WorkerPoolOptions, "script"> = {}): WorkerPool => {
    const p = new WorkerPool({ script, name: "test", ...options });
    pools.push(p);
    return p;
  };
  const keep = async (lease: WorkerLease, value: string): Promise<Kept> => (await lease.request({ op: "keep", value })) as Kept;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "worker-pool-"));
    script = path.join(dir, "test-worker.js");
    fs.writeFileSync(script, SCRIPT);
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("checks its options when it is made, naming the valid range", () => {
    const cores = os.availableParallelism();
    expect(() => pool({ size: cores + 1 })).toThrow(new TypeError(`test: size (at most the cores of this machine) must be an integer from 1 to ${cores}; got ${cores + 1}`));
    expect(() => pool({ size: 0 })).toThrow(TypeError);
    expect(() => pool({ maxQueue: -1 })).toThrow(/maxQueue must be an integer from 0/);
    expect(() => pool({ timeoutMs: 0 })).toThrow(/timeoutMs must be an integer from 1/);
    expect(() => pool({ resourceLimits: { maxHeapMb: 10 } as never })).toThrow(/^test: unknown option "resourceLimits.maxHeapMb"; known options: maxOldGenerationSizeMb/);
    expect(() => pool({ resourceLimits: { maxOldGenerationSizeMb: -5 } })).toThrow(/positive number of MB/);
    expect(() => new WorkerPool({ script: "" })).toThrow(/script must be/);
  });

  it("defaults to min(2, cores) workers, a queue of 16 and a 256 MB heap per worker, and starts none until asked", async () => {
    const p = pool();
    expect(p.size).toBe(Math.min(2, os.availableParallelism()));
    expect(p.maxQueue).toBe(16);
    expect(p.timeoutMs).toBe(5000);
    expect(p.stats()).toMatchObject({ workers: 0, started: 0 });
    const lease = await p.acquire();
    // What Node applied to the thread, read inside it.
    expect((await keep(lease, "a")).resourceLimits.maxOldGenerationSizeMb).toBe(256);
    expect(p.stats()).toMatchObject({ workers: 1, busy: 1, started: 1 });
    lease.release();
  });

  it("never runs more than `size` workers and refuses callers past `maxQueue` with RESOURCE_EXHAUSTED", async () => {
    const p = pool({ size: 2, maxQueue: 3 });
    const outcomes = Array.from({ length: 10 }, () => p.acquire().then((lease) => ({ lease }), (err: FlightError) => ({ err })));
    const settled = await Promise.all(outcomes.slice(5));
    for (const s of settled) {
      expect("err" in s && s.err).toMatchObject({ code: StatusCode.RESOURCE_EXHAUSTED, message: "test: all 2 workers are busy and 3 calls wait for one; retry later" });
    }
    const running = await Promise.all(outcomes.slice(0, 2));
    expect(p.stats()).toMatchObject({ workers: 2, busy: 2, queued: 3, refused: 5 });
    // Each waiting caller gets a worker as one is released, and releases it in turn.
    const rest = Promise.all(
      outcomes.slice(2, 5).map(async (o) => {
        const r = await o;
        if ("lease" in r) r.lease.release();
        return r;
      }),
    );
    for (const r of running) if ("lease" in r) r.lease.release();
    expect((await rest).every((r) => "lease" in r)).toBe(true);
    expect(p.stats()).toMatchObject({ workers: 2, peakWorkers: 2, started: 2, queued: 0, busy: 0 });
  });

  it("serves waiting callers in the order they came, and resets a worker's state between callers", async () => {
    const p = pool({ size: 1, maxQueue: 3 });
    const first = await p.acquire();
    const a = await keep(first, "a");
    expect((await keep(first, "b")).kept).toEqual(["a", "b"]);
    const order: string[] = [];
    const waiting = ["x", "y", "z"].map((name) =>
      p.acquire().then(async (lease) => {
        order.push(name);
        const k = await keep(lease, name);
        lease.release();
        return k;
      }),
    );
    expect(p.stats().queued).toBe(3);
    first.release();
    const results = await Promise.all(waiting);
    expect(order).toEqual(["x", "y", "z"]);
    // The same thread served all of them, and each saw only its own state.
    expect(results.map((r) => r.threadId)).toEqual([a.threadId, a.threadId, a.threadId]);
    expect(results.map((r) => r.kept)).toEqual([["x"], ["y"], ["z"]]);
  });

  it("passes a refusal on as INVALID_ARGUMENT and keeps the worker", async () => {
    const p = pool({ size: 1 });
    const lease = await p.acquire();
    const before = await keep(lease, "a");
    await expect(lease.request({ op: "refuse" })).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: "test: not this one" });
    expect((await keep(lease, "b")).threadId).toBe(before.threadId);
    lease.release();
  });

  it("terminates a worker that takes longer than timeoutMs (INVALID_ARGUMENT) and starts a new one for the next caller", async () => {
    const p = pool({ size: 1, maxQueue: 1, timeoutMs: 300 });
    const lease = await p.acquire();
    const before = await keep(lease, "a");
    const waiting = p.acquire(); // waits for the only worker
    const t0 = Date.now();
    await expect(lease.request({ op: "spin", ms: 20_000 })).rejects.toMatchObject({
      code: StatusCode.INVALID_ARGUMENT,
      message: "test: a message took over 300 ms to process; refused",
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    // The lease is dead: later requests fail the same way.
    await expect(keep(lease, "b")).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
    lease.release();
    const next = await waiting;
    const after = await keep(next, "c");
    expect(after.threadId).not.toBe(before.threadId);
    expect(after.kept).toEqual(["c"]);
    expect(p.stats()).toMatchObject({ timedOut: 1, started: 2, peakWorkers: 1, workers: 1 });
    next.release();
  });

  it("replaces a worker that crashes, failing its caller with INVALID_ARGUMENT", async () => {
    const p = pool({ size: 1 });
    const lease = await p.acquire();
    await expect(lease.request({ op: "throw" })).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: "test: cannot process the input (boom)" });
    lease.release();
    const next = await p.acquire();
    expect((await keep(next, "a")).kept).toEqual(["a"]);
    expect(p.stats()).toMatchObject({ crashed: 1, started: 2 });
    next.release();
  });

  it("gives each worker its resourceLimits: one that reaches them fails its caller with RESOURCE_EXHAUSTED, and the pool goes on", async () => {
    const p = pool({ size: 1, resourceLimits: { maxOldGenerationSizeMb: 24 } });
    const lease = await p.acquire();
    expect((await keep(lease, "a")).resourceLimits.maxOldGenerationSizeMb).toBe(24);
    await expect(lease.request({ op: "hog" })).rejects.toMatchObject({
      code: StatusCode.RESOURCE_EXHAUSTED,
      message: "test: the input needs more memory than a worker may use (24 MB heap); refused",
    });
    lease.release();
    const next = await p.acquire();
    expect((await keep(next, "b")).kept).toEqual(["b"]);
    expect(p.stats()).toMatchObject({ crashed: 1, started: 2, peakWorkers: 1 });
    next.release();
  });

  it("fails the caller with UNAVAILABLE when a worker cannot start, and tries a new one for the next caller", async () => {
    const p = new WorkerPool({ script: path.join(dir, "missing.js"), name: "test", size: 1 });
    pools.push(p);
    await expect(p.acquire()).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE, message: "test: a worker could not start (MODULE_NOT_FOUND)" });
    await expect(p.acquire()).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
    expect(p.stats()).toMatchObject({ started: 2, crashed: 2, queued: 0, busy: 0 });
  });

  it("lets a caller whose call ends leave the queue with CANCELLED", async () => {
    const p = pool({ size: 1, maxQueue: 1 });
    const lease = await p.acquire();
    const abort = new AbortController();
    const waiting = p.acquire(abort.signal);
    expect(p.stats().queued).toBe(1);
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ code: StatusCode.CANCELLED });
    expect(p.stats().queued).toBe(0);
    // The place it left is free again.
    const again = p.acquire();
    lease.release();
    (await again).release();
  });

  it("close() terminates every worker, fails waiting and working callers with UNAVAILABLE, and the pool can start again", async () => {
    const p = pool({ size: 1, maxQueue: 2 });
    const lease = await p.acquire();
    await keep(lease, "a");
    const working = lease.request({ op: "spin", ms: 20_000 }).catch((err: unknown) => err);
    const waiting = p.acquire().catch((err: unknown) => err);
    await p.close();
    expect(await working).toMatchObject({ code: StatusCode.UNAVAILABLE, message: "test: the server is shutting down" });
    expect(await waiting).toMatchObject({ code: StatusCode.UNAVAILABLE, message: "test: the server is shutting down" });
    expect(p.stats()).toMatchObject({ workers: 0, busy: 0, queued: 0 });
    lease.release();
    const next = await p.acquire();
    expect((await keep(next, "b")).kept).toEqual(["b"]);
    next.release();
  });

  it("never keeps the process alive: a script that holds a worker and never closes the pool exits by itself", () => {
    const compiled = path.resolve(__dirname, "../../dist/server/worker-pool.js");
    // The interval stands for the server, which keeps the process alive while it serves.
    const program = `
      const { WorkerPool } = require(${JSON.stringify(compiled)});
      const server = setInterval(() => {}, 1000);
      const pool = new WorkerPool({ script: ${JSON.stringify(script)}, size: 1 });
      pool.acquire().then((lease) => lease.request({ op: "keep", value: "a" })).then((v) => {
        console.log("served by thread " + v.threadId);
        clearInterval(server);
      });`;
    const result = spawnSync(process.execPath, ["-e", program], { encoding: "utf8", timeout: 20_000 });
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^served by thread \d+\n$/);
    expect(result.status).toBe(0); // not killed by the timeout (status null)
  });
});
