#!/usr/bin/env node
// The project's own TypeScript FlightClient (from packages/flight/dist) as a benchmark client,
// driven by bench/run.js with the same one-JSON-line-per-command protocol as bench/py/driver.py.
//
// Two ways of using it are measured:
//   raw    doGetRaw / doPutRaw: FlightData messages as bytes (what a relay or a cache does);
//   arrow  getTable / putTable: decoded to and encoded from apache-arrow JS tables.
// For DoPut the client sends what it read from the server: raw relays the received messages
// (the same bytes pyarrow sent), arrow re-encodes the table getTable returned.
"use strict";
const path = require("node:path");
const readline = require("node:readline");

const ROOT = path.resolve(__dirname, "..");

function loadClient() {
  // BENCH_FLIGHT_DIST: run.js's snapshot of packages/flight/dist.
  const dist = process.env.BENCH_FLIGHT_DIST ? path.resolve(process.env.BENCH_FLIGHT_DIST) : path.join(ROOT, "packages/flight/dist");
  const flight = require(path.join(dist, "index.js"));
  if (typeof flight.FlightClient === "function") return { FlightClient: flight.FlightClient, from: "@blackice/flight (dist/index.js)" };
  // Built but not exported yet.
  const mod = require(path.join(dist, "client/flight-client.js"));
  return { FlightClient: mod.FlightClient, from: "dist/client/flight-client.js (not yet exported from the index)" };
}

const { FlightClient, from } = loadClient();
const clients = new Map();
const prepared = new Map(); // key -> { messages, table }

function client(uri) {
  let c = clients.get(uri);
  if (!c) {
    c = new FlightClient(uri, { maxMessageBytes: 256 * 2 ** 20 });
    clients.set(uri, c);
  }
  return c;
}

const ticketOf = (b64) => Buffer.from(b64, "base64");
const seconds = (t0) => (performance.now() - t0) / 1000;

const commands = {
  hello: async () => ({ from }),

  async prepare(a) {
    const c = client(a.uri);
    const messages = [];
    for await (const m of c.doGetRaw(ticketOf(a.ticket))) messages.push(m);
    const entry = { messages, table: undefined };
    if (a.arrow) entry.table = await c.getTable(ticketOf(a.ticket));
    prepared.set(a.key, entry);
    return { messages: messages.length };
  },

  async doget(a) {
    const c = client(a.uri);
    const t0 = performance.now();
    for (let i = 0; i < a.times; i++) {
      if (a.mode === "arrow") {
        const table = await c.getTable(ticketOf(a.ticket));
        if (table.numRows !== a.rows) throw new Error(`getTable: ${table.numRows} rows, expected ${a.rows}`);
      } else {
        let n = 0;
        for await (const m of c.doGetRaw(ticketOf(a.ticket))) n += m.dataBody.byteLength;
        if (n === 0) throw new Error("doGetRaw: no data");
      }
    }
    return { seconds: seconds(t0) };
  },

  async doput(a) {
    const c = client(a.uri);
    const entry = prepared.get(a.key);
    if (!entry) throw new Error(`nothing prepared for ${a.key}`);
    const t0 = performance.now();
    for (let i = 0; i < a.times; i++) {
      const descriptor = { path: [...a.path_prefix, String(i)] };
      if (a.mode === "arrow") {
        await c.putTable(descriptor, entry.table);
      } else {
        // The received messages as they are (with their wire bytes); the client adds the
        // descriptor to the first.
        for await (const _ of c.doPutRaw(descriptor, entry.messages).results) void _;
      }
    }
    return { seconds: seconds(t0) };
  },

  /**
   * Events through the batching writer: `rows` telemetry events (ts, host, cpu, mem), appended
   * `per` at a time (one object when per is 1, else an array), committed by close(). Checks
   * the stored row count afterwards.
   */
  async writer(a) {
    const c = client(a.uri);
    const hosts = ["web-1", "web-2", "db-1", "cache-1"];
    const event = (i) => ({ ts: 1_700_000_000_000 + i, host: hosts[i & 3], cpu: (i % 100) / 100, mem: i % 65_536 });
    const chunks = [];
    for (let i = 0; i < a.rows; i += a.per) chunks.push(a.per === 1 ? event(i) : Array.from({ length: Math.min(a.per, a.rows - i) }, (_, k) => event(i + k)));
    const descriptor = { path: [...a.path, String(a.per)] };
    const writer = c.batchWriter(descriptor, { maxRows: a.max_rows, maxDelayMs: 200 });
    const t0 = performance.now();
    for (const chunk of chunks) await writer.append(chunk);
    await writer.close();
    const s = seconds(t0);
    const info = await c.getFlightInfo(descriptor);
    if (Number(info.totalRecords) !== a.rows) throw new Error(`writer: ${info.totalRecords} rows stored, expected ${a.rows}`);
    return { seconds: s, streams: writer.stats.streams };
  },

  async forget(a) {
    prepared.delete(a.key);
    return null;
  },
};

async function main() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let out;
    try {
      const req = JSON.parse(line);
      out = { ok: true, result: await commands[req.cmd](req) };
    } catch (err) {
      out = { ok: false, error: `${err && err.name}: ${err && err.message}` };
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  }
  for (const c of clients.values()) c.close();
  process.exit(0);
}

main();
