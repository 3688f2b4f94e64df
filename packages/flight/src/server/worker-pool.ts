import * as os from "node:os";
import { Worker, type ResourceLimits, type TransferListItem } from "node:worker_threads";
import { FlightError, StatusCode, checkInt, checkNumberIn, checkString, invalidArgument, resourceExhausted, checkObject, checkOptions } from "@blackice/flight-core";

/** What the pool posts to a worker: one request, or the end of a lease (drop per-lease state). */
export type WorkerPoolMessage<Req> = { readonly request: Req } | { readonly reset: true };

/** What a worker posts: `ready` once after loading, then exactly one answer per request. */
export type WorkerPoolReply<Res> = { readonly ready: true } | { readonly ok: true; readonly value: Res } | { readonly ok: false; readonly error: string };

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** The worker's script: a JavaScript file that speaks the protocol described on {@link WorkerPool}. */
  readonly script: string;
  /** Names the pool in error messages (`"project: ..."`). Default `"worker"`. */
  readonly name?: string;
  /** Most worker threads alive at once: 1 to `os.availableParallelism()`. Default min(2, that). */
  readonly size?: number;
  /** Most callers waiting for a worker; the next one gets RESOURCE_EXHAUSTED. Default 16. */
  readonly maxQueue?: number;
  /**
   * Longest time one request may take, ms. Past it the worker is terminated (and replaced when
   * next needed) and the request fails with INVALID_ARGUMENT. Default 5000.
   */
  readonly timeoutMs?: number;
  /**
   * V8 limits of each worker (Node's `resourceLimits`). A worker that reaches them is killed by
   * Node; its request fails with RESOURCE_EXHAUSTED. Default `{ maxOldGenerationSizeMb: 256 }`.
   */
  readonly resourceLimits?: ResourceLimits;
}

/** One worker, held by one caller until {@link WorkerLease.release}. */
export interface WorkerLease {
  /**
   * Sends one request and resolves with the worker's answer. One at a time: the next request
   * waits for this one. Rejects with a FlightError: INVALID_ARGUMENT for a refusal by the
   * worker, a timeout or a crash; RESOURCE_EXHAUSTED when the worker hit its memory limit.
   * After a rejection other than a refusal the worker is gone, and later requests reject too.
   */
  request(message: unknown, transfer?: readonly TransferListItem[]): Promise<unknown>;
  /** Gives the worker back (its per-lease state is reset). Idempotent. */
  release(): void;
}

/** Counters and gauges of a {@link WorkerPool}, for the `stats` action. */
export interface WorkerPoolStats {
  /** Most threads alive at once (the option). */
  size: number;
  /** Most callers waiting (the option). */
  maxQueue: number;
  /** Threads alive now (including ones terminating). Never more than `size`. */
  workers: number;
  /** Workers held by callers. */
  busy: number;
  /** Callers waiting for a worker. */
  queued: number;
  /** Most threads ever alive at once. */
  peakWorkers: number;
  /** Workers started since the pool was made (replacements included). */
  started: number;
  /** Callers refused because the queue was full. */
  refused: number;
  /** Workers terminated because a request took longer than `timeoutMs`. */
  timedOut: number;
  /** Workers that died on their own: an uncaught error, or their memory limit. */
  crashed: number;
}

/** A worker that does not post `ready` within this many ms is terminated. */
const START_TIMEOUT_MS = 30_000;

const RESOURCE_LIMIT_KEYS = ["maxOldGenerationSizeMb", "maxYoungGenerationSizeMb", "codeRangeSizeMb", "stackSizeMb"] as const;

interface Slot {
  readonly worker: Worker;
  /** Resolves once the worker posted `ready`; rejects if it died first. */
  readonly ready: Promise<void>;
  readonly failStart: (err: FlightError) => void;
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>;
  state: "starting" | "idle" | "busy" | "dead";
  pending?: { resolve(value: unknown): void; reject(err: FlightError): void; timer: NodeJS.Timeout };
  /** Why it died. */
  failure?: FlightError;
}

interface Waiter {
  resolve(lease: WorkerLease): void;
  reject(err: FlightError): void;
  /** Stops listening to the caller's abort signal. */
  detach(): void;
}

/**
 * A bounded pool of worker threads running one script, for work that must not run on the
 * server's event loop (decoding untrusted Arrow data). At most `size` threads exist, started
 * lazily; at most `maxQueue` callers wait, in order, and the next gets RESOURCE_EXHAUSTED.
 * A caller holds its worker for as long as it needs (a whole DoExchange), sending requests
 * one at a time. Threads are `unref`'d: they never keep the process alive.
 *
 * The protocol (types {@link WorkerPoolMessage} and {@link WorkerPoolReply}): the worker posts
 * `{ ready: true }` once it has loaded; for each `{ request }` it posts `{ ok: true, value }` or
 * `{ ok: false, error }` (a refusal, given to the caller as INVALID_ARGUMENT); on `{ reset:
 * true }`, sent when a lease ends, it drops what it kept for that lease and posts nothing.
 *
 * A worker that takes longer than `timeoutMs` on a request, throws, or reaches its
 * `resourceLimits` is terminated; its slot counts until the thread has exited, and a new
 * worker is started when the next caller needs one.
 *
 * @example
 * const pool = new WorkerPool({ script: path.join(__dirname, "project-worker.js"), name: "project", size: 2 });
 * const lease = await pool.acquire(call.signal);
 * try {
 *   const answer = await lease.request({ kind: "batch", bytes, columns });
 * } finally {
 *   lease.release();
 * }
 * await pool.close(); // at shutdown
 */
export class WorkerPool {
  /** Most threads alive at once. */
  readonly size: number;
  /** Most callers waiting. */
  readonly maxQueue: number;
  /** Longest time one request may take, ms. */
  readonly timeoutMs: number;
  /** Each worker's V8 limits. */
  readonly resourceLimits: Readonly<ResourceLimits>;
  private readonly script: string;
  private readonly name: string;
  private readonly slots = new Set<Slot>();
  private readonly idle: Slot[] = [];
  private readonly waiters: Waiter[] = [];
  private closing: FlightError | undefined;
  private readonly counts = { peakWorkers: 0, started: 0, refused: 0, timedOut: 0, crashed: 0 };

  /** Checks the options (TypeError naming the valid range); starts no thread. */
  constructor(options: WorkerPoolOptions) {
    checkObject("WorkerPool", "options", options);
    this.script = checkString("WorkerPool", "script", options.script, "the path of the worker's JavaScript file", true) as string;
    this.name = options.name ?? "worker";
    const cores = os.availableParallelism();
    this.size = checkInt(this.name, "size (at most the cores of this machine)", options.size, 1, cores, Math.min(2, cores));
    this.maxQueue = checkInt(this.name, "maxQueue", options.maxQueue, 0, 2 ** 31 - 1, 16);
    this.timeoutMs = checkInt(this.name, "timeoutMs", options.timeoutMs, 1, 2 ** 31 - 1, 5000);
    const limits = checkOptions<ResourceLimits>(this.name, options.resourceLimits, RESOURCE_LIMIT_KEYS, false, "resourceLimits");
    for (const k of RESOURCE_LIMIT_KEYS) {
      if (limits[k] !== undefined) checkNumberIn(this.name, `resourceLimits.${k}`, limits[k], Number.MIN_VALUE, Number.MAX_VALUE, "a positive number of MB");
    }
    this.resourceLimits = Object.freeze({ maxOldGenerationSizeMb: 256, ...limits });
  }

  /**
   * Waits for a worker and returns it. Rejects with RESOURCE_EXHAUSTED at once when `size`
   * workers are busy and `maxQueue` callers already wait, and with CANCELLED if `signal`
   * aborts while waiting (the caller leaves the queue).
   */
  acquire(signal?: AbortSignal): Promise<WorkerLease> {
    if (signal?.aborted) return Promise.reject(new FlightError(StatusCode.CANCELLED, `${this.name}: the call ended before it got a worker`));
    const free = this.idle.length > 0 || this.slots.size < this.size;
    if (!free && this.waiters.length >= this.maxQueue) {
      this.counts.refused++;
      return Promise.reject(
        resourceExhausted(`${this.name}: all ${this.size} workers are busy and ${this.maxQueue} calls wait for one; retry later`),
      );
    }
    return new Promise<WorkerLease>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new FlightError(StatusCode.CANCELLED, `${this.name}: the call ended while waiting for a worker`));
      };
      const waiter: Waiter = { resolve, reject, detach: () => signal?.removeEventListener("abort", onAbort) };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      this.dispatch();
    });
  }

  /**
   * Terminates every worker and refuses every waiting caller with UNAVAILABLE; requests in
   * progress fail with UNAVAILABLE too. Resolves once all threads have exited. The pool can
   * be used again afterwards (it starts new workers when asked).
   */
  async close(): Promise<void> {
    const err = new FlightError(StatusCode.UNAVAILABLE, `${this.name}: the server is shutting down`);
    this.closing = err;
    try {
      for (const w of this.waiters.splice(0)) {
        w.detach();
        w.reject(err);
      }
      const exits = [...this.slots].map((s) => s.exited);
      for (const s of [...this.slots]) this.kill(s, err);
      await Promise.all(exits);
    } finally {
      this.closing = undefined;
    }
  }

  /** The pool's figures now. */
  stats(): WorkerPoolStats {
    let busy = 0;
    for (const s of this.slots) if (s.state === "busy") busy++;
    return { size: this.size, maxQueue: this.maxQueue, workers: this.slots.size, busy, queued: this.waiters.length, ...this.counts };
  }

  /** Hands free (or newly started) workers to waiting callers, first come first served. */
  private dispatch(): void {
    while (this.waiters.length > 0) {
      let slot = this.idle.shift();
      if (slot === undefined) {
        if (this.slots.size >= this.size) return;
        try {
          slot = this.spawn();
        } catch (err) {
          const failed = this.waiters.shift()!;
          failed.detach();
          const why = (err as { code?: string; name?: string }).code ?? (err as Error).name;
          failed.reject(new FlightError(StatusCode.UNAVAILABLE, `${this.name}: a worker could not start (${why})`));
          continue;
        }
      }
      const waiter = this.waiters.shift()!;
      waiter.detach();
      if (slot.state === "idle") slot.state = "busy";
      const lease = this.lease(slot);
      // A worker that dies while starting fails its caller; the exit starts a new one for the rest.
      slot.ready.then(
        () => waiter.resolve(lease),
        (err: FlightError) => waiter.reject(err),
      );
    }
  }

  private spawn(): Slot {
    const worker = new Worker(this.script, { resourceLimits: { ...this.resourceLimits } });
    let markReady!: () => void;
    let failStart!: (err: FlightError) => void;
    let markExited!: () => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    ready.catch(() => undefined); // observed by the caller it was started for; never unhandled
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const slot: Slot = { worker, ready, failStart, exited, state: "starting" };
    const startTimer = setTimeout(
      () => this.kill(slot, new FlightError(StatusCode.UNAVAILABLE, `${this.name}: a worker did not start within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    startTimer.unref();
    worker.on("message", (m: WorkerPoolReply<unknown>) => {
      if ("ready" in m) {
        if (slot.state !== "starting") return;
        clearTimeout(startTimer);
        slot.state = "busy"; // it was started for a caller that waits for it
        markReady();
        return;
      }
      const p = slot.pending;
      if (p === undefined) return;
      slot.pending = undefined;
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.value);
      else p.reject(invalidArgument(`${this.name}: ${m.error}`));
    });
    worker.on("error", (err: Error & { code?: string }) => {
      if (slot.state === "dead") return;
      this.counts.crashed++;
      if (slot.state === "starting") {
        // A deployment problem (a missing module, limits too small to load it), not the caller's input.
        this.kill(slot, new FlightError(StatusCode.UNAVAILABLE, `${this.name}: a worker could not start (${err.code ?? err.name})`));
      } else if (err.code === "ERR_WORKER_OUT_OF_MEMORY") {
        const mb = this.resourceLimits.maxOldGenerationSizeMb;
        this.kill(slot, resourceExhausted(`${this.name}: the input needs more memory than a worker may use${mb === undefined ? "" : ` (${mb} MB heap)`}; refused`));
      } else {
        this.kill(slot, invalidArgument(`${this.name}: cannot process the input (${err.message})`));
      }
    });
    worker.on("exit", (code) => {
      clearTimeout(startTimer);
      this.kill(slot, this.closing ?? new FlightError(StatusCode.UNAVAILABLE, `${this.name}: a worker stopped (exit code ${code})`));
      // Only now is the slot free: a terminated thread counts against `size` until it is gone.
      this.slots.delete(slot);
      markExited();
      this.dispatch();
    });
    // Last: adding a "message" listener refs the worker's port again.
    worker.unref();
    this.slots.add(slot);
    this.counts.started++;
    this.counts.peakWorkers = Math.max(this.counts.peakWorkers, this.slots.size);
    return slot;
  }

  /** Marks a worker dead, fails what waits on it, and terminates its thread. Its slot is freed on exit. */
  private kill(slot: Slot, err: FlightError): void {
    if (slot.state === "dead") return;
    if (slot.state === "starting") slot.failStart(err);
    slot.state = "dead";
    slot.failure = err;
    const i = this.idle.indexOf(slot);
    if (i >= 0) this.idle.splice(i, 1);
    const p = slot.pending;
    if (p !== undefined) {
      slot.pending = undefined;
      clearTimeout(p.timer);
      p.reject(err);
    }
    void slot.worker.terminate();
  }

  private lease(slot: Slot): WorkerLease {
    let released = false;
    const pool = this;
    return {
      request(message, transfer) {
        if (released) return Promise.reject(new Error(`${pool.name}: request() after release()`));
        if (slot.state === "dead") return Promise.reject(slot.failure!);
        if (slot.pending !== undefined) return Promise.reject(new Error(`${pool.name}: one request at a time`));
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            pool.counts.timedOut++;
            pool.kill(slot, invalidArgument(`${pool.name}: a message took over ${pool.timeoutMs} ms to process; refused`));
          }, pool.timeoutMs);
          timer.unref();
          slot.pending = { resolve, reject, timer };
          slot.worker.postMessage({ request: message } satisfies WorkerPoolMessage<unknown>, transfer);
        });
      },
      release() {
        if (released) return;
        released = true;
        if (slot.state === "busy" && slot.pending !== undefined) {
          // Still working for a caller that left: its answer would reach the next one.
          pool.kill(slot, new FlightError(StatusCode.CANCELLED, `${pool.name}: released during a request`));
        }
        if (slot.state !== "busy") return; // dead: the exit frees the slot
        slot.worker.postMessage({ reset: true } satisfies WorkerPoolMessage<unknown>);
        slot.state = "idle";
        pool.idle.push(slot);
        pool.dispatch();
      },
    };
  }
}


