import { StatusCode, onLifecycle, serverParts, statsSection, type ServerParts, checkFunction, checkIntArray, checkString } from "@blackice/flight-core";
import { BreakerCore, grpcCodeOf, type BreakerState, type BreakerStats, type StateChangeListener } from "./breaker-core";
import { TUNING_KEYS, settleTuning, type BreakerTuning } from "./breaker-options";
import { checkOptions } from "@blackice/flight-core";

/**
 * Codes that never trip a server-side breaker: the caller's own mistakes and limits doing
 * their job. A dependency that answers "not found" or "invalid" is healthy.
 *
 * - INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, OUT_OF_RANGE: the request is wrong.
 * - UNAUTHENTICATED, PERMISSION_DENIED: the caller is not allowed.
 * - FAILED_PRECONDITION, ABORTED: the state does not allow it now (e.g. a put that failed earlier);
 *   the caller must change something, retrying the dependency would not help.
 * - RESOURCE_EXHAUSTED: a configured limit (the store's memory limit, a quota). Counting it
 *   would turn a full store into an outage of reads too, which is what the limit avoids.
 * - CANCELLED: the caller gave up.
 *
 * Everything else counts: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
 * DATA_LOSS, and errors without a gRPC code (plain exceptions of the dependency).
 */
export const CLIENT_ERROR_CODES: readonly StatusCode[] = Object.freeze([
  StatusCode.CANCELLED,
  StatusCode.INVALID_ARGUMENT,
  StatusCode.NOT_FOUND,
  StatusCode.ALREADY_EXISTS,
  StatusCode.PERMISSION_DENIED,
  StatusCode.RESOURCE_EXHAUSTED,
  StatusCode.FAILED_PRECONDITION,
  StatusCode.ABORTED,
  StatusCode.OUT_OF_RANGE,
  StatusCode.UNAUTHENTICATED,
]);

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions extends BreakerTuning {
  /** Codes that do not count as failures. Default {@link CLIENT_ERROR_CODES}. */
  ignoreCodes?: readonly StatusCode[];
}

/** Options of one {@link FlightCircuitBreaker.guard} call. */
export interface GuardOptions {
  /** The caller's signal (usually `call.signal`): aborting it aborts the work, and its failure does not count. */
  signal?: AbortSignal;
}

/**
 * A circuit breaker around one dependency (the store, a database, a remote service). Calls
 * through it fail fast with UNAVAILABLE and a `retry-after-ms` trailer while the circuit is
 * open; after `resetTimeoutMs` one probe is let through, and its success closes the circuit.
 */
export interface FlightCircuitBreaker {
  readonly name: string;
  /** The current state. */
  readonly state: BreakerState;
  /**
   * Runs asynchronous work through the breaker. The work gets a signal that aborts when the
   * breaker's timeout passes (the call then fails with UNAVAILABLE) or `options.signal` aborts.
   * Errors of the work are rethrown unchanged.
   */
  guard<T>(operation: string, work: (signal: AbortSignal) => T | Promise<T>, options?: GuardOptions): Promise<T>;
  /** Runs synchronous work through the breaker (no timeout applies). */
  guardSync<T>(operation: string, work: () => T): T;
  /** While open or half-open, the retry hint callers get, in ms. */
  retryAfterMs(): number | undefined;
  stats(): BreakerStats;
  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: StateChangeListener): () => void;
  /** Closes the circuit and clears its failure window (admin). False after shutdown. */
  reset(): boolean;
  /** Stops its timers; later guarded calls fail with UNAVAILABLE. Idempotent. */
  shutdown(): void;
  /**
   * Server settings: a stats section `breaker:<name>` and a lifecycle hook that shuts the
   * breaker down with the server. Pass them to `createFlightServer`.
   */
  readonly parts: ServerParts;
}

const KEYS = [...TUNING_KEYS, "ignoreCodes"];

/**
 * Creates a circuit breaker for the dependencies a call uses (not for the client's stream
 * as a whole). Guard the store with {@link guardedStore} and host-app dependencies with
 * `breaker.guard(...)`. Client mistakes and limits never trip it (see {@link CLIENT_ERROR_CODES}).
 *
 * @throws TypeError naming the invalid option and its valid range.
 *
 * @example
 * const storeBreaker = circuitBreaker({ name: "store", volumeThreshold: 20, resetTimeoutMs: 5_000 });
 * const catalog = circuitBreaker({ name: "catalog-db", timeoutMs: 2_000 });
 * const server = createFlightServer(
 *   guardedStore(storeBreaker), // wraps the server's store
 *   storeBreaker.parts,
 *   catalog.parts,
 *   defineAction("describe", "catalog entry", async (body, call) => ({
 *     body: await catalog.guard("lookup", (signal) => db.lookup(body, { signal }), { signal: call.signal }),
 *   })),
 * );
 */
export function circuitBreaker(options?: CircuitBreakerOptions): FlightCircuitBreaker {
  const where = "circuitBreaker";
  const o = checkOptions<CircuitBreakerOptions>(where, options, KEYS);
  const tuning = settleTuning(where, o, { name: "dependency", timeoutMs: 10_000 });
  const ignore = checkCodes(where, "ignoreCodes", o.ignoreCodes ?? CLIENT_ERROR_CODES);
  const core = new BreakerCore({
    ...tuning,
    noun: "dependency",
    counts: function countsForDependency(err) {
      const code = grpcCodeOf(err);
      if (code !== undefined) return !ignore.has(code);
      // An AbortError is the work stopping because its signal asked it to.
      return !(typeof err === "object" && err !== null && (err as { name?: unknown }).name === "AbortError");
    },
  });
  const breaker: FlightCircuitBreaker = {
    name: tuning.name,
    get state() {
      return core.state;
    },
    guard: function guard<T>(operation: string, work: (signal: AbortSignal) => T | Promise<T>, guardOptions?: GuardOptions) {
      checkOperation(operation, work);
      return core.execute(operation, work, guardOptions?.signal);
    },
    guardSync: function guardSync<T>(operation: string, work: () => T): T {
      checkOperation(operation, work);
      return core.executeSync(operation, work);
    },
    retryAfterMs: () => core.retryAfterMs(),
    stats: () => core.stats(),
    onStateChange: (listener) => core.onStateChange(listener),
    reset: () => core.reset(),
    shutdown: () => core.shutdown(),
    parts: serverParts(
      statsSection(`breaker:${tuning.name}`, function collectBreakerStats() {
        return core.stats();
      }),
      onLifecycle({
        onShutdown: function shutdownBreaker() {
          core.shutdown();
        },
      }),
    ),
  };
  return breaker;
}

function checkOperation(operation: unknown, work: unknown): void {
  checkString("guard", "operation", operation, "a non-empty string", true);
  checkFunction(`guard(${operation as string})`, "work", work, true);
}

/** A list of status codes, checked; returns them as a set. */
export function checkCodes(where: string, name: string, v: unknown): ReadonlySet<number> {
  return new Set(checkIntArray(where, name, v, 0, 16, "an array of gRPC status codes"));
}
