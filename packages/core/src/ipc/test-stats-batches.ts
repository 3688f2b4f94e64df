// Test-only generators for batch statistics and pruning tests (excluded from the build).
// Batches are written by apache-arrow's IPC writer from raw typed arrays, so the values under
// null slots are chosen by the test (extreme ones, to catch a bitmap that is not honoured).
import * as A from "apache-arrow";
import fc from "fast-check";
import { splitIpcStream, type IpcMessageBytes } from "./ipc-stream";

export type Value = number | bigint;

/** A column type with statistics, its arrow-js type and a value generator. */
export interface KindSpec {
  readonly name: string;
  readonly type: () => A.DataType;
  readonly array: { from(values: Iterable<Value>): ArrayLike<Value> };
  readonly value: fc.Arbitrary<Value>;
  readonly float: boolean;
  /** Whether values are bigints (64-bit types). */
  readonly big: boolean;
}

const int = (min: number, max: number) => fc.integer({ min, max });
const big = (bits: number, signed: boolean) =>
  signed ? fc.bigInt({ min: -(2n ** BigInt(bits - 1)), max: 2n ** BigInt(bits - 1) - 1n }) : fc.bigInt({ min: 0n, max: 2n ** BigInt(bits) - 1n });
// Mostly small values, so that ranges of batches overlap and predicates hit; sometimes extremes.
const i64 = fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min: -1000n, max: 1000n }) }, { weight: 1, arbitrary: big(64, true) });

const spec = (name: string, type: () => A.DataType, array: KindSpec["array"], value: fc.Arbitrary<Value>, float = false): KindSpec => ({
  name,
  type,
  array,
  value,
  float,
  big: (array as unknown) === BigInt64Array || (array as unknown) === BigUint64Array,
});

/** Every type that gets statistics, all timestamp units with and without a time zone. */
export const KINDS: readonly KindSpec[] = [
  spec("int8", () => new A.Int8(), Int8Array as never, int(-128, 127)),
  spec("uint8", () => new A.Uint8(), Uint8Array as never, int(0, 255)),
  spec("int16", () => new A.Int16(), Int16Array as never, int(-32768, 32767)),
  spec("uint16", () => new A.Uint16(), Uint16Array as never, int(0, 65535)),
  spec("int32", () => new A.Int32(), Int32Array as never, fc.oneof(int(-1000, 1000), fc.integer())),
  spec("uint32", () => new A.Uint32(), Uint32Array as never, fc.oneof(int(0, 1000), int(0, 2 ** 32 - 1))),
  spec("int64", () => new A.Int64(), BigInt64Array as never, i64),
  spec("uint64", () => new A.Uint64(), BigUint64Array as never, fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), big(64, false))),
  spec("float32", () => new A.Float32(), Float32Array as never, fc.oneof(fc.float({ min: -1000, max: 1000 }), fc.float()), true),
  spec("float64", () => new A.Float64(), Float64Array as never, fc.oneof(fc.double({ min: -1000, max: 1000 }), fc.double()), true),
  spec("date32", () => new A.DateDay(), Int32Array as never, int(-100_000, 100_000)),
  spec("date64", () => new A.DateMillisecond(), BigInt64Array as never, i64),
  spec("time32s", () => new A.TimeSecond(), Int32Array as never, int(0, 86_399)),
  spec("time32ms", () => new A.TimeMillisecond(), Int32Array as never, int(0, 86_399_999)),
  spec("time64us", () => new A.TimeMicrosecond(), BigInt64Array as never, fc.bigInt({ min: 0n, max: 86_399_999_999n })),
  spec("time64ns", () => new A.TimeNanosecond(), BigInt64Array as never, fc.bigInt({ min: 0n, max: 86_399_999_999_999n })),
  spec("ts_s", () => new A.TimestampSecond(), BigInt64Array as never, i64),
  spec("ts_ms_utc", () => new A.TimestampMillisecond("UTC"), BigInt64Array as never, i64),
  spec("ts_us_tz", () => new A.TimestampMicrosecond("Europe/Paris"), BigInt64Array as never, i64),
  spec("ts_ns", () => new A.TimestampNanosecond(), BigInt64Array as never, i64),
  spec("ts_ns_utc", () => new A.TimestampNanosecond("+00:00"), BigInt64Array as never, i64),
  spec("dur_s", () => new A.DurationSecond(), BigInt64Array as never, i64),
  spec("dur_ns", () => new A.DurationNanosecond(), BigInt64Array as never, i64),
];

/** A column of one batch: a value per row, null for a null row, and what its null slot holds. */
export interface ColumnCase {
  readonly values: readonly (Value | null)[];
  /** Values written under null slots (never read by a correct reader). */
  readonly underNulls: readonly Value[];
  /** Whether to write a validity bitmap even when there is no null. */
  readonly bitmap: boolean;
}

/** A column of `rows` rows of `kind`: about a third null (sometimes none, sometimes all). */
export function columnCase(kind: KindSpec, rows: number): fc.Arbitrary<ColumnCase> {
  const nullRate = fc.constantFrom(0, 0, 0.3, 0.7, 1);
  return nullRate.chain((rate) =>
    fc.record({
      values: fc.array(
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), kind.value).map(([r, v]) => (r < rate ? null : v)),
        { minLength: rows, maxLength: rows },
      ),
      underNulls: fc.array(kind.value, { minLength: rows, maxLength: rows }),
      bitmap: fc.boolean(),
    }),
  );
}

/** An arrow-js vector of a column case. */
export function vectorOf(kind: KindSpec, c: ColumnCase): A.Vector {
  const n = c.values.length;
  const raw = kind.array.from(c.values.map((v, i) => (v === null ? c.underNulls[i]! : v)));
  const nulls = c.values.filter((v) => v === null).length;
  let nullBitmap: Uint8Array | undefined;
  if (nulls > 0 || c.bitmap) {
    // Bits past the length are set on purpose: a reader must not look at them.
    nullBitmap = new Uint8Array(Math.ceil(n / 8) + 1).fill(0xff);
    c.values.forEach((v, i) => {
      if (v === null) nullBitmap![i >> 3]! &= ~(1 << (i & 7));
    });
  }
  return A.makeVector(A.makeData({ type: kind.type(), length: n, nullCount: nulls, nullBitmap, data: raw } as never));
}

/** One record batch of columns `c0..`, as IPC messages (schema, batch). */
export function batchMessages(kinds: readonly KindSpec[], columns: readonly ColumnCase[]): IpcMessageBytes[] {
  const vectors: Record<string, A.Vector> = {};
  kinds.forEach((k, i) => (vectors[`c${i}`] = vectorOf(k, columns[i]!)));
  return splitIpcStream(A.tableToIPC(new A.Table(vectors), "stream"));
}

/** The expected statistics of a column, by definition. */
export function expectedStats(kind: KindSpec, c: ColumnCase): { nullCount: number; min: Value | undefined; max: Value | undefined; hasNaN: boolean } {
  const raw = kind.array.from(c.values.map((v) => v ?? (kind.big ? 0n : 0))); // the stored (rounded) values
  let min: Value | undefined;
  let max: Value | undefined;
  let hasNaN = false;
  c.values.forEach((v, i) => {
    if (v === null) return;
    const x = raw[i]!;
    if (typeof x === "number" && Number.isNaN(x)) {
      hasNaN = true;
      return;
    }
    if (min === undefined || x < min) min = x;
    if (max === undefined || x > max) max = x;
  });
  return { nullCount: c.values.filter((v) => v === null).length, min, max, hasNaN };
}

/** The values as stored (floats rounded to float32 where the column is float32), null kept. */
export function storedValues(kind: KindSpec, c: ColumnCase): (Value | null)[] {
  const raw = kind.array.from(c.values.map((v) => v ?? (kind.big ? 0n : 0)));
  return c.values.map((v, i) => (v === null ? null : raw[i]!));
}
