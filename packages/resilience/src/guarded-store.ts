import type { FlightStore, PutTransaction, StoredFlight } from "@blackice/flight-core";
import type { FlightCircuitBreaker } from "./circuit-breaker";

type Guard = FlightCircuitBreaker["guardSync"];

function guardedTransaction(tx: PutTransaction, guard: Guard): PutTransaction {
  return {
    append: function append(message) {
      guard("store.append", () => tx.append(message));
    },
    commit: function commit() {
      return guard("store.commit", () => tx.commit());
    },
    // Never refused: an open circuit must not keep a reservation alive.
    abort: function abort() {
      tx.abort();
    },
  };
}

function guardedIterable(source: Iterable<StoredFlight>, guard: Guard): Iterable<StoredFlight> {
  return {
    [Symbol.iterator](): Iterator<StoredFlight> {
      const it = guard("store.list", () => source[Symbol.iterator]());
      return {
        next: () => guard("store.list", () => it.next()),
        return: (value?: unknown) => it.return?.(value) ?? { done: true, value: undefined },
      };
    },
  };
}

/**
 * Wraps a FlightStore so that every store operation runs through `breaker`: a store that
 * keeps failing opens the circuit, and while it is open the operations fail fast with
 * UNAVAILABLE and a `retry-after-ms` trailer instead of piling up on a broken store.
 *
 * Guarded: `beginPut`, a put's `append` and `commit`, `get`, `getByTicket`, `list` (each step),
 * `delete`, `renew`, `gc`. Not guarded: `ticketFor` (pure), `stats` and `close` (must work while
 * open), a put's `abort` (must always release its reservation). Other members of the store
 * (such as MemoryStore's setters) are passed through, so the result keeps the store's type.
 *
 * Store operations are synchronous, so the breaker's timeout does not apply to them.
 *
 * @example
 * const breaker = circuitBreaker({ name: "store" });
 * createFlightServer(withStore(guardedStore(new MemoryStore(), breaker)), breaker.parts);
 */
export function guardedStore<S extends FlightStore>(store: S, breaker: FlightCircuitBreaker): S {
  if (!store || typeof store.beginPut !== "function" || typeof store.get !== "function") {
    throw new TypeError("guardedStore: store must be a FlightStore");
  }
  if (!breaker || typeof breaker.guardSync !== "function") {
    throw new TypeError("guardedStore: breaker must be made by circuitBreaker()");
  }
  const guard: Guard = (operation, work) => breaker.guardSync(operation, work);
  const guarded: Partial<FlightStore> = {
    beginPut: function beginPut(descriptor, schema, options) {
      return guardedTransaction(
        guard("store.beginPut", () => store.beginPut(descriptor, schema, options)),
        guard,
      );
    },
    get: function get(descriptor) {
      return guard("store.get", () => store.get(descriptor));
    },
    getByTicket: function getByTicket(ticket) {
      return guard("store.getByTicket", () => store.getByTicket(ticket));
    },
    list: function list(pathPrefix) {
      return guardedIterable(
        guard("store.list", () => store.list(pathPrefix)),
        guard,
      );
    },
    delete: function deleteFlight(descriptor) {
      return guard("store.delete", () => store.delete(descriptor));
    },
    renew: function renew(descriptor, ttlMs) {
      return guard("store.renew", () => store.renew(descriptor, ttlMs));
    },
    gc: function gc() {
      return guard("store.gc", () => store.gc());
    },
  };
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
