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
import { FlightError, StatusCode, checkBoolean, checkOptionalInt, checkOptions, chunksOf, type FlightData } from "@blackice/flight-core";
import { DecoderThreads, type DecoderStream } from "./decoder-threads";
import { loadArrow } from "./arrow-interop";
import { encapsulateMessage } from "../server/ipc-encapsulate";
import type { CheckedMessage, DecodeWorkerAnswer, DecodeWorkerRequest } from "./decode-worker";

/** Options of the decoding worker threads of a {@link FlightClient} (`decoder` option). */
export interface DecoderOptions {
  /**
   * Decode DoGet streams (doGet, getTable) in worker threads. Default true. With false,
   * apache-arrow decodes on the main thread, as `decodeRecordBatches` does, after each
   * message's header has been checked against its body.
   */
  worker?: boolean;
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

/** Checks `decoder` options (TypeError naming the valid range), and makes the threads (none start yet) when workers are used. */
export function decoderThreads(options: DecoderOptions | undefined): DecoderThreads | undefined {
  const o = checkOptions<DecoderOptions>("FlightClient", options, ["worker", "workers", "timeoutMs", "maxHeapMb"], false, "decoder");
  if (o.worker !== undefined) checkBoolean("FlightClient", "decoder.worker", o.worker);
  checkOptionalInt("FlightClient", "decoder.maxHeapMb", o.maxHeapMb, 16, 65_536);
  // DecoderThreads checks the rest, naming the ranges.
  const threads = new DecoderThreads({ script: decodeWorkerScript(), size: o.workers ?? 1, timeoutMs: o.timeoutMs ?? 5000, maxHeapMb: o.maxHeapMb ?? 512 });
  return o.worker === false ? undefined : threads;
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
