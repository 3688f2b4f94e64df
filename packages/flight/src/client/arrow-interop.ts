// The client's only contact with apache-arrow: loading the host app's copy, turning Arrow
// objects made by any copy of the library into the host's, encoding a table into Flight
// messages and decoding Flight messages into record batches.
//
// apache-arrow is a peer dependency, and an app can easily end up with two copies of it (a
// dependency pinning another version, a bundler duplicating it). Arrow's own writer and
// visitors dispatch with `instanceof`, so a Table from another copy is silently misread (the
// writer iterates it as rows). Nothing here uses `instanceof` on Arrow classes: inputs are
// duck-typed through their public fields and rebuilt with the host's classes, sharing the
// buffers (no data is copied).

import type * as Arrow from "apache-arrow";
import { FlightError, MessageKind, StatusCode, chunksOf, joinIpcStream, readMessageHeader, splitIpcStream, type FlightData, checkOptionalInt } from "@blackice/flight-core";
import { registerCompressionCodecs, type CompressionCodecsRegistration } from "./compression";
import { encapsulateMessage } from "../server/ipc-encapsulate";

export type ArrowModule = typeof Arrow;

let arrowModule: ArrowModule | undefined;

/**
 * The host app's apache-arrow, loaded on first use so that the raw Flight methods (and the
 * server, which shares this package) work in an app that never installed apache-arrow.
 */
export function loadArrow(): ArrowModule {
  if (!arrowModule) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      arrowModule = require("apache-arrow") as ArrowModule;
    } catch (err) {
      throw new Error("FlightClient: the Arrow methods (doGet, getTable, putTable, readArrowSchema) need the apache-arrow peer dependency; install apache-arrow >= 15", { cause: err });
    }
  }
  return arrowModule;
}

export type { CodecRegistration, CompressionCodecsRegistration } from "./compression";

/**
 * Registers decoders for LZ4_FRAME- and ZSTD-compressed record batches with apache-arrow's
 * `compressionRegistry` (apache-arrow >= 21), by default the host's copy, which the client
 * does by itself the first time it decodes a compressed batch. For an app that decodes
 * compressed IPC with apache-arrow directly (`tableFromIPC`, `RecordBatchReader`). A decoder
 * the app registered stays; only decoders are registered, never encoders.
 *
 * @example
 * registerArrowCompressionCodecs();
 * const table = tableFromIPC(await readFile("lz4-compressed.arrows"));
 */
export function registerArrowCompressionCodecs(arrow: ArrowModule | object = loadArrow()): CompressionCodecsRegistration {
  return registerCompressionCodecs(arrow);
}

/** What is read from a foreign Arrow `Field`. */
interface FieldLike {
  name: string;
  type: TypeLike;
  nullable?: boolean;
  metadata?: Map<string, string> | null;
}
/** What is read from a foreign Arrow `DataType` (the fields depend on `typeId`). */
interface TypeLike {
  typeId: number;
  children?: FieldLike[] | null;
  [key: string]: unknown;
}
/** What is read from a foreign Arrow `Schema`. */
export interface SchemaLike {
  fields: ReadonlyArray<FieldLike>;
  metadata?: Map<string, string> | null;
  metadataVersion?: number;
}
/** What is read from a foreign Arrow `Data`. */
interface DataLike {
  type: TypeLike;
  offset: number;
  length: number;
  nullCount: number;
  valueOffsets?: ArrayBufferView;
  values?: ArrayBufferView;
  nullBitmap?: Uint8Array;
  typeIds?: Int8Array;
  children?: DataLike[];
  dictionary?: { data: ReadonlyArray<DataLike> } | null;
  variadicBuffers?: ReadonlyArray<Uint8Array>;
}
/** What is read from a foreign Arrow `RecordBatch`. */
export interface RecordBatchLike {
  schema: SchemaLike;
  data: DataLike;
  numRows: number;
  metadata?: Map<string, string>;
  slice?(begin?: number, end?: number): RecordBatchLike;
}
/** What is read from a foreign Arrow `Table`. */
export interface TableLike {
  schema: SchemaLike;
  batches: ReadonlyArray<RecordBatchLike>;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null;

/** True for anything shaped like an Arrow Table (of any copy or version of apache-arrow). */
export function isTableLike(x: unknown): x is TableLike {
  return isObject(x) && isObject(x.schema) && Array.isArray((x.schema as { fields?: unknown }).fields) && Array.isArray(x.batches);
}

/** True for anything shaped like an Arrow RecordBatch (of any copy or version of apache-arrow). */
export function isRecordBatchLike(x: unknown): x is RecordBatchLike {
  return isObject(x) && isObject(x.schema) && Array.isArray((x.schema as { fields?: unknown }).fields) && isObject(x.data) && typeof x.numRows === "number";
}

// Arrow's `Type` enum values (stable across versions: they are the IPC format's type ids).
const T = {
  Null: 1, Int: 2, Float: 3, Binary: 4, Utf8: 5, Bool: 6, Decimal: 7, Date: 8, Time: 9, Timestamp: 10,
  Interval: 11, List: 12, Struct: 13, Union: 14, FixedSizeBinary: 15, FixedSizeList: 16, Map: 17,
  Duration: 18, LargeBinary: 19, LargeUtf8: 20, LargeList: 21, BinaryView: 23, Utf8View: 24, Dictionary: -1,
} as const;

/**
 * Rebuilds Arrow objects of any copy of apache-arrow with the host's classes. Buffers are
 * shared, not copied. One instance memoizes by identity, so that what was shared stays
 * shared: a dictionary used by every batch becomes one host dictionary, which the writer
 * then sends once (and as deltas when it grew) instead of replacing it for every batch.
 */
export class ArrowRebuilder {
  private readonly types = new Map<object, Arrow.DataType>();
  private readonly datas = new Map<object, Arrow.Data>();
  private readonly vectors = new Map<object, Arrow.Vector>();

  constructor(private readonly arrow: ArrowModule) {}

  /** The host schema for a schema-like object. */
  schema(s: SchemaLike): Arrow.Schema {
    const fields = s.fields.map((f) => this.field(f));
    return new this.arrow.Schema(fields, new Map(s.metadata ?? []), undefined, s.metadataVersion);
  }

  field(f: FieldLike): Arrow.Field {
    if (!isObject(f) || typeof f.name !== "string" || !isObject(f.type)) throw new TypeError("not an Arrow Field: expected {name, type, nullable}");
    return new this.arrow.Field(f.name, this.type(f.type), f.nullable ?? true, new Map(f.metadata ?? []));
  }

  type(t: TypeLike): Arrow.DataType {
    const known = this.types.get(t);
    if (known) return known;
    const made = this.makeType(t);
    this.types.set(t, made);
    return made;
  }

  private ctor<K extends keyof ArrowModule>(name: K): ArrowModule[K] {
    const c = this.arrow[name];
    if (typeof c !== "function") throw new TypeError(`the host apache-arrow has no ${String(name)} type; upgrade apache-arrow to write this table`);
    return c;
  }

  private makeType(t: TypeLike): Arrow.DataType {
    const a = this.arrow;
    const child = (): Arrow.Field => {
      const c = t.children?.[0];
      if (!c) throw new TypeError(`Arrow type ${t.typeId} has no child field`);
      return this.field(c);
    };
    const children = (): Arrow.Field[] => (t.children ?? []).map((c) => this.field(c));
    const num = (k: string): number => Number(t[k]);
    switch (t.typeId) {
      case T.Null: return new a.Null();
      case T.Int: return new a.Int(Boolean(t.isSigned) as never, num("bitWidth") as never);
      case T.Float: return new a.Float(num("precision"));
      case T.Binary: return new a.Binary();
      case T.Utf8: return new a.Utf8();
      case T.Bool: return new a.Bool();
      case T.Decimal: return new a.Decimal(num("scale"), num("precision"), t.bitWidth === undefined ? 128 : num("bitWidth"));
      case T.Date: return new a.Date_(num("unit"));
      case T.Time: return new a.Time(num("unit") as never, num("bitWidth") as never);
      case T.Timestamp: return new a.Timestamp(num("unit"), (t.timezone as string | null | undefined) ?? null);
      case T.Interval: return new a.Interval(num("unit"));
      case T.List: return new a.List(child());
      case T.Struct: return new a.Struct(children());
      case T.Union: return new a.Union(num("mode"), Array.from(t.typeIds as ArrayLike<number>), children());
      case T.FixedSizeBinary: return new a.FixedSizeBinary(num("byteWidth"));
      case T.FixedSizeList: return new a.FixedSizeList(num("listSize"), child());
      case T.Map: return new a.Map_(child() as never, Boolean(t.keysSorted));
      case T.Duration: return new (this.ctor("Duration"))(num("unit"));
      case T.LargeBinary: return new (this.ctor("LargeBinary"))();
      case T.LargeUtf8: return new (this.ctor("LargeUtf8"))();
      case T.LargeList: return new (this.ctor("LargeList"))(child());
      case T.BinaryView: return new (this.ctor("BinaryView"))();
      case T.Utf8View: return new (this.ctor("Utf8View"))();
      case T.Dictionary: {
        const id = t.id as number | bigint | null | undefined;
        return new a.Dictionary(this.type(t.dictionary as TypeLike), this.type(t.indices as TypeLike) as never, id, Boolean(t.isOrdered));
      }
      default:
        throw new TypeError(`unsupported Arrow type id ${t.typeId}`);
    }
  }

  /** The host Data for a data-like object, children and dictionary included. */
  data(d: DataLike): Arrow.Data {
    const known = this.datas.get(d);
    if (known) return known;
    if (!isObject(d) || !isObject(d.type)) throw new TypeError("not an Arrow Data: expected {type, offset, length, buffers...}");
    const dictionary = d.dictionary ? this.vector(d.dictionary) : undefined;
    // A slice's null count is "unknown" (-1) until computed from its validity bitmap, and
    // apache-arrow's writer sends it as it is for data without a bitmap (a sliced Null or union
    // column), which readers then refuse. Without a bitmap the count is known: all null for the
    // Null type, none otherwise.
    let nullCount = d.nullCount;
    if (!(nullCount >= 0)) nullCount = d.type.typeId === T.Null ? d.length : 0;
    const made = new this.arrow.Data(
      this.type(d.type),
      d.offset,
      d.length,
      nullCount,
      [d.valueOffsets, d.values, d.nullBitmap, d.typeIds] as never,
      (d.children ?? []).map((c) => this.data(c)),
      dictionary,
      d.variadicBuffers ?? [],
    );
    this.datas.set(d, made);
    return made;
  }

  private vector(v: { data: ReadonlyArray<DataLike> }): Arrow.Vector {
    const known = this.vectors.get(v);
    if (known) return known;
    const made = new this.arrow.Vector(v.data.map((d) => this.data(d)));
    this.vectors.set(v, made);
    return made;
  }

  /** A host RecordBatch with `schema` (already rebuilt) over the rebuilt columns of `b`. */
  batch(b: RecordBatchLike, schema: Arrow.Schema): Arrow.RecordBatch {
    const struct = b.data;
    const children = (struct.children ?? []).map((c) => this.data(c));
    if (children.length !== schema.fields.length) {
      throw new TypeError(`a record batch has ${children.length} columns but the schema has ${schema.fields.length} fields`);
    }
    const data = new this.arrow.Data(new this.arrow.Struct(schema.fields), struct.offset, struct.length, 0, [undefined, undefined, undefined, undefined] as never, children);
    return b.metadata instanceof Map && b.metadata.size > 0 ? new this.arrow.RecordBatch(schema, data, new Map(b.metadata)) : new this.arrow.RecordBatch(schema, data);
  }
}

/** Options of {@link encodeTable}. */
export interface EncodeTableOptions {
  /** The app_metadata of the n-th record batch sent (after splitting by `maxBatchRows`). */
  appMetadata?: (batchIndex: number) => Uint8Array | string | undefined;
  /** Split record batches longer than this many rows. */
  maxBatchRows?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Encodes a table (or one record batch) of any apache-arrow copy as Flight messages: the
 * schema, then for each record batch the dictionary batches it needs and the batch itself.
 * Lazy: a batch is encoded only when the consumer asks for its messages, so a DoPut that
 * waits for 'drain' holds at most one encoded batch in memory.
 *
 * @example
 * // Arrow data into a DoExchange (putTable does this for DoPut).
 * const replies = client.doExchangeRaw(cmdDescriptor("echo"), encodeTable(arrow, table, { maxBatchRows: 10_000 }));
 */
export function* encodeTable(
  arrow: ArrowModule,
  table: TableLike | RecordBatchLike | Arrow.Table | Arrow.RecordBatch,
  options: EncodeTableOptions = {},
): Generator<FlightData> {
  const input = table as unknown as TableLike | RecordBatchLike;
  if (!isTableLike(input) && !isRecordBatchLike(input)) throw new TypeError("expected an Arrow Table or RecordBatch (with schema.fields and batches or data)");
  const maxBatchRows = checkOptionalInt("encodeTable", "maxBatchRows", options.maxBatchRows, 1, Number.MAX_SAFE_INTEGER);
  const foreignBatches = isTableLike(input) ? input.batches : [input];
  const rebuild = new ArrowRebuilder(arrow);
  const schema = rebuild.schema(input.schema);
  const encoder = new IpcMessageEncoder(arrow, schema);
  yield* encoder.start();

  let batchIndex = 0;
  for (const foreign of foreignBatches) {
    if (!isRecordBatchLike(foreign)) throw new TypeError("the table's batches must be Arrow RecordBatches");
    // apache-arrow stands an empty placeholder batch in for "no batches" (a Table read from a
    // schema-only stream); its own writer skips it, and so does this.
    if (foreign.numRows === 0 && (foreign as { constructor?: { name?: string } }).constructor?.name === "_InternalEmptyPlaceholderRecordBatch") continue;
    // Sliced before rebuilding, so that the slices' null counts are repaired by the rebuild too.
    for (const part of split(foreign, maxBatchRows)) {
      const meta = options.appMetadata?.(batchIndex);
      if (meta !== undefined && typeof meta !== "string" && !(meta instanceof Uint8Array)) throw new TypeError(`appMetadata(${batchIndex}) must return a Uint8Array, a string or undefined`);
      batchIndex++;
      yield* encoder.write(rebuild.batch(part, schema), meta);
    }
  }
}

/**
 * Encodes one Arrow IPC stream as Flight messages, a batch at a time: `start()` gives the
 * schema message, each `write()` the dictionary batches the record batch needs (only new or
 * grown dictionaries: a dictionary that grew goes out as a delta) and then the batch itself.
 * One encoder is one stream: a new stream (a new DoPut) needs a new encoder, which sends every
 * dictionary again in full.
 *
 * @example
 * const encoder = new IpcMessageEncoder(arrow, table.schema);
 * const messages = [...encoder.start(), ...table.batches.flatMap((b) => encoder.write(b))];
 */
export class IpcMessageEncoder {
  private captured: Uint8Array[] = [];
  private readonly writer: Arrow.RecordBatchStreamWriter;
  private started = false;

  /** `schema` must come from the apache-arrow the client uses (the host app's); batches written must use it. */
  constructor(arrow: ArrowModule, schema: Arrow.Schema) {
    // The writer writes into whatever AsyncByteQueue it is given (its public `reset(sink)`).
    // This one captures the chunks synchronously, so that after each write() the bytes of
    // exactly the messages it produced are at hand, without waiting on an async queue.
    const captured = (): Uint8Array[] => this.captured;
    const Sink = class extends arrow.AsyncByteQueue {
      override write(value: ArrayBufferView | ArrayBuffer | string): void {
        const bytes = typeof value === "string" ? Buffer.from(value) : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
        if (bytes.byteLength > 0) captured().push(bytes);
      }
    };
    this.writer = new arrow.RecordBatchStreamWriter({ autoDestroy: false });
    this.writer.reset(new Sink() as never, schema);
  }

  /** The schema message (once). */
  start(): FlightData[] {
    if (this.started) throw new Error("IpcMessageEncoder.start: already started");
    this.started = true;
    return this.take();
  }

  /** The messages of one record batch; `appMetadata` goes on the record batch message (the last). */
  write(batch: Arrow.RecordBatch, appMetadata?: Uint8Array | string): FlightData[] {
    if (!this.started) throw new Error("IpcMessageEncoder.write: call start() first");
    this.writer.write(batch);
    const messages = this.take();
    if (appMetadata !== undefined) {
      messages[messages.length - 1].appMetadata = typeof appMetadata === "string" ? Buffer.from(appMetadata, "utf8") : appMetadata;
    }
    return messages;
  }

  private take(): FlightData[] {
    const chunks = this.captured;
    this.captured = [];
    if (chunks.length === 0) return [];
    const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    return splitIpcStream(bytes).map((m) => ({ flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: EMPTY }));
  }
}

function* split(batch: RecordBatchLike, maxRows: number | undefined): Generator<RecordBatchLike> {
  const rows = batch.numRows;
  if (maxRows === undefined || rows <= maxRows) {
    yield batch;
    return;
  }
  if (typeof batch.slice !== "function") throw new TypeError("maxBatchRows needs record batches with a slice() method");
  for (let start = 0; start < rows; start += maxRows) yield batch.slice(start, Math.min(start + maxRows, rows));
}

/**
 * Turns Flight messages into Arrow IPC stream bytes for apache-arrow's reader: for each
 * message, the continuation marker, the padded header length, the header and its padding
 * (one small buffer), then the body as received (no copy). Each header is checked against
 * its body first, since the reader trusts `bodyLength` to find the next message and would
 * otherwise misread everything after a short body. Messages with no header (metadata only)
 * carry no IPC data and are skipped. The first compressed batch gets the LZ4_FRAME and ZSTD
 * decoders registered with `arrow` (or a clear error when that apache-arrow has no codecs).
 */
async function* ipcStreamBytes(arrow: ArrowModule, messages: AsyncIterable<FlightData>, counts?: { recordBatches: number }): AsyncGenerator<Uint8Array> {
  let index = 0;
  let codecsChecked = false;
  for await (const m of messages) {
    const header = m.dataHeader ?? EMPTY;
    const body = m.dataBody ?? EMPTY;
    if (header.byteLength === 0) {
      index++;
      continue;
    }
    let info: ReturnType<typeof readMessageHeader>;
    try {
      info = readMessageHeader(header, body);
    } catch (err) {
      throw new FlightError(StatusCode.DATA_LOSS, `message ${index} of the stream is not a valid Arrow IPC message: ${(err as Error).message}`, { cause: err });
    }
    if (info.kind === MessageKind.RECORD_BATCH && counts) counts.recordBatches++;
    if (info.compression !== undefined && !codecsChecked) {
      // The first compressed batch of the stream: the decoders go into the host's
      // apache-arrow now (an app's own stay), before its reader gets to this message.
      codecsChecked = true;
      const registration = registerCompressionCodecs(arrow);
      if (registration.lz4Frame === "unavailable") {
        const what = info.kind === MessageKind.RECORD_BATCH ? "a record batch" : "a dictionary batch";
        throw new FlightError(
          StatusCode.UNIMPLEMENTED,
          `message ${index} of the stream is ${what} compressed with ${info.compression.toUpperCase()}, and the host's apache-arrow cannot decode compressed batches (it has no compressionRegistry); upgrade apache-arrow to >= 21`,
        );
      }
    }
    // Prefix and header padded to a multiple of 8, so the body that follows keeps its alignment.
    const prefix = encapsulateMessage(header);
    yield prefix;
    yield* chunksOf(body);
    index++;
  }
}

/**
 * Decodes Flight messages (of a DoGet or a DoExchange) into record batches of the host's
 * apache-arrow, incrementally: a message is pulled only when the next batch is asked for.
 * Dictionaries, replacements and deltas included, are applied by apache-arrow's reader.
 * Batches compressed with LZ4_FRAME or ZSTD are decompressed (see {@link registerArrowCompressionCodecs}).
 * `state.schema` is set once the schema has been read (also for a stream without batches).
 * A failing source's error passes through; apache-arrow's own errors become DATA_LOSS.
 *
 * @example
 * const replies = client.doExchangeRaw(cmdDescriptor("project"), encodeTable(arrow, table));
 * for await (const batch of decodeRecordBatches(replies)) console.log(batch.numRows);
 */
export async function* decodeRecordBatches(messages: AsyncIterable<FlightData>, state: { schema?: Arrow.Schema } = {}): AsyncGenerator<Arrow.RecordBatch> {
  const arrow = loadArrow();
  const counts = { recordBatches: 0 };
  let iterator: AsyncIterator<Arrow.RecordBatch> | undefined;
  let done = false;
  try {
    const reader = await decodeStep(() => arrow.RecordBatchReader.from(ipcStreamBytes(arrow, messages, counts)));
    iterator = reader[Symbol.asyncIterator]() as AsyncIterator<Arrow.RecordBatch>;
    for (;;) {
      const r = await decodeStep(() => iterator!.next());
      if (state.schema === undefined && reader.schema) state.schema = reader.schema;
      if (r.done) break;
      // For a stream with a schema and no batches, apache-arrow's reader makes up one empty
      // batch; the stream has none, so none is yielded.
      if (counts.recordBatches === 0) continue;
      yield r.value;
    }
    done = true;
  } finally {
    if (!done) void Promise.resolve(iterator?.return?.()).catch(() => {});
  }
}

/** Runs one step of apache-arrow's reader; its own errors become FlightError (DATA_LOSS), the source's pass. */
async function decodeStep<T>(step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof FlightError) throw err;
    throw new FlightError(StatusCode.DATA_LOSS, `could not decode the Arrow stream: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/**
 * Decodes an IPC-encapsulated schema (`FlightInfo.schema`, `SchemaResult.schema`) into an
 * Arrow Schema of the host's apache-arrow.
 *
 * @example
 * const schema = readArrowSchema(await client.getSchema(pathDescriptor("sales")));
 * console.log(schema.fields.map((f) => `${f.name}: ${f.type}`));
 */
export function readArrowSchema(source: Uint8Array | { schema: Uint8Array }): Arrow.Schema {
  const bytes = source instanceof Uint8Array ? source : source?.schema;
  if (!(bytes instanceof Uint8Array)) throw new TypeError("readArrowSchema: expected IPC schema bytes or an object with a `schema` field");
  if (bytes.byteLength === 0) throw new FlightError(StatusCode.NOT_FOUND, "the schema is empty (the server did not send one)");
  const [schemaMessage] = splitIpcStream(bytes, { maxMessages: 1 });
  if (!schemaMessage) throw new FlightError(StatusCode.DATA_LOSS, "the schema bytes hold no IPC message");
  // A schema message followed by the end-of-stream marker is a complete, empty IPC stream.
  return loadArrow().tableFromIPC(joinIpcStream([schemaMessage])).schema;
}
