// Apache Arrow's cross-language Flight integration suite against arrow-go's integration peers
// (issue 3): every scenario, and the default scenario with every dataset of the conformance
// corpus, as server (arrow-go client → BlackIce server) and as client (BlackIce client →
// arrow-go server), each cell against freshly started processes on free ports.
//
// Needs Go (scripts/install-go-peers.sh installs the pinned peers into .cache/go-bin once).
// Writes .cache/conformance-results.json; `node scripts/write-conformance-doc.js` turns it
// into docs/conformance.md. Expected outcomes: integration/expectations.ts.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as arrow from "apache-arrow";
import { diffBatches } from "../integration/compare";
import { checkExpectation, expectationFor, type DatasetFacts, type Expectation } from "../integration/expectations";
import { parseIntegrationJson, readIntegrationJson, unsupportedTypes } from "../integration/json-reader";
import {
  ROOT,
  apacheArrowVersion,
  cells,
  datasets,
  killAll,
  peerVersion,
  probeGoScenarios,
  runMatrix,
  unpackDatasets,
  writeReport,
  type CellResult,
} from "../integration/matrix";

const PARALLEL = 3;
const corpus = datasets();
const allCells = cells(corpus.map(([name]) => name));

// ------------------------------------------------------------------ the JSON reader itself

describe("integration JSON reader", () => {
  // The .stream next to each .json.gz is the same data written by Arrow C++: decoded by
  // apache-arrow JS, it must equal what the reader built (compressed streams need codecs
  // apache-arrow JS does not register, so they are only read from JSON).
  test.each(corpus)("%s matches the Arrow C++ IPC stream", (name, gz) => {
    const json = parseIntegrationJson(zlib.gunzipSync(fs.readFileSync(gz)).toString("utf8"));
    const unsupported = unsupportedTypes(json);
    if (unsupported.length > 0) {
      expect(() => readIntegrationJson(json)).toThrow(unsupported[0].message);
      return;
    }
    const ours = readIntegrationJson(json);
    expect(ours.batches.length).toBe(json.batches.length);
    if (name.startsWith("2.0.0-compression/generated_lz4") || name.startsWith("2.0.0-compression/generated_zstd") || name.includes("uncompressible")) return;
    const reader = arrow.RecordBatchReader.from(fs.readFileSync(gz.replace(/\.json\.gz$/, ".stream"))).open() as arrow.RecordBatchStreamReader;
    const schema = reader.schema;
    const batches = json.batches.length === 0 ? [] : [...reader];
    expect(diffBatches({ schema, batches }, ours)).toBeUndefined();
  });

  test("the comparison notices a changed value", () => {
    const gz = corpus.find(([n]) => n.endsWith("generated_primitive"))![1];
    const json = parseIntegrationJson(zlib.gunzipSync(fs.readFileSync(gz)).toString("utf8"));
    const a = readIntegrationJson(json);
    const col = json.batches[1].columns.find((c) => c.name === "int32_nonnullable")!;
    (col.DATA as number[])[3] += 1;
    expect(diffBatches(a, readIntegrationJson(json))).toMatch(/batch 1 column int32_nonnullable row 3/);
  });
});

// ------------------------------------------------------------------ the matrix

describe("Flight integration matrix against arrow-go", () => {
  let tmp: string;
  let results: CellResult[] = [];
  const expectations = new Map<string, Expectation>();
  let setupError: Error | undefined;

  beforeAll(async () => {
    try {
      const t0 = Date.now();
      execFileSync("bash", [path.join(ROOT, "scripts", "install-go-peers.sh")], { cwd: ROOT, stdio: "pipe" });
      const t1 = Date.now();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require("../integration/run.js") as { ensureBuilt(o: { quiet: boolean }): void }).ensureBuilt({ quiet: true });
      const t2 = Date.now();
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-integration-"));
      const files = unpackDatasets(tmp);
      const facts = new Map<string, DatasetFacts>();
      for (const [name, file] of files) facts.set(name, { batches: (JSON.parse(fs.readFileSync(file, "utf8")) as { batches: unknown[] }).batches.length });
      const goKnows = await probeGoScenarios();
      for (const c of allCells) expectations.set(c.id, expectationFor(c, c.dataset ? facts.get(c.dataset) : undefined, goKnows));
      const started = Date.now();
      results = await runMatrix(allCells, (d) => files.get(d)!, { parallel: PARALLEL, goKnows });
      const wallMs = Date.now() - started;
      writeReport({
        peer: { module: "github.com/apache/arrow-go/v18", version: peerVersion(), scenarios: [...goKnows].sort() },
        node: process.version,
        apacheArrow: apacheArrowVersion(),
        startedAt: new Date(started).toISOString(),
        wallMs,
        parallel: PARALLEL,
        setupMs: { installGoPeers: t1 - t0, build: t2 - t1 },
        results: results.map((r) => {
          const e = expectations.get(r.id)!;
          const problem = checkExpectation(r, e);
          return { ...r, expected: e.status, ...(e.gap ? { gap: e.gap } : {}), ...(problem ? { problem } : {}) };
        }),
      });
    } catch (err) {
      setupError = err as Error;
    }
  }, 20 * 60_000);

  afterAll(() => {
    killAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("setup: Go peers installed, integration built, corpus unpacked", () => {
    if (setupError) throw setupError;
    expect(corpus).toHaveLength(37);
    expect(results).toHaveLength(allCells.length);
  });

  test.each(allCells.map((c) => [c.id, c] as const))("%s", (id) => {
    if (setupError) throw new Error(`setup failed: ${setupError.message}`);
    const r = results.find((x) => x.id === id);
    expect(r).toBeDefined();
    const problem = checkExpectation(r!, expectations.get(id)!);
    if (problem) throw new Error(problem);
  });
});
