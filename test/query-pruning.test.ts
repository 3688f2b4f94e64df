import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DescriptorType, MemoryStore, MessageKind, serverConfig, withStore, type ColumnStats } from "@blackice/flight-core";
import { createFlightServer, flightSql, query, type FlightServer } from "@blackice/flight";
import { run, venvPython } from "./helpers/python";

// Batch statistics and pruning (docs/query.md, "Batch pruning") under pyarrow: the statistics
// the store computed at put equal pyarrow.compute.min_max of each batch, and filtered queries
// over a flight of many batches return what pyarrow.compute's filter returns while their
// DoGet reports the batches skipped that the data implies.
const FLOATS = new Set(["f32", "f64"]);

describe("batch pruning with pyarrow.flight", () => {
  let server: FlightServer;
  let store: MemoryStore;
  let dir: string;

  beforeAll(async () => {
    store = new MemoryStore({ enableGC: false });
    server = createFlightServer(withStore(store), serverConfig({ addr: "127.0.0.1:0" }), flightSql(), query());
    await server.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-pruning-"));
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
    await store?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("passes test/python/test_query_pruning.py, and the store's statistics equal pyarrow.compute.min_max per batch", async () => {
    const expectFile = path.join(dir, "expected.json");
    const result = await run(venvPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.join(__dirname, "python/test_query_pruning.py")], {
      env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${server.port}`, BLACKICE_EXPECT_FILE: expectFile },
      timeoutMs: 240_000,
    });
    if (result.code !== 0) throw new Error(`pytest failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    expect(result.stdout).toMatch(/\b7 passed/);
    expect(result.stdout).not.toMatch(/failed|error|skipped/i);

    const expected = JSON.parse(fs.readFileSync(expectFile, "utf8")) as {
      columns: string[];
      batches: Array<Record<string, { nullCount: number; min: number | string | null; max: number | string | null; hasNaN: boolean }>>;
    };
    const flight = (await store.get({ type: DescriptorType.PATH, path: ["pruning", "stats"], cmd: new Uint8Array() }))!;
    const batches = (await flight.batchStats!()).filter((s) => s.kind === MessageKind.RECORD_BATCH);
    expect(batches).toHaveLength(expected.batches.length);
    let compared = 0;
    batches.forEach((b, k) => {
      expect(b.stats).toBeDefined();
      expected.columns.forEach((name, i) => {
        const want = expected.batches[k]![name];
        const got = b.stats![i] as ColumnStats | null;
        if (want === undefined) {
          expect(got).toBeNull(); // the string column has none
          return;
        }
        // As the Python side writes them: floats as numbers, integers (and temporal values) as decimal strings.
        const bound = (v: number | bigint | undefined): number | string | null =>
          v === undefined ? null : FLOATS.has(name) ? (v as number) : v.toString();
        expect({ column: name, batch: k, nullCount: got!.nullCount, min: bound(got!.min), max: bound(got!.max), hasNaN: got!.hasNaN }).toEqual({
          column: name,
          batch: k,
          ...want,
        });
        compared++;
      });
    });
    // 12 batches x 17 columns with statistics.
    expect(compared).toBe(12 * 17);
  }, 300_000);
});
