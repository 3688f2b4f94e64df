// Reads Arrow's cross-language integration JSON format (the `*.json` files that archery's
// integration suite and test/fixtures/conformance/ipc ship) into apache-arrow JS record
// batches, building every buffer exactly as the JSON describes it.
//
// apache-arrow JS 21 has a JSON loader of its own (`RecordBatchReader.from(json)`), but it
// gets decimal32/64/256 and interval[month_day_nano] values wrong and invents an empty batch
// for files with no batches, so this reader builds the Data itself with `makeData`.
//
// Types apache-arrow JS cannot represent raise UnsupportedTypeError, naming the type and the
// reason, so that a matrix cell can report it instead of passing silently.

import * as arrow from "apache-arrow";
import { typeSignature } from "./compare";

/** A type in the JSON that apache-arrow JS has no class for. */
export class UnsupportedTypeError extends Error {
  override readonly name = "UnsupportedTypeError";
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {
    super(`${typeName}: ${reason}`);
  }
}

/** The JSON file, as parsed. */
export interface IntegrationJson {
  schema: JsonSchema;
  batches: JsonBatch[];
  dictionaries?: Array<{ id: number; data: JsonBatch }>;
}
interface JsonSchema {
  fields: JsonField[];
  metadata?: JsonKeyValue[];
}
interface JsonKeyValue {
  key: string;
  value: string;
}
interface JsonField {
  name: string;
  nullable: boolean;
  type: JsonType;
  children?: JsonField[];
  dictionary?: { id: number; indexType: JsonType; isOrdered?: boolean };
  metadata?: JsonKeyValue[];
}
type JsonType = { name: string } & Record<string, unknown>;
interface JsonBatch {
  count: number;
  columns: JsonColumn[];
}
interface JsonColumn {
  name: string;
  count: number;
  VALIDITY?: number[];
  OFFSET?: Array<number | string>;
  DATA?: unknown[];
  TYPE_ID?: number[];
  VIEWS?: JsonView[];
  VARIADIC_DATA_BUFFERS?: string[];
  children?: JsonColumn[];
}
type JsonView = { SIZE: number; INLINED?: string; PREFIX_HEX?: string; BUFFER_INDEX?: number; OFFSET?: number };

/** What the reader produces: the schema and exactly the batches the file lists. */
export interface JsonDataset {
  schema: arrow.Schema;
  batches: arrow.RecordBatch[];
}

/** Types apache-arrow JS 21 has no DataType for, with the reason a cell reports. */
const UNSUPPORTED: Record<string, string> = {
  listview: "apache-arrow JS has no ListView type",
  largelistview: "apache-arrow JS has no LargeListView type",
  runendencoded: "apache-arrow JS has no RunEndEncoded type",
};

/** Arrow's name of a JSON type name (`listview` → `list_view`). */
const ARROW_NAMES: Record<string, string> = { listview: "list_view", largelistview: "large_list_view", runendencoded: "run_end_encoded" };

/**
 * Lists the types of a JSON schema that apache-arrow JS cannot build (depth first), without
 * reading any data. Empty when the whole file can be read.
 */
export function unsupportedTypes(json: IntegrationJson): UnsupportedTypeError[] {
  const out: UnsupportedTypeError[] = [];
  const seen = new Set<string>();
  const visit = (f: JsonField): void => {
    const reason = UNSUPPORTED[f.type.name];
    if (reason && !seen.has(f.type.name)) {
      seen.add(f.type.name);
      out.push(new UnsupportedTypeError(ARROW_NAMES[f.type.name] ?? f.type.name, reason));
    }
    for (const c of f.children ?? []) visit(c);
  };
  for (const f of json.schema.fields) visit(f);
  return out;
}

const metadataOf = (kv: JsonKeyValue[] | undefined): Map<string, string> | null =>
  kv && kv.length > 0 ? new Map(kv.map(({ key, value }) => [key, value])) : null;

const TIME_UNITS: Record<string, arrow.TimeUnit> = {
  SECOND: arrow.TimeUnit.SECOND,
  MILLISECOND: arrow.TimeUnit.MILLISECOND,
  MICROSECOND: arrow.TimeUnit.MICROSECOND,
  NANOSECOND: arrow.TimeUnit.NANOSECOND,
};

function timeUnit(t: JsonType): arrow.TimeUnit {
  const u = TIME_UNITS[String(t.unit)];
  if (u === undefined) throw new Error(`${t.name}: unknown unit ${JSON.stringify(t.unit)}`);
  return u;
}

function intType(t: JsonType): arrow.Int {
  const signed = t.isSigned !== false;
  switch (Number(t.bitWidth)) {
    case 8:
      return signed ? new arrow.Int8() : new arrow.Uint8();
    case 16:
      return signed ? new arrow.Int16() : new arrow.Uint16();
    case 32:
      return signed ? new arrow.Int32() : new arrow.Uint32();
    case 64:
      return signed ? new arrow.Int64() : new arrow.Uint64();
  }
  throw new Error(`int: bad bitWidth ${JSON.stringify(t.bitWidth)}`);
}

/** Builds the (value) type of a field from its JSON type and already-built children. */
function typeOf(t: JsonType, children: arrow.Field[]): arrow.DataType {
  const reason = UNSUPPORTED[t.name];
  if (reason) throw new UnsupportedTypeError(ARROW_NAMES[t.name] ?? t.name, reason);
  switch (t.name) {
    case "null":
      return new arrow.Null();
    case "bool":
      return new arrow.Bool();
    case "int":
      return intType(t);
    case "floatingpoint":
      switch (t.precision) {
        case "HALF":
          return new arrow.Float16();
        case "SINGLE":
          return new arrow.Float32();
        case "DOUBLE":
          return new arrow.Float64();
      }
      throw new Error(`floatingpoint: bad precision ${JSON.stringify(t.precision)}`);
    case "binary":
      return new arrow.Binary();
    case "largebinary":
      return new arrow.LargeBinary();
    case "binaryview":
      return new arrow.BinaryView();
    case "utf8":
      return new arrow.Utf8();
    case "largeutf8":
      return new arrow.LargeUtf8();
    case "utf8view":
      return new arrow.Utf8View();
    case "fixedsizebinary":
      return new arrow.FixedSizeBinary(Number(t.byteWidth));
    case "decimal": {
      const bitWidth = t.bitWidth === undefined ? 128 : Number(t.bitWidth);
      if (![32, 64, 128, 256].includes(bitWidth)) throw new Error(`decimal: bad bitWidth ${bitWidth}`);
      return new arrow.Decimal(Number(t.scale), Number(t.precision), bitWidth);
    }
    case "date":
      return t.unit === "DAY" ? new arrow.DateDay() : new arrow.DateMillisecond();
    case "time":
      return new arrow.Time(timeUnit(t), Number(t.bitWidth) as 32 | 64);
    case "timestamp":
      return new arrow.Timestamp(timeUnit(t), (t.timezone as string | undefined) ?? null);
    case "duration":
      return new arrow.Duration(timeUnit(t));
    case "interval":
      switch (t.unit) {
        case "YEAR_MONTH":
          return new arrow.IntervalYearMonth();
        case "DAY_TIME":
          return new arrow.IntervalDayTime();
        case "MONTH_DAY_NANO":
          return new arrow.IntervalMonthDayNano();
      }
      throw new Error(`interval: bad unit ${JSON.stringify(t.unit)}`);
    case "list":
      return new arrow.List(children[0]);
    case "largelist":
      return new arrow.LargeList(children[0]);
    case "fixedsizelist":
      return new arrow.FixedSizeList(Number(t.listSize), children[0]);
    case "struct":
      return new arrow.Struct(children);
    case "map":
      return new arrow.Map_(children[0] as arrow.Field<arrow.Struct<{ key: arrow.DataType; value: arrow.DataType }>>, Boolean(t.keysSorted));
    case "union": {
      const typeIds = (t.typeIds as number[] | undefined) ?? children.map((_, i) => i);
      return t.mode === "DENSE" ? new arrow.DenseUnion(typeIds, children) : new arrow.SparseUnion(typeIds, children);
    }
  }
  throw new UnsupportedTypeError(t.name, "not an Arrow integration JSON type this reader knows");
}

/**
 * Builds a field; records every dictionary id's value type (dictionaries may nest). Fields
 * that share a dictionary id share one Dictionary type object, as apache-arrow JS requires.
 */
function fieldOf(f: JsonField, dictionaryTypes: Map<number, arrow.Dictionary>): arrow.Field {
  const children = (f.children ?? []).map((c) => fieldOf(c, dictionaryTypes));
  let type: arrow.DataType = typeOf(f.type, children);
  if (f.dictionary) {
    const { id } = f.dictionary;
    const indexType = intType(f.dictionary.indexType) as never;
    const known = dictionaryTypes.get(id);
    if (known) {
      if (typeSignature(known.dictionary) !== typeSignature(type) || typeSignature(known.indices) !== typeSignature(indexType)) {
        throw new Error(`dictionary ${id} is used with two different types`);
      }
      type = known;
    } else {
      const dict = new arrow.Dictionary(type, indexType, id, f.dictionary.isOrdered ?? false);
      dictionaryTypes.set(id, dict);
      type = dict;
    }
  }
  return new arrow.Field(f.name, type, f.nullable, metadataOf(f.metadata));
}

// ---------------------------------------------------------------- buffers

const hexBytes = (hex: string): Uint8Array => {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`not a hex string: ${JSON.stringify(hex.slice(0, 40))}`);
  return Uint8Array.from(Buffer.from(hex, "hex"));
};
const utf8 = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Packs a VALIDITY list (1 = valid) into a bitmap; undefined when absent. */
function validityOf(col: JsonColumn): { nullBitmap: Uint8Array | undefined; nullCount: number } {
  if (!col.VALIDITY) return { nullBitmap: undefined, nullCount: 0 };
  if (col.VALIDITY.length !== col.count) throw new Error(`column ${col.name}: VALIDITY has ${col.VALIDITY.length} entries for count ${col.count}`);
  return { nullBitmap: packBits(col.VALIDITY.map((v) => v !== 0)), nullCount: col.VALIDITY.filter((v) => v === 0).length };
}

function packBits(bits: boolean[]): Uint8Array {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => {
    if (b) out[i >> 3] |= 1 << (i & 7);
  });
  return out;
}

function data(col: JsonColumn): unknown[] {
  if (!col.DATA) throw new Error(`column ${col.name}: DATA is missing`);
  return col.DATA;
}

const big = (v: unknown): bigint => BigInt(v as string | number);

/** Two's complement little-endian bytes of a decimal integer text, `bytes` wide. */
function decimalBytes(text: string, bytes: number): Uint8Array {
  let v = BigInt(text);
  const bits = BigInt(bytes * 8);
  if (v < 0n) v += 1n << bits;
  if (v < 0n || v >= 1n << bits) throw new Error(`decimal value ${text} does not fit in ${bytes * 8} bits`);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** IEEE 754 binary16 bits of a number (round to nearest even). */
function halfBits(value: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Offsets as given (numbers for 32-bit, strings or numbers for 64-bit). */
function offsets32(col: JsonColumn): Int32Array {
  if (!col.OFFSET) throw new Error(`column ${col.name}: OFFSET is missing`);
  return Int32Array.from(col.OFFSET, (v) => Number(v));
}
function offsets64(col: JsonColumn): BigInt64Array {
  if (!col.OFFSET) throw new Error(`column ${col.name}: OFFSET is missing`);
  return BigInt64Array.from(col.OFFSET, big);
}

/** Builds the value bytes of a (large) binary or utf8 column from its DATA. */
function variableBytes(col: JsonColumn, isUtf8: boolean): Uint8Array {
  return concat(data(col).map((v) => (isUtf8 ? utf8.encode(String(v)) : hexBytes(String(v)))));
}

/** Builds the 16-byte views of a BinaryView / Utf8View column. */
function viewBytes(col: JsonColumn, isUtf8: boolean): Uint8Array {
  const views = col.VIEWS ?? [];
  const out = new Uint8Array(views.length * 16);
  const dv = new DataView(out.buffer);
  views.forEach((v, i) => {
    const at = i * 16;
    dv.setInt32(at, v.SIZE, true);
    if (v.SIZE <= 12) {
      const inlined = isUtf8 ? utf8.encode(v.INLINED ?? "") : hexBytes(v.INLINED ?? "");
      if (inlined.length !== v.SIZE) throw new Error(`column ${col.name}: view ${i} inlines ${inlined.length} bytes for SIZE ${v.SIZE}`);
      out.set(inlined, at + 4);
    } else {
      out.set(hexBytes(v.PREFIX_HEX ?? "").subarray(0, 4), at + 4);
      dv.setInt32(at + 8, v.BUFFER_INDEX ?? 0, true);
      dv.setInt32(at + 12, v.OFFSET ?? 0, true);
    }
  });
  return out;
}

/** Builds one column's Data from its JSON, recursively. */
function columnData(field: arrow.Field, col: JsonColumn, dictionaries: (id: number) => arrow.Vector): arrow.Data {
  const type = field.type as arrow.DataType;
  const length = col.count;
  const { nullBitmap, nullCount } = validityOf(col);
  const base = { length, nullBitmap, nullCount } as const;
  const childrenOf = (fields: arrow.Field[]): arrow.Data[] => {
    const cols = col.children ?? [];
    if (cols.length !== fields.length) throw new Error(`column ${col.name}: ${cols.length} children for ${fields.length} fields`);
    return fields.map((f, i) => columnData(f, cols[i], dictionaries));
  };

  if (arrow.DataType.isDictionary(type)) {
    const indices = type.indices as arrow.Int;
    const raw = data(col);
    const values = indices.bitWidth === 64 ? (indices.isSigned ? BigInt64Array.from(raw, big) : BigUint64Array.from(raw, big)) : Array.from(raw, Number);
    const ArrayType = indices.ArrayType as unknown as { from(v: ArrayLike<unknown>): ArrayBufferView };
    return arrow.makeData({ type, ...base, data: ArrayType.from(values) as never, dictionary: dictionaries(Number(type.id)) as never });
  }

  switch (type.typeId) {
    case arrow.Type.Null:
      return arrow.makeData({ type: type as arrow.Null, length });
    case arrow.Type.Bool:
      return arrow.makeData({ type: type as arrow.Bool, ...base, data: packBits(data(col).map((v) => Boolean(v))) });
    case arrow.Type.Int: {
      const t = type as arrow.Int;
      const raw = data(col);
      const values = t.bitWidth === 64 ? (t.isSigned ? BigInt64Array.from(raw, big) : BigUint64Array.from(raw, big)) : (t.ArrayType as unknown as { from(v: unknown[], f: (x: unknown) => number): ArrayBufferView }).from(raw, Number);
      return arrow.makeData({ type: t, ...base, data: values as never });
    }
    case arrow.Type.Float: {
      const t = type as arrow.Float;
      const raw = data(col).map((v) => Number(v));
      const values = t.precision === arrow.Precision.HALF ? Uint16Array.from(raw, halfBits) : t.precision === arrow.Precision.SINGLE ? Float32Array.from(raw) : Float64Array.from(raw);
      return arrow.makeData({ type: t, ...base, data: values as never });
    }
    case arrow.Type.Decimal: {
      const t = type as arrow.Decimal;
      const bytes = concat(data(col).map((v) => decimalBytes(String(v), t.bitWidth / 8)));
      return arrow.makeData({ type: t, ...base, data: new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) });
    }
    case arrow.Type.Date: {
      const t = type as arrow.DateDay | arrow.DateMillisecond;
      const values = t.unit === arrow.DateUnit.DAY ? Int32Array.from(data(col), Number) : BigInt64Array.from(data(col), big);
      return arrow.makeData({ type: t, ...base, data: values as never });
    }
    case arrow.Type.Time: {
      const t = type as arrow.Time;
      const values = t.bitWidth === 64 ? BigInt64Array.from(data(col), big) : Int32Array.from(data(col), Number);
      return arrow.makeData({ type: t, ...base, data: values as never });
    }
    case arrow.Type.Timestamp:
    case arrow.Type.Duration:
      return arrow.makeData({ type: type as arrow.Timestamp, ...base, data: BigInt64Array.from(data(col), big) });
    case arrow.Type.Interval: {
      const t = type as arrow.Interval;
      const raw = data(col);
      let bytes: Uint8Array;
      if (t.unit === arrow.IntervalUnit.YEAR_MONTH) {
        bytes = new Uint8Array(Int32Array.from(raw, Number).buffer);
      } else if (t.unit === arrow.IntervalUnit.DAY_TIME) {
        const out = new Int32Array(raw.length * 2);
        raw.forEach((v, i) => {
          const o = v as { days: number; milliseconds: number };
          out[2 * i] = o.days;
          out[2 * i + 1] = o.milliseconds;
        });
        bytes = new Uint8Array(out.buffer);
      } else {
        bytes = new Uint8Array(raw.length * 16);
        const dv = new DataView(bytes.buffer);
        raw.forEach((v, i) => {
          const o = v as { months: number; days: number; nanoseconds: number | string };
          dv.setInt32(16 * i, o.months, true);
          dv.setInt32(16 * i + 4, o.days, true);
          // nanoseconds is an int64: parse the JSON text exactly (JSON.parse already rounded
          // big numbers, so the file is parsed with a BigInt-preserving reviver, see below).
          dv.setBigInt64(16 * i + 8, big(o.nanoseconds), true);
        });
      }
      return arrow.makeData({ type: t, ...base, data: new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) as never });
    }
    case arrow.Type.FixedSizeBinary: {
      const t = type as arrow.FixedSizeBinary;
      const bytes = concat(data(col).map((v) => hexBytes(String(v))));
      if (bytes.length !== t.byteWidth * length) throw new Error(`column ${col.name}: ${bytes.length} bytes for ${length} values of width ${t.byteWidth}`);
      return arrow.makeData({ type: t, ...base, data: bytes });
    }
    case arrow.Type.Binary:
    case arrow.Type.Utf8:
      return arrow.makeData({ type: type as arrow.Binary, ...base, valueOffsets: offsets32(col), data: variableBytes(col, type.typeId === arrow.Type.Utf8) });
    case arrow.Type.LargeBinary:
    case arrow.Type.LargeUtf8:
      return arrow.makeData({ type: type as arrow.LargeBinary, ...base, valueOffsets: offsets64(col), data: variableBytes(col, type.typeId === arrow.Type.LargeUtf8) });
    case arrow.Type.BinaryView:
    case arrow.Type.Utf8View: {
      const views = viewBytes(col, type.typeId === arrow.Type.Utf8View);
      const variadicBuffers = (col.VARIADIC_DATA_BUFFERS ?? []).map(hexBytes);
      return arrow.makeData({ type: type as arrow.BinaryView, ...base, views, variadicBuffers });
    }
    case arrow.Type.List:
    case arrow.Type.Map: {
      const t = type as arrow.List;
      const [child] = childrenOf(t.children);
      return arrow.makeData({ type: t, ...base, valueOffsets: offsets32(col), child });
    }
    case arrow.Type.LargeList: {
      const t = type as arrow.LargeList;
      const [child] = childrenOf(t.children);
      return arrow.makeData({ type: t, ...base, valueOffsets: offsets64(col), child });
    }
    case arrow.Type.FixedSizeList: {
      const t = type as arrow.FixedSizeList;
      const [child] = childrenOf(t.children);
      return arrow.makeData({ type: t, ...base, child });
    }
    case arrow.Type.Struct: {
      const t = type as arrow.Struct;
      return arrow.makeData({ type: t, ...base, children: childrenOf(t.children) });
    }
    case arrow.Type.Union: {
      const t = type as arrow.Union;
      const typeIds = Int8Array.from(col.TYPE_ID ?? [], Number);
      const children = childrenOf(t.children);
      if (t.mode === arrow.UnionMode.Dense) {
        return arrow.makeData({ type: t as arrow.DenseUnion, length, nullCount: 0, typeIds, valueOffsets: offsets32(col), children });
      }
      return arrow.makeData({ type: t as arrow.SparseUnion, length, nullCount: 0, typeIds, children });
    }
  }
  throw new UnsupportedTypeError(String(type), "no JSON column builder for this type");
}

/**
 * JSON.parse loses precision on integers beyond 2^53 that the file writes as bare numbers
 * (interval[month_day_nano] nanoseconds). This quotes every bare integer literal of 16 or
 * more digits before parsing, so it reaches the reader as exact text.
 */
export function parseIntegrationJson(text: string): IntegrationJson {
  let out = "";
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      // copy a string literal verbatim
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < n && /[0-9.eE+-]/.test(text[j])) j++;
      const lit = text.slice(i, j);
      out += /^-?\d{16,}$/.test(lit) ? `"${lit}"` : lit;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out) as IntegrationJson;
}

/**
 * `new RecordBatch(schema, data)` rebuilds the schema with `Schema.assign`, which merges
 * fields by name: two top-level fields with the same name (generated_duplicate_fieldnames)
 * would both get the last one's type, and the IPC writer would then label an int8 column
 * int32. The data is right, so the original schema is put back.
 */
export function recordBatch(schema: arrow.Schema, data: arrow.Data<arrow.Struct>): arrow.RecordBatch {
  const batch = new arrow.RecordBatch(schema, data);
  if (batch.schema !== schema && batch.schema.fields.length === schema.fields.length) (batch as { schema: arrow.Schema }).schema = schema;
  return batch;
}

/**
 * Reads an integration JSON document into a schema and exactly its record batches.
 * Throws UnsupportedTypeError for a type apache-arrow JS cannot represent.
 */
export function readIntegrationJson(input: string | IntegrationJson): JsonDataset {
  const json = typeof input === "string" ? parseIntegrationJson(input) : input;
  const unsupported = unsupportedTypes(json);
  if (unsupported.length > 0) throw unsupported[0];
  const dictionaryTypes = new Map<number, arrow.Dictionary>();
  const fields = json.schema.fields.map((f) => fieldOf(f, dictionaryTypes));
  const schema = new arrow.Schema(fields, metadataOf(json.schema.metadata));

  const dictionaryJson = new Map<number, JsonBatch>();
  for (const d of json.dictionaries ?? []) {
    if (dictionaryJson.has(d.id)) throw new Error(`dictionary ${d.id} appears twice (delta dictionaries are not in the JSON format)`);
    dictionaryJson.set(d.id, d.data);
  }
  const built = new Map<number, arrow.Vector>();
  const building = new Set<number>();
  const dictionary = (id: number): arrow.Vector => {
    const done = built.get(id);
    if (done) return done;
    const batch = dictionaryJson.get(id);
    const valueType = dictionaryTypes.get(id)?.dictionary;
    if (!batch || !valueType) throw new Error(`dictionary ${id} is used but not defined`);
    if (building.has(id)) throw new Error(`dictionary ${id} refers to itself`);
    building.add(id);
    const v = arrow.makeVector(columnData(new arrow.Field(`DICT${id}`, valueType, true), batch.columns[0], dictionary));
    building.delete(id);
    built.set(id, v);
    return v;
  };

  const batches = json.batches.map((b, bi) => {
    if (b.columns.length !== fields.length) throw new Error(`batch ${bi}: ${b.columns.length} columns for ${fields.length} fields`);
    const children = fields.map((f, i) => columnData(f, b.columns[i], dictionary));
    const structData = arrow.makeData({ type: new arrow.Struct(fields), length: b.count, nullCount: 0, children });
    return recordBatch(schema, structData);
  });
  return { schema, batches };
}
