import { FlightError, STREAMING_REQUEST_METHODS, STREAMING_RESPONSE_METHODS, StatusCode, type FlightMiddleware, type FlightResponse, serverParts, type ServerParts } from "@blackice/flight-core";
import { withFields } from "./observe-call";
import { MAX_TIMER_MS, checkOptionalInt, checkOptions } from "@blackice/flight-core";
import { isAsyncIterable, watchIterable } from "./watch-iterable";

/** Options of {@link deadlines}. */
export interface DeadlinesOptions {
  /** The deadline of calls whose client set none, in ms from the call's start. */
  defaultMs?: number;
  /** The longest any call may run, in ms, even when the client asked for more (or for no deadline). */
  maxMs?: number;
}

const noop = (): void => {};

/** Resolves like `p`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal, onLateValue: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    p.then(onLateValue, noop);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) onLateValue(value);
        else resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** Stops a streaming response that arrived after the call already failed. */
function dropLate(value: unknown): void {
  if (isAsyncIterable(value)) value[Symbol.asyncIterator]().return?.().then(noop, noop);
}

/**
 * Server-side deadlines. The binding already aborts `call.signal` when the client cancels or
 * its own deadline passes; this adds a deadline to calls without one (`defaultMs`) and caps
 * every call (`maxMs`). When the server deadline passes, the signal handed to later
 * middleware and the handler aborts with DEADLINE_EXCEEDED, a pending request or response
 * message read is interrupted, and the call fails with DEADLINE_EXCEEDED. Later middleware
 * see the effective deadline in `call.deadline`.
 *
 * The deadline covers the whole call, streaming the response included. Place it outside
 * (before) the middleware whose work it should bound.
 *
 * @throws TypeError naming the invalid option and its valid range.
 *
 * @example
 * createFlightServer(deadlines({ defaultMs: 30_000, maxMs: 10 * 60_000 }), callLogger({ logger }));
 */
export function deadlines(options: DeadlinesOptions): ServerParts {
  const where = "deadlines";
  const o = checkOptions<DeadlinesOptions>(where, options, ["defaultMs", "maxMs"], true);
  const defaultMs = checkOptionalInt(where, "defaultMs", o.defaultMs, 1, MAX_TIMER_MS);
  const maxMs = checkOptionalInt(where, "maxMs", o.maxMs, 1, MAX_TIMER_MS);
  if (defaultMs === undefined && maxMs === undefined) throw new TypeError(`${where}: give defaultMs, maxMs or both`);
  if (defaultMs !== undefined && maxMs !== undefined && defaultMs > maxMs) {
    throw new TypeError(`${where}: defaultMs (${defaultMs}) must not be greater than maxMs (${maxMs})`);
  }

  const middleware: FlightMiddleware = function deadlinesMiddleware(next) {
    return async function deadlines(call) {
      const now = Date.now();
      const clientBudget = call.deadline === undefined ? undefined : call.deadline - now;
      let budget = clientBudget ?? defaultMs;
      if (maxMs !== undefined) budget = budget === undefined ? maxMs : Math.min(budget, maxMs);
      // The client's own deadline is the tighter one: the binding enforces it already.
      if (budget === undefined || (clientBudget !== undefined && budget >= clientBudget)) return next(call);
      if (budget <= 0) throw new FlightError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the call started");

      const controller = new AbortController();
      const onCallAbort = (): void => controller.abort(call.signal.reason);
      if (call.signal.aborted) onCallAbort();
      else call.signal.addEventListener("abort", onCallAbort, { once: true });
      const timer = setTimeout(
        () => controller.abort(new FlightError(StatusCode.DEADLINE_EXCEEDED, `server deadline of ${budget} ms exceeded`)),
        budget,
      );
      // The timer bounds a call; it must not keep a stopping process alive.
      timer.unref();
      const cleanup = (): void => {
        clearTimeout(timer);
        call.signal.removeEventListener("abort", onCallAbort);
      };

      const signal = controller.signal;
      const request = STREAMING_REQUEST_METHODS.has(call.method) ? watchIterable(call.request as AsyncIterable<unknown>, { signal }) : call.request;
      const inner = withFields(call, { signal, deadline: now + budget, request: request as never });
      let response: FlightResponse;
      try {
        response = await raceAbort(Promise.resolve().then(() => next(inner)), signal, dropLate);
      } catch (err) {
        cleanup();
        throw err;
      }
      if (!STREAMING_RESPONSE_METHODS.has(call.method) || !isAsyncIterable(response)) {
        cleanup();
        return response;
      }
      return watchIterable(response as AsyncIterable<unknown>, { signal, onEnd: cleanup }) as FlightResponse;
    };
  };
  return serverParts(middleware);
}
