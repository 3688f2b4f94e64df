import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { vectorFromArray, Dictionary, Utf8, Int32, Table } from "apache-arrow";
import { DiskStore, FlightError, StatusCode, diskStore, serverConfig, withStore } from "@blackice/flight-core";
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
