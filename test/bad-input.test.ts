import * as grpc from "@grpc/grpc-js";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { serverConfig, splitIpcStream } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { bidi, rawClient, serverStream, unary, type RawClient } from "./helpers/raw-flight-client";

const path = (...s: string[]) => ({ type: 1, cmd: new Uint8Array(0), path: s });
const none = new Uint8Array(0);

function messagesOf(rows: number) {
  return splitIpcStream(tableToIPC(tableFromArrays({ v: Float64Array.from({ length: rows }, (_, i) => i) }), "stream"));
}

function put(client: RawClient, name: string, msgs: Array<{ header: Uint8Array; body: Uint8Array }>, withDescriptor = true) {
  return bidi(
    client,
    "doPut",
    msgs.map((m, i) => ({ flightDescriptor: i === 0 && withDescriptor ? path(name) : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: none })),
  );
}

describe("bad input through DoPut: the right code, nothing stored, server up", () => {
  let server: FlightServer;
  let client: RawClient;
  beforeAll(async () => {
    // 4 MiB of memory, 1 MiB messages: small enough to hit both limits.
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMemoryBytes: 4 * 2 ** 20, maxMessageBytes: 2 ** 20 }));
    await server.start();
    client = rawClient(server.port);
    await put(client, "good", messagesOf(100));
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  const [schema, batch] = messagesOf(10);
  const cases: Array<[string, () => Array<{ header: Uint8Array; body: Uint8Array }>, number]> = [
    ["a truncated header", () => [schema, { header: batch.header.subarray(0, batch.header.length - 9), body: batch.body }], grpc.status.INVALID_ARGUMENT],
    ["a body shorter than its header declares", () => [schema, { header: batch.header, body: batch.body.subarray(0, batch.body.length - 8) }], grpc.status.INVALID_ARGUMENT],
    ["a record batch before any schema", () => [batch], grpc.status.INVALID_ARGUMENT],
    ["a second schema mid-stream", () => [schema, batch, schema, batch], grpc.status.INVALID_ARGUMENT],
    ["a message over the size limit", () => messagesOf(200_000), grpc.status.RESOURCE_EXHAUSTED],
    ["a put past the memory limit", () => [schema, ...Array.from({ length: 6 }, () => messagesOf(100_000)[1])], grpc.status.RESOURCE_EXHAUSTED],
  ];

  it.each(cases)("%s", async (name, make, code) => {
    await expect(put(client, name, make())).rejects.toMatchObject({ code });
    await expect(unary(client, "getFlightInfo", path(name))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("a descriptor missing on the first message", async () => {
    await expect(put(client, "x", [schema, batch], false)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/FlightDescriptor/) });
  });

  it("an empty DoPut", async () => {
    await expect(bidi(client, "doPut", [])).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it("a DoPut cancelled by the client half-way leaves nothing visible", async () => {
    const call = client.doPut(new grpc.Metadata()) as grpc.ClientDuplexStream<unknown, unknown>;
    call.on("error", () => undefined);
    const ms = messagesOf(1000);
    call.write({ flightDescriptor: path("cancelled"), dataHeader: ms[0].header, dataBody: ms[0].body, appMetadata: none });
    call.write({ flightDescriptor: undefined, dataHeader: ms[1].header, dataBody: ms[1].body, appMetadata: Buffer.from("ack me") });
    await new Promise<void>((resolve) => call.once("data", () => resolve())); // the server has the batch
    call.cancel();
    await new Promise((r) => setTimeout(r, 100));
    await expect(unary(client, "getFlightInfo", path("cancelled"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("kept the good flight, and released every reservation", async () => {
    const info = await unary<{ totalRecords: number }>(client, "getFlightInfo", path("good"));
    expect(info.totalRecords).toBe(100);
    const [stats] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "stats", body: none });
    const s = JSON.parse(Buffer.from(stats.body).toString());
    expect(s.flights).toBe(1);
    expect(s.memory.reserved).toBe(0);
  });
});
