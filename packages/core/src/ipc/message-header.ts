import { invalidArgument, resourceExhausted } from "../flight-error";
import { FbTable, FbVector, FlatBufferReader } from "./flatbuffer-reader";
import { MessageKind, type MessageHeaderInfo } from "./ipc-message";
import type { Bytes } from "../byte-chunks";
import { ByteCursor } from "./byte-cursor";

/** Arrow `MetadataVersion` values. Only V4 and V5 are accepted. */
export const MetadataVersion = { V1: 0, V2: 1, V3: 2, V4: 3, V5: 4 } as const;

/** Arrow `CompressionType` values (the codec of a compressed record batch body). */
export const CompressionCodec = { LZ4_FRAME: 0, ZSTD: 1 } as const;

// Slots of the flatbuffer tables read here (Message.fbs). A union takes two slots.
const MESSAGE_VERSION = 0;
const MESSAGE_HEADER = 1; // header_type at 1, header at 2
const MESSAGE_BODY_LENGTH = 3;
const MESSAGE_CUSTOM_METADATA = 4;
const BATCH_LENGTH = 0;
const BATCH_NODES = 1;
const BATCH_BUFFERS = 2;
const BATCH_COMPRESSION = 3;
const BATCH_VARIADIC_COUNTS = 4;
const DICT_ID = 0;
const DICT_DATA = 1;
const DICT_IS_DELTA = 2;
const COMPRESSION_CODEC = 0;
const COMPRESSION_METHOD = 1;
const KEY_VALUE_KEY = 0;
const KEY_VALUE_VALUE = 1;

const HEADER_LABEL = "invalid IPC message header";

/**
 * The record batch part of a message header (a RecordBatch message, or the `data` of a
 * DictionaryBatch), validated against the body length: node lengths and null counts are sane
 * and every buffer lies inside the body. Nodes and buffers stay in the header bytes and are
 * read on demand, so holding one costs no allocation proportional to the batch.
 */
export class RecordBatchView {
  private readonly view: DataView;
  private readonly nodesStart: number;
  private readonly buffersStart: number;
  /** Number of `FieldNode`s. */
  readonly nodeCount: number;
  /** Number of `Buffer`s. */
  readonly bufferCount: number;

  /** @internal */
  constructor(
    reader: FlatBufferReader,
    /** Row count (`RecordBatch.length`). */
    readonly length: number,
    nodes: FbVector | null,
    buffers: FbVector | null,
    /** The compression codec ({@link CompressionCodec}), or -1 when the body is not compressed. */
    readonly compression: number,
    /** `variadicBufferCounts`: for each view-typed column in order, its number of data buffers. */
    readonly variadicBufferCounts: readonly number[],
  ) {
    // Both vectors were bounds-checked as a whole when found; with their start 8-byte aligned,
    // every element read below is in range and aligned, so reads skip the per-read checks.
    this.view = reader.view;
    this.nodesStart = nodes === null ? 0 : nodes.start;
    this.nodeCount = nodes === null ? 0 : nodes.length;
    this.buffersStart = buffers === null ? 0 : buffers.start;
    this.bufferCount = buffers === null ? 0 : buffers.length;
    if ((this.nodeCount > 0 && this.nodesStart % 8 !== 0) || (this.bufferCount > 0 && this.buffersStart % 8 !== 0)) {
      reader.fail("RecordBatch nodes or buffers are not 8-byte aligned");
    }
  }

  /** Value count of node `i`. */
  nodeLength(i: number): number {
    return this.int64(this.nodesStart, this.nodeCount, i, 0, "field node length");
  }
  /** Null count of node `i`. */
  nodeNullCount(i: number): number {
    return this.int64(this.nodesStart, this.nodeCount, i, 8, "field node null count");
  }
  /** Offset of buffer `i` in the body. */
  bufferOffset(i: number): number {
    return this.int64(this.buffersStart, this.bufferCount, i, 0, "buffer offset");
  }
  /** Length of buffer `i` in bytes. */
  bufferLength(i: number): number {
    return this.int64(this.buffersStart, this.bufferCount, i, 8, "buffer length");
  }
  /** Byte position of the nodes vector's first element in the header (for tools and tests). */
  get nodesPosition(): number {
    return this.nodeCount === 0 ? -1 : this.nodesStart;
  }
  /** Byte position of the buffers vector's first element in the header (for tools and tests). */
  get buffersPosition(): number {
    return this.bufferCount === 0 ? -1 : this.buffersStart;
  }

  private int64(start: number, count: number, i: number, member: number, what: string): number {
    if (!(i >= 0 && i < count)) throw invalidArgument(`${what} index ${i} out of range`);
    const pos = start + 16 * i + member;
    const value = this.view.getInt32(pos + 4, true) * 4294967296 + this.view.getUint32(pos, true);
    if (!Number.isSafeInteger(value)) throw invalidArgument(`${HEADER_LABEL}: ${what} ${i} is out of the safe integer range`);
    return value;
  }
}

/**
 * A message header read by {@link parseMessageHeader}: the summary plus, for batches, the
 * validated record batch and, for schemas, the schema table (for `readSchema`).
 */
export interface ParsedMessageHeader {
  /** What `readMessageHeader` returns. */
  readonly info: MessageHeaderInfo;
  /** The record batch of a RecordBatch or DictionaryBatch message. */
  readonly batch?: RecordBatchView;
  /** The `Schema` table of a schema message. */
  readonly schema?: FbTable;
}

/**
 * Reads and validates an Arrow IPC `Message` header, returning the details the validator
 * needs as well as the {@link MessageHeaderInfo}. See {@link readMessageHeader} for the rules.
 *
 * @example
 * const { info, batch } = parseMessageHeader(header, body);
 * if (batch) console.log(info.rows, batch.bufferCount);
 */
export function parseMessageHeader(header: Uint8Array, body?: Bytes | number): ParsedMessageHeader {
  const fb = new FlatBufferReader(header, HEADER_LABEL);
  const message = fb.root("Message");

  const version = message.int16(MESSAGE_VERSION, MetadataVersion.V1);
  if (version !== MetadataVersion.V4 && version !== MetadataVersion.V5) {
    if (version >= MetadataVersion.V1 && version < MetadataVersion.V4) {
      throw invalidArgument(`unsupported IPC metadata version V${version + 1} (only V4 and V5 are accepted)`);
    }
    throw invalidArgument(`unknown IPC metadata version ${version}`);
  }

  const bodyLength = message.int64Number(MESSAGE_BODY_LENGTH, 0, "Message.bodyLength");
  if (bodyLength < 0) throw invalidArgument(`negative message body length ${bodyLength}`);
  if (body !== undefined) {
    const actual = typeof body === "number" ? body : body.byteLength;
    if (actual !== bodyLength) {
      throw invalidArgument(`message declares a ${bodyLength}-byte body but ${actual} bytes were given`);
    }
  }

  checkKeyValues(message, MESSAGE_CUSTOM_METADATA, "Message.custom_metadata");

  const { type, table } = message.union(MESSAGE_HEADER, "Message.header");
  switch (type) {
    case MessageKind.SCHEMA: {
      if (bodyLength !== 0) throw invalidArgument(`schema message declares a ${bodyLength}-byte body; schemas have none`);
      return { info: { kind: MessageKind.SCHEMA, version, bodyLength, rows: 0 }, schema: table as FbTable };
    }
    case MessageKind.RECORD_BATCH: {
      const batch = readRecordBatch(table as FbTable, bodyLength);
      const info: MessageHeaderInfo = { kind: MessageKind.RECORD_BATCH, version, bodyLength, rows: batch.length };
      if (batch.compression >= 0) info.compression = codecName(batch.compression);
      return { info, batch };
    }
    case MessageKind.DICTIONARY_BATCH: {
      const dict = table as FbTable;
      const dictionaryId = dict.int64(DICT_ID, 0n);
      const data = dict.table(DICT_DATA, "DictionaryBatch.data");
      if (data === null) throw invalidArgument(`dictionary batch for id ${dictionaryId} has no data`);
      const batch = readRecordBatch(data, bodyLength);
      const info: MessageHeaderInfo = {
        kind: MessageKind.DICTIONARY_BATCH,
        version,
        bodyLength,
        rows: batch.length,
        dictionaryId,
        isDelta: dict.bool(DICT_IS_DELTA, false),
      };
      if (batch.compression >= 0) info.compression = codecName(batch.compression);
      return { info, batch };
    }
    case 0:
      throw invalidArgument("IPC message has no header");
    case 4:
      throw invalidArgument("unsupported message type Tensor");
    case 5:
      throw invalidArgument("unsupported message type SparseTensor");
    default:
      throw invalidArgument(`unsupported message type ${type}`);
  }
}

/**
 * Reads the Arrow IPC `Message` flatbuffer in `header` and validates it, without decoding any
 * data. Accepts Schema, DictionaryBatch and RecordBatch messages of metadata version V4 or V5.
 * Checks that `bodyLength` is a non-negative safe integer equal to the body's length (when the
 * body or its length is given; a schema must have none), and, for batches, that the row count
 * is non-negative, every field node has `0 <= null_count <= length`, every buffer lies inside
 * the body, the compression codec is LZ4_FRAME or ZSTD, and the variadic buffer counts are
 * non-negative and add up to no more than the buffers present. Everything else throws a
 * {@link FlightError} with code INVALID_ARGUMENT.
 *
 * @param header the flatbuffer bytes (trailing padding is fine)
 * @param body the body bytes, or only their length; omit when it is not known yet
 *
 * @example
 * const info = readMessageHeader(flightData.dataHeader, flightData.dataBody);
 * if (info.kind === MessageKind.RECORD_BATCH) rows += info.rows;
 */
export function readMessageHeader(header: Uint8Array, body?: Bytes | number): MessageHeaderInfo {
  return parseMessageHeader(header, body).info;
}

function codecName(codec: number): "lz4_frame" | "zstd" {
  return codec === CompressionCodec.ZSTD ? "zstd" : "lz4_frame";
}

function readRecordBatch(table: FbTable, bodyLength: number): RecordBatchView {
  const length = table.int64Number(BATCH_LENGTH, 0, "RecordBatch.length");
  if (length < 0) throw invalidArgument(`negative record batch length ${length}`);

  const nodes = table.vector(BATCH_NODES, 16, "RecordBatch.nodes");
  const buffers = table.vector(BATCH_BUFFERS, 16, "RecordBatch.buffers");

  let compression = -1;
  const comp = table.table(BATCH_COMPRESSION, "RecordBatch.compression");
  if (comp !== null) {
    compression = comp.int8(COMPRESSION_CODEC, CompressionCodec.LZ4_FRAME);
    if (compression !== CompressionCodec.LZ4_FRAME && compression !== CompressionCodec.ZSTD) {
      throw invalidArgument(`unknown compression codec ${compression}`);
    }
    const method = comp.int8(COMPRESSION_METHOD, 0);
    if (method !== 0) throw invalidArgument(`unknown body compression method ${method}`);
  }

  const view = new RecordBatchView(table.reader, length, nodes, buffers, compression, readVariadicCounts(table, buffers));

  for (let i = 0, n = view.nodeCount; i < n; i++) {
    const len = view.nodeLength(i);
    const nulls = view.nodeNullCount(i);
    if (len < 0) throw invalidArgument(`field node ${i} has negative length ${len}`);
    if (nulls < 0) throw invalidArgument(`field node ${i} has negative null count ${nulls}`);
    if (nulls > len) throw invalidArgument(`field node ${i} has null count ${nulls} greater than its length ${len}`);
  }
  for (let i = 0, n = view.bufferCount; i < n; i++) {
    const offset = view.bufferOffset(i);
    const len = view.bufferLength(i);
    if (offset < 0) throw invalidArgument(`buffer ${i} has negative offset ${offset}`);
    if (len < 0) throw invalidArgument(`buffer ${i} has negative length ${len}`);
    if (offset + len > bodyLength) {
      throw invalidArgument(`buffer ${i} (offset ${offset}, length ${len}) extends past the ${bodyLength}-byte body`);
    }
  }
  return view;
}

function readVariadicCounts(table: FbTable, buffers: FbVector | null): number[] {
  const vec = table.vector(BATCH_VARIADIC_COUNTS, 8, "RecordBatch.variadicBufferCounts");
  if (vec === null || vec.length === 0) return EMPTY;
  const available = buffers === null ? 0 : buffers.length;
  const counts = new Array<number>(vec.length);
  let total = 0;
  for (let i = 0; i < vec.length; i++) {
    const c = vec.int64Number(i);
    if (c < 0) throw invalidArgument(`variadic buffer count ${i} is negative (${c})`);
    total += c;
    if (total > available) {
      throw invalidArgument(`variadic buffer counts add up to more than the ${available} buffers present`);
    }
    counts[i] = c;
  }
  return counts;
}
const EMPTY: number[] = [];

/** Bounds-checks a `[KeyValue]` field without keeping it, so that served bytes are sound. */
function checkKeyValues(table: FbTable, slot: number, what: string): void {
  const vec = table.vector(slot, 4, what);
  if (vec === null) return;
  for (let i = 0; i < vec.length; i++) {
    const kv = vec.table(i, what);
    kv.string(KEY_VALUE_KEY, `${what} key`);
    kv.string(KEY_VALUE_VALUE, `${what} value`);
  }
}

/**
 * Reads a `[KeyValue]` field into a map (later keys win), as schema and field metadata.
 * @internal shared with schema-info.ts
 */
export function readKeyValues(table: FbTable, slot: number, what: string): Map<string, string> | undefined {
  const vec = table.vector(slot, 4, what);
  if (vec === null || vec.length === 0) return undefined;
  const map = new Map<string, string>();
  for (let i = 0; i < vec.length; i++) {
    const kv = vec.table(i, what);
    map.set(kv.string(KEY_VALUE_KEY, `${what} key`) ?? "", kv.string(KEY_VALUE_VALUE, `${what} value`) ?? "");
  }
  return map;
}

/**
 * Throws RESOURCE_EXHAUSTED when `size` is over `limit`. Shared so that every size limit in
 * this folder reports the same way.
 * @internal
 */
export function checkSizeLimit(size: number, limit: number, what: string): void {
  if (size > limit) throw resourceExhausted(`${what} (${size} bytes) is over the limit of ${limit} bytes`);
}

/**
 * The bytes a compressed record or dictionary batch will take once decompressed, as its body
 * declares them: each compressed buffer starts with its uncompressed length (a little-endian
 * int64; -1 means the buffer is stored uncompressed, its bytes after those 8 as they are). 0 for
 * a message that is not a compressed batch. Lets a reader refuse a decompression bomb before it
 * decompresses anything.
 *
 * @throws FlightError INVALID_ARGUMENT for a header that does not fit its body (see
 * {@link readMessageHeader}) or a declared length that is negative (other than -1) or not a
 * safe integer.
 *
 * @example
 * if (declaredUncompressedBytes(m.dataHeader, m.dataBody) > budget) throw tooBig();
 */
export function declaredUncompressedBytes(header: Uint8Array, body: Bytes): number {
  const { batch } = parseMessageHeader(header, body);
  if (batch === undefined || batch.compression < 0) return 0;
  // The header was checked against the body above, so every buffer lies inside it.
  const cursor = new ByteCursor();
  cursor.reset(body);
  let total = 0;
  for (let i = 0, n = batch.bufferCount; i < n; i++) {
    const offset = batch.bufferOffset(i);
    const len = batch.bufferLength(i);
    if (len === 0) continue;
    if (len < 8) throw invalidArgument(`compressed buffer ${i} is ${len} bytes, shorter than its 8-byte length prefix`);
    cursor.seek(offset, offset + 8);
    const lo = cursor.u32();
    const hi = cursor.u32() | 0;
    const declared = hi * 4294967296 + lo;
    if (hi === -1 && lo === 4294967295) total += len - 8;
    else if (hi < 0 || !Number.isSafeInteger(declared)) throw invalidArgument(`compressed buffer ${i} declares an uncompressed length out of range`);
    else total += declared;
    if (!Number.isSafeInteger(total)) throw invalidArgument("the declared uncompressed lengths overflow");
  }
  return total;
}
