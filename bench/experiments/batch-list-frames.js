// EXPERIMENT (preload with `node -r`), not used by `npm run bench`: lets a server-streaming
// handler hand grpc-js several already-framed gRPC messages in one write.
//
// grpc-js frames and writes every response message on its own (serializeMessage, then one
// HTTP/2 stream write each). ListFlights sends one small FlightInfo per flight, so with 100k
// flights that per-message cost dominates. With this patch, a response object carrying
// Symbol.for("blackice.preframed") (a Buffer of complete gRPC frames: [0][len BE32][bytes]...)
// is written as it is. The patched listFlights in the prototype build (BENCH_FLIGHT_DIST)
// packs about 64 KiB of encoded FlightInfos into each such write.
"use strict";
const path = require("node:path");

const root = path.resolve(__dirname, "../..");
const grpcDir = path.dirname(require.resolve("@grpc/grpc-js/package.json", { paths: [path.join(root, "packages/flight")] }));
const { BaseServerInterceptingCall } = require(path.join(grpcDir, "build/src/server-interceptors.js"));

const PREFRAMED = Symbol.for("blackice.preframed");
const original = BaseServerInterceptingCall.prototype.serializeMessage;
BaseServerInterceptingCall.prototype.serializeMessage = function serializeMessage(value) {
  if (value !== null && typeof value === "object" && value[PREFRAMED]) return value[PREFRAMED];
  return original.call(this, value);
};
