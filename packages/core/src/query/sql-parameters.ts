import { Parser } from "node-sql-parser/build/postgresql";
import { invalidArgument } from "../flight-error";
import { MAX_SQL_LENGTH } from "./sql-tables";

// Parameter binding for SQL statements (docs/query.md, "Flight SQL"). The engine (polars SQL)
// takes no bound parameters, so a value is written into the statement as a literal. That is
// done on the parsed statement, never on its text: node-sql-parser's PostgreSQL grammar parses
// the placeholders `$1`, `$2`, ... as nodes of their own (`{type: "var", prefix: "$"}`; it does
// not parse `?`); each is replaced by a typed literal node and the tree is written out again by
// the parser. Then the written statement is parsed once more and compared, node by node, with
// the original: it must have exactly the original's structure, with a literal of the bound type
// where each placeholder was (the original as the parser writes and reads it back: writing
// spells out defaults such as ORDER BY's ASC). A value that would change the statement (a
// quote, a comment opener such as `- -3` written as `--3`) fails that check instead of running.

/** A value bound to a placeholder, as written into the statement. */
export type SqlParameterValue =
  | { readonly type: "null" }
  | { readonly type: "bool"; readonly value: boolean }
  /** An integer, as decimal digits with an optional leading "-" (int64 and uint64 fit). */
  | { readonly type: "int"; readonly value: string }
  /** A finite float. */
  | { readonly type: "float"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  /**
   * A timestamp, `YYYY-MM-DD HH:MM:SS[.fraction]`. Without a zone it is written as the typed
   * literal `TIMESTAMP '...'`. With `zone: "UTC"` (an instant; the value is its UTC wall time) it
   * is written as the string `'...'`, which polars casts to the compared column's type: polars
   * refuses to compare a time-zone-aware column with a `TIMESTAMP` literal and parses no
   * literal with a zone. A column in another zone reads that wall time in its own zone.
   */
  | { readonly type: "timestamp"; readonly value: string; readonly zone?: "UTC" };

/** Most placeholders one statement may have. */
export const MAX_SQL_PARAMETERS = 256;

let parser: Parser | undefined;
const OPTIONS = { database: "PostgresQL" };

type Node = Record<string, unknown>;

function astOf(sql: string): unknown {
  parser ??= new Parser();
  try {
    return parser.astify(sql, OPTIONS);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw invalidArgument(`query: the SQL statement does not parse: ${msg.length > 512 ? `${msg.slice(0, 509)}...` : msg}`);
  }
}

function isPlaceholder(v: unknown): v is Node & { name: number } {
  const n = v as Node;
  return v !== null && typeof v === "object" && !Array.isArray(v) && n.type === "var" && n.prefix === "$" && typeof n.name === "number";
}

function placeholderIndexes(ast: unknown, out: Set<number>): void {
  if (isPlaceholder(ast)) {
    out.add(ast.name);
    return;
  }
  if (ast === null || typeof ast !== "object") return;
  for (const v of Object.values(ast as Node)) placeholderIndexes(v, out);
}

/** The placeholders `$1`..`$n` a parsed statement holds; INVALID_ARGUMENT when one is skipped. */
function countOf(ast: unknown): number {
  const seen = new Set<number>();
  placeholderIndexes(ast, seen);
  const n = seen.size === 0 ? 0 : Math.max(...seen);
  if (n > MAX_SQL_PARAMETERS) throw invalidArgument(`query: the statement has ${n} parameters; at most ${MAX_SQL_PARAMETERS}`);
  for (let i = 1; i <= n; i++) if (!seen.has(i)) throw invalidArgument(`query: the statement uses $${n} but not $${i}; number parameters $1, $2, ... without gaps`);
  return n;
}

/**
 * How many parameters a SQL statement takes: the highest placeholder `$n` in it (0 for none).
 * Placeholders are PostgreSQL's `$1`, `$2`, ...; `?` does not parse.
 *
 * @throws FlightError INVALID_ARGUMENT when the statement does not parse, skips a number, or has
 * more than {@link MAX_SQL_PARAMETERS}.
 *
 * @example
 * sqlParameterCount('SELECT * FROM "t" WHERE cpu > $1 AND host = $2'); // 2
 */
export function sqlParameterCount(sql: string): number {
  if (typeof sql !== "string" || sql.length > MAX_SQL_LENGTH) throw invalidArgument(`query: the SQL statement must be a string of at most ${MAX_SQL_LENGTH} characters`);
  return countOf(astOf(sql));
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$/;
const INTEGER = /^-?(0|[1-9]\d{0,19})$/;

/** The literal node of a value, checked (a value that is not of its type is INVALID_ARGUMENT). */
function literalOf(v: SqlParameterValue, index: number): Node {
  const bad = (what: string) => invalidArgument(`query: parameter $${index}: ${what}`);
  switch (v?.type) {
    case "null":
      return { type: "null", value: null };
    case "bool":
      if (typeof v.value !== "boolean") throw bad("a bool value must be true or false");
      return { type: "bool", value: v.value };
    case "int":
      if (typeof v.value !== "string" || !INTEGER.test(v.value)) throw bad("an int value must be decimal digits");
      return { type: "bigint", value: v.value };
    case "float": {
      if (typeof v.value !== "number" || !Number.isFinite(v.value)) throw bad("a float value must be finite (NaN and infinities have no SQL literal)");
      const text = String(v.value);
      // node-sql-parser reads "1e+21" back as an expression; a decimal literal is what polars takes.
      if (!/^-?\d+(\.\d+)?$/.test(text)) throw bad(`the float ${text} has no plain decimal form (between 1e-7 and 1e21 in magnitude, or 0)`);
      return { type: "bigint", value: text };
    }
    case "string":
      if (typeof v.value !== "string") throw bad("a string value must be a string");
      // The grammar keeps a quote doubled in the node, and writes the node's value as it is.
      return { type: "single_quote_string", value: v.value.replace(/'/g, "''") };
    case "timestamp":
      if (typeof v.value !== "string" || !TIMESTAMP.test(v.value)) throw bad("a timestamp must be written YYYY-MM-DD HH:MM:SS[.fraction]");
      if (v.zone !== undefined && v.zone !== "UTC") throw bad('a timestamp\'s zone must be "UTC" or absent');
      return v.zone === "UTC" ? { type: "single_quote_string", value: v.value } : { type: "timestamp", value: v.value };
    default:
      throw bad(`unsupported type ${JSON.stringify((v as { type?: unknown })?.type)}; supported: null, bool, int, float, string, timestamp`);
  }
}

function substitute(ast: unknown, literals: readonly Node[]): unknown {
  if (isPlaceholder(ast)) return literals[ast.name - 1];
  if (Array.isArray(ast)) return ast.map((a) => substitute(a, literals));
  if (ast === null || typeof ast !== "object") return ast;
  const out: Node = {};
  for (const [k, v] of Object.entries(ast as Node)) out[k] = substitute(v, literals);
  return out;
}

/** Whether a re-parsed literal is the one bound (the grammar reads small integers back as "number"). */
function sameLiteral(expected: Node, got: unknown): boolean {
  if (got === null || typeof got !== "object" || Array.isArray(got)) return false;
  const g = got as Node;
  if (expected.type === "bigint") return (g.type === "bigint" || g.type === "number") && String(g.value) === expected.value;
  return g.type === expected.type && g.value === expected.value;
}

/** Whether `got` (the bound statement, parsed again) has exactly the structure of `original`. */
function sameShape(original: unknown, got: unknown, literals: readonly Node[]): boolean {
  if (isPlaceholder(original)) return sameLiteral(literals[original.name - 1], got);
  if (Array.isArray(original)) return Array.isArray(got) && got.length === original.length && original.every((o, i) => sameShape(o, got[i], literals));
  if (original === null || typeof original !== "object") return original === got;
  if (got === null || typeof got !== "object" || Array.isArray(got)) return false;
  const o = original as Node;
  const g = got as Node;
  const keys = Object.keys(o);
  if (keys.length !== Object.keys(g).length) return false;
  return keys.every((k) => Object.hasOwn(g, k) && sameShape(o[k], g[k], literals));
}

/**
 * The statement `sql` with its placeholders `$1`..`$n` replaced by the literals of `values`
 * (`values[0]` for `$1`), written out by the parser from the parsed statement and checked by
 * parsing it again: the result has the original's structure exactly, with a literal of the
 * bound type where each placeholder was. A statement with no placeholder and no values is
 * returned as it is.
 *
 * @throws FlightError INVALID_ARGUMENT when the statement does not parse, the number of values
 * is not the number of placeholders, a value is not of its type, or the bound statement does
 * not have the original's structure.
 *
 * @example
 * bindSqlParameters('SELECT * FROM "t" WHERE host = $1', [{ type: "string", value: "x' OR '1'='1" }]);
 * // SELECT * FROM "t" WHERE host = 'x'' OR ''1''=''1'
 */
export function bindSqlParameters(sql: string, values: readonly SqlParameterValue[]): string {
  if (typeof sql !== "string" || sql.length > MAX_SQL_LENGTH) throw invalidArgument(`query: the SQL statement must be a string of at most ${MAX_SQL_LENGTH} characters`);
  if (!Array.isArray(values)) throw invalidArgument("query: parameter values must be an array");
  const ast = astOf(sql);
  const n = countOf(ast);
  if (values.length !== n) throw invalidArgument(`query: the statement takes ${n} parameter${n === 1 ? "" : "s"}; ${values.length} given`);
  if (n === 0) return sql;
  const literals = values.map((v, i) => literalOf(v, i + 1));
  parser ??= new Parser();
  const bound = parser.sqlify(substitute(ast, literals) as Parameters<Parser["sqlify"]>[0], OPTIONS);
  if (bound.length > MAX_SQL_LENGTH) throw invalidArgument(`query: the statement with its parameters bound is longer than ${MAX_SQL_LENGTH} characters`);
  // The reference is the statement as the parser writes it and reads it back, placeholders
  // kept: writing adds what the grammar leaves implicit (ORDER BY x is written ORDER BY x ASC),
  // which is the same statement but not the same tree as the one first read.
  const reread = (text: string): unknown => {
    try {
      return parser!.astify(text, OPTIONS);
    } catch {
      return undefined;
    }
  };
  const reference = reread(parser.sqlify(ast as Parameters<Parser["sqlify"]>[0], OPTIONS));
  if (reference === undefined || !sameShape(reference, reread(bound), literals)) throw invalidArgument("query: a parameter value changed the statement's structure when bound; it was refused");
  return bound;
}
