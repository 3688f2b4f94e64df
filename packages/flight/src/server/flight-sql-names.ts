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
 * run of characters, `_` any one character, `\` escapes the next character; everything else
 * matches itself, case-sensitively, as SQL's LIKE does. Translated to an anchored regular
 * expression with every other character escaped, so a pattern cannot inject regex syntax.
 */
export function likeMatcher(pattern: string): (name: string) => boolean {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === SEARCH_STRING_ESCAPE && i + 1 < pattern.length) source += escapeRegex(pattern[++i]!);
    else if (c === "%") source += "[\\s\\S]*";
    else if (c === "_") source += "[\\s\\S]";
    else source += escapeRegex(c);
  }
  const re = new RegExp(`^${source}$`, "u");
  return (name) => re.test(name);
}

function escapeRegex(c: string): string {
  // The characters a `u` regular expression lets (and needs) be escaped.
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}
