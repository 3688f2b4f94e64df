import { settingsOf, MemoryStore, StatusCode, offersGc, offersMemoryLimit, offersTtl, type FlightStore } from "@blackice/flight-core";
import { circuitBreaker } from "./circuit-breaker";
import { guardedStore } from "./guarded-store";
import { FakeStore, expectFlightError } from "./test-calls";

const desc = { type: 1, path: ["nothing", "here"], cmd: new Uint8Array() };

test("guardedStore is a store wrapper setting; the guarded MemoryStore keeps its capabilities; answers that are not failures keep it closed", async () => {
  const store = new MemoryStore({ enableGC: false, maxMemoryBytes: 1000 });
  const breaker = circuitBreaker({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1 });
  const setting = settingsOf(guardedStore(breaker), "storeWrapper")[0]!;
  expect(setting).toMatchObject({ kind: "storeWrapper", name: "guardedStore(store)" });
  const guarded: FlightStore = setting.wrap(store);

  expect(offersTtl(guarded) && offersGc(guarded) && offersMemoryLimit(guarded)).toBe(true);
  guarded.setMaxMemoryBytes!(4096); // passed through to the real store
  guarded.setDefaultTtl!(60_000);
  expect(guarded.stats()).toMatchObject({ memory: { maxMemoryBytes: 4096 }, ttl: { defaultTtlMs: 60_000 } });
  expect(await guarded.get(desc)).toBeUndefined();
  expect(await guarded.delete(desc)).toBe(false);
  const listed = [];
  for await (const f of guarded.list()) listed.push(f);
  expect(listed).toEqual([]);
  expect((await guarded.gc!()).flightsRemoved).toBe(0);
  // A malformed ticket is INVALID_ARGUMENT: the caller's mistake.
  await expectFlightError(() => guarded.getByTicket(new Uint8Array([0xff, 0xfe])), StatusCode.INVALID_ARGUMENT);
  await new Promise((r) => setImmediate(r));
  expect(breaker.state).toBe("closed");
  expect(breaker.stats().operations["store.get"]).toEqual({ calls: 1, failures: 0 });

  breaker.shutdown();
  await store.close();
});

test("the wrapper offers only the capabilities the store offers", () => {
  const breaker = circuitBreaker({ name: "bare" });
  const fake = new FakeStore();
  const bare: FlightStore = {
    beginPut: fake.beginPut.bind(fake),
    get: fake.get.bind(fake),
    getByTicket: fake.getByTicket.bind(fake),
    ticketFor: fake.ticketFor.bind(fake),
    list: fake.list.bind(fake),
    delete: fake.delete.bind(fake),
    stats: () => ({ flights: 0, rows: 0, bytes: 0 }),
    close: fake.close.bind(fake),
  };
  const guarded = settingsOf(guardedStore(breaker), "storeWrapper")[0]!.wrap(bare);
  expect(offersTtl(guarded) || offersGc(guarded) || offersMemoryLimit(guarded)).toBe(false);
  breaker.shutdown();
});

test("arguments are checked", () => {
  expect(() => guardedStore({} as never)).toThrow(/breaker must be made by circuitBreaker/);
  expect(() => guardedStore(undefined as never)).toThrow(/breaker must be made by circuitBreaker/);
});
