import * as grpc from "@grpc/grpc-js";
import { tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import { joinIpcStream, serverConfig, splitIpcStream } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { bidi, rawClient, type RawClient } from "./test-raw-client";

type Data = { dataHeader: Uint8Array; dataBody: Uint8Array; appMetadata: Uint8Array };

describe("the project DoExchange handler", () => {
  let server: FlightServer;
  let client: RawClient;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  const table = tableFromArrays({ a: Int32Array.from([1, 2, 3, 4]), b: ["w", "x", "y", "z"], c: Float64Array.from([0.5, 1.5, 2.5, 3.5]) });
  const send = (cmd: string, bytes = tableToIPC(table, "stream")) =>
    splitIpcStream(bytes).map((m, i) => ({
      flightDescriptor: i === 0 ? { type: 2, cmd: Buffer.from(cmd), path: [] } : undefined,
      dataHeader: m.header,
      dataBody: m.body,
      appMetadata: Buffer.from(`m${i}`),
    }));

  it("returns only the named columns, batch for batch, with the batch metadata", async () => {
    const out = await bidi<Data>(client, "doExchange", send('{"command":"project","columns":["c","a"]}'));
    const result = tableFromIPC(joinIpcStream(out.map((m) => ({ header: m.dataHeader, body: m.dataBody }))));
    expect(result.schema.fields.map((f) => f.name)).toEqual(["c", "a"]);
    expect(result.getChild("a")?.toArray()).toEqual(Int32Array.from([1, 2, 3, 4]));
    expect(result.getChild("c")?.toArray()).toEqual(Float64Array.from([0.5, 1.5, 2.5, 3.5]));
    expect(out.filter((m) => m.appMetadata.length > 0).map((m) => Buffer.from(m.appMetadata).toString())).toEqual(["m2"]); // schema, dictionary, then the batch
  });

  it("names the missing column with INVALID_ARGUMENT", async () => {
    await expect(bidi(client, "doExchange", send("project:a,nope"))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("no such column: nope"),
    });
  });

  it("refuses an unknown exchange command, naming the registered ones", async () => {
    await expect(bidi(client, "doExchange", send("frobnicate"))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("registered: echo, project"),
    });
  });
});
