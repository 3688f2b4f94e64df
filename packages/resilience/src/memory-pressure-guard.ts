import {
  FLIGHT_METHODS,
  FlightError,
  StatusCode,
  statsSection,
  type FlightMethod,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkEnumArray,
} from "@blackice/flight-core";
import { checkFunction, checkInt, checkOptions } from "@blackice/flight-core";
import { defaultOnError, report } from "./option-checks";

/** Options of {@link memoryPressureGuard}. */
export interface MemoryPressureGuardOptions {
  /** Above this resident set size, in bytes, writes are refused. */
  maxRssBytes: number;
  /** Returns the current memory use in bytes. Default `process.memoryUsage.rss`. */
  sample?: () => number;
  /** Methods refused under pressure. Default `["doPut", "doExchange"]`. */
  methods?: readonly FlightMethod[];
  /** The `retry-after-ms` trailer of a refusal. Default 1000; 0 sends none. */
  retryAfterMs?: number;
  /** Receives errors of `sample` (the call then proceeds). Default: a process warning. */
  onError?: (err: unknown) => void;
}

/**
 * Refuses calls that bring data in (DoPut, DoExchange) with RESOURCE_EXHAUSTED while the
 * process uses more than `maxRssBytes`, so that a server under memory pressure keeps
 * serving reads, listings and actions (including `delete` and `gc`, which free memory)
 * instead of being killed. Memory is sampled when such a call starts.
 *
 * Returns the middleware and a `memoryPressure` stats section.
 *
 * @throws TypeError naming the invalid option and its valid range.
 *
 * @example
 * createFlightServer(memoryPressureGuard({ maxRssBytes: 6 * 2 ** 30 }));
 */
export function memoryPressureGuard(options: MemoryPressureGuardOptions): ServerParts {
  const where = "memoryPressureGuard";
  const o = checkOptions<MemoryPressureGuardOptions>(where, options, ["maxRssBytes", "sample", "methods", "retryAfterMs", "onError"], true);
  const maxRssBytes = checkInt(where, "maxRssBytes", o.maxRssBytes, 1, Number.MAX_SAFE_INTEGER);
  const sample = checkFunction<() => number>(where, "sample", o.sample) ?? (() => process.memoryUsage.rss());
  const retryAfterMs = checkInt(where, "retryAfterMs", o.retryAfterMs, 0, 3_600_000, 1000);
  const onError = checkFunction<(err: unknown) => void>(where, "onError", o.onError) ?? defaultOnError(where);
  const methods = new Set(checkEnumArray<FlightMethod>(where, "methods", o.methods, FLIGHT_METHODS, ["doPut", "doExchange"]));

  let lastSample: number | undefined;
  let refused = 0;
  const metadata = retryAfterMs > 0 ? { "retry-after-ms": String(retryAfterMs) } : undefined;

  const middleware: FlightMiddleware = function memoryPressureGuardMiddleware(next) {
    return async function memoryPressureGuard(call) {
      if (!methods.has(call.method)) return next(call);
      let rss: number;
      try {
        rss = sample();
        if (typeof rss !== "number" || !Number.isFinite(rss)) throw new TypeError(`sample() returned ${String(rss)}, not a number of bytes`);
      } catch (err) {
        // A broken probe must not turn into refused writes.
        report(onError, err);
        return next(call);
      }
      lastSample = rss;
      if (rss > maxRssBytes) {
        refused++;
        throw new FlightError(
          StatusCode.RESOURCE_EXHAUSTED,
          `server under memory pressure (${rss} bytes in use, limit ${maxRssBytes}); ${call.method} refused, reads still served`,
          metadata && { metadata: { ...metadata } },
        );
      }
      return next(call);
    };
  };

  const stats = statsSection("memoryPressure", function collectMemoryPressure() {
    return { maxRssBytes, lastSampleBytes: lastSample ?? null, refused };
  });
  return serverParts(middleware, stats);
}
