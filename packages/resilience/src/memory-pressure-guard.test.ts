import { settingsOf, StatusCode, composeMiddleware, type FlightHandler } from "@blackice/flight-core";
import { memoryPressureGuard } from "./memory-pressure-guard";
import { expectFlightError, fromArray, makeCall } from "./test-calls";

const descriptor = { type: 1, path: ["a"], cmd: new Uint8Array() };

test("refuses puts and exchanges while above the threshold; reads, lists and delete keep working", async () => {
  let rss = 900;
  const seen: string[] = [];
  const handler: FlightHandler = async (call) => {
    seen.push(call.method);
    return fromArray([]) as never;
  };
  const guard = memoryPressureGuard({ maxRssBytes: 1000, sample: () => rss });
  const stats = settingsOf(guard, "stats")[0]!;
  const chain = composeMiddleware([guard], handler);

  await chain(makeCall("doPut", fromArray([])));
  expect(seen).toEqual(["doPut"]);

  rss = 1500;
  const err = await expectFlightError(() => chain(makeCall("doPut", fromArray([]))), StatusCode.RESOURCE_EXHAUSTED);
  expect(err.message).toMatch(/memory pressure \(1500 bytes in use, limit 1000\)/);
  expect(err.metadata["retry-after-ms"]).toBe("1000");
  await expectFlightError(() => chain(makeCall("doExchange", fromArray([]))), StatusCode.RESOURCE_EXHAUSTED);

  await chain(makeCall("doGet", { ticket: new Uint8Array([1]) }));
  await chain(makeCall("listFlights", { expression: new Uint8Array() }));
  await chain(makeCall("getFlightInfo", descriptor));
  await chain(makeCall("doAction", { type: "delete", body: Buffer.from('{"path":["a"]}') }));
  expect(seen).toEqual(["doPut", "doGet", "listFlights", "getFlightInfo", "doAction"]);
  expect(stats.collect()).toEqual({ maxRssBytes: 1000, lastSampleBytes: 1500, refused: 2 });

  rss = 999;
  await chain(makeCall("doPut", fromArray([])));
  expect(seen[seen.length - 1]).toBe("doPut");
});

test("a failing sample goes to onError and the call proceeds", async () => {
  const onError = jest.fn();
  const handler = jest.fn(async () => fromArray([]) as never);
  const guard = memoryPressureGuard({
    maxRssBytes: 1,
    sample: () => {
      throw new Error("procfs gone");
    },
    onError,
  });
  await composeMiddleware([guard], handler)(makeCall("doPut", fromArray([])));
  expect(handler).toHaveBeenCalledTimes(1);
  expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: "procfs gone" }));
});

test("the default sample reads the process RSS", async () => {
  const guard = memoryPressureGuard({ maxRssBytes: 1 }); // any real process uses more than 1 byte
  const chain = composeMiddleware([guard], async () => fromArray([]) as never);
  await expectFlightError(() => chain(makeCall("doPut", fromArray([]))), StatusCode.RESOURCE_EXHAUSTED);
});

test("options are validated", () => {
  expect(() => memoryPressureGuard({ maxRssBytes: -5 })).toThrow(/memoryPressureGuard: maxRssBytes must be an integer from 1/);
  expect(() => memoryPressureGuard({ maxRssBytes: 10, sample: 5 as never })).toThrow(/sample must be a function/);
  expect(() => memoryPressureGuard({ maxRssBytes: 10, methods: ["doPutt" as never] })).toThrow(/memoryPressureGuard: methods must be an array of "handshake", .*"doPut", "doExchange"/);
});
