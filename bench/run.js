#!/usr/bin/env node
// BlackIce Flight benchmarks. `npm run bench` (full) or `npm run bench -- --quick` (about a
// minute). See docs/benchmarks.md for what is measured and how.
//
// Options:
//   --quick          shrink every case (CI runs this once); writes bench/out/, not docs/
//   --only=a,b       run only some parts: doget, doput, concurrent, small, memory, scale, disk, writer, projection, query, pruning, browser, cluster
//   --docs / --no-docs   write docs/benchmarks.md and .svg (default: yes for full, no for quick)
//   --out=DIR        where the JSON results and the quick report go (default bench/out)
//   --tables=fixed,telemetry  --batches=64KiB,1MiB,4MiB,16MiB   subsets, for exploring
//   --runs=N         override the number of measured runs
//   --report=FILE    only regenerate the table, docs/benchmarks.md and .svg from a results JSON
//                    (e.g. bench/out/results-full.json) after editing bench/findings.js
"use strict";
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const procs = require("./lib/procs");
const { summarize, mergeHists, histPercentileMs } = require("./lib/stats");
const report = require("./lib/report");

const ROOT = path.resolve(__dirname, "..");
const PYTHON = process.env.BENCH_PYTHON || path.join(ROOT, ".venv/bin/python");
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const MODES = {
  full: {
    tableBytes: 256 * MiB, // one stored table per case
    getsPerRun: 1, // DoGets per run: 256 MiB per run, 1.25 GiB per case and server over 5 runs
    putsPerRun: 1, // DoPuts per run: the same
    concurrentStreams: 4, // case 3: 4 streams x 1 table = 1 GiB per run
    runs: 5,
    tsTimes: 1, // the TS client reads/writes the table once per run
    tsArrowRuns: 3, // its apache-arrow mode (~100 MiB/s) runs 3 times only: 0.75 GiB per case
    smallSeconds: 1,
    smallRuns: 5,
    memoryBytes: 2 * GiB,
    floodCapBytes: 256 * MiB,
    diskBatches: [1 * MiB, 16 * MiB],
    diskBigBytes: 2 * GiB,
    clusterBytes: 64 * MiB,
    scaleFlights: 100_000,
    listRuns: 3,
    writerRows: 1_000_000,
    pruningBytes: 64 * MiB, // the pruning part's flight: 64 batches of 1 MiB
    queryRows: 10_000_000,
  },
  quick: {
    tableBytes: 8 * MiB,
    getsPerRun: 1,
    putsPerRun: 1,
    concurrentStreams: 4,
    runs: 3,
    tsTimes: 1,
    tsArrowRuns: 3,
    smallSeconds: 0.2,
    smallRuns: 3,
    memoryBytes: 128 * MiB,
    floodCapBytes: 32 * MiB,
    diskBatches: [1 * MiB],
    diskBigBytes: 64 * MiB,
    clusterBytes: 8 * MiB,
    scaleFlights: 2_000,
    listRuns: 3,
    writerRows: 20_000,
    pruningBytes: 8 * MiB,
    queryRows: 200_000,
  },
};
const BATCH_SIZES = [64 * KiB, 1 * MiB, 4 * MiB, 16 * MiB];
const TABLES = ["fixed", "telemetry"];
const PARTS = ["doget", "concurrent", "doput", "small", "memory", "scale", "disk", "writer", "projection", "query", "pruning", "browser", "cluster"];
const TS_MODES = ["raw", "arrow"]; // FlightClient doGetRaw/doPutRaw, and getTable/putTable (apache-arrow)

function parseArgs(argv) {
  const out = { quick: false, only: new Set(PARTS), docs: undefined, out: path.join(ROOT, "bench/out"), tables: TABLES, batches: BATCH_SIZES };
  const size = (t) => {
    const m = /^(\d+)(KiB|MiB)?$/.exec(t);
    if (!m) throw new Error(`bad size ${t} (e.g. 64KiB, 1MiB)`);
    return Number(m[1]) * (m[2] === "MiB" ? MiB : m[2] === "KiB" ? KiB : 1);
  };
  for (const a of argv) {
    if (a === "--quick") out.quick = true;
    else if (a.startsWith("--only=")) out.only = new Set(a.slice(7).split(",").filter(Boolean));
    else if (a === "--docs") out.docs = true;
    else if (a === "--no-docs") out.docs = false;
    else if (a.startsWith("--out=")) out.out = path.resolve(a.slice(6));
    else if (a.startsWith("--tables=")) out.tables = a.slice(9).split(",");
    else if (a.startsWith("--batches=")) out.batches = a.slice(10).split(",").map(size);
    else if (a.startsWith("--runs=")) out.runs = Number(a.slice(7));
    else if (a.startsWith("--report=")) out.report = path.resolve(a.slice(9));
    else if (a === "--help" || a === "-h") {
      process.stdout.write(fs.readFileSync(__filename, "utf8").split("\n").slice(1, 10).join("\n").replace(/^\/\/ ?/gm, "") + "\n");
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  for (const p of out.only) if (!PARTS.includes(p)) throw new Error(`--only: unknown part ${p}; parts: ${PARTS.join(", ")}`);
  const subset = out.only.size !== PARTS.length || out.tables.length !== TABLES.length || out.batches.length !== BATCH_SIZES.length || out.runs;
  out.docs ??= !out.quick && !subset;
  return out;
}

const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmtSize = (b) => (b >= MiB ? `${b / MiB} MiB` : `${b / KiB} KiB`);
const rotate = (list, k) => list.map((_, i) => list[(i + k) % list.length]);

function loadAvg() {
  try {
    return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

function readRss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

// ------------------------------------------------------------------ processes

/**
 * Copies the built packages to bench/out/snapshot so that every process of this run loads the
 * same code, even if the packages are rebuilt while it runs (others work in this repository).
 * The packages go to snapshot/node_modules, which the copied dists resolve before the
 * workspace's symlinks (cluster -> flight -> core); everything else resolves from the
 * repository's node_modules.
 */
function snapshotPackages(meta) {
  const dir = path.join(ROOT, "bench/out/snapshot");
  fs.rmSync(dir, { recursive: true, force: true });
  const copy = (folder, name) => {
    const to = path.join(dir, "node_modules/@blackice", name);
    fs.cpSync(path.join(ROOT, "packages", folder, "dist"), path.join(to, "dist"), { recursive: true });
    fs.copyFileSync(path.join(ROOT, "packages", folder, "package.json"), path.join(to, "package.json"));
    return to;
  };
  const core = copy("core", "flight-core");
  const flight = copy("flight", "flight");
  const cluster = copy("cluster", "flight-cluster");
  let dirty = "unknown";
  try {
    dirty = execFileSync("git", ["status", "--porcelain", "--", "packages/core/src", "packages/flight/src", "packages/cluster/src"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    // not a git checkout
  }
  meta.packagesDirty = dirty === "" ? false : dirty;
  snapshotEnv = { BENCH_FLIGHT_DIST: path.join(flight, "dist"), BENCH_CORE_DIST: path.join(core, "dist"), BENCH_CLUSTER_DIST: path.join(cluster, "dist") };
}
let snapshotEnv = {};

const node = process.execPath;
const benchFile = (...p) => path.join(__dirname, ...p);

function startBlackIce(name, extra = []) {
  return procs.startServer(name, node, [benchFile("servers/blackice-server.js"), ...extra], { env: snapshotEnv });
}
function startPyarrow(name) {
  return procs.startServer(name, PYTHON, [benchFile("py/pyarrow_server.py")]);
}
function startRawGrpc(name) {
  return procs.startServer(name, node, [benchFile("servers/grpc-raw-server.js")], { env: snapshotEnv });
}
function startTcpSource(name) {
  return procs.startServer(name, node, [benchFile("servers/tcp-source.js")]);
}
function startDriver() {
  return procs.start("driver", PYTHON, [benchFile("py/driver.py")], { cwd: benchFile("py") });
}

/** Whether the project's TypeScript client is in dist (exported, or at least built). */
function tsClientAvailable() {
  try {
    const dist = snapshotEnv.BENCH_FLIGHT_DIST ?? path.join(ROOT, "packages/flight/dist");
    return fs.existsSync(path.join(dist, "client/flight-client.js"));
  } catch {
    return false;
  }
}
function startTsDriver() {
  return procs.start("ts-client", node, [benchFile("ts-client-driver.js")], { env: snapshotEnv });
}

/** Reads `total` bytes from the TCP source in chunks of `chunk`; resolves with seconds. */
function tcpRead(port, chunk, total) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let n = 0;
    let t0 = 0;
    sock.on("connect", () => {
      t0 = performance.now();
      sock.write(JSON.stringify({ chunk, total }) + "\n");
    });
    sock.on("data", (d) => (n += d.length));
    sock.on("end", () => {
      const s = (performance.now() - t0) / 1000;
      sock.destroy();
      if (n !== total) reject(new Error(`tcp: read ${n} of ${total} bytes`));
      else resolve(s);
    });
    sock.on("error", reject);
  });
}

// ------------------------------------------------------------------ throughput

async function throughputCases(ctx) {
  const { cfg, args, driver, servers, tcp, ts, results } = ctx;
  const grpcServers = servers; // a, b, c: all read by the same pyarrow client
  const record = (op, table, batchBytes, server, mibps) => {
    let row = results.throughput.find((r) => r.op === op && r.table === table && r.batchBytes === batchBytes && r.server === server);
    if (!row) results.throughput.push((row = { op, table, batchBytes, server, values: [] }));
    row.values.push(mibps);
  };
  for (const table of args.tables) {
    for (const batchBytes of args.batches) {
      const tag = `${table} ${fmtSize(batchBytes)}`;
      const spec = await driver.call({ cmd: "spec", table, batch_bytes: batchBytes, table_bytes: cfg.tableBytes });
      results.specs[`${table}/${batchBytes}`] = spec;
      const needGet = args.only.has("doget") || args.only.has("concurrent") || (ts && args.only.has("doput"));
      const tsPrepared = Boolean(ts && needGet);
      const loads = {};
      const getPath = ["bench", "get", table, String(batchBytes)];
      if (needGet) {
        for (const s of grpcServers) {
          loads[s.name] = await driver.call({ cmd: "load", uri: s.uri, table, batch_bytes: batchBytes, table_bytes: cfg.tableBytes, path: getPath });
        }
        if (ts) await ts.call({ cmd: "prepare", uri: servers[0].uri, ticket: loads.blackice.ticket, key: `${table}/${batchBytes}`, arrow: true });
      }

      if (args.only.has("doget")) {
        const bytes = spec.ipc_bytes * cfg.getsPerRun;
        for (let rep = -1; rep < cfg.runs; rep++) {
          for (const s of rotate(grpcServers, rep + 1)) {
            const r = await driver.call({ cmd: "doget", uri: s.uri, ticket: loads[s.name].ticket, rows: spec.rows, times: cfg.getsPerRun });
            if (rep >= 0) record("doget", table, batchBytes, s.name, bytes / MiB / r.seconds);
          }
          for (const mode of ts ? TS_MODES : []) {
            if (mode === "arrow" && rep >= cfg.tsArrowRuns) continue;
            const r = await ts.call({ cmd: "doget", mode, uri: servers[0].uri, ticket: loads.blackice.ticket, rows: spec.rows, times: cfg.tsTimes });
            if (rep >= 0) record("doget", table, batchBytes, `ts-${mode}`, (spec.ipc_bytes * cfg.tsTimes) / MiB / r.seconds);
          }
          const sec = await tcpRead(tcp.port, spec.message_bytes, bytes);
          if (rep >= 0) record("doget", table, batchBytes, "tcp", bytes / MiB / sec);
        }
        log(`DoGet ${tag}: ${summaryLine(results, "doget", table, batchBytes)}`);
      }

      if (args.only.has("concurrent")) {
        const streams = cfg.concurrentStreams;
        const bytes = spec.ipc_bytes * streams;
        for (let rep = -1; rep < cfg.runs; rep++) {
          for (const s of rotate(grpcServers, rep + 1)) {
            const r = await driver.call({ cmd: "doget", uri: s.uri, ticket: loads[s.name].ticket, rows: spec.rows, times: 1, streams });
            if (rep >= 0) record("doget4", table, batchBytes, s.name, bytes / MiB / r.seconds);
          }
          const t0 = performance.now();
          await Promise.all(Array.from({ length: streams }, () => tcpRead(tcp.port, spec.message_bytes, spec.ipc_bytes)));
          if (rep >= 0) record("doget4", table, batchBytes, "tcp", bytes / MiB / ((performance.now() - t0) / 1000));
        }
        log(`4x DoGet ${tag}: ${summaryLine(results, "doget4", table, batchBytes)}`);
      }

      if (needGet) {
        for (const s of grpcServers) await driver.call({ cmd: "delete", uri: s.uri, paths: [getPath] });
      }

      if (args.only.has("doput")) {
        const bytes = spec.ipc_bytes * cfg.putsPerRun;
        for (let rep = -1; rep < cfg.runs; rep++) {
          const prefix = ["bench", "put", table, String(batchBytes), String(rep + 1)];
          const paths = Array.from({ length: cfg.putsPerRun }, (_, i) => [...prefix, String(i)]);
          for (const s of rotate(grpcServers, rep + 1)) {
            const r = await driver.call({
              cmd: "doput",
              uri: s.uri,
              table,
              batch_bytes: batchBytes,
              table_bytes: cfg.tableBytes,
              path_prefix: prefix,
              times: cfg.putsPerRun,
            });
            if (rep >= 0) record("doput", table, batchBytes, s.name, bytes / MiB / r.seconds);
            await driver.call({ cmd: "delete", uri: s.uri, paths });
          }
          for (const mode of ts && tsPrepared ? TS_MODES : []) {
            if (mode === "arrow" && rep >= cfg.tsArrowRuns) continue;
            const tsPrefix = ["bench", "tsput", mode, table, String(batchBytes), String(rep + 1)];
            const r = await ts.call({ cmd: "doput", mode, uri: servers[0].uri, key: `${table}/${batchBytes}`, path_prefix: tsPrefix, times: cfg.tsTimes });
            if (rep >= 0) record("doput", table, batchBytes, `ts-${mode}`, (spec.ipc_bytes * cfg.tsTimes) / MiB / r.seconds);
            const tsPaths = Array.from({ length: cfg.tsTimes }, (_, i) => [...tsPrefix, String(i)]);
            await driver.call({ cmd: "delete", uri: servers[0].uri, paths: tsPaths });
          }
          const sec = await tcpRead(tcp.port, spec.message_bytes, bytes);
          if (rep >= 0) record("doput", table, batchBytes, "tcp", bytes / MiB / sec);
        }
        log(`DoPut ${tag}: ${summaryLine(results, "doput", table, batchBytes)}`);
      }
      if (ts) await ts.call({ cmd: "forget", key: `${table}/${batchBytes}` });
    }
  }
}

function summaryLine(results, op, table, batchBytes) {
  return results.throughput
    .filter((r) => r.op === op && r.table === table && r.batchBytes === batchBytes)
    .map((r) => `${r.server} ${summarize(r.values).median.toFixed(0)}`)
    .join(", ") + " MiB/s";
}

// ------------------------------------------------------------------ small calls

async function smallCalls(ctx) {
  const { cfg, driver, servers, results } = ctx;
  const smallPath = ["bench", "small"];
  for (const s of servers) {
    await driver.call({ cmd: "load", uri: s.uri, table: "fixed", batch_bytes: 64 * KiB, table_bytes: 64 * KiB, path: smallPath });
  }
  const setup = { servers: Object.fromEntries(servers.map((s) => [s.name, { uri: s.uri, path: smallPath }])) };
  for (const callers of [1, 32]) {
    // 32 callers: 4 processes x 8 threads (a GIL per process), each thread its own connection.
    const nprocs = callers === 1 ? 1 : 4;
    const threads = callers / nprocs;
    const workers = Array.from({ length: nprocs }, (_, i) =>
      procs.start(`small-${callers}-${i}`, PYTHON, [benchFile("py/small_calls.py"), String(threads)], { cwd: benchFile("py") }),
    );
    try {
      for (const w of workers) w.send(setup);
      for (const w of workers) {
        const hello = await w.nextJson(120_000);
        if (!hello.ready) throw new Error(`small-call worker not ready: ${JSON.stringify(hello)}`);
      }
      const phases = [];
      let offset = 0;
      const gap = 0.1;
      // A short warm-up phase per server and kind, then the measured runs, interleaved.
      for (let rep = -1; rep < cfg.smallRuns; rep++) {
        for (const kind of ["ping", "getflightinfo"]) {
          for (const s of rotate(servers, rep + 1)) {
            const duration = rep < 0 ? Math.min(0.2, cfg.smallSeconds) : cfg.smallSeconds;
            phases.push({ server: s.name, kind, rep, offset, duration });
            offset += duration + gap;
          }
        }
      }
      const t0 = Date.now() / 1000 + 0.3;
      for (const w of workers) w.send({ t0, phases });
      const outs = [];
      for (const w of workers) {
        const out = await w.nextJson((offset + 60) * 1000);
        if (out.error) throw new Error(`small-call worker: ${out.error}`);
        outs.push(out.phases);
      }
      for (const kind of ["ping", "getflightinfo"]) {
        for (const s of servers) {
          const ops = [];
          const p50 = [];
          const p99 = [];
          phases.forEach((ph, i) => {
            if (ph.rep < 0 || ph.kind !== kind || ph.server !== s.name) return;
            const count = outs.reduce((sum, o) => sum + o[i].count, 0);
            const hist = mergeHists(outs.map((o) => o[i].hist));
            ops.push(count / ph.duration);
            p50.push(histPercentileMs(hist, 50));
            p99.push(histPercentileMs(hist, 99));
          });
          results.small.push({ kind, callers, server: s.name, ops: summarize(ops), p50: summarize(p50), p99: summarize(p99) });
        }
        log(
          `${kind} x${callers}: ` +
            results.small
              .filter((r) => r.kind === kind && r.callers === callers)
              .map((r) => `${r.server} ${r.ops.median.toFixed(0)} ops/s p99 ${r.p99.median.toFixed(2)} ms`)
              .join(", "),
        );
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  }
}

// ------------------------------------------------------------------ memory

async function memoryCase(ctx) {
  const { cfg, driver, results } = ctx;
  const flightBytes = Math.min(256 * MiB, cfg.memoryBytes);
  const count = Math.round(cfg.memoryBytes / flightBytes);
  const variants = [
    { server: "blackice", batchBytes: 1 * MiB },
    { server: "blackice", batchBytes: 64 * KiB },
    { server: "pyarrow", batchBytes: 1 * MiB },
  ];
  for (const v of variants) {
    const s =
      v.server === "blackice"
        ? await startBlackIce("blackice-mem", ["--max-memory", String(cfg.memoryBytes * 2)])
        : await startPyarrow("pyarrow-mem");
    try {
      await sleep(500);
      const rssIdle = readRss(s.pid);
      let ipcBytes = 0;
      for (let i = 0; i < count; i++) {
        const r = await driver.call({ cmd: "load", uri: s.uri, table: "fixed", batch_bytes: v.batchBytes, table_bytes: flightBytes, path: ["mem", String(i)] });
        ipcBytes += r.ipc_bytes;
      }
      await sleep(2000);
      const rss = readRss(s.pid);
      let storeBytes = ipcBytes;
      let storeMemory = ipcBytes;
      if (v.server === "blackice") {
        const st = JSON.parse((await driver.call({ cmd: "action", uri: s.uri, type: "stats" }))[0]);
        storeBytes = st.bytes;
        storeMemory = st.memory.used;
      }
      const row = { ...v, flights: count, ipcBytes, storeBytes, storeMemory, rssIdle, rss, ratio: rss / storeMemory };
      results.memory.push(row);
      log(`memory ${v.server} ${fmtSize(v.batchBytes)} batches: RSS ${(rss / MiB).toFixed(0)} MiB for ${(storeMemory / MiB).toFixed(0)} MiB stored = ${row.ratio.toFixed(3)}x`);
    } finally {
      await s.proc.stop();
    }
  }
}

/**
 * Put flood: 16 clients at once, each putting its own flight, together twice the server's
 * memory cap. Peak RSS (sampled every 20 ms) against the RSS before the flood: what a flood can
 * make the server hold beyond what it stores.
 */
async function floodCase(ctx) {
  const { cfg, driver, results } = ctx;
  const cap = cfg.floodCapBytes;
  const clients = 16;
  const s = await startBlackIce("blackice-flood", ["--max-memory", String(cap)]);
  try {
    const cfgOut = JSON.parse((await driver.call({ cmd: "action", uri: s.uri, type: "stats" }))[0]);
    await sleep(500);
    const rssBefore = readRss(s.pid);
    let peak = rssBefore;
    const timer = setInterval(() => {
      const r = readRss(s.pid);
      if (r > peak) peak = r;
    }, 20);
    let r;
    try {
      r = await driver.call({ cmd: "flood", uri: s.uri, clients, table: "fixed", batch_bytes: MiB, table_bytes: Math.round((2 * cap) / clients), path_prefix: ["flood"] });
    } finally {
      clearInterval(timer);
    }
    const after = readRss(s.pid);
    if (after > peak) peak = after;
    const st = JSON.parse((await driver.call({ cmd: "action", uri: s.uri, type: "stats" }))[0]);
    const row = {
      capBytes: cap,
      clients,
      offeredBytes: 2 * cap,
      inFlightLimitBytes: cfgOut.transport?.inFlight?.limit ?? null,
      ok: r.ok,
      refused: r.refused,
      storedBytes: st.memory.used,
      rssBefore,
      rssPeak: peak,
      growth: peak - rssBefore,
    };
    results.flood = row;
    log(`flood: ${r.ok} stored, ${r.refused} refused; RSS +${(row.growth / MiB).toFixed(0)} MiB at peak for a ${(cap / MiB).toFixed(0)} MiB cap (${(st.memory.used / MiB).toFixed(0)} MiB stored)`);
  } finally {
    await s.proc.stop();
  }
}

/** Many tiny flights: RSS growth against the store's own count (`stats` memory.used). */
async function tinyFlightsCase(ctx) {
  const { cfg, driver, results } = ctx;
  const n = cfg.scaleFlights;
  const s = await startBlackIce("blackice-tiny");
  try {
    await sleep(500);
    const rssBefore = readRss(s.pid);
    await driver.call({ cmd: "put_many", uri: s.uri, count: n, prefix: ["tiny"], threads: 8 });
    await sleep(2000);
    const rss = readRss(s.pid);
    const st = JSON.parse((await driver.call({ cmd: "action", uri: s.uri, type: "stats" }))[0]);
    const row = { flights: n, storeMemory: st.memory.used, rssBefore, rss, growth: rss - rssBefore, ratio: (rss - rssBefore) / st.memory.used };
    results.tiny = row;
    log(`tiny flights: ${n} flights, RSS +${(row.growth / MiB).toFixed(0)} MiB for ${(row.storeMemory / MiB).toFixed(1)} MiB counted = ${row.ratio.toFixed(2)}x`);
  } finally {
    await s.proc.stop();
  }
}

// ------------------------------------------------------------------ disk

/**
 * The disk store (issue 10): DoGet and DoPut of the fixed table against BlackIce on its memory
 * store, on diskStore with fsync "always" and "never", and pyarrow's server, interleaved.
 * DoGet reads a flight just written, so from a warm page cache.
 */
async function diskCase(ctx) {
  const { cfg, driver, results } = ctx;
  if (typeof require(path.join(ROOT, "packages/core/dist/index.js")).diskStore !== "function") {
    log("disk: this build has no diskStore; part skipped");
    return;
  }
  const dirs = [];
  const disk = async (name, fsync) => {
    const dir = fs.mkdtempSync(path.join(ROOT, "bench/out/disk-"));
    dirs.push(dir);
    return startBlackIce(name, ["--data-dir", dir, "--fsync", fsync]);
  };
  const servers = await Promise.all([startBlackIce("memory"), disk("disk-always", "always"), disk("disk-never", "never"), startPyarrow("pyarrow")]);
  const rows = [];
  const record = (op, batchBytes, server, mibps) => {
    let row = rows.find((r) => r.op === op && r.batchBytes === batchBytes && r.server === server);
    if (!row) rows.push((row = { op, batchBytes, server, values: [] }));
    row.values.push(mibps);
  };
  try {
    for (const batchBytes of cfg.diskBatches) {
      const spec = await driver.call({ cmd: "spec", table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.tableBytes });
      const getPath = ["bench", "disk", String(batchBytes)];
      const loads = {};
      for (const s of servers) loads[s.name] = await driver.call({ cmd: "load", uri: s.uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.tableBytes, path: getPath });
      for (let rep = -1; rep < cfg.runs; rep++) {
        for (const s of rotate(servers, rep + 1)) {
          const r = await driver.call({ cmd: "doget", uri: s.uri, ticket: loads[s.name].ticket, rows: spec.rows, times: 1 });
          if (rep >= 0) record("doget", batchBytes, s.name, spec.ipc_bytes / MiB / r.seconds);
        }
        const prefix = ["bench", "diskput", String(batchBytes), String(rep + 1)];
        for (const s of rotate(servers, rep + 1)) {
          const r = await driver.call({ cmd: "doput", uri: s.uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.tableBytes, path_prefix: prefix, times: 1 });
          if (rep >= 0) record("doput", batchBytes, s.name, spec.ipc_bytes / MiB / r.seconds);
          await driver.call({ cmd: "delete", uri: s.uri, paths: [[...prefix, "0"]] });
        }
      }
      for (const s of servers) await driver.call({ cmd: "delete", uri: s.uri, paths: [getPath] });
      for (const op of ["doget", "doput"]) {
        log(`disk ${op} fixed ${fmtSize(batchBytes)}: ` + rows.filter((r) => r.op === op && r.batchBytes === batchBytes).map((r) => `${r.server} ${summarize(r.values).median.toFixed(0)}`).join(", ") + " MiB/s");
      }
    }
    // A flight larger than memory should need: the server's RSS while one DoGet streams it from disk.
    const big = servers.find((x) => x.name === "disk-never");
    const bigSpec = await driver.call({ cmd: "spec", table: "fixed", batch_bytes: 4 * MiB, table_bytes: cfg.diskBigBytes });
    await driver.call({ cmd: "doput", uri: big.uri, table: "fixed", batch_bytes: 4 * MiB, table_bytes: cfg.diskBigBytes, path_prefix: ["bench", "disk-big"], times: 1 });
    const bigTicket = (await driver.call({ cmd: "ticket", uri: big.uri, path: ["bench", "disk-big", "0"] })).ticket;
    await sleep(500);
    const rssBefore = readRss(big.pid);
    let peak = rssBefore;
    const timer = setInterval(() => {
      const r = readRss(big.pid);
      if (r > peak) peak = r;
    }, 20);
    let r;
    try {
      r = await driver.call({ cmd: "doget", uri: big.uri, ticket: bigTicket, rows: bigSpec.rows, times: 1 });
    } finally {
      clearInterval(timer);
    }
    results.diskBig = { flightBytes: bigSpec.ipc_bytes, rssBefore, rssPeak: peak, growth: peak - rssBefore, mibps: bigSpec.ipc_bytes / MiB / r.seconds };
    log(`disk: DoGet of a ${(bigSpec.ipc_bytes / MiB).toFixed(0)} MiB flight from disk: RSS +${((peak - rssBefore) / MiB).toFixed(0)} MiB at peak, ${results.diskBig.mibps.toFixed(0)} MiB/s`);
  } finally {
    await Promise.all(servers.map((s) => s.proc.stop()));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
  results.disk = rows.map((r) => ({ ...r, ...summarize(r.values) }));
}

// ------------------------------------------------------------------ cluster

/** Starts a redis-server on a free port for the cluster part; resolves with its URL and a stop(). */
async function startRedisForBench() {
  const port = await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-redis-"));
  const child = require("node:child_process").spawn("/usr/bin/redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, "127.0.0.1", () => {
        sock.end();
        resolve(true);
      });
      sock.on("error", () => resolve(false));
    });
    if (ok) break;
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGKILL");
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Distributed mode (issue 11): three nodes on one machine sharing a redis-server. DoPut to one
 * node with R = 1 and R = 2 (against a single node without cluster), DoGet from a holder and
 * proxied through a node that does not hold the flight, the aggregate of three pyarrow clients
 * reading through the three nodes at once, and GetFlightInfo latency on a node that does not
 * hold the flight. On this 2-core machine the nodes, Redis and the clients share the cores.
 */
async function clusterCase(ctx) {
  const { cfg, driver, results } = ctx;
  const flight = require(path.join(snapshotEnv.BENCH_FLIGHT_DIST ?? path.join(ROOT, "packages/flight/dist"), "index.js"));
  const clusterPackage = require(path.join(snapshotEnv.BENCH_CLUSTER_DIST ?? path.join(ROOT, "packages/cluster/dist"), "index.js"));
  if (typeof clusterPackage.cluster !== "function" || !fs.existsSync("/usr/bin/redis-server")) {
    log("cluster: this build has no cluster() or redis-server is missing; part skipped");
    return;
  }
  const batchBytes = 1 * MiB;
  const spec = await driver.call({ cmd: "spec", table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.clusterBytes });
  const out = { tableBytes: spec.ipc_bytes, batchBytes, runs: cfg.runs, put: {}, get: {} };
  const mibps = (seconds) => spec.ipc_bytes / MiB / seconds;
  const putRuns = async (uri, label) => {
    const values = [];
    for (let rep = -1; rep < cfg.runs; rep++) {
      const prefix = ["bench", "cluster-put", label, String(rep + 1)];
      const r = await driver.call({ cmd: "doput", uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.clusterBytes, path_prefix: prefix, times: 1 });
      if (rep >= 0) values.push(mibps(r.seconds));
      await driver.call({ cmd: "delete", uri, paths: [[...prefix, "0"]] });
    }
    out.put[label] = summarize(values);
    log(`cluster: DoPut ${(spec.ipc_bytes / MiB).toFixed(1)} MiB to one node, ${label}: ${out.put[label].median.toFixed(0)} MiB/s`);
  };

  // GetFlightInfo latency: 50 warm-up calls, then 500 timed ones; p50 and p99 in ms.
  const infoLatency = async (uri, getPath) => {
    const c = new flight.FlightClient(uri);
    const d = { type: 1, path: getPath, cmd: new Uint8Array(0) };
    const lat = [];
    try {
      for (let i = 0; i < 50; i++) await c.getFlightInfo(d);
      for (let i = 0; i < 500; i++) {
        const t0 = performance.now();
        await c.getFlightInfo(d);
        lat.push(performance.now() - t0);
      }
    } finally {
      c.close();
    }
    lat.sort((a, b) => a - b);
    return { p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)], calls: lat.length };
  };

  const single = await startBlackIce("single");
  try {
    await putRuns(single.uri, "single node");
    await driver.call({ cmd: "load", uri: single.uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.clusterBytes, path: ["bench", "cluster-get"] });
    out.getFlightInfoSingleMs = await infoLatency(single.uri, ["bench", "cluster-get"]);
    log(`cluster: GetFlightInfo on a single node (no cluster), for reference: p50 ${out.getFlightInfoSingleMs.p50.toFixed(2)} ms, p99 ${out.getFlightInfoSingleMs.p99.toFixed(2)} ms`);
  } finally {
    await single.proc.stop();
  }

  for (const replicas of [1, 2]) {
    const redis = await startRedisForBench();
    const nodes = [];
    const drivers = [];
    try {
      for (const id of ["b1", "b2", "b3"]) nodes.push(await startBlackIce(`node-${id}`, ["--cluster", redis.url, "--node-id", id, "--replicas", String(replicas)]));
      await sleep(1500); // three heartbeats: every node sees the others
      await putRuns(nodes[0].uri, `cluster R=${replicas}`);
      if (replicas === 1) continue;

      // One stored flight; which nodes hold it.
      const getPath = ["bench", "cluster-get"];
      const load = await driver.call({ cmd: "load", uri: nodes[0].uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.clusterBytes, path: getPath });
      const client = new flight.FlightClient(nodes[0].uri);
      const info = await client.getFlightInfo({ type: 1, path: getPath, cmd: new Uint8Array(0) });
      const holders = info.endpoint[0].location.map((l) => l.uri);
      const holder = nodes.find((n) => holders.includes(n.uri));
      const other = nodes.find((n) => !holders.includes(n.uri));
      client.close();
      for (const [label, node] of [["from a holder", holder], ["proxied by a non-holder", other]]) {
        const values = [];
        for (let rep = -1; rep < cfg.runs; rep++) {
          const r = await driver.call({ cmd: "doget", uri: node.uri, ticket: load.ticket, rows: spec.rows, times: 1 });
          if (rep >= 0) values.push(mibps(r.seconds));
        }
        out.get[label] = summarize(values);
        log(`cluster: DoGet ${(spec.ipc_bytes / MiB).toFixed(1)} MiB ${label}: ${out.get[label].median.toFixed(0)} MiB/s`);
      }

      // Aggregate: three pyarrow clients (three driver processes), one per node, at once.
      drivers.push(driver, startDriver(), startDriver());
      const aggregate = [];
      for (let rep = -1; rep < cfg.runs; rep++) {
        const t0 = performance.now();
        await Promise.all(nodes.map((n, i) => drivers[i].call({ cmd: "doget", uri: n.uri, ticket: load.ticket, rows: spec.rows, times: 2 })));
        if (rep >= 0) aggregate.push((3 * 2 * spec.ipc_bytes) / MiB / ((performance.now() - t0) / 1000));
      }
      out.aggregateGet = summarize(aggregate);
      log(`cluster: aggregate DoGet, 3 clients on 3 nodes: ${out.aggregateGet.median.toFixed(0)} MiB/s`);
      const aggregatePut = [];
      for (let rep = -1; rep < cfg.runs; rep++) {
        const t0 = performance.now();
        await Promise.all(nodes.map((n, i) => drivers[i].call({ cmd: "doput", uri: n.uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.clusterBytes, path_prefix: ["bench", "cluster-agg", String(rep + 1), String(i)], times: 1 })));
        if (rep >= 0) aggregatePut.push((3 * spec.ipc_bytes) / MiB / ((performance.now() - t0) / 1000));
      }
      out.aggregatePut = summarize(aggregatePut);
      log(`cluster: aggregate DoPut (R=2), 3 clients on 3 nodes: ${out.aggregatePut.median.toFixed(0)} MiB/s`);

      // GetFlightInfo on a node that does not hold the flight (one catalog round trip to Redis).
      out.getFlightInfoMs = await infoLatency(other.uri, getPath);
      log(`cluster: GetFlightInfo on a non-holder: p50 ${out.getFlightInfoMs.p50.toFixed(2)} ms, p99 ${out.getFlightInfoMs.p99.toFixed(2)} ms`);
    } finally {
      for (const d of drivers.slice(1)) await d.stop();
      await Promise.all(nodes.map((n) => n.proc.stop()));
      await redis.stop();
    }
  }
  results.cluster = out;
}

// ------------------------------------------------------------------ scale

async function scaleCase(ctx) {
  const { cfg, driver, results } = ctx;
  const n = cfg.scaleFlights;
  const ttlS = 2;
  // Background GC is held off (1 h) until phase B turns it on.
  const s = await startBlackIce("blackice-scale", ["--lag-monitor", "--gc-interval", "3600000"]);
  const action = async (type, body = "") => (await driver.call({ cmd: "action", uri: s.uri, type, body }))[0];
  const stats = async () => JSON.parse(await action("stats"));
  const out = { flights: n, ttlSeconds: ttlS };
  try {
    // ListFlights over n live flights.
    const put0 = await driver.call({ cmd: "put_many", uri: s.uri, count: n, prefix: ["scale", "list"], threads: 8 });
    out.putsPerSecond = n / put0.seconds;
    log(`scale: ${n} flights put in ${put0.seconds.toFixed(1)} s`);
    const lists = [];
    for (let i = 0; i < cfg.listRuns; i++) {
      const r = await driver.call({ cmd: "list", uri: s.uri });
      if (r.count !== n) throw new Error(`ListFlights returned ${r.count} flights, expected ${n}`);
      lists.push(r.seconds);
    }
    out.listSeconds = summarize(lists);
    log(`scale: ListFlights of ${n} flights: ${out.listSeconds.median.toFixed(3)} s`);
    const paths = Array.from({ length: n }, (_, i) => ["scale", "list", String(i)]);
    for (let i = 0; i < n; i += 10_000) {
      await action("delete", JSON.stringify({ flights: paths.slice(i, i + 10_000).map((p) => ({ path: p })) }));
    }

    // Phase A: all n expired, the `gc` action collects them.
    const putA = await driver.call({ cmd: "put_many", uri: s.uri, count: n, prefix: ["scale", "a"], ttl: `${ttlS}s`, threads: 8 });
    await sleep(Math.max(0, putA.last_put_at * 1000 + ttlS * 1000 + 300 - Date.now()));
    await action("bench.lag", "reset");
    const gcReport = JSON.parse(await action("gc"));
    await sleep(300); // include what the removal leaves to V8's collector
    const lagA = JSON.parse(await action("bench.lag", "read"));
    out.gcAction = { ...gcReport, lag: lagA };
    log(`scale: gc action removed ${gcReport.flightsRemoved} in ${gcReport.durationMs.toFixed(1)} ms; lag p99 ${lagA.p99Ms.toFixed(1)} ms max ${lagA.maxMs.toFixed(1)} ms`);
    if (gcReport.flightsRemoved !== n) throw new Error(`gc removed ${gcReport.flightsRemoved} flights, expected ${n}`);

    // Phase B: all n expired, background GC (sliced) collects them.
    const putB = await driver.call({ cmd: "put_many", uri: s.uri, count: n, prefix: ["scale", "b"], ttl: `${ttlS}s`, threads: 8 });
    await sleep(Math.max(0, putB.last_put_at * 1000 + ttlS * 1000 + 300 - Date.now()));
    const before = await stats();
    await action("bench.lag", "reset");
    const t0 = performance.now();
    await action("bench.gc-interval", "100");
    let st;
    for (;;) {
      st = await stats();
      if (st.flights === 0 || performance.now() - t0 > 60_000) break;
      await sleep(20);
    }
    const bgMs = performance.now() - t0;
    await sleep(300);
    const lagB = JSON.parse(await action("bench.lag", "read"));
    await action("bench.gc-interval", "3600000");
    out.background = {
      flightsRemoved: st.gc.flightsRemoved - before.gc.flightsRemoved,
      wallMsUntilEmpty: bgMs,
      intervalMs: 100,
      lag: lagB,
    };
    log(`scale: background GC emptied the store in ${bgMs.toFixed(0)} ms (incl. up to 100 ms interval); lag p99 ${lagB.p99Ms.toFixed(1)} ms max ${lagB.maxMs.toFixed(1)} ms`);
  } finally {
    await s.proc.stop();
  }
  // The same ListFlights against pyarrow's server (b): what the pyarrow client and a C++
  // server reach, for scale.
  const py = await startPyarrow("pyarrow-scale");
  try {
    await driver.call({ cmd: "put_many", uri: py.uri, count: n, prefix: ["scale", "list"], threads: 8 });
    const lists = [];
    for (let i = 0; i < cfg.listRuns; i++) {
      const r = await driver.call({ cmd: "list", uri: py.uri });
      if (r.count !== n) throw new Error(`pyarrow's ListFlights returned ${r.count} flights, expected ${n}`);
      lists.push(r.seconds);
    }
    out.pyarrowListSeconds = summarize(lists);
    log(`scale: ListFlights of ${n} flights on pyarrow's server: ${out.pyarrowListSeconds.median.toFixed(3)} s`);
  } finally {
    await py.proc.stop();
  }
  results.scale = out;
}

// ------------------------------------------------------------------ browser paths

/**
 * Reads one response to the end and counts its body bytes: the same Node client work for each
 * path, nothing decoded, so the figures compare what the server does per path.
 */
function readAll(stream) {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    stream.on("data", (c) => (bytes += c.byteLength));
    stream.on("end", () => resolve(bytes));
    stream.on("error", reject);
  });
}

/**
 * The browser paths against native gRPC, one DoGet of the same stored table each: the Arrow
 * stream over plain HTTP (HTTP/1.1 and HTTP/2), gRPC-Web DoGet (HTTP/1.1), and native gRPC
 * DoGet (HTTP/2), all read by Node clients in this process; and pyarrow's native DoGet as the
 * reference client.
 */
async function browserCase(ctx) {
  const { cfg, driver, results } = ctx;
  const http = require("node:http");
  const http2 = require("node:http2");
  const server = await startBlackIce("blackice-browser");
  const batchBytes = 1 * MiB;
  try {
    const spec = await driver.call({ cmd: "spec", table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.tableBytes });
    const load = await driver.call({ cmd: "load", uri: server.uri, table: "fixed", batch_bytes: batchBytes, table_bytes: cfg.tableBytes, path: ["bench", "browser"] });
    const ticket = Buffer.from(load.ticket, "base64");
    const port = server.port;
    // Ticket { ticket = 1 } with a one- or two-byte length, framed as gRPC (5-byte prefix).
    const ticketMsg = Buffer.concat([Buffer.from([0x0a]), ticket.length < 128 ? Buffer.from([ticket.length]) : Buffer.from([(ticket.length & 0x7f) | 0x80, ticket.length >> 7]), ticket]);
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), ticketMsg]);
    framed.writeUInt32BE(ticketMsg.length, 1);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // The same 16 MiB windows the server uses: Node's 64 KiB default would measure the client.
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 16 * MiB } });
    session.on("connect", () => session.setLocalWindowSize(16 * MiB));
    const h1 = (options, body) =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, agent, ...options }, (res) => (res.statusCode === 200 ? readAll(res).then(resolve, reject) : reject(new Error(`HTTP ${res.statusCode}`))));
        req.on("error", reject);
        req.end(body);
      });
    const h2 = (headers, body) => {
      const req = session.request(headers);
      req.end(body);
      return readAll(req);
    };
    const paths = {
      "http-arrow-h1": () => h1({ path: "/flight/bench/browser" }),
      "http-arrow-h2": () => h2({ ":method": "GET", ":path": "/flight/bench/browser" }),
      "grpc-web-h1": () => h1({ method: "POST", path: "/arrow.flight.protocol.FlightService/DoGet", headers: { "content-type": "application/grpc-web+proto" } }, framed),
      "grpc-native-node": () => h2({ ":method": "POST", ":path": "/arrow.flight.protocol.FlightService/DoGet", "content-type": "application/grpc", te: "trailers" }, framed),
      "grpc-native-pyarrow": async () => {
        const r = await driver.call({ cmd: "doget", uri: server.uri, ticket: load.ticket, rows: spec.rows, times: 1 });
        return { seconds: r.seconds };
      },
    };
    const rows = Object.keys(paths).map((name) => ({ path: name, values: [], bytes: 0 }));
    for (let rep = -1; rep < cfg.runs; rep++) {
      for (const row of rotate(rows, rep + 1)) {
        const t0 = process.hrtime.bigint();
        const got = await paths[row.path]();
        const seconds = typeof got === "object" ? got.seconds : Number(process.hrtime.bigint() - t0) / 1e9;
        if (typeof got === "number") row.bytes = got;
        if (rep >= 0) row.values.push(spec.ipc_bytes / MiB / seconds);
      }
    }
    session.close();
    agent.destroy();
    const native = summarize(rows.find((r) => r.path === "grpc-native-node").values).median;
    results.browser = {
      tableBytes: spec.ipc_bytes,
      batchBytes,
      rows: rows.map((r) => ({ path: r.path, responseBytes: r.bytes || undefined, mibps: summarize(r.values), vsNativeNode: summarize(r.values).median / native })),
    };
    log(`browser DoGet of ${(spec.ipc_bytes / MiB).toFixed(1)} MiB (1 MiB batches, MiB/s of the IPC stream, median of ${cfg.runs}): ` + results.browser.rows.map((r) => `${r.path} ${r.mibps.median.toFixed(0)} (${r.vsNativeNode.toFixed(2)}x)`).join(", "));
  } finally {
    await server.proc.stop();
  }
}

// ------------------------------------------------------------------ main

/** Runs one part, noting its duration and the machine's load average before and after. */
// ------------------------------------------------------------------ batching writer

/**
 * Events per second through FlightClient's batching writer (issue 16) into a BlackIce server,
 * at 1, 100 and 10 000 rows per append, batches cut at 10 000 rows; the server stores them.
 */
async function writerCase({ cfg, results }) {
  if (!tsClientAvailable()) throw new Error("the writer part needs packages/flight/dist (npm run build)");
  const server = await startBlackIce("writer-server");
  const ts = startTsDriver();
  results.writer = [];
  try {
    for (const per of [1, 100, 10_000]) {
      const rows = cfg.writerRows;
      const runs = [];
      for (let r = 0; r < cfg.smallRuns; r++) {
        const out = await ts.call({ cmd: "writer", uri: server.uri, rows, per, max_rows: 10_000, path: ["writer", String(r)] }, 600_000);
        runs.push(rows / out.seconds);
      }
      const row = { per, rows, eventsPerSecond: summarize(runs) };
      results.writer.push(row);
      log(`writer  ${String(per).padStart(6)} rows/append  ${Math.round(row.eventsPerSecond.median)} events/s`);
    }
  } finally {
    await ts.stop();
    await server.proc.stop();
  }
}

// ------------------------------------------------------------------ projection

/**
 * DoGet of a projection (query(), docs/query.md) against a full DoGet of the same stored
 * telemetry table, with pyarrow's client: the server rewrites each batch header and serves
 * views of the stored buffers. Runs alternate full and projected reads.
 */
async function projectionCase({ cfg, driver, results }) {
  const server = await startBlackIce("projection-server", ["--query"]);
  results.projection = [];
  const table = "telemetry";
  const batchBytes = 1 * MiB;
  const p = ["projection", "telemetry"];
  try {
    const load = await driver.call({ cmd: "load", uri: server.uri, table, batch_bytes: batchBytes, table_bytes: cfg.tableBytes, path: p });
    for (const columns of [["ts", "cpu"], ["host", "cpu"], ["cpu"]]) {
      const q = await driver.call({ cmd: "query_ticket", uri: server.uri, path: p, columns, table, batch_bytes: batchBytes });
      const full = [];
      const projected = [];
      for (let r = 0; r < cfg.runs; r++) {
        full.push((await driver.call({ cmd: "doget", uri: server.uri, ticket: load.ticket, rows: load.rows, times: cfg.getsPerRun })).seconds / cfg.getsPerRun);
        projected.push((await driver.call({ cmd: "doget", uri: server.uri, ticket: q.ticket, rows: load.rows, times: cfg.getsPerRun })).seconds / cfg.getsPerRun);
      }
      const row = {
        table,
        batchBytes,
        rows: load.rows,
        ipcBytes: load.ipc_bytes,
        columns,
        selectedFraction: q.fraction,
        fullSeconds: summarize(full),
        projectedSeconds: summarize(projected),
      };
      results.projection.push(row);
      const mrows = (s) => (row.rows / s / 1e6).toFixed(1);
      log(`projection ${columns.join(",").padEnd(9)} (${(q.fraction * 100).toFixed(0)} % of the data)  full ${mrows(row.fullSeconds.median)} Mrows/s  projected ${mrows(row.projectedSeconds.median)} Mrows/s`);
    }
    await driver.call({ cmd: "delete", uri: server.uri, paths: [p] });
  } finally {
    await server.proc.stop();
  }
}

// ------------------------------------------------------------------ pruning

/**
 * Batch pruning (docs/query.md): a time-range `where` query on a flight of many batches whose
 * ts increases batch by batch, with pyarrow's client, from GetFlightInfo to the last row.
 * "pruned" writes the range on `ts` (pruning skips the batches out of range); "not pruned"
 * writes the same range on `CAST(ts AS TIMESTAMP)`, which pruning does not use, so the engine
 * loads every batch. Same rows; runs alternate.
 */
async function pruningCase({ cfg, driver, results }) {
  const server = await startBlackIce("pruning-server", ["--query"]);
  results.pruning = [];
  const batchBytes = 1 * MiB;
  const batches = Math.max(8, Math.round(cfg.pruningBytes / batchBytes));
  const p = ["pruning", "telemetry"];
  try {
    const load = await driver.call({ cmd: "load_series", uri: server.uri, path: p, batch_bytes: batchBytes, batches });
    const at = (us) => new Date(Number(BigInt(load.base_us) + BigInt(us)) / 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
    // Two batches' worth of time, starting in the middle of the flight.
    const from = at(Math.floor(batches / 2) * load.us_per_batch);
    const to = at((Math.floor(batches / 2) + 2) * load.us_per_batch);
    const strptime = (t) => `STRPTIME('${t}+0000', '%Y-%m-%d %H:%M:%S%z')`;
    const cases = {
      pruned: `ts >= ${strptime(from)} AND ts < ${strptime(to)}`,
      notPruned: `CAST(ts AS TIMESTAMP) >= '${from}' AND CAST(ts AS TIMESTAMP) < '${to}'`,
    };
    const seconds = { pruned: [], notPruned: [] };
    const seen = {};
    // Warm-up: the unpruned query starts the engine's processes. The first pruned query then
    // also computes the flight's batch statistics (MemoryStore computes them when first asked,
    // not at put): timed on its own.
    seen.notPruned = await driver.call({ cmd: "engine_query", uri: server.uri, path: p, where: cases.notPruned, times: 1 }, 600_000);
    const first = await driver.call({ cmd: "engine_query", uri: server.uri, path: p, where: cases.pruned, times: 1 }, 600_000);
    for (let r = 0; r < cfg.runs; r++) {
      for (const [name, where] of Object.entries(cases)) {
        const q = await driver.call({ cmd: "engine_query", uri: server.uri, path: p, where, times: 1 }, 600_000);
        if (r >= 0) seconds[name].push(q.seconds);
        seen[name] = q;
      }
    }
    if (seen.pruned.rows !== seen.notPruned.rows) throw new Error(`pruning bench: ${seen.pruned.rows} rows pruned, ${seen.notPruned.rows} not pruned`);
    const row = {
      batches,
      batchBytes,
      rows: seen.pruned.rows,
      firstPruned: { seconds: first.seconds, read: first.read, skipped: first.skipped },
      pruned: { ...summarize(seconds.pruned), read: seen.pruned.read, skipped: seen.pruned.skipped },
      notPruned: { ...summarize(seconds.notPruned), read: seen.notPruned.read, skipped: seen.notPruned.skipped },
    };
    results.pruning.push(row);
    log(
      `pruning: ${batches} batches of 1 MiB, ${row.rows} rows match; first pruned query (computes the statistics) ${(first.seconds * 1000).toFixed(0)} ms (read ${first.read}, skipped ${first.skipped}); ` +
        `pruned ${(row.pruned.median * 1000).toFixed(0)} ms (read ${row.pruned.read}, skipped ${row.pruned.skipped}), ` +
        `not pruned ${(row.notPruned.median * 1000).toFixed(0)} ms (read ${row.notPruned.read}, skipped ${row.notPruned.skipped})`,
    );
    await driver.call({ cmd: "delete", uri: server.uri, paths: [p] });
  } finally {
    await server.proc.stop();
  }
}

// ------------------------------------------------------------------ query

/**
 * Statements on the embedded engine (query(), docs/query.md) through the server, with
 * pyarrow's client (GetFlightInfo + DoGet, timed together), against DuckDB in the driver
 * process over the same pyarrow table: a time-range filter and an aggregate by host.
 * Runs alternate server and DuckDB.
 */
async function queryCase({ cfg, driver, results }) {
  const server = await startBlackIce("query-server", ["--query"]);
  results.query = [];
  const table = "telemetry";
  const batchBytes = 1 * MiB;
  const tableBytes = cfg.queryRows * 48; // tables.py: 48 bytes per telemetry row
  const p = ["bench", "telemetry"];
  // ts runs from 2026-01-01 00:00:00 UTC by 1 ms within each 21 845-row batch (tables.py).
  const from = "2026-01-01 00:00:02";
  const to = "2026-01-01 00:00:04";
  const statements = [
    {
      name: "time-range filter",
      ours: `SELECT ts, host, cpu FROM "bench/telemetry" WHERE ts >= strptime('${from}+0000', '%Y-%m-%d %H:%M:%S%z') AND ts < strptime('${to}+0000', '%Y-%m-%d %H:%M:%S%z')`,
      duck: `SELECT ts, host, cpu FROM t WHERE ts >= TIMESTAMPTZ '${from}+00' AND ts < TIMESTAMPTZ '${to}+00'`,
    },
    {
      name: "aggregate by host",
      ours: 'SELECT host, count(*) AS n, avg(cpu) AS cpu, max(mem) AS mem FROM "bench/telemetry" GROUP BY host',
      duck: "SELECT host, count(*) AS n, avg(cpu) AS cpu, max(mem) AS mem FROM t GROUP BY host",
    },
  ];
  try {
    const load = await driver.call({ cmd: "load", uri: server.uri, table, batch_bytes: batchBytes, table_bytes: tableBytes, path: p }, 600_000);
    log(`query: ${load.rows} rows stored (${(load.ipc_bytes / MiB).toFixed(0)} MiB of IPC)`);
    for (const st of statements) {
      const ours = [];
      const duck = [];
      let rows;
      let threads;
      for (let r = 0; r < cfg.smallRuns; r++) {
        const a = await driver.call({ cmd: "sql", uri: server.uri, sql: st.ours }, 600_000);
        const b = await driver.call({ cmd: "duckdb", table, batch_bytes: batchBytes, table_bytes: tableBytes, sql: st.duck }, 600_000);
        if (a.rows !== b.rows) throw new Error(`query ${st.name}: the server returned ${a.rows} rows, DuckDB ${b.rows}`);
        rows = a.rows;
        threads = b.threads;
        ours.push(a.seconds);
        duck.push(b.seconds);
      }
      const row = { name: st.name, rows: load.rows, ipcBytes: load.ipc_bytes, resultRows: rows, duckdbThreads: threads, serverSeconds: summarize(ours), duckdbSeconds: summarize(duck) };
      results.query.push(row);
      log(`query ${st.name.padEnd(18)} ${rows} result rows  server ${row.serverSeconds.median.toFixed(3)} s  DuckDB ${row.duckdbSeconds.median.toFixed(3)} s (median of ${cfg.smallRuns})`);
    }
    await driver.call({ cmd: "delete", uri: server.uri, paths: [p] });
  } finally {
    await server.proc.stop();
  }
}

async function part(results, name, fn) {
  const t0 = Date.now();
  const before = loadAvg();
  await fn();
  results.meta.parts[name] = { seconds: (Date.now() - t0) / 1000, loadBefore: before, loadAfter: loadAvg() };
}

function gitCommit() {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function writeReport(results, args, mode) {
  const evaluation = report.evaluate(results);
  process.stdout.write(report.textTable(results, evaluation) + "\n");
  const docsDir = args.docs ? path.join(ROOT, "docs") : args.out;
  const mdName = args.docs ? "benchmarks.md" : `benchmarks-${mode}.md`;
  const svgName = args.docs ? "benchmarks.svg" : `benchmarks-${mode}.svg`;
  fs.mkdirSync(docsDir, { recursive: true });
  fs.writeFileSync(path.join(docsDir, svgName), report.svg(results));
  fs.writeFileSync(path.join(docsDir, mdName), report.markdown(results, evaluation, svgName));
  log(`wrote ${path.relative(ROOT, path.join(docsDir, mdName))} and ${svgName}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.report) {
    const results = JSON.parse(fs.readFileSync(args.report, "utf8"));
    const mode = results.meta.mode;
    // Docs only from a full run, unless --no-docs.
    writeReport(results, { ...args, docs: mode === "full" && !process.argv.includes("--no-docs") }, mode);
    return;
  }
  const mode = args.quick ? "quick" : "full";
  const cfg = { ...MODES[mode], ...(args.runs ? { runs: args.runs, smallRuns: args.runs } : {}) };
  const started = Date.now();
  const results = {
    meta: {
      mode,
      date: new Date().toISOString(),
      commit: gitCommit(),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? "unknown",
      cpus: os.cpus().length,
      memGiB: Math.round(os.totalmem() / GiB),
      config: cfg,
      only: [...args.only],
      parts: {},
    },
    specs: {},
    throughput: [],
    small: [],
    memory: [],
    scale: undefined,
  };
  snapshotPackages(results.meta);
  if (results.meta.packagesDirty) log("note: packages/*/src has uncommitted changes; the run uses what is built in dist");
  try {
    const driver = startDriver();
    results.meta.pyarrow = (await driver.call({ cmd: "version" })).pyarrow;
    const needServers = ["doget", "concurrent", "doput", "small"].some((p) => args.only.has(p));
    if (needServers) {
      log(`starting servers (${mode} mode)`);
      const servers = await Promise.all([
        startBlackIce("blackice"),
        startPyarrow("pyarrow"),
        startRawGrpc("grpc"),
      ]);
      const tcp = await startTcpSource("tcp");
      let ts;
      if (tsClientAvailable()) {
        ts = startTsDriver();
        try {
          results.meta.tsClient = (await ts.call({ cmd: "hello" }, 30_000)).from;
        } catch (err) {
          log(`the TypeScript FlightClient failed to start, its rows are skipped: ${err.message}`);
          await ts.stop();
          ts = undefined;
          results.meta.tsClient = false;
        }
      } else {
        results.meta.tsClient = false;
        log("the TypeScript FlightClient is not in packages/flight/dist yet: its rows are skipped");
      }
      const ctx = { cfg, args, driver, servers, tcp, ts, results };
      if (["doget", "concurrent", "doput"].some((p) => args.only.has(p))) await part(results, "throughput", () => throughputCases(ctx));
      if (args.only.has("small")) await part(results, "small", () => smallCalls(ctx));
      await Promise.all([...servers.map((s) => s.proc.stop()), tcp.proc.stop(), ts?.stop()]);
    }
    if (args.only.has("memory")) {
      await part(results, "memory", () => memoryCase({ cfg, driver, results }));
      await part(results, "flood", () => floodCase({ cfg, driver, results }));
      await part(results, "tiny", () => tinyFlightsCase({ cfg, driver, results }));
    }
    if (args.only.has("scale")) await part(results, "scale", () => scaleCase({ cfg, driver, results }));
    if (args.only.has("disk")) await part(results, "disk", () => diskCase({ cfg, driver, results }));
    if (args.only.has("writer")) await part(results, "writer", () => writerCase({ cfg, results }));
    if (args.only.has("projection")) await part(results, "projection", () => projectionCase({ cfg, driver, results }));
    if (args.only.has("pruning")) await part(results, "pruning", () => pruningCase({ cfg, driver, results }));
    if (args.only.has("query")) await part(results, "query", () => queryCase({ cfg, driver, results }));
    if (args.only.has("browser")) await part(results, "browser", () => browserCase({ cfg, driver, results }));
    if (args.only.has("cluster")) await part(results, "cluster", () => clusterCase({ cfg, driver, results }));
    await driver.stop();
  } finally {
    await procs.stopAll();
  }
  results.meta.seconds = (Date.now() - started) / 1000;

  fs.mkdirSync(args.out, { recursive: true });
  fs.writeFileSync(path.join(args.out, `results-${mode}.json`), JSON.stringify(results, null, 1));
  writeReport(results, args, mode);
  log(`done in ${results.meta.seconds.toFixed(0)} s`);
}

main().catch((err) => {
  procs.killAllSync();
  process.stderr.write(`bench failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

