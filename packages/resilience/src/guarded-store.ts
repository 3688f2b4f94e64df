import { serverParts, wrapStore, type FlightStore, type PutTransaction, type ServerParts, type StoredFlight } from "@blackice/flight-core";
import type { FlightCircuitBreaker } from "./circuit-breaker";

type Guard = <T>(operation: string, work: () => T | Promise<T>) => Promise<T>;

function guardedTransaction(tx: PutTransaction, guard: Guard): PutTransaction {
  return {
    append: function append(message) {
      return guard("store.append", () => tx.append(message));
    },
    commit: function commit() {
      return guard("store.commit", () => tx.commit());
    },
    // Never refused: an open circuit must not keep a reservation alive.
    abort: function abort() {
      return tx.abort();
    },
  };
}

/** A listing whose every step (opening it included) runs through the guard. */
function guardedIterable(open: () => AsyncIterable<StoredFlight>, guard: Guard): AsyncIterable<StoredFlight> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<StoredFlight> {
      let it: AsyncIterator<StoredFlight> | undefined;
      return {
        next: () =>
          guard("store.list", () => {
            it ??= open()[Symbol.asyncIterator]();
            return it.next();
          }),
        return: async (value?: unknown) => (await it?.return?.(value)) ?? { done: true, value: undefined },
      };
    },
  };
}

/** Wraps `store` so that its operations run through `breaker` (see {@link guardedStore}). */
function guardStore(store: FlightStore, breaker: FlightCircuitBreaker): FlightStore {
  const guard: Guard = (operation, work) => breaker.guard(operation, work);
  const guarded: Partial<FlightStore> = {
    beginPut: async function beginPut(descriptor, schema, options) {
      return guardedTransaction(await guard("store.beginPut", () => store.beginPut(descriptor, schema, options)), guard);
    },
    get: function get(descriptor) {
      return guard("store.get", () => store.get(descriptor));
    },
    getByTicket: function getByTicket(ticket) {
      return guard("store.getByTicket", () => store.getByTicket(ticket));
    },
    list: function list(pathPrefix) {
      return guardedIterable(() => store.list(pathPrefix), guard);
    },
    delete: function deleteFlight(descriptor) {
      return guard("store.delete", () => store.delete(descriptor));
    },
  };
  // Capabilities are guarded only when the store offers them, so the wrapper offers exactly
  // what the store offers (the server and the actions check for them).
  if (typeof store.renew === "function") {
    guarded.renew = function renew(descriptor, ttlMs) {
      return guard("store.renew", () => store.renew!(descriptor, ttlMs));
    };
  }
  if (typeof store.gc === "function") {
    guarded.gc = function gc() {
      return guard("store.gc", () => store.gc!());
    };
  }
  const bound = new WeakMap<object, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(guarded, prop)) return guarded[prop as keyof FlightStore];
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      // Methods run with the real store as `this`, so private state keeps working.
      let fn = bound.get(value);
      if (fn === undefined) {
        fn = (value as (...args: unknown[]) => unknown).bind(target);
        bound.set(value, fn);
      }
      return fn;
    },
  });
}

/**
 * A server setting that wraps the server's store (whichever it is: its own MemoryStore or the
 * one `withStore` gives) so that every store operation runs through `breaker`: a store that
 * keeps failing opens the circuit, and while it is open the operations fail fast with
 * UNAVAILABLE and a `retry-after-ms` trailer instead of piling up on a broken store. Middleware
 * and actions then see the guarded store as `call.store`.
 *
 * Guarded (with the breaker's timeout): `beginPut`, a put's `append` and `commit`, `get`,
 * `getByTicket`, `list` (each step), `delete`, and the capabilities `renew` and `gc` when the
 * store offers them. Not guarded: `ticketFor` (pure), `stats` and `close` (must work while
 * open), a put's `abort` (must always release its reservation), a flight's `messages()`
 * stream (it belongs to a DoGet already under way), and the capability setters (passed
 * through, so the wrapper offers what the store offers).
 *
 * @example
 * const breaker = circuitBreaker({ name: "store" });
 * createFlightServer(guardedStore(breaker), breaker.parts);
 */
export function guardedStore(breaker: FlightCircuitBreaker): ServerParts {
  if (!breaker || typeof breaker.guard !== "function" || typeof breaker.name !== "string") {
    throw new TypeError("guardedStore: breaker must be made by circuitBreaker()");
  }
  return serverParts(
    wrapStore(`guardedStore(${breaker.name})`, function guardServerStore(store) {
      return guardStore(store, breaker);
    }),
  );
}
