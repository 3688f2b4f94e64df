import * as grpc from "@grpc/grpc-js";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { serverConfig, splitIpcStream, type FlightMiddleware, type FlightResponse } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { bidi, rawClient, unary, type RawClient } from "../../../../test/helpers/raw-flight-client";

// A slow reader must not make the server pull (and buffer) the whole flight: the adapter
// waits for 'drain' before it takes the next message from the store.
describe("DoGet backpressure", () => {
  const BATCHES = 200;
  let pulled = 0;
  const countPulls: FlightMiddleware = (next) =>
    async function countPulls(call) {
      const res = await next(call);
      if (call.method !== "doGet") return res;
      return (async function* () {
        for await (const m of res as AsyncIterable<unknown>) {
          pulled++;
          yield m;
        }
      })() as FlightResponse;
    };
  let server: FlightServer;
  let client: RawClient;
  let ticket: unknown;

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), countPulls);
    await server.start();
    client = rawClient(server.port);
    const oneMiB = tableFromArrays({ v: Float64Array.from({ length: 131072 }, (_, i) => i) });
    const [schema, batch] = splitIpcStream(tableToIPC(oneMiB, "stream"));
    const messages = [schema, ...Array.from({ length: BATCHES }, () => batch)];
    await bidi(
      client,
      "doPut",
      messages.map((m, i) => ({ flightDescriptor: i === 0 ? { type: 1, cmd: new Uint8Array(0), path: ["big"] } : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: new Uint8Array(0) })),
    );
    const info = await unary<{ endpoint: Array<{ ticket: unknown }>; totalBytes: number }>(client, "getFlightInfo", { type: 1, cmd: new Uint8Array(0), path: ["big"] });
    expect(info.totalBytes).toBeGreaterThan(BATCHES * 1024 * 1024);
    ticket = info.endpoint[0].ticket;
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("pulls only a few messages ahead of a paused reader, then delivers them all", async () => {
    const call = client.doGet(ticket, new grpc.Metadata()) as grpc.ClientReadableStream<unknown>;
    const failed = new Promise<Error>((resolve) => call.on("error", resolve));
    let received = 0;
    await new Promise<void>((resolve) =>
      call.once("data", () => {
        received++;
        call.pause();
        resolve();
      }),
    );
    // Give the server every chance to run ahead of the paused reader.
    await new Promise((r) => setTimeout(r, 500));
    const ahead = pulled - received;
    // The Writable queue (16 references to stored messages, not copies), the HTTP/2 window and
    // grpc-js client buffering: a few dozen at most, never the whole flight.
    expect(ahead).toBeLessThan(50);
    call.on("data", () => received++);
    call.resume();
    const outcome = await Promise.race([new Promise<void>((resolve) => call.on("end", resolve)), failed]);
    expect(outcome).toBeUndefined();
    expect(received).toBe(BATCHES + 1);
    expect(pulled).toBe(BATCHES + 1);
  });
});

// The status goes out after the last response message; a reader that stops reading for a
// while must still get it (the server once reset such streams a second after it finished,
// throwing away queued messages and trailers: "RST_STREAM with code 0").
describe("a slow DoGet reader still gets its status", () => {
  let server: FlightServer;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 0 });
  });

  it("a getTable of 5 000 one-row batches (slower than the server) gets every row and OK", async () => {
    const { FlightClient } = await import("../client/flight-client");
    const { Table } = await import("apache-arrow");
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    try {
      const d = { type: 1, cmd: new Uint8Array(0), path: ["slow-reader"] };
      const batches = Array.from({ length: 5000 }, (_, k) => tableFromArrays({ v: Float64Array.from([k]) }).batches[0]!);
      await client.putTable(d, new Table(batches));
      const info = await client.getFlightInfo(d);
      // Decoding 5 000 messages keeps the client busy for longer than the server needs to send
      // them: the server finishes first, with messages and trailers still queued.
      const t = await client.getTable(info.endpoint[0]!.ticket!);
      expect(t.numRows).toBe(5000);
      expect(t.getChild("v")!.get(4999)).toBe(4999);
    } finally {
      client.close();
    }
  }, 30_000);
});
