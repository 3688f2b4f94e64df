import { parseDuration, parseSize } from "./units";

describe("parseSize", () => {
  it.each([
    ["268435456", 268435456],
    ["256MiB", 256 * 2 ** 20],
    ["1GB", 1e9],
    ["64k", 64_000],
    [1024, 1024],
  ])("reads %p", (input, want) => expect(parseSize(input)).toBe(want));

  it("refuses garbage naming the valid units", () => {
    expect(() => parseSize("12 parsecs", "--max-memory")).toThrow(/--max-memory.*MiB/);
    expect(() => parseSize(-1)).toThrow(TypeError);
  });
});

describe("parseDuration", () => {
  it.each([
    ["30000", 30000],
    ["30s", 30000],
    ["1h", 3_600_000],
    ["5m", 300_000],
    ["250ms", 250],
  ])("reads %p", (input, want) => expect(parseDuration(input)).toBe(want));

  it("refuses an unknown unit", () => expect(() => parseDuration("3 fortnights")).toThrow(/ms, s/));
});
