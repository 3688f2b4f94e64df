import { Parser } from "node-sql-parser/build/postgresql";
import { ArrowTypeId, type FieldInfo } from "../ipc/arrow-schema";
import { hasBatchStats } from "../ipc/batch-stats";
import type { RangeOp, RangePredicate } from "./batch-pruning";

// The range predicates batch pruning can use, taken from a SQL statement's WHERE clause with
// node-sql-parser (the parser sql-tables.ts uses, so both read the statement alike) rather
// than by hand. Only what is certain is taken: the top-level conjuncts `column op literal`
// (either side), `column BETWEEN a AND b`, on a numeric or timestamp column of the one table
// the statement reads. Anything else (OR, NOT, functions, casts, joins, literals that do not
// convert exactly) is left to the engine, which filters every row anyway.

let parser: Parser | undefined;

const FLIP: Record<string, RangeOp> = { "<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!=", "<>": "!=" };
const OPS: Record<string, RangeOp> = { "<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "!=": "!=", "<>": "!=" };

type Node = Record<string, unknown> & { type?: unknown };

function columnName(node: Node, names: ReadonlySet<string>): string | undefined {
  if (node.type !== "column_ref") return undefined;
  if (node.table !== null && node.table !== undefined && !names.has(node.table as string)) return undefined;
  const c = node.column as unknown;
  if (typeof c === "string") return c;
  const v = (c as { expr?: { value?: unknown } } | null)?.expr?.value;
  return typeof v === "string" ? v : undefined;
}

/** A numeric literal: a number, or a bigint when it is an integer outside the safe range. */
function numberOf(node: Node): number | bigint | undefined {
  if (node.type === "unary_expr" && node.operator === "-") {
    const v = numberOf(node.expr as Node);
    return v === undefined ? undefined : -v;
  }
  if (node.type !== "number" && node.type !== "bigint") return undefined;
  const v = node.value;
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v !== "string") return undefined;
  if (/^-?[0-9]+$/.test(v)) {
    const b = BigInt(v);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  }
  // A decimal or exponent: as the engine reads a float literal.
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

const UNIT_PER_SECOND: Record<string, bigint> = { second: 1n, millisecond: 1000n, microsecond: 1_000_000n, nanosecond: 1_000_000_000n };
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const UTC_ZONES = new Set(["UTC", "Etc/UTC", "+00:00", "Z", "GMT", "Etc/GMT"]);

/**
 * An ISO 8601 date-time literal as a count of `unit` since the epoch, or undefined when it
 * cannot be converted exactly and unambiguously for this column: a column with a time zone
 * needs an explicit offset in the literal (unless the zone is UTC), a naive column a literal
 * without one (it is read as wall-clock time); a fraction finer than the unit is not exact.
 * Hand-written: Date.parse stops at milliseconds, and no dependency of ours parses
 * nanosecond timestamps.
 */
export function timestampLiteral(text: string, unit: string, timezone: string | undefined): bigint | undefined {
  const m = ISO.exec(text.trim());
  const perSecond = UNIT_PER_SECOND[unit];
  if (m === null || perSecond === undefined) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", offset] = m;
  if (offset === undefined ? timezone !== undefined && !UTC_ZONES.has(timezone) : timezone === undefined) return undefined;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  // Date.UTC rolls over (Feb 30 -> Mar 2): refuse what does not read back.
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  let offsetSeconds = 0;
  if (offset !== undefined && offset.toUpperCase() !== "Z") {
    const sign = offset[0] === "-" ? -1 : 1;
    const digits = offset.slice(1).replace(":", "");
    offsetSeconds = sign * (Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2) || "0") * 60);
  }
  const nanos = BigInt(frac.padEnd(9, "0"));
  const nanosPerUnit = 1_000_000_000n / perSecond;
  if (nanos % nanosPerUnit !== 0n) return undefined;
  return (BigInt(ms / 1000) - BigInt(offsetSeconds)) * perSecond + nanos / nanosPerUnit;
}

/**
 * STRPTIME formats whose text is read exactly as an ISO 8601 literal (how polars' SQL writes a
 * time zone aware literal: `STRPTIME('2026-12-01 00:00:00+0000', '%Y-%m-%d %H:%M:%S%z')`).
 * Other formats are not used for pruning.
 */
const ISO_FORMATS = new Set([
  "%Y-%m-%d %H:%M:%S%z",
  "%Y-%m-%dT%H:%M:%S%z",
  "%Y-%m-%d %H:%M:%S%.f%z",
  "%Y-%m-%dT%H:%M:%S%.f%z",
  "%Y-%m-%d %H:%M:%S",
  "%Y-%m-%dT%H:%M:%S",
  "%Y-%m-%d %H:%M:%S%.f",
  "%Y-%m-%dT%H:%M:%S%.f",
]);

/** The text of a timestamp literal: a string, `TIMESTAMP '...'`, or STRPTIME with an ISO format. */
function timestampText(node: Node): string | undefined {
  if ((node.type === "single_quote_string" || node.type === "string" || node.type === "timestamp") && typeof node.value === "string") return node.value;
  if (node.type !== "function") return undefined;
  const name = (node.name as { name?: Array<{ value?: unknown }> } | undefined)?.name;
  if (!Array.isArray(name) || name.length !== 1 || String(name[0]!.value).toUpperCase() !== "STRPTIME") return undefined;
  const args = (node.args as { value?: Node[] } | undefined)?.value;
  if (!Array.isArray(args) || args.length !== 2) return undefined;
  const [text, format] = args as [Node, Node];
  if (text.type !== "single_quote_string" || format.type !== "single_quote_string" || typeof text.value !== "string") return undefined;
  if (!ISO_FORMATS.has(String(format.value))) return undefined;
  // Without %z the text must not carry an offset, with it it must.
  const hasOffset = /(Z|z|[+-]\d{2}:?\d{2})$/.test(text.value.trim()) && !/^\d{4}-\d{2}-\d{2}$/.test(text.value.trim());
  if (hasOffset !== String(format.value).endsWith("%z")) return undefined;
  return text.value;
}

/** The literal in a column's unit, or undefined when it is not one pruning can use for this column. */
function literalFor(node: Node, field: FieldInfo): number | bigint | undefined {
  const t = field.type;
  if (t.typeId === ArrowTypeId.Timestamp) {
    const text = timestampText(node);
    if (text !== undefined) return timestampLiteral(text, t.unit as string, t.timezone);
    // A number against a timestamp: the engine's meaning is its own; not used.
    return undefined;
  }
  if (t.typeId === ArrowTypeId.FloatingPoint) return numberOf(node);
  if (t.typeId === ArrowTypeId.Int) {
    // Only integers: an engine may cast a fractional literal to the column's type (0.9 -> 0),
    // and a negative one to an unsigned type; then the rows it keeps are not the literal's.
    const v = numberOf(node);
    if (v === undefined || (typeof v === "number" && !Number.isInteger(v))) return undefined;
    if (t.signed !== true && v < 0) return undefined;
    return v;
  }
  return undefined;
}

/**
 * The range predicates of `sql` on table `table` that batch pruning can use, given the
 * table's top-level fields. Empty when the statement reads more than one table, is not a
 * plain SELECT, or has nothing usable. Never throws: a statement the parser refuses gives
 * none (the engine reports it).
 *
 * @example
 * rangePredicatesOf(`SELECT * FROM "telemetry/h1" WHERE ts >= '2026-12-01T00:00:00Z' AND cpu > 0.9`, "telemetry/h1", fields);
 * // [{ column: "ts", op: ">=", value: 1796083200000000n }, { column: "cpu", op: ">", value: 0.9 }]
 */
export function rangePredicatesOf(sql: string, table: string, fields: readonly FieldInfo[]): RangePredicate[] {
  let ast: Node;
  try {
    parser ??= new Parser();
    const parsed = parser.astify(sql, { database: "PostgresQL" }) as unknown;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    if (list.length !== 1) return [];
    ast = list[0] as Node;
  } catch {
    return [];
  }
  if (ast.type !== "select" || ast.with != null || ast._next != null || ast.where == null) return [];
  const from = ast.from as Array<Record<string, unknown>> | null;
  if (!Array.isArray(from) || from.length !== 1) return [];
  const only = from[0]!;
  if (only.table !== table || only.db != null || only.join != null || only.expr != null) return [];
  const names = new Set<string>([table]);
  if (typeof only.as === "string") names.add(only.as);

  const byName = new Map<string, FieldInfo | null>();
  for (const f of fields) byName.set(f.name, byName.has(f.name) ? null : f);
  const out: RangePredicate[] = [];
  const take = (colNode: Node, op: RangeOp, litNode: Node): void => {
    const column = columnName(colNode, names);
    if (column === undefined) return;
    const field = byName.get(column);
    if (field === undefined || field === null || !hasBatchStats(field)) return;
    const value = literalFor(litNode, field);
    if (value !== undefined) out.push({ column, op, value });
  };
  const walk = (node: Node): void => {
    if (node.type !== "binary_expr") return;
    const op = String(node.operator).toUpperCase();
    const left = node.left as Node;
    const right = node.right as Node;
    if (op === "AND") {
      walk(left);
      walk(right);
      return;
    }
    if (op === "BETWEEN") {
      const bounds = (right as { value?: unknown }).value;
      if (right.type !== "expr_list" || !Array.isArray(bounds) || bounds.length !== 2) return;
      take(left, ">=", bounds[0] as Node);
      take(left, "<=", bounds[1] as Node);
      return;
    }
    const direct = OPS[op];
    if (direct === undefined) return;
    if (left.type === "column_ref") take(left, direct, right);
    else if (right.type === "column_ref") take(right, FLIP[op]!, left);
  };
  walk(ast.where as Node);
  return out;
}
