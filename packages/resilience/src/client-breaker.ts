import { StatusCode, onLifecycle, serverParts, statsSection, type ServerParts, checkBoolean, checkFunction } from "@blackice/flight-core";
import { BreakerCore, grpcCodeOf, type BreakerState, type BreakerStats, type StateChangeListener } from "./breaker-core";
import { TUNING_KEYS, settleTuning, type BreakerTuning } from "./breaker-options";
import { checkCodes } from "./circuit-breaker";
import { checkOptions } from "@blackice/flight-core";

/** Codes of a remote Flight server's answer that mean "the peer is not serving": they count. */
export const PEER_FAILURE_CODES: readonly StatusCode[] = Object.freeze([StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED]);

/** Options of {@link clientBreaker}. */
export interface ClientBreakerOptions extends BreakerTuning {
  /** Codes that count as failures. Default {@link PEER_FAILURE_CODES}. Other coded errors do not count. */
  failureCodes?: readonly StatusCode[];
  /**
   * Whether errors without a gRPC status code count (connection resets, DNS failures that a
   * client library did not map to UNAVAILABLE). Default true.
   */
  countUncodedErrors?: boolean;
}

/** A caller-side circuit breaker around calls to one remote Flight server. */
export interface ClientBreaker {
  readonly name: string;
  readonly state: BreakerState;
  /**
   * Wraps a function that calls the peer. While the circuit is open, the wrapped function
   * rejects at once with UNAVAILABLE (`retry-after-ms` in its metadata) without calling it.
   * Wrap functions whose promise covers the whole exchange (for a stream, one that reads it to its end).
   */
  wrap<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R>;
  /** Runs one call through the breaker; `work` gets a signal aborted on timeout or when `options.signal` aborts. */
  run<R>(work: (signal: AbortSignal) => Promise<R>, options?: { signal?: AbortSignal; operation?: string }): Promise<R>;
  retryAfterMs(): number | undefined;
  stats(): BreakerStats;
  onStateChange(listener: StateChangeListener): () => void;
  /** Closes the circuit and clears its failure window. False after shutdown. */
  reset(): boolean;
  /** Stops its timers. Call it when the client is closed. Idempotent. */
  shutdown(): void;
  /**
   * For a server that calls this peer: a stats section `peer:<name>` and a lifecycle hook
   * that shuts the breaker down with the server.
   */
  readonly parts: ServerParts;
}

const KEYS = [...TUNING_KEYS, "failureCodes", "countUncodedErrors"];

/**
 * Creates a breaker a caller puts around calls to a remote Flight server, so that it stops
 * piling calls onto a dead peer: UNAVAILABLE and DEADLINE_EXCEEDED answers (and transport
 * errors without a code) count as failures; other answers (NOT_FOUND, INVALID_ARGUMENT, ...)
 * show that the peer is alive and do not.
 *
 * The breaker's own timeout is off by default (`timeoutMs: 0`): give the client call a deadline.
 *
 * @throws TypeError naming the invalid option and its valid range.
 *
 * @example
 * const peer = clientBreaker({ name: "warehouse-1", resetTimeoutMs: 5_000, volumeThreshold: 5 });
 * const getFlightInfo = peer.wrap((d: FlightDescriptor) => client.getFlightInfo(d, { deadlineMs: 2_000 }));
 * try {
 *   const info = await getFlightInfo(descriptor);
 * } catch (err) {
 *   // while the peer is down: FlightError UNAVAILABLE, err.metadata["retry-after-ms"]
 * }
 * // when the client is closed:
 * peer.shutdown();
 */
export function clientBreaker(options?: ClientBreakerOptions): ClientBreaker {
  const where = "clientBreaker";
  const o = checkOptions<ClientBreakerOptions>(where, options, KEYS);
  const tuning = settleTuning(where, o, { name: "peer", timeoutMs: 0 });
  const failureCodes = checkCodes(where, "failureCodes", o.failureCodes ?? PEER_FAILURE_CODES);
  const countUncoded = checkBoolean(where, "countUncodedErrors", o.countUncodedErrors, true);
  const core = new BreakerCore({
    ...tuning,
    noun: "peer",
    counts: function countsForPeer(err) {
      const code = grpcCodeOf(err);
      return code === undefined ? countUncoded : failureCodes.has(code);
    },
  });
  return {
    name: tuning.name,
    get state() {
      return core.state;
    },
    wrap: function wrap<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
      checkFunction("clientBreaker.wrap", "fn", fn, true);
      const operation = fn.name || "call";
      return function guardedCall(...args: A): Promise<R> {
        return core.execute(operation, () => fn(...args));
      };
    },
    run: function run<R>(work: (signal: AbortSignal) => Promise<R>, runOptions?: { signal?: AbortSignal; operation?: string }) {
      checkFunction("clientBreaker.run", "work", work, true);
      return core.execute(runOptions?.operation ?? "call", work, runOptions?.signal);
    },
    retryAfterMs: () => core.retryAfterMs(),
    stats: () => core.stats(),
    onStateChange: (listener) => core.onStateChange(listener),
    reset: () => core.reset(),
    shutdown: () => core.shutdown(),
    parts: serverParts(
      statsSection(`peer:${tuning.name}`, function collectPeerBreakerStats() {
        return core.stats();
      }),
      onLifecycle({
        onShutdown: function shutdownPeerBreaker() {
          core.shutdown();
        },
      }),
    ),
  };
}
