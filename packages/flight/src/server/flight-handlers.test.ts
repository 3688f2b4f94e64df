import { tableFromArrays, tableToIPC } from "apache-arrow";
import { CallContext, composeMiddleware, readMessageHeader, MessageKind, type FlightCall, type FlightHandler, type FlightInfo } from "@blackice/flight-core";
import { pathDescriptor } from "../client/descriptors";
import { describeFlight, flightHandlers } from "./flight-handlers";

const table = tableFromArrays({ x: Int32Array.from([1, 2, 3]) });

function call(method: string, request: unknown): FlightCall {
  return { method, request, context: new CallContext(), headers: new Map(), signal: new AbortController().signal } as unknown as FlightCall;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const m of it) out.push(m);
  return out;
}

describe("flightHandlers", () => {
  const reachedStore: string[] = [];
  const store: FlightHandler = async (c) => {
    reachedStore.push(c.method);
    return c.method === "doGet" || c.method === "listFlights" ? (async function* () {})() : ({ store: true } as never);
  };
  const info = describeFlight({ descriptor: pathDescriptor("mine"), schema: tableToIPC(table, "stream"), ticket: "mine", totalRecords: 3 });
  const handler = composeMiddleware(
    [
      flightHandlers({
        getFlightInfo: (d) => (d.path[0] === "mine" ? info : undefined),
        doGet: (ticket) => (Buffer.from(ticket).toString() === "mine" ? tableToIPC(table, "stream") : undefined),
      }),
    ],
    store,
  );

  beforeEach(() => (reachedStore.length = 0));

  it("answers from the handlers and passes what they leave (undefined) and methods without a handler to the store", async () => {
    expect(await handler(call("getFlightInfo", pathDescriptor("mine")))).toBe(info);
    expect(await handler(call("getFlightInfo", pathDescriptor("other")))).toEqual({ store: true });
    const schema = (await handler(call("getSchema", pathDescriptor("mine")))) as { schema: Uint8Array };
    expect(schema.schema).toBe(info.schema);
    const poll = (await handler(call("pollFlightInfo", pathDescriptor("mine")))) as { info: FlightInfo; progress: number };
    expect(poll).toMatchObject({ info, progress: 1 });
    const data = await collect((await handler(call("doGet", { ticket: Buffer.from("mine") }))) as AsyncIterable<{ dataHeader: Uint8Array }>);
    expect(data.map((m) => readMessageHeader(m.dataHeader).kind)).toEqual([MessageKind.SCHEMA, MessageKind.RECORD_BATCH]);
    await collect((await handler(call("doGet", { ticket: Buffer.from("theirs") }))) as AsyncIterable<unknown>);
    await collect((await handler(call("listFlights", { expression: new Uint8Array(0) }))) as AsyncIterable<unknown>);
    expect(reachedStore).toEqual(["getFlightInfo", "doGet", "listFlights"]);
  });

  it("describeFlight encapsulates the schema message and uses one endpoint on this server", () => {
    expect(new DataView(info.schema.buffer, info.schema.byteOffset).getUint32(0, true)).toBe(0xffffffff);
    expect(info.endpoint).toHaveLength(1);
    expect(Buffer.from(info.endpoint[0]!.ticket!.ticket).toString()).toBe("mine");
    expect(info.endpoint[0]!.location).toEqual([]);
    expect(info.totalBytes).toBe(-1);
  });

  it("refuses bad handlers and bad schemas with a TypeError naming the valid choices", () => {
    expect(() => flightHandlers({ doPut: () => undefined } as never)).toThrow(/^flightHandlers: unknown option "handlers.doPut"; known options: listFlights, getFlightInfo, getSchema, doGet/);
    expect(() => flightHandlers({ doGet: 1 } as never)).toThrow(/doGet must be a function/);
    expect(() => flightHandlers(null as never)).toThrow(TypeError);
    expect(() => describeFlight({ descriptor: pathDescriptor("x"), schema: new Uint8Array(0), ticket: "x" })).toThrow(/empty Arrow IPC stream|not an Arrow IPC stream/);
  });
});
