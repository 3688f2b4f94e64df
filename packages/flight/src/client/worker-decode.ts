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
import { FlightError, StatusCode, chunksOf, type FlightData } from "@blackice/flight-core";
import { WorkerPool, type WorkerLease } from "../server/worker-pool";
import { loadArrow } from "./arrow-interop";
import type { CheckedMessage, DecodeWorkerAnswer, DecodeWorkerRequest } from "./decode-worker";

/** Options of the decoding worker threads of a {@link FlightClient} (`decoder` option). */
export interface DecoderOptions {
  /**
   * Decode DoGet streams (doGet, getTable) in worker threads. Default true. With false,
   * apache-arrow decodes on the main thread, as `decodeRecordBatches` does, after each
   * message's header has been checked against its body.
   */
  worker?: boolean;
  /** Worker threads at most, shared by the client's reads: 1 to the machine's cores. Default min(2, cores). */
  workers?: number;
  /** Longest time the worker may take over one message, ms; past it the read fails with DATA_LOSS. Default 5000. */
  timeoutMs?: number;
  /** Heap limit of each worker, MB; a stream that needs more fails with RESOURCE_EXHAUSTED. Default 512. */
  maxHeapMb?: number;
  /** Reads waiting for a worker at most; the next one fails with RESOURCE_EXHAUSTED. Default 256. */
  maxQueue?: number;
}

/** Checks `decoder` options (TypeError naming the valid range), and makes the pool when workers are used. */
export function decoderPool(options: DecoderOptions | undefined): WorkerPool | undefined {
  if (options !== undefined && (options === null || typeof options !== "object")) throw new TypeError("FlightClient: decoder must be an object ({ worker?, workers?, timeoutMs?, maxHeapMb?, maxQueue? })");
  const o = options ?? {};
  for (const k of Object.keys(o)) {
    if (!["worker", "workers", "timeoutMs", "maxHeapMb", "maxQueue"].includes(k)) throw new TypeError(`FlightClient: unknown decoder option "${k}"; the options are worker, workers, timeoutMs, maxHeapMb, maxQueue`);
  }
  if (o.worker !== undefined && typeof o.worker !== "boolean") throw new TypeError("FlightClient: decoder.worker must be a boolean");
  if (o.maxHeapMb !== undefined && (typeof o.maxHeapMb !== "number" || !Number.isInteger(o.maxHeapMb) || o.maxHeapMb < 16 || o.maxHeapMb > 65_536)) {
    throw new TypeError(`FlightClient: decoder.maxHeapMb must be an integer from 16 to 65536, got ${String(o.maxHeapMb)}`);
  }
  // WorkerPool checks the rest, naming the ranges.
  const pool = new WorkerPool({
    script: decodeWorkerScript(),
    name: "FlightClient: decoder",
    size: o.workers,
    timeoutMs: o.timeoutMs,
    maxQueue: o.maxQueue ?? 256,
    resourceLimits: { maxOldGenerationSizeMb: o.maxHeapMb ?? 512 },
  });
  return o.worker === false ? undefined : pool;
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

/** A worker's failure as the read's error: DATA_LOSS, unless it is about resources (heap, queue, shutdown). */
function decodeError(err: unknown): FlightError {
  const fe = FlightError.from(err);
  if (fe.code === StatusCode.RESOURCE_EXHAUSTED || fe.code === StatusCode.UNAVAILABLE || fe.code === StatusCode.CANCELLED) return fe;
  return new FlightError(StatusCode.DATA_LOSS, `could not decode the Arrow stream: ${fe.message}`, { cause: err });
}

/**
 * The messages of `messages` as the worker checked them, in order. With `move`, each
 * message's buffer is transferred to the worker (zero-copy; the caller's views of it are
 * emptied), which is right only for messages nobody else holds: a DoGet's, as received.
 */
async function* checkedMessages(lease: WorkerLease, messages: AsyncIterable<FlightData>, move: boolean, counts: { recordBatches: number }): AsyncGenerator<CheckedMessage> {
  const ask = async (request: DecodeWorkerRequest, transfer: ArrayBuffer[]): Promise<DecodeWorkerAnswer> => {
    try {
      return (await lease.request(request, transfer)) as DecodeWorkerAnswer;
    } catch (err) {
      throw decodeError(err);
    }
  };
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
    for (const c of await ask({ header, body }, transfer)) {
      if (c.batch) counts.recordBatches++;
      yield c;
    }
  }
  for (const c of await ask({ end: true }, [])) yield c;
}

/** The checked messages as IPC stream bytes for apache-arrow's reader: a small prefix and header, then the (aligned) body. */
async function* ipcBytes(checked: AsyncIterable<CheckedMessage>): AsyncGenerator<Uint8Array> {
  for await (const { header, body } of checked) {
    const padded = Math.ceil(header.byteLength / 8) * 8;
    // Prefix and header in one buffer whose length is a multiple of 8, so that the body that
    // follows keeps its alignment in apache-arrow's reader.
    const prefix = new Uint8Array(8 + padded);
    const view = new DataView(prefix.buffer);
    view.setUint32(0, 0xffffffff, true);
    view.setInt32(4, padded, true);
    prefix.set(header, 8);
    yield prefix;
    if (body.byteLength > 0) yield body;
  }
}

/**
 * Record batches of a DoGet stream, decoded with the untrusted part in a worker of `pool`
 * (held for the whole stream). `state.schema` is set once the schema has been read.
 */
export async function* decodeInWorker(
  pool: WorkerPool,
  messages: AsyncIterable<FlightData>,
  state: { schema?: Arrow.Schema },
  options: { move: boolean; signal?: AbortSignal },
): AsyncGenerator<Arrow.RecordBatch> {
  const arrow = loadArrow();
  let lease: WorkerLease;
  try {
    lease = await pool.acquire(options.signal);
  } catch (err) {
    throw decodeError(err);
  }
  const counts = { recordBatches: 0 };
  let iterator: AsyncIterator<Arrow.RecordBatch> | undefined;
  let done = false;
  try {
    const reader = await mainStep(() => arrow.RecordBatchReader.from(ipcBytes(checkedMessages(lease, messages, options.move, counts))));
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
    lease.release();
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
