import { FlightError, StatusCode, composeMiddleware, type FlightCall, type FlightData, type FlightHandler } from "@blackice/flight-core";
import { deadlines } from "./deadlines";
import { drain, expectFlightError, flightData, fromArray, gatedStream, makeCall } from "./test-calls";

const descriptor = { type: 1, path: ["a"], cmd: new Uint8Array() };
const info = { schema: new Uint8Array(), flightDescriptor: descriptor, endpoint: [], totalRecords: 0, totalBytes: 0, ordered: false, appMetadata: new Uint8Array() };

afterEach(() => jest.restoreAllMocks());

test("a call without a client deadline gets the default; its work is aborted and it fails with DEADLINE_EXCEEDED", async () => {
  let seen: FlightCall | undefined;
  const handler: FlightHandler = (call) => {
    seen = call;
    // Work that only stops when its signal says so.
    return new Promise((_, reject) => call.signal.addEventListener("abort", () => reject(call.signal.reason)));
  };
  const chain = composeMiddleware([deadlines({ defaultMs: 20 })], handler);
  const before = Date.now();
  const err = await expectFlightError(() => chain(makeCall("getFlightInfo", descriptor)), StatusCode.DEADLINE_EXCEEDED);
  expect(err.message).toMatch(/server deadline of 20 ms exceeded/);
  expect(seen!.signal.aborted).toBe(true);
  expect(seen!.deadline).toBeGreaterThanOrEqual(before + 20);
});

test("a handler that ignores its signal still cannot hold the call past the deadline", async () => {
  const handler: FlightHandler = () => new Promise(() => {});
  const chain = composeMiddleware([deadlines({ defaultMs: 10 })], handler);
  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.DEADLINE_EXCEEDED);
});

test("a stuck streaming response is interrupted and its source stopped", async () => {
  const stream = gatedStream([flightData(1, 1)]);
  const chain = composeMiddleware([deadlines({ defaultMs: 20 })], async () => stream.iterable as never);
  const response = (await chain(makeCall("doGet", { ticket: new Uint8Array([1]) }))) as AsyncIterable<FlightData>;
  const it = response[Symbol.asyncIterator]();
  expect((await it.next()).done).toBe(false);
  await expectFlightError(() => it.next(), StatusCode.DEADLINE_EXCEEDED);
  expect(stream.returned()).toBe(true);
});

test("a slow client-streaming request read is interrupted", async () => {
  let handlerError: unknown;
  const never: AsyncIterable<FlightData> = { [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) };
  const handler: FlightHandler = async (call) => {
    if (call.method !== "doPut") throw new Error("unexpected");
    try {
      for await (const m of call.request) void m;
    } catch (err) {
      handlerError = err;
      throw err;
    }
    return fromArray([]) as never;
  };
  const chain = composeMiddleware([deadlines({ defaultMs: 20 })], handler);
  await expectFlightError(() => chain(makeCall("doPut", never)), StatusCode.DEADLINE_EXCEEDED);
  expect(handlerError).toBeInstanceOf(FlightError);
});

test("a tighter client deadline is left to the binding; maxMs caps a looser one", async () => {
  let seen: FlightCall | undefined;
  const handler: FlightHandler = async (call) => {
    seen = call;
    return info;
  };
  const chain = composeMiddleware([deadlines({ defaultMs: 1000, maxMs: 5000 })], handler);

  const tight = makeCall("getFlightInfo", descriptor, { deadline: Date.now() + 100 });
  await chain(tight);
  expect(seen).toBe(tight); // untouched: same call, same signal

  const loose = makeCall("getFlightInfo", descriptor, { deadline: Date.now() + 60_000 });
  const now = Date.now();
  await chain(loose);
  expect(seen).not.toBe(loose);
  expect(seen!.deadline).toBeLessThanOrEqual(Date.now() + 5000);
  expect(seen!.deadline).toBeGreaterThanOrEqual(now + 5000);
  expect(seen!.signal).not.toBe(loose.signal);
  expect(seen!.context).toBe(loose.context);
});

test("the client's cancellation reaches the inner signal; timers are cleared when calls end", async () => {
  const cleared = jest.spyOn(global, "clearTimeout");
  let inner: AbortSignal | undefined;
  const handler: FlightHandler = async (call) => {
    inner = call.signal;
    return fromArray([flightData(1, 2)]) as never;
  };
  const chain = composeMiddleware([deadlines({ maxMs: 60_000 })], handler);
  const client = new AbortController();
  const response = (await chain(makeCall("doGet", { ticket: new Uint8Array([1]) }, { signal: client.signal }))) as AsyncIterable<FlightData>;
  client.abort(new FlightError(StatusCode.CANCELLED, "bye"));
  expect(inner!.aborted).toBe(true);
  expect((inner!.reason as FlightError).code).toBe(StatusCode.CANCELLED);
  expect(cleared).toHaveBeenCalled();

  cleared.mockClear();
  const ok = (await chain(makeCall("doGet", { ticket: new Uint8Array([1]) }))) as AsyncIterable<FlightData>;
  expect(await drain(ok)).toHaveLength(1);
  expect(cleared).toHaveBeenCalledTimes(1);
  void response;
});

test("options are validated", () => {
  expect(() => deadlines({})).toThrow(/give defaultMs, maxMs or both/);
  expect(() => deadlines({ defaultMs: 0 })).toThrow(/deadlines: defaultMs must be an integer from 1 to 2147483647; got 0/);
  expect(() => deadlines({ defaultMs: 10, maxMs: 5 })).toThrow(/defaultMs \(10\) must not be greater than maxMs \(5\)/);
});
