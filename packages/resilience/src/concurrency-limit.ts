import {
  FLIGHT_METHODS,
  FlightError,
  StatusCode,
  statsSection,
  type FlightMethod,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkObject,
} from "@blackice/flight-core";
import { observeCall } from "./observe-call";
import { checkInt, checkOptionalInt, checkOptions } from "@blackice/flight-core";

/** Options of {@link concurrencyLimit}. */
export interface ConcurrencyLimitOptions {
  /** Calls in progress across all methods. Unlimited when not given. */
  global?: number;
  /** Calls in progress per method; methods not listed are limited by `global` only. 0 refuses every call of a method. */
  perMethod?: Partial<Record<FlightMethod, number>>;
  /** The `retry-after-ms` trailer of a refusal. Default 100 ms; 0 sends none. */
  retryAfterMs?: number;
}

const MAX_LIMIT = 1_000_000_000;

/**
 * Sheds load: a call beyond the limits fails at once with RESOURCE_EXHAUSTED (and a
 * `retry-after-ms` trailer) instead of queueing. A call holds its slot until its unary
 * response settles or its streaming response finishes, fails or is abandoned (returned
 * early, or its call cancelled), so slow DoGet readers count for as long as they read.
 *
 * Returns the middleware and a `concurrency` stats section (in progress, limits, refusals).
 *
 * @throws TypeError naming the invalid option and its valid range.
 *
 * @example
 * createFlightServer(concurrencyLimit({ global: 256, perMethod: { doPut: 16, doExchange: 8 } }));
 */
export function concurrencyLimit(options: ConcurrencyLimitOptions): ServerParts {
  const where = "concurrencyLimit";
  const o = checkOptions<ConcurrencyLimitOptions>(where, options, ["global", "perMethod", "retryAfterMs"], true);
  const global = checkOptionalInt(where, "global", o.global, 1, MAX_LIMIT);
  const retryAfterMs = checkInt(where, "retryAfterMs", o.retryAfterMs, 0, 3_600_000, 100);
  const perMethod = new Map<FlightMethod, number>();
  if (o.perMethod !== undefined) {
    checkObject(where, "perMethod", o.perMethod, "an object { method: limit }");
    checkOptions(where, o.perMethod, FLIGHT_METHODS, true, "perMethod");
    for (const [method, limit] of Object.entries(o.perMethod)) {
      if (limit !== undefined) perMethod.set(method as FlightMethod, checkInt(where, `perMethod.${method}`, limit, 0, MAX_LIMIT));
    }
  }
  if (global === undefined && perMethod.size === 0) throw new TypeError(`${where}: give global, perMethod or both`);

  let inFlight = 0;
  const inFlightBy = new Map<FlightMethod, number>(FLIGHT_METHODS.map((m) => [m, 0]));
  const refusedBy = new Map<FlightMethod, number>(FLIGHT_METHODS.map((m) => [m, 0]));
  const metadata = retryAfterMs > 0 ? { "retry-after-ms": String(retryAfterMs) } : undefined;

  const refuse = (method: FlightMethod, what: string, limit: number): FlightError => {
    refusedBy.set(method, refusedBy.get(method)! + 1);
    if (limit === 0) {
      return new FlightError(StatusCode.RESOURCE_EXHAUSTED, `${method} calls are not accepted by this server (concurrencyLimit ${method}: 0)`);
    }
    return new FlightError(
      StatusCode.RESOURCE_EXHAUSTED,
      `server busy: ${limit} ${what} calls in progress (concurrencyLimit); retry later`,
      metadata && { metadata: { ...metadata } },
    );
  };

  const middleware: FlightMiddleware = function concurrencyLimitMiddleware(next) {
    return async function concurrencyLimit(call) {
      const method = call.method;
      const methodLimit = perMethod.get(method);
      const current = inFlightBy.get(method)!;
      if (methodLimit !== undefined && current >= methodLimit) throw refuse(method, method, methodLimit);
      if (global !== undefined && inFlight >= global) throw refuse(method, "concurrent", global);
      inFlight++;
      inFlightBy.set(method, current + 1);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        inFlight--;
        inFlightBy.set(method, inFlightBy.get(method)! - 1);
      };
      return observeCall(call, next, { onEnd: release });
    };
  };

  const stats = statsSection("concurrency", function collectConcurrency() {
    return {
      inFlight,
      limit: global ?? null,
      byMethod: Object.fromEntries(
        FLIGHT_METHODS.map((m) => [m, { inFlight: inFlightBy.get(m)!, limit: perMethod.get(m) ?? null, refused: refusedBy.get(m)! }]),
      ),
    };
  });
  return serverParts(middleware, stats);
}
