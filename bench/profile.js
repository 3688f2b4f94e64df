#!/usr/bin/env node
// Profiles one server under one load with `node --cpu-prof`, then prints where its time went.
//
//   node bench/profile.js [--server=blackice|grpc] [--op=doget|doput|ping|getflightinfo|list]
//        [--table=fixed|telemetry] [--batch=1MiB] [--mib=1024] [--seconds=5] [--flights=20000]
//        [--top=30] [--node-arg=--some-v8-flag] [--server-arg=--data-dir=/tmp/x]
//
// The profile is written to bench/out/prof/<server>-<op>-<table>-<batch>.cpuprofile (open it in
// Chrome DevTools or speedscope); the summary groups self time by function and by file.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const procs = require("./lib/procs");
const { summarize: summarizeProfile } = require("./lib/profile-summary");

const ROOT = path.resolve(__dirname, "..");
const PYTHON = process.env.BENCH_PYTHON || path.join(ROOT, ".venv/bin/python");
const MiB = 2 ** 20;

function parse(argv) {
  const o = { server: "blackice", op: "doget", table: "fixed", batch: "1MiB", mib: 1024, top: 30, seconds: 5, flights: 20000, nodeArgs: [], serverArgs: [] };
  for (const a of argv) {
    const [k, v] = a.replace(/^--/, "").split("=");
    if (k === "node-arg") o.nodeArgs.push(v);
    else if (k === "server-arg") o.serverArgs.push(...a.slice("--server-arg=".length).split("="));
    else if (k in o) o[k] = typeof o[k] === "number" ? Number(v) : v;
    else throw new Error(`unknown option ${a}`);
  }
  const m = /^(\d+)(KiB|MiB)$/.exec(o.batch);
  o.batchBytes = Number(m[1]) * (m[2] === "MiB" ? MiB : 1024);
  return o;
}

async function main() {
  const o = parse(process.argv.slice(2));
  const outDir = path.join(ROOT, "bench/out/prof");
  fs.mkdirSync(outDir, { recursive: true });
  const name = `${o.server}-${o.op}-${o.table}-${o.batch}`;
  const script = o.server === "blackice" ? "servers/blackice-server.js" : "servers/grpc-raw-server.js";
  const phaseOnly = o.op === "list";
  const before = new Set(fs.readdirSync(outDir));
  const server = await procs.startServer(o.server, process.execPath, [
    ...(phaseOnly ? [] : ["--cpu-prof", `--cpu-prof-dir=${outDir}`]),
    ...o.nodeArgs,
    path.join(__dirname, script),
    ...(phaseOnly ? ["--profile-actions"] : []),
    ...o.serverArgs,
  ]);
  const driver = procs.start("driver", PYTHON, [path.join(__dirname, "py/driver.py")], { cwd: path.join(__dirname, "py") });
  try {
    const tableBytes = 256 * MiB;
    const times = Math.max(1, Math.round(o.mib / 256));
    const t0 = Date.now();
    if (o.op === "doget") {
      const l = await driver.call({ cmd: "load", uri: server.uri, table: o.table, batch_bytes: o.batchBytes, table_bytes: tableBytes, path: ["p"] });
      const r = await driver.call({ cmd: "doget", uri: server.uri, ticket: l.ticket, rows: l.rows, times });
      console.log(`DoGet ${(l.ipc_bytes * times) / MiB / r.seconds | 0} MiB/s`);
    } else if (o.op === "doput") {
      const r = await driver.call({ cmd: "doput", uri: server.uri, table: o.table, batch_bytes: o.batchBytes, table_bytes: tableBytes, path_prefix: ["q"], times });
      const spec = await driver.call({ cmd: "spec", table: o.table, batch_bytes: o.batchBytes, table_bytes: tableBytes });
      console.log(`DoPut ${(spec.ipc_bytes * times) / MiB / r.seconds | 0} MiB/s`);
    } else if (o.op === "ping" || o.op === "getflightinfo") {
      // 32 callers: 4 processes x 8 threads, as in bench/run.js, for --seconds.
      await driver.call({ cmd: "load", uri: server.uri, table: "fixed", batch_bytes: 65536, table_bytes: 65536, path: ["small"] });
      const workers = Array.from({ length: 4 }, (_, i) =>
        procs.start(`w${i}`, PYTHON, [path.join(__dirname, "py/small_calls.py"), "8"], { cwd: path.join(__dirname, "py") }),
      );
      for (const w of workers) w.send({ servers: { s: { uri: server.uri, path: ["small"] } } });
      for (const w of workers) await w.nextJson(120_000);
      const phases = [{ server: "s", kind: o.op, offset: 0, duration: o.seconds }];
      for (const w of workers) w.send({ t0: Date.now() / 1000 + 0.2, phases });
      let count = 0;
      for (const w of workers) count += (await w.nextJson((o.seconds + 60) * 1000)).phases[0].count;
      console.log(`${o.op} x32: ${(count / o.seconds) | 0} ops/s`);
      await Promise.all(workers.map((w) => w.stop()));
    } else if (o.op === "list") {
      // Only the ListFlights is profiled (through the bench.profile.* actions), not the puts.
      const r0 = await driver.call({ cmd: "put_many", uri: server.uri, count: o.flights, prefix: ["scale"], threads: 8 });
      console.log(`put ${o.flights} flights in ${r0.seconds.toFixed(1)} s`);
      await driver.call({ cmd: "action", uri: server.uri, type: "bench.profile.start" });
      const r = await driver.call({ cmd: "list", uri: server.uri });
      await driver.call({ cmd: "action", uri: server.uri, type: "bench.profile.stop", body: path.join(outDir, "phase.cpuprofile") });
      console.log(`ListFlights of ${r.count}: ${r.seconds.toFixed(3)} s`);
    } else {
      throw new Error(`unknown op ${o.op}`);
    }
    console.log(`load ran ${(Date.now() - t0) / 1000} s`);
  } finally {
    await driver.stop();
    await server.proc.stop(10_000);
  }
  const fresh = phaseOnly ? ["phase.cpuprofile"] : fs.readdirSync(outDir).filter((f) => !before.has(f) && f.endsWith(".cpuprofile"));
  if (fresh.length === 0) throw new Error("no profile was written");
  const file = path.join(outDir, `${name}.cpuprofile`);
  fs.renameSync(path.join(outDir, fresh[0]), file);
  console.log(`profile: ${path.relative(ROOT, file)}\n`);
  console.log(summarizeProfile(file, o.top, ROOT));
}

main().catch((err) => {
  procs.killAllSync();
  console.error(err);
  process.exit(1);
});
