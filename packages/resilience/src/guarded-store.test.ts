import { MemoryStore, StatusCode } from "@blackice/flight-core";
import { circuitBreaker } from "./circuit-breaker";
import { guardedStore } from "./guarded-store";
import { expectFlightError } from "./test-calls";

const desc = { type: 1, path: ["nothing", "here"], cmd: new Uint8Array() };

test("a guarded MemoryStore keeps its own methods and type; answers that are not failures keep it closed", async () => {
  const store = new MemoryStore({ enableGC: false, maxMemoryBytes: 1000 });
  const breaker = circuitBreaker({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1 });
  const guarded = guardedStore(store, breaker);

  guarded.setMaxMemoryBytes(4096); // passed through to the real store
  guarded.setDefaultTtl(60_000);
  expect(guarded.stats()).toMatchObject({ maxMemoryBytes: 4096, defaultTtlMs: 60_000 });
  expect(guarded.get(desc)).toBeUndefined();
  expect(guarded.delete(desc)).toBe(false);
  expect([...guarded.list()]).toEqual([]);
  expect(guarded.gc().flightsRemoved).toBe(0);
  // A malformed ticket is INVALID_ARGUMENT: the caller's mistake.
  await expectFlightError(() => guarded.getByTicket(new Uint8Array([0xff, 0xfe])), StatusCode.INVALID_ARGUMENT);
  await new Promise((r) => setImmediate(r));
  expect(breaker.state).toBe("closed");
  expect(breaker.stats().operations["store.get"]).toEqual({ calls: 1, failures: 0 });

  breaker.shutdown();
  store.close();
});

test("arguments are checked", () => {
  const breaker = circuitBreaker();
  expect(() => guardedStore({} as never, breaker)).toThrow(/guardedStore: store must be a FlightStore/);
  expect(() => guardedStore(new MemoryStore({ enableGC: false }), {} as never)).toThrow(/breaker must be made by circuitBreaker/);
  breaker.shutdown();
});
