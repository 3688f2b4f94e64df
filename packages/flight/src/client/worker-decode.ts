// Decoding a DoGet's record batches with the untrusted part off the main thread. The bytes a
// server sends are checked and decoded by apache-arrow in a worker thread (decode-worker.ts),
// under a time limit per message and a heap limit; the main thread's apache-arrow then reads
// only what the worker decoded successfully: messages with 8-byte-aligned, uncompressed
// bodies, which it turns into record batches as views (no copy, no decompression). A
// corrupt or hostile stream fails in the worker with DATA_LOSS (or RESOURCE_EXHAUSTED for
// its heap limit), and the main thread's event loop never runs apache-arrow on it.

import * as fs from "node:fs";
import * as path from "node:path";
import type * as Arrow from "apache-arrow";
import { FlightError, MessageKind, StatusCode, checkOptionalInt, checkOptions, chunksOf, declaredUncompressedBytes, describeValue, readMessageHeader, type FlightData } from "@blackice/flight-core";
import { DecoderThreads, type DecoderStream } from "./decoder-threads";
import { decodeRecordBatches, loadArrow } from "./arrow-interop";
import { encapsulateMessage } from "../server/ipc-encapsulate";
import type { CheckedMessage, DecodeWorkerAnswer, DecodeWorkerRequest } from "./decode-worker";

/** Options of the decoding worker threads of a {@link FlightClient} (`decoder` option). */
export interface DecoderOptions {
  /**
   * Which DoGet streams (doGet, getTable) are decoded in worker threads:
   * - `"compressed"` (the default): a stream whose first dictionary or record batch is
   *   compressed (LZ4_FRAME, ZSTD), or whose first messages fail the header check, goes to a
   *   worker: decompressing can take long and ask for much memory. Any other stream is decoded
   *   on the calling thread after each message's header is checked against its body, where
   *   apache-arrow's work is bounded by the message's size (views of the body, and one copy of a
   *   misaligned body); a compressed message later in such a stream is decompressed there only
   *   if the uncompressed size its buffers declare is at most `maxHeapMb` (else
   *   RESOURCE_EXHAUSTED). On a machine with few cores this is the faster choice: a worker's
   *   round trip per message costs more there than it saves (docs/client.md).
   * - `true`: every stream in a worker.
   * - `false`: every stream on the calling thread, as `decodeRecordBatches` does (headers
   *   checked first, no budget on decompression).
   */
  worker?: boolean | "compressed";
  /**
   * Worker threads at most, shared by the client's reads (each thread decodes many streams at
   * once): 1 to the machine's cores. Default 1.
   */
  workers?: number;
  /**
   * Longest time a worker may take over one message, ms. Past it the read fails with
   * DATA_LOSS and the thread is stopped (other reads on it fail with UNAVAILABLE). Default 5000.
   */
  timeoutMs?: number;
  /** Heap limit of each worker, MB; a stream that needs more fails with RESOURCE_EXHAUSTED. Default 512. */
  maxHeapMb?: number;
}

/** How a client decodes DoGet streams: its worker threads, which streams go to them, and the calling thread's decompression budget. */
export interface Decoder {
  readonly threads: DecoderThreads;
  readonly mode: true | "compressed";
  /** Declared uncompressed bytes of one message decompressed on the calling thread, at most. */
  readonly maxDecompressedBytes: number;
}

/** Checks `decoder` options (TypeError naming the valid range), and makes the threads (none start yet) when workers are used. */
export function decoderThreads(options: DecoderOptions | undefined): Decoder | undefined {
  const o = checkOptions<DecoderOptions>("FlightClient", options, ["worker", "workers", "timeoutMs", "maxHeapMb"], false, "decoder");
  if (o.worker !== undefined && o.worker !== true && o.worker !== false && o.worker !== "compressed") {
    throw new TypeError(`FlightClient: decoder.worker must be true, false or "compressed"; got ${describeValue(o.worker)}`);
  }
  checkOptionalInt("FlightClient", "decoder.maxHeapMb", o.maxHeapMb, 16, 65_536);
  const maxHeapMb = o.maxHeapMb ?? 512;
  // DecoderThreads checks the rest, naming the ranges.
  const threads = new DecoderThreads({ script: decodeWorkerScript(), size: o.workers ?? 1, timeoutMs: o.timeoutMs ?? 5000, maxHeapMb });
  if (o.worker === false) return undefined;
  return { threads, mode: o.worker ?? "compressed", maxDecompressedBytes: maxHeapMb * 1024 * 1024 };
}

/**
 * Record batches of a DoGet stream, decoded where `decoder` says (see
 * {@link DecoderOptions.worker}). The stream is read up to its first dictionary or record batch
 * to choose; what was read is decoded first, in order.
 */
export async function* decodeDoGet(
  decoder: Decoder,
  messages: AsyncIterable<FlightData>,
  state: { schema?: Arrow.Schema },
  options: { move: boolean; signal?: AbortSignal },
): AsyncGenerator<Arrow.RecordBatch> {
  if (decoder.mode === true) {
    yield* decodeInWorker(decoder.threads, messages, state, options);
    return;
  }
  const source = messages[Symbol.asyncIterator]();
  const peeked: FlightData[] = [];
  let toWorker = false;
  try {
    for (;;) {
      const r = await source.next();
      if (r.done) break;
      peeked.push(r.value);
      const header = r.value.dataHeader;
      if (header === undefined || header.byteLength === 0) continue;
      let kind: MessageKind;
      try {
        const info = readMessageHeader(header, r.value.dataBody ?? new Uint8Array(0));
        kind = info.kind;
        toWorker = info.compression !== undefined;
      } catch {
        // The worker reports it, as it does for every stream it decodes.
        toWorker = true;
        break;
      }
      if (kind !== MessageKind.SCHEMA) break;
    }
  } catch (err) {
    await source.return?.();
    throw err;
  }
  const all = (async function* replay(): AsyncGenerator<FlightData> {
    try {
      yield* peeked;
      for (;;) {
        const r = await source.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await source.return?.();
    }
  })();
  if (toWorker) yield* decodeInWorker(decoder.threads, all, state, options);
  else yield* decodeRecordBatches(withinBudget(all, decoder.maxDecompressedBytes), state);
}

/** The messages, each compressed one refused (RESOURCE_EXHAUSTED) when it declares more than `max` uncompressed bytes. */
async function* withinBudget(messages: AsyncIterable<FlightData>, max: number): AsyncGenerator<FlightData> {
  let index = 0;
  for await (const m of messages) {
    const header = m.dataHeader;
    if (header !== undefined && header.byteLength > 0) {
      let declared: number;
      try {
        declared = declaredUncompressedBytes(header, m.dataBody ?? new Uint8Array(0));
      } catch (err) {
        throw new FlightError(StatusCode.DATA_LOSS, `message ${index} of the stream is not a valid Arrow IPC message: ${(err as Error).message}`, { cause: err });
      }
      if (declared > max) {
        throw new FlightError(
          StatusCode.RESOURCE_EXHAUSTED,
          `message ${index} of the stream declares ${declared} bytes once decompressed, over the decoder's limit of ${max} (decoder.maxHeapMb)`,
        );
      }
    }
    index++;
    yield m;
  }
}

/**
 * Where the worker's JavaScript is: beside this file in dist; under ts-jest (running `src`)
 * the package's build output, as for the server's project worker (see project-exchange.ts).
 */
function decodeWorkerScript(): string {
  const beside = path.join(__dirname, "decode-worker.js");
  if (fs.existsSync(beside)) return beside;
  const built = path.resolve(__dirname, "../../dist/client/decode-worker.js");
  if (fs.existsSync(path.join(__dirname, "decode-worker.ts")) && fs.existsSync(built)) return built;
  // Checked when a read needs it, not here: a client that never decodes needs no build.
  return beside;
}

/** A buffer that may be moved to the worker: one the view owns whole, not Node's shared pool of small buffers. */
function owned(bytes: Uint8Array): ArrayBuffer | undefined {
  const b = bytes.buffer;
  return b instanceof ArrayBuffer && b.byteLength > Buffer.poolSize ? b : undefined;
}

/** A worker's failure as the read's error: DATA_LOSS ("could not decode"), unless it is about resources (heap, a stopped thread). */
function decodeError(err: unknown): FlightError {
  const fe = FlightError.from(err);
  if (fe.code !== StatusCode.DATA_LOSS) return fe;
  return new FlightError(StatusCode.DATA_LOSS, `could not decode the Arrow stream: ${fe.message}`, { cause: err });
}

/** Bytes of a stream sent to its worker and not answered yet, at most (one message may be larger). */
const MAX_AHEAD_BYTES = 16 * 1024 * 1024;
/** Messages of a stream sent to its worker and not answered yet, at most. */
const MAX_AHEAD_MESSAGES = 8;

/**
 * The messages of `messages` as the worker checked them, in order. Up to
 * {@link MAX_AHEAD_MESSAGES} messages ({@link MAX_AHEAD_BYTES}) are sent ahead of their
 * answers, so that the worker's round trips overlap the network. With `move`, each message's
 * buffer is transferred to the worker (zero-copy; the caller's views of it are emptied),
 * which is right only for messages nobody else holds: a DoGet's, as received.
 */
async function* checkedMessages(stream: DecoderStream, messages: AsyncIterable<FlightData>, move: boolean, counts: { recordBatches: number }): AsyncGenerator<CheckedMessage> {
  const ahead: { answer: Promise<unknown>; bytes: number }[] = [];
  let aheadBytes = 0;
  const send = (request: DecodeWorkerRequest, transfer: ArrayBuffer[], bytes: number): void => {
    const answer = stream.request(request, transfer);
    answer.catch(() => {}); // awaited in order below; one that fails after the read stopped is nobody's concern
    ahead.push({ answer, bytes });
    aheadBytes += bytes;
  };
  async function* oldest(): AsyncGenerator<CheckedMessage> {
    const { answer, bytes } = ahead.shift()!;
    aheadBytes -= bytes;
    let checked: DecodeWorkerAnswer;
    try {
      checked = (await answer) as DecodeWorkerAnswer;
    } catch (err) {
      throw decodeError(err);
    }
    for (const c of checked) {
      if (c.batch) counts.recordBatches++;
      yield c;
    }
  }
  for await (const m of messages) {
    const header = m.dataHeader ?? new Uint8Array(0);
    // A message without a header (app_metadata only) carries no IPC data.
    if (header.byteLength === 0) continue;
    const pieces = chunksOf(m.dataBody ?? new Uint8Array(0));
    const body = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    const transfer: ArrayBuffer[] = [];
    if (move) {
      for (const b of [owned(header), owned(body)]) if (b && !transfer.includes(b)) transfer.push(b);
    }
    send({ header, body }, transfer, header.byteLength + body.byteLength);
    while (ahead.length >= MAX_AHEAD_MESSAGES || (ahead.length > 1 && aheadBytes > MAX_AHEAD_BYTES)) yield* oldest();
  }
  send({ end: true }, [], 0);
  while (ahead.length > 0) yield* oldest();
}

/** The checked messages as IPC stream bytes for apache-arrow's reader: a small prefix and header, then the (aligned) body. */
async function* ipcBytes(checked: AsyncIterable<CheckedMessage>): AsyncGenerator<Uint8Array> {
  for await (const { header, body } of checked) {
    // Prefix and header padded to a multiple of 8, so the body that follows keeps its alignment.
    const prefix = encapsulateMessage(header);
    yield prefix;
    if (body.byteLength > 0) yield body;
  }
}

/**
 * Record batches of a DoGet stream, decoded with the untrusted part in one of `threads`. `state.schema` is set once the schema has been read.
 */
export async function* decodeInWorker(
  threads: DecoderThreads,
  messages: AsyncIterable<FlightData>,
  state: { schema?: Arrow.Schema },
  options: { move: boolean; signal?: AbortSignal },
): AsyncGenerator<Arrow.RecordBatch> {
  const arrow = loadArrow();
  const stream = threads.open();
  const counts = { recordBatches: 0 };
  let iterator: AsyncIterator<Arrow.RecordBatch> | undefined;
  let done = false;
  try {
    const reader = await mainStep(() => arrow.RecordBatchReader.from(ipcBytes(checkedMessages(stream, messages, options.move, counts))));
    iterator = reader[Symbol.asyncIterator]() as AsyncIterator<Arrow.RecordBatch>;
    for (;;) {
      const r = await mainStep(() => iterator!.next());
      if (state.schema === undefined && reader.schema) state.schema = reader.schema;
      if (r.done) break;
      // apache-arrow's reader makes up one empty batch for a stream without batches.
      if (counts.recordBatches === 0) continue;
      yield r.value;
      // Batches read ahead are not handed out once the call was cancelled.
      if (options.signal?.aborted) throw new FlightError(StatusCode.CANCELLED, "the call was cancelled", { cause: options.signal.reason });
    }
    done = true;
  } finally {
    if (!done) void Promise.resolve(iterator?.return?.()).catch(() => {});
    stream.close();
  }
}

/** One step of the main thread's reader: its own errors (on bytes the worker decoded) become DATA_LOSS too. */
async function mainStep<T>(step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof FlightError) throw err;
    throw new FlightError(StatusCode.DATA_LOSS, `could not decode the Arrow stream: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
