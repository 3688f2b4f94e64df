import { FlightError, invalidArgument } from "../flight-error";
import { StatusCode } from "../status-code";
import { BytesReader, type Bytes } from "../byte-chunks";
import { CompressedBodyChecker } from "./compressed-body-checker";
import { MessageKind, type MessageHeaderInfo } from "./ipc-message";
import { splitIpcStream } from "./ipc-stream";
import { FlatBufferReader } from "./flatbuffer-reader";
import { RecordBatchView, checkSizeLimit, parseMessageHeader } from "./message-header";
import { BufferRole, LayoutKind, type ColumnLayout, type SchemaInfo } from "./arrow-schema";
import { readSchema } from "./schema-info";

/**
 * Default for {@link IpcStreamValidatorOptions.maxMessageBytes}: 2 GiB - 1, the most a gRPC
 * message can carry, so by default only sizes no single message could legitimately have are
 * refused.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 2 ** 31 - 1;

/** Options of an {@link IpcStreamValidator}. */
export interface IpcStreamValidatorOptions {
  /**
   * Largest message (header + body), and largest declared uncompressed size of a compressed
   * body, in bytes; more is refused with RESOURCE_EXHAUSTED. Defaults to
   * {@link DEFAULT_MAX_MESSAGE_BYTES}.
   */
  maxMessageBytes?: number;
}

const EMPTY_VIEW = new BytesReader(new Uint8Array(0));
const EMPTY_BATCH = new RecordBatchView(new FlatBufferReader(new Uint8Array(0)), 0, null, null, -1, []);

// Body buffers must start on 8-byte boundaries: the IPC format pads every buffer to 8 bytes,
// every writer we know of (including Arrow C++ for all the conformance files) does so, and
// Arrow C++ refuses other offsets when reading. Empty buffers are not checked: nothing is read.
const BUFFER_ALIGNMENT = 8;
const VIEW_BYTES = 16;

/**
 * Checks a sequence of IPC messages the way a Flight DoPut receives them, before they are
 * stored, and without decoding or copying any body. Per message it applies
 * {@link readMessageHeader}'s checks; across messages it enforces the stream's structure:
 *
 * - the first message is a schema (read in full by `readSchema`), and there is only one;
 * - dictionary batches name a dictionary the schema declares, a delta only follows a
 *   dictionary with the same id, and dictionaries arrive before batches that use them;
 * - every batch has the metadata version of the schema and exactly the field nodes, buffers
 *   and variadic buffer counts the schema implies;
 * - body buffers start 8-byte aligned, do not overlap, and fit in the body;
 * - each column's length matches the batch, and its buffers are large enough for it:
 *   validity bitmaps, fixed-width values, offsets ((length + 1) entries), views, union type
 *   codes and offsets; where it costs O(1) reads, the first and last offsets of variable-size
 *   binaries and lists are checked against their data or child, run ends against the length;
 * - in compressed bodies every non-empty buffer carries its int64 uncompressed length, which
 *   stands in for the buffer's size in the checks above, followed by one well-formed frame of
 *   the codec that can decode to that length (see `CompressedBodyChecker`: frame header,
 *   block headers, declared content size; the compressed data itself is not decompressed),
 *   and declared sizes over the limit are RESOURCE_EXHAUSTED.
 *
 * Failures are {@link FlightError}s with INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for sizes
 * over `maxMessageBytes`) whose message says what is wrong, never which bytes. A refused
 * message leaves the validator as it was, so the caller decides whether to go on.
 *
 * @example
 * const validator = new IpcStreamValidator({ maxMessageBytes: 64 << 20 });
 * for await (const data of call) {
 *   const info = validator.accept(data.dataHeader, data.dataBody); // throws on bad input
 *   store.append({ header: data.dataHeader, body: data.dataBody, info, ... });
 * }
 */
export class IpcStreamValidator {
  /** The size limit in effect. */
  readonly maxMessageBytes: number;
  private schemaInfo: SchemaInfo | undefined;
  /** Values in each dictionary received so far (deltas add up). */
  private readonly dictionaryLengths = new Map<bigint, number>();
  private readonly checker = new BatchChecker();

  constructor(options?: IpcStreamValidatorOptions) {
    const max = options?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!(max >= 0)) throw new RangeError("maxMessageBytes must be a non-negative number");
    this.maxMessageBytes = max;
  }

  /** The schema of the stream, once its first message has been accepted. */
  get schema(): SchemaInfo | undefined {
    return this.schemaInfo;
  }

  /** Number of values in dictionary `id` so far, or undefined before its first batch. */
  dictionaryLength(id: bigint): number | undefined {
    return this.dictionaryLengths.get(id);
  }

  /**
   * Validates the next message of the stream and returns what its header says. Throws
   * (INVALID_ARGUMENT or RESOURCE_EXHAUSTED) without changing the validator's state when the
   * message is malformed or out of place.
   */
  accept(header: Uint8Array, body: Bytes): MessageHeaderInfo {
    checkSizeLimit(header.byteLength + body.byteLength, this.maxMessageBytes, "message");
    const parsed = parseMessageHeader(header, body);
    const info = parsed.info;
    const schema = this.schemaInfo;

    if (info.kind === MessageKind.SCHEMA) {
      if (schema !== undefined) throw invalidArgument("unexpected second schema message in the stream");
      this.schemaInfo = readSchema(header);
      return info;
    }
    if (schema === undefined) {
      throw invalidArgument(`${info.kind === MessageKind.RECORD_BATCH ? "record batch" : "dictionary batch"} before the schema message`);
    }
    if (info.version !== schema.version) {
      throw invalidArgument(`message has metadata version V${info.version + 1}, the schema V${schema.version + 1}`);
    }
    const batch = parsed.batch as RecordBatchView;

    if (info.kind === MessageKind.DICTIONARY_BATCH) {
      const id = info.dictionaryId as bigint;
      const dict = schema.dictionaries.get(id);
      if (dict === undefined) throw invalidArgument(`dictionary batch for id ${id}, which the schema does not declare`);
      const previous = this.dictionaryLengths.get(id);
      if (info.isDelta === true && previous === undefined) {
        throw invalidArgument(`delta dictionary batch for id ${id} without a previous dictionary`);
      }
      this.requireDictionaries(dict.nestedDictionaryIds, `dictionary ${id}`);
      this.checker.check(batch, body, schema, [dict.layout], dict.nodeCount, dict.bufferCount, dict.variadicColumns, this, `dictionary batch ${id}`);
      const length = (info.isDelta === true ? (previous as number) : 0) + info.rows;
      if (!Number.isSafeInteger(length)) throw invalidArgument(`dictionary ${id} grows past the safe integer range`);
      this.dictionaryLengths.set(id, length);
      return info;
    }

    this.requireDictionaries(schema.recordBatchDictionaryIds, "record batch");
    this.checker.check(batch, body, schema, schema.columns, schema.nodeCount, schema.bufferCount, schema.variadicColumns, this, "record batch");
    return info;
  }

  private requireDictionaries(ids: readonly bigint[], what: string): void {
    for (const id of ids) {
      if (!this.dictionaryLengths.has(id)) throw invalidArgument(`${what} uses dictionary ${id} before any dictionary batch for it`);
    }
  }
}

/**
 * Walks one batch's nodes and buffers against the layout. Kept as one reusable object with
 * cursors in fields so that checking a batch allocates nothing per column.
 */
class BatchChecker {
  private batch: RecordBatchView = EMPTY_BATCH;
  private view: BytesReader = EMPTY_VIEW;
  private littleEndian = true;
  private compressed = false;
  private what = "";
  private validator!: IpcStreamValidator;
  private node = 0;
  private buffer = 0;
  private variadic = 0;
  /** Checks each buffer's length prefix and frame when the body is compressed. */
  private readonly frames = new CompressedBodyChecker();
  /** Size (uncompressed) of the buffer taken last. */
  private size = 0;
  /** Where the buffer taken last can be read in the body, or -1 when it is compressed or empty. */
  private data = -1;

  check(
    batch: RecordBatchView,
    body: Bytes,
    schema: SchemaInfo,
    columns: readonly ColumnLayout[],
    nodeCount: number,
    bufferCount: number,
    variadicColumns: number,
    validator: IpcStreamValidator,
    what: string,
  ): void {
    if (batch.nodeCount !== nodeCount) {
      throw invalidArgument(`${what} has ${batch.nodeCount} field nodes, the schema implies ${nodeCount}`);
    }
    const counts = batch.variadicBufferCounts;
    if (counts.length !== variadicColumns) {
      throw invalidArgument(`${what} has ${counts.length} variadic buffer counts, the schema has ${variadicColumns} view columns`);
    }
    let expectedBuffers = bufferCount;
    for (const c of counts) expectedBuffers += c;
    if (batch.bufferCount !== expectedBuffers) {
      throw invalidArgument(`${what} has ${batch.bufferCount} buffers, the schema implies ${expectedBuffers}`);
    }

    this.batch = batch;
    this.view = new BytesReader(body);
    this.littleEndian = schema.endianness === "little";
    this.compressed = batch.compression >= 0;
    if (this.compressed) this.frames.begin(body, batch.compression, validator.maxMessageBytes, what);
    this.validator = validator;
    this.what = what;
    this.node = 0;
    this.buffer = 0;
    this.variadic = 0;

    try {
      this.checkPlacement();
      for (const column of columns) {
        const length = this.column(column);
        if (length !== batch.length) {
          throw invalidArgument(`${what}: ${describe(column)} has ${length} values, the batch ${batch.length} rows`);
        }
      }
    } finally {
      // Drop references to the message so that the validator does not keep its buffers alive.
      this.batch = EMPTY_BATCH;
      this.view = EMPTY_VIEW;
      if (this.compressed) this.frames.end();
    }
  }

  /** Alignment and overlap of all buffers, in one pass when they are in order (as writers emit them). */
  private checkPlacement(): void {
    const batch = this.batch;
    const n = batch.bufferCount;
    let end = 0;
    let ordered = true;
    for (let i = 0; i < n; i++) {
      const length = batch.bufferLength(i);
      if (length === 0) continue;
      const offset = batch.bufferOffset(i);
      if (offset % BUFFER_ALIGNMENT !== 0) {
        throw invalidArgument(`${this.what}: buffer ${i} starts at offset ${offset}, not a multiple of ${BUFFER_ALIGNMENT}`);
      }
      if (offset < end) ordered = false;
      end = offset + length;
    }
    if (ordered) return;
    // Out of order is unusual but legal; overlap is not: it would let a small body pose as
    // many large buffers.
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (batch.bufferLength(i) > 0) order.push(i);
    order.sort((a, b) => batch.bufferOffset(a) - batch.bufferOffset(b));
    let prevEnd = 0;
    let prev = -1;
    for (const i of order) {
      const offset = batch.bufferOffset(i);
      if (offset < prevEnd) throw invalidArgument(`${this.what}: buffers ${prev} and ${i} overlap`);
      prevEnd = offset + batch.bufferLength(i);
      prev = i;
    }
  }

  /** Moves to the next buffer and sets `size` and `data` for it. */
  private take(): void {
    const i = this.buffer++;
    const length = this.batch.bufferLength(i);
    const offset = this.batch.bufferOffset(i);
    if (this.compressed) {
      this.size = this.frames.buffer(i, offset, length);
      this.data = this.frames.dataStart;
      return;
    }
    this.size = length;
    this.data = length === 0 ? -1 : offset;
  }

  private fail(column: ColumnLayout, message: string): never {
    throw invalidArgument(`${this.what}: ${describe(column)} ${message}`);
  }

  private needBytes(column: ColumnLayout, what: string, bytes: number): void {
    if (this.size < bytes) this.fail(column, `${what} buffer ${this.buffer - 1} has ${this.size} bytes, needs at least ${bytes}`);
  }

  private validity(column: ColumnLayout, length: number, nulls: number): void {
    this.take();
    const bytes = Math.ceil(length / 8);
    if (this.size === 0) {
      if (nulls > 0) this.fail(column, `has ${nulls} nulls but no validity bitmap`);
      return;
    }
    this.needBytes(column, "validity", bytes);
  }

  /** Reads a signed integer of `width` bytes at `pos` of the body, in the schema's byte order. */
  private intAt(column: ColumnLayout, pos: number, width: number): number {
    if (width === 2) return this.view.getInt16(pos, this.littleEndian);
    if (width === 4) return this.view.getInt32(pos, this.littleEndian);
    const lo = this.view.getUint32(this.littleEndian ? pos : pos + 4, this.littleEndian);
    const hi = this.view.getInt32(this.littleEndian ? pos + 4 : pos, this.littleEndian);
    const value = hi * 4294967296 + lo;
    if (!Number.isSafeInteger(value)) this.fail(column, `has an offset out of the safe integer range`);
    return value;
  }

  /**
   * Takes an offsets buffer of `length + 1` entries and returns the last offset, or -1 when the
   * buffer cannot be read (compressed) or is empty.
   */
  private offsets(column: ColumnLayout, length: number): number {
    this.take();
    if (length === 0) return -1;
    const width = column.offsetWidth;
    this.needBytes(column, "offsets", (length + 1) * width);
    if (this.data < 0) return -1;
    const first = this.intAt(column, this.data, width);
    const last = this.intAt(column, this.data + length * width, width);
    if (first < 0) this.fail(column, `has a negative first offset ${first}`);
    if (last < first) this.fail(column, `has a last offset ${last} smaller than its first ${first}`);
    return last;
  }

  /** Checks one column and its children; returns its length. */
  private column(column: ColumnLayout): number {
    const i = this.node++;
    const length = this.batch.nodeLength(i);
    const nulls = this.batch.nodeNullCount(i);
    switch (column.kind) {
      case LayoutKind.NULL:
        break;
      case LayoutKind.FIXED: {
        this.validity(column, length, nulls);
        this.take();
        // For huge lengths the product is inexact, but then it is far beyond any real buffer anyway.
        this.needBytes(column, "values", Math.ceil((length * column.bitWidth) / 8));
        if (column.dictionaryId !== undefined && length > nulls && this.validator.dictionaryLength(column.dictionaryId) === 0) {
          this.fail(column, `has non-null indices into dictionary ${column.dictionaryId}, which is empty`);
        }
        break;
      }
      case LayoutKind.VAR_BINARY: {
        this.validity(column, length, nulls);
        const last = this.offsets(column, length);
        this.take();
        if (last > this.size) this.fail(column, `has a last offset ${last} past its ${this.size}-byte data buffer`);
        break;
      }
      case LayoutKind.VIEW: {
        this.validity(column, length, nulls);
        this.take();
        this.needBytes(column, "views", length * VIEW_BYTES);
        const count = this.batch.variadicBufferCounts[this.variadic++] as number;
        for (let k = 0; k < count; k++) this.take();
        break;
      }
      case LayoutKind.LIST: {
        this.validity(column, length, nulls);
        const last = this.offsets(column, length);
        const childLength = this.column(column.children[0] as ColumnLayout);
        if (last > childLength) this.fail(column, `has a last offset ${last} past the ${childLength} values of its child`);
        break;
      }
      case LayoutKind.LIST_VIEW: {
        this.validity(column, length, nulls);
        this.take();
        this.needBytes(column, "offsets", length * column.offsetWidth);
        this.take();
        this.needBytes(column, "sizes", length * column.offsetWidth);
        this.column(column.children[0] as ColumnLayout);
        break;
      }
      case LayoutKind.FIXED_SIZE_LIST: {
        this.validity(column, length, nulls);
        const childLength = this.column(column.children[0] as ColumnLayout);
        if (childLength < length * column.listSize) {
          this.fail(column, `has ${childLength} child values, needs ${length} x ${column.listSize}`);
        }
        break;
      }
      case LayoutKind.STRUCT: {
        this.validity(column, length, nulls);
        this.childrenAtLeast(column, length, "struct");
        break;
      }
      case LayoutKind.SPARSE_UNION:
      case LayoutKind.DENSE_UNION: {
        if (column.buffers[0] === BufferRole.VALIDITY) {
          // V4 unions had a validity bitmap; V5 readers cannot represent those nulls (Arrow C++ refuses them too).
          if (nulls > 0) this.fail(column, "is a pre-1.0 (V4) union with nulls, which cannot be read");
          this.take();
        }
        this.take();
        this.needBytes(column, "type ids", length);
        if (column.kind === LayoutKind.DENSE_UNION) {
          this.take();
          this.needBytes(column, "union offsets", length * 4);
          for (const child of column.children) this.column(child);
        } else {
          this.childrenAtLeast(column, length, "sparse union");
        }
        break;
      }
      case LayoutKind.RUN_END_ENCODED: {
        if (nulls !== 0) this.fail(column, `is run-end encoded but has null count ${nulls}`);
        const runEndsColumn = column.children[0] as ColumnLayout;
        const runEnds = this.node;
        const runs = this.column(runEndsColumn);
        const runEndsData = this.data;
        const runEndsNulls = this.batch.nodeNullCount(runEnds);
        const values = this.column(column.children[1] as ColumnLayout);
        if (runEndsNulls !== 0) this.fail(column, `has ${runEndsNulls} null run ends`);
        if (runs > values) this.fail(column, `has ${runs} run ends but only ${values} values`);
        if (length > 0 && runs === 0) this.fail(column, `has ${length} values but no runs`);
        if (runs > 0 && runEndsData >= 0) {
          const width = runEndsColumn.bitWidth / 8;
          const last = this.intAt(runEndsColumn, runEndsData + (runs - 1) * width, width);
          if (last < length) this.fail(column, `has a last run end ${last} before its length ${length}`);
        }
        break;
      }
    }
    return length;
  }

  private childrenAtLeast(column: ColumnLayout, length: number, what: string): void {
    for (const child of column.children) {
      const childLength = this.column(child);
      if (childLength < length) {
        this.fail(column, `has a child ${JSON.stringify(shortName(child))} of ${childLength} values, shorter than the ${what}'s ${length}`);
      }
    }
  }
}


function describe(column: ColumnLayout): string {
  const path = column.path.length > 80 ? `${column.path.slice(0, 77)}...` : column.path;
  return `column ${JSON.stringify(path)}`;
}

function shortName(column: ColumnLayout): string {
  const dot = column.path.lastIndexOf(".");
  return dot < 0 ? column.path : column.path.slice(dot + 1);
}

/**
 * The schema of a stream, from wherever it is at hand: a validator that has accepted the
 * schema message, the bytes of an IPC stream (only its first message is read), or a list of
 * messages whose first is the schema (as a store keeps them).
 *
 * @example
 * const schema = readSchemaFrom(storedFlight.messages);
 * const diff = describeSchemaDifference(schema, readSchemaFrom(validator));
 */
export function readSchemaFrom(source: IpcStreamValidator | Uint8Array | ReadonlyArray<{ readonly header: Uint8Array }>): SchemaInfo {
  if (source instanceof IpcStreamValidator) {
    const schema = source.schema;
    if (schema === undefined) throw new FlightError(StatusCode.FAILED_PRECONDITION, "no schema message received yet");
    return schema;
  }
  if (source instanceof Uint8Array) {
    const first = splitIpcStream(source, { maxMessages: 1 })[0];
    if (first === undefined) throw invalidArgument("IPC stream has no schema message");
    return readSchema(first.header);
  }
  const first = source[0];
  if (first === undefined) throw invalidArgument("no messages, so no schema");
  return readSchema(first.header);
}
