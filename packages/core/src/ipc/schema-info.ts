import { invalidArgument } from "../flight-error";
import type { FbTable } from "./flatbuffer-reader";
import { MessageKind } from "./ipc-message";
import { parseMessageHeader, readKeyValues } from "./message-header";
import {
  ArrowTypeId,
  EXTENSION_NAME,
  MAX_NESTING_DEPTH,
  describePath,
  type ArrowTypeInfo,
  type ArrowUnit,
  type ColumnLayout,
  type DictionaryEncodingInfo,
  type DictionaryInfo,
  type FieldInfo,
  type SchemaInfo,
} from "./arrow-schema";
import { formatArrowType } from "./arrow-type-format";
import { layoutOf } from "./column-layout";
import { describeFieldDifference } from "./schema-difference";

// Reads a Schema message into a SchemaInfo (arrow-schema.ts): fields, types, dictionaries,
// and the record batch layout they imply.

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
