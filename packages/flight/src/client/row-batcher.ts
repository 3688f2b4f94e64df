// Gathers rows for the batch writer into Arrow record batches of one schema. Plain objects
// are checked against the schema and appended to one apache-arrow builder per column (so a
// dictionary column keeps one growing dictionary for the writer's life); Arrow batches and
// tables are checked field by field and sliced to size.

import type * as Arrow from "apache-arrow";
import { FlightError, StatusCode } from "@blackice/flight-core";
import { ArrowRebuilder, isRecordBatchLike, isTableLike, type ArrowModule, type RecordBatchLike, type SchemaLike, type TableLike } from "./arrow-interop";

/** A row given to the batch writer: field name to value (`null`/`undefined` for null). */
export type Row = Record<string, unknown>;

// Arrow's `Type` ids (the IPC format's, stable across versions).
const T = { Null: 1, Int: 2, Float: 3, Binary: 4, Utf8: 5, Bool: 6, Decimal: 7, Date: 8, Time: 9, Timestamp: 10, FixedSizeBinary: 15, LargeBinary: 19, LargeUtf8: 20, Dictionary: -1 } as const;

/** Chunks a dictionary may have before they are merged into one (see RowBatcher.compactDictionary). */
const MAX_DICTIONARY_CHUNKS = 16;

const mismatch = (message: string): FlightError => new FlightError(StatusCode.INVALID_ARGUMENT, `schema mismatch: ${message}`);

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Date) return "a Date";
  if (v instanceof Uint8Array) return "a Uint8Array";
  if (Array.isArray(v)) return "an array";
  return typeof v === "string" ? `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}` : `${typeof v} ${String(v)}`;
}

/**
 * Why `value` cannot go into a column of `type`, or undefined if it can. Only the common
 * scalar types are checked here; values of nested types are left to apache-arrow's builder,
 * whose own error is reported as a mismatch too.
 */
function unfit(type: Arrow.DataType, value: unknown): string | undefined {
  const t = type as unknown as { typeId: number; bitWidth?: number; isSigned?: boolean; dictionary?: Arrow.DataType };
  switch (t.typeId) {
    case T.Int: {
      const wide = (t.bitWidth ?? 32) === 64;
      if (typeof value === "bigint") return wide ? undefined : `${String(type)} takes numbers, not bigints`;
      if (typeof value !== "number" || !Number.isInteger(value)) return `${String(type)} takes integers`;
      if (wide && !Number.isSafeInteger(value)) return `${value} is not a safe integer; give ${String(type)} values above 2^53 as bigints`;
      const bits = t.bitWidth ?? 32;
      if (bits < 64) {
        const min = t.isSigned ? -(2 ** (bits - 1)) : 0;
        const max = t.isSigned ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
        if (value < min || value > max) return `${value} is out of range for ${String(type)} (${min} to ${max})`;
      }
      return undefined;
    }
    case T.Float:
    case T.Decimal:
      return typeof value === "number" ? undefined : `${String(type)} takes numbers`;
    case T.Utf8:
    case T.LargeUtf8:
      return typeof value === "string" ? undefined : `${String(type)} takes strings`;
    case T.Bool:
      return typeof value === "boolean" ? undefined : `${String(type)} takes booleans`;
    case T.Binary:
    case T.LargeBinary:
    case T.FixedSizeBinary:
      return value instanceof Uint8Array ? undefined : `${String(type)} takes Uint8Arrays`;
    case T.Date:
    case T.Timestamp:
    case T.Time:
      return value instanceof Date || typeof value === "number" || typeof value === "bigint" ? undefined : `${String(type)} takes Dates or epoch milliseconds`;
    case T.Dictionary:
      return unfit(t.dictionary!, value);
    case T.Null:
      return `${String(type)} takes only null`;
    default:
      return undefined;
  }
}

/** A field's type and nullability as text, for comparing schemas of any apache-arrow copy. */
const fieldText = (f: Arrow.Field): string => `${f.name}: ${String(f.type)}${f.nullable ? "" : " not null"}`;

/** Infers a schema from the first row: number -> Float64, bigint -> Int64, string -> Utf8, boolean -> Bool, Date -> Timestamp(ms), Uint8Array -> Binary; all nullable. */
export function inferSchema(arrow: ArrowModule, row: Row): Arrow.Schema {
  if (row === null || typeof row !== "object" || Array.isArray(row)) throw new TypeError("BatchWriter: a row must be a plain object of field values");
  const fields = Object.entries(row).map(([name, v]) => {
    let type: Arrow.DataType;
    if (typeof v === "number") type = new arrow.Float64();
    else if (typeof v === "bigint") type = new arrow.Int64();
    else if (typeof v === "string") type = new arrow.Utf8();
    else if (typeof v === "boolean") type = new arrow.Bool();
    else if (v instanceof Date) type = new arrow.TimestampMillisecond();
    else if (v instanceof Uint8Array) type = new arrow.Binary();
    else throw new TypeError(`BatchWriter: cannot infer the type of field "${name}" from ${describeValue(v)}; pass options.schema`);
    return new arrow.Field(name, type, true);
  });
  if (fields.length === 0) throw new TypeError("BatchWriter: cannot infer a schema from a row without fields; pass options.schema");
  return new arrow.Schema(fields);
}

/**
 * Builds record batches of one schema from plain rows and Arrow batches, in the order given.
 * Rows are validated before any of them is taken, so a rejected call leaves nothing behind.
 */
export class RowBatcher {
  private readonly builders: Arrow.Builder[];
  private readonly names: string[];
  private readonly nullable: boolean[];
  private readonly known: Set<string>;
  private readonly rebuild: ArrowRebuilder;
  private readonly schemaText: string[];
  /** Per column: whether numbers become bigints (64-bit integer columns, whose builders take only bigints). */
  private readonly toBigInt: boolean[];
  /** Rows in the builders. */
  rows = 0;

  constructor(
    private readonly arrow: ArrowModule,
    readonly schema: Arrow.Schema,
  ) {
    this.rebuild = new ArrowRebuilder(arrow);
    this.names = schema.fields.map((f) => f.name);
    this.nullable = schema.fields.map((f) => f.nullable);
    this.known = new Set(this.names);
    this.schemaText = schema.fields.map(fieldText);
    this.toBigInt = schema.fields.map((f) => {
      const t = f.type as unknown as { typeId: number; bitWidth?: number; indices?: unknown };
      return t.typeId === T.Int && t.bitWidth === 64;
    });
    this.builders = schema.fields.map((f) => arrow.makeBuilder({ type: f.type, nullValues: [null, undefined] }));
  }

  /** Bytes in the builders (apache-arrow's count of the buffers written so far). */
  get bytes(): number {
    let n = 0;
    for (const b of this.builders) n += b.byteLength;
    return n;
  }

  /** Throws a FlightError (INVALID_ARGUMENT) naming the row, field and types if `row` does not fit. */
  check(row: Row, index: number): void {
    if (row === null || typeof row !== "object" || Array.isArray(row)) throw mismatch(`row ${index} is ${describeValue(row)}, not an object of field values`);
    for (const key in row) {
      if (!this.known.has(key)) throw mismatch(`row ${index} has field "${key}", which the schema does not have (fields: ${this.names.join(", ")})`);
    }
    const fields = this.schema.fields;
    for (let i = 0; i < fields.length; i++) {
      const v = row[this.names[i]];
      if (v === null || v === undefined) {
        if (!this.nullable[i]) throw mismatch(`row ${index}: field "${this.names[i]}" is not nullable but the row has no value for it`);
        continue;
      }
      const why = unfit(fields[i].type, v);
      if (why !== undefined) throw mismatch(`row ${index}: field "${this.names[i]}" is ${describeValue(v)}, but ${why}`);
    }
  }

  /** Appends a row already {@link check}ed. */
  add(row: Row): void {
    const builders = this.builders;
    for (let i = 0; i < builders.length; i++) {
      const v = row[this.names[i]];
      builders[i].append(v instanceof Date ? v.getTime() : typeof v === "number" && this.toBigInt[i] ? BigInt(v) : v);
    }
    this.rows++;
  }

  /** The rows added so far as one record batch (undefined if none); the builders start over, dictionaries kept. */
  take(): Arrow.RecordBatch | undefined {
    if (this.rows === 0) return undefined;
    const a = this.arrow;
    const length = this.rows;
    let children: Arrow.Data[];
    try {
      children = this.builders.map((b) => this.compactDictionary(b, b.flush()));
    } catch (err) {
      throw mismatch(`apache-arrow could not build the batch: ${(err as Error).message}`);
    }
    this.rows = 0;
    const data = a.makeData({ type: new a.Struct(this.schema.fields), length, nullCount: 0, children });
    return new a.RecordBatch(this.schema, data);
  }

  /**
   * apache-arrow's DictionaryBuilder keeps its dictionary as one chunk per flush, empty ones
   * included, and a stream writer sends every chunk (the first in full, the others as deltas):
   * a writer cutting many batches would send ever more dictionary messages per stream. Empty
   * chunks are dropped, and past {@link MAX_DICTIONARY_CHUNKS} the chunks are merged into one
   * (the stream writer then sends it as a replacement, once). The builder is given the
   * compacted dictionary back (its `_dictionary`, which it concatenates onto at each flush).
   */
  private compactDictionary(builder: Arrow.Builder, data: Arrow.Data): Arrow.Data {
    const dictionary = data.dictionary;
    if (!dictionary) return data;
    const chunks = dictionary.data;
    let kept = chunks.filter((c) => c.length > 0);
    if (kept.length === chunks.length && kept.length <= MAX_DICTIONARY_CHUNKS) return data;
    if (kept.length === 0) kept = chunks.slice(0, 1);
    let compacted = new this.arrow.Vector(kept);
    if (kept.length > MAX_DICTIONARY_CHUNKS) compacted = this.arrow.vectorFromArray(compacted.toArray() as never, dictionary.type) as Arrow.Vector;
    data.dictionary = compacted;
    (builder as unknown as { _dictionary?: Arrow.Vector })._dictionary = compacted;
    return data;
  }

  /**
   * The record batches of an Arrow Table or RecordBatch (of any apache-arrow copy) as host
   * batches of this schema. Throws a FlightError (INVALID_ARGUMENT) if its schema differs.
   */
  arrowBatches(input: TableLike | RecordBatchLike): Arrow.RecordBatch[] {
    const schema = this.rebuild.schema(input.schema as SchemaLike);
    const theirs = schema.fields.map(fieldText);
    const same = theirs.length === this.schemaText.length && theirs.every((t, i) => t === this.schemaText[i]);
    if (!same) throw mismatch(`the Arrow data has fields (${theirs.join(", ")}), the writer's schema is (${this.schemaText.join(", ")})`);
    const batches = isTableLike(input) ? input.batches : [input];
    const out = batches.filter((b) => b.numRows > 0).map((b) => this.rebuild.batch(b, this.schema));
    // A batch's columns must hold what its schema says (a batch built over other data would be refused by the server).
    for (const b of out) {
      b.data.children.forEach((c, i) => {
        if (String(c.type) !== String(this.schema.fields[i].type)) throw mismatch(`column "${this.names[i]}" of the Arrow data holds ${String(c.type)}, its schema says ${String(this.schema.fields[i].type)}`);
      });
    }
    return out;
  }
}


/** Whether `x` is Arrow data (a Table or RecordBatch of any apache-arrow copy) rather than rows. */
export const isArrowInput = (x: unknown): x is TableLike | RecordBatchLike => isTableLike(x) || isRecordBatchLike(x);
