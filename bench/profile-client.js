#!/usr/bin/env node
// Profiles the project's FlightClient (packages/flight/dist) against a BlackIce server: one CPU
// profile per operation (doGetRaw, getTable, doPutRaw), taken in this process through
// node:inspector so that each profile holds only that operation, then where its time went.
//
//   node bench/profile-client.js [--table=fixed|telemetry] [--batch=1MiB] [--times=2] [--top=25]
//        [--ops=doGetRaw,getTable,doPutRaw] [--worker=compressed|true|false] [--profile=true|false]
//
// --worker sets FlightClient's decoder.worker: compressed (the default: this table is not
// compressed, so getTable decodes on the main thread), true (always in a worker), false;
// --profile=false only times the operations.
//
// The server and pyarrow's driver (which loads the 256 MiB table) run in their own processes.
// Profiles go to bench/out/prof/client-<op>-<table>-<batch>.cpuprofile.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const inspector = require("node:inspector");
const procs = require("./lib/procs");
const { summarize } = require("./lib/profile-summary");

const ROOT = path.resolve(__dirname, "..");
const PYTHON = process.env.BENCH_PYTHON || path.join(ROOT, ".venv/bin/python");
const MiB = 2 ** 20;

function parse(argv) {
  const o = { table: "fixed", batch: "1MiB", times: 2, top: 25, ops: "doGetRaw,getTable,doPutRaw", worker: "compressed", profile: "true" };
  for (const a of argv) {
    const [k, v] = a.replace(/^--/, "").split("=");
    if (!(k in o)) throw new Error(`unknown option ${a}`);
    o[k] = typeof o[k] === "number" ? Number(v) : v;
  }
  const m = /^(\d+)(KiB|MiB)$/.exec(o.batch);
  o.batchBytes = Number(m[1]) * (m[2] === "MiB" ? MiB : 1024);
  return o;
}

const post = (session, method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));

async function main() {
  const o = parse(process.argv.slice(2));
  const outDir = path.join(ROOT, "bench/out/prof");
  fs.mkdirSync(outDir, { recursive: true });
  const { FlightClient } = require(path.join(ROOT, "packages/flight/dist/index.js"));
  const server = await procs.startServer("blackice", process.execPath, [path.join(__dirname, "servers/blackice-server.js")]);
  const driver = procs.start("driver", PYTHON, [path.join(__dirname, "py/driver.py")], { cwd: path.join(__dirname, "py") });
  const session = new inspector.Session();
  session.connect();
  await post(session, "Profiler.enable");
  await post(session, "Profiler.setSamplingInterval", { interval: 200 });
  const client = new FlightClient(server.uri, { maxMessageBytes: 256 * MiB, decoder: { worker: o.worker === "false" ? false : o.worker === "true" ? true : "compressed" } });
  try {
    const l = await driver.call({ cmd: "load", uri: server.uri, table: o.table, batch_bytes: o.batchBytes, table_bytes: 256 * MiB, path: ["p"] });
    const ticket = Buffer.from(l.ticket, "base64");
    const messages = [];
    for await (const m of client.doGetRaw(ticket)) messages.push(m);
    const ops = {
      async doGetRaw() {
        let n = 0;
        for await (const m of client.doGetRaw(ticket)) n += m.dataBody.byteLength;
        if (n === 0) throw new Error("no data");
      },
      async getTable() {
        const t = await client.getTable(ticket);
        if (t.numRows !== l.rows) throw new Error(`getTable: ${t.numRows} rows, expected ${l.rows}`);
      },
      async doPutRaw(i) {
        for await (const _ of client.doPutRaw({ path: ["q", String(i)] }, messages).results) void _;
        await client.doAction("delete", JSON.stringify({ path: ["q", String(i)] }));
      },
    };
    for (const op of o.ops.split(",")) {
      await ops[op](-1); // warm-up
      if (o.profile !== "false") await post(session, "Profiler.start");
      const t0 = performance.now();
      for (let i = 0; i < o.times; i++) await ops[op](i);
      const seconds = (performance.now() - t0) / 1000;
      const load = fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
      const line = `${op}${op === "getTable" ? ` (decoder.worker ${o.worker})` : ""}: ${((l.ipc_bytes * o.times) / MiB / seconds).toFixed(0)} MiB/s (load ${load})`;
      if (o.profile === "false") {
        console.log(line);
        continue;
      }
      const { profile } = await post(session, "Profiler.stop");
      const file = path.join(outDir, `client-${op}-${o.table}-${o.batch}.cpuprofile`);
      fs.writeFileSync(file, JSON.stringify(profile));
      console.log(`\n=== ${line}; ${path.relative(ROOT, file)}`);
      console.log(summarize(file, o.top, ROOT));
    }
  } finally {
    client.close();
    session.disconnect();
    await driver.stop();
    await server.proc.stop(10_000);
  }
}

main().catch((err) => {
  procs.killAllSync();
  console.error(err);
  process.exit(1);
});
