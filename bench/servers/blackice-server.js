#!/usr/bin/env node
// Server (a): BlackIce Flight as a user would run it, from the built packages.
//
//   node bench/servers/blackice-server.js [--max-memory BYTES] [--max-message BYTES]
//        [--gc-interval MS] [--lag-monitor] [--profile-actions] [--config KEY=VALUE ...]
//        [--data-dir DIR [--fsync always|interval|never]] [--query]
//        [--cluster redis://HOST:PORT --node-id ID --replicas N]
//
// --query adds query() (docs/query.md): query descriptors and tickets, for the projection part.
//
// --data-dir serves from diskStore({ dir, fsync }) instead of the built-in memory store (the
// memory limit does not apply then: a disk store has none).
//
// Prints one JSON line {"port": N, "pid": P} once listening. Exits when stdin closes or on
// SIGTERM/SIGINT, so it never outlives the benchmark that started it.
//
// --lag-monitor (opt-in) measures event-loop delay with perf_hooks.monitorEventLoopDelay and
// adds two bench-only actions:
//   bench.lag          body "reset" | "read" -> JSON {count, minMs, p50Ms, p99Ms, maxMs, meanMs}
//   bench.gc-interval  body "<ms>" -> sets the store's background GC interval
//
// --profile-actions (opt-in) adds bench.profile.start / bench.profile.stop (body: the file to
// write the .cpuprofile to): a CPU profile of just one phase, through node:inspector.
"use strict";
const path = require("node:path");
const { monitorEventLoopDelay } = require("node:perf_hooks");

const root = path.resolve(__dirname, "../..");
// BENCH_FLIGHT_DIST / BENCH_CORE_DIST / BENCH_CLUSTER_DIST: load the packages from another build: run.js's snapshot
// of dist (so a rebuild during a run changes nothing), or a patched copy for an experiment.
const flightDist = process.env.BENCH_FLIGHT_DIST ? path.resolve(process.env.BENCH_FLIGHT_DIST) : path.join(root, "packages/flight/dist");
const coreDist = process.env.BENCH_CORE_DIST ? path.resolve(process.env.BENCH_CORE_DIST) : path.join(root, "packages/core/dist");
const clusterDist = process.env.BENCH_CLUSTER_DIST ? path.resolve(process.env.BENCH_CLUSTER_DIST) : path.join(root, "packages/cluster/dist");
const { createFlightServer, query } = require(path.join(flightDist, "index.js"));
const core = require(path.join(coreDist, "index.js"));
const { serverConfig, defineAction } = core;

function parseArgs(argv) {
  const out = { maxMemory: 8 * 2 ** 30, maxMessage: 256 * 2 ** 20, gcInterval: 30_000, lagMonitor: false, lagResolution: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => Number(argv[++i]);
    if (a === "--max-memory") out.maxMemory = num();
    else if (a === "--max-message") out.maxMessage = num();
    else if (a === "--gc-interval") out.gcInterval = num();
    else if (a === "--lag-monitor") out.lagMonitor = true;
    else if (a === "--data-dir") out.dataDir = argv[++i];
    else if (a === "--fsync") out.fsync = argv[++i];
    else if (a === "--lag-resolution") out.lagResolution = num();
    else if (a === "--cluster") out.cluster = argv[++i];
    else if (a === "--node-id") out.nodeId = argv[++i];
    else if (a === "--replicas") out.replicas = num();
    else if (a === "--profile-actions") out.profileActions = true;
    else if (a === "--query") out.query = true;
    else if (a === "--config") {
      // experiments only: --config maxFrameBytes=1048576 sets one serverConfig field
      const [k, v] = argv[++i].split(/=(.*)/s);
      out.config = { ...out.config, [k]: Number.isNaN(Number(v)) ? v : Number(v) };
    }
    else throw new Error(`blackice-server: unknown argument ${a}`);
  }
  return out;
}

const json = (v) => ({ body: Buffer.from(JSON.stringify(v)) });
const ns2ms = (ns) => ns / 1e6;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const parts = [
    serverConfig({
      addr: "127.0.0.1:0",
      ...(args.dataDir ? {} : { maxMemoryBytes: args.maxMemory }),
      maxMessageBytes: args.maxMessage,
      ttl: 0,
      gcInterval: args.gcInterval,
      // Bytes being received at once, server-wide: at least one largest message (the default is
      // 256 MiB, which equals this benchmark's 256 MiB message limit).
      maxInFlightBytes: Math.max(256 * 2 ** 20, args.maxMessage),
      ...args.config,
    }),
  ];
  if (args.dataDir) {
    if (typeof core.diskStore !== "function") throw new Error("blackice-server: --data-dir needs a build with diskStore");
    parts.push(core.withStore(core.diskStore({ dir: args.dataDir, fsync: args.fsync ?? "always" })));
  }
  if (args.cluster) {
    // A node of a cluster (docs/cluster.md): heartbeat 500 ms so that the bench's nodes see each other quickly.
    const { cluster } = require(path.join(clusterDist, "index.js"));
    parts.push(cluster({ redis: args.cluster, nodeId: args.nodeId, replicas: args.replicas ?? 2, heartbeatMs: 500 }));
  }
  let server;
  if (args.lagMonitor) {
    const histogram = monitorEventLoopDelay({ resolution: args.lagResolution });
    histogram.enable();
    parts.push(
      defineAction("bench.lag", 'Benchmark only. Body "reset" or "read": event-loop delay since the last reset, in ms.', async (body) => {
        const cmd = Buffer.from(body).toString("utf8");
        const snapshot = {
          count: histogram.count,
          minMs: histogram.count ? ns2ms(histogram.min) : 0,
          p50Ms: histogram.count ? ns2ms(histogram.percentile(50)) : 0,
          p99Ms: histogram.count ? ns2ms(histogram.percentile(99)) : 0,
          maxMs: histogram.count ? ns2ms(histogram.max) : 0,
          meanMs: histogram.count ? ns2ms(histogram.mean) : 0,
          resolutionMs: args.lagResolution,
        };
        if (cmd === "reset") histogram.reset();
        return json(snapshot);
      }),
      defineAction("bench.gc-interval", "Benchmark only. Body: milliseconds. Sets the background GC interval.", async (body) => {
        const ms = Number(Buffer.from(body).toString("utf8"));
        server.store.setGcInterval(ms);
        return json({ gcIntervalMs: ms });
      }),
    );
  }
  if (args.profileActions) {
    const inspector = require("node:inspector");
    const fs = require("node:fs");
    const session = new inspector.Session();
    session.connect();
    const post = (method, params) => new Promise((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r))));
    parts.push(
      defineAction("bench.profile.start", "Benchmark only. Starts the CPU profiler.", async () => {
        await post("Profiler.enable");
        await post("Profiler.setSamplingInterval", { interval: 200 });
        await post("Profiler.start");
        return json({ started: true });
      }),
      defineAction("bench.profile.stop", "Benchmark only. Stops the CPU profiler; body: file to write.", async (body) => {
        const { profile } = await post("Profiler.stop");
        const file = Buffer.from(body).toString("utf8");
        fs.writeFileSync(file, JSON.stringify(profile));
        return json({ file });
      }),
    );
  }
  if (args.query) {
    if (typeof query !== "function") throw new Error("blackice-server: --query needs a build with query()");
    parts.push(query());
  }
  server = createFlightServer(...parts);
  const { port } = await server.start();
  process.stdout.write(JSON.stringify({ port, pid: process.pid }) + "\n");

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.shutdown({ graceMs: 200 }).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.stdin.on("end", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(`blackice-server: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
