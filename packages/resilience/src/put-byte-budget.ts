import {
  FlightError,
  StatusCode,
  statsSection,
  type FlightData,
  type FlightMethod,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkEnumArray,
} from "@blackice/flight-core";
import { observeCall, withFields } from "./observe-call";
import { checkInt, checkOptions } from "@blackice/flight-core";
import { watchIterable } from "./watch-iterable";

/** Options of {@link putByteBudget}. */
export interface PutByteBudgetOptions {
  /** Bytes (FlightData header + body) that DoPut calls of one connection may have in flight together. */
  perConnectionBytes: number;
  /** Methods whose uploads count. Default `["doPut"]`; `"doExchange"` may be added. */
  methods?: readonly ("doPut" | "doExchange")[];
}

/**
 * Header plus body bytes of a FlightData message (app metadata and descriptor not counted).
 *
 * @example
 * const bytes = flightDataBytes({ flightDescriptor: undefined, dataHeader, dataBody, appMetadata });
 */
export function flightDataBytes(m: FlightData): number {
  return (m.dataHeader?.byteLength ?? 0) + (m.dataBody?.byteLength ?? 0);
}

/**
 * Bounds what one client connection (keyed by `call.peer`) can push at once: the FlightData
 * bytes received by its DoPut calls that are still in progress. A message that would pass
 * the budget fails the put with RESOURCE_EXHAUSTED (the store handler then aborts the put,
 * so nothing is stored); the bytes are released when the call ends, however it ends.
 *
 * This is a fairness limit between clients; the store's memory limit still bounds the total.
 * Returns the middleware and a `putByteBudget` stats section.
 *
 * @throws TypeError naming the invalid option and its valid range.
 *
 * @example
 * createFlightServer(putByteBudget({ perConnectionBytes: 512 * 1024 * 1024 }));
 */
export function putByteBudget(options: PutByteBudgetOptions): ServerParts {
  const where = "putByteBudget";
  const o = checkOptions<PutByteBudgetOptions>(where, options, ["perConnectionBytes", "methods"], true);
  const budget = checkInt(where, "perConnectionBytes", o.perConnectionBytes, 1, Number.MAX_SAFE_INTEGER);
  const methods = new Set<FlightMethod>(checkEnumArray<FlightMethod>(where, "methods", o.methods, ["doPut", "doExchange"], ["doPut"]));

  const inFlight = new Map<string, number>();
  let refused = 0;

  const middleware: FlightMiddleware = function putByteBudgetMiddleware(next) {
    return async function putByteBudget(call) {
      if (!methods.has(call.method)) return next(call);
      const peer = call.peer;
      let mine = 0;
      let ended = false;
      const count = (m: FlightData): void => {
        // A request read after its call ended (unusual) no longer holds any budget.
        if (ended) return;
        const n = flightDataBytes(m);
        const total = inFlight.get(peer) ?? 0;
        if (total + n > budget) {
          refused++;
          throw new FlightError(
            StatusCode.RESOURCE_EXHAUSTED,
            `upload budget of this connection exceeded: ${total} bytes in flight, ${n} more received, ` +
              `limit ${budget} bytes (putByteBudget perConnectionBytes)`,
          );
        }
        mine += n;
        inFlight.set(peer, total + n);
      };
      const release = (): void => {
        ended = true;
        if (mine === 0) return;
        const left = (inFlight.get(peer) ?? mine) - mine;
        mine = 0;
        if (left > 0) inFlight.set(peer, left);
        else inFlight.delete(peer);
      };
      const request = watchIterable(call.request as AsyncIterable<FlightData>, { onItem: count });
      return observeCall(withFields(call, { request }), next, { onEnd: release });
    };
  };

  const stats = statsSection("putByteBudget", function collectPutByteBudget() {
    let bytes = 0;
    for (const n of inFlight.values()) bytes += n;
    return { perConnectionBytes: budget, connections: inFlight.size, bytesInFlight: bytes, refused };
  });
  return serverParts(middleware, stats);
}
