import * as arrow from "apache-arrow";
import { tableFromArrays } from "apache-arrow";
import { FlightError, MemoryStore, StatusCode, chunksOf, serverConfig, withStore, type FlightData, type FlightDescriptor } from "@blackice/flight-core";
import { createFlightServer, encodeTable, type FlightServer } from "@blackice/flight";
import { PeerPutClient } from "./peer-put";

// The node-to-node DoPut writer against a real server (this package's transport on a port).
describe("PeerPutClient", () => {
  let server: FlightServer;
  let store: MemoryStore;
  let client: PeerPutClient;
  const messages = [...encodeTable(arrow, tableFromArrays({ v: Float64Array.from({ length: 50_000 }, (_, i) => i) }), { maxBatchRows: 10_000 })];
  const d = (name: string): FlightDescriptor => ({ type: 1, path: ["peer", name], cmd: new Uint8Array(0) });
  async function* from(list: Array<Partial<FlightData>>, after?: (i: number) => Promise<void>) {
    for (let i = 0; i < list.length; i++) {
      yield list[i]!;
      await after?.(i);
    }
  }

  beforeAll(async () => {
    store = new MemoryStore();
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), withStore(store));
    await server.start();
    client = new PeerPutClient(`grpc+tcp://127.0.0.1:${server.port}`, {});
  });
  afterAll(async () => {
    client.close();
    await server.shutdown({ graceMs: 100 });
  });

  it("stores every message as sent, byte for byte, and resolves once the peer committed", async () => {
    await client.put(d("whole"), from(messages), { "x-blackice-ttl": "1h" });
    const f = (await store.get(d("whole")))!;
    expect(f.totalRecords).toBe(50_000);
    expect(Buffer.from(f.schema.header).equals(Buffer.from(messages[0]!.dataHeader))).toBe(true);
    let i = 1;
    for await (const m of f.messages()) {
      expect(Buffer.from(m.header).equals(Buffer.from(messages[i]!.dataHeader))).toBe(true);
      expect(Buffer.concat([...chunksOf(m.body)]).equals(Buffer.concat([...chunksOf(messages[i]!.dataBody)]))).toBe(true);
      i++;
    }
    expect(i).toBe(messages.length);
    expect(f.expiresAt).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it("rejects with the peer's status and message", async () => {
    const bad = [{ ...messages[1]! }]; // a record batch before any schema
    const err = await client.put(d("bad"), from(bad), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlightError);
    expect((err as FlightError).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((err as FlightError).message).toMatch(/schema/);
  });

  it("resets the stream when aborted, so the peer stores nothing", async () => {
    const controller = new AbortController();
    const err = await client
      .put(d("aborted"), from(messages, async (i) => {
        if (i === 2) controller.abort();
        await new Promise((r) => setTimeout(r, 20));
      }), {}, controller.signal)
      .catch((e: unknown) => e);
    expect((err as FlightError).code).toBe(StatusCode.CANCELLED);
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.get(d("aborted"))).toBeUndefined();
  });

  it("fails the stream (not ends it) when the messages fail, so the peer stores nothing", async () => {
    const err = await client
      .put(d("failed"), from(messages, async (i) => {
        if (i === 2) throw new FlightError(StatusCode.UNAVAILABLE, "the source failed");
      }), {})
      .catch((e: unknown) => e);
    expect((err as FlightError).message).toBe("the source failed");
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.get(d("failed"))).toBeUndefined();
  });

  it("rejects with UNAVAILABLE when the peer cannot be reached", async () => {
    const nowhere = new PeerPutClient("grpc+tcp://127.0.0.1:1", {});
    try {
      await expect(nowhere.put(d("x"), from(messages), {})).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
    } finally {
      nowhere.close();
    }
  });
});
