import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as A from "apache-arrow";
import fc from "fast-check";
import { contiguous } from "../byte-chunks";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { batchStatsBytes } from "../ipc/batch-stats";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { splitIpcStream, type IpcMessageBytes } from "../ipc/ipc-stream";
import { readMessageHeader } from "../ipc/message-header";
import { KINDS, batchMessages, columnCase, storedValues, type ColumnCase, type KindSpec, type Value } from "../ipc/test-stats-batches";
import { StatusCode } from "../status-code";
import { decodeManifest, encodeManifest, fileId } from "../store/disk-format";
import { DiskStore } from "../store/disk-store";
import type { FlightStore, StoredFlight } from "../store/flight-store";
import { MemoryStore } from "../store/memory-store";
import { mayMatch, prunedMessages, selectBatches, type RangeOp, type RangePredicate } from "./batch-pruning";

const OPS: readonly RangeOp[] = ["<", "<=", ">", ">=", "=", "!="];
const pathD = (...p: string[]): FlightDescriptor => ({ type: DescriptorType.PATH, path: p, cmd: new Uint8Array() });

function stored(m: IpcMessageBytes): StoredMessage {
  return { header: m.header, body: m.body, appMetadata: new Uint8Array(0), info: readMessageHeader(m.header, m.body), byteSize: m.header.byteLength + m.body.byteLength };
}

async function put(store: FlightStore, d: FlightDescriptor, schema: IpcMessageBytes, messages: readonly IpcMessageBytes[]): Promise<StoredFlight> {
  const tx = await store.beginPut(d, stored(schema));
  for (const m of messages) await tx.append(stored(m));
  return tx.commit();
}

/** `a op b` for one row value, IEEE-style (NaN compares false, except !=). */
function compare(a: Value, op: RangeOp, b: Value): boolean {
  switch (op) {
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "=":
      return a == b; // eslint-disable-line eqeqeq
    case "!=":
      return a != b; // eslint-disable-line eqeqeq
  }
}

/** Total order with NaN above every number and equal to itself (Polars, DuckDB). */
function compareNaNLast(a: Value, op: RangeOp, b: Value): boolean {
  const an = typeof a === "number" && Number.isNaN(a);
  const bn = typeof b === "number" && Number.isNaN(b);
  if (!an && !bn) return compare(a, op, b);
  const c = an && bn ? 0 : an ? 1 : -1;
  return compare(c, op, 0);
}

/** Whether a row may match under either NaN semantics; a null never matches (SQL). */
function rowMatches(row: readonly (Value | null)[], predicates: readonly { column: number; op: RangeOp; value: Value }[]): boolean {
  const ieee = predicates.every((p) => row[p.column] !== null && compare(row[p.column]!, p.op, p.value));
  const nanLast = predicates.every((p) => row[p.column] !== null && compareNaNLast(row[p.column]!, p.op, p.value));
  return ieee || nanLast;
}

interface FlightCase {
  kinds: KindSpec[];
  batches: ColumnCase[][];
  predicates: { column: number; op: RangeOp; value: Value }[];
}

const flightCase: fc.Arbitrary<FlightCase> = fc
  .tuple(fc.subarray(KINDS as KindSpec[], { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 8 }))
  .chain(([kinds, nBatches]) =>
    fc.record({
      kinds: fc.constant(kinds),
      batches: fc.array(
        fc.integer({ min: 0, max: 30 }).chain((rows) => fc.tuple(...kinds.map((k) => columnCase(k, rows)))),
        { minLength: nBatches, maxLength: nBatches },
      ),
      predicates: fc.array(
        fc.integer({ min: 0, max: kinds.length - 1 }).chain((column) =>
          fc.record({
            column: fc.constant(column),
            op: fc.constantFrom(...OPS),
            // A value of the column's own kind; for 64-bit columns sometimes a number, fractional too.
            value: kinds[column]!.big
              ? fc.oneof(kinds[column]!.value, fc.double({ min: -1100, max: 1100, noNaN: true }), fc.integer({ min: -1100, max: 1100 }))
              : kinds[column]!.value,
          }),
        ),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  ) as fc.Arbitrary<FlightCase>;

function messagesOf(c: FlightCase): { schema: IpcMessageBytes; batches: IpcMessageBytes[] } {
  const all = c.batches.map((cols) => batchMessages(c.kinds, cols));
  return { schema: all[0]![0]!, batches: all.map((m) => m[1]!) };
}

describe("mayMatch", () => {
  const s = (min: Value | undefined, max: Value | undefined, hasNaN = false) => ({ nullCount: 0, min, max, hasNaN });
  it("rules a batch out only when its range excludes every row", () => {
    expect(mayMatch(s(10n, 20n), ">", 20n)).toBe(false);
    expect(mayMatch(s(10n, 20n), ">=", 20n)).toBe(true);
    expect(mayMatch(s(10n, 20n), "<", 10)).toBe(false);
    expect(mayMatch(s(10n, 20n), "<", 10.5)).toBe(true);
    expect(mayMatch(s(10n, 20n), "=", 21)).toBe(false);
    expect(mayMatch(s(10n, 20n), "=", 15n)).toBe(true);
    expect(mayMatch(s(5, 5), "!=", 5n)).toBe(false);
    expect(mayMatch(s(5, 6), "!=", 5)).toBe(true);
  });
  it("never rules out a batch with NaN, nor for a NaN value; an all-null column never matches", () => {
    expect(mayMatch(s(1, 2, true), ">", 100)).toBe(true);
    expect(mayMatch(s(1, 2), "<", NaN)).toBe(true);
    expect(mayMatch(s(undefined, undefined), "!=", 0)).toBe(false);
    expect(mayMatch(s(undefined, undefined, true), "=", 0)).toBe(true);
  });
});

describe("selectBatches", () => {
  it("never drops a batch holding a matching row (nulls, NaN, negatives, every timestamp unit), and skips some", async () => {
    const store = new MemoryStore({ enableGC: false });
    let skipped = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(flightCase, async (c) => {
        const { schema, batches } = messagesOf(c);
        const d = pathD("p", String(runs++));
        const flight = await put(store, d, schema, batches);
        const predicates: RangePredicate[] = c.predicates.map((p) => ({ column: `c${p.column}`, op: p.op, value: p.value }));
        const sel = await selectBatches(flight, predicates);
        expect(sel.batchesRead + sel.batchesSkipped).toBe(batches.length);
        expect(sel.used).toHaveLength(predicates.length);
        c.batches.forEach((cols, b) => {
          const values = cols.map((col, i) => storedValues(c.kinds[i]!, col));
          const rows = values[0]!.length;
          const anyMatch = Array.from({ length: rows }, (_, r) => values.map((v) => v[r]!)).some((row) => rowMatches(row, c.predicates));
          if (anyMatch) expect(sel.indices).toContain(b);
        });
        // What is read is exactly the chosen batches, in order.
        const read: StoredMessage[] = [];
        for await (const m of prunedMessages(flight, sel)) read.push(m);
        expect(read.map((m) => m.header)).toEqual(sel.indices.map((i) => batches[i]!.header));
        skipped += sel.batchesSkipped;
        await store.delete(d);
      }),
      { numRuns: 100 },
    );
    // Not vacuous: predicates drawn from the columns' own values do rule batches out.
    expect(skipped).toBeGreaterThan(20);
    await store.close();
  });

  it("reads dictionaries always, ignores predicates on unknown or stat-less columns, and refuses malformed ones", async () => {
    const store = new MemoryStore({ enableGC: false });
    const table = (ts: bigint[]) =>
      new A.Table({
        ts: A.makeVector(A.makeData({ type: new A.TimestampMicrosecond("UTC"), length: ts.length, nullCount: 0, data: BigInt64Array.from(ts) })),
        host: A.vectorFromArray(ts.map((t) => `h${t}`), new A.Dictionary(new A.Utf8(), new A.Int32())),
      });
    const one = splitIpcStream(A.tableToIPC(table([1n, 2n]), "stream")); // schema, dictionary, batch
    const two = splitIpcStream(A.tableToIPC(table([10n, 20n]), "stream"));
    const flight = await put(store, pathD("dict"), one[0]!, [one[1]!, one[2]!, two[2]!]);
    // Messages: dictionary, batch [1,2], batch [10,20].
    expect((await flight.batchStats!()).map((s) => s.kind)).toEqual([MessageKind.DICTIONARY_BATCH, MessageKind.RECORD_BATCH, MessageKind.RECORD_BATCH]);
    const sel = await selectBatches(flight, [{ column: "ts", op: ">=", value: 10n }, { column: "host", op: "=", value: 1 }, { column: "nope", op: "<", value: 0 }]);
    expect(sel).toEqual({ indices: [0, 2], batchesRead: 1, batchesSkipped: 1, used: [{ column: "ts", op: ">=", value: 10n }] });
    await expect(selectBatches(flight, [{ column: "ts", op: "~" as RangeOp, value: 1 }])).rejects.toThrow(expect.objectContaining({ code: StatusCode.INVALID_ARGUMENT }));
    await expect(selectBatches(flight, [{ column: "ts", op: "<", value: "1" as unknown as number }])).rejects.toThrow(/number or a bigint/);
    await store.close();
  });

  it("counts the statistics in the memory store's accounting", async () => {
    const store = new MemoryStore({ enableGC: false });
    const [schema, batch] = batchMessages([KINDS[6]!, KINDS[9]!], [
      { values: [1n, 2n], underNulls: [0n, 0n], bitmap: false },
      { values: [1.5, NaN], underNulls: [0, 0], bitmap: false },
    ]);
    const flight = await put(store, pathD("acct"), schema!, [batch!]);
    const plain = stored(schema!).byteSize + stored(batch!).byteSize;
    // Counted at put, before they exist: the entry, two column statistics (one with bigints)
    // at their most, and the slot.
    const counted = flight.memoryBytes! - plain;
    expect(counted).toBeGreaterThan(2 * 64 + 48);
    const usedBefore = store.stats().memory.memoryBytes;
    const first = await flight.batchStats!();
    expect(first[0]!.stats![1]).toEqual({ nullCount: 0, min: 1.5, max: 1.5, hasNaN: true });
    // What was computed fits in what was counted, and computing it changed no figure.
    expect(batchStatsBytes(first[0]!.stats)).toBeLessThanOrEqual(counted);
    expect(store.stats().memory.memoryBytes).toBe(usedBefore);
    // Computed once and kept: a later call, on this snapshot or a newer one, returns the same entry.
    expect((await flight.batchStats!())[0]).toBe(first[0]);
    const appended = await put(store, pathD("acct"), schema!, [batch!]);
    const both = await appended.batchStats!();
    expect(both[0]).toBe(first[0]);
    expect(both[1]).not.toBe(first[0]);
    expect(both[1]).toEqual(first[0]);
    await store.close();
  });
});

describe("DiskStore statistics", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-pruning-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ts = KINDS.find((k) => k.name === "ts_ns_utc")!;
  const batchOf = (values: (bigint | null)[]) => batchMessages([ts], [{ values, underNulls: values.map(() => -(2n ** 63n)), bitmap: false }]);

  it("persists them in the manifest, reads only the chosen batches after a reopen, and appends keep them", async () => {
    let store = new DiskStore({ dir, fsync: "never", enableGC: false });
    const b1 = batchOf([1n, null, 5n]);
    const b2 = batchOf([100n, 200n]);
    const b3 = batchOf([null, null]);
    await put(store, pathD("t"), b1[0]!, [b1[1]!, b2[1]!]);
    await put(store, pathD("t"), b1[0]!, [b3[1]!]);
    await store.close();
    store = new DiskStore({ dir, fsync: "never", enableGC: false });
    const flight = (await store.get(pathD("t")))!;
    expect((await flight.batchStats!()).map((s) => s.stats?.[0])).toEqual([
      { nullCount: 1, min: 1n, max: 5n, hasNaN: false },
      { nullCount: 0, min: 100n, max: 200n, hasNaN: false },
      { nullCount: 2, min: undefined, max: undefined, hasNaN: false },
    ]);
    const sel = await selectBatches(flight, [{ column: "c0", op: ">", value: 150n }]);
    expect(sel).toMatchObject({ indices: [1], batchesRead: 1, batchesSkipped: 2 });
    const read: StoredMessage[] = [];
    for await (const m of prunedMessages(flight, sel)) read.push(m);
    expect(read.map((m) => Buffer.from(contiguous(m.body)))).toEqual([Buffer.from(b2[1]!.body)]);
    const manifest = decodeManifest(fs.readFileSync(path.join(dir, "flights", `${fileId("p:t")}.json`)));
    expect(manifest.statsVersion).toBe(1);
    expect(manifest.messages[2]!.s).toEqual([[0, "100", "200"]]);
    await store.close();
  });

  it("opens a store written before statistics: its batches have none and are always read", async () => {
    let store = new DiskStore({ dir, fsync: "never", enableGC: false });
    const b1 = batchOf([1n, 2n]);
    await put(store, pathD("old"), b1[0]!, [b1[1]!]);
    await store.close();
    // Rewrite the manifest as the previous version wrote it: no statsVersion, no `s`.
    const file = path.join(dir, "flights", `${fileId("p:old")}.json`);
    const m = decodeManifest(fs.readFileSync(file));
    delete m.statsVersion;
    for (const e of m.messages) delete e.s;
    fs.writeFileSync(file, encodeManifest(m));
    store = new DiskStore({ dir, fsync: "never", enableGC: false });
    expect(store.recovery.damaged).toBe(0);
    const flight = (await store.get(pathD("old")))!;
    expect(await flight.batchStats!()).toEqual([{ kind: MessageKind.RECORD_BATCH, stats: undefined }]);
    expect(await selectBatches(flight, [{ column: "c0", op: ">", value: 100n }])).toMatchObject({ indices: [0], batchesRead: 1, batchesSkipped: 0 });
    // An append to it gets statistics for its own batches.
    const b2 = batchOf([300n]);
    const appended = await put(store, pathD("old"), b1[0]!, [b2[1]!]);
    expect((await appended.batchStats!()).map((s) => s.stats?.[0]?.max)).toEqual([undefined, 300n]);
    await store.close();
  });
});
