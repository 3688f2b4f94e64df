import * as arrow from "apache-arrow";
import { FlightError, StatusCode } from "@blackice/flight-core";
import { RowBatcher, inferSchema, isArrowInput } from "./row-batcher";

const schema = new arrow.Schema([
  new arrow.Field("id", new arrow.Int64(), false),
  new arrow.Field("tag", new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()), true),
  new arrow.Field("at", new arrow.TimestampMillisecond(), true),
  new arrow.Field("ok", new arrow.Bool(), true),
]);

const errorOf = (fn: () => unknown): FlightError => {
  try {
    fn();
  } catch (err) {
    return err as FlightError;
  }
  throw new Error("did not throw");
};

describe("RowBatcher", () => {
  test("builds batches from checked rows; the dictionary is kept across batches", () => {
    const b = new RowBatcher(arrow, schema);
    const rows = [
      { id: 1n, tag: "a", at: new Date(1000), ok: true },
      { id: 2, tag: "b", at: 2000 },
      { id: 3n, tag: null, ok: false },
    ];
    rows.forEach((r, i) => b.check(r, i));
    rows.forEach((r) => b.add(r));
    expect(b.rows).toBe(3);
    expect(b.bytes).toBeGreaterThan(0);
    const first = b.take()!;
    expect(first.numRows).toBe(3);
    expect(b.rows).toBe(0);
    expect(first.getChild("tag")!.toArray()).toEqual(["a", "b", null]);
    expect(first.getChild("at")!.get(0)).toBe(1000);
    b.add({ id: 4n, tag: "a" });
    b.add({ id: 5n, tag: "c" });
    const second = b.take()!;
    // One dictionary: "a" keeps its index, "c" is appended after "b".
    const dict = second.getChild("tag")!.data[0].dictionary!;
    expect(dict.toArray()).toEqual(["a", "b", "c"]);
    expect(Array.from((second.getChild("tag")!.data[0].values as Int32Array).subarray(0, 2))).toEqual([0, 2]);
    expect(b.take()).toBeUndefined();
  });

  test("the dictionary stays compact across many batches: no empty chunks, merged past 16", () => {
    const b = new RowBatcher(arrow, schema);
    const chunksAfter = (tags: string[]): number => {
      for (const [i, tag] of tags.entries()) b.add({ id: BigInt(i), tag });
      return b.take()!.getChild("tag")!.data[0].dictionary!.data.length;
    };
    expect(chunksAfter(["a"])).toBe(1);
    // Batches that add no value add no chunk (apache-arrow's builder would add an empty one each time).
    for (let i = 0; i < 50; i++) expect(chunksAfter(["a"])).toBe(1);
    // Each new value is a chunk (a delta on the wire) until there are too many: then one chunk.
    const counts = Array.from({ length: 20 }, (_, i) => chunksAfter([`v${i}`]));
    expect(counts.slice(0, 15)).toEqual(Array.from({ length: 15 }, (_, i) => i + 2));
    expect(Math.max(...counts)).toBeLessThanOrEqual(16);
    const last = b;
    last.add({ id: 1n, tag: "v3" });
    const batch = last.take()!;
    // Indices still point at the same values after merging.
    expect(batch.getChild("tag")!.get(0)).toBe("v3");
    expect(batch.getChild("tag")!.data[0].dictionary!.length).toBe(21);
  });

  test("mismatches are INVALID_ARGUMENT errors naming the row, field, value and type", () => {
    const b = new RowBatcher(arrow, schema);
    const e = errorOf(() => b.check({ id: 1.5 }, 12));
    expect(e).toBeInstanceOf(FlightError);
    expect(e.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(e.message).toBe('schema mismatch: row 12: field "id" is number 1.5, but Int64 takes integers');
    expect(errorOf(() => b.check({ id: 1, ok: "yes" }, 0)).message).toMatch(/field "ok" is the string "yes", but Bool takes booleans/);
    expect(errorOf(() => b.check({ id: 1, at: "today" }, 0)).message).toMatch(/Timestamp<MILLISECOND> takes Dates or epoch milliseconds/);
    expect(errorOf(() => b.check([1, 2] as never, 3)).message).toMatch(/row 3 is an array, not an object/);
    expect(errorOf(() => b.check({ id: null }, 0)).message).toMatch(/"id" is not nullable/);
    expect(errorOf(() => b.check({ id: 1, other: 2 }, 0)).message).toMatch(/field "other", which the schema does not have \(fields: id, tag, at, ok\)/);
  });

  test("Arrow input is checked against the schema and rebuilt with it", () => {
    const b = new RowBatcher(arrow, new arrow.Schema([new arrow.Field("x", new arrow.Float64(), true)]));
    const table = arrow.tableFromArrays({ x: Float64Array.from([1, 2, 3]) });
    expect(isArrowInput(table)).toBe(true);
    expect(isArrowInput({ x: 1 })).toBe(false);
    // tableFromArrays makes non-nullable fields; the writer's is nullable.
    expect(errorOf(() => b.arrowBatches(table as never)).message).toMatch(/the Arrow data has fields \(x: Float64 not null\), the writer's schema is \(x: Float64\)/);
    const nullable = new arrow.Schema([new arrow.Field("x", new arrow.Float64(), true)]);
    const ok = new arrow.Table(nullable, table.batches.map((rb) => new arrow.RecordBatch(nullable, rb.data as never)));
    const [batch] = b.arrowBatches(ok as never);
    expect(batch.numRows).toBe(3);
  });

  test("inferSchema maps JS values to Arrow types and refuses what it cannot infer", () => {
    const s = inferSchema(arrow, { n: 1, b: 2n, s: "x", t: true, d: new Date(), u: new Uint8Array(1) });
    expect(s.fields.map((f) => `${f.name}: ${String(f.type)}`)).toEqual(["n: Float64", "b: Int64", "s: Utf8", "t: Bool", "d: Timestamp<MILLISECOND>", "u: Binary"]);
    expect(() => inferSchema(arrow, { n: null })).toThrow(/cannot infer the type of field "n" from null; pass options.schema/);
  });
});
