#!/usr/bin/env node
// EXPERIMENT: builds a patched copy of the built packages in bench/out/proposed-dist with a
// change docs/benchmarks.md proposes, so its effect can be measured before anyone makes it in
// packages/* (which the benchmark never edits). `npm run bench -- --proposed` runs it as
// server (a'); bench/experiments/ab.js compares it with anything else.
//
// Still open (see F5 in docs/benchmarks.md):
//   P6 ListFlights keeps each flight's encoded FlightInfo (keyed by its immutable snapshot and
//      the location) and sends those bytes, instead of re-encoding every FlightInfo through
//      @bufbuild/protobuf's BinaryWriter on every call.
//
// Landed in the packages since (commits 56c281d, 3eaeff0), so no longer patched here:
//   P1 pump() waits for "drain" with once(call, "drain", { signal }) (no leaked listeners);
//   P2 callInfo() stops listening for "cancelled" when the call is released;
//   P3 ListFlights sends ~64 KiB of framed FlightInfos per grpc-js write;
//   P4 DoGet sends stored messages with the gRPC prefix already in memory (no framing copy);
//   P5 the gc action collects in slices (8c9383a, MemoryStore.gcInSlices).
//
//   node bench/experiments/make-proposed-dist.js [--from=bench/out/snapshot]
//   node bench/experiments/ab.js --op=list --flights=50000 --variant='base:' \
//     --variant='proposed:BENCH_FLIGHT_DIST=bench/out/proposed-dist/flight/dist BENCH_CORE_DIST=bench/out/proposed-dist/node_modules/@blackice/flight-core/dist'
//
// It edits compiled JavaScript by exact text; if the source changed, it says which anchor is
// gone instead of guessing.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "../..");
const fromArg = process.argv.find((a) => a.startsWith("--from="));
const from = fromArg ? path.resolve(ROOT, fromArg.slice(7)) : undefined;
const flightSrc = from ? path.join(from, "flight/dist") : path.join(ROOT, "packages/flight/dist");
const coreSrc = from ? path.join(from, "node_modules/@blackice/flight-core/dist") : path.join(ROOT, "packages/core/dist");
const outRoot = path.join(ROOT, "bench/out/proposed-dist");
const flightOut = path.join(outRoot, "flight/dist");
const coreOut = path.join(outRoot, "node_modules/@blackice/flight-core");

function patch(file, edits) {
  let text = fs.readFileSync(file, "utf8");
  for (const [name, anchor, replacement] of edits) {
    if (!text.includes(anchor)) throw new Error(`${name}: anchor not found in ${path.relative(ROOT, file)}; the source changed, update make-proposed-dist.js`);
    text = text.replace(anchor, replacement);
  }
  fs.writeFileSync(file, text);
}

fs.rmSync(outRoot, { recursive: true, force: true });
fs.mkdirSync(outRoot, { recursive: true });
fs.cpSync(flightSrc, flightOut, { recursive: true });
fs.cpSync(coreSrc, path.join(coreOut, "dist"), { recursive: true });
fs.copyFileSync(path.join(ROOT, "packages/core/package.json"), path.join(coreOut, "package.json"));

patch(path.join(flightOut, "server/store-handler.js"), [
  [
    "P6a",
    `        for (const f of store.list(prefix)) {
            if (call.signal.aborted)
                return;
            yield flightInfoOf(store, f, location);
        }`,
    `        const pbFlight = require("../gen/Flight");
        const ENCODED = Symbol.for("blackice.encodedFlightInfo");
        const cache = (globalThis.__blackiceEncodedInfos ??= new WeakMap());
        for (const f of store.list(prefix)) {
            if (call.signal.aborted)
                return;
            let e = cache.get(f);
            if (!e || e.location !== location) {
                e = { location, bytes: pbFlight.FlightInfo.encode(flightInfoOf(store, f, location)).finish() };
                cache.set(f, e);
            }
            yield { [ENCODED]: e.bytes };
        }`,
  ],
]);
patch(path.join(flightOut, "server/preframed-responses.js"), [
  ["P6b", `        const body = serialize(value);`, `        const body = value && value[Symbol.for("blackice.encodedFlightInfo")] || serialize(value);`],
]);

process.stdout.write(`wrote ${path.relative(ROOT, outRoot)} (P6)\n`);
