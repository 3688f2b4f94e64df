const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

function parseWithUnits(what: string, input: string | number, units: Record<string, number>, example: string): number {
  if (typeof input === "number") {
    if (Number.isFinite(input) && input >= 0) return input;
    throw new TypeError(`${what}: expected a non-negative number, got ${input}`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const factor = m ? (m[2] === "" ? 1 : units[m[2].toLowerCase()]) : undefined;
  if (!m || factor === undefined) {
    throw new TypeError(`${what}: cannot read ${JSON.stringify(input)}; use a number or a number with one of the units ${Object.keys(units).join(", ")} (e.g. ${example})`);
  }
  return Math.round(Number(m[1]) * factor);
}

/**
 * Reads a byte size: a plain number of bytes, or a number with a unit (`256MiB`, `1.5GB`, `64k`).
 *
 * @example
 * parseSize("256MiB"); // 268435456
 */
export function parseSize(input: string | number, what = "size"): number {
  return parseWithUnits(what, input, SIZE_UNITS, "268435456 or 256MiB");
}

/**
 * Reads a duration in milliseconds: a plain number of ms, or a number with a unit
 * (`ms`, `s`, `m`/`min`, `h`, `d`).
 *
 * @example
 * parseDuration("30s"); // 30000
 */
export function parseDuration(input: string | number, what = "duration"): number {
  return parseWithUnits(what, input, DURATION_UNITS, "30000, 30s or 1h");
}
