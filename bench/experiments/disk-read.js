#!/usr/bin/env node
// Disk store vs memory store on the DoGet path (issue 10). Puts one flight of --mib MiB in
// 1 MiB batches (distinct bytes) into a DiskStore and a MemoryStore in this process, then
// times, interleaved round by round, (a) iterating flight.messages() and (b) a real DoGet
// through createFlightServer(withStore(...)) read by pyarrow.flight (the second of two reads
// per connection, so the page cache is warm).
//
//   node bench/experiments/disk-read.js [--mib=256] [--rounds=3] [--no-pyarrow] [--no-iterate]
//        [--only=disk,mem,base]
//
// BASE_CORE_DIST=<a copy of packages/core/dist from another commit> adds "base": a DiskStore
// from that build, measured in the same rounds (before/after in one run).
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");
const root = path.resolve(__dirname, "../..");
const core = require(path.join(root, "packages/core/dist/index.js"));
const { createFlightServer } = require(path.join(root, "packages/flight/dist/index.js"));
const { tableFromArrays, tableToIPC } = require("apache-arrow");

const o = { mib: 256, rounds: 3, pyarrow: true, iterate: true, only: "" };
for (const a of process.argv.slice(2)) {
  const [k, v] = a.replace(/^--/, "").split("=");
  if (k === "no-pyarrow") o.pyarrow = false;
  else if (k === "no-iterate") o.iterate = false;
  else if (k in o) o[k] = typeof o[k] === "number" ? Number(v) : v;
  else throw new Error(`unknown option ${a}`);
}
const MiB = 2 ** 20;

function messages() {
  const ipc = tableToIPC(tableFromArrays({ x: new Float64Array(MiB / 8).map((_, i) => i) }), "stream");
  const [schema, batch] = core.splitIpcStream(ipc);
  const msg = (m) => ({ header: m.header, body: m.body, appMetadata: new Uint8Array(0), info: core.readMessageHeader(m.header, m.body.byteLength), byteSize: m.header.byteLength + m.body.byteLength });
  return { schema: msg(schema), batch: msg(batch) };
}

async function put(store, { schema, batch }) {
  const d = { type: 1, path: ["bench"], cmd: new Uint8Array(0) };
  const tx = await store.beginPut(d, schema);
  // Distinct bytes per batch, as a real put has (one buffer 256 times would stay in the CPU cache).
  for (let i = 0; i < o.mib; i++) await tx.append({ ...batch, body: new Uint8Array(batch.body) });
  return tx.commit();
}

async function iterate(flight) {
  const t = process.hrtime.bigint();
  let bytes = 0;
  for await (const m of flight.messages()) bytes += m.header.byteLength + m.body.byteLength;
  return bytes / MiB / (Number(process.hrtime.bigint() - t) / 1e9);
}

const PY = `
import sys, time, pyarrow.flight as fl
c = fl.connect(sys.argv[1])
for line in sys.stdin:
    t = time.perf_counter(); n = 0
    for chunk in c.do_get(fl.Ticket(bytes.fromhex(line.strip()))):
        n += chunk.data.nbytes
    print(n / 2**20 / (time.perf_counter() - t), flush=True)
`;

async function doGet(s) {
  const py = spawn(path.join(root, ".venv/bin/python"), ["-c", PY, `grpc://127.0.0.1:${s.server.port}`], { stdio: ["pipe", "pipe", "inherit"] });
  const out = [];
  py.stdout.on("data", (b) => out.push(b));
  py.stdin.end(`${Buffer.from(s.store.ticketFor(s.flight)).toString("hex")}\n`.repeat(2));
  await new Promise((res) => py.on("close", res));
  return Number(Buffer.concat(out).toString().trim().split("\n").pop());
}

async function main() {
  const dirs = [];
  const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "disk-read-")); dirs.push(d); return d; };
  const stores = { disk: core.diskStore({ dir: tmp(), fsync: "never" }), mem: new core.MemoryStore({ maxMemoryBytes: 4 * 2 ** 30 }) };
  if (process.env.BASE_CORE_DIST) stores.base = require(path.resolve(process.env.BASE_CORE_DIST, "index.js")).diskStore({ dir: tmp(), fsync: "never" });
  const only = o.only ? o.only.split(",") : Object.keys(stores);
  const m = messages();
  const s = {};
  for (const name of only) {
    const store = stores[name];
    s[name] = { store, flight: await put(store, m) };
    await iterate(s[name].flight); // the page cache is warm from the put; this warms the code
  }
  const res = {};
  for (let r = 0; r < o.rounds; r++) {
    for (const name of only) if (o.iterate) (res[`iterate ${name}`] ??= []).push(await iterate(s[name].flight));
  }
  if (o.pyarrow) {
    for (const name of only) {
      s[name].server = createFlightServer(core.serverConfig({ addr: "127.0.0.1:0", maxMessageBytes: 64 * MiB }), core.withStore(s[name].store));
      await s[name].server.start();
    }
    for (let r = 0; r < o.rounds; r++) for (const name of only) (res[`doget ${name}`] ??= []).push(await doGet(s[name]));
    for (const name of only) await s[name].server.shutdown();
  }
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(14)} MiB/s median ${median(v).toFixed(0).padStart(6)}   runs ${v.map((x) => x.toFixed(0)).join(" ")}`);
  for (const name of only) if (name !== "mem") await stores[name].close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}
main().catch((e) => { console.error(e); process.exit(1); });
