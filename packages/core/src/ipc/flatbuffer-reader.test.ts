import { FlightError } from "../flight-error";
import { StatusCode } from "../status-code";
import { FlatBufferReader, MAX_FLATBUFFER_DEPTH } from "./flatbuffer-reader";
import { bool, buildFlatbuffer, i16, i32, i32s, i64, i64s, pairs, str, table, tables, u8 } from "./test-flatbuffer-builder";

function invalid(fn: () => unknown, pattern: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FlightError);
  expect((error as FlightError).code).toBe(StatusCode.INVALID_ARGUMENT);
  expect((error as FlightError).message).toMatch(pattern);
}

describe("FlatBufferReader", () => {
  it("reads scalars, defaults, strings, vectors, structs and unions", () => {
    const bytes = buildFlatbuffer([
      i16(-3),
      bool(true),
      i32(123456),
      i64(-(2n ** 40n)),
      str("héllo"),
      i32s([1, -2, 3]),
      tables([str("a")], [str("b")]),
      pairs([[1, 2], [3, 4]]),
      u8(2),
      table(i32(7)),
      i64s([5, 6]),
    ]);
    const root = new FlatBufferReader(bytes, "test").root();
    expect(root.int16(0)).toBe(-3);
    expect(root.bool(1)).toBe(true);
    expect(root.int32(2)).toBe(123456);
    expect(root.int64(3)).toBe(-(2n ** 40n));
    expect(root.int64Number(3, 0, "x")).toBe(-(2 ** 40));
    expect(root.string(4, "s")).toBe("héllo");
    const ints = root.vector(5, 4, "ints");
    expect(ints?.length).toBe(3);
    expect([0, 1, 2].map((i) => ints?.int32(i))).toEqual([1, -2, 3]);
    const tbls = root.vector(6, 4, "tables");
    expect(tbls?.table(1, "t").string(0, "s")).toBe("b");
    const structs = root.vector(7, 16, "structs");
    expect(structs?.structInt64Number(1, 8, "m")).toBe(4);
    const u = root.union(8, "union");
    expect(u.type).toBe(2);
    expect(u.table?.int32(0)).toBe(7);
    expect(root.vector(10, 8, "longs")?.int64Number(1)).toBe(6);
    // Absent fields read as their defaults.
    expect(root.int32(20, 99)).toBe(99);
    expect(root.table(20, "none")).toBeNull();
    expect(root.has(20)).toBe(false);
  });

  it("refuses buffers too short to hold a root table", () => {
    invalid(() => new FlatBufferReader(new Uint8Array(3)).root(), /too short/);
  });

  it("refuses a root offset past the end", () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setUint32(0, 1000, true);
    invalid(() => new FlatBufferReader(bytes).root(), /points past the end/);
  });

  it("refuses a zero offset", () => {
    invalid(() => new FlatBufferReader(new Uint8Array(16)).root(), /is zero/);
  });

  it("refuses a vtable outside the buffer", () => {
    const bytes = buildFlatbuffer([i32(1)]);
    const dv = new DataView(bytes.buffer);
    const tablePos = dv.getUint32(0, true);
    dv.setInt32(tablePos, 100000, true);
    invalid(() => new FlatBufferReader(bytes).root(), /vtable .* outside/);
  });

  it("refuses a vtable with an invalid size", () => {
    const bytes = buildFlatbuffer([i32(1)]);
    const dv = new DataView(bytes.buffer);
    const tablePos = dv.getUint32(0, true);
    const vt = tablePos - dv.getInt32(tablePos, true);
    dv.setUint16(vt, 3, true);
    invalid(() => new FlatBufferReader(bytes).root(), /invalid size 3/);
  });

  it("refuses a table whose inline size runs past the end", () => {
    const bytes = buildFlatbuffer([i32(1)]);
    const dv = new DataView(bytes.buffer);
    const tablePos = dv.getUint32(0, true);
    const vt = tablePos - dv.getInt32(tablePos, true);
    dv.setUint16(vt + 2, 60000, true);
    invalid(() => new FlatBufferReader(bytes).root(), /outside/);
  });

  it("refuses a field that lies outside its table", () => {
    const bytes = buildFlatbuffer([i32(1)]);
    const dv = new DataView(bytes.buffer);
    const tablePos = dv.getUint32(0, true);
    const vt = tablePos - dv.getInt32(tablePos, true);
    dv.setUint16(vt + 4, 400, true);
    invalid(() => new FlatBufferReader(bytes).root().int32(0), /lies outside the table/);
  });

  it("refuses a misaligned scalar field", () => {
    const bytes = buildFlatbuffer([i64(1)]);
    const dv = new DataView(bytes.buffer);
    const tablePos = dv.getUint32(0, true);
    const vt = tablePos - dv.getInt32(tablePos, true);
    dv.setUint16(vt + 2, 16, true);
    dv.setUint16(vt + 4, 6, true);
    invalid(() => new FlatBufferReader(bytes).root().int64(0), /misaligned/);
  });

  it("refuses a vector longer than the buffer", () => {
    const bytes = buildFlatbuffer([i32s([1, 2])]);
    const root = new FlatBufferReader(bytes).root();
    const vec = root.vector(0, 4, "v");
    new DataView(bytes.buffer).setUint32((vec?.start as number) - 4, 0x7fffffff, true);
    invalid(() => new FlatBufferReader(bytes).root().vector(0, 4, "v"), /declares 2147483647 elements/);
  });

  it("refuses a string without its NUL terminator or longer than the buffer", () => {
    const bytes = buildFlatbuffer([str("abc")]);
    const dv = new DataView(bytes.buffer);
    // Find the string by its content and break its terminator.
    const at = bytes.indexOf(0x61);
    bytes[at + 3] = 0x7a;
    invalid(() => new FlatBufferReader(bytes).root().string(0, "name"), /not NUL-terminated/);
    dv.setUint32(at - 4, 5000, true);
    invalid(() => new FlatBufferReader(bytes).root().string(0, "name"), /longer than the buffer/);
  });

  it("refuses a union with a type but no value, or a value but no type", () => {
    invalid(() => new FlatBufferReader(buildFlatbuffer([u8(3)])).root().union(0, "u"), /has type 3 but no value/);
    invalid(() => new FlatBufferReader(buildFlatbuffer([u8(0), table()])).root().union(0, "u"), /has a value but no type/);
  });

  it("stops following references past the depth limit", () => {
    let t = table(i32(0));
    for (let i = 0; i < MAX_FLATBUFFER_DEPTH + 5; i++) t = table(t);
    const reader = new FlatBufferReader(buildFlatbuffer([t]));
    let cur = reader.root();
    invalid(() => {
      for (;;) cur = cur.table(0, "nested") as NonNullable<typeof cur>;
    }, /nested more than 128 tables deep/);
  });

  it("refuses offsets that point at the same bytes over and over (work budget)", () => {
    // A vector of 2000 offsets, all rewritten to point at one small table: legal offsets,
    // but walking them would do more work than the buffer's size justifies.
    const bytes = buildFlatbuffer([tables(...Array.from({ length: 2000 }, () => [i32(1)]))]);
    const reader = new FlatBufferReader(bytes);
    const vec = reader.root().vector(0, 4, "v");
    const dv = new DataView(bytes.buffer);
    const first = (vec?.start as number) + dv.getUint32(vec?.start as number, true);
    for (let i = 0; i < 2000; i++) {
      const at = (vec?.start as number) + 4 * i;
      dv.setUint32(at, first - at, true);
    }
    const again = new FlatBufferReader(bytes).root().vector(0, 4, "v") as NonNullable<typeof vec>;
    // Honest reads of each element once stay within budget...
    for (let i = 0; i < 2000; i++) again.table(i, "t").int32(0);
    // ...but going over them again and again does not.
    invalid(() => {
      for (let round = 0; round < 100; round++) for (let i = 0; i < 2000; i++) again.table(i, "t");
    }, /too many times/);
  });

  it("refuses int64 values outside the safe integer range when read as numbers", () => {
    const root = new FlatBufferReader(buildFlatbuffer([i64(2n ** 60n)])).root();
    expect(root.int64(0)).toBe(2n ** 60n);
    invalid(() => root.int64Number(0, 0, "size"), /safe integer/);
  });
});
