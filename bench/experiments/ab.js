#!/usr/bin/env node
// A/B of server variants under the same pyarrow client, interleaved run by run.
//
//   node bench/experiments/ab.js --op=doget|doput|list|ping|getflightinfo [--streams=4] --table=fixed --batches=64KiB,1MiB --runs=5 --mib=1024 \
//        --variant='base:' --variant='bigframes:--config=maxFrameBytes=1048576' [--variant='grpc:@raw']
//
// A variant is name:node-args for bench/servers/blackice-server.js; "@raw" is the raw grpc-js
// server and "@pyarrow" pyarrow's server. Node args may start with ENV=value settings
// (e.g. BENCH_FLIGHT_DIST=/tmp/patched/dist to load a patched build); --config=KEY=VALUE words
// set serverConfig fields of the BlackIce server.
"use strict";
const path = require("node:path");
const procs = require("../lib/procs");
const { summarize } = require("../lib/stats");

const ROOT = path.resolve(__dirname, "../..");
const PYTHON = process.env.BENCH_PYTHON || path.join(ROOT, ".venv/bin/python");
const MiB = 2 ** 20;
const size = (t) => {
  const m = /^(\d+)(KiB|MiB)$/.exec(t);
  return Number(m[1]) * (m[2] === "MiB" ? MiB : 1024);
};

async function main() {
  const o = { op: "doget", streams: 1, table: "fixed", batches: "1MiB", runs: 5, mib: 1024, flights: 20000, seconds: 2, callers: 32, variants: [] };
  for (const a of process.argv.slice(2)) {
    const i = a.indexOf("=");
    const k = a.slice(2, i);
    const v = a.slice(i + 1);
    if (k === "variant") o.variants.push(v);
    else o[k] = typeof o[k] === "number" ? Number(v) : v;
  }
  const servers = [];
  for (const v of o.variants) {
    const [name, ...rest] = v.split(":");
    const spec = rest.join(":").trim();
    let s;
    if (spec === "@raw") s = await procs.startServer(name, process.execPath, [path.join(ROOT, "bench/servers/grpc-raw-server.js")]);
    else if (spec === "@pyarrow") s = await procs.startServer(name, PYTHON, [path.join(ROOT, "bench/py/pyarrow_server.py")]);
    else {
      const words = spec.split(/\s+/).filter(Boolean);
      const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split(/=(.*)/s).slice(0, 2)));
      const nodeArgs = words.filter((w) => !/^[A-Z_]+=/.test(w) && !w.startsWith("--config="));
      if (env.BENCH_FLIGHT_DIST) env.NODE_PATH = path.join(ROOT, "node_modules");
      const serverArgs = words.filter((w) => w.startsWith("--config=")).flatMap((w) => ["--config", w.slice(9)]);
      if (o.op === "gc") serverArgs.push("--lag-monitor", "--gc-interval", "3600000");
      s = await procs.startServer(name, process.execPath, [...nodeArgs, path.join(ROOT, "bench/servers/blackice-server.js"), ...serverArgs], { cwd: ROOT, env, echoStderr: true });
    }
    servers.push({ ...s, name });
  }
  const driver = procs.start("driver", PYTHON, [path.join(ROOT, "bench/py/driver.py")], { cwd: path.join(ROOT, "bench/py") });
  try {
    if (o.op === "list") {
      const vals = new Map(servers.map((s) => [s.name, []]));
      for (const s of servers) await driver.call({ cmd: "put_many", uri: s.uri, count: o.flights, prefix: ["f"], threads: 8 });
      for (let rep = -1; rep < o.runs; rep++) {
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(k + rep + 1) % servers.length];
          const r = await driver.call({ cmd: "list", uri: s.uri });
          if (rep >= 0) vals.get(s.name).push(r.seconds);
        }
      }
      console.log(`ListFlights of ${o.flights}: ` + [...vals].map(([n, v]) => `${n} ${summarize(v).median.toFixed(3)} s`).join("  "));
      return;
    }
    if (o.op === "gc") {
      // n flights with a 2 s TTL, all expired, then the gc action; event-loop lag from the
      // servers' --lag-monitor (add it to the variants).
      for (const s of servers) {
        const p = await driver.call({ cmd: "put_many", uri: s.uri, count: o.flights, prefix: ["g"], ttl: "2s", threads: 8 });
        await new Promise((r) => setTimeout(r, Math.max(0, p.last_put_at * 1000 + 2300 - Date.now())));
        await driver.call({ cmd: "action", uri: s.uri, type: "bench.lag", body: "reset" });
        const gc = JSON.parse((await driver.call({ cmd: "action", uri: s.uri, type: "gc" }))[0]);
        await new Promise((r) => setTimeout(r, 300));
        const lag = JSON.parse((await driver.call({ cmd: "action", uri: s.uri, type: "bench.lag", body: "read" }))[0]);
        console.log(`gc ${s.name}: ${gc.flightsRemoved} removed in ${gc.durationMs.toFixed(1)} ms; lag p99 ${lag.p99Ms.toFixed(1)} ms max ${lag.maxMs.toFixed(1)} ms`);
      }
      return;
    }
    if (o.op === "ping" || o.op === "getflightinfo") {
      for (const s of servers) await driver.call({ cmd: "load", uri: s.uri, table: "fixed", batch_bytes: 65536, table_bytes: 65536, path: ["small"] });
      const nprocs = o.callers === 1 ? 1 : 4;
      const workers = Array.from({ length: nprocs }, (_, i) =>
        procs.start(`w${i}`, PYTHON, [path.join(ROOT, "bench/py/small_calls.py"), String(o.callers / nprocs)], { cwd: path.join(ROOT, "bench/py") }),
      );
      const setup = { servers: Object.fromEntries(servers.map((s) => [s.name, { uri: s.uri, path: ["small"] }])) };
      for (const w of workers) w.send(setup);
      for (const w of workers) await w.nextJson(120_000);
      const phases = [];
      let offset = 0;
      for (let rep = 0; rep < o.runs; rep++) {
        for (let k = 0; k < servers.length; k++) {
          phases.push({ server: servers[(k + rep) % servers.length].name, kind: o.op, offset, duration: o.seconds });
          offset += o.seconds + 0.1;
        }
      }
      for (const w of workers) w.send({ t0: Date.now() / 1000 + 0.3, phases });
      const outs = [];
      for (const w of workers) outs.push((await w.nextJson((offset + 60) * 1000)).phases);
      const vals = new Map(servers.map((s) => [s.name, []]));
      phases.forEach((ph, i) => vals.get(ph.server).push(outs.reduce((sum, ph2) => sum + ph2[i].count, 0) / ph.duration));
      console.log(`${o.op} x${o.callers}: ` + [...vals].map(([n, v]) => `${n} ${summarize(v).median.toFixed(0)} ops/s`).join("  "));
      return;
    }
    const tableBytes = Math.min(256 * MiB, o.mib * MiB);
    const times = Math.max(1, Math.round(o.mib / 256));
    for (const b of o.batches.split(",").map(size)) {
      const vals = new Map(servers.map((s) => [s.name, []]));
      const spec = await driver.call({ cmd: "spec", table: o.table, batch_bytes: b, table_bytes: tableBytes });
      const tickets = {};
      if (o.op === "doget") {
        for (const s of servers) tickets[s.name] = (await driver.call({ cmd: "load", uri: s.uri, table: o.table, batch_bytes: b, table_bytes: tableBytes, path: ["ab"] })).ticket;
      }
      for (let rep = -1; rep < o.runs; rep++) {
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(k + rep + 1) % servers.length];
          let r;
          if (o.op === "doget") r = await driver.call({ cmd: "doget", uri: s.uri, ticket: tickets[s.name], rows: spec.rows, times, streams: o.streams });
          else {
            const prefix = ["abput", String(rep + 1)];
            r = await driver.call({ cmd: "doput", uri: s.uri, table: o.table, batch_bytes: b, table_bytes: tableBytes, path_prefix: prefix, times });
            await driver.call({ cmd: "delete", uri: s.uri, paths: Array.from({ length: times }, (_, i) => [...prefix, String(i)]) });
          }
          if (rep >= 0) vals.get(s.name).push((spec.ipc_bytes * times * (o.op === "doget" ? o.streams : 1)) / MiB / r.seconds);
        }
      }
      if (o.op === "doget") for (const s of servers) await driver.call({ cmd: "delete", uri: s.uri, paths: [["ab"]] });
      const line = [...vals].map(([n, v]) => {
        const x = summarize(v);
        return `${n} ${x.median.toFixed(0)} (${x.min.toFixed(0)}-${x.max.toFixed(0)})`;
      });
      console.log(`${o.op} ${o.table} ${b / 1024} KiB: ${line.join("  ")} MiB/s`);
    }
  } finally {
    await procs.stopAll();
  }
}

main().catch((e) => {
  procs.killAllSync();
  console.error(e);
  process.exit(1);
});
