// The worker threads that decode FlightClient's DoGet streams (decode-worker.ts). Unlike the
// server's WorkerPool, which lends a worker to one caller at a time, a decoder thread serves
// many streams at once, each with its own state in the thread, and takes several messages of a
// stream ahead of their answers: a client that reads 16 flights at once is not held to 2
// reads, and a stream's round trips to the thread overlap its network reads.
import { Worker, type TransferListItem } from "node:worker_threads";
import * as os from "node:os";
import { FlightError, MAX_TIMER_MS, StatusCode, checkInt, resourceExhausted } from "@blackice/flight-core";

/** What the main thread posts to a decoder thread. */
export type DecoderThreadMessage<Req> = { readonly id: number; readonly stream: number; readonly request: Req } | { readonly stream: number; readonly reset: true };

/** What a decoder thread posts: `ready` once, then one answer per request, in the order of the requests. */
export type DecoderThreadReply<Res> = { readonly ready: true } | { readonly id: number; readonly ok: true; readonly value: Res } | { readonly id: number; readonly ok: false; readonly error: string };

/** Options of {@link DecoderThreads}. */
export interface DecoderThreadsOptions {
  readonly script: string;
  /** Threads at most, 1 to the machine's cores. */
  readonly size: number;
  /** Longest time one message may take, ms. */
  readonly timeoutMs: number;
  /** Heap limit of each thread, MB. */
  readonly maxHeapMb: number;
}

/** One stream's side of a decoder thread. */
export interface DecoderStream {
  /** Sends one request; answers come in order. Rejects with a FlightError. */
  request(message: unknown, transfer?: readonly TransferListItem[]): Promise<unknown>;
  /** Drops the stream's state in the thread. Idempotent. */
  close(): void;
}

interface Pending {
  readonly id: number;
  resolve(value: unknown): void;
  reject(err: FlightError): void;
}

/** A thread, its open streams and the requests it has not answered yet (in order). */
class DecoderThread {
  readonly worker: Worker;
  readonly pending: Pending[] = [];
  streams = 0;
  failure: FlightError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;

  constructor(
    private readonly options: DecoderThreadsOptions,
    private readonly onExit: (t: DecoderThread) => void,
  ) {
    this.worker = new Worker(options.script, { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } });
    this.worker.on("message", (m: DecoderThreadReply<unknown>) => {
      if ("ready" in m) return;
      const p = this.pending[0];
      if (p === undefined || p.id !== m.id) return;
      this.pending.shift();
      this.restartTimer();
      if (m.ok) p.resolve(m.value);
      else p.reject(new FlightError(StatusCode.DATA_LOSS, m.error));
    });
    this.worker.on("error", (err: Error & { code?: string }) => {
      if (err.code === "MODULE_NOT_FOUND" || err.code === "ERR_MODULE_NOT_FOUND") {
        // A deployment problem (the package is not built), not the stream's fault.
        this.fail(new FlightError(StatusCode.UNAVAILABLE, `a decoding thread could not start: ${err.message}`));
      } else if (err.code === "ERR_WORKER_OUT_OF_MEMORY") {
        this.fail(resourceExhausted(`the stream needs more memory than a decoding thread may use (${options.maxHeapMb} MB heap)`));
      } else {
        this.fail(new FlightError(StatusCode.DATA_LOSS, `the decoding thread failed: ${err.message}`));
      }
    });
    this.worker.on("exit", (code) => {
      this.fail(new FlightError(StatusCode.UNAVAILABLE, `the decoding thread stopped (exit code ${code})`));
      this.onExit(this);
    });
    this.worker.unref();
  }

  /** The thread works on the oldest request: only that one is timed. */
  private restartTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) {
      this.worker.unref(); // idle: it never keeps the process alive
      return;
    }
    this.worker.ref(); // answers are awaited
    const head = this.pending[0]!;
    this.timer = setTimeout(() => {
      if (this.pending[0] !== head) return;
      this.pending.shift();
      head.reject(new FlightError(StatusCode.DATA_LOSS, `a message took the decoding thread over ${this.options.timeoutMs} ms; refused`));
      this.fail(new FlightError(StatusCode.UNAVAILABLE, `the decoding thread was stopped: a message of another stream took over ${this.options.timeoutMs} ms`));
    }, this.options.timeoutMs);
  }

  request(stream: number, message: unknown, transfer: readonly TransferListItem[] | undefined): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.push({ id, resolve, reject });
      try {
        this.worker.postMessage({ id, stream, request: message } satisfies DecoderThreadMessage<unknown>, transfer);
      } catch (err) {
        this.pending.pop();
        reject(new FlightError(StatusCode.INTERNAL, `could not post a message to the decoding thread: ${(err as Error).message}`));
        return;
      }
      if (this.pending.length === 1) this.restartTimer();
    });
  }

  reset(stream: number): void {
    if (!this.failure) this.worker.postMessage({ stream, reset: true } satisfies DecoderThreadMessage<unknown>);
  }

  /** Fails what waits and stops the thread (it is replaced for new streams). */
  fail(err: FlightError): void {
    if (this.failure) return;
    this.failure = err;
    if (this.timer) clearTimeout(this.timer);
    for (const p of this.pending.splice(0)) p.reject(err);
    void this.worker.terminate();
  }
}

/**
 * Decoder threads shared by one client's reads: at most `size` threads, started when a
 * stream needs one; a new stream goes to the thread with the fewest open streams. A thread
 * whose message takes longer than `timeoutMs`, or which reaches its heap limit, is stopped:
 * that message's stream fails with DATA_LOSS (RESOURCE_EXHAUSTED for the heap), the other
 * streams on it with UNAVAILABLE, and new streams get a new thread.
 */
export class DecoderThreads {
  private readonly threads = new Set<DecoderThread>();
  private nextStream = 1;

  constructor(readonly options: DecoderThreadsOptions) {
    const cores = os.availableParallelism();
    checkInt("FlightClient", "decoder.workers (at most the cores of this machine)", options.size, 1, cores);
    checkInt("FlightClient", "decoder.timeoutMs", options.timeoutMs, 1, MAX_TIMER_MS);
  }

  /** A stream on the least busy thread (a new one while fewer than `size` run). */
  open(): DecoderStream {
    let thread: DecoderThread | undefined;
    for (const t of this.threads) if (!t.failure && (thread === undefined || t.streams < thread.streams)) thread = t;
    const alive = [...this.threads].filter((t) => !t.failure).length;
    if (thread === undefined || (thread.streams > 0 && alive < this.options.size)) {
      try {
        thread = new DecoderThread(this.options, (t) => this.threads.delete(t));
      } catch (err) {
        throw new FlightError(StatusCode.UNAVAILABLE, `a decoding thread could not start (${(err as { code?: string }).code ?? (err as Error).name})`, { cause: err });
      }
      this.threads.add(thread);
    }
    const t = thread;
    const stream = this.nextStream++;
    t.streams++;
    let closed = false;
    return {
      request: (message, transfer) => (closed ? Promise.reject(new Error("request() after close()")) : t.request(stream, message, transfer)),
      close: () => {
        if (closed) return;
        closed = true;
        t.streams--;
        t.reset(stream);
      },
    };
  }

  /** Threads running now, and their open streams and unanswered messages. */
  stats(): { threads: number; streams: number; pending: number } {
    let streams = 0;
    let pending = 0;
    for (const t of this.threads) {
      streams += t.streams;
      pending += t.pending.length;
    }
    return { threads: this.threads.size, streams, pending };
  }

  /** Stops every thread; reads still decoding fail with UNAVAILABLE. */
  async close(): Promise<void> {
    const exits = [...this.threads].map((t) => new Promise<void>((resolve) => t.worker.once("exit", () => resolve())));
    for (const t of this.threads) t.fail(new FlightError(StatusCode.UNAVAILABLE, "the client was closed"));
    await Promise.all(exits);
  }
}
