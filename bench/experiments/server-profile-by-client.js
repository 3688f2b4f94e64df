#!/usr/bin/env node
// Profiles the BlackIce server while two clients read the same 256 MiB flight (fixed table,
// 1 MiB batches), alternating: FlightClient.doGetRaw ("ts") and pyarrow's do_get ("py"), three
// reads each, one CPU profile of the server per turn (through its bench.profile.* actions).
// Question it answers: is the server the bottleneck when FlightClient reads slower than pyarrow?
//
//   node bench/experiments/server-profile-by-client.js
"use strict";
const path = require("node:path");
const procs = require("../lib/procs");
const { summarize } = require("../lib/profile-summary");
const ROOT = path.resolve(__dirname, "../..");
const MiB = 2 ** 20;
(async () => {
  const { FlightClient } = require(path.join(ROOT, "packages/flight/dist/index.js"));
  const server = await procs.startServer("blackice", process.execPath, [path.join(ROOT, "bench/servers/blackice-server.js"), "--profile-actions"]);
  const driver = procs.start("driver", path.join(ROOT, ".venv/bin/python"), [path.join(ROOT, "bench/py/driver.py")], { cwd: path.join(ROOT, "bench/py") });
  const client = new FlightClient(server.uri, { maxMessageBytes: 256 * MiB });
  try {
    const l = await driver.call({ cmd: "load", uri: server.uri, table: "fixed", batch_bytes: MiB, table_bytes: 256 * MiB, path: ["p"] });
    const ticket = Buffer.from(l.ticket, "base64");
    const run = {
      async ts() { for (let i = 0; i < 3; i++) for await (const m of client.doGetRaw(ticket)) void m; },
      async py() { await driver.call({ cmd: "doget", uri: server.uri, ticket: l.ticket, rows: l.rows, times: 3 }); },
    };
    for (const who of ["ts", "py", "ts", "py"]) {
      await run[who]();
      await client.doAction("bench.profile.start", Buffer.alloc(0)).catch((e) => { throw e; });
      const t0 = performance.now();
      await run[who]();
      const s = (performance.now() - t0) / 1000;
      const file = `/tmp/sp-${who}.cpuprofile`;
      await client.doAction("bench.profile.stop", Buffer.from(file));
      console.log(`=== server while ${who} reads: ${((3 * l.ipc_bytes) / MiB / s).toFixed(0)} MiB/s`);
      console.log(summarize(file, 12, ROOT).split("self time by file")[0]);
    }
  } finally {
    client.close();
    await driver.stop();
    await server.proc.stop(10000);
  }
})().catch((e) => { console.error(e); procs.killAllSync(); process.exit(1); });
