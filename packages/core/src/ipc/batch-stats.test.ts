import * as A from "apache-arrow";
import fc from "fast-check";
import { ByteChunks } from "../byte-chunks";
import { batchStatsBytes, batchStatsBytesBound, computeBatchStats, type ColumnStats } from "./batch-stats";
import { splitIpcStream } from "./ipc-stream";
import { readSchema } from "./schema-info";
import { KINDS, batchMessages, columnCase, expectedStats, type KindSpec } from "./test-stats-batches";

/** Cuts a body into pieces at the given fractions (a body as received in network chunks). */
function cut(body: Uint8Array, cuts: readonly number[]): ByteChunks {
  const at = [...new Set(cuts.map((f) => Math.floor(f * body.byteLength)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...at, body.byteLength]) {
    pieces.push(body.subarray(prev, p));
    prev = p;
  }
  return new ByteChunks(pieces);
}

function same(actual: ColumnStats | null | undefined, expected: ReturnType<typeof expectedStats>): void {
  expect(actual).not.toBeNull();
  expect(actual!.nullCount).toBe(expected.nullCount);
  expect(actual!.hasNaN).toBe(expected.hasNaN);
  // -0 and 0 are the same bound.
  expect(actual!.min === undefined ? undefined : actual!.min == expected.min).toBe(expected.min === undefined ? undefined : true); // eslint-disable-line eqeqeq
  expect(actual!.max === undefined ? undefined : actual!.max == expected.max).toBe(expected.max === undefined ? undefined : true); // eslint-disable-line eqeqeq
  expect(typeof actual!.min === typeof expected.min).toBe(true);
}

describe("computeBatchStats", () => {
  it("gives the min, max, null count and NaN flag of every supported type, honouring the bitmap, whole or in chunks", () => {
    const oneCase = fc
      .tuple(fc.subarray(KINDS as KindSpec[], { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 70 }))
      .chain(([kinds, rows]) =>
        fc.tuple(fc.constant(kinds), fc.tuple(...kinds.map((k) => columnCase(k, rows))), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 })),
      );
    let checked = 0;
    fc.assert(
      fc.property(oneCase, ([kinds, columns, cuts]) => {
        const [schemaMsg, batch] = batchMessages(kinds, columns);
        const schema = readSchema(schemaMsg!.header);
        for (const body of [batch!.body, cut(batch!.body, cuts)]) {
          const stats = computeBatchStats(schema, batch!.header, body);
          expect(stats).toHaveLength(kinds.length);
          kinds.forEach((k, i) => same(stats![i], expectedStats(k, columns[i]!)));
          // A store that counts statistics before computing them counts enough.
          expect(batchStatsBytes(stats)).toBeLessThanOrEqual(batchStatsBytesBound(schema));
          checked++;
        }
      }),
      { numRuns: 150 },
    );
    expect(checked).toBe(300);
  });

  it("gives each type its own kind of bound: numbers up to 32 bits and floats, bigints for 64 bits", () => {
    // One row of 7 (or 7n) in every column.
    const cols = KINDS.map((k) => ({ values: [k.big ? 7n : 7], underNulls: [k.big ? 0n : 0], bitmap: false }));
    const [s, b] = batchMessages(KINDS, cols);
    const stats = computeBatchStats(readSchema(s!.header), b!.header, b!.body)!;
    KINDS.forEach((k, i) => expect(stats[i]).toEqual({ nullCount: 0, min: k.big ? 7n : 7, max: k.big ? 7n : 7, hasNaN: false }));
    expect(batchStatsBytes(stats)).toBeGreaterThan(KINDS.length * 64);
    // Every column has statistics here, so the bound is reached exactly.
    expect(batchStatsBytes(stats)).toBe(batchStatsBytesBound(readSchema(s!.header)));
  });

  it("gives null for columns of other types and dictionary-encoded ones, and nothing when no column has statistics", () => {
    const table = new A.Table({
      s: A.vectorFromArray(["a", "b"], new A.Utf8()),
      d: A.vectorFromArray(["x", "y"], new A.Dictionary(new A.Utf8(), new A.Int32())),
      i: A.vectorFromArray([3, -4], new A.Int32()),
      l: A.vectorFromArray([[1], [2, 3]], new A.List(new A.Field("item", new A.Int32()))),
      b: A.vectorFromArray([true, false], new A.Bool()),
    });
    const messages = splitIpcStream(A.tableToIPC(table, "stream"));
    const schema = readSchema(messages[0]!.header);
    const batch = messages[messages.length - 1]!;
    expect(computeBatchStats(schema, batch.header, batch.body)).toEqual([null, null, { nullCount: 0, min: -4, max: 3, hasNaN: false }, null, null]);

    const strings = splitIpcStream(A.tableToIPC(new A.Table({ s: A.vectorFromArray(["a"], new A.Utf8()) }), "stream"));
    expect(computeBatchStats(readSchema(strings[0]!.header), strings[1]!.header, strings[1]!.body)).toBeUndefined();
    // A dictionary batch, or a header that is not a batch, has none.
    expect(computeBatchStats(schema, messages[1]!.header, messages[1]!.body)).toBeUndefined();
    expect(computeBatchStats(schema, messages[0]!.header, messages[0]!.body)).toBeUndefined();
  });

  it("gives no statistics rather than wrong ones for a header that does not fit the body or the schema", () => {
    const [s, b] = batchMessages([KINDS[6]!], [{ values: [1n, 2n, 3n], underNulls: [0n, 0n, 0n], bitmap: false }]);
    const schema = readSchema(s!.header);
    expect(computeBatchStats(schema, b!.header, b!.body.subarray(0, 8))).toBeUndefined();
    const other = batchMessages([KINDS[6]!, KINDS[6]!], [
      { values: [1n], underNulls: [0n], bitmap: false },
      { values: [1n], underNulls: [0n], bitmap: false },
    ]);
    expect(computeBatchStats(readSchema(other[0]!.header), b!.header, b!.body)).toBeUndefined();
  });
});
