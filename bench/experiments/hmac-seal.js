#!/usr/bin/env node
// A/B of HMAC v1 (descriptor signed) against v2 (every message digested and sealed) on DoPut:
// one process holds a BlackIce server (hmacAuth, acceptV1) and a FlightClient, which puts the
// same pre-encoded messages (no Arrow encoding in the loop) with a v1 and a v2 hmacSigner,
// interleaved run by run. Both sides hash in v2, so the difference is the cost of the seal.
//
//   npm run build && node bench/experiments/hmac-seal.js [--mib=256] [--batch=1MiB] [--runs=5]
"use strict";
const path = require("node:path");
const ROOT = path.resolve(__dirname, "../..");
const { serverConfig, splitIpcStream } = require(path.join(ROOT, "packages/core/dist"));
const { createFlightServer, FlightClient, pathDescriptor } = require(path.join(ROOT, "packages/flight/dist"));
const { hmacAuth, hmacSigner } = require(path.join(ROOT, "packages/security/dist"));
const { tableFromArrays, tableToIPC } = require("apache-arrow");

async function main() {
  const o = { mib: 256, batch: "1MiB", runs: 5 };
  for (const a of process.argv.slice(2)) {
    const [k, v] = a.replace(/^--/, "").split("=");
    o[k] = k === "batch" ? v : Number(v);
  }
  const batchBytes = Number(/^(\d+)MiB$/.exec(o.batch)[1]) * 2 ** 20;
  const rows = batchBytes / 8;
  const ipc = tableToIPC(tableFromArrays({ v: Float64Array.from({ length: rows }, (_, i) => i) }), "stream");
  const [schema, batch] = splitIpcStream(ipc);
  const batches = Math.round((o.mib * 2 ** 20) / batchBytes);
  const messages = () => [schema, ...Array.from({ length: batches }, () => batch)].map((m) => ({ dataHeader: m.header, dataBody: m.body, appMetadata: new Uint8Array(0) }));
  const secret = "bench-hmac-seal-secret-0123456789abcdef";
  const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMemoryBytes: 4 * 2 ** 30 }), hmacAuth({ keys: [{ keyId: "b", secret }], acceptV1: true }));
  await server.start();
  const clients = {
    v1: new FlightClient(`grpc://127.0.0.1:${server.port}`, { signer: hmacSigner({ keyId: "b", secret, version: "v1" }) }),
    v2: new FlightClient(`grpc://127.0.0.1:${server.port}`, { signer: hmacSigner({ keyId: "b", secret }) }),
  };
  const results = { v1: [], v2: [] };
  for (let run = 0; run <= o.runs; run++) {
    for (const v of run % 2 === 0 ? ["v1", "v2"] : ["v2", "v1"]) {
      const d = pathDescriptor("bench", v, String(run));
      const t0 = process.hrtime.bigint();
      for await (const _ of clients[v].doPutRaw(d, messages()).results) void _;
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (run > 0) results[v].push(o.mib / s); // run 0 warms up
      await server.store.delete(d);
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const v of ["v1", "v2"]) console.log(`${v}: median ${median(results[v]).toFixed(0)} MiB/s over ${o.runs} runs of ${o.mib} MiB in ${o.batch} batches (${results[v].map((x) => x.toFixed(0)).join(", ")})`);
  console.log(`v2 / v1: ${(median(results.v2) / median(results.v1)).toFixed(2)}`);
  for (const c of Object.values(clients)) c.close();
  await server.shutdown({ graceMs: 100 });
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
