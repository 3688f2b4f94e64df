import { invalidArgument } from "../flight-error";
import type { FbTable } from "./flatbuffer-reader";
import { MessageKind } from "./ipc-message";
import { MetadataVersion, parseMessageHeader, readKeyValues } from "./message-header";

/**
 * How deeply fields may nest (a list of structs of lists ... counts one level per field).
 * The same limit Arrow C++ applies, so whatever it can read, this can.
 */
export const MAX_NESTING_DEPTH = 64;

/** The tags of Arrow's `Type` union (Schema.fbs). */
export const ArrowTypeId = {
  Null: 1,
  Int: 2,
  FloatingPoint: 3,
  Binary: 4,
  Utf8: 5,
  Bool: 6,
  Decimal: 7,
  Date: 8,
  Time: 9,
  Timestamp: 10,
  Interval: 11,
  List: 12,
  Struct: 13,
  Union: 14,
  FixedSizeBinary: 15,
  FixedSizeList: 16,
  Map: 17,
  Duration: 18,
  LargeBinary: 19,
  LargeUtf8: 20,
  LargeList: 21,
  RunEndEncoded: 22,
  BinaryView: 23,
  Utf8View: 24,
  ListView: 25,
  LargeListView: 26,
} as const;
/** One of {@link ArrowTypeId}. */
export type ArrowTypeId = (typeof ArrowTypeId)[keyof typeof ArrowTypeId];

/** Unit of a Date, Time, Timestamp, Duration or Interval type. */
export type ArrowUnit =
  | "day"
  | "second"
  | "millisecond"
  | "microsecond"
  | "nanosecond"
  | "year_month"
  | "day_time"
  | "month_day_nano";

/**
 * An Arrow data type as declared in a schema: the `Type` union tag and the parameters that
 * type has (absent parameters do not apply to it). Children are on the {@link FieldInfo}.
 */
export interface ArrowTypeInfo {
  readonly typeId: ArrowTypeId;
  /** Int: 8/16/32/64; FloatingPoint: 16/32/64; Decimal: 32/64/128/256; Time: 32/64. */
  readonly bitWidth?: number;
  /** Int: whether signed. */
  readonly signed?: boolean;
  /** Decimal: digits. */
  readonly precision?: number;
  /** Decimal: digits after the point (may be negative). */
  readonly scale?: number;
  /** Date, Time, Timestamp, Duration, Interval. */
  readonly unit?: ArrowUnit;
  /** Timestamp: the time zone, absent for a naive timestamp. */
  readonly timezone?: string;
  /** FixedSizeList: values per list. */
  readonly listSize?: number;
  /** FixedSizeBinary: bytes per value. */
  readonly byteWidth?: number;
  /** Union. */
  readonly mode?: "sparse" | "dense";
  /** Union: the type code of each child, in child order. */
  readonly typeIds?: readonly number[];
  /** Map: whether keys are sorted. */
  readonly keysSorted?: boolean;
}

/** The dictionary encoding of a field: the field's own type is the dictionary's value type. */
export interface DictionaryEncodingInfo {
  readonly id: bigint;
  /** The integer type of the indices (signed int32 when the schema leaves it out). */
  readonly indexType: { readonly bitWidth: number; readonly signed: boolean };
  readonly isOrdered: boolean;
}

/** One field of a schema, with its children. */
export interface FieldInfo {
  readonly name: string;
  readonly nullable: boolean;
  /** The (value) type. */
  readonly type: ArrowTypeInfo;
  readonly dictionary?: DictionaryEncodingInfo;
  readonly children: readonly FieldInfo[];
  /** Custom metadata, when the field has any. */
  readonly metadata?: ReadonlyMap<string, string>;
  /** `ARROW:extension:name` from the metadata, for extension types. */
  readonly extensionName?: string;
}

/** What role a buffer plays in a column's physical layout. */
export const BufferRole = {
  /** Validity bitmap: one bit per value (may be empty when there are no nulls). */
  VALIDITY: 0,
  /** Fixed-width values (`bitWidth` bits each). */
  DATA: 1,
  /** Offsets (`offsetWidth` bytes each): length + 1 of them for lists and binaries, length for views. */
  OFFSETS: 2,
  /** Bytes of variable-size binary or UTF-8 values. */
  BYTES: 3,
  /** 16-byte views of Utf8View/BinaryView. */
  VIEWS: 4,
  /** Sizes of ListView/LargeListView (`offsetWidth` bytes each). */
  SIZES: 5,
  /** 8-bit union type codes. */
  TYPE_IDS: 6,
  /** 32-bit dense-union offsets. */
  UNION_OFFSETS: 7,
} as const;
/** One of {@link BufferRole}. */
export type BufferRole = (typeof BufferRole)[keyof typeof BufferRole];

/** The physical layout classes of the Arrow columnar format. */
export const LayoutKind = {
  NULL: 0,
  FIXED: 1,
  VAR_BINARY: 2,
  VIEW: 3,
  LIST: 4,
  LIST_VIEW: 5,
  FIXED_SIZE_LIST: 6,
  STRUCT: 7,
  SPARSE_UNION: 8,
  DENSE_UNION: 9,
  RUN_END_ENCODED: 10,
} as const;
/** One of {@link LayoutKind}. */
export type LayoutKind = (typeof LayoutKind)[keyof typeof LayoutKind];

/**
 * How one field appears in a record batch: one field node, the buffers listed in `buffers`
 * (plus variadic data buffers for views), then its children's nodes and buffers depth-first.
 * A dictionary-encoded field is a FIXED column of its indices with no children here; its
 * values travel in dictionary batches.
 */
export interface ColumnLayout {
  /** Dotted path of field names, for error messages. */
  readonly path: string;
  readonly kind: LayoutKind;
  readonly buffers: readonly BufferRole[];
  /** Bits per value of the DATA buffer (1 for Bool), 0 when there is none. */
  readonly bitWidth: number;
  /** Bytes per offset or size (4 or 8), 0 when there are none. */
  readonly offsetWidth: number;
  /** FixedSizeList: values per list. */
  readonly listSize: number;
  /** The dictionary this column's indices point into. */
  readonly dictionaryId?: bigint;
  readonly children: readonly ColumnLayout[];
}

/** A dictionary declared by the schema: its id, value field and the layout of its batches. */
export interface DictionaryInfo {
  readonly id: bigint;
  /** The dictionary's values, as a field of the value type (without the encoding). */
  readonly valueField: FieldInfo;
  readonly indexType: { readonly bitWidth: number; readonly signed: boolean };
  readonly isOrdered: boolean;
  /** Paths of the fields encoded with this dictionary (more than one when shared). */
  readonly usedBy: readonly string[];
  /** Layout of the single column of this dictionary's batches. */
  readonly layout: ColumnLayout;
  /** Field nodes, buffers (without variadic ones) and view columns of one dictionary batch. */
  readonly nodeCount: number;
  readonly bufferCount: number;
  readonly variadicColumns: number;
  /** Other dictionaries whose indices occur inside this dictionary's values. */
  readonly nestedDictionaryIds: readonly bigint[];
}

/**
 * A schema message read by {@link readSchema}: its fields, and what every record batch and
 * dictionary batch of a stream with this schema must look like.
 */
export interface SchemaInfo {
  /** Metadata version of the schema message (V4 = 3, V5 = 4). */
  readonly version: number;
  readonly endianness: "little" | "big";
  readonly fields: readonly FieldInfo[];
  /** Schema-level custom metadata, when there is any. */
  readonly metadata?: ReadonlyMap<string, string>;
  /** Field nodes a record batch carries: one per field, nested ones included, not below a dictionary. */
  readonly nodeCount: number;
  /** Buffers a record batch carries, not counting the variadic data buffers of view columns. */
  readonly bufferCount: number;
  /** View columns (Utf8View/BinaryView); each has an entry in `variadicBufferCounts`. */
  readonly variadicColumns: number;
  /** Physical layout of each top-level column of a record batch. */
  readonly columns: readonly ColumnLayout[];
  /** Dictionaries by id. */
  readonly dictionaries: ReadonlyMap<bigint, DictionaryInfo>;
  /** Dictionaries whose indices occur in record batches (directly, not inside other dictionaries). */
  readonly recordBatchDictionaryIds: readonly bigint[];
}

// Slots (Schema.fbs).
const SCHEMA_ENDIANNESS = 0;
const SCHEMA_FIELDS = 1;
const SCHEMA_CUSTOM_METADATA = 2;
const SCHEMA_FEATURES = 3;
const FIELD_NAME = 0;
const FIELD_NULLABLE = 1;
const FIELD_TYPE = 2; // type_type at 2, type at 3
const FIELD_DICTIONARY = 4;
const FIELD_CHILDREN = 5;
const FIELD_CUSTOM_METADATA = 6;
const DICT_ID = 0;
const DICT_INDEX_TYPE = 1;
const DICT_IS_ORDERED = 2;
const DICT_KIND = 3;

const TIME_UNITS: readonly ArrowUnit[] = ["second", "millisecond", "microsecond", "nanosecond"];
const INTERVAL_UNITS: readonly ArrowUnit[] = ["year_month", "day_time", "month_day_nano"];
const DECIMAL_MAX_PRECISION: Readonly<Record<number, number>> = { 32: 9, 64: 18, 128: 38, 256: 76 };
const MAX_UNION_TYPE_CODE = 127;
const EXTENSION_NAME = "ARROW:extension:name";
const EXTENSION_METADATA = "ARROW:extension:metadata";

/**
 * Reads the Schema message in `header` completely: every field with its type parameters,
 * dictionary encodings and children, and from them the record batch layout the schema
 * implies (node and buffer counts per the Arrow columnar format). Refuses, with
 * INVALID_ARGUMENT, anything an Arrow reader could not turn into a valid schema: unknown
 * types, out-of-range parameters (e.g. a 7-bit int, a time32 in nanoseconds), wrong child
 * counts (a list needs one child, a map one struct of a non-nullable key and a value, a
 * run-end encoded array its run ends and values), nesting deeper than {@link MAX_NESTING_DEPTH}, a dictionary nested inside
 * itself, and two fields sharing a dictionary id with different value types.
 *
 * Unions follow the message's metadata version: in V5 they have no validity bitmap, in V4
 * they had one, so a V4 sparse union carries validity + type ids and a V4 dense union
 * validity + type ids + offsets. (The validator additionally refuses V4 unions with nulls,
 * as Arrow C++ does, since a V5 reader cannot represent them.)
 *
 * @example
 * const schema = readSchema(firstMessage.header);
 * console.log(schema.fields.map((f) => `${f.name}: ${formatArrowType(f.type)}`));
 */
export function readSchema(header: Uint8Array): SchemaInfo {
  const parsed = parseMessageHeader(header);
  if (parsed.info.kind !== MessageKind.SCHEMA || parsed.schema === undefined) {
    throw invalidArgument("expected a schema message");
  }
  return readSchemaTable(parsed.schema, parsed.info.version);
}

interface ParseState {
  readonly version: number;
  readonly dictionaries: Map<bigint, DictionaryInfo>;
  /** Dictionary ids whose value fields are being read (to refuse self-nesting). */
  readonly openDictionaries: bigint[];
}

function readSchemaTable(schema: FbTable, version: number): SchemaInfo {
  const endiannessValue = schema.int16(SCHEMA_ENDIANNESS, 0);
  if (endiannessValue !== 0 && endiannessValue !== 1) throw invalidArgument(`unknown schema endianness ${endiannessValue}`);
  const state: ParseState = { version, dictionaries: new Map(), openDictionaries: [] };

  const vec = schema.vector(SCHEMA_FIELDS, 4, "Schema.fields");
  const fields: FieldInfo[] = [];
  const columns: ColumnLayout[] = [];
  for (let i = 0, n = vec === null ? 0 : vec.length; i < n; i++) {
    const field = readField((vec as NonNullable<typeof vec>).table(i, "Field"), 1, "", state);
    fields.push(field);
  }
  const metadata = readKeyValues(schema, SCHEMA_CUSTOM_METADATA, "Schema.custom_metadata");
  // Features are not used, only bounds-checked so that the bytes served again are sound.
  schema.vector(SCHEMA_FEATURES, 8, "Schema.features");

  const counts = { nodes: 0, buffers: 0, variadic: 0 };
  const ids = new Set<bigint>();
  for (const field of fields) columns.push(layoutOf(field, "", version, counts, ids));

  const info: SchemaInfo = {
    version,
    endianness: endiannessValue === 0 ? "little" : "big",
    fields,
    nodeCount: counts.nodes,
    bufferCount: counts.buffers,
    variadicColumns: counts.variadic,
    columns,
    dictionaries: state.dictionaries,
    recordBatchDictionaryIds: [...ids],
  };
  if (metadata !== undefined) (info as { metadata?: ReadonlyMap<string, string> }).metadata = metadata;
  return info;
}

function describePath(path: string): string {
  const shown = path.length > 80 ? `${path.slice(0, 77)}...` : path;
  return `field ${JSON.stringify(shown)}`;
}

function readField(table: FbTable, depth: number, parentPath: string, state: ParseState): FieldInfo {
  const name = table.string(FIELD_NAME, "Field.name") ?? "";
  const path = parentPath === "" ? name : `${parentPath}.${name}`;
  if (depth > MAX_NESTING_DEPTH) throw invalidArgument(`${describePath(path)} is nested more than ${MAX_NESTING_DEPTH} levels deep`);
  const nullable = table.bool(FIELD_NULLABLE, false);
  const { type: tag, table: typeTable } = table.union(FIELD_TYPE, "Field.type");
  if (tag === 0 || typeTable === null) throw invalidArgument(`${describePath(path)} has no type`);
  const type = readType(tag, typeTable, path);

  const metadata = readKeyValues(table, FIELD_CUSTOM_METADATA, "Field.custom_metadata");

  let dictionary: DictionaryEncodingInfo | undefined;
  const dictTable = table.table(FIELD_DICTIONARY, "Field.dictionary");
  if (dictTable !== null) dictionary = readDictionaryEncoding(dictTable, path);
  if (dictionary !== undefined) {
    if (state.openDictionaries.includes(dictionary.id)) {
      throw invalidArgument(`${describePath(path)}: dictionary id ${dictionary.id} is nested inside its own values`);
    }
    state.openDictionaries.push(dictionary.id);
  }

  const childVec = table.vector(FIELD_CHILDREN, 4, "Field.children");
  const children: FieldInfo[] = [];
  for (let i = 0, n = childVec === null ? 0 : childVec.length; i < n; i++) {
    children.push(readField((childVec as NonNullable<typeof childVec>).table(i, "Field"), depth + 1, path, state));
  }
  if (dictionary !== undefined) state.openDictionaries.pop();

  checkChildren(type, children, path);

  const field: FieldInfo = { name, nullable, type, children };
  const mutable = field as { dictionary?: DictionaryEncodingInfo; metadata?: ReadonlyMap<string, string>; extensionName?: string };
  if (dictionary !== undefined) mutable.dictionary = dictionary;
  if (metadata !== undefined) {
    mutable.metadata = metadata;
    const ext = metadata.get(EXTENSION_NAME);
    if (ext !== undefined) mutable.extensionName = ext;
  }
  if (dictionary !== undefined) registerDictionary(field, dictionary, path, state);
  return field;
}

function registerDictionary(field: FieldInfo, dictionary: DictionaryEncodingInfo, path: string, state: ParseState): void {
  const valueField: FieldInfo = { ...field, dictionary: undefined };
  delete (valueField as { dictionary?: unknown }).dictionary;
  const existing = state.dictionaries.get(dictionary.id);
  if (existing !== undefined) {
    const diff = describeFieldDifference(existing.valueField, valueField, path, true);
    if (diff !== undefined) {
      throw invalidArgument(`dictionary id ${dictionary.id} is shared by fields with different value types (${diff})`);
    }
    (existing.usedBy as string[]).push(path);
    return;
  }
  const counts = { nodes: 0, buffers: 0, variadic: 0 };
  const nested = new Set<bigint>();
  const layout = layoutOf(valueField, parentOf(path), state.version, counts, nested);
  state.dictionaries.set(dictionary.id, {
    id: dictionary.id,
    valueField,
    indexType: dictionary.indexType,
    isOrdered: dictionary.isOrdered,
    usedBy: [path],
    layout,
    nodeCount: counts.nodes,
    bufferCount: counts.buffers,
    variadicColumns: counts.variadic,
    nestedDictionaryIds: [...nested],
  });
}

function parentOf(path: string): string {
  const dot = path.lastIndexOf(".");
  return dot < 0 ? "" : path.slice(0, dot);
}

function readDictionaryEncoding(t: FbTable, path: string): DictionaryEncodingInfo {
  const id = t.int64(DICT_ID, 0n);
  const kind = t.int16(DICT_KIND, 0);
  if (kind !== 0) throw invalidArgument(`${describePath(path)}: unknown dictionary kind ${kind}`);
  let indexType = { bitWidth: 32, signed: true };
  const idx = t.table(DICT_INDEX_TYPE, "DictionaryEncoding.indexType");
  if (idx !== null) {
    const bitWidth = idx.int32(0, 0);
    if (bitWidth !== 8 && bitWidth !== 16 && bitWidth !== 32 && bitWidth !== 64) {
      throw invalidArgument(`${describePath(path)}: invalid dictionary index bit width ${bitWidth}`);
    }
    indexType = { bitWidth, signed: idx.bool(1, false) };
  }
  return { id, indexType, isOrdered: t.bool(DICT_IS_ORDERED, false) };
}

function timeUnit(value: number, path: string): ArrowUnit {
  const unit = TIME_UNITS[value];
  if (unit === undefined) throw invalidArgument(`${describePath(path)}: unknown time unit ${value}`);
  return unit;
}

function readType(tag: number, t: FbTable, path: string): ArrowTypeInfo {
  switch (tag) {
    case ArrowTypeId.Null:
    case ArrowTypeId.Binary:
    case ArrowTypeId.Utf8:
    case ArrowTypeId.Bool:
    case ArrowTypeId.List:
    case ArrowTypeId.Struct:
    case ArrowTypeId.LargeBinary:
    case ArrowTypeId.LargeUtf8:
    case ArrowTypeId.LargeList:
    case ArrowTypeId.RunEndEncoded:
    case ArrowTypeId.BinaryView:
    case ArrowTypeId.Utf8View:
    case ArrowTypeId.ListView:
    case ArrowTypeId.LargeListView:
      return { typeId: tag };
    case ArrowTypeId.Int: {
      const bitWidth = t.int32(0, 0);
      if (bitWidth !== 8 && bitWidth !== 16 && bitWidth !== 32 && bitWidth !== 64) {
        throw invalidArgument(`${describePath(path)}: invalid integer bit width ${bitWidth}`);
      }
      return { typeId: tag, bitWidth, signed: t.bool(1, false) };
    }
    case ArrowTypeId.FloatingPoint: {
      const precision = t.int16(0, 0);
      if (precision < 0 || precision > 2) throw invalidArgument(`${describePath(path)}: unknown floating point precision ${precision}`);
      return { typeId: tag, bitWidth: 16 << precision };
    }
    case ArrowTypeId.Decimal: {
      const precision = t.int32(0, 0);
      const scale = t.int32(1, 0);
      const bitWidth = t.int32(2, 128);
      const max = DECIMAL_MAX_PRECISION[bitWidth];
      if (max === undefined) throw invalidArgument(`${describePath(path)}: invalid decimal bit width ${bitWidth}`);
      if (precision < 1 || precision > max) {
        throw invalidArgument(`${describePath(path)}: decimal${bitWidth} precision ${precision} is outside 1..${max}`);
      }
      return { typeId: tag, precision, scale, bitWidth };
    }
    case ArrowTypeId.Date: {
      const unit = t.int16(0, 1);
      if (unit !== 0 && unit !== 1) throw invalidArgument(`${describePath(path)}: unknown date unit ${unit}`);
      return { typeId: tag, unit: unit === 0 ? "day" : "millisecond" };
    }
    case ArrowTypeId.Time: {
      const unit = timeUnit(t.int16(0, 1), path);
      const bitWidth = t.int32(1, 32);
      const expected = unit === "second" || unit === "millisecond" ? 32 : 64;
      if (bitWidth !== expected) throw invalidArgument(`${describePath(path)}: time in ${unit}s must be ${expected} bits, not ${bitWidth}`);
      return { typeId: tag, unit, bitWidth };
    }
    case ArrowTypeId.Timestamp: {
      const unit = timeUnit(t.int16(0, 0), path);
      const timezone = t.string(1, "Timestamp.timezone");
      return timezone === null ? { typeId: tag, unit } : { typeId: tag, unit, timezone };
    }
    case ArrowTypeId.Duration:
      return { typeId: tag, unit: timeUnit(t.int16(0, 1), path) };
    case ArrowTypeId.Interval: {
      const value = t.int16(0, 0);
      const unit = INTERVAL_UNITS[value];
      if (unit === undefined) throw invalidArgument(`${describePath(path)}: unknown interval unit ${value}`);
      return { typeId: tag, unit };
    }
    case ArrowTypeId.FixedSizeBinary: {
      const byteWidth = t.int32(0, 0);
      if (byteWidth < 0) throw invalidArgument(`${describePath(path)}: negative fixed-size binary width ${byteWidth}`);
      return { typeId: tag, byteWidth };
    }
    case ArrowTypeId.FixedSizeList: {
      const listSize = t.int32(0, 0);
      if (listSize < 0) throw invalidArgument(`${describePath(path)}: negative fixed-size list size ${listSize}`);
      return { typeId: tag, listSize };
    }
    case ArrowTypeId.Map:
      return { typeId: tag, keysSorted: t.bool(0, false) };
    case ArrowTypeId.Union: {
      const mode = t.int16(0, 0);
      if (mode !== 0 && mode !== 1) throw invalidArgument(`${describePath(path)}: unknown union mode ${mode}`);
      const vec = t.vector(1, 4, "Union.typeIds");
      const info: { typeId: ArrowTypeId; mode: "sparse" | "dense"; typeIds?: number[] } = {
        typeId: tag,
        mode: mode === 0 ? "sparse" : "dense",
      };
      if (vec !== null) {
        const ids: number[] = [];
        for (let i = 0; i < vec.length; i++) {
          const id = vec.int32(i);
          if (id < 0 || id > MAX_UNION_TYPE_CODE) throw invalidArgument(`${describePath(path)}: union type code ${id} is outside 0..127`);
          if (ids.includes(id)) throw invalidArgument(`${describePath(path)}: union type code ${id} appears twice`);
          ids.push(id);
        }
        info.typeIds = ids;
      }
      return info;
    }
    default:
      throw invalidArgument(`${describePath(path)}: unknown type ${tag}`);
  }
}

function checkChildren(type: ArrowTypeInfo, children: readonly FieldInfo[], path: string): void {
  const n = children.length;
  const need = (count: number, what: string): void => {
    if (n !== count) {
      throw invalidArgument(`${describePath(path)}: ${what} must have ${count === 0 ? "no" : `exactly ${count}`} child field${count === 1 ? "" : "s"}, not ${n}`);
    }
  };
  switch (type.typeId) {
    case ArrowTypeId.Struct:
      return;
    case ArrowTypeId.List:
    case ArrowTypeId.LargeList:
    case ArrowTypeId.ListView:
    case ArrowTypeId.LargeListView:
    case ArrowTypeId.FixedSizeList:
      need(1, formatArrowType(type));
      return;
    case ArrowTypeId.Map: {
      need(1, "map");
      const entries = children[0] as FieldInfo;
      if (entries.type.typeId !== ArrowTypeId.Struct || entries.children.length !== 2 || entries.dictionary !== undefined) {
        throw invalidArgument(`${describePath(path)}: map entries must be a struct of key and value`);
      }
      const key = entries.children[0] as FieldInfo;
      if (key.nullable) throw invalidArgument(`${describePath(path)}: map keys must not be nullable`);
      return;
    }
    case ArrowTypeId.Union: {
      if (n > MAX_UNION_TYPE_CODE + 1) throw invalidArgument(`${describePath(path)}: union has ${n} children, more than 128`);
      if (type.typeIds !== undefined && type.typeIds.length !== n) {
        throw invalidArgument(`${describePath(path)}: union has ${type.typeIds.length} type codes for ${n} children`);
      }
      return;
    }
    case ArrowTypeId.RunEndEncoded: {
      need(2, "run-end encoded");
      const runEnds = children[0] as FieldInfo;
      const t = runEnds.type;
      if (t.typeId !== ArrowTypeId.Int || t.signed !== true || t.bitWidth === 8 || runEnds.dictionary !== undefined) {
        throw invalidArgument(`${describePath(path)}: run ends must be int16, int32 or int64`);
      }
      return;
    }
    default:
      need(0, formatArrowType(type));
  }
}

/** Bits per value of a fixed-width type, or 0 when the type is not fixed-width. */
function fixedBitWidth(type: ArrowTypeInfo): number {
  switch (type.typeId) {
    case ArrowTypeId.Bool:
      return 1;
    case ArrowTypeId.Int:
    case ArrowTypeId.FloatingPoint:
    case ArrowTypeId.Decimal:
    case ArrowTypeId.Time:
      return type.bitWidth as number;
    case ArrowTypeId.Date:
      return type.unit === "day" ? 32 : 64;
    case ArrowTypeId.Timestamp:
    case ArrowTypeId.Duration:
      return 64;
    case ArrowTypeId.Interval:
      return type.unit === "year_month" ? 32 : type.unit === "day_time" ? 64 : 128;
    case ArrowTypeId.FixedSizeBinary:
      return 8 * (type.byteWidth as number);
    default:
      return 0;
  }
}

const R = BufferRole;
const ROLES_FIXED = [R.VALIDITY, R.DATA] as const;
const ROLES_VAR_BINARY = [R.VALIDITY, R.OFFSETS, R.BYTES] as const;
const ROLES_VIEW = [R.VALIDITY, R.VIEWS] as const;
const ROLES_LIST = [R.VALIDITY, R.OFFSETS] as const;
const ROLES_LIST_VIEW = [R.VALIDITY, R.OFFSETS, R.SIZES] as const;
const ROLES_VALIDITY = [R.VALIDITY] as const;
const ROLES_NONE = [] as const;
const ROLES_SPARSE_V5 = [R.TYPE_IDS] as const;
const ROLES_DENSE_V5 = [R.TYPE_IDS, R.UNION_OFFSETS] as const;
const ROLES_SPARSE_V4 = [R.VALIDITY, R.TYPE_IDS] as const;
const ROLES_DENSE_V4 = [R.VALIDITY, R.TYPE_IDS, R.UNION_OFFSETS] as const;

interface LayoutCounts {
  nodes: number;
  buffers: number;
  variadic: number;
}

/**
 * The physical layout of `field` in a batch, adding its nodes, buffers and view columns to
 * `counts` and the dictionaries it references to `dictionaryIds`.
 */
function layoutOf(field: FieldInfo, parentPath: string, version: number, counts: LayoutCounts, dictionaryIds: Set<bigint>): ColumnLayout {
  const path = parentPath === "" ? field.name : `${parentPath}.${field.name}`;
  counts.nodes++;
  if (field.dictionary !== undefined) {
    counts.buffers += 2;
    dictionaryIds.add(field.dictionary.id);
    return {
      path,
      kind: LayoutKind.FIXED,
      buffers: ROLES_FIXED,
      bitWidth: field.dictionary.indexType.bitWidth,
      offsetWidth: 0,
      listSize: 0,
      dictionaryId: field.dictionary.id,
      children: [],
    };
  }
  const type = field.type;
  let kind: LayoutKind;
  let buffers: readonly BufferRole[];
  let offsetWidth = 0;
  switch (type.typeId) {
    case ArrowTypeId.Null:
      kind = LayoutKind.NULL;
      buffers = ROLES_NONE;
      break;
    case ArrowTypeId.Binary:
    case ArrowTypeId.Utf8:
    case ArrowTypeId.LargeBinary:
    case ArrowTypeId.LargeUtf8:
      kind = LayoutKind.VAR_BINARY;
      buffers = ROLES_VAR_BINARY;
      offsetWidth = type.typeId === ArrowTypeId.Binary || type.typeId === ArrowTypeId.Utf8 ? 4 : 8;
      break;
    case ArrowTypeId.BinaryView:
    case ArrowTypeId.Utf8View:
      kind = LayoutKind.VIEW;
      buffers = ROLES_VIEW;
      counts.variadic++;
      break;
    case ArrowTypeId.List:
    case ArrowTypeId.Map:
    case ArrowTypeId.LargeList:
      kind = LayoutKind.LIST;
      buffers = ROLES_LIST;
      offsetWidth = type.typeId === ArrowTypeId.LargeList ? 8 : 4;
      break;
    case ArrowTypeId.ListView:
    case ArrowTypeId.LargeListView:
      kind = LayoutKind.LIST_VIEW;
      buffers = ROLES_LIST_VIEW;
      offsetWidth = type.typeId === ArrowTypeId.LargeListView ? 8 : 4;
      break;
    case ArrowTypeId.FixedSizeList:
      kind = LayoutKind.FIXED_SIZE_LIST;
      buffers = ROLES_VALIDITY;
      break;
    case ArrowTypeId.Struct:
      kind = LayoutKind.STRUCT;
      buffers = ROLES_VALIDITY;
      break;
    case ArrowTypeId.Union: {
      const v4 = version < MetadataVersion.V5;
      if (type.mode === "dense") {
        kind = LayoutKind.DENSE_UNION;
        buffers = v4 ? ROLES_DENSE_V4 : ROLES_DENSE_V5;
      } else {
        kind = LayoutKind.SPARSE_UNION;
        buffers = v4 ? ROLES_SPARSE_V4 : ROLES_SPARSE_V5;
      }
      break;
    }
    case ArrowTypeId.RunEndEncoded:
      kind = LayoutKind.RUN_END_ENCODED;
      buffers = ROLES_NONE;
      break;
    default:
      kind = LayoutKind.FIXED;
      buffers = ROLES_FIXED;
  }
  counts.buffers += buffers.length;
  const children = field.children.map((child) => layoutOf(child, path, version, counts, dictionaryIds));
  return {
    path,
    kind,
    buffers,
    bitWidth: fixedBitWidth(type),
    offsetWidth,
    listSize: type.listSize ?? 0,
    children,
  };
}

const UNIT_ABBREVIATION: Readonly<Record<string, string>> = {
  second: "s",
  millisecond: "ms",
  microsecond: "us",
  nanosecond: "ns",
  day: "day",
};

/**
 * A short, unambiguous name for a type without its children, such as `int32`, `uint8`,
 * `float64`, `decimal128(10, 2)`, `timestamp[us, tz=UTC]` or `union[dense; 0,1]`. Two
 * types have the same name exactly when they have the same tag and parameters.
 *
 * @example
 * formatArrowType({ typeId: ArrowTypeId.Int, bitWidth: 16, signed: false }); // "uint16"
 */
export function formatArrowType(type: ArrowTypeInfo): string {
  const unit = type.unit === undefined ? "" : (UNIT_ABBREVIATION[type.unit] ?? type.unit);
  switch (type.typeId) {
    case ArrowTypeId.Null:
      return "null";
    case ArrowTypeId.Int:
      return `${type.signed ? "int" : "uint"}${type.bitWidth}`;
    case ArrowTypeId.FloatingPoint:
      return `float${type.bitWidth}`;
    case ArrowTypeId.Binary:
      return "binary";
    case ArrowTypeId.Utf8:
      return "utf8";
    case ArrowTypeId.Bool:
      return "bool";
    case ArrowTypeId.Decimal:
      return `decimal${type.bitWidth}(${type.precision}, ${type.scale})`;
    case ArrowTypeId.Date:
      return type.unit === "day" ? "date32[day]" : "date64[ms]";
    case ArrowTypeId.Time:
      return `time${type.bitWidth}[${unit}]`;
    case ArrowTypeId.Timestamp:
      return type.timezone === undefined ? `timestamp[${unit}]` : `timestamp[${unit}, tz=${type.timezone}]`;
    case ArrowTypeId.Interval:
      return `interval[${type.unit}]`;
    case ArrowTypeId.List:
      return "list";
    case ArrowTypeId.Struct:
      return "struct";
    case ArrowTypeId.Union:
      return `union[${type.mode}${type.typeIds === undefined ? "" : `; ${type.typeIds.join(",")}`}]`;
    case ArrowTypeId.FixedSizeBinary:
      return `fixed_size_binary[${type.byteWidth}]`;
    case ArrowTypeId.FixedSizeList:
      return `fixed_size_list[${type.listSize}]`;
    case ArrowTypeId.Map:
      return type.keysSorted ? "map[keys_sorted]" : "map";
    case ArrowTypeId.Duration:
      return `duration[${unit}]`;
    case ArrowTypeId.LargeBinary:
      return "large_binary";
    case ArrowTypeId.LargeUtf8:
      return "large_utf8";
    case ArrowTypeId.LargeList:
      return "large_list";
    case ArrowTypeId.RunEndEncoded:
      return "run_end_encoded";
    case ArrowTypeId.BinaryView:
      return "binary_view";
    case ArrowTypeId.Utf8View:
      return "utf8_view";
    case ArrowTypeId.ListView:
      return "list_view";
    case ArrowTypeId.LargeListView:
      return "large_list_view";
    default:
      return `type ${String(type.typeId)}`;
  }
}

function formatField(field: FieldInfo): string {
  let s = formatArrowType(field.type);
  if (field.extensionName !== undefined) s = `extension<${field.extensionName}>(${s})`;
  if (field.dictionary !== undefined) {
    const d = field.dictionary;
    s = `dictionary<id=${d.id}, ${d.indexType.signed ? "int" : "uint"}${d.indexType.bitWidth}${d.isOrdered ? ", ordered" : ""}>(${s})`;
  }
  return s;
}

function describeFieldDifference(a: FieldInfo, b: FieldInfo, path: string, ignoreName: boolean): string | undefined {
  if (!ignoreName && a.name !== b.name) return `${describePath(path)}: name ${JSON.stringify(a.name)} vs ${JSON.stringify(b.name)}`;
  const at = formatField(a);
  const bt = formatField(b);
  if (at !== bt) return `${describePath(path)}: ${at} vs ${bt}`;
  if (a.nullable !== b.nullable) {
    return `${describePath(path)}: ${a.nullable ? "nullable" : "non-nullable"} vs ${b.nullable ? "nullable" : "non-nullable"}`;
  }
  if (a.metadata?.get(EXTENSION_METADATA) !== b.metadata?.get(EXTENSION_METADATA)) {
    return `${describePath(path)}: different extension type metadata`;
  }
  if (a.children.length !== b.children.length) {
    return `${describePath(path)}: ${a.children.length} vs ${b.children.length} child fields`;
  }
  for (let i = 0; i < a.children.length; i++) {
    const ac = a.children[i] as FieldInfo;
    const bc = b.children[i] as FieldInfo;
    const diff = describeFieldDifference(ac, bc, `${path}.${ac.name}`, false);
    if (diff !== undefined) return diff;
  }
  return undefined;
}

/**
 * Compares two schemas structurally and names the first difference, or returns undefined when
 * a batch of one could be read with the other. Compared, in field order and recursively:
 * field count, names, types with all their parameters, nullability, dictionary encoding
 * (id, index type, ordering — ids matter because stored batches refer to dictionaries by id)
 * and extension type (`ARROW:extension:name` and `ARROW:extension:metadata`) and endianness.
 * Ignored: other custom metadata at schema and field level, which carries no structure, and
 * the metadata version.
 *
 * @example
 * const diff = describeSchemaDifference(stored, incoming);
 * if (diff) throw invalidArgument(`schema does not match the stored flight: ${diff}`);
 */
export function describeSchemaDifference(a: SchemaInfo, b: SchemaInfo): string | undefined {
  if (a.endianness !== b.endianness) return `endianness ${a.endianness} vs ${b.endianness}`;
  if (a.fields.length !== b.fields.length) return `field count ${a.fields.length} vs ${b.fields.length}`;
  for (let i = 0; i < a.fields.length; i++) {
    const af = a.fields[i] as FieldInfo;
    const bf = b.fields[i] as FieldInfo;
    if (af.name !== bf.name) return `field ${i}: name ${JSON.stringify(af.name)} vs ${JSON.stringify(bf.name)}`;
    const diff = describeFieldDifference(af, bf, af.name, true);
    if (diff !== undefined) return diff;
  }
  return undefined;
}
