import { spawn } from "node:child_process";
import * as path from "node:path";
import * as arrow from "apache-arrow";
import { DescriptorType, FlightError, MemoryStore, MessageKind, readMessageHeader, StatusCode, serverConfig, withStore, type FlightData, type FlightMiddleware, type ServerPart } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import { FlightClient } from "./flight-client";
import { pathDescriptor } from "./descriptors";
import type { BatchWriterFailure, WrittenBatch } from "./batch-writer";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A server on port 0 (optionally over a given store, which outlives it); stopped by `stop`. */
async function startServer(...extra: ServerPart[]): Promise<{ server: FlightServer; client: FlightClient; stop: () => Promise<void> }> {
  const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), ...extra);
  const { port } = await server.start();
  const client = new FlightClient(`grpc+tcp://127.0.0.1:${port}`);
  return {
    server,
    client,
    stop: async () => {
      client.close();
      await server.shutdown({ graceMs: 0 });
    },
  };
}

const eventSchema = new arrow.Schema([
  new arrow.Field("seq", new arrow.Int32(), false),
  new arrow.Field("kind", new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()), true),
  new arrow.Field("value", new arrow.Float64(), true),
]);
const KINDS = ["click", "view", "scroll", "buy"];
const event = (seq: number) => ({ seq, kind: KINDS[seq % KINDS.length], value: seq / 2 });

/** The seq column of a stored flight, batch by batch. */
async function storedSeqs(client: FlightClient, name: string): Promise<{ seqs: Int32Array; batchRows: number[]; table: arrow.Table }> {
  const table = await client.getTable(pathDescriptor(name));
  const seqs = new Int32Array(table.numRows);
  let at = 0;
  for (const b of table.batches) {
    seqs.set(b.getChild("seq")!.toArray() as Int32Array, at);
    at += b.numRows;
  }
  return { seqs, batchRows: table.batches.map((b) => b.numRows), table };
}

function expectInOrder(seqs: Int32Array, count: number): void {
  expect(seqs.length).toBe(count);
  let bad = -1;
  for (let i = 0; i < seqs.length && bad < 0; i++) if (seqs[i] !== i) bad = i;
  expect(bad).toBe(-1);
}

describe("BatchWriter against a real server", () => {
  let env: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    env = await startServer();
  });
  afterAll(async () => {
    await env?.stop();
  });

  test("1M single-row events: every row stored once, in order, in batches of maxRows, one dictionary", async () => {
    const N = 1_000_000;
    const commits: WrittenBatch[][] = [];
    const writer = env.client.batchWriter(pathDescriptor("events-1m"), { schema: eventSchema, maxRows: 10_000, maxDelayMs: 60_000, flushOnExit: false, onCommit: (b) => commits.push(b) });
    const started = Date.now();
    for (let i = 0; i < N; i++) await writer.append(event(i));
    await writer.close();
    const elapsed = Date.now() - started;
    expect(writer.stats).toMatchObject({ appendedRows: N, committedRows: N, committedBatches: 100, bufferedRows: 0, pendingBatches: 0, retries: 0 });
    const batches = commits.flat();
    expect(batches.map((b) => b.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(batches.every((b, i) => b.rows === 10_000 && b.firstRow === i * 10_000 && b.acked)).toBe(true);

    const { seqs, batchRows, table } = await storedSeqs(env.client, "events-1m");
    expectInOrder(seqs, N);
    expect(batchRows).toEqual(Array(100).fill(10_000));
    // The dictionary column reads back right across every batch and stream.
    expect(table.getChild("kind")!.get(N - 1)).toBe(KINDS[(N - 1) % 4]);
    expect(table.batches[57].getChild("kind")!.get(3)).toBe(KINDS[(57 * 10_000 + 3) % 4]);
    // Indices into one dictionary: it never grew past the four kinds.
    expect(table.batches[99].getChild("kind")!.data[0].dictionary!.length).toBe(4);
    // eslint-disable-next-line no-console
    console.log(`1M events through BatchWriter: ${elapsed} ms, ${writer.stats.streams} DoPut streams`);
  }, 60_000);

  test("maxDelayMs sends a small batch on its own, and it is committed without flush()", async () => {
    const commits: WrittenBatch[][] = [];
    const writer = env.client.batchWriter(pathDescriptor("delayed"), { schema: eventSchema, maxRows: 1000, maxDelayMs: 50, flushOnExit: false, onCommit: (b) => commits.push(b) });
    for (let i = 0; i < 3; i++) await writer.append(event(i));
    expect(writer.stats.bufferedRows).toBe(3);
    await sleep(20);
    expect(commits).toEqual([]);
    const deadline = Date.now() + 2000;
    while (writer.stats.committedRows < 3 && Date.now() < deadline) await sleep(10);
    expect(commits.flat()).toEqual([{ seq: 0, firstRow: 0, rows: 3, acked: true }]);
    const { seqs } = await storedSeqs(env.client, "delayed");
    expectInOrder(seqs, 3);
    await writer.close();
  });

  test("maxBytes cuts batches by size; rows, arrays of rows and Arrow tables mix in order", async () => {
    const schema = new arrow.Schema([new arrow.Field("seq", new arrow.Int32(), false), new arrow.Field("blob", new arrow.Utf8(), true)]);
    const commits: WrittenBatch[][] = [];
    const writer = env.client.batchWriter(pathDescriptor("by-bytes"), { schema, maxRows: 1_000_000, maxBytes: 64 * 1024, flushOnExit: false, onCommit: (b) => commits.push(b) });
    const blob = "x".repeat(1000);
    for (let i = 0; i < 300; i++) await writer.append({ seq: i, blob });
    await writer.append(Array.from({ length: 100 }, (_, k) => ({ seq: 300 + k, blob })));
    const tail = new arrow.RecordBatch({
      seq: arrow.vectorFromArray(Array.from({ length: 200 }, (_, k) => 400 + k), new arrow.Int32()).data[0],
      blob: arrow.vectorFromArray(Array(200).fill(blob), new arrow.Utf8()).data[0],
    });
    await writer.append(new arrow.Table(schema, [new arrow.RecordBatch(schema, tail.data)]));
    await writer.close();
    const sizes = commits.flat().map((b) => b.rows);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(600);
    // ~1 KiB a row: a 64 KiB budget gives batches of about 64 rows (never above 66).
    expect(Math.max(...sizes)).toBeLessThanOrEqual(66);
    expect(sizes.filter((n) => n >= 60).length).toBeGreaterThanOrEqual(7);
    const { seqs } = await storedSeqs(env.client, "by-bytes");
    expectInOrder(seqs, 600);
  });

  test("schema mismatches are refused before sending, naming the row and field; the writer goes on", async () => {
    const writer = env.client.batchWriter(pathDescriptor("mismatch"), { schema: eventSchema, flushOnExit: false });
    const refused = async (input: unknown): Promise<FlightError> => {
      try {
        await writer.append(input as never);
      } catch (err) {
        return err as FlightError;
      }
      throw new Error("append was accepted");
    };
    const wrongType = await refused({ seq: "7", kind: "click", value: 1 });
    expect(wrongType).toBeInstanceOf(FlightError);
    expect(wrongType.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(wrongType.message).toMatch(/schema mismatch: row 0: field "seq" is the string "7", but Int32 takes integers/);
    expect((await refused({ seq: 1, kind: "click", value: 1, extra: true })).message).toMatch(/field "extra", which the schema does not have/);
    expect((await refused({ kind: "click" })).message).toMatch(/field "seq" is not nullable/);
    expect((await refused({ seq: 2 ** 40 })).message).toMatch(/out of range for Int32/);
    expect((await refused({ seq: 1, kind: 5 })).message).toMatch(/field "kind" is number 5, but Utf8 takes strings/);
    // One bad row refuses the whole call: the good rows before it are not taken either.
    expect((await refused([event(0), event(1), { seq: 2, value: "x" }])).message).toMatch(/row 2: field "value"/);
    expect((await refused(arrow.tableFromArrays({ seq: Float64Array.from([1]) }))).message).toMatch(/the Arrow data has fields \(seq: Float64/);
    const lying = new arrow.RecordBatch(new arrow.Schema([new arrow.Field("seq", new arrow.Int32(), false), eventSchema.fields[1], eventSchema.fields[2]]), arrow.makeData({
      type: new arrow.Struct(eventSchema.fields),
      length: 1,
      nullCount: 0,
      children: [arrow.vectorFromArray([1], new arrow.Int32()).data[0], arrow.vectorFromArray(["a"], new arrow.Utf8()).data[0], arrow.vectorFromArray([1], new arrow.Float64()).data[0]],
    }));
    expect((await refused(lying)).message).toMatch(/column "kind" of the Arrow data holds Utf8, its schema says Dictionary/);
    expect(writer.stats.appendedRows + writer.stats.bufferedRows).toBe(0);
    await writer.append(event(0));
    await writer.close();
    expectInOrder((await storedSeqs(env.client, "mismatch")).seqs, 1);
  });

  test("a growing dictionary keeps one set of indices across batches and streams (deltas within a stream)", async () => {
    const commits: WrittenBatch[][] = [];
    const writer = env.client.batchWriter(pathDescriptor("growing-dict"), { schema: eventSchema, maxRows: 50, maxBatchesPerPut: 3, flushOnExit: false, onCommit: (b) => commits.push(b) });
    // A new kind every 7 rows: the dictionary grows in every batch.
    const kind = (i: number) => `kind-${Math.floor(i / 7)}`;
    await writer.append(Array.from({ length: 1000 }, (_, i) => ({ seq: i, kind: kind(i), value: i })));
    await writer.close();
    expect(commits.length).toBeGreaterThanOrEqual(7); // 20 batches, at most 3 per stream
    const { seqs, table } = await storedSeqs(env.client, "growing-dict");
    expectInOrder(seqs, 1000);
    const kinds = table.getChild("kind")!.toArray() as string[];
    expect(kinds.every((k, i) => k === kind(i))).toBe(true);
    // On the wire: each stream opens with the whole dictionary, then sends what it gained as deltas.
    const info = await env.client.getFlightInfo(pathDescriptor("growing-dict"));
    const dictionaries: string[] = [];
    for await (const m of env.client.doGetRaw(info.endpoint[0].ticket!)) {
      const h = readMessageHeader(m.dataHeader, m.dataBody);
      if (h.kind === MessageKind.DICTIONARY_BATCH) dictionaries.push(h.isDelta ? "delta" : "full");
    }
    expect(dictionaries.filter((d) => d === "delta").length).toBeGreaterThan(0);
    expect(dictionaries.filter((d) => d === "full").length).toBeGreaterThanOrEqual(commits.length);
  });

  test("flushOnExit: a process that ends without close() still commits its rows ('beforeExit')", async () => {
    // Runs the built package (npm test builds first), as an app would.
    const dist = path.resolve(__dirname, "../../dist/index.js");
    const script = `
      const { FlightClient, pathDescriptor } = require(${JSON.stringify(dist)});
      const client = new FlightClient(process.argv[1]);
      const writer = client.batchWriter(pathDescriptor("on-exit"), { maxDelayMs: 600000, onCommit: (b) => { process.stdout.write("committed " + b.length + "\\n"); client.close(); } });
      for (let i = 0; i < 5; i++) writer.append({ seq: i, note: "row " + i });
    `;
    const child = spawn(process.execPath, ["-e", script, env.client.location]);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out).toBe("committed 1\n");
    const table = await env.client.getTable(pathDescriptor("on-exit"));
    expect(table.getChild("seq")!.toArray()).toEqual(Float64Array.from([0, 1, 2, 3, 4]));
  });

  test("a value apache-arrow's builder refuses halfway through a row fails the writer, reporting every row", async () => {
    const schema = new arrow.Schema([new arrow.Field("seq", new arrow.Int32(), false), new arrow.Field("xs", new arrow.List(new arrow.Field("item", new arrow.Int64(), true)), true)]);
    const failures: BatchWriterFailure[] = [];
    const writer = env.client.batchWriter(pathDescriptor("nested-bad"), { schema, flushOnExit: false, onError: (f) => failures.push(f) });
    await writer.append({ seq: 0, xs: [1n, 2n] });
    // Numbers in a list of Int64 are not checked here; apache-arrow's builder throws on them
    // when it writes the list's values, as the batch is cut.
    await writer.append({ seq: 1, xs: [3] });
    const err = await writer.close().then(() => undefined, (e: unknown) => e as FlightError);
    expect(err).toBeInstanceOf(FlightError);
    expect(err!.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err!.message).toMatch(/apache-arrow could not build the batch: .*BigInt.*; no row is stored; rows 0\.\.1 are not stored/);
    expect(failures.map((f) => [f.committed, f.notStored])).toEqual([[{ firstRow: 0, rows: 0 }, { firstRow: 0, rows: 2 }]]);
    await expect(writer.append({ seq: 2 })).rejects.toBe(err);
  });

  test("an onCommit that throws is a process warning; the writer goes on", async () => {
    const warn = jest.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const writer = env.client.batchWriter(pathDescriptor("throwing-callback"), { schema: eventSchema, maxRows: 1, flushOnExit: false, onCommit: () => { throw new Error("boom"); } });
      await writer.append([event(0), event(1)]);
      await writer.close();
      expect(writer.stats.committedRows).toBe(2);
      expect(warn).toHaveBeenCalledWith("BatchWriter: onCommit threw: boom", { code: "BLACKICE_BATCH_WRITER_CALLBACK" });
    } finally {
      warn.mockRestore();
    }
  });

  test("bad options throw TypeError at construction", () => {
    expect(() => env.client.batchWriter(pathDescriptor("x"), { maxRows: 0 })).toThrow(/^BatchWriter: maxRows must be an integer from 1 to \d+; got 0$/);
    expect(() => env.client.batchWriter(pathDescriptor("x"), { nope: 1 } as never)).toThrow(/unknown option "nope"/);
    expect(() => env.client.batchWriter(pathDescriptor("x"), { retry: { maxAttempts: 0 } })).toThrow(/retry.maxAttempts/);
  });
});

describe("BatchWriter backpressure and failures", () => {
  test("append waits while maxPendingBatches are uncommitted", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // Holds every DoPut until the gate opens, as a slow server would.
    const slowPut: FlightMiddleware = (next) => async (call) => {
      if (call.method === "doPut") await gate;
      return next(call);
    };
    const env = await startServer(slowPut);
    try {
      const writer = env.client.batchWriter(pathDescriptor("slow"), { schema: eventSchema, maxRows: 1, maxPendingBatches: 2, flushOnExit: false });
      await writer.append(event(0));
      await writer.append(event(1));
      let third = false;
      const p = writer.append(event(2)).then(() => (third = true));
      await sleep(100);
      expect(third).toBe(false);
      expect(writer.stats).toMatchObject({ pendingBatches: 2, committedRows: 0 });
      release();
      await p;
      expect(third).toBe(true);
      await writer.close();
      expectInOrder((await storedSeqs(env.client, "slow")).seqs, 3);

      // Appends not awaited one by one keep their order while they wait for room, even one
      // made at the moment room opens (here from onCommit) while earlier ones still wait.
      let next = 0;
      const calls: Array<Promise<void>> = [];
      const ordered = env.client.batchWriter(pathDescriptor("not-awaited"), {
        schema: eventSchema,
        maxRows: 1,
        maxPendingBatches: 1,
        flushOnExit: false,
        onCommit: () => {
          if (next < 100) calls.push(ordered.append(event(next++)));
        },
      });
      for (let i = 0; i < 20; i++) calls.push(ordered.append(event(next++)));
      while (next < 100) await sleep(5);
      await Promise.all(calls);
      await ordered.close();
      expectInOrder((await storedSeqs(env.client, "not-awaited")).seqs, 100);
    } finally {
      release();
      await env.stop();
    }
  });

  test("a stream that fails before it ended is retried; every row stored once, in order", async () => {
    let failures = 2;
    // The first two DoPuts fail after their second message, before the client ended them.
    const flaky: FlightMiddleware = (next) => async (call) => {
      if (call.method !== "doPut" || failures <= 0) return next(call);
      failures--;
      const source = call.request;
      async function* failing(): AsyncGenerator<FlightData> {
        let n = 0;
        for await (const m of source) {
          if (++n > 2) throw new FlightError(StatusCode.UNAVAILABLE, "injected failure");
          yield m;
        }
      }
      return next({ ...call, request: failing() });
    };
    const env = await startServer(flaky);
    try {
      const writer = env.client.batchWriter(pathDescriptor("flaky"), { schema: eventSchema, maxRows: 100, retry: { initialDelayMs: 5 }, flushOnExit: false });
      await writer.append(Array.from({ length: 1000 }, (_, i) => event(i)));
      await writer.close();
      expect(writer.stats).toMatchObject({ committedRows: 1000, retries: 2 });
      expectInOrder((await storedSeqs(env.client, "flaky")).seqs, 1000);
    } finally {
      await env.stop();
    }
  });

  test("the server process is killed (SIGKILL) with a DoPut open: its rows are reported in doubt, the rest not stored", async () => {
    // A server in a child process (the built packages; npm test builds first) whose DoPuts
    // stall after their first message once 5 have run, so that one is open when it is killed.
    const core = path.resolve(__dirname, "../../../core/dist/index.js");
    const flight = path.resolve(__dirname, "../../dist/index.js");
    const script = `
      const { serverConfig } = require(${JSON.stringify(core)});
      const { createFlightServer } = require(${JSON.stringify(flight)});
      let puts = 0;
      const stall = (next) => async (call) => {
        if (call.method !== "doPut" || ++puts <= 5) return next(call);
        const source = call.request;
        async function* stalled() {
          for await (const m of source) { yield m; process.stdout.write("held\\n"); await new Promise(() => {}); }
        }
        return next({ ...call, request: stalled() });
      };
      const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), stall);
      server.start().then(({ port }) => process.stdout.write("port " + port + "\\n"));
    `;
    const child = spawn(process.execPath, ["-e", script]);
    let out = "";
    const seen = (what: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const m = out.match(what);
          if (m) resolve(m);
        };
        child.stdout.on("data", (d) => ((out += d), check()));
        child.on("exit", () => reject(new Error(`server exited: ${out}`)));
        check();
      });
    try {
      const [, port] = await seen(/port (\d+)\n/);
      const client = new FlightClient(`grpc+tcp://127.0.0.1:${port}`);
      const failures: BatchWriterFailure[] = [];
      // maxBatchesPerPut 1: one batch per stream, so the first five streams commit 5 batches.
      const writer = client.batchWriter(pathDescriptor("killed"), { schema: eventSchema, maxRows: 1000, maxBatchesPerPut: 1, retry: { maxAttempts: 3, initialDelayMs: 10 }, flushOnExit: false, onError: (f) => failures.push(f) });
      let appended = 0;
      const producer = (async () => {
        for (;;) {
          await writer.append(event(appended));
          appended++;
        }
      })().catch((err: unknown) => err);
      await seen(/held\n/);
      await sleep(50); // the writer ends the stalled stream (it has sent its only batch)
      child.kill("SIGKILL");
      const error = (await producer) as FlightError;
      client.close();

      expect(error).toBeInstanceOf(FlightError);
      expect(failures).toHaveLength(1);
      const [f] = failures;
      expect(f.committed).toEqual({ firstRow: 0, rows: 5000 });
      expect(f.inDoubt).toEqual({ firstRow: 5000, rows: 1000 });
      expect(f.notStored.firstRow).toBe(6000);
      expect(f.notStored.firstRow + f.notStored.rows).toBe(appended);
      expect(error.message).toMatch(/; rows 0\.\.4999 are stored; rows 5000\.\.5999 may or may not be stored \(the stream ended but its outcome was lost\); rows 6000\.\.\d+ are not stored$/);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("the server shuts down (graceMs 0) under load: bounded retries, then a clear error for the rows not stored, none lost without notice", async () => {
    const store = new MemoryStore();
    const env = await startServer(withStore(store));
    const failures: BatchWriterFailure[] = [];
    const writer = env.client.batchWriter(pathDescriptor("killed"), {
      schema: eventSchema,
      maxRows: 1000,
      maxPendingBatches: 4,
      retry: { maxAttempts: 3, initialDelayMs: 10 },
      flushOnExit: false,
      onError: (f) => failures.push(f),
    });
    let appended = 0;
    let appendError: unknown;
    const producer = (async () => {
      try {
        for (;;) {
          await writer.append(event(appended));
          appended++;
        }
      } catch (err) {
        appendError = err;
      }
    })();
    while (writer.stats.committedRows < 20_000) await sleep(5);
    await env.server.shutdown({ graceMs: 0 });
    await producer;
    env.client.close();

    // The producer was told.
    expect(appendError).toBeInstanceOf(FlightError);
    const error = appendError as FlightError;
    expect(error.message).toMatch(/^BatchWriter failed: .* \(after 3 attempts; the first failed with: .*\); rows 0\.\.\d+ are stored/);
    expect(error.message).toMatch(/rows \d+\.\.\d+ (are not stored|may or may not be stored)/);
    // onError told once, with ranges covering every row taken, in order, without gaps.
    expect(failures).toHaveLength(1);
    const [f] = failures;
    expect(f.error).toBe(error);
    expect(f.committed.firstRow).toBe(0);
    expect(f.inDoubt.firstRow).toBe(f.committed.rows);
    expect(f.notStored.firstRow).toBe(f.inDoubt.firstRow + f.inDoubt.rows);
    expect(f.notStored.firstRow + f.notStored.rows).toBe(appended);
    expect(f.notStored.rows + f.inDoubt.rows).toBeGreaterThan(0);
    await expect(writer.flush()).rejects.toBe(error);
    await expect(writer.append(event(0))).rejects.toBe(error);

    // What the store holds is exactly the committed rows (plus in-doubt ones, if their commit landed).
    const stored = (await store.get({ type: DescriptorType.PATH, path: ["killed"], cmd: new Uint8Array() }))?.totalRecords ?? 0;
    expect(stored === f.committed.rows || stored === f.committed.rows + f.inDoubt.rows).toBe(true);
    const reader = await startServer(withStore(store));
    try {
      expectInOrder((await storedSeqs(reader.client, "killed")).seqs, stored);
    } finally {
      await reader.stop();
      store.close();
    }
  });
});
