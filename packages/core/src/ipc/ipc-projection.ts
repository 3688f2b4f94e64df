import { Builder } from "flatbuffers";
import { ByteChunks, bytesFromChunks, chunkAt, chunksOf, type Bytes } from "../byte-chunks";
import { FlightError, invalidArgument } from "../flight-error";
import { StatusCode } from "../status-code";
import { FlatBufferReader, type FbTable } from "./flatbuffer-reader";
import { MessageKind } from "./ipc-message";
import { parseMessageHeader, readKeyValues, type RecordBatchView } from "./message-header";
import { ArrowTypeId, LayoutKind, type ColumnLayout, type FieldInfo, type SchemaInfo } from "./arrow-schema";
import { readSchema } from "./schema-info";

// Projection works on the IPC messages as stored: it reads flatbuffer headers with the
// bounds-checked reader of this folder, writes new headers with Google's `flatbuffers`
// Builder, and serves each selected buffer as a view of the original body. No Arrow value is
// decoded and no data buffer is copied: the only new bytes are the headers and the zero
// padding that keeps every buffer 8-byte aligned in the new body.

/** Most columns a projection may select (a bound on the work and on ticket sizes). */
export const MAX_PROJECTED_COLUMNS = 4096;

/** One IPC message as header and body. */
export interface IpcMessageParts {
  readonly header: Uint8Array;
  readonly body: Bytes;
}

/**
 * A projection of one IPC stream onto some of its top-level columns, made by
 * {@link projectIpcSchema}. `schemaHeader` replaces the stream's schema message;
 * {@link IpcProjection.project} rewrites each following message.
 */
export interface IpcProjection {
  /** The selected top-level fields, in the order asked for. */
  readonly fields: readonly FieldInfo[];
  /** Index of each selected field in the original schema. */
  readonly indices: readonly number[];
  /** The new schema message's flatbuffer header (its body is empty). */
  readonly schemaHeader: Uint8Array;
  /** Dictionary ids still needed (those of the selected columns and the dictionaries they nest). */
  readonly dictionaryIds: ReadonlySet<bigint>;
  /**
   * The message to send for `message`: a record batch rewritten onto the selected columns
   * (new header; body made of views of the original body's buffers and zero padding), a
   * dictionary batch of a selected column unchanged, or null for a dictionary batch no
   * selected column uses.
   *
   * @throws FlightError INVALID_ARGUMENT for a malformed header, DATA_LOSS for a batch that does
   * not match the schema (stored data is validated when it is put, so this means corruption).
   */
  project(message: IpcMessageParts): IpcMessageParts | null;
}

/** Per top-level column: how many nodes, fixed buffers and view columns its subtree has. */
interface ColumnShape {
  readonly nodes: number;
  readonly buffers: number;
  readonly views: number;
}

function shapeOf(layout: ColumnLayout): ColumnShape {
  let nodes = 1;
  let buffers = layout.buffers.length;
  let views = layout.kind === LayoutKind.VIEW ? 1 : 0;
  for (const child of layout.children) {
    const s = shapeOf(child);
    nodes += s.nodes;
    buffers += s.buffers;
    views += s.views;
  }
  return { nodes, buffers, views };
}

function collectDictionaryIds(layout: ColumnLayout, schema: SchemaInfo, into: Set<bigint>): void {
  if (layout.dictionaryId !== undefined && !into.has(layout.dictionaryId)) {
    into.add(layout.dictionaryId);
    const dict = schema.dictionaries.get(layout.dictionaryId);
    if (dict !== undefined) collectDictionaryIds(dict.layout, schema, into);
  }
  for (const child of layout.children) collectDictionaryIds(child, schema, into);
}

/**
 * Plans the projection of an IPC stream, given its schema message header, onto the top-level
 * columns named in `columns` (in that order). Names must be distinct, name exactly one field
 * of the schema each, and there must be 1 to {@link MAX_PROJECTED_COLUMNS} of them.
 *
 * Every type the IPC format has is supported, since nothing is decoded: a column is its field
 * nodes and buffers (variadic buffers of view columns included), found from the schema's
 * layout. Dictionaries follow their columns: {@link IpcProjection.project} keeps the
 * dictionary batches of selected dictionary-encoded columns (and of dictionaries nested in
 * their values) and drops the others. Compressed bodies work as they are, because each buffer
 * is compressed on its own: the compression field is kept.
 *
 * @throws FlightError INVALID_ARGUMENT naming the column for an unknown, ambiguous or repeated
 * name, and for a malformed schema header.
 *
 * @example
 * const projection = projectIpcSchema(schemaMessage.header, ["ts", "cpu"]);
 * send({ header: projection.schemaHeader, body: new Uint8Array(0) });
 * for (const m of messages) {
 *   const out = projection.project(m);
 *   if (out !== null) send(out);
 * }
 */
export function projectIpcSchema(schemaHeader: Uint8Array, columns: readonly string[]): IpcProjection {
  const parsed = parseMessageHeader(schemaHeader);
  if (parsed.info.kind !== MessageKind.SCHEMA || parsed.schema === undefined) throw invalidArgument("expected a schema message");
  const schema = readSchema(schemaHeader);
  if (!Array.isArray(columns) || columns.length === 0) throw invalidArgument("a projection needs at least one column");
  if (columns.length > MAX_PROJECTED_COLUMNS) {
    throw invalidArgument(`a projection may select at most ${MAX_PROJECTED_COLUMNS} columns, not ${columns.length}`);
  }
  const byName = new Map<string, number[]>();
  schema.fields.forEach((f, i) => {
    const list = byName.get(f.name);
    if (list === undefined) byName.set(f.name, [i]);
    else list.push(i);
  });
  // Names come from clients: echo at most 128 characters of one.
  const show = (name: string): string => JSON.stringify(name.length > 128 ? `${name.slice(0, 125)}...` : name);
  const indices: number[] = [];
  const seen = new Set<string>();
  for (const name of columns) {
    if (typeof name !== "string") throw invalidArgument("column names must be strings");
    if (seen.has(name)) throw invalidArgument(`column ${show(name)} is selected twice`);
    seen.add(name);
    const found = byName.get(name);
    if (found === undefined) {
      throw invalidArgument(`no column ${show(name)} in the flight; its columns are ${describeNames(schema.fields.map((f) => f.name))}`);
    }
    if (found.length > 1) throw invalidArgument(`column name ${show(name)} is ambiguous: the schema has ${found.length} columns of that name`);
    indices.push(found[0]!);
  }
  const fields = indices.map((i) => schema.fields[i]!);
  const dictionaryIds = new Set<bigint>();
  for (const i of indices) collectDictionaryIds(schema.columns[i]!, schema, dictionaryIds);
  const shapes = schema.columns.map(shapeOf);
  const newSchemaHeader = buildSchemaMessage(schema, fields, readFeatures(parsed.schema), readMessageMetadata(schemaHeader));
  return new Projection(schema, shapes, indices, fields, newSchemaHeader, dictionaryIds);
}

function describeNames(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => JSON.stringify(n.length > 64 ? `${n.slice(0, 61)}...` : n));
  return shown.join(", ") + (names.length > 20 ? `, ... (${names.length} in all)` : "");
}

const ZEROS = new Uint8Array(8);
const dataLoss = (msg: string): FlightError => new FlightError(StatusCode.DATA_LOSS, msg);

class Projection implements IpcProjection {
  constructor(
    private readonly schema: SchemaInfo,
    private readonly shapes: readonly ColumnShape[],
    readonly indices: readonly number[],
    readonly fields: readonly FieldInfo[],
    readonly schemaHeader: Uint8Array,
    readonly dictionaryIds: ReadonlySet<bigint>,
  ) {}

  project(message: IpcMessageParts): IpcMessageParts | null {
    const { info, batch } = parseMessageHeader(message.header, message.body);
    if (info.kind === MessageKind.DICTIONARY_BATCH) {
      return this.dictionaryIds.has(info.dictionaryId!) ? message : null;
    }
    if (info.kind !== MessageKind.RECORD_BATCH || batch === undefined) throw invalidArgument("a stream has one schema message, first");
    return this.projectBatch(batch, info.version, message);
  }

  private projectBatch(batch: RecordBatchView, version: number, message: IpcMessageParts): IpcMessageParts {
    const { schema, shapes } = this;
    const counts = batch.variadicBufferCounts;
    if (batch.nodeCount !== schema.nodeCount || counts.length !== schema.variadicColumns) {
      throw dataLoss(`stored record batch has ${batch.nodeCount} field nodes and ${counts.length} view columns; its schema says ${schema.nodeCount} and ${schema.variadicColumns}`);
    }
    // Where each top-level column's nodes, buffers and variadic counts start in the batch.
    const n = shapes.length;
    const nodeStart = new Array<number>(n);
    const bufferStart = new Array<number>(n);
    const bufferCount = new Array<number>(n);
    const viewStart = new Array<number>(n);
    let node = 0;
    let buffer = 0;
    let view = 0;
    for (let c = 0; c < n; c++) {
      const s = shapes[c]!;
      nodeStart[c] = node;
      bufferStart[c] = buffer;
      viewStart[c] = view;
      let buffers = s.buffers;
      for (let v = view; v < view + s.views; v++) buffers += counts[v]!;
      bufferCount[c] = buffers;
      node += s.nodes;
      buffer += buffers;
      view += s.views;
    }
    if (buffer !== batch.bufferCount) {
      throw dataLoss(`stored record batch has ${batch.bufferCount} buffers; its schema and variadic counts say ${buffer}`);
    }

    const nodes: number[] = [];
    const buffers: number[] = [];
    const variadic: number[] = [];
    const chunks = chunksOf(message.body);
    const starts: number[] = [];
    let pos = 0;
    for (const ch of chunks) {
      starts.push(pos);
      pos += ch.byteLength;
    }
    const pieces: Uint8Array[] = [];
    let cursor = 0;
    for (const c of this.indices) {
      for (let i = nodeStart[c]!, end = i + shapes[c]!.nodes; i < end; i++) nodes.push(batch.nodeLength(i), batch.nodeNullCount(i));
      for (let i = bufferStart[c]!, end = i + bufferCount[c]!; i < end; i++) {
        const offset = batch.bufferOffset(i);
        const length = batch.bufferLength(i);
        buffers.push(cursor, length);
        if (length > 0) sliceInto(chunks, starts, offset, length, pieces);
        cursor += length;
        const pad = (8 - (cursor % 8)) % 8;
        if (pad > 0) pieces.push(ZEROS.subarray(0, pad));
        cursor += pad;
      }
      for (let v = viewStart[c]!, end = v + shapes[c]!.views; v < end; v++) variadic.push(counts[v]!);
    }
    const header = buildRecordBatchMessage(version, batch.length, nodes, buffers, batch.compression, variadic, cursor, readMessageMetadata(message.header));
    return { header, body: pieces.length === 0 ? new Uint8Array(0) : bytesFromChunks(pieces) };
  }
}

/** Pushes views of bytes [offset, offset + length) of the chunked body onto `out` (no copy). */
function sliceInto(chunks: readonly Uint8Array[], starts: readonly number[], offset: number, length: number, out: Uint8Array[]): void {
  let c = chunkAt(starts, offset);
  let from = offset - starts[c]!;
  let left = length;
  while (left > 0) {
    const chunk = chunks[c]!;
    const take = Math.min(left, chunk.byteLength - from);
    out.push(chunk.subarray(from, from + take));
    left -= take;
    c++;
    from = 0;
  }
}

// ---- reading the parts the summaries do not keep ----

const MESSAGE_CUSTOM_METADATA = 4;
const SCHEMA_FEATURES = 3;

function readMessageMetadata(header: Uint8Array): Map<string, string> | undefined {
  const root = new FlatBufferReader(header, "invalid IPC message header").root("Message");
  return root.has(MESSAGE_CUSTOM_METADATA) ? readKeyValues(root, MESSAGE_CUSTOM_METADATA, "Message.custom_metadata") : undefined;
}

function readFeatures(schema: FbTable): bigint[] {
  const vec = schema.vector(SCHEMA_FEATURES, 8, "Schema.features");
  const out: bigint[] = [];
  for (let i = 0, n = vec === null ? 0 : vec.length; i < n; i++) out.push(vec!.int64(i));
  return out;
}

// ---- writing headers (Message.fbs, Schema.fbs) ----

const HEADER_SCHEMA = 1;
const HEADER_RECORD_BATCH = 3;
const TIME_UNIT: Readonly<Record<string, number>> = { second: 0, millisecond: 1, microsecond: 2, nanosecond: 3 };
const INTERVAL_UNIT: Readonly<Record<string, number>> = { year_month: 0, day_time: 1, month_day_nano: 2 };
const FLOAT_PRECISION: Readonly<Record<number, number>> = { 16: 0, 32: 1, 64: 2 };

function newBuilder(): Builder {
  const b = new Builder(1024);
  // Every field is written, defaults included: readers then never depend on a schema default.
  b.forceDefaults(true);
  return b;
}

function keyValues(b: Builder, map: ReadonlyMap<string, string> | undefined): number {
  if (map === undefined) return 0;
  const offsets: number[] = [];
  for (const [k, v] of map) {
    const key = b.createString(k);
    const value = b.createString(v);
    b.startObject(2);
    b.addFieldOffset(0, key, 0);
    b.addFieldOffset(1, value, 0);
    offsets.push(b.endObject());
  }
  return offsetVector(b, offsets);
}

function offsetVector(b: Builder, offsets: readonly number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
  return b.endVector();
}

function int64Vector(b: Builder, values: readonly (number | bigint)[]): number {
  b.startVector(8, values.length, 8);
  for (let i = values.length - 1; i >= 0; i--) b.addInt64(BigInt(values[i]!));
  return b.endVector();
}

/** A vector of structs of two int64s (FieldNode, Buffer), from a flat list of pairs. */
function pairVector(b: Builder, flat: readonly number[]): number {
  const count = flat.length / 2;
  b.startVector(16, count, 8);
  for (let i = count - 1; i >= 0; i--) {
    b.prep(8, 16);
    // Builders write back to front, so a struct's last member goes first.
    b.writeInt64(BigInt(flat[2 * i + 1]!));
    b.writeInt64(BigInt(flat[2 * i]!));
  }
  return b.endVector();
}

function finishMessage(b: Builder, version: number, headerType: number, header: number, bodyLength: number, metadata: ReadonlyMap<string, string> | undefined): Uint8Array {
  const meta = keyValues(b, metadata);
  b.startObject(5);
  b.addFieldInt64(3, BigInt(bodyLength), 0n);
  if (meta !== 0) b.addFieldOffset(4, meta, 0);
  b.addFieldOffset(2, header, 0);
  b.addFieldInt16(0, version, 0);
  b.addFieldInt8(1, headerType, 0);
  b.finish(b.endObject());
  // asUint8Array is a view into the builder's buffer; the builder is not reused, so no copy.
  return b.asUint8Array();
}

function buildRecordBatchMessage(
  version: number,
  length: number,
  nodes: readonly number[],
  buffers: readonly number[],
  compression: number,
  variadic: readonly number[],
  bodyLength: number,
  metadata: ReadonlyMap<string, string> | undefined,
): Uint8Array {
  const b = newBuilder();
  const nodeVec = pairVector(b, nodes);
  const bufferVec = pairVector(b, buffers);
  const variadicVec = variadic.length > 0 ? int64Vector(b, variadic) : 0;
  let comp = 0;
  if (compression >= 0) {
    b.startObject(2);
    b.addFieldInt8(0, compression, 0);
    b.addFieldInt8(1, 0, 0); // BodyCompressionMethod.BUFFER, the only one
    comp = b.endObject();
  }
  b.startObject(5);
  b.addFieldInt64(0, BigInt(length), 0n);
  b.addFieldOffset(1, nodeVec, 0);
  b.addFieldOffset(2, bufferVec, 0);
  if (comp !== 0) b.addFieldOffset(3, comp, 0);
  if (variadicVec !== 0) b.addFieldOffset(4, variadicVec, 0);
  return finishMessage(b, version, HEADER_RECORD_BATCH, b.endObject(), bodyLength, metadata);
}

function buildSchemaMessage(schema: SchemaInfo, fields: readonly FieldInfo[], features: readonly bigint[], metadata: ReadonlyMap<string, string> | undefined): Uint8Array {
  const b = newBuilder();
  const fieldVec = offsetVector(b, fields.map((f) => buildField(b, f)));
  const meta = keyValues(b, schema.metadata);
  const featureVec = features.length > 0 ? int64Vector(b, features) : 0;
  b.startObject(4);
  b.addFieldInt16(0, schema.endianness === "little" ? 0 : 1, 0);
  b.addFieldOffset(1, fieldVec, 0);
  if (meta !== 0) b.addFieldOffset(2, meta, 0);
  if (featureVec !== 0) b.addFieldOffset(3, featureVec, 0);
  return finishMessage(b, schema.version, HEADER_SCHEMA, b.endObject(), 0, metadata);
}

function buildField(b: Builder, field: FieldInfo): number {
  const name = b.createString(field.name);
  const type = buildType(b, field);
  const children = offsetVector(b, field.children.map((c) => buildField(b, c)));
  const meta = keyValues(b, field.metadata);
  let dict = 0;
  if (field.dictionary !== undefined) {
    b.startObject(2);
    b.addFieldInt32(0, field.dictionary.indexType.bitWidth, 0);
    b.addFieldInt8(1, field.dictionary.indexType.signed ? 1 : 0, 0);
    const indexType = b.endObject();
    b.startObject(4);
    b.addFieldInt64(0, field.dictionary.id, 0n);
    b.addFieldOffset(1, indexType, 0);
    b.addFieldInt8(2, field.dictionary.isOrdered ? 1 : 0, 0);
    b.addFieldInt16(3, 0, 0); // DictionaryKind.DenseArray, the only one
    dict = b.endObject();
  }
  b.startObject(7);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(3, type, 0);
  if (dict !== 0) b.addFieldOffset(4, dict, 0);
  b.addFieldOffset(5, children, 0);
  if (meta !== 0) b.addFieldOffset(6, meta, 0);
  b.addFieldInt8(1, field.nullable ? 1 : 0, 0);
  b.addFieldInt8(2, field.type.typeId, 0);
  return b.endObject();
}

/** The `Type` union value of a field, from the parameters `readSchema` read (all of them). */
function buildType(b: Builder, field: FieldInfo): number {
  const t = field.type;
  switch (t.typeId) {
    case ArrowTypeId.Int:
      b.startObject(2);
      b.addFieldInt32(0, t.bitWidth!, 0);
      b.addFieldInt8(1, t.signed ? 1 : 0, 0);
      return b.endObject();
    case ArrowTypeId.FloatingPoint:
      b.startObject(1);
      b.addFieldInt16(0, FLOAT_PRECISION[t.bitWidth!]!, 0);
      return b.endObject();
    case ArrowTypeId.Decimal:
      b.startObject(3);
      b.addFieldInt32(0, t.precision!, 0);
      b.addFieldInt32(1, t.scale!, 0);
      b.addFieldInt32(2, t.bitWidth!, 0);
      return b.endObject();
    case ArrowTypeId.Date:
      b.startObject(1);
      b.addFieldInt16(0, t.unit === "day" ? 0 : 1, 0);
      return b.endObject();
    case ArrowTypeId.Time:
      b.startObject(2);
      b.addFieldInt16(0, TIME_UNIT[t.unit!]!, 0);
      b.addFieldInt32(1, t.bitWidth!, 0);
      return b.endObject();
    case ArrowTypeId.Timestamp: {
      const tz = t.timezone === undefined ? 0 : b.createString(t.timezone);
      b.startObject(2);
      b.addFieldInt16(0, TIME_UNIT[t.unit!]!, 0);
      if (tz !== 0) b.addFieldOffset(1, tz, 0);
      return b.endObject();
    }
    case ArrowTypeId.Duration:
      b.startObject(1);
      b.addFieldInt16(0, TIME_UNIT[t.unit!]!, 0);
      return b.endObject();
    case ArrowTypeId.Interval:
      b.startObject(1);
      b.addFieldInt16(0, INTERVAL_UNIT[t.unit!]!, 0);
      return b.endObject();
    case ArrowTypeId.FixedSizeBinary:
      b.startObject(1);
      b.addFieldInt32(0, t.byteWidth!, 0);
      return b.endObject();
    case ArrowTypeId.FixedSizeList:
      b.startObject(1);
      b.addFieldInt32(0, t.listSize!, 0);
      return b.endObject();
    case ArrowTypeId.Map:
      b.startObject(1);
      b.addFieldInt8(0, t.keysSorted ? 1 : 0, 0);
      return b.endObject();
    case ArrowTypeId.Union: {
      let ids = 0;
      if (t.typeIds !== undefined) {
        b.startVector(4, t.typeIds.length, 4);
        for (let i = t.typeIds.length - 1; i >= 0; i--) b.addInt32(t.typeIds[i]!);
        ids = b.endVector();
      }
      b.startObject(2);
      b.addFieldInt16(0, t.mode === "dense" ? 1 : 0, 0);
      if (ids !== 0) b.addFieldOffset(1, ids, 0);
      return b.endObject();
    }
    default:
      // Null, Binary, Utf8, Bool, List, Struct_, LargeBinary, LargeUtf8, LargeList,
      // RunEndEncoded, BinaryView, Utf8View, ListView, LargeListView: tables with no fields.
      b.startObject(0);
      return b.endObject();
  }
}

/** @internal for tests: whether a body is made only of views into `original`'s buffers and padding. */
export function isSlicedFrom(body: Bytes, original: Bytes): boolean {
  const backing = new Set(chunksOf(original).map((c) => c.buffer));
  const parts = body instanceof ByteChunks ? body.chunks : [body];
  return parts.every((p) => p.byteLength === 0 || p.buffer === ZEROS.buffer || backing.has(p.buffer));
}
