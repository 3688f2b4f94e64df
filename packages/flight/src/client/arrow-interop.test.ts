import * as arrow from "apache-arrow";
import { joinIpcStream, contiguous } from "@blackice/flight-core";
import { ArrowRebuilder, decodeRecordBatches, encodeTable, isRecordBatchLike, isTableLike, readArrowSchema } from "./arrow-interop";

type ArrowModule = typeof arrow;

/** A second instance of apache-arrow: classes that are not the host's. */
function foreignArrow(): ArrowModule {
  let foreign!: ArrowModule;
  jest.isolateModules(() => {
    foreign = require("apache-arrow") as ArrowModule;
  });
  expect(foreign.DataType).not.toBe(arrow.DataType);
  return foreign;
}

/** One batch of many types, built with the given copy of apache-arrow. */
function manyTypes(A: ArrowModule, n: number, offset = 0): arrow.RecordBatch {
  const ids = Array.from({ length: n }, (_, i) => offset + i);
  const v = <T extends arrow.DataType>(values: unknown[], type: T): arrow.Data<T> => A.vectorFromArray(values as never, type).data[0] as arrow.Data<T>;
  const unionType = new A.SparseUnion([0, 1], [new A.Field("i", new A.Int32(), true), new A.Field("s", new A.Utf8(), true)] as never);
  const columns: Record<string, arrow.Data> = {
    null: v(ids.map(() => null), new A.Null()),
    bool: v(ids.map((i) => (i % 3 === 0 ? null : i % 2 === 0)), new A.Bool()),
    int8: v(ids.map((i) => (i % 100) - 50), new A.Int8()),
    uint16: v(ids.map((i) => i * 7), new A.Uint16()),
    int64: v(ids.map((i) => BigInt(i) - 5n), new A.Int64()),
    uint64: v(ids.map((i) => BigInt(i) * 3n), new A.Uint64()),
    float32: v(ids.map((i) => i / 8), new A.Float32()),
    binary: v(ids.map((i) => (i % 4 === 0 ? null : Uint8Array.of(i & 255, 1, 2))), new A.Binary()),
    largeUtf8: v(ids.map((i) => `large-${i}`), new A.LargeUtf8()),
    largeBinary: v(ids.map((i) => Uint8Array.of(i & 255)), new A.LargeBinary()),
    dateDay: v(ids.map((i) => new Date(Date.UTC(2024, 0, 1 + i))), new A.DateDay()),
    dateMs: v(ids.map((i) => new Date(Date.UTC(2024, 5, 1, 0, 0, i))), new A.DateMillisecond()),
    timeMs: v(ids.map((i) => i * 1000), new A.TimeMillisecond()),
    tsNs: v(ids.map((i) => 1_700_000_000_000 + i), new A.TimestampNanosecond("UTC")),
    tsSec: v(ids.map((i) => (i % 5 === 0 ? null : 1_700_000_000_000 + i * 1000)), new A.TimestampSecond()),
    duration: v(ids.map((i) => BigInt(i)), new A.DurationMillisecond()),
    fixedBinary: v(ids.map((i) => Uint8Array.of(i & 255, 0, 0, 7)), new A.FixedSizeBinary(4)),
    fixedList: v(ids.map((i) => (i % 6 === 0 ? null : [i, -i])), new A.FixedSizeList(2, new A.Field("item", new A.Int16(), true))),
    largeList: v(ids.map((i) => Array.from({ length: i % 3 }, (_, k) => `${i}.${k}`)), new A.LargeList(new A.Field("item", new A.Utf8(), true))),
    map: v(
      ids.map((i) => new Map([[`k${i}`, i], ["z", -1]])),
      new A.Map_(new A.Field("entries", new A.Struct([new A.Field("key", new A.Utf8(), false), new A.Field("value", new A.Int32(), true)] as never), false)),
    ),
    decimal: A.makeData({ type: new A.Decimal(2, 12, 128), length: n, nullCount: 0, data: Uint32Array.from({ length: n * 4 }, (_, k) => (k % 4 === 0 ? k : 0)) }),
    union: A.makeData({
      type: unionType,
      length: n,
      nullCount: 0,
      typeIds: Int8Array.from(ids, (i) => i % 2),
      children: [v(ids, new A.Int32()), v(ids.map((i) => `u${i}`), new A.Utf8())],
    }),
    dict: v(ids.map((i) => (i % 7 === 0 ? null : ["red", "green", "blue"][i % 3])), new A.Dictionary(new A.Utf8(), new A.Int8(), 3)),
  };
  return new A.RecordBatch(columns);
}

const rowsOf = (x: { toArray(): unknown[] }): unknown =>
  JSON.parse(JSON.stringify(x.toArray(), (_k, v) => (typeof v === "bigint" ? `${v}n` : ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v)));
const fieldsOf = (s: { fields: Array<{ name: string; type: unknown; nullable: boolean }> }): string[] => s.fields.map((f) => `${f.name}: ${String(f.type)}${f.nullable ? "?" : ""}`);

async function* from<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("Arrow interop", () => {
  it("encodes a foreign table to exactly the bytes its own apache-arrow writes", () => {
    const A = foreignArrow();
    const table = new A.Table([manyTypes(A, 40), manyTypes(A, 9, 40)]);
    const messages = [...encodeTable(arrow, table)];
    const ours = joinIpcStream(messages.map((m) => ({ header: m.dataHeader, body: m.dataBody })));
    expect(Buffer.compare(Buffer.from(ours), Buffer.from(A.tableToIPC(table, "stream")))).toBe(0);
  });

  it("decodes the messages back into host batches with the same values", async () => {
    const A = foreignArrow();
    const table = new A.Table([manyTypes(A, 40), manyTypes(A, 9, 40)]);
    const state: { schema?: arrow.Schema } = {};
    const batches = await collect(decodeRecordBatches(from(encodeTable(arrow, table)), state));
    expect(batches.map((b) => b.numRows)).toEqual([40, 9]);
    expect(fieldsOf(state.schema!)).toEqual(fieldsOf(table.schema));
    expect(rowsOf(new arrow.Table(batches))).toEqual(rowsOf(table));
    // The host's classes: apache-arrow's own functions work on them.
    expect(arrow.tableToIPC(new arrow.Table(batches), "stream").byteLength).toBeGreaterThan(0);
  });

  it("rebuilds with shared identity: one dictionary shared by batches is written once", () => {
    const A = foreignArrow();
    const dictionary = A.vectorFromArray(["a", "b", "c"], new A.Utf8());
    const type = new A.Dictionary(new A.Utf8(), new A.Int32(), 1);
    const batch = (indices: number[]) =>
      new A.RecordBatch({ d: A.makeData({ type, length: indices.length, nullCount: 0, data: Int32Array.from(indices), dictionary }) });
    const messages = [...encodeTable(arrow, new A.Table([batch([0, 1]), batch([2, 2, 0])]))];
    // schema, one dictionary batch, two record batches
    expect(messages).toHaveLength(4);
    const rebuild = new ArrowRebuilder(arrow);
    expect(rebuild.type(type as never)).toBe(rebuild.type(type as never));
  });

  it("splits batches by maxBatchRows and puts app_metadata on record batches only", async () => {
    const table = new arrow.Table([manyTypes(arrow, 25)]);
    const messages = [...encodeTable(arrow, table, { maxBatchRows: 10, appMetadata: (i) => (i === 1 ? undefined : `m${i}`) })];
    const batches = await collect(decodeRecordBatches(from(messages)));
    expect(batches.map((b) => b.numRows)).toEqual([10, 10, 5]);
    expect(rowsOf(new arrow.Table(batches))).toEqual(rowsOf(table));
    expect(messages.map((m) => Buffer.from(m.appMetadata).toString()).filter((s) => s !== "")).toEqual(["m0", "m2"]);
  });

  it("refuses what is not a table, and bad options", () => {
    expect(() => [...encodeTable(arrow, { schema: {} } as never)]).toThrow(/Table or RecordBatch/);
    expect(() => [...encodeTable(arrow, new arrow.Table([manyTypes(arrow, 2)]), { maxBatchRows: 1.5 })]).toThrow(/maxBatchRows/);
    expect(() => [...encodeTable(arrow, new arrow.Table([manyTypes(arrow, 2)]), { appMetadata: () => 5 as never })]).toThrow(/appMetadata/);
    expect(isTableLike(new arrow.Table())).toBe(true);
    expect(isRecordBatchLike(manyTypes(arrow, 1))).toBe(true);
    expect(isTableLike({ schema: { fields: [] } })).toBe(false);
  });

  it("turns apache-arrow's decoding errors into DATA_LOSS and passes the source's errors", async () => {
    const [schema, ...rest] = [...encodeTable(arrow, new arrow.Table([manyTypes(arrow, 3)]))];
    const truncated = { ...rest[rest.length - 1], dataBody: contiguous(rest[rest.length - 1].dataBody).subarray(1) };
    await expect(collect(decodeRecordBatches(from([schema, ...rest.slice(0, -1), truncated])))).rejects.toMatchObject({ code: 15 });
    async function* failing() {
      yield schema;
      throw Object.assign(new Error("network"), { code: 14 });
    }
    await expect(collect(decodeRecordBatches(failing()))).rejects.toThrow("network");
  });

  it("reads an IPC-encapsulated schema", () => {
    const table = new arrow.Table([manyTypes(arrow, 1)]);
    const [schemaMessage] = [...encodeTable(arrow, table)];
    const padded = Math.ceil(schemaMessage.dataHeader.byteLength / 8) * 8;
    const encapsulated = new Uint8Array(8 + padded);
    new DataView(encapsulated.buffer).setUint32(0, 0xffffffff, true);
    new DataView(encapsulated.buffer).setInt32(4, padded, true);
    encapsulated.set(schemaMessage.dataHeader, 8);
    expect(fieldsOf(readArrowSchema(encapsulated))).toEqual(fieldsOf(table.schema));
    expect(fieldsOf(readArrowSchema({ schema: encapsulated }))).toEqual(fieldsOf(table.schema));
    expect(() => readArrowSchema(new Uint8Array(0))).toThrow(/empty/);
  });
});
