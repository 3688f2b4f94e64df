import { invalidArgument } from "@blackice/flight-core";

/**
 * How stored flights appear to Flight SQL clients (docs/query.md, "Flight SQL"). A flight
 * stored at path `["telemetry", "host-1"]` is the table `telemetry/host-1`: its path's
 * segments joined by `/`, the name SQL statements use for it (quoted: `"telemetry/host-1"`).
 * Every table is of type `TABLE` and sits in one catalog and one database schema, named by the
 * `flightSql()` options.
 */
export const TABLE_TYPE = "TABLE";

/** The separator of path segments in a table name. */
export const PATH_SEPARATOR = "/";

/**
 * The table name of a flight path, or undefined for a path no table name can stand for: an
 * empty path, an empty segment, or a segment holding `/` (the name would not split back into
 * the same path). Such flights, and flights stored under CMD descriptors, are not tables.
 */
export function tableNameOf(path: readonly string[]): string | undefined {
  if (path.length === 0) return undefined;
  for (const segment of path) if (segment.length === 0 || segment.includes(PATH_SEPARATOR)) return undefined;
  return path.join(PATH_SEPARATOR);
}

/** The flight path a table name stands for; INVALID_ARGUMENT for a name with an empty segment. */
export function pathOfTable(table: string): string[] {
  const path = table.split(PATH_SEPARATOR);
  if (table.length === 0 || path.some((s) => s.length === 0)) {
    throw invalidArgument(`table name ${JSON.stringify(table)} is not a flight path: segments joined by "/", none empty (e.g. "telemetry/host-1")`);
  }
  return path;
}

/** The escape character of LIKE patterns in metadata filters (SqlInfo SQL_SEARCH_STRING_ESCAPE). */
export const SEARCH_STRING_ESCAPE = "\\";

/**
 * A matcher for a Flight SQL filter pattern (the `*_filter_pattern` fields): `%` matches any
 * run of characters, `_` any one character (a Unicode code point), `\` escapes the next
 * character; everything else matches itself, case-sensitively, as SQL's LIKE does.
 *
 * Hand-written rather than a regular expression: a pattern such as `%a%a%a%a%b` compiles to a
 * regex that backtracks exponentially on a long name, and the pattern comes from the client.
 * This is the usual wildcard match with one backtracking point (the last `%`): at most
 * (name length x pattern length) steps.
 */
export function likeMatcher(pattern: string): (name: string) => boolean {
  type Token = { kind: "any" } | { kind: "one" } | { kind: "char"; char: string };
  const tokens: Token[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === SEARCH_STRING_ESCAPE && i + 1 < chars.length) tokens.push({ kind: "char", char: chars[++i]! });
    else if (c === "%") {
      if (tokens[tokens.length - 1]?.kind !== "any") tokens.push({ kind: "any" });
    } else if (c === "_") tokens.push({ kind: "one" });
    else tokens.push({ kind: "char", char: c });
  }
  return (name) => {
    const text = Array.from(name);
    let p = 0;
    let t = 0;
    let star = -1;
    let starText = 0;
    while (t < text.length) {
      const token = tokens[p];
      if (token !== undefined && (token.kind === "one" || (token.kind === "char" && token.char === text[t]))) {
        p++;
        t++;
      } else if (token?.kind === "any") {
        star = p++;
        starText = t;
      } else if (star >= 0) {
        p = star + 1;
        t = ++starText;
      } else {
        return false;
      }
    }
    while (tokens[p]?.kind === "any") p++;
    return p === tokens.length;
  };
}
