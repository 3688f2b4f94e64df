import { StatusCode } from "../status-code";
import { sqlTableName, sqlTablePath, sqlTables } from "./sql-tables";

describe("sqlTables", () => {
  it("lists the flights a SELECT reads, quoted paths joined by /, without CTE names or repeats", () => {
    expect(sqlTables('SELECT host, avg(cpu) FROM "telemetry/host-1" WHERE cpu > 0.9 GROUP BY host')).toEqual([{ name: "telemetry/host-1", path: ["telemetry", "host-1"] }]);
    expect(sqlTables('WITH t AS (SELECT * FROM "x/y") SELECT * FROM t JOIN "z" ON t.a = z.a JOIN "x/y" u ON u.a = t.a').map((r) => r.name)).toEqual(["x/y", "z"]);
    expect(sqlTables('SELECT * FROM "a" WHERE x IN (SELECT y FROM "b")').map((r) => r.name).sort()).toEqual(["a", "b"]);
  });

  it.each([
    ["DELETE FROM \"a\"", "exactly one SELECT"],
    ['SELECT * FROM "a"; SELECT * FROM "b"', "exactly one SELECT"],
    ["SELECT * FROM s.t", "qualifier"],
    ["SELEC x", "does not parse"],
    ["SELECT 1", "reads no stored flight"],
    ["", "non-empty"],
    ['SELECT * FROM "a//b"', "empty segment"],
  ])("refuses %j with INVALID_ARGUMENT (%s)", (sql, text) => {
    expect(() => sqlTables(sql)).toThrow(expect.objectContaining({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining(text) }));
  });

  it("refuses a statement over the length limit", () => {
    expect(() => sqlTables(`SELECT * FROM "a" WHERE x = '${"y".repeat(20_000)}'`)).toThrow(expect.objectContaining({ code: StatusCode.INVALID_ARGUMENT }));
  });

  it("names a path by joining its segments, and has no name for a path that would read back differently", () => {
    expect(sqlTableName(["telemetry", "host-1"])).toBe("telemetry/host-1");
    expect(sqlTablePath("telemetry/host-1")).toEqual(["telemetry", "host-1"]);
    expect(sqlTableName(["a/b"])).toBeUndefined();
    expect(sqlTableName(["a", ""])).toBeUndefined();
  });
});
