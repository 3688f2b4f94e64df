import { createContextKey } from "../context";
import { invalidArgument } from "../flight-error";
import { hasBatchStats, type BatchStats, type ColumnStats } from "../ipc/batch-stats";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { readSchema } from "../ipc/schema-info";
import type { StoredFlight } from "../store/flight-store";
import type { MessageReadOptions } from "../store/read-lease";

// Batch pruning (docs/query.md): a conjunction of simple comparisons is checked against each
// record batch's min/max, computed at put time (ipc/batch-stats.ts), and batches that cannot
// hold a matching row are not read. Nothing is decoded; the engine still filters every row of
// the batches that are read.

/** A comparison operator of a {@link RangePredicate}. */
export type RangeOp = "<" | "<=" | ">" | ">=" | "=" | "!=";

const OPS: ReadonlySet<string> = new Set(["<", "<=", ">", ">=", "=", "!="]);

/**
 * `column op value`, where `value` is in the column's own unit: a number or bigint for
 * integers and floats, days for date32, milliseconds for date64, the time unit for time32/64,
 * and for timestamps and durations a bigint (or an integer number) counted in the column's
 * unit since the epoch (UTC, whatever the column's time zone).
 */
export interface RangePredicate {
  /** A top-level column name. */
  readonly column: string;
  readonly op: RangeOp;
  readonly value: number | bigint;
}

/** What {@link selectBatches} decided. */
export interface BatchSelection {
  /**
   * Indices, into the flight's `messages()`, of the messages to read, ascending: every
   * dictionary batch, and the record batches that may hold a matching row.
   */
  readonly indices: readonly number[];
  /** Record batches to read; -1 (unknown) when the store keeps no `batchStats` (then every message is read). */
  readonly batchesRead: number;
  /** Record batches skipped: their statistics show no row can match. */
  readonly batchesSkipped: number;
  /** The predicates that could be checked (their column is unique and has statistics); the others were not used. */
  readonly used: readonly RangePredicate[];
}

/**
 * Whether a column whose batch statistics are `stats` may hold a row for which `column op
 * value` is true, under SQL semantics: a comparison with null is never true, so nulls never
 * match. Conservative: true whenever it cannot be ruled out (a NaN value in the batch, a NaN
 * predicate value).
 *
 * @example
 * mayMatch({ nullCount: 0, min: 10n, max: 20n, hasNaN: false }, ">", 25n); // false
 */
export function mayMatch(stats: ColumnStats, op: RangeOp, value: number | bigint): boolean {
  if (stats.hasNaN) return true;
  if (typeof value === "number" && Number.isNaN(value)) return true;
  const { min, max } = stats;
  // No value counted: every value is null, and no comparison with null is true.
  if (min === undefined || max === undefined) return false;
  // Mixed number/bigint comparisons are exact in JavaScript.
  switch (op) {
    case "<":
      return min < value;
    case "<=":
      return min <= value;
    case ">":
      return max > value;
    case ">=":
      return max >= value;
    case "=":
      return min <= value && value <= max;
    case "!=":
      return !(min == value && max == value); // eslint-disable-line eqeqeq -- number vs bigint on purpose
  }
}

/**
 * Checks predicates up front: a non-empty array of `{ column, op, value }`.
 * @throws FlightError INVALID_ARGUMENT naming what is wrong.
 */
function checkPredicates(predicates: readonly RangePredicate[]): void {
  if (!Array.isArray(predicates)) throw invalidArgument("predicates must be an array of { column, op, value }");
  predicates.forEach((p, i) => {
    if (p === null || typeof p !== "object") throw invalidArgument(`predicate ${i} must be an object { column, op, value }`);
    if (typeof p.column !== "string" || p.column.length === 0) throw invalidArgument(`predicate ${i}: column must be a non-empty string`);
    if (!OPS.has(p.op)) throw invalidArgument(`predicate ${i}: op must be one of <, <=, >, >=, =, !=; got ${JSON.stringify(p.op)}`);
    if (typeof p.value !== "number" && typeof p.value !== "bigint") throw invalidArgument(`predicate ${i}: value must be a number or a bigint`);
  });
}

/**
 * Which of a flight's messages a query with the conjunction `predicates` needs to read: the
 * dictionary batches always, and the record batches whose statistics (see
 * `StoredFlight.batchStats`) do not rule out every row. A predicate on a column that is not
 * a unique top-level column with statistics is not used (the engine still applies it); a
 * batch without statistics is always read. Without statistics in the store, nothing is
 * skipped.
 *
 * @throws FlightError INVALID_ARGUMENT for a malformed predicate.
 *
 * @example
 * const sel = await selectBatches(flight, [{ column: "ts", op: ">=", value: 1733011200000000n }]);
 * for await (const m of prunedMessages(flight, sel)) engine.feed(m);
 * console.log(`${sel.batchesSkipped} batches skipped`);
 */
export async function selectBatches(flight: StoredFlight, predicates: readonly RangePredicate[]): Promise<BatchSelection> {
  checkPredicates(predicates);
  const summaries = await flight.batchStats?.();
  const all = (): BatchSelection => {
    const indices = Array.from({ length: flight.messageCount }, (_, i) => i);
    const batches = summaries === undefined ? undefined : summaries.reduce((n, s) => n + (s.kind === MessageKind.RECORD_BATCH ? 1 : 0), 0);
    return { indices, batchesRead: batches ?? -1, batchesSkipped: 0, used: [] };
  };
  if (summaries === undefined || predicates.length === 0) return all();

  // Column name -> index, for names that occur once at the top level.
  const fields = readSchema(flight.schema.header).fields;
  const names = fields.map((f) => f.name);
  const used: Array<{ p: RangePredicate; column: number }> = [];
  for (const p of predicates) {
    const column = names.indexOf(p.column);
    if (column < 0 || names.lastIndexOf(p.column) !== column || !hasBatchStats(fields[column]!)) continue;
    used.push({ p, column });
  }
  const indices: number[] = [];
  let read = 0;
  let skipped = 0;
  for (let i = 0; i < summaries.length; i++) {
    const s = summaries[i]!;
    if (s.kind !== MessageKind.RECORD_BATCH) {
      indices.push(i);
      continue;
    }
    if (s.stats !== undefined && !batchMayMatch(s.stats, used)) {
      skipped++;
      continue;
    }
    read++;
    indices.push(i);
  }
  return { indices, batchesRead: read, batchesSkipped: skipped, used: used.map((u) => u.p) };
}

function batchMayMatch(stats: BatchStats, used: ReadonlyArray<{ p: RangePredicate; column: number }>): boolean {
  for (const { p, column } of used) {
    const s = stats[column];
    if (s === null || s === undefined) continue;
    // A row of a zero-row batch never matches; its stats have no min (handled by mayMatch).
    if (!mayMatch(s, p.op, p.value)) return false;
  }
  return true;
}

/**
 * The messages a {@link BatchSelection} chose, in order, read from the store (a store that
 * reads from disk skips the others without reading them).
 */
export function prunedMessages(flight: StoredFlight, selection: BatchSelection, options?: MessageReadOptions): AsyncIterable<StoredMessage> {
  return flight.messages({ ...options, only: selection.indices });
}

/**
 * What a DoGet of one flight is asked to prune: the predicates, and where to report what it
 * chose. See {@link kBatchPruning}.
 */
export interface BatchPruningRequest {
  readonly predicates: readonly RangePredicate[];
  /** Hears the selection made on the snapshot the DoGet reads. */
  readonly onSelection?: (selection: BatchSelection) => void;
}

/**
 * Context key under which a middleware (`query()`) asks the server's DoGet of a flight to
 * read only the batches that may match: a map from the store ticket (base64) to the
 * request. The DoGet selects on the very snapshot it serves (so an append or a re-creation in
 * between cannot mismatch statistics and messages), and reads only the chosen messages.
 */
export const kBatchPruning = createContextKey<ReadonlyMap<string, BatchPruningRequest> | undefined>("batchPruning", undefined);
