// The one raw Flight client of the tests and tools: a bare grpc-js client over the project's
// service definition (so server tests do not depend on FlightClient), and the gRPC health
// client. CommonJS with a .d.ts beside it, so TypeScript tests, the fault-test child processes
// and scripts/soak.js share it. Used by tests only: it is not in any package.
"use strict";
const grpc = require("@grpc/grpc-js");
const { flightServiceDefinition } = require("@blackice/flight/internal");

const RawFlightClient = grpc.makeGenericClientConstructor(flightServiceDefinition, "FlightService");

// grpc.health.v1 as grpc-health-check (the grpc project's package) describes it.
const HealthClient = grpc.makeGenericClientConstructor(require("grpc-health-check").service, "Health");

function target(port, options) {
  return `${options.host ?? "127.0.0.1"}:${port}`;
}

function channelOptions(options) {
  return {
    // Its own HTTP/2 connection: grpc-js shares one between clients with equal options otherwise.
    ...(options.ownConnection ? { "grpc.use_local_subchannel_pool": 1 } : {}),
    ...(options.maxMessageBytes ? { "grpc.max_receive_message_length": options.maxMessageBytes, "grpc.max_send_message_length": options.maxMessageBytes } : {}),
    ...options.channelOptions,
  };
}

function rawClient(port, options = {}) {
  return new RawFlightClient(target(port, options), options.credentials ?? grpc.credentials.createInsecure(), channelOptions(options));
}

function healthClient(port, options = {}) {
  return new HealthClient(target(port, options), options.credentials ?? grpc.credentials.createInsecure(), channelOptions(options));
}

function metadata(headers = {}) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return md;
}

function unary(client, method, request, md = new grpc.Metadata()) {
  return new Promise((resolve, reject) => client[method](request, md, (err, res) => (err ? reject(err) : resolve(res))));
}

function serverStreamCall(client, method, request, md = new grpc.Metadata()) {
  return client[method](request, md);
}

async function serverStream(client, method, request, md = new grpc.Metadata()) {
  const out = [];
  for await (const m of serverStreamCall(client, method, request, md)) out.push(m);
  return out;
}

async function bidiWithHeaders(client, method, requests, md = new grpc.Metadata()) {
  const call = client[method](md);
  const headers = new Promise((resolve) => call.on("metadata", resolve));
  for (const r of requests) call.write(r);
  call.end();
  const messages = [];
  for await (const m of call) messages.push(m);
  return { messages, headers: await Promise.race([headers, Promise.resolve(new grpc.Metadata())]) };
}

async function bidi(client, method, requests, md = new grpc.Metadata()) {
  return (await bidiWithHeaders(client, method, requests, md)).messages;
}

module.exports = { rawClient, healthClient, metadata, unary, serverStreamCall, serverStream, bidi, bidiWithHeaders };
