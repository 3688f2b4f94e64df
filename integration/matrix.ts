// The cross-language integration matrix: every scenario, and the default scenario with every
// dataset, in both directions against arrow-go's integration peers, each cell against freshly
// started processes on free ports. Used by test/integration-matrix.test.ts; also runnable on
// its own: node .cache/integration-build/matrix.js [--only SUBSTRING] [--out FILE].

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { EXIT_LIBRARY_GAP, EXIT_UNSUPPORTED, SCENARIOS, type ScenarioName } from "./scenario-names";

/** The repository root: the directory above the one holding integration/run.js (works from the sources and the build). */
function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "integration", "run.js"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the repository root above ${from}`);
  }
}

export const ROOT = findRoot(__dirname);
export const GO_BIN = path.join(ROOT, ".cache", "go-bin");
export const BUILD = path.join(ROOT, ".cache", "integration-build");
export const CORPUS_IPC = path.resolve(ROOT, "test", "fixtures", "conformance", "ipc");
export const RESULTS_FILE = path.join(ROOT, ".cache", "conformance-results.json");

/** Go client → BlackIce server, or BlackIce client → Go server. */
export type Direction = "server" | "client";
export const DIRECTION_LABEL: Record<Direction, string> = {
  server: "arrow-go client → BlackIce server",
  client: "BlackIce client → arrow-go server",
};

export type Status = "pass" | "fail" | "unsupported" | "library-gap" | "not-applicable";

export interface Cell {
  id: string;
  scenario: ScenarioName;
  /** Dataset name (without .json.gz) for the default scenario. */
  dataset?: string;
  direction: Direction;
}

export interface CellResult extends Cell {
  status: Status;
  /** Why, for anything but a pass. */
  reason?: string;
  ms: number;
}

/**
 * Which of `names` the installed Go peer knows: its server panics with "scenario not found"
 * at once for an unknown name, and prints its port for a known one.
 */
export async function probeGoScenarios(names: readonly string[] = SCENARIOS): Promise<Set<string>> {
  const known = new Set<string>();
  await Promise.all(
    names.map(async (name) => {
      try {
        const s = await startServer(path.join(GO_BIN, "arrow-flight-integration-server"), ["-port", "0", "-scenario", name], 10_000);
        known.add(name);
        await s.stop();
      } catch (err) {
        if (!/scenario not found/.test((err as Error).message)) throw err;
      }
    }),
  );
  return known;
}

/** Every `*.json.gz` of the corpus, as [dataset name, absolute path]. */
export function datasets(corpus = CORPUS_IPC): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const dir of fs.readdirSync(corpus).sort()) {
    const d = path.join(corpus, dir);
    if (!fs.statSync(d).isDirectory()) continue;
    for (const f of fs.readdirSync(d).sort()) if (f.endsWith(".json.gz")) out.push([`${dir}/${f.slice(0, -".json.gz".length)}`, path.join(d, f)]);
  }
  return out;
}

/** Gunzips every dataset into `dir`; returns dataset name → JSON path. */
export function unpackDatasets(dir: string, corpus = CORPUS_IPC): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, gz] of datasets(corpus)) {
    const file = path.join(dir, `${name.replace("/", "__")}.json`);
    fs.writeFileSync(file, zlib.gunzipSync(fs.readFileSync(gz)));
    out.set(name, file);
  }
  return out;
}

export function cells(datasetNames: readonly string[]): Cell[] {
  const out: Cell[] = [];
  for (const direction of ["server", "client"] as const) {
    for (const dataset of datasetNames) out.push({ id: `${direction} default ${dataset}`, scenario: "", dataset, direction });
    for (const scenario of SCENARIOS) if (scenario !== "") out.push({ id: `${direction} ${scenario}`, scenario, direction });
  }
  return out;
}

// ------------------------------------------------------------------ processes

const live = new Set<ChildProcess>();

/** Kills every process the matrix started and that is still running. */
export function killAll(): void {
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

function track(p: ChildProcess): ChildProcess {
  live.add(p);
  p.once("exit", () => live.delete(p));
  return p;
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to completion (or kills it after `timeoutMs`). */
function run(cmd: string, args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    const p = track(spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    p.stdout!.on("data", (d) => (stdout += d));
    p.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill("SIGKILL");
    }, timeoutMs);
    p.on("error", (err) => {
      stderr += String(err);
    });
    p.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** A started server: its port, and a stop function that always ends the process. */
interface Server {
  port: number;
  stop(): Promise<void>;
  output(): string;
}

/** Starts a server and waits for `Server listening on localhost:PORT`. */
function startServer(cmd: string, args: string[], timeoutMs = 20_000): Promise<Server> {
  return new Promise((resolve, reject) => {
    const p = track(spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
    let out = "";
    let settled = false;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    const stop = async (): Promise<void> => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(t);
    };
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      void stop();
      reject(new Error(`${why}; output: ${out.trim().slice(-800)}`));
    };
    const timer = setTimeout(() => fail(`server did not report its port within ${timeoutMs} ms`), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d;
      const m = /Server listening on localhost:(\d+)/.exec(out);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({ port: Number(m[1]), stop, output: () => out });
      }
    };
    p.stdout!.on("data", onData);
    p.stderr!.on("data", onData);
    p.on("error", (err) => fail(String(err)));
    // "close", not "exit": it comes after the process's stdout and stderr have been read, so a
    // panic's text (the scenario probe looks for "scenario not found") is in `out`. On a loaded
    // machine "exit" can come first, and the probe then took a known refusal for a failure.
    p.once("close", (code, signal) => {
      clearTimeout(timer);
      fail(`server exited (${signal ?? code}) before listening`);
    });
  });
}

const lastLine = (s: string): string =>
  s
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-1)[0] ?? "";

/** The Go client's failure: its panic line (it panics with the scenario's error). */
function goFailure(r: Ran): string {
  if (r.timedOut) return "arrow-go client timed out";
  const panic = /panic: (.*)/.exec(r.stderr + r.stdout);
  return `arrow-go client: ${panic ? panic[1] : lastLine(r.stderr + r.stdout) || `exit ${r.code ?? r.signal}`}`;
}

const ourServer = (scenario: string): [string, string[]] => [process.execPath, [path.join(BUILD, "server.js"), "--port", "0", "--scenario", scenario]];
const ourClient = (args: string[]): [string, string[]] => [process.execPath, [path.join(BUILD, "client.js"), ...args]];

/** Runs one cell against fresh processes; never throws. */
export async function runCell(cell: Cell, jsonPath: (dataset: string) => string, goKnows: ReadonlySet<string>): Promise<CellResult> {
  const started = Date.now();
  const done = (status: Status, reason?: string): CellResult => ({ ...cell, status, ...(reason ? { reason } : {}), ms: Date.now() - started });
  if (!goKnows.has(cell.scenario)) return done("not-applicable", `arrow-go's integration peers have no "${cell.scenario}" scenario`);
  const file = cell.dataset ? jsonPath(cell.dataset) : undefined;
  let server: Server | undefined;
  try {
    if (cell.direction === "server") {
      const [cmd, args] = ourServer(cell.scenario);
      try {
        server = await startServer(cmd, args);
      } catch (err) {
        const msg = (err as Error).message;
        const gap = /LIBRARY GAP: (.*)/.exec(msg);
        return gap ? done("library-gap", gap[1].replace(/; output:.*$/s, "")) : done("fail", `BlackIce server: ${msg}`);
      }
      const goArgs = ["-host", "localhost", "-port", String(server.port), "-scenario", cell.scenario, ...(file ? ["-path", file] : [])];
      const go = await run(path.join(GO_BIN, "arrow-flight-integration-client"), goArgs, 30_000);
      if (go.code !== 0) return done("fail", goFailure(go));
      if (file) {
        // The Go client does not check its own DoGet results: read the flight back.
        const [c, a] = ourClient(["--host", "localhost", "--port", String(server.port), "--path", file, "--verify-stored"]);
        const back = await run(c, a, 30_000);
        if (back.code !== 0) return done("fail", `read-back: ${lastLine(back.stderr) || `exit ${back.code ?? back.signal}`}`);
      }
      return done("pass");
    }
    server = await startServer(path.join(GO_BIN, "arrow-flight-integration-server"), ["-port", "0", "-scenario", cell.scenario]);
    const [c, a] = ourClient(["--host", "localhost", "--port", String(server.port), "--scenario", cell.scenario, ...(file ? ["--path", file] : [])]);
    const ours = await run(c, a, 30_000);
    if (ours.code === 0) return done("pass");
    const line = lastLine(ours.stderr) || (ours.timedOut ? "BlackIce client timed out" : `exit ${ours.code ?? ours.signal}`);
    if (ours.code === EXIT_UNSUPPORTED) return done("unsupported", line.replace(/^UNSUPPORTED: /, ""));
    if (ours.code === EXIT_LIBRARY_GAP) return done("library-gap", line.replace(/^LIBRARY GAP: /, ""));
    return done("fail", line.replace(/^FAILED: [^:]*(?:\([^)]*\))?: /, ""));
  } catch (err) {
    return done("fail", `harness: ${(err as Error).message}`);
  } finally {
    await server?.stop();
  }
}

/** Runs cells with at most `parallel` at a time, in order of the list. */
export async function runMatrix(
  list: readonly Cell[],
  jsonPath: (dataset: string) => string,
  options: { parallel?: number; goKnows: ReadonlySet<string>; onResult?: (r: CellResult) => void },
): Promise<CellResult[]> {
  const { goKnows, onResult } = options;
  const parallel = options.parallel ?? 3;
  const results: CellResult[] = new Array(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      results[i] = await runCell(list[i], jsonPath, goKnows);
      onResult?.(results[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  return results;
}

export interface MatrixReport {
  peer: { module: string; version: string; scenarios: string[] };
  node: string;
  apacheArrow: string;
  startedAt: string;
  wallMs: number;
  parallel: number;
  /** Time to install the Go peers and to build, when the test did it. */
  setupMs?: { installGoPeers: number; build: number };
  /** Each result, with what was expected (integration/expectations.ts) when known. */
  results: Array<CellResult & { expected?: Status; gap?: string; problem?: string }>;
}

export function peerVersion(): string {
  const stamp = path.join(GO_BIN, ".arrow-go-version");
  return fs.existsSync(stamp) ? fs.readFileSync(stamp, "utf8").trim() : "unknown";
}

export function apacheArrowVersion(): string {
  const file = path.join(ROOT, "node_modules", "apache-arrow", "package.json");
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version : "unknown";
}

export function writeReport(report: MatrixReport, file = RESULTS_FILE): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}

// Run on its own: node .cache/integration-build/matrix.js [--only SUBSTRING] [--parallel N]
if (require.main === module) {
  const argv = process.argv.slice(2);
  const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : undefined;
  const parallel = argv.includes("--parallel") ? Number(argv[argv.indexOf("--parallel") + 1]) : 3;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-integration-"));
  const stop = (): void => {
    killAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.on("SIGINT", () => {
    stop();
    process.exit(130);
  });
  const started = Date.now();
  const files = unpackDatasets(tmp);
  const list = cells([...files.keys()]).filter((c) => !only || c.id.includes(only));
  let goKnows: Set<string>;
  probeGoScenarios()
    .then((known) => {
      goKnows = known;
      return runMatrix(list, (d) => files.get(d)!, {
        parallel,
        goKnows,
        onResult: (r) => process.stdout.write(`${r.status.padEnd(14)} ${String(r.ms).padStart(6)} ms  ${r.id}${r.reason ? `  — ${r.reason}` : ""}\n`),
      });
    })
    .then((results) => {
      const report: MatrixReport = {
        peer: { module: "github.com/apache/arrow-go/v18", version: peerVersion(), scenarios: [...goKnows].sort() },
        node: process.version,
        apacheArrow: apacheArrowVersion(),
        startedAt: new Date(started).toISOString(),
        wallMs: Date.now() - started,
        parallel,
        results,
      };
      if (!only) writeReport(report);
      process.exitCode = results.some((r) => r.status === "fail") ? 1 : 0;
      process.stdout.write(`${results.filter((r) => r.status === "pass").length}/${results.length} pass in ${report.wallMs} ms\n`);
    })
    .finally(stop);
}
