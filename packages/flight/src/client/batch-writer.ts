// The batching put writer: rows in, record batches out through DoPut, with commits reported
// per batch. See docs/client.md for the semantics (what "committed" means, what is lost when).

import type * as Arrow from "apache-arrow";
import { FlightError, StatusCode, checkFunction, checkInt, checkOptions, type FlightData, checkArray, checkBoolean, checkObject } from "@blackice/flight-core";
import { IpcMessageEncoder, loadArrow, ArrowRebuilder, type ArrowModule, type RecordBatchLike, type SchemaLike, type TableLike } from "./arrow-interop";
import type { DescriptorInput, FlightClient, MetadataValue } from "./flight-client";
import { normalizeDescriptor } from "./descriptors";
import { RowBatcher, inferSchema, isArrowInput, type Row } from "./row-batcher";

/** Bounded retry of a failed DoPut stream. */
export interface BatchWriterRetryOptions {
  /** Attempts per stream, the first included (1 = no retry). Default 5. */
  maxAttempts?: number;
  /** Wait before the first retry; doubled (with jitter) on each further one. Default 100 ms. */
  initialDelayMs?: number;
  /** Longest wait between attempts. Default 5000 ms. */
  maxDelayMs?: number;
}

/** Rows of the writer, numbered from 0 in the order they were appended. */
export interface RowRange {
  /** Index of the first row. */
  firstRow: number;
  /** Number of rows. */
  rows: number;
}

/** A record batch the writer sent: its sequence number (its app_metadata on the wire) and its rows. */
export interface WrittenBatch extends RowRange {
  /** Sequence number, from 0; sent as the batch's app_metadata (decimal text) and matched to the server's PutResult. */
  seq: number;
  /** Whether the server acknowledged receiving it with a PutResult carrying `seq` (a BlackIce server always does). */
  acked: boolean;
}

/** What {@link BatchWriterOptions.onError} is given when the writer fails. */
export interface BatchWriterFailure {
  /** Why (the last attempt's error, or the schema/encoding error). */
  error: FlightError;
  /** Rows known stored: `[0, committed.rows)`. */
  committed: RowRange;
  /**
   * Rows known not stored: their DoPut stream failed before it was ended, so the server
   * aborted it (or they were never sent). Empty if none.
   */
  notStored: RowRange;
  /**
   * Rows whose DoPut stream was ended but whose outcome never arrived (the connection broke
   * while the server was committing): they may or may not be stored. Empty if none.
   */
  inDoubt: RowRange;
}

/** Counters of a {@link BatchWriter}. */
export interface BatchWriterStats {
  /** Rows taken by `append` (the next row's index). */
  appendedRows: number;
  /** Rows known stored (committed): always the first `committedRows` rows. */
  committedRows: number;
  /** Record batches committed. */
  committedBatches: number;
  /** Rows waiting in the builder for the next batch. */
  bufferedRows: number;
  /** Batches made and not yet committed (queued or in a stream). */
  pendingBatches: number;
  /** DoPut streams committed. */
  streams: number;
  /** Stream attempts that failed and were retried. */
  retries: number;
}

/** Options of {@link FlightClient.batchWriter}. */
export interface BatchWriterOptions {
  /**
   * The writer's schema (an apache-arrow Schema of any copy). Default: the schema of the first
   * Arrow batch or table appended, or one inferred from the first row (number -> Float64,
   * bigint -> Int64, string -> Utf8, boolean -> Bool, Date -> Timestamp(ms), Uint8Array -> Binary).
   */
  schema?: Arrow.Schema | SchemaLike;
  /** Flush a batch when it has this many rows. Default 10_000. */
  maxRows?: number;
  /** Flush a batch when its builders hold about this many bytes (apache-arrow's count, before IPC framing). Default 4 MiB. */
  maxBytes?: number;
  /** Flush a batch when its first row has waited this long. Default 1000 ms. */
  maxDelayMs?: number;
  /** Record batches per DoPut stream at most; a stream also ends as soon as nothing more is ready to send. Default 64. */
  maxBatchesPerPut?: number;
  /** Batches made and not yet committed before `append` waits (backpressure). Default 8. */
  maxPendingBatches?: number;
  /** Retry of a failed stream. */
  retry?: BatchWriterRetryOptions;
  /**
   * Also retry a stream that failed after it was ended, before its outcome arrived (it may
   * have been committed): at-least-once instead of at-most-once for those rows. Default false.
   */
  retryInDoubt?: boolean;
  /** Headers of every DoPut (e.g. `x-blackice-ttl`). */
  metadata?: Record<string, MetadataValue | MetadataValue[]>;
  /** Called with the batches of each committed DoPut stream, in order. Must not throw. */
  onCommit?: (batches: WrittenBatch[]) => void;
  /** Called once when the writer fails: which rows are stored, not stored, in doubt. Must not throw. */
  onError?: (failure: BatchWriterFailure) => void;
  /** Flush on the process's 'beforeExit' (best effort; see docs/client.md). Default true. */
  flushOnExit?: boolean;
}

/** What `append` takes: one row, an array of rows, or Arrow data (Table or RecordBatch of any apache-arrow copy). */
export type BatchWriterInput = Row | readonly Row[] | TableLike | RecordBatchLike | Arrow.Table | Arrow.RecordBatch;

interface PendingBatch {
  seq: number;
  firstRow: number;
  rows: number;
  batch: Arrow.RecordBatch;
  acked: boolean;
}

interface Waiter {
  /** Resolved once `committedRows` reaches this. */
  row: number;
  resolve: () => void;
  reject: (err: FlightError) => void;
}

const RETRYABLE = new Set<StatusCode>([StatusCode.UNAVAILABLE, StatusCode.ABORTED, StatusCode.RESOURCE_EXHAUSTED, StatusCode.DEADLINE_EXCEEDED]);

/**
 * Whether a failed call may have been committed by the server anyway: the call failed on the
 * client's side (grpc-js made the status up: the connection dropped, the stream was reset,
 * the call was cancelled or timed out) rather than with a status the server sent. A server
 * sends an error status only for a put it did not commit (BlackIce commits as the last step
 * of a DoPut, and then answers OK). "No connection established" and "Stream refused by
 * server" mean the call never reached a handler.
 */
function outcomeUnknown(error: FlightError): boolean {
  const details = error.message;
  if (/^(No connection established|Stream refused by server)/.test(details)) return false;
  if (error.code === StatusCode.CANCELLED || error.code === StatusCode.DEADLINE_EXCEEDED) return true;
  return /^(Connection dropped|Received RST_STREAM|No status information received|Write error|Write failed|Received HTTP status code)/.test(details);
}

/**
 * The writers to flush on 'beforeExit', under one listener (one per writer would trip Node's
 * MaxListeners warning in an app with many). 'beforeExit' fires when the event loop is empty;
 * the flush refills it, so the process stays until the commits are known. It does not fire
 * on process.exit() or on a signal.
 */
const onExit = new (class ExitFlusher {
  private readonly writers = new Map<BatchWriter, () => void>();
  private readonly listener = (): void => {
    for (const flush of this.writers.values()) flush();
  };

  add(w: BatchWriter, flush: () => void): void {
    if (this.writers.size === 0) process.on("beforeExit", this.listener);
    this.writers.set(w, flush);
  }

  delete(w: BatchWriter): void {
    if (this.writers.delete(w) && this.writers.size === 0) process.off("beforeExit", this.listener);
  }
})();

/**
 * Calls an app's callback. One that throws must not break the writer's bookkeeping (the
 * commit is already counted); the app hears of it as a process warning.
 */
function callback<T>(name: string, fn: ((arg: T) => void) | undefined, arg: T): void {
  if (!fn) return;
  try {
    fn(arg);
  } catch (err) {
    process.emitWarning(`BatchWriter: ${name} threw: ${(err as Error)?.message ?? String(err)}`, { code: "BLACKICE_BATCH_WRITER_CALLBACK" });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));


const range = (firstRow: number, rows: number): RowRange => ({ firstRow, rows });

/**
 * A batching put writer for one flight: rows go in with `append`, record batches go out
 * through DoPut when a threshold is reached (`maxRows`, `maxBytes`, `maxDelayMs`), and each
 * batch is reported committed when the DoPut stream that carried it has completed.
 *
 * Acknowledged means committed. A BlackIce server makes a DoPut visible atomically when the
 * stream ends, so the writer ends its stream after at most `maxBatchesPerPut` batches, or as
 * soon as no further batch is ready (group commit), and opens the next one for the next
 * batch. The end-of-stream OK is the commit of the stream's batches; the per-batch PutResults
 * (app_metadata = the batch's sequence number) only say they were received, and are checked
 * against the batches sent. Streams run one at a time, so commits are in order and the rows
 * stored are always a prefix `[0, committedRows)` of the rows appended.
 *
 * `append` resolves once the rows are taken, waiting first while `maxPendingBatches` batches
 * are uncommitted (backpressure). `flush()` resolves once every row appended before it is
 * committed. A stream that fails before it was ended is retried (bounded exponential
 * backoff, on UNAVAILABLE, ABORTED, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED); when that
 * fails too, the writer fails: `onError` gets the stored / not stored / in-doubt ranges,
 * and every pending `flush`, `close` and later `append` rejects with the error.
 *
 * @example
 * const writer = client.batchWriter(pathDescriptor("events"), { maxRows: 10_000, maxDelayMs: 200 });
 * for (const event of events) await writer.append({ ts: event.ts, kind: event.kind, value: event.value });
 * await writer.close(); // flushes, waits for the commit of every row
 */
export class BatchWriter {
  private readonly arrow: ArrowModule;
  private readonly descriptor: DescriptorInput;
  private readonly maxRows: number;
  private readonly maxBytes: number;
  private readonly maxDelayMs: number;
  private readonly maxBatchesPerPut: number;
  private readonly maxPendingBatches: number;
  private readonly maxAttempts: number;
  private readonly initialDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly retryInDoubt: boolean;
  private readonly metadata: BatchWriterOptions["metadata"];
  private readonly onCommit: BatchWriterOptions["onCommit"];
  private readonly onError: BatchWriterOptions["onError"];

  private batcher: RowBatcher | undefined;
  private appendedRows = 0;
  private committedRows = 0;
  private committedBatches = 0;
  private streams = 0;
  private retries = 0;
  private nextSeq = 0;
  /** Batches made, not yet in a stream. */
  private readonly queue: PendingBatch[] = [];
  /** Batches of the stream running now (or of the one being retried). */
  private inFlight: PendingBatch[] = [];
  private pumping = false;
  private timer: NodeJS.Timeout | undefined;
  private failure: FlightError | undefined;
  private closing = false;
  private readonly waiters: Waiter[] = [];
  /** Appends waiting for room, and the turn of the last of them. */
  private admitting = 0;
  private admission: Promise<void> = Promise.resolve();
  private spaceWaiters: Array<{ resolve: () => void; reject: (e: FlightError) => void }> = [];

  /** Use {@link FlightClient.batchWriter}. */
  constructor(
    private readonly client: FlightClient,
    descriptor: DescriptorInput,
    options: BatchWriterOptions = {},
  ) {
    checkOptions("BatchWriter", options, ["schema", "maxRows", "maxBytes", "maxDelayMs", "maxBatchesPerPut", "maxPendingBatches", "retry", "retryInDoubt", "metadata", "onCommit", "onError", "flushOnExit"], true);
    this.descriptor = normalizeDescriptor(descriptor);
    this.maxRows = checkInt("BatchWriter", "maxRows", options.maxRows, 1, Number.MAX_SAFE_INTEGER, 10_000);
    this.maxBytes = checkInt("BatchWriter", "maxBytes", options.maxBytes, 1, Number.MAX_SAFE_INTEGER, 4 * 1024 * 1024);
    this.maxDelayMs = checkInt("BatchWriter", "maxDelayMs", options.maxDelayMs, 0, Number.MAX_SAFE_INTEGER, 1000);
    this.maxBatchesPerPut = checkInt("BatchWriter", "maxBatchesPerPut", options.maxBatchesPerPut, 1, Number.MAX_SAFE_INTEGER, 64);
    this.maxPendingBatches = checkInt("BatchWriter", "maxPendingBatches", options.maxPendingBatches, 1, Number.MAX_SAFE_INTEGER, 8);
    const retry = options.retry === undefined ? {} : checkObject<NonNullable<BatchWriterOptions["retry"]>>("BatchWriter", "retry", options.retry, "an object { maxAttempts, initialDelayMs, maxDelayMs }");
    this.maxAttempts = checkInt("BatchWriter", "retry.maxAttempts", retry.maxAttempts, 1, Number.MAX_SAFE_INTEGER, 5);
    this.initialDelayMs = checkInt("BatchWriter", "retry.initialDelayMs", retry.initialDelayMs, 0, Number.MAX_SAFE_INTEGER, 100);
    this.maxRetryDelayMs = checkInt("BatchWriter", "retry.maxDelayMs", retry.maxDelayMs, 0, Number.MAX_SAFE_INTEGER, 5000);
    this.retryInDoubt = checkBoolean("BatchWriter", "retryInDoubt", options.retryInDoubt, false);
    for (const [name, fn] of [["onCommit", options.onCommit], ["onError", options.onError]] as const) checkFunction("BatchWriter", name, fn);
    this.metadata = options.metadata;
    this.onCommit = options.onCommit;
    this.onError = options.onError;
    this.arrow = loadArrow();
    if (options.schema !== undefined) {
      const s = checkObject<SchemaLike>("BatchWriter", "schema", options.schema, "an Arrow Schema");
      checkArray("BatchWriter", "schema.fields", s.fields, "an array of Arrow Fields (schema must be an Arrow Schema)");
      this.batcher = new RowBatcher(this.arrow, new ArrowRebuilder(this.arrow).schema(s));
    }
    if (options.flushOnExit ?? true) onExit.add(this, () => this.flushBeforeExit());
  }

  /** Flushes on 'beforeExit' if rows are waiting (errors go to onError and the writer's promises). */
  private flushBeforeExit(): void {
    if (this.failure === undefined && (this.batcher?.rows ?? 0) + this.queue.length > 0) this.flush().catch(() => {});
  }

  /** The writer's schema (undefined until given or inferred). */
  get schema(): Arrow.Schema | undefined {
    return this.batcher?.schema;
  }

  /** Counters; `committedRows` rows from the first are known stored. */
  get stats(): BatchWriterStats {
    return {
      appendedRows: this.appendedRows,
      committedRows: this.committedRows,
      committedBatches: this.committedBatches,
      bufferedRows: this.batcher?.rows ?? 0,
      pendingBatches: this.queue.length + this.inFlight.length,
      streams: this.streams,
      retries: this.retries,
    };
  }

  /**
   * Takes rows: one object, an array of objects, or an Arrow Table or RecordBatch with the
   * writer's schema. Every row is checked before any is taken: a row that does not fit the
   * schema (unknown field, missing non-nullable value, wrong type) rejects the whole call with
   * a FlightError (INVALID_ARGUMENT) and nothing is sent. Resolves once the rows are taken,
   * after waiting while `maxPendingBatches` batches are uncommitted; rejects once the writer
   * has failed or is closed.
   *
   * @example
   * await writer.append({ ts: Date.now(), kind: "click", value: 1 });
   * await writer.append(tableFromArrays({ ts: [1, 2], kind: ["a", "b"], value: [1, 2] }));
   */
  async append(input: BatchWriterInput): Promise<void> {
    this.checkOpen();
    if (this.admitting > 0 || this.full()) await this.admit();
    if (isArrowInput(input)) {
      const batcher = (this.batcher ??= new RowBatcher(this.arrow, new ArrowRebuilder(this.arrow).schema(input.schema as SchemaLike)));
      const batches = batcher.arrowBatches(input);
      try {
        this.cut();
      } catch (err) {
        this.builderFailed(err);
        throw this.failure;
      }
      for (const b of batches) {
        // Sliced by maxRows, and by maxBytes in proportion to the batch's size.
        const bytesPerRow = b.numRows > 0 ? (b.data as unknown as { byteLength: number }).byteLength / b.numRows : 0;
        const step = Math.max(1, Math.min(this.maxRows, bytesPerRow > 0 ? Math.floor(this.maxBytes / bytesPerRow) : this.maxRows));
        for (let start = 0; start < b.numRows; start += step) this.enqueue(step >= b.numRows ? b : b.slice(start, Math.min(start + step, b.numRows)));
      }
      this.pump();
      return;
    }
    const rows = Array.isArray(input) ? (input as readonly Row[]) : [input as Row];
    if (rows.length === 0) return;
    const batcher = (this.batcher ??= new RowBatcher(this.arrow, inferSchema(this.arrow, rows[0])));
    for (let i = 0; i < rows.length; i++) batcher.check(rows[i], this.appendedRows + batcher.rows + i);
    try {
      for (const row of rows) {
        batcher.add(row);
        if (batcher.rows >= this.maxRows || batcher.bytes >= this.maxBytes) this.cut();
      }
    } catch (err) {
      // Only values the checks leave to apache-arrow (nested types) get here, possibly half
      // a row in: the builders can no longer be trusted, so the writer fails.
      this.builderFailed(err);
      throw this.failure;
    }
    if (batcher.rows > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        try {
          this.cut();
        } catch (err) {
          this.builderFailed(err);
          return;
        }
        this.pump();
      }, this.maxDelayMs);
      // A pending delay must not keep the process alive; 'beforeExit' flushes instead.
      this.timer.unref();
    }
    this.pump();
  }

  /**
   * Sends what is buffered and resolves once every row appended before the call is committed
   * (its DoPut stream completed). Rejects if any of them could not be stored.
   *
   * @example
   * await writer.append(rows);
   * await writer.flush(); // rows are now visible to DoGet
   */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    try {
      this.cut();
    } catch (err) {
      this.builderFailed(err);
      return Promise.reject(this.failure);
    }
    const row = this.appendedRows;
    if (this.committedRows >= row) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ row, resolve, reject }));
    this.pump();
    return done;
  }

  /**
   * Flushes, waits for every commit, and closes the writer (later appends reject). Does not
   * close the client. Rejects, like flush, if rows could not be stored. Idempotent.
   *
   * @example
   * try { for (const e of events) await writer.append(e); } finally { await writer.close(); }
   */
  async close(): Promise<void> {
    // Appends are refused from here on, so that none can slip in behind the last flush.
    this.closing = true;
    onExit.delete(this);
    await this.flush();
  }

  // ------------------------------------------------------------------ internals

  private full(): boolean {
    return this.queue.length + this.inFlight.length >= this.maxPendingBatches;
  }

  /**
   * Waits for room, in the order the appends were called: an append that arrives while
   * others wait queues behind them, so that appends not awaited one by one keep their order.
   */
  private async admit(): Promise<void> {
    this.admitting++;
    const previous = this.admission;
    let release!: () => void;
    this.admission = new Promise<void>((resolve) => (release = resolve));
    try {
      await previous;
      this.checkOpen();
      while (this.full()) {
        await new Promise<void>((resolve, reject) => this.spaceWaiters.push({ resolve, reject }));
        this.checkOpen();
      }
    } finally {
      this.admitting--;
      // The caller takes its rows synchronously after this returns, before the next in line runs.
      release();
    }
  }

  private checkOpen(): void {
    if (this.failure) throw this.failure;
    if (this.closing) throw new FlightError(StatusCode.FAILED_PRECONDITION, "BatchWriter is closed");
  }

  /** Turns the builder's rows into a batch for the queue. */
  private cut(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.batcher?.take();
    if (batch) this.enqueue(batch);
  }

  private enqueue(batch: Arrow.RecordBatch): void {
    this.queue.push({ seq: this.nextSeq++, firstRow: this.appendedRows, rows: batch.numRows, batch, acked: false });
    this.appendedRows += batch.numRows;
  }

  private pump(): void {
    if (this.pumping || this.failure || this.queue.length === 0) return;
    this.pumping = true;
    void this.runStreams().finally(() => {
      this.pumping = false;
      // Batches queued while the last stream was ending.
      if (this.queue.length > 0 && !this.failure) this.pump();
    });
  }

  /** Runs DoPut streams one after another while batches are queued. */
  private async runStreams(): Promise<void> {
    let attempt = 1;
    // Once an attempt's outcome was unknown, its batches stay in doubt until a commit settles them.
    let doubted = false;
    let first: FlightError | undefined;
    while (!this.failure && (this.inFlight.length > 0 || this.queue.length > 0)) {
      const outcome = await this.runStream();
      if (outcome.ok) {
        attempt = 1;
        doubted = false;
        first = undefined;
        continue;
      }
      const { error, inDoubt } = outcome;
      doubted ||= inDoubt;
      first ??= error;
      const retryable = inDoubt ? this.retryInDoubt : RETRYABLE.has(error.code);
      if (retryable && attempt < this.maxAttempts) {
        this.retries++;
        const base = Math.min(this.maxRetryDelayMs, this.initialDelayMs * 2 ** (attempt - 1));
        attempt++;
        await sleep(base / 2 + Math.random() * (base / 2));
        for (const b of this.inFlight) b.acked = false;
        continue;
      }
      const tries = attempt > 1 ? ` (after ${attempt} attempts; the first failed with: ${first.message})` : "";
      this.fail(error, doubted, tries);
    }
  }

  /**
   * One DoPut stream: the batches left from a failed attempt, then queued ones as the channel
   * takes them, up to `maxBatchesPerPut`; the stream ends when no further batch is ready.
   */
  private async runStream(): Promise<{ ok: true } | { ok: false; error: FlightError; inDoubt: boolean }> {
    const stream = this.inFlight;
    let ended = false;
    const self = this;
    async function* messages(): AsyncGenerator<FlightData> {
      const encoder = new IpcMessageEncoder(self.arrow, self.batcher!.schema);
      yield* encoder.start();
      for (let i = 0; ; i++) {
        if (i >= stream.length) {
          if (stream.length >= self.maxBatchesPerPut || self.queue.length === 0) break;
          stream.push(self.queue.shift()!);
        }
        const b = stream[i];
        yield* encoder.write(b.batch, String(b.seq));
      }
      ended = true;
    }
    let acks = 0;
    let ackMismatch = false;
    try {
      for await (const result of this.client.doPutRaw(this.descriptor, messages(), { metadata: this.metadata }).results) {
        const seq = Buffer.from(result.appMetadata).toString("utf8");
        const expected = stream[acks];
        if (expected === undefined || seq !== String(expected.seq)) {
          // Breaking out cancels the call: the put is aborted unless the server already read its end.
          ackMismatch = true;
          throw new FlightError(StatusCode.DATA_LOSS, `BatchWriter: the server acknowledged batch ${JSON.stringify(seq)} where batch ${expected?.seq ?? "(none)"} was expected`);
        }
        expected.acked = true;
        acks++;
      }
    } catch (err) {
      const error = FlightError.from(err);
      return { ok: false, error, inDoubt: ended && (ackMismatch || outcomeUnknown(error)) };
    }
    // The stream completed: the server committed every batch of it.
    this.inFlight = [];
    this.streams++;
    for (const b of stream) {
      this.committedRows += b.rows;
      this.committedBatches++;
    }
    callback("onCommit", this.onCommit, stream.map(({ seq, firstRow, rows, acked }) => ({ seq, firstRow, rows, acked })));
    this.settle();
    return { ok: true };
  }

  private builderFailed(err: unknown): void {
    if (this.failure) return;
    const message = err instanceof FlightError ? err.message : `schema mismatch: apache-arrow could not build the batch: ${(err as Error)?.message ?? String(err)}`;
    this.fail(new FlightError(StatusCode.INVALID_ARGUMENT, message, { cause: err }), false);
  }

  /** Resolves the flushes whose rows are committed and lets waiting appends in. */
  private settle(): void {
    while (this.waiters.length > 0 && this.waiters[0].row <= this.committedRows) this.waiters.shift()!.resolve();
    const room = this.maxPendingBatches - this.queue.length - this.inFlight.length;
    if (room > 0) {
      const go = this.spaceWaiters;
      this.spaceWaiters = [];
      for (const w of go) w.resolve();
    }
  }

  private fail(cause: FlightError, inDoubtStream: boolean, context = ""): void {
    const committed = range(0, this.committedRows);
    const streamRows = this.inFlight.reduce((n, b) => n + b.rows, 0);
    const inDoubt = inDoubtStream && streamRows > 0 ? range(this.committedRows, streamRows) : range(this.committedRows, 0);
    const notStoredFrom = this.committedRows + (inDoubtStream ? streamRows : 0);
    // Rows still in the builder are counted as appended here: they are lost with the writer.
    const buffered = this.batcher?.rows ?? 0;
    const notStored = range(notStoredFrom, this.appendedRows + buffered - notStoredFrom);
    const parts = [committed.rows > 0 ? `rows 0..${committed.rows - 1} are stored` : "no row is stored"];
    if (inDoubt.rows > 0) parts.push(`rows ${inDoubt.firstRow}..${inDoubt.firstRow + inDoubt.rows - 1} may or may not be stored (the stream ended but its outcome was lost)`);
    if (notStored.rows > 0) parts.push(`rows ${notStored.firstRow}..${notStored.firstRow + notStored.rows - 1} are not stored`);
    const error = new FlightError(cause.code, `BatchWriter failed: ${cause.message}${context}; ${parts.join("; ")}`, {
      cause,
      metadata: {
        "committed-rows": String(committed.rows),
        "in-doubt-rows": `${inDoubt.firstRow}+${inDoubt.rows}`,
        "not-stored-rows": `${notStored.firstRow}+${notStored.rows}`,
      },
    });
    this.failure = error;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    onExit.delete(this);
    for (const w of this.waiters.splice(0)) w.reject(error);
    for (const w of this.spaceWaiters.splice(0)) w.reject(error);
    callback("onError", this.onError, { error, committed, notStored, inDoubt });
  }
}
