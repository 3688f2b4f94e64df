import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { vectorFromArray, Dictionary, Utf8, Int32, Table } from "apache-arrow";
import {
  DiskStore,
  FlightError,
  ReadLease,
  StatusCode,
  diskStore,
  serverConfig,
  withStore,
  wrapStore,
  type FlightData,
  type FlightMiddleware,
  type FlightStore,
  type MessageReadOptions,
  type StoredFlight,
} from "@blackice/flight-core";
import { decodeManifest } from "../packages/core/src/store/disk-format";
import { FlightClient, createFlightServer, type FlightServer } from "@blackice/flight";
import { run, venvPython } from "./helpers/python";

// The disk store behind a real server: DoPut and DoGet through gRPC, a data file read by
// pyarrow as it is, a flipped bit ending one DoGet with DATA_LOSS while others serve, and a
// restart of the server on the same directory.

function tableOf(from: number, n: number): Table {
  const ids = Int32Array.from({ length: n }, (_, i) => from + i);
  const colour = vectorFromArray(
    Array.from({ length: n }, (_, i) => ["red", "green", "blue"][(from + i) % 3]!),
    // The same dictionary id in every put, so the schemas match and a put appends.
    new Dictionary(new Utf8(), new Int32(), 0),
  );
  return new Table({ id: vectorFromArray(ids), colour });
}

describe("a server on a DiskStore", () => {
  let dir: string;
  let store: DiskStore;
  let server: FlightServer;
  let client: FlightClient;
  const reported: unknown[] = [];

  async function startServer(): Promise<void> {
    store = diskStore({ dir, fsync: "always", onError: (e) => reported.push(e) });
    server = createFlightServer(withStore(store), serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
  }

  async function stopServer(): Promise<void> {
    client?.close();
    await server?.shutdown({ graceMs: 0 });
    await store?.close();
  }

  async function rowsOf(p: string[]): Promise<Array<{ id: number; colour: string }>> {
    const info = await client.getFlightInfo({ path: p });
    const out: Array<{ id: number; colour: string }> = [];
    for await (const batch of client.doGet(info.endpoint[0]!.ticket!)) {
      for (const row of batch) out.push({ id: row!.id as number, colour: String(row!.colour) });
    }
    return out;
  }

  function dataFileOf(key: string): string {
    const flights = path.join(dir, "flights");
    for (const name of fs.readdirSync(flights).filter((n) => n.endsWith(".json"))) {
      const m = decodeManifest(fs.readFileSync(path.join(flights, name)));
      if (m.key === key) return path.join(flights, m.data);
    }
    throw new Error(`no manifest for ${key}`);
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "disk-server-"));
    await startServer();
  });
  afterAll(async () => {
    await stopServer();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("stores DoPuts (with an append) and serves them back", async () => {
    await client.putTable({ path: ["colours"] }, tableOf(0, 100));
    await client.putTable({ path: ["colours"] }, tableOf(100, 50));
    await client.putTable({ path: ["other"] }, tableOf(0, 10));
    const rows = await rowsOf(["colours"]);
    expect(rows).toHaveLength(150);
    expect(rows[149]).toEqual({ id: 149, colour: ["red", "green", "blue"][149 % 3] });
    const stats = server.stats() as { flights: number; rows: number; disk: { fsync: string; used: number } };
    expect(stats).toMatchObject({ flights: 2, rows: 160, disk: { fsync: "always" } });
    expect(stats.disk.used).toBeGreaterThan(0);
  });

  it("writes data files that pyarrow.ipc.open_stream reads as they are", async () => {
    const script = [
      "import sys, json, pyarrow.ipc as ipc",
      "with open(sys.argv[1], 'rb') as f:",
      "    t = ipc.open_stream(f).read_all()",
      "print(json.dumps({'rows': t.num_rows, 'ids': t.column('id').to_pylist()[-3:], 'colours': t.column('colour').to_pylist()[:3], 'type': str(t.schema.field('colour').type)}))",
    ].join("\n");
    const result = await run(venvPython(), ["-c", script, dataFileOf("p:colours")], { timeoutMs: 60_000 });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({
      rows: 150,
      ids: [147, 148, 149],
      colours: ["red", "green", "blue"],
      type: "dictionary<values=string, indices=int32, ordered=0>",
    });
  });

  it("survives a restart: the same flights, rows and figures", async () => {
    const before = server.stats() as { flights: number; rows: number; bytes: number };
    await stopServer();
    await startServer();
    expect(server.stats()).toMatchObject({ flights: before.flights, rows: before.rows, bytes: before.bytes });
    expect(await rowsOf(["colours"])).toHaveLength(150);
    await client.putTable({ path: ["colours"] }, tableOf(150, 5));
    expect(await rowsOf(["colours"])).toHaveLength(155);
  });

  it("ends the DoGet of a flight with a flipped bit with DATA_LOSS, reports it, and serves the others", async () => {
    const file = dataFileOf("p:other");
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 24] ^= 0x01; // inside the last batch's body
    fs.writeFileSync(file, bytes);
    const err = await rowsOf(["other"]).then(
      () => undefined,
      (e: unknown) => e as FlightError,
    );
    expect(err?.code).toBe(StatusCode.DATA_LOSS);
    expect(reported.map(String)).toEqual([expect.stringMatching(/DATA_LOSS: flight p:other is damaged on disk .* fails its checksum/)]);
    expect(await rowsOf(["colours"])).toHaveLength(155);
  });
});

// A DoGet from disk lends the store a ReadLease that the server releases as the transport
// writes each message, so read buffers are reused; with middleware around the response, no
// message is ever released, so what the middleware holds is never overwritten.
describe("DoGet from a DiskStore and read-buffer reuse", () => {
  let dir: string;
  let store: DiskStore;
  const servers: FlightServer[] = [];
  const clients: FlightClient[] = [];
  /** The lease each DoGet handed the store (undefined: none). */
  let leases: Array<ReadLease | undefined> = [];

  /** Passes everything through, noting the lease a flight's messages() is read with. */
  const spy = wrapStore("lease-spy", (inner): FlightStore => {
    const watched = (f: StoredFlight | undefined): StoredFlight | undefined =>
      f === undefined
        ? undefined
        : Object.freeze({
            ...pick(f),
            messages: (o?: MessageReadOptions) => {
              leases.push(o?.lease);
              return f.messages(o);
            },
          });
    return Object.assign(Object.create(inner) as FlightStore, { getByTicket: async (t: Uint8Array) => watched(await inner.getByTicket(t)) });
  });
  const pick = (f: StoredFlight) => ({
    key: f.key, descriptor: f.descriptor, schema: f.schema, messageCount: f.messageCount, totalRecords: f.totalRecords,
    totalBytes: f.totalBytes, createdAt: f.createdAt, updatedAt: f.updatedAt, expiresAt: f.expiresAt,
  });

  async function serve(...parts: Parameters<typeof createFlightServer>): Promise<FlightClient> {
    const server = createFlightServer(withStore(store), spy, serverConfig({ addr: "127.0.0.1:0" }), ...parts);
    await server.start();
    servers.push(server);
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    clients.push(client);
    return client;
  }

  /** 24 batches of 512 KiB (12 MiB, several 4 MiB spans), each value distinct. */
  const table = new Table(
    Array.from({ length: 24 }, (_, b) => new Table({ x: vectorFromArray(Float64Array.from({ length: 65536 }, (_, i) => b * 65536 + i)) }).batches[0]!),
  );

  /** The flight's messages as stored, read without a lease (each its own copy of the bytes). */
  async function stored(): Promise<Buffer[]> {
    const f = (await store.get({ type: 1, path: ["reuse"], cmd: new Uint8Array(0) }))!;
    const out: Buffer[] = [];
    for await (const m of f.messages()) out.push(Buffer.concat([m.header, m.body as Uint8Array]));
    return out;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "disk-reuse-"));
    store = diskStore({ dir, fsync: "never" });
    await (await serve()).putTable({ path: ["reuse"] }, table);
  });
  beforeEach(() => {
    leases = [];
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.shutdown({ graceMs: 0 });
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("serves the flight whole, releasing every message once written", async () => {
    const client = await serve();
    const info = await client.getFlightInfo({ path: ["reuse"] });
    let rows = 0;
    let sum = 0;
    for await (const batch of client.doGet(info.endpoint[0]!.ticket!)) {
      rows += batch.numRows;
      for (const v of batch.getChild("x")!) sum += v as number;
    }
    const n = 24 * 65536;
    expect(rows).toBe(n);
    expect(sum).toBe((n * (n - 1)) / 2);
    expect(leases).toHaveLength(1);
    expect(leases[0]).toBeInstanceOf(ReadLease);
    expect(leases[0]!.released).toBe(24);
  });

  it("releases nothing when middleware wraps the response, so what it holds stays intact", async () => {
    const held: FlightData[] = [];
    const holder: FlightMiddleware = (next) => async (call) => {
      const res = await next(call);
      if (call.method !== "doGet") return res;
      return (async function* () {
        for await (const d of res as AsyncIterable<FlightData>) {
          held.push(d);
          yield d;
        }
      })();
    };
    const client = await serve(holder);
    const info = await client.getFlightInfo({ path: ["reuse"] });
    let messages = 0;
    for await (const _ of client.doGetRaw(info.endpoint[0]!.ticket!)) messages++;
    expect(messages).toBe(25); // the schema and 24 batches
    expect(leases[0]!.released).toBe(0);
    const want = await stored();
    const got = held.slice(1).map((d) => Buffer.concat([d.dataHeader, d.dataBody as Uint8Array]));
    expect(got.length).toBe(want.length);
    expect(got.every((b, i) => b.equals(want[i]!))).toBe(true);
  });
});
