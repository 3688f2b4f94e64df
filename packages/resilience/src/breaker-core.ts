/**
 * The circuit machinery shared by `circuitBreaker` (server side, guarding dependencies) and
 * `clientBreaker` (caller side, guarding a remote peer). It wraps one opossum breaker and
 * adds what opossum leaves out: a per-call AbortController aborted on timeout or caller
 * cancellation, synchronous guarding, FlightError translation with a retry hint, cumulative
 * counters, state-change listeners, and a reset that really starts over. Internal.
 */
import CircuitBreaker from "opossum";
import type { Logger } from "pino";
import { FlightError, StatusCode, statusCodeName } from "@blackice/flight-core";
import { report } from "./option-checks";

/** The state of a breaker. `halfOpen`: one probe call is let through to test the dependency. */
export type BreakerState = "closed" | "open" | "halfOpen" | "shutdown";

/** The trailer carrying how long a client should wait before retrying, in ms. */
export const RETRY_AFTER_MS = "retry-after-ms";

/** Called after every state change. */
export type StateChangeListener = (change: { readonly name: string; readonly from: BreakerState; readonly to: BreakerState; readonly at: number }) => void;

/** Figures of one breaker, for `stats`, metrics and the `admin.get` action. */
export interface BreakerStats {
  readonly name: string;
  readonly state: BreakerState;
  /** Epoch ms of the last state change (or of creation). */
  readonly stateSince: number;
  /** While open or half-open: how long callers are told to wait, in ms. */
  readonly retryAfterMs: number | undefined;
  /** State changes since creation, by the state entered. */
  readonly transitions: { readonly open: number; readonly halfOpen: number; readonly closed: number };
  /** Counts since creation (not reset by `reset()`). */
  readonly totals: {
    /** Guarded calls attempted, rejected ones included. */
    readonly calls: number;
    readonly successes: number;
    /** Failures that count towards opening (timeouts included). */
    readonly failures: number;
    /** Errors that did not count: client mistakes, limits, caller cancellation. */
    readonly ignored: number;
    /** Calls refused without running because the circuit was open. */
    readonly rejected: number;
    readonly timeouts: number;
  };
  /** Counts in opossum's rolling window, which decide when the circuit opens. */
  readonly window: { readonly calls: number; readonly failures: number; readonly rejected: number; readonly timeouts: number };
  /** The last counted failure: operation, when, and its code (and message for a FlightError). */
  readonly lastFailure: { readonly operation: string; readonly at: number; readonly error: string } | undefined;
  /** Calls and counted failures by operation name. */
  readonly operations: Readonly<Record<string, { readonly calls: number; readonly failures: number }>>;
  readonly settings: {
    readonly timeoutMs: number;
    readonly resetTimeoutMs: number;
    readonly errorThresholdPercentage: number;
    readonly volumeThreshold: number;
    readonly rollingWindowMs: number;
  };
}

/** Settled options of a {@link BreakerCore}. */
export interface CoreOptions {
  readonly name: string;
  /** "dependency" or "peer": how messages name what is guarded. */
  readonly noun: string;
  /** 0: no timeout. */
  readonly timeoutMs: number;
  readonly resetTimeoutMs: number;
  readonly errorThresholdPercentage: number;
  readonly volumeThreshold: number;
  readonly rollingWindowMs: number;
  readonly rollingBuckets: number;
  /** Whether an error counts towards opening the circuit. */
  readonly counts: (err: unknown) => boolean;
  readonly logger: Logger;
  readonly onError: (err: unknown) => void;
}

type Work = (signal: AbortSignal) => unknown;

/** One guarded call: its operation name and the controller whose signal the work receives. */
interface Attempt {
  readonly operation: string;
  readonly controller: AbortController;
  /** Set when the caller's own signal aborted the work: its failure is then not the dependency's. */
  callerAborted: boolean;
}

/** Operations tracked by name; beyond this many, the rest are counted under "other". */
const MAX_OPERATIONS = 256;
/** Retry hint while a half-open probe is running: the probe settles soon either way. */
const HALF_OPEN_RETRY_MS = 1000;

const noop = (): void => {};

/** A numeric gRPC status code carried by `err`, if any (FlightError, grpc-js ServiceError). */
export function grpcCodeOf(err: unknown): number | undefined {
  if (err instanceof FlightError) return err.code;
  if (typeof err === "object" && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "number" && Number.isInteger(code) && code >= 0 && code <= 16) return code;
  }
  return undefined;
}

/** A loggable description of an error: code and message for a FlightError, else only its name. */
export function describeError(err: unknown): string {
  if (err instanceof FlightError) return err.toString();
  const code = grpcCodeOf(err);
  if (code !== undefined) return statusCodeName(code);
  // Foreign messages may quote requests or credentials; their name is enough to triage.
  return err instanceof Error ? err.name : typeof err;
}

export class BreakerCore {
  readonly #o: CoreOptions;
  #cb: CircuitBreaker<[Work, Attempt], unknown>;
  #state: BreakerState = "closed";
  #stateSince = Date.now();
  #openedAt = 0;
  readonly #listeners = new Set<StateChangeListener>();
  readonly #transitions = { open: 0, halfOpen: 0, closed: 0 };
  readonly #totals = { calls: 0, successes: 0, failures: 0, ignored: 0, rejected: 0, timeouts: 0 };
  readonly #operations = new Map<string, { calls: number; failures: number }>();
  #lastFailure: BreakerStats["lastFailure"];

  constructor(options: CoreOptions) {
    this.#o = options;
    this.#cb = this.#create();
  }

  get name(): string {
    return this.#o.name;
  }

  get state(): BreakerState {
    return this.#state;
  }

  #create(): CircuitBreaker<[Work, Attempt], unknown> {
    const o = this.#o;
    // opossum keeps and mutates its options object, so every instance gets a fresh one.
    const cb = new CircuitBreaker<[Work, Attempt], unknown>(
      async function runGuarded(work: Work, attempt: Attempt): Promise<unknown> {
        return work(attempt.controller.signal);
      },
      {
        name: o.name,
        timeout: o.timeoutMs === 0 ? false : o.timeoutMs,
        resetTimeout: o.resetTimeoutMs,
        errorThresholdPercentage: o.errorThresholdPercentage,
        volumeThreshold: o.volumeThreshold,
        rollingCountTimeout: o.rollingWindowMs,
        rollingCountBuckets: o.rollingBuckets,
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        errorFilter: (err: unknown, ...args: unknown[]) => this.#ignores(err, args[1] as Attempt | undefined),
      },
    );
    cb.on("open", () => {
      this.#openedAt = Date.now();
      this.#enter("open");
    });
    cb.on("halfOpen", () => this.#enter("halfOpen"));
    cb.on("close", () => this.#enter("closed"));
    cb.on("success", () => this.#totals.successes++);
    cb.on("reject", () => this.#totals.rejected++);
    cb.on("timeout", () => this.#totals.timeouts++);
    cb.on("failure", (err: Error, _latency: number, args: [Work, Attempt]) => {
      const operation = args?.[1]?.operation ?? "unknown";
      this.#totals.failures++;
      this.#operation(operation).failures++;
      const error = describeError(err);
      this.#lastFailure = { operation, at: Date.now(), error };
      this.#o.logger.debug({ breaker: o.name, operation, error }, "guarded operation failed");
    });
    return cb;
  }

  /** opossum's errorFilter: true means "not the dependency's fault", which opossum counts as a success. */
  #ignores(err: unknown, attempt: Attempt | undefined): boolean {
    // The breaker's own timeout always counts: a dependency that does not answer is the case it exists for.
    if (err instanceof Error && CircuitBreaker.isOurError(err)) return false;
    let ignored: boolean;
    try {
      ignored = attempt?.callerAborted === true || !this.#o.counts(err);
    } catch (e) {
      report(this.#o.onError, e);
      ignored = false;
    }
    if (ignored) this.#totals.ignored++;
    return ignored;
  }

  #operation(name: string): { calls: number; failures: number } {
    let op = this.#operations.get(name);
    if (op === undefined) {
      const key = this.#operations.size < MAX_OPERATIONS ? name : "other";
      op = this.#operations.get(key) ?? { calls: 0, failures: 0 };
      this.#operations.set(key, op);
    }
    return op;
  }

  #enter(to: BreakerState): void {
    const from = this.#state;
    if (from === to || from === "shutdown") return;
    const at = Date.now();
    this.#state = to;
    this.#stateSince = at;
    if (to !== "shutdown") this.#transitions[to]++;
    const o = this.#o;
    const fields = { breaker: o.name, from, to, retryAfterMs: this.retryAfterMs() };
    if (to === "open") o.logger.warn({ ...fields, lastFailure: this.#lastFailure }, `circuit of ${o.noun} "${o.name}" opened`);
    else o.logger.info(fields, `circuit of ${o.noun} "${o.name}" is ${to === "halfOpen" ? "half-open: probing" : to}`);
    for (const listener of this.#listeners) {
      try {
        listener({ name: o.name, from, to, at });
      } catch (err) {
        report(o.onError, err);
      }
    }
  }

  /** While open: ms until the probe; while half-open: a short hint; otherwise undefined. */
  retryAfterMs(): number | undefined {
    if (this.#state === "open") return Math.max(1, this.#openedAt + this.#o.resetTimeoutMs - Date.now());
    if (this.#state === "halfOpen") return Math.min(this.#o.resetTimeoutMs, HALF_OPEN_RETRY_MS);
    return undefined;
  }

  /** The error a refused call gets: UNAVAILABLE with a `retry-after-ms` trailer. */
  #refusal(): FlightError {
    const o = this.#o;
    if (this.#state === "shutdown") {
      return new FlightError(StatusCode.UNAVAILABLE, `${o.noun} "${o.name}" is unavailable: its circuit breaker was shut down`);
    }
    const ms = this.retryAfterMs() ?? Math.min(o.resetTimeoutMs, HALF_OPEN_RETRY_MS);
    return new FlightError(
      StatusCode.UNAVAILABLE,
      `${o.noun} "${o.name}" is unavailable: circuit open after repeated failures; retry in ${ms} ms`,
      { metadata: { [RETRY_AFTER_MS]: String(ms) } },
    );
  }

  #timeoutError(operation: string): FlightError {
    const o = this.#o;
    return new FlightError(StatusCode.UNAVAILABLE, `${o.noun} "${o.name}" timed out after ${o.timeoutMs} ms (${operation})`);
  }

  /** Maps opossum's own errors to FlightErrors; errors of the work pass through unchanged. */
  #translate(err: unknown, attempt: Attempt): unknown {
    if (!(err instanceof Error) || !CircuitBreaker.isOurError(err)) return err;
    const code = (err as { code?: unknown }).code;
    if (code === "ETIMEDOUT") {
      const timeout = this.#timeoutError(attempt.operation);
      attempt.controller.abort(timeout);
      return timeout;
    }
    return this.#refusal();
  }

  #begin(operation: string): Attempt {
    this.#totals.calls++;
    this.#operation(operation).calls++;
    return { operation, controller: new AbortController(), callerAborted: false };
  }

  /**
   * Runs `work` through the breaker. The work receives a signal that aborts when the
   * breaker's timeout passes or `callerSignal` aborts; the work should stop then.
   */
  async execute<T>(operation: string, work: (signal: AbortSignal) => T | Promise<T>, callerSignal?: AbortSignal): Promise<T> {
    if (callerSignal?.aborted) throw callerSignal.reason ?? new FlightError(StatusCode.CANCELLED, "call cancelled");
    const attempt = this.#begin(operation);
    const onCallerAbort = (): void => {
      attempt.callerAborted = true;
      attempt.controller.abort(callerSignal!.reason);
    };
    callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
    try {
      return (await this.#cb.fire(work as Work, attempt)) as T;
    } catch (err) {
      throw this.#translate(err, attempt);
    } finally {
      callerSignal?.removeEventListener("abort", onCallerAbort);
    }
  }

  /**
   * Runs synchronous `work` through the breaker and returns its result synchronously.
   * opossum starts the action inside `fire()`, so the work has run (or was refused)
   * when `fire()` returns; the outcome is counted a microtask later.
   */
  executeSync<T>(operation: string, work: () => T): T {
    const attempt = this.#begin(operation);
    let ran = false;
    let threw = false;
    let value: T | undefined;
    let error: unknown;
    const run: Work = () => {
      ran = true;
      try {
        value = work();
      } catch (e) {
        threw = true;
        error = e;
        throw e;
      }
      // Never hand opossum a thenable to adopt: the value is returned from here, not from the promise.
      return undefined;
    };
    this.#cb.fire(run, attempt).then(noop, noop);
    if (!ran) throw this.#refusal();
    if (threw) throw error;
    return value as T;
  }

  /** Closes the circuit and starts a fresh failure window (opossum's own close keeps the window). */
  reset(): boolean {
    if (this.#state === "shutdown") return false;
    const old = this.#cb;
    this.#cb = this.#create();
    old.shutdown();
    this.#o.logger.info({ breaker: this.#o.name, from: this.#state }, `circuit of ${this.#o.noun} "${this.#o.name}" reset`);
    this.#enter("closed");
    return true;
  }

  /** Stops the breaker's timers; later calls fail with UNAVAILABLE. Idempotent. */
  shutdown(): void {
    if (this.#state === "shutdown") return;
    this.#cb.shutdown();
    this.#enter("shutdown");
  }

  onStateChange(listener: StateChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stats(): BreakerStats {
    const w = this.#cb.stats;
    const o = this.#o;
    return {
      name: o.name,
      state: this.#state,
      stateSince: this.#stateSince,
      retryAfterMs: this.retryAfterMs(),
      transitions: { ...this.#transitions },
      totals: { ...this.#totals, successes: this.#totals.successes - this.#totals.ignored },
      window: { calls: w.fires, failures: w.failures, rejected: w.rejects, timeouts: w.timeouts },
      lastFailure: this.#lastFailure,
      operations: Object.fromEntries([...this.#operations].map(([k, v]) => [k, { ...v }])),
      settings: {
        timeoutMs: o.timeoutMs,
        resetTimeoutMs: o.resetTimeoutMs,
        errorThresholdPercentage: o.errorThresholdPercentage,
        volumeThreshold: o.volumeThreshold,
        rollingWindowMs: o.rollingWindowMs,
      },
    };
  }
}
