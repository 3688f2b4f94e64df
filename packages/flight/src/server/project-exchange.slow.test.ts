import * as os from "node:os";
import * as grpc from "@grpc/grpc-js";
import { tableFromArrays, tableFromIPC, tableToIPC, type Table } from "apache-arrow";
import { joinIpcStream, serverConfig, splitIpcStream, type StatsSetting } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { projectExchange } from "./project-exchange";
import { bidi, rawClient, serverStream, type RawClient } from "../../../../test/helpers/raw-flight-client";
import type { WorkerPoolStats } from "./worker-pool";

type Data = { dataHeader: Uint8Array; dataBody: Uint8Array; appMetadata: Uint8Array };

const table = tableFromArrays({ a: Int32Array.from([1, 2, 3, 4]), b: ["w", "x", "y", "z"], c: Float64Array.from([0.5, 1.5, 2.5, 3.5]) });

/** The messages of a DoExchange sending `t`: the first carries the descriptor, each its index as app_metadata. */
const send = (cmd: string, t: Table = table) =>
  splitIpcStream(tableToIPC(t, "stream")).map((m, i) => ({
    flightDescriptor: i === 0 ? { type: 2, cmd: Buffer.from(cmd), path: [] } : undefined,
    dataHeader: m.header,
    dataBody: m.body,
    appMetadata: Buffer.from(`m${i}`),
  }));

const decode = (out: Data[]) => tableFromIPC(joinIpcStream(out.map((m) => ({ header: m.dataHeader, body: m.dataBody }))));

const expectProjected = (out: Data[]) => {
  const result = decode(out);
  expect(result.schema.fields.map((f) => f.name)).toEqual(["c", "a"]);
  expect(result.getChild("a")?.toArray()).toEqual(Int32Array.from([1, 2, 3, 4]));
  expect(result.getChild("c")?.toArray()).toEqual(Float64Array.from([0.5, 1.5, 2.5, 3.5]));
};

/** The `stats` section projectExchange adds, read from the parts themselves (works after shutdown too). */
const poolStats = (parts: readonly unknown[]) => (parts.find((p) => (p as StatsSetting).kind === "stats") as StatsSetting).collect() as WorkerPoolStats;

async function started(...parts: Parameters<typeof createFlightServer>): Promise<{ server: FlightServer; client: RawClient }> {
  const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), ...parts);
  await server.start();
  return { server, client: rawClient(server.port) };
}

async function stop(s: { server: FlightServer; client: RawClient } | undefined): Promise<void> {
  s?.client.close();
  await s?.server.shutdown({ graceMs: 100 });
}

describe("the project DoExchange handler", () => {
  let s: { server: FlightServer; client: RawClient };
  beforeAll(async () => {
    s = await started(projectExchange());
  });
  afterAll(() => stop(s));

  it("returns only the named columns, batch for batch, with the batch metadata", async () => {
    const out = await bidi<Data>(s.client, "doExchange", send('{"command":"project","columns":["c","a"]}'));
    expectProjected(out);
    expect(out.filter((m) => m.appMetadata.length > 0).map((m) => Buffer.from(m.appMetadata).toString())).toEqual(["m2"]); // schema, dictionary, then the batch
  });

  it("names the missing column with INVALID_ARGUMENT", async () => {
    await expect(bidi(s.client, "doExchange", send("project:a,nope"))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("no such column: nope"),
    });
  });

  it("refuses an unknown exchange command, naming the registered ones", async () => {
    await expect(bidi(s.client, "doExchange", send("frobnicate"))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("registered: echo, project"),
    });
  });
});

describe("projectExchange's worker pool", () => {
  it("is off by default: a server without it answers `project` as it answers any unknown command", async () => {
    const plain = await started();
    try {
      const project = bidi(plain.client, "doExchange", send("project:c,a")).catch((err: grpc.ServiceError) => err);
      const unknown = bidi(plain.client, "doExchange", send("frobnicate")).catch((err: grpc.ServiceError) => err);
      expect(await project).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'no DoExchange handler for "project"; registered: echo' });
      expect(await unknown).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'no DoExchange handler for "frobnicate"; registered: echo' });
    } finally {
      await stop(plain);
    }
  });

  it("checks its options when the server is built", () => {
    const cores = os.availableParallelism();
    expect(() => projectExchange({ size: cores + 1 })).toThrow(new TypeError(`project: size (at most the cores of this machine) must be an integer from 1 to ${cores}; got ${cores + 1}`));
    expect(() => projectExchange({ maxQueue: -1 })).toThrow(TypeError);
    expect(() => projectExchange({ timeoutMs: 0 })).toThrow(TypeError);
    expect(() => projectExchange({ resourceLimits: { maxOldGenerationSizeMb: 0 } })).toThrow(TypeError);
    expect(() => projectExchange({ workers: 2 } as never)).toThrow('projectExchange: unknown option "workers"; known options: command, timeoutMs, size, maxQueue, resourceLimits');
    expect(() => projectExchange({ command: "" })).toThrow(TypeError);
  });

  it("with size 2 and maxQueue 3, of 10 exchanges at once 2 run, 3 wait and 5 get RESOURCE_EXHAUSTED; the waiting ones are served as workers free up", async () => {
    const parts = projectExchange({ size: 2, maxQueue: 3 });
    const srv = await started(parts);
    try {
      const messages = send("project:c,a");
      // Each exchange sends its first message (schema and descriptor) and then waits, holding
      // its worker, until the test sends the rest.
      const calls = Array.from({ length: 10 }, () => {
        const call = srv.client.doExchange(new grpc.Metadata()) as unknown as grpc.ClientDuplexStream<unknown, Data>;
        call.write(messages[0]);
        const out: Data[] = [];
        let settled = false;
        const done = (async () => {
          for await (const m of call) out.push(m as Data);
          return out;
        })().then(
          (o) => ({ out: o }),
          (err: grpc.ServiceError) => ({ err }),
        );
        void done.then(() => (settled = true));
        return { call, done, isSettled: () => settled };
      });
      const refused = await waitFor(async () => {
        const ended = await Promise.all(calls.filter((c) => c.isSettled()).map((c) => c.done));
        return ended.length === 5 && poolStats(parts).busy === 2 && poolStats(parts).queued === 3 ? ended : undefined;
      });
      for (const r of refused) {
        expect(r).toMatchObject({ err: { code: grpc.status.RESOURCE_EXHAUSTED, details: "project: all 2 workers are busy and 3 calls wait for one; retry later" } });
      }
      expect(poolStats(parts)).toMatchObject({ workers: 2, refused: 5 });
      // The server goes on serving other calls meanwhile.
      const pong = await serverStream<{ body: Uint8Array }>(srv.client, "doAction", { type: "ping", body: new Uint8Array(0) });
      expect(pong).toHaveLength(1);
      const echoed = await bidi<Data>(srv.client, "doExchange", send("echo"));
      expect(echoed).toHaveLength(3);

      const open = calls.filter((c) => !c.isSettled());
      expect(open).toHaveLength(5);
      for (const c of open) {
        for (const m of messages.slice(1)) c.call.write(m);
        c.call.end();
      }
      for (const r of await Promise.all(open.map((c) => c.done))) {
        expect("out" in r).toBe(true);
        if ("out" in r) expectProjected(r.out);
      }
      expect(poolStats(parts)).toMatchObject({ peakWorkers: 2, started: 2, queued: 0, busy: 0 });
    } finally {
      await stop(srv);
    }
  });

  it("a worker killed by its resourceLimits fails the exchange with RESOURCE_EXHAUSTED, and the next exchange gets a new worker", async () => {
    const parts = projectExchange({ size: 1, resourceLimits: { maxOldGenerationSizeMb: 24 } });
    // The wide schema's header (~1 MiB) is over the default first-message limit.
    const srv = await started(serverConfig({ maxFirstMessageBytes: 4 * 2 ** 20 }), parts);
    try {
      const columns: Record<string, Int32Array> = {};
      for (let i = 0; i < 20_000; i++) columns[`c${i}`] = Int32Array.from([1, 2, 3]);
      // Decoding 20 000 columns takes far more than a 24 MB heap.
      const wide = tableFromArrays(columns);
      await expect(bidi(srv.client, "doExchange", send("project:c1", wide))).rejects.toMatchObject({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: "project: the input needs more memory than a worker may use (24 MB heap); refused",
      });
      expectProjected(await bidi<Data>(srv.client, "doExchange", send("project:c,a")));
      expect(poolStats(parts)).toMatchObject({ crashed: 1, started: 2, peakWorkers: 1 });
    } finally {
      await stop(srv);
    }
  });

  it("fails a message over timeoutMs with INVALID_ARGUMENT", async () => {
    const parts = projectExchange({ size: 1, timeoutMs: 1 });
    const srv = await started(parts);
    try {
      // 24 MB of batch: copying it alone takes longer than 1 ms.
      const big = tableFromArrays({ a: Int32Array.from({ length: 2_000_000 }, (_, i) => i), c: Float64Array.from({ length: 2_000_000 }, (_, i) => i) });
      await expect(bidi(srv.client, "doExchange", send("project:c,a", big))).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: "project: a message took over 1 ms to process; refused",
      });
      expect(poolStats(parts).timedOut).toBe(1);
    } finally {
      await stop(srv);
    }
  });

  it("the server's shutdown terminates its workers", async () => {
    const parts = projectExchange();
    const srv = await started(parts);
    expectProjected(await bidi<Data>(srv.client, "doExchange", send("project:c,a")));
    expect(poolStats(parts).workers).toBe(1);
    await stop(srv);
    expect(poolStats(parts).workers).toBe(0);
  });

  it("goes under another command when asked", async () => {
    const srv = await started(projectExchange({ command: "select" }));
    try {
      expectProjected(await bidi<Data>(srv.client, "doExchange", send('{"command":"select","columns":["c","a"]}')));
      expect(srv.server.stats()["exchange:select"]).toMatchObject({ size: expect.any(Number), workers: 1 });
    } finally {
      await stop(srv);
    }
  });
});

/** Polls `check` until it returns a value (at most 20 s). */
async function waitFor<T>(check: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + 20_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("waitFor: timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
