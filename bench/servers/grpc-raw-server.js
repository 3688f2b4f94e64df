#!/usr/bin/env node
// Server (c): raw grpc-js, the transport BlackIce replaced (a7a5d1a). A bytes-only Flight server
// on @grpc/grpc-js's public Server API with the project's service definition (paths and the
// non-data codecs, from dist), but nothing else: no middleware, no validation, no store. It
// shows what grpc-js's own receive and send paths allow, next to BlackIce's node:http2 transport.
//
// DoPut keeps each received FlightData message as the Buffer grpc-js hands over (only the
// first message's descriptor is cut off); DoGet writes those same buffers back, so the bytes
// and message sizes are exactly what the other servers stream, and pyarrow reads it as a
// normal Flight DoGet. GetFlightInfo returns the ticket; DoAction knows ping and delete.
//
// Prints one JSON line {"port": N, "pid": P}; exits when stdin closes or on SIGTERM.
"use strict";
const path = require("node:path");
const { once } = require("node:events");

const root = path.resolve(__dirname, "../..");
const grpc = require(require.resolve("@grpc/grpc-js", { paths: [path.join(root, "packages/flight")] }));
const flightDist = process.env.BENCH_FLIGHT_DIST ? path.resolve(process.env.BENCH_FLIGHT_DIST) : path.join(root, "packages/flight/dist");
const { proto } = require(path.join(flightDist, "index.js"));
const { flightServiceDefinition } = require(path.join(flightDist, "internal.js"));

const MAX_MESSAGE = 256 * 2 ** 20;
const identity = (b) => b;

// FlightData messages pass through as Buffers in both directions.
const definition = {
  ...flightServiceDefinition,
  doGet: { ...flightServiceDefinition.doGet, responseSerialize: identity },
  doPut: { ...flightServiceDefinition.doPut, requestDeserialize: identity },
};

/** Reads a protobuf varint at pos: [value, next]. */
function varint(buf, pos) {
  let v = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [v, pos];
    mul *= 128;
  }
}

const keyOf = (d) => (d.path && d.path.length ? "p:" + d.path.join("/") : "c:" + Buffer.from(d.cmd).toString("hex"));

const flights = new Map(); // key -> { descriptor, messages: Buffer[], bytes }

function info(key, f) {
  return {
    schema: new Uint8Array(0),
    flightDescriptor: f.descriptor,
    endpoint: [{ ticket: { ticket: Buffer.from(key) }, location: [], expirationTime: undefined, appMetadata: new Uint8Array(0) }],
    totalRecords: -1,
    totalBytes: f.bytes,
    ordered: false,
    appMetadata: new Uint8Array(0),
  };
}

const implementation = {
  doPut(call) {
    const messages = [];
    let descriptor;
    let bytes = 0;
    call.on("data", (buf) => {
      if (descriptor === undefined) {
        // FlightData field 1 (descriptor) comes first in the first message: cut it off.
        if (buf[0] !== 0x0a) return call.destroy(new Error("first DoPut message has no descriptor"));
        const [len, at] = varint(buf, 1);
        descriptor = proto.FlightDescriptor.decode(buf.subarray(at, at + len));
        buf = buf.subarray(at + len);
      }
      bytes += buf.length;
      messages.push(buf);
    });
    call.on("end", () => {
      if (descriptor !== undefined) {
        const key = keyOf(descriptor);
        const old = flights.get(key);
        if (old) {
          old.messages.push(...messages.slice(1)); // the schema is stored once
          old.bytes += bytes;
        } else flights.set(key, { descriptor, messages, bytes });
      }
      call.end();
    });
    call.on("error", () => undefined);
  },

  async doGet(call) {
    const f = flights.get(Buffer.from(call.request.ticket).toString());
    if (!f) return call.emit("error", { code: grpc.status.NOT_FOUND, details: "no flight for this ticket" });
    call.on("error", () => undefined);
    for (const m of f.messages) {
      if (call.cancelled) return;
      if (!call.write(m)) await once(call, "drain");
    }
    call.end();
  },

  getFlightInfo(call, callback) {
    const key = keyOf(call.request);
    const f = flights.get(key);
    if (!f) return callback({ code: grpc.status.NOT_FOUND, details: `no flight ${key}` });
    callback(null, info(key, f));
  },

  listFlights(call) {
    for (const [key, f] of flights) call.write(info(key, f));
    call.end();
  },

  doAction(call) {
    const { type, body } = call.request;
    if (type === "ping") call.write({ body: Buffer.from("pong") });
    else if (type === "delete") {
      const ref = JSON.parse(Buffer.from(body).toString("utf8"));
      const deleted = flights.delete("p:" + ref.path.join("/")) ? 1 : 0;
      call.write({ body: Buffer.from(JSON.stringify({ deleted })) });
    } else return call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `unknown action ${type}` });
    call.end();
  },

  listActions(call) {
    call.write({ type: "ping", description: "Returns pong" });
    call.write({ type: "delete", description: 'Body: JSON {"path": [...]}' });
    call.end();
  },
};

async function main() {
  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_MESSAGE, "grpc.max_send_message_length": MAX_MESSAGE });
  server.addService(definition, implementation);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  process.stdout.write(JSON.stringify({ port, pid: process.pid }) + "\n");
  const stop = () => {
    server.forceShutdown();
    process.exit(0);
  };
  process.stdin.on("end", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(`grpc-raw-server: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
