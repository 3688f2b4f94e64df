import { settingsOf, FlightError, StatusCode, composeMiddleware, type FlightData, type FlightHandler } from "@blackice/flight-core";
import { concurrencyLimit } from "./concurrency-limit";
import { drain, expectFlightError, flightData, fromArray, gatedStream, makeCall, settle } from "./test-calls";

const ticket = { ticket: new Uint8Array([1]) };
const descriptor = { type: 1, path: ["a"], cmd: new Uint8Array() };

/** A handler whose doGet streams through a gate the test opens, and whose unary calls wait for `unary`. */
function handlerWithGates() {
  const streams: Array<ReturnType<typeof gatedStream<FlightData>>> = [];
  let releaseUnary!: () => void;
  let unaryGate = new Promise<void>((r) => (releaseUnary = r));
  const handler: FlightHandler = async (call) => {
    switch (call.method) {
      case "doGet":
      case "doPut": {
        const s = gatedStream([flightData(4, 8)]);
        streams.push(s);
        return s.iterable as never;
      }
      case "getFlightInfo":
        await unaryGate;
        return { schema: new Uint8Array(), flightDescriptor: descriptor, endpoint: [], totalRecords: 0, totalBytes: 0, ordered: false, appMetadata: new Uint8Array() };
      case "getSchema":
        throw new FlightError(StatusCode.NOT_FOUND, "no such flight");
      default:
        return fromArray([]) as never;
    }
  };
  return {
    handler,
    streams,
    releaseUnary: () => {
      releaseUnary();
      unaryGate = new Promise<void>((r) => (releaseUnary = r));
    },
  };
}

test("refuses the N+1th call with RESOURCE_EXHAUSTED and admits again once a stream completes", async () => {
  const { handler, streams } = handlerWithGates();
  const limit = concurrencyLimit({ global: 2 });
  const stats = settingsOf(limit, "stats")[0]!;
  const chain = composeMiddleware([limit], handler);
  const a = (await chain(makeCall("doGet", ticket))) as AsyncIterable<FlightData>;
  await chain(makeCall("doGet", ticket));
  const err = await expectFlightError(() => chain(makeCall("doGet", ticket)), StatusCode.RESOURCE_EXHAUSTED);
  expect(err.message).toMatch(/2 concurrent calls in progress/);
  expect(err.metadata["retry-after-ms"]).toBe("100");
  expect((stats.collect() as { inFlight: number }).inFlight).toBe(2);

  streams[0].release();
  expect(await drain(a)).toHaveLength(1);
  expect((stats.collect() as { inFlight: number }).inFlight).toBe(1);
  await expect(chain(makeCall("doGet", ticket))).resolves.toBeDefined();
});

test("releases the slot of a stream abandoned before or during iteration", async () => {
  const { handler } = handlerWithGates();
  const limit = concurrencyLimit({ perMethod: { doGet: 1 } });
  const stats = settingsOf(limit, "stats")[0]!;
  const chain = composeMiddleware([limit], handler);
  const inFlight = (): number => (stats.collect() as { inFlight: number }).inFlight;

  // Abandoned before the first message.
  const first = (await chain(makeCall("doGet", ticket))) as AsyncIterable<FlightData>;
  await expectFlightError(() => chain(makeCall("doGet", ticket)), StatusCode.RESOURCE_EXHAUSTED);
  await first[Symbol.asyncIterator]().return?.();
  expect(inFlight()).toBe(0);

  // Abandoned mid-stream with break.
  const second = (await chain(makeCall("doGet", ticket))) as AsyncIterable<FlightData>;
  for await (const m of second) {
    expect(m.dataBody.byteLength).toBe(8);
    break;
  }
  expect(inFlight()).toBe(0);

  // Never iterated, but the call was cancelled.
  const cancel = new AbortController();
  await chain(makeCall("doGet", ticket, { signal: cancel.signal }));
  expect(inFlight()).toBe(1);
  cancel.abort(new FlightError(StatusCode.CANCELLED, "client cancelled"));
  expect(inFlight()).toBe(0);
  await expect(chain(makeCall("doGet", ticket))).resolves.toBeDefined();
});

test("per-method limits are separate; unary calls release when they settle or fail", async () => {
  const gates = handlerWithGates();
  const limit = concurrencyLimit({ perMethod: { doPut: 1, getFlightInfo: 1, getSchema: 1 } });
  const stats = settingsOf(limit, "stats")[0]!;
  const chain = composeMiddleware([limit], gates.handler);

  await chain(makeCall("doPut", fromArray([])));
  await expectFlightError(() => chain(makeCall("doPut", fromArray([]))), StatusCode.RESOURCE_EXHAUSTED);
  await expect(chain(makeCall("doGet", ticket))).resolves.toBeDefined(); // doGet has no limit

  const pending = chain(makeCall("getFlightInfo", descriptor));
  await settle();
  await expectFlightError(() => chain(makeCall("getFlightInfo", descriptor)), StatusCode.RESOURCE_EXHAUSTED);
  gates.releaseUnary();
  await pending;
  const again = chain(makeCall("getFlightInfo", descriptor));
  gates.releaseUnary();
  await expect(again).resolves.toBeDefined();

  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.NOT_FOUND);
  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.NOT_FOUND); // not RESOURCE_EXHAUSTED

  const s = stats.collect() as { byMethod: Record<string, { inFlight: number; refused: number; limit: number | null }> };
  expect(s.byMethod.doPut).toEqual({ inFlight: 1, limit: 1, refused: 1 });
  expect(s.byMethod.getFlightInfo).toEqual({ inFlight: 0, limit: 1, refused: 1 });
  expect(s.byMethod.getSchema.inFlight).toBe(0);
  expect(stats.section).toBe("concurrency");
});

test("a limit of 0 refuses every call of that method", async () => {
  const limit = concurrencyLimit({ perMethod: { doExchange: 0 } });
  const chain = composeMiddleware([limit], async () => fromArray([]) as never);
  const err = await expectFlightError(() => chain(makeCall("doExchange", fromArray([]))), StatusCode.RESOURCE_EXHAUSTED);
  expect(err.message).toMatch(/doExchange calls are not accepted/);
  expect(err.metadata["retry-after-ms"]).toBeUndefined(); // retrying will not help
});

test("options are validated up front", () => {
  expect(() => concurrencyLimit({})).toThrow(/give global, perMethod or both/);
  expect(() => concurrencyLimit({ global: 0 })).toThrow(/concurrencyLimit: global must be an integer from 1 to 1000000000; got 0/);
  expect(() => concurrencyLimit({ perMethod: { doGett: 3 } as never })).toThrow(/concurrencyLimit: unknown option "perMethod.doGett"; known options: handshake, /);
  expect(() => concurrencyLimit({ perMethod: { doGet: 1.5 } })).toThrow(/perMethod.doGet must be an integer/);
  expect(() => concurrencyLimit(undefined as never)).toThrow(/options must be an object/);
});
