import { tableFromArrays, tableToIPC } from "apache-arrow";
import { serverConfig, splitIpcStream } from "@blackice/flight-core";
import { createFlightServer } from "./create-flight-server";
import { PREFRAMED, installPreframedResponses, preframedBytes, preframedHits } from "./preframed-responses";
import { bidi, rawClient, serverStream, unary } from "./test-raw-client";

describe("pre-framed DoGet responses", () => {
  it("hooks into this grpc-js version (fails when an upgrade moves serializeMessage)", () => {
    expect(installPreframedResponses()).toBe(true);
  });

  it("uses the frame prefix only when it is exactly [0, length]", () => {
    const buf = Buffer.from([0, 0, 0, 0, 3, 7, 8, 9, 1, 1]);
    const wire = buf.subarray(5, 8);
    expect(preframedBytes({ flightDescriptor: undefined, dataHeader: wire, dataBody: wire, appMetadata: wire, wire, [PREFRAMED]: true })).toEqual(Buffer.from([0, 0, 0, 0, 3, 7, 8, 9]));
    const wrongLength = buf.subarray(5, 9);
    expect(preframedBytes({ flightDescriptor: undefined, dataHeader: wire, dataBody: wire, appMetadata: wire, wire: wrongLength, [PREFRAMED]: true })).toBeUndefined();
    expect(preframedBytes({ flightDescriptor: undefined, dataHeader: wire, dataBody: wire, appMetadata: wire, wire })).toBeUndefined(); // not marked
    const atStart = Buffer.from([1, 2, 3]);
    expect(preframedBytes({ flightDescriptor: undefined, dataHeader: atStart, dataBody: atStart, appMetadata: atStart, wire: atStart, [PREFRAMED]: true })).toBeUndefined();
  });

  it("sends stored batches without the framing copy, byte for byte", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    const client = rawClient(server.port);
    try {
      const messages = splitIpcStream(tableToIPC(tableFromArrays({ v: Float64Array.from({ length: 65536 }, (_, i) => i) }), "stream"));
      const descriptor = { type: 1, cmd: new Uint8Array(0), path: ["framed"] };
      await bidi(client, "doPut", messages.map((m, i) => ({ flightDescriptor: i === 0 ? descriptor : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: Buffer.from("meta") })));
      const info = await unary<{ endpoint: Array<{ ticket: unknown }> }>(client, "getFlightInfo", descriptor);
      const before = preframedHits();
      const got = await serverStream<{ dataHeader: Uint8Array; dataBody: Uint8Array; appMetadata: Uint8Array }>(client, "doGet", info.endpoint[0].ticket);
      // The schema came with the descriptor (its wire is a slice), the 512 KiB batch did not.
      expect(preframedHits() - before).toBe(1);
      expect(Buffer.compare(got[1].dataBody, messages[1].body)).toBe(0);
      expect(Buffer.from(got[1].appMetadata).toString()).toBe("meta");
    } finally {
      client.close();
      await server.shutdown({ graceMs: 10 });
    }
  });
});

describe("ListFlights in coalesced chunks", () => {
  it("delivers every FlightInfo, in order, when thousands are stored", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    const client = rawClient(server.port);
    try {
      const [schema] = splitIpcStream(tableToIPC(tableFromArrays({ v: Int32Array.from([1]) }), "stream"));
      for (let i = 0; i < 3000; i++) {
        const tx = server.store.beginPut({ type: 1, cmd: new Uint8Array(0), path: ["many", String(i).padStart(5, "0")] }, {
          header: schema.header,
          body: schema.body,
          appMetadata: new Uint8Array(0),
          info: { kind: 1, version: 4, bodyLength: 0, rows: 0 },
          byteSize: schema.header.byteLength,
        });
        tx.commit();
      }
      const before = preframedHits();
      const infos = await serverStream<{ flightDescriptor: { path: string[] } }>(client, "listFlights", { expression: Buffer.from("many") });
      expect(infos.map((f) => f.flightDescriptor.path[1])).toEqual(Array.from({ length: 3000 }, (_, i) => String(i).padStart(5, "0")));
      const chunks = preframedHits() - before;
      expect(chunks).toBeGreaterThan(1);
      expect(chunks).toBeLessThan(100); // ~64 KiB per write, not one write per flight
    } finally {
      client.close();
      await server.shutdown({ graceMs: 10 });
    }
  });
});
