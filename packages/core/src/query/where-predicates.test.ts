import * as A from "apache-arrow";
import { splitIpcStream } from "../ipc/ipc-stream";
import { readSchema } from "../ipc/schema-info";
import { rangePredicatesOf, timestampLiteral } from "./where-predicates";

const table = new A.Table({
  ts: A.makeVector(A.makeData({ type: new A.TimestampMicrosecond("UTC"), length: 1, nullCount: 0, data: BigInt64Array.of(0n) } as never)),
  naive: A.makeVector(A.makeData({ type: new A.TimestampNanosecond(), length: 1, nullCount: 0, data: BigInt64Array.of(0n) } as never)),
  paris: A.makeVector(A.makeData({ type: new A.TimestampSecond("Europe/Paris"), length: 1, nullCount: 0, data: BigInt64Array.of(0n) } as never)),
  cpu: A.vectorFromArray([0.5], new A.Float64()),
  n: A.vectorFromArray([1], new A.Int32()),
  u: A.vectorFromArray([1], new A.Uint16()),
  host: A.vectorFromArray(["a"], new A.Utf8()),
});
const fields = readSchema(splitIpcStream(A.tableToIPC(table, "stream"))[0]!.header).fields;
const of = (where: string, from = `"t/1"`) => rangePredicatesOf(`SELECT * FROM ${from} WHERE ${where}`, "t/1", fields);
const DEC1 = 1796083200n; // 2026-12-01T00:00:00Z in seconds

describe("timestampLiteral", () => {
  it("converts ISO text to the column's unit exactly, or not at all", () => {
    expect(timestampLiteral("2026-12-01T00:00:00Z", "microsecond", "UTC")).toBe(DEC1 * 1_000_000n);
    expect(timestampLiteral("2026-12-01 01:00:00+01:00", "second", "Europe/Paris")).toBe(DEC1);
    expect(timestampLiteral("2026-12-01 00:00:00.123456789+0000", "nanosecond", "UTC")).toBe(DEC1 * 1_000_000_000n + 123_456_789n);
    expect(timestampLiteral("1969-12-31T23:59:59Z", "millisecond", "UTC")).toBe(-1000n);
    // A naive column takes wall-clock text; a zoned column needs an offset unless it is UTC.
    expect(timestampLiteral("2026-12-01 00:00:00", "nanosecond", undefined)).toBe(DEC1 * 1_000_000_000n);
    expect(timestampLiteral("2026-12-01 00:00:00", "second", "UTC")).toBe(DEC1);
    expect(timestampLiteral("2026-12-01 00:00:00", "second", "Europe/Paris")).toBeUndefined();
    expect(timestampLiteral("2026-12-01 00:00:00Z", "second", undefined)).toBeUndefined();
    // Finer than the unit, impossible dates, other text.
    expect(timestampLiteral("2026-12-01T00:00:00.5Z", "second", "UTC")).toBeUndefined();
    expect(timestampLiteral("2026-02-30T00:00:00Z", "second", "UTC")).toBeUndefined();
    expect(timestampLiteral("yesterday", "second", "UTC")).toBeUndefined();
  });
});

describe("rangePredicatesOf", () => {
  it("takes the conjuncts column-op-literal and BETWEEN, either side, in the column's unit", () => {
    expect(of(`ts >= STRPTIME('2026-12-01 00:00:00+0000', '%Y-%m-%d %H:%M:%S%z') AND cpu > 0.9 AND 3 < n AND "t/1".n <= -2 AND naive BETWEEN '2026-12-01 00:00:00' AND TIMESTAMP '2026-12-01 00:00:01'`)).toEqual([
      { column: "ts", op: ">=", value: DEC1 * 1_000_000n },
      { column: "cpu", op: ">", value: 0.9 },
      { column: "n", op: ">", value: 3 },
      { column: "n", op: "<=", value: -2 },
      { column: "naive", op: ">=", value: DEC1 * 1_000_000_000n },
      { column: "naive", op: "<=", value: (DEC1 + 1n) * 1_000_000_000n },
    ]);
    expect(of(`n <> 4 AND (cpu = 1e3)`)).toEqual([
      { column: "n", op: "!=", value: 4 },
      { column: "cpu", op: "=", value: 1000 },
    ]);
    expect(of(`a.cpu < 1`, `"t/1" AS a`)).toEqual([{ column: "cpu", op: "<", value: 1 }]);
  });

  it("leaves to the engine what it cannot be sure of", () => {
    expect(of(`cpu > 1 OR n < 2`)).toEqual([]);
    expect(of(`NOT cpu > 1`)).toEqual([]);
    expect(of(`host = 'a' AND abs(cpu) > 1 AND cpu > n AND nope > 1`)).toEqual([]);
    expect(of(`n > 0.5 AND u > -1 AND ts > 5`)).toEqual([]); // fraction on an integer, negative on unsigned, number on a timestamp
    expect(of(`paris > '2026-12-01 00:00:00'`)).toEqual([]); // no offset on a zoned column
    expect(of(`ts > STRPTIME('01/12/2026', '%d/%m/%Y')`)).toEqual([]);
    expect(rangePredicatesOf(`SELECT * FROM "t/1" a JOIN "t/2" b ON a.n = b.n WHERE a.n > 1`, "t/1", fields)).toEqual([]);
    expect(rangePredicatesOf(`SELECT * FROM "t/1" WHERE n > 1 UNION SELECT * FROM "t/1"`, "t/1", fields)).toEqual([]);
    expect(rangePredicatesOf(`SELEC nothing`, "t/1", fields)).toEqual([]);
  });
});
