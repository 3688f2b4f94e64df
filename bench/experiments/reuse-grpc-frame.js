// EXPERIMENT (preload with `node -r`), not used by `npm run bench`: prototypes a change to
// the send path that the benchmark's profile points at, without touching packages/*.
//
// grpc-js frames every outgoing message by copying it into a fresh buffer of length + 5
// (BaseServerInterceptingCall.serializeMessage: Buffer.allocUnsafe + copy). For DoGet that is
// one full copy of the flight, plus the garbage it leaves. But a message BlackIce stored from a
// DoPut is a view at offset 5 of the buffer grpc-js's StreamDecoder built for it
// (Buffer.concat([flag, length, ...chunks])), so the 5-byte gRPC prefix [0, length BE32] is
// already in memory right before the view. When it is, this sends the view widened by 5 bytes
// — byte for byte what the copy would have produced — and copies nothing.
//
// Only FlightData responses are touched (the serializer of DoGet/DoExchange), and only when the
// five bytes match, so every other message takes grpc-js's own path.
"use strict";
const path = require("node:path");

const root = path.resolve(__dirname, "../..");
const grpcDir = path.dirname(require.resolve("@grpc/grpc-js/package.json", { paths: [path.join(root, "packages/flight")] }));
const { BaseServerInterceptingCall } = require(path.join(grpcDir, "build/src/server-interceptors.js"));
const flightDist = process.env.BENCH_FLIGHT_DIST ? path.resolve(process.env.BENCH_FLIGHT_DIST) : path.join(root, "packages/flight/dist");
const { flightServiceDefinition } = require(path.join(flightDist, "index.js"));

const flightDataSerialize = flightServiceDefinition.doGet.responseSerialize;
const original = BaseServerInterceptingCall.prototype.serializeMessage;
let reused = 0;
let copied = 0;

BaseServerInterceptingCall.prototype.serializeMessage = function serializeMessage(value) {
  if (this.handler.serialize !== flightDataSerialize) return original.call(this, value);
  const m = this.handler.serialize(value);
  const len = m.byteLength;
  const off = m.byteOffset;
  if (off >= 5) {
    const p = new Uint8Array(m.buffer, off - 5, 5);
    if (p[0] === 0 && p[1] === len >>> 24 && p[2] === ((len >>> 16) & 0xff) && p[3] === ((len >>> 8) & 0xff) && p[4] === (len & 0xff)) {
      reused++;
      return Buffer.from(m.buffer, off - 5, len + 5);
    }
  }
  copied++;
  const out = Buffer.allocUnsafe(len + 5);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(len, 1);
  m.copy(out, 5);
  return out;
};

process.on("exit", () => {
  if (process.env.BENCH_EXPERIMENT_VERBOSE) process.stderr.write(`reuse-grpc-frame: ${reused} messages sent without copy, ${copied} copied\n`);
});
