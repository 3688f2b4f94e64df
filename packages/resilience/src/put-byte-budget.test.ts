import { settingsOf, StatusCode, composeMiddleware, type FlightData, type FlightHandler, type PutResult } from "@blackice/flight-core";
import { putByteBudget } from "./put-byte-budget";
import { drain, expectFlightError, flightData, fromArray, makeCall } from "./test-calls";

/** A DoPut handler that reads the request as it is pulled and acks each message. */
const putHandler: FlightHandler = async (call) => {
  if (call.method !== "doPut" && call.method !== "doExchange") return fromArray([]) as never;
  const request = call.request;
  return (async function* (): AsyncGenerator<PutResult> {
    for await (const m of request) yield { appMetadata: new Uint8Array([m.dataBody.byteLength & 0xff]) };
  })() as never;
};

/** A request the test feeds message by message. */
function feed(): { iterable: AsyncIterable<FlightData>; push: (m: FlightData) => void; end: () => void } {
  const queue: FlightData[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  return {
    push: (m) => {
      queue.push(m);
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
    iterable: (async function* () {
      for (;;) {
        if (queue.length > 0) yield queue.shift()!;
        else if (ended) return;
        else await new Promise<void>((r) => (wake = r));
      }
    })(),
  };
}

test("concurrent puts of one connection share the budget; other connections have their own", async () => {
  const budget = putByteBudget({ perConnectionBytes: 100 });
  const stats = settingsOf(budget, "stats")[0]!;
  const chain = composeMiddleware([budget], putHandler);

  const a = feed();
  const aAcks = ((await chain(makeCall("doPut", a.iterable))) as AsyncIterable<PutResult>)[Symbol.asyncIterator]();
  a.push(flightData(10, 50)); // 60 in flight
  expect((await aAcks.next()).done).toBe(false);
  expect(stats.collect()).toMatchObject({ connections: 1, bytesInFlight: 60 });

  // A second put from the same peer: 60 + 50 > 100.
  const b = (await chain(makeCall("doPut", fromArray([flightData(10, 40)])))) as AsyncIterable<PutResult>;
  const err = await expectFlightError(() => drain(b), StatusCode.RESOURCE_EXHAUSTED);
  expect(err.message).toMatch(/60 bytes in flight, 50 more received, limit 100 bytes/);

  // Another peer is not affected.
  const other = (await chain(makeCall("doPut", fromArray([flightData(10, 80)]), { peer: "10.0.0.9:4000" }))) as AsyncIterable<PutResult>;
  expect(await drain(other)).toHaveLength(1);

  // When the first put ends, its bytes are released.
  a.end();
  expect((await aAcks.next()).done).toBe(true);
  expect(stats.collect()).toMatchObject({ connections: 0, bytesInFlight: 0, refused: 1 });
  const c = (await chain(makeCall("doPut", fromArray([flightData(10, 40), flightData(10, 40)])))) as AsyncIterable<PutResult>;
  expect(await drain(c)).toHaveLength(2);
});

test("a single message larger than the budget is refused; other methods are not counted", async () => {
  const budget = putByteBudget({ perConnectionBytes: 10 });
  const chain = composeMiddleware([budget], putHandler);
  await expectFlightError(async () => drain((await chain(makeCall("doPut", fromArray([flightData(4, 8)])))) as AsyncIterable<PutResult>), StatusCode.RESOURCE_EXHAUSTED);
  // doExchange is not counted unless asked for.
  const ex = (await chain(makeCall("doExchange", fromArray([flightData(4, 8)])))) as AsyncIterable<unknown>;
  expect(await drain(ex)).toHaveLength(1);

  const both = putByteBudget({ perConnectionBytes: 10, methods: ["doPut", "doExchange"] });
  const chain2 = composeMiddleware([both], putHandler);
  await expectFlightError(async () => drain((await chain2(makeCall("doExchange", fromArray([flightData(4, 8)])))) as AsyncIterable<unknown>), StatusCode.RESOURCE_EXHAUSTED);
});

test("options are validated", () => {
  expect(() => putByteBudget({ perConnectionBytes: 0 })).toThrow(/putByteBudget: perConnectionBytes must be an integer from 1/);
  expect(() => putByteBudget({ perConnectionBytes: 10, methods: ["doGet" as never] })).toThrow('putByteBudget: methods must be an array of "doPut", "doExchange"; got an array with other items');
});
