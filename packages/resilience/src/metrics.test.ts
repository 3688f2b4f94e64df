import { Registry, register as globalRegistry } from "prom-client";
import { settingsOf, FlightError, StatusCode, composeMiddleware, type FlightData, type FlightHandler, type StoreStats } from "@blackice/flight-core";
import { circuitBreaker } from "./circuit-breaker";
import { concurrencyLimit } from "./concurrency-limit";
import { metrics } from "./metrics";
import { FakeStore, drain, expectFlightError, flightData, fromArray, makeCall, settle } from "./test-calls";

const descriptor = { type: 1, path: ["a"], cmd: new Uint8Array() };

/** doGet streams two messages (10+100, 20+200 bytes); doPut and doExchange echo/ack their input; getSchema fails. */
const handler: FlightHandler = async (call) => {
  switch (call.method) {
    case "doGet":
      return fromArray([flightData(10, 100), flightData(20, 200)]) as never;
    case "doPut": {
      const req = call.request;
      return (async function* () {
        for await (const m of req) yield { appMetadata: new Uint8Array([m.dataHeader.byteLength]) };
      })() as never;
    }
    case "doExchange": {
      const req = call.request;
      return (async function* () {
        for await (const m of req) yield m;
      })() as never;
    }
    case "getSchema":
      throw new FlightError(StatusCode.NOT_FOUND, "no such flight");
    default:
      return fromArray([]) as never;
  }
};

/** The value of one sample line of the text exposition, e.g. `calls_total{method="doGet",code="OK"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("counts calls by method and code, latency, and FlightData bytes in and out", async () => {
  const registry = new Registry();
  const mw = metrics({ registry });
  const chain = composeMiddleware([mw], handler);

  await drain((await chain(makeCall("doGet", { ticket: new Uint8Array([1]) }))) as AsyncIterable<FlightData>);
  await drain((await chain(makeCall("doPut", fromArray([flightData(5, 50), flightData(5, 45)])))) as AsyncIterable<unknown>);
  await drain((await chain(makeCall("doExchange", fromArray([flightData(1, 9)])))) as AsyncIterable<unknown>);
  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.NOT_FOUND);
  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.NOT_FOUND);

  const text = await registry.metrics();
  expect(sample(text, 'blackice_flight_calls_total{method="doGet",code="OK"}')).toBe(1);
  expect(sample(text, 'blackice_flight_calls_total{method="doPut",code="OK"}')).toBe(1);
  expect(sample(text, 'blackice_flight_calls_total{method="getSchema",code="NOT_FOUND"}')).toBe(2);
  expect(sample(text, 'blackice_flight_sent_bytes_total{method="doGet"}')).toBe(330);
  expect(sample(text, 'blackice_flight_received_bytes_total{method="doPut"}')).toBe(105);
  expect(sample(text, 'blackice_flight_received_bytes_total{method="doExchange"}')).toBe(10);
  expect(sample(text, 'blackice_flight_sent_bytes_total{method="doExchange"}')).toBe(10);
  expect(sample(text, 'blackice_flight_call_duration_seconds_count{method="getSchema"}')).toBe(2);
  expect(sample(text, 'blackice_flight_call_duration_seconds_bucket{le="+Inf",method="doGet"}')).toBe(1);
  expect(sample(text, 'blackice_flight_calls_in_flight{method="doGet"}')).toBe(0);
  // The library never touches the global registry.
  expect(await globalRegistry.metrics()).not.toContain("blackice_flight");
});

test("an abandoned stream counts as CANCELLED and leaves no call in flight; refusals by later middleware are counted", async () => {
  const registry = new Registry();
  const mw = metrics({ registry, prefix: "t_" });
  const limit = concurrencyLimit({ perMethod: { doGet: 1 } });
  const chain = composeMiddleware([mw, limit], handler);
  const held = (await chain(makeCall("doGet", { ticket: new Uint8Array([1]) }))) as AsyncIterable<FlightData>;
  expect(sample(await registry.metrics(), 't_calls_in_flight{method="doGet"}')).toBe(1);
  await expectFlightError(() => chain(makeCall("doGet", { ticket: new Uint8Array([1]) })), StatusCode.RESOURCE_EXHAUSTED);
  for await (const m of held) {
    void m;
    break;
  }
  const text = await registry.metrics();
  expect(sample(text, 't_calls_total{method="doGet",code="CANCELLED"}')).toBe(1);
  expect(sample(text, 't_calls_total{method="doGet",code="RESOURCE_EXHAUSTED"}')).toBe(1);
  expect(sample(text, 't_calls_in_flight{method="doGet"}')).toBe(0);
  expect(sample(text, 't_sent_bytes_total{method="doGet"}')).toBe(110);
});

test("store, GC, breaker and auth figures are collected at scrape time", async () => {
  const registry = new Registry();
  const store = new FakeStore();
  let stats: StoreStats = store.stats();
  const breaker = circuitBreaker({ name: "store", volumeThreshold: 1, resetTimeoutMs: 60_000 });
  const auth: Record<string, number> = { "bad-signature": 2 };
  const calls = { storeStats: 0 };
  store.stats = () => {
    calls.storeStats++;
    return stats;
  };
  const lifecycle = settingsOf(metrics({ registry, breakers: [breaker], authFailures: () => auth }), "lifecycle")[0]!;
  // Before the server is built there is no store to read: no store figures, no error.
  expect(sample(await registry.metrics(), "blackice_flight_store_flights")).toBe(0);
  lifecycle.onCreate!({ store }); // what createFlightServer does with the store it serves from

  let text = await registry.metrics();
  expect(calls.storeStats).toBe(1); // one read per scrape, shared by all store metrics
  expect(sample(text, "blackice_flight_store_flights")).toBe(3);
  expect(sample(text, "blackice_flight_store_rows")).toBe(300);
  expect(sample(text, "blackice_flight_store_bytes")).toBe(4096);
  expect(sample(text, "blackice_flight_store_memory_bytes")).toBe(5000);
  expect(sample(text, "blackice_flight_store_memory_reserved_bytes")).toBe(100);
  expect(sample(text, "blackice_flight_store_memory_limit_bytes")).toBe(1 << 20);
  expect(sample(text, "blackice_flight_gc_runs_total")).toBe(2);
  expect(sample(text, "blackice_flight_gc_bytes_freed_total")).toBe(777);
  expect(sample(text, 'blackice_flight_breaker_state{breaker="store"}')).toBe(0);
  expect(sample(text, 'blackice_flight_auth_failures_total{reason="bad-signature"}')).toBe(2);

  stats = {
    ...stats,
    gc: { ...stats.gc!, gcRuns: 5, gcBytesFreed: 1000 },
    flights: 1,
    disk: { dir: "/d", fsync: "always", usedBytes: 9000, reservedBytes: 10, maxDiskBytes: 1 << 30 },
  };
  auth["bad-signature"] = 3;
  auth["expired"] = 1;
  await expect(breaker.guard("x", async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
  await settle();
  await expect(breaker.guard("x", async () => 1)).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });

  text = await registry.metrics();
  expect(sample(text, "blackice_flight_store_flights")).toBe(1);
  expect(sample(text, "blackice_flight_gc_runs_total")).toBe(5);
  expect(sample(text, "blackice_flight_store_disk_bytes")).toBe(9000);
  expect(sample(text, "blackice_flight_store_disk_reserved_bytes")).toBe(10);
  expect(sample(text, "blackice_flight_store_disk_limit_bytes")).toBe(1 << 30);
  expect(sample(text, "blackice_flight_gc_bytes_freed_total")).toBe(1000);
  expect(sample(text, 'blackice_flight_breaker_state{breaker="store"}')).toBe(2);
  expect(sample(text, 'blackice_flight_breaker_transitions_total{breaker="store",to="open"}')).toBe(1);
  expect(sample(text, 'blackice_flight_breaker_failures_total{breaker="store"}')).toBe(1);
  expect(sample(text, 'blackice_flight_breaker_rejections_total{breaker="store"}')).toBe(1);
  expect(sample(text, 'blackice_flight_auth_failures_total{reason="bad-signature"}')).toBe(3);
  expect(sample(text, 'blackice_flight_auth_failures_total{reason="expired"}')).toBe(1);
  breaker.shutdown();
});

test("a failing collector goes to onError and the scrape still succeeds", async () => {
  const registry = new Registry();
  const onError = jest.fn();
  const store = new FakeStore();
  store.stats = () => {
    throw new Error("store stats broke");
  };
  const lifecycle = settingsOf(metrics({ registry, onError }), "lifecycle")[0]!;
  lifecycle.onCreate!({ store });
  const text = await registry.metrics();
  expect(text).toContain("blackice_flight_calls_total");
  expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: "store stats broke" }));
});

test("the registry is required, names must be free, and shutdown unregisters", async () => {
  expect(() => metrics({} as never)).toThrow(/registry must be a prom-client Registry/);
  expect(() => metrics({ registry: new Registry(), prefix: "bad-prefix" })).toThrow(/prefix must be empty or match \[a-zA-Z_:\]/);
  expect(() => metrics({ registry: new Registry(), buckets: [1, 0.5] })).toThrow(/buckets must be a non-empty array of increasing/);

  const registry = new Registry();
  const lifecycle = settingsOf(metrics({ registry }), "lifecycle")[0]!;
  expect(() => metrics({ registry })).toThrow(/a metric named blackice_flight_calls_total is already registered/);
  expect(registry.getSingleMetric("blackice_flight_calls_total")).toBeDefined();
  await lifecycle.onShutdown?.();
  expect(registry.getMetricsAsArray()).toHaveLength(0);
  expect(() => metrics({ registry })).not.toThrow();
});
