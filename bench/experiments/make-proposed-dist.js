#!/usr/bin/env node
// EXPERIMENT: builds a patched copy of packages/flight/dist in bench/out/proposed-dist with the
// changes docs/benchmarks.md proposes, so their effect can be measured before anyone makes
// them in packages/* (which the benchmark never edits):
//
//   P1 grpc-adapter pump(): wait for "drain" with once(call, "drain", { signal }) instead of
//      Promise.race([once(call, "drain"), once(signal, "abort")]), which leaves one "abort"
//      listener on the call's signal per drain wait (MaxListenersExceededWarning in every
//      long DoGet).
//   P2 grpc-adapter callInfo(): stop listening for grpc-js's "cancelled" once the call is
//      released. grpc-js emits it when every stream closes, also after a normal end, and the
//      handler allocated a FlightError (with a stack trace) each time.
//   P3 store-handler listFlights(): encode the FlightInfos itself and hand grpc-js ~64 KiB of
//      already-framed messages per write (needs the preload batch-list-frames.js).
//   P5 the gc action collects in slices (MemoryStore.collect with the background GC's slice
//      limits, setImmediate between slices) instead of one synchronous store.gc(), so a mass
//      expiry does not stall the event loop; it still answers with the totals. (A patched copy
//      of packages/core/dist goes to bench/out/proposed-dist/node_modules/@blackice/flight-core,
//      which the patched flight dist resolves first.)
// The zero-copy DoGet send (P4) is a preload only: reuse-grpc-frame.js.
//
//   node bench/experiments/make-proposed-dist.js      # then, e.g.:
//   NODE_PATH=node_modules node bench/experiments/ab.js --op=list --flights=30000 \
//     --variant='base:' \
//     --variant='proposed:BENCH_FLIGHT_DIST=bench/out/proposed-dist/flight/dist -r ./bench/experiments/batch-list-frames.js -r ./bench/experiments/reuse-grpc-frame.js'
//
// It edits compiled JavaScript by exact text; if the source changed, it says which anchor is
// gone instead of guessing.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "../..");
const src = path.join(ROOT, "packages/flight/dist");
const out = path.join(ROOT, "bench/out/proposed-dist/flight/dist");
const coreOut = path.join(ROOT, "bench/out/proposed-dist/node_modules/@blackice/flight-core");

function patch(file, edits, base = out) {
  const p = path.join(base, file);
  let text = fs.readFileSync(p, "utf8");
  for (const [name, from, to] of edits) {
    if (!text.includes(from)) throw new Error(`${name}: anchor not found in ${file}; the source changed, update make-proposed-dist.js`);
    text = text.replace(from, to);
  }
  fs.writeFileSync(p, text);
}

fs.rmSync(path.dirname(out), { recursive: true, force: true });
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.cpSync(src, out, { recursive: true });
fs.mkdirSync(coreOut, { recursive: true });
fs.cpSync(path.join(ROOT, "packages/core/dist"), path.join(coreOut, "dist"), { recursive: true });
fs.copyFileSync(path.join(ROOT, "packages/core/package.json"), path.join(coreOut, "package.json"));

patch("server/grpc-adapter.js", [
  [
    "P1",
    `await Promise.race([(0, node_events_1.once)(call, "drain"), (0, node_events_1.once)(signal, "abort")]).catch(() => undefined);`,
    `await (0, node_events_1.once)(call, "drain", { signal }).catch(() => undefined);`,
  ],
  [
    "P2a",
    `call.on("cancelled", () => abort("call cancelled by the client"));`,
    `let released = false;
    const onCancelled = () => { if (!released) abort("call cancelled by the client"); };
    call.on("cancelled", onCancelled);`,
  ],
  [
    "P2b",
    `release: () => shutdown.removeEventListener("abort", onShutdown),`,
    `release: () => { released = true; call.off("cancelled", onCancelled); shutdown.removeEventListener("abort", onShutdown); },`,
  ],
]);

patch("server/store-handler.js", [
  [
    "P3",
    `        for (const f of store.list(prefix)) {
            if (call.signal.aborted)
                return;
            yield flightInfoOf(store, f, location);
        }`,
    `        const pbFlight = require("../gen/Flight");
        const PREFRAMED = Symbol.for("blackice.preframed");
        let parts = [];
        let size = 0;
        for (const f of store.list(prefix)) {
            if (call.signal.aborted)
                return;
            const bytes = pbFlight.FlightInfo.encode(flightInfoOf(store, f, location)).finish();
            const head = Buffer.allocUnsafe(5);
            head[0] = 0;
            head.writeUInt32BE(bytes.length, 1);
            parts.push(head, bytes);
            size += 5 + bytes.length;
            if (size >= 65536) {
                yield { [PREFRAMED]: Buffer.concat(parts, size) };
                parts = [];
                size = 0;
            }
        }
        if (size > 0)
            yield { [PREFRAMED]: Buffer.concat(parts, size) };`,
  ],
]);

patch(
  "dist/store/memory-store.js",
  [
    [
      "P5a",
      `    gc() {`,
      `    /** PROTOTYPE: gc() in slices, like background GC; resolves with the totals. */
    gcSliced() {
        const started = performance.now();
        let removed = 0;
        let freed = 0;
        return new Promise((resolve, reject) => {
            const step = () => {
                try {
                    const r = this.collect(this.now(), GC_SLICE_MAX_FLIGHTS, GC_SLICE_MAX_MS);
                    removed += r.removed;
                    freed += r.freed;
                    if (r.more)
                        return void setImmediate(step);
                    this.gcRuns++;
                    resolve({ flightsRemoved: removed, bytesFreed: freed, durationMs: performance.now() - started });
                }
                catch (err) {
                    reject(err);
                }
            };
            step();
        });
    }
    gc() {`,
    ],
  ],
  coreOut,
);
patch("server/builtin-actions.js", [
  ["P5b", `async () => json(store.gc())`, `async () => json(typeof store.gcSliced === "function" ? await store.gcSliced() : store.gc())`],
]);

process.stdout.write(`wrote ${path.relative(ROOT, out)} (P1, P2, P3, P5); run its servers with NODE_PATH=${path.join(ROOT, "node_modules")}\n`);
