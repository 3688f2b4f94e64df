#!/usr/bin/env node
// Soak test of BlackIce Flight: mixed load with injected failures against a server in a child
// process, then a check that no stored data was lost or changed.
//
//   npm run soak -- --minutes 1            (CI)
//   node scripts/soak.js --minutes 0.2     (after npm run build)
//
// Options:
//   --minutes N         how long to run the load; fractions allowed (default 1)
//   --concurrency N     concurrent clients, each on its own connection (default 8)
//   --failure-rate F    share of operations replaced by an injected failure, 0..1 (default 0.05)
//   --max-memory SIZE   the server store's memory limit (default 256MiB)
//   --seed N            seed of the operation mix (default: from the clock; printed)
//   --inject LIST       injected failure kinds, comma-separated (default all):
//                       malformed, cancel-put, cancel-get, deadline, kill
//   --json FILE         also write the report as JSON to FILE
//
// The load: puts (1-8 batches, random sizes), gets (checked byte for byte), lists (no partial,
// phantom or resurrected flight may ever be listed), actions (ping, stats, list-actions),
// deletes. Injected failures: malformed puts (INVALID_ARGUMENT expected, nothing stored),
// cancelled calls (puts cancelled mid-stream, gets cancelled mid-stream, calls with a 1 ms
// deadline) and killed clients (a child process SIGKILLed in the middle of a DoPut).
//
// At the end every flight the model holds is checked against a digest computed at put time:
// SHA-256 over the messages read back by DoGet, and, when @blackice/flight-security's
// merkleIntegrity is available, the Merkle root from FlightInfo.app_metadata against the root
// computed at put time. Exit code 1 when a stored flight was lost or changed, or the server
// died; 3 when no data was lost but the server showed something it must not (a partial flight,
// a phantom one from a refused, malformed, cancelled or killed put, a deleted one coming back,
// a reservation never released); 2 on a usage error; 0 otherwise. Expected refusals and the
// injected failures themselves are reported, not fatal.
//
// Internal modes: --serve JSON (the server child), --kill-client JSON (a client to be killed).
"use strict";

const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const { tableFromArrays, tableToIPC } = require("apache-arrow");
const { createFlightServer } = require("@blackice/flight");
const { rawClient } = require("../test/helpers/raw-flight-client");
const { parseSize, serverConfig, splitIpcStream } = require("@blackice/flight-core");
const resilience = require("@blackice/flight-resilience");

/** The security package, if it is built and offers Merkle integrity. */
const security = (() => {
  try {
    const s = require("@blackice/flight-security");
    return typeof s.merkleIntegrity === "function" && typeof s.MerkleBuilder === "function" && typeof s.flightDataLeafHash === "function" ? s : undefined;
  } catch {
    return undefined;
  }
})();

const MiB = 2 ** 20;
/** Problems that mean stored data was lost or changed (exit code 1); any other problem gives 3. */
const LOSS_KINDS = ["lost", "changed", "server-died"];
const NONE = new Uint8Array(0);
const PREFIX = "soak";

/** Child processes of the driver, SIGKILLed if it exits while they still run. */
const children = new Set();
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function connect(port) {
  return rawClient(port, { ownConnection: true, maxMessageBytes: 64 * MiB });
}

// ---------------------------------------------------------------------------------------------
// Test data: float64 record batches. Arrow encodes one batch per row count; a batch with other
// values is a copy of its body with the values rewritten in place (a float64 column without
// nulls is its values, from the start of the body).

const ROW_CHOICES = [1, 100, 1000, 10_000, 65_536];
const templates = new Map();

function template(rows) {
  let t = templates.get(rows);
  if (!t) {
    const table = tableFromArrays({ v: Float64Array.from({ length: rows }, (_, i) => i) });
    const [schema, batch] = splitIpcStream(tableToIPC(table, "stream"));
    const check = new Float64Array(batch.body.buffer, batch.body.byteOffset, rows);
    if (batch.body.byteOffset % 8 !== 0 || check[rows - 1] !== rows - 1) throw new Error("soak: unexpected Arrow batch layout");
    t = { schema: { header: new Uint8Array(schema.header), body: new Uint8Array(schema.body) }, header: new Uint8Array(batch.header), body: new Uint8Array(batch.body) };
    templates.set(rows, t);
  }
  return t;
}

function batchOf(rows, seed) {
  const t = template(rows);
  const body = new Uint8Array(t.body);
  const v = new Float64Array(body.buffer, 0, rows);
  for (let i = 0; i < rows; i++) v[i] = seed + i;
  return { header: t.header, body };
}

/** A flight: the schema and `batches` batches of `rows` rows each. */
function makeFlight(batches, rows, seed) {
  const out = [template(rows).schema];
  for (let b = 0; b < batches; b++) out.push(batchOf(rows, seed * 1e6 + b * 1e5));
  return out;
}

/** SHA-256 over the messages: per message u32be(header length) ‖ header ‖ u64be(body length) ‖ body. */
function digestOf(messages) {
  const h = crypto.createHash("sha256");
  for (const m of messages) {
    const header = m.header ?? m.dataHeader;
    const body = m.body ?? m.dataBody;
    const a = Buffer.alloc(4);
    a.writeUInt32BE(header.length);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(body.length));
    h.update(a).update(header).update(b).update(body);
  }
  return h.digest("hex");
}

/** The Merkle root merkleIntegrity computes for these messages (app_metadata empty), as hex. */
function merkleRootOf(messages) {
  if (!security) return undefined;
  const b = new security.MerkleBuilder();
  for (const m of messages) b.appendLeafHash(security.flightDataLeafHash({ header: m.header, body: m.body, appMetadata: NONE }));
  return b.root().toString("hex");
}

const flightData = (m, path, appMetadata = NONE) => ({
  flightDescriptor: path ? { type: 1, cmd: NONE, path } : undefined,
  dataHeader: m.header,
  dataBody: m.body,
  appMetadata,
});

// ---------------------------------------------------------------------------------------------
// Calls, as promises.

const deadlineIn = (ms) => ({ deadline: Date.now() + ms });

function unary(client, method, request, options = deadlineIn(30_000)) {
  return new Promise((resolve, reject) => client[method](request, new grpc.Metadata(), options, (err, res) => (err ? reject(err) : resolve(res))));
}

async function serverStream(client, method, request, options = deadlineIn(30_000)) {
  const call = client[method](request, new grpc.Metadata(), options);
  const out = [];
  for await (const m of call) out.push(m);
  return out;
}

/** Puts messages (FlightData objects) with backpressure. */
function putData(client, data, options = deadlineIn(60_000)) {
  return new Promise((resolve, reject) => {
    const call = client.doPut(new grpc.Metadata(), options);
    let failed = false;
    call.on("data", () => undefined);
    call.on("error", (err) => {
      failed = true;
      reject(err);
    });
    call.on("end", () => failed || resolve());
    let i = 0;
    const more = () => {
      while (i < data.length && !failed) if (!call.write(data[i++])) return void call.once("drain", more);
      if (!failed) call.end();
    };
    more();
  });
}

async function action(client, type, body = NONE, options) {
  const results = await serverStream(client, "doAction", { type, body: typeof body === "string" ? Buffer.from(body) : body }, options);
  return results.map((r) => Buffer.from(r.body));
}

const codeName = (code) => (code === -1 ? "NO_STATUS" : typeof code === "number" ? grpc.status[code] ?? `CODE_${code}` : "NO_STATUS");

// ---------------------------------------------------------------------------------------------
// --serve: the server child. Composed the way a service would be, with every store operation
// behind a circuit breaker, load shedding, deadlines and (when available) Merkle integrity.

async function serve(options) {
  const maxMemoryBytes = options.maxMemoryBytes;
  // The server's own MemoryStore, configured by serverConfig, wrapped by the breaker.
  const breaker = resilience.circuitBreaker({ name: "store" });
  const parts = [
    serverConfig({ addr: "127.0.0.1:0", maxMessageBytes: 16 * MiB, maxMemoryBytes, enableGC: true, gcInterval: 30_000 }),
    resilience.guardedStore(breaker),
    breaker.parts,
    resilience.deadlines({ defaultMs: 60_000, maxMs: 600_000 }),
    resilience.concurrencyLimit({ global: 1024, perMethod: { doPut: 256 } }),
    resilience.putByteBudget({ perConnectionBytes: 512 * MiB }),
    resilience.memoryPressureGuard({ maxRssBytes: 8 * 1024 * MiB }),
  ];
  if (security) parts.push(security.merkleIntegrity());
  const server = createFlightServer(...parts);
  const { port } = await server.start();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.shutdown({ graceMs: 5000 }).then(
      () => {
        process.exit(0);
      },
      (err) => {
        process.stderr.write(`soak server: shutdown failed: ${err && err.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(`listening ${port} merkle=${security ? "yes" : "no"}\n`);
}

// --kill-client: starts a DoPut, says "streaming" once the server acknowledged the first batch,
// then sends up to 64 MiB more and waits, the put still open, to be killed.
function killClient(options) {
  const client = connect(options.port);
  const messages = makeFlight(1, 65_536, options.seed);
  const call = client.doPut(new grpc.Metadata());
  call.on("error", (err) => process.stdout.write(`error ${err.code}\n`));
  call.once("data", () => {
    process.stdout.write("streaming\n");
    // Up to 64 MiB, then the stream stays open, idle, until the kill.
    let sent = 0;
    const more = () => {
      while (sent < 64 * MiB) {
        sent += messages[1].header.length + messages[1].body.length;
        if (!call.write(flightData(messages[1], undefined))) return void call.once("drain", more);
      }
    };
    more();
  });
  call.write(flightData(messages[0], options.path));
  call.write(flightData(messages[1], undefined, Buffer.from("ack")));
}

// ---------------------------------------------------------------------------------------------
// The driver.

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function startServer(maxMemoryBytes) {
  const child = track(spawn(process.execPath, [__filename, "--serve", JSON.stringify({ maxMemoryBytes })], { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 30 s:\n${out}${err}`)), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening (\d+) merkle=(yes|no)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), merkle: m[2] === "yes" });
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${signal ?? code}) before it started:\n${out}${err}`));
    });
  });
  return { child, ready, exited, stderr: () => err };
}

/**
 * The state of one soak run: the model of what the server must hold, the problems seen and
 * the bookkeeping of calls, with the helpers every step shares.
 */
function newRun(opts, server, port, merkle) {
  const rand = mulberry32(opts.seed);
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const run = { opts, server, port, merkle, rand, pick, modelBytes: 0, putCount: 0, startedAt: Date.now(), serverDied: undefined, stopping: false };
  server.exited.then((how) => {
    if (!run.stopping) run.serverDied = how;
  });

  // ---- the model of what the server must hold
  const flights = new Map(); // key -> { path, rows, bytes, digest, root, readers, deleting }
  const putting = new Map(); // key -> { rows, digest } : normal puts in progress
  const uncertain = new Map(); // key -> { rows, digest }: the client saw an error it cannot place
  const mustNotExist = new Map(); // key -> why (malformed, cancelled mid-stream, killed, refused)
  const deletedAt = new Map(); // key -> time the delete was confirmed

  // Data loss and integrity failures, one entry per kind and flight (seen `count` times).
  const violationsByKey = new Map();
  const violate = (kind, key, detail) => {
    const id = `${kind}\n${key}`;
    const v = violationsByKey.get(id);
    if (v) v.count++;
    else violationsByKey.set(id, { kind, key, detail, atMs: Date.now() - run.startedAt, count: 1 });
  };

  // ---- bookkeeping of calls
  const ops = new Map(); // op -> { calls, ok, latencies: [], codes: {}, unexpected: {} }
  const record = (op, ms, code, expected) => {
    let o = ops.get(op);
    if (!o) ops.set(op, (o = { calls: 0, ok: 0, latencies: [], codes: {}, unexpected: {} }));
    o.calls++;
    if (code === 0) {
      o.ok++;
      o.latencies.push(ms);
    } else {
      const name = codeName(code);
      o.codes[name] = (o.codes[name] ?? 0) + 1;
      if (!expected) o.unexpected[name] = (o.unexpected[name] ?? 0) + 1;
    }
  };
  /** Runs a call, timing it; `expectedCodes` are outcomes that are not errors of the server. */
  const timed = async (op, fn, expectedCodes = []) => {
    const t = performance.now();
    try {
      const value = await fn();
      record(op, performance.now() - t, 0, true);
      return { ok: true, value };
    } catch (err) {
      const code = typeof err?.code === "number" ? err.code : undefined;
      record(op, performance.now() - t, code ?? -1, code !== undefined && expectedCodes.includes(code));
      return { ok: false, code, err };
    }
  };

  const keyOf = (path) => path.join("/");
  /** A flight that must not exist, seen: "committed-after-cancel" for a put the client cancelled, else "phantom". */
  const phantomKind = (key) => (mustNotExist.get(key) === "put cancelled mid-stream" ? "committed-after-cancel" : "phantom");
  const newPath = (worker) => [PREFIX, `w${worker}`, `f${run.putCount++}`];

  return Object.assign(run, { flights, putting, uncertain, mustNotExist, deletedAt, violationsByKey, violate, ops, record, timed, keyOf, phantomKind, newPath });
}

/** The normal operations of the load: put, get, list, actions and deletes, checked against the model. */
function normalOperations(run) {
  const { rand, pick, merkle, flights, putting, uncertain, mustNotExist, deletedAt, violate, timed, keyOf, phantomKind, newPath } = run;
  async function opPut(client, worker) {
    const path = newPath(worker);
    const key = keyOf(path);
    const rows = pick(ROW_CHOICES);
    const batches = 1 + Math.floor(rand() * 8);
    const messages = makeFlight(batches, rows, Math.floor(rand() * 1e6));
    const entry = { path, rows: rows * batches, bytes: messages.reduce((n, m) => n + m.header.length + m.body.length, 0), digest: digestOf(messages), root: merkle ? merkleRootOf(messages) : undefined };
    putting.set(key, entry);
    const r = await timed("put", () => putData(client, messages.map((m, i) => flightData(m, i === 0 ? path : undefined))), [grpc.status.RESOURCE_EXHAUSTED]);
    putting.delete(key);
    if (r.ok) {
      flights.set(key, { ...entry, readers: 0, deleting: false });
      run.modelBytes += entry.bytes;
    } else if (r.code === grpc.status.RESOURCE_EXHAUSTED || r.code === grpc.status.INVALID_ARGUMENT) {
      mustNotExist.set(key, `put refused with ${codeName(r.code)}`);
    } else {
      uncertain.set(key, entry);
    }
  }

  const readable = () => {
    const candidates = [];
    for (const [key, f] of flights) if (!f.deleting) candidates.push(key);
    return candidates.length ? pick(candidates) : undefined;
  };

  async function opGet(client) {
    const key = readable();
    if (!key) return opList(client);
    const f = flights.get(key);
    f.readers++;
    try {
      const info = await timed("getFlightInfo", () => unary(client, "getFlightInfo", { type: 1, cmd: NONE, path: f.path }));
      if (!info.ok) {
        if (info.code === grpc.status.NOT_FOUND) violate("lost", key, "GetFlightInfo: NOT_FOUND for a stored flight");
        return;
      }
      if (Number(info.value.totalRecords) !== f.rows) violate("changed", key, `GetFlightInfo: ${info.value.totalRecords} rows, put ${f.rows}`);
      const got = await timed("doGet", () => serverStream(client, "doGet", info.value.endpoint[0].ticket));
      if (!got.ok) {
        if (got.code === grpc.status.NOT_FOUND) violate("lost", key, "DoGet: NOT_FOUND for a stored flight");
        return;
      }
      if (digestOf(got.value) !== f.digest) violate("changed", key, "DoGet: the messages differ from what was put");
    } finally {
      f.readers--;
    }
  }

  async function opList(client) {
    const startedList = Date.now();
    const r = await timed("listFlights", () => serverStream(client, "listFlights", { expression: Buffer.from(PREFIX) }));
    if (!r.ok) return;
    for (const info of r.value) {
      const key = keyOf(info.flightDescriptor?.path ?? []);
      const rows = Number(info.totalRecords);
      const known = flights.get(key) ?? putting.get(key) ?? uncertain.get(key);
      if (known) {
        if (rows !== known.rows) violate("partial", key, `listed with ${rows} rows, put ${known.rows}`);
      } else if (mustNotExist.has(key)) {
        violate(phantomKind(key), key, `listed, yet ${mustNotExist.get(key)}`);
      } else if (deletedAt.has(key)) {
        if (deletedAt.get(key) < startedList) violate("resurrected", key, "listed after its delete was confirmed");
      } else {
        violate("unknown", key, "listed, but never put by this run");
      }
    }
  }

  async function opAction(client) {
    const which = rand();
    if (which < 0.5) await timed("action:ping", async () => void (await action(client, "ping")));
    else if (which < 0.8) await timed("action:stats", async () => void JSON.parse((await action(client, "stats"))[0].toString()));
    else await timed("listActions", () => serverStream(client, "listActions", {}));
  }

  async function opDelete(client) {
    const candidates = [];
    for (const [key, f] of flights) if (!f.deleting && f.readers === 0) candidates.push(key);
    if (candidates.length === 0) return opPut(client, 0);
    const key = pick(candidates);
    const f = flights.get(key);
    f.deleting = true;
    const r = await timed("action:delete", () => action(client, "delete", JSON.stringify({ path: f.path })));
    if (r.ok) {
      flights.delete(key);
      run.modelBytes -= f.bytes;
      deletedAt.set(key, Date.now());
    } else if (r.code === grpc.status.NOT_FOUND) {
      violate("lost", key, "delete: NOT_FOUND for a stored flight");
      flights.delete(key);
      run.modelBytes -= f.bytes;
    } else {
      f.deleting = false; // unknown outcome: keep it, verification will tell
      uncertain.set(key, f);
      flights.delete(key);
      run.modelBytes -= f.bytes;
    }
  }

  return { opPut, opGet, opList, opAction, opDelete, readable };
}

/** The injected failures: malformed puts, cancelled puts and gets, 1 ms deadlines, killed clients. */
function injectedFailures(run, { readable }) {
  const { rand, pick, port, flights, mustNotExist, violate, record, timed, keyOf, newPath } = run;
  const injected = {};
  const inject = (kind) => (injected[kind] = (injected[kind] ?? 0) + 1);

  async function malformedPut(client, worker) {
    const path = newPath(worker);
    const key = keyOf(path);
    const [schema, batch] = makeFlight(1, pick(ROW_CHOICES), 1);
    const variants = [
      ["truncated header", [schema, { header: batch.header.subarray(0, batch.header.length - 9), body: batch.body }]],
      ["short body", [schema, { header: batch.header, body: batch.body.subarray(0, Math.max(0, batch.body.length - 8)) }]],
      ["batch before schema", [batch, schema]],
      ["garbage header", [schema, { header: crypto.randomBytes(64), body: batch.body }]],
      ["second schema", [schema, batch, schema]],
    ];
    const [what, messages] = pick(variants);
    inject(`malformed put (${what})`);
    mustNotExist.set(key, `malformed put (${what})`);
    const r = await timed("injected:malformed-put", () => putData(client, messages.map((m, i) => flightData(m, i === 0 ? path : undefined))), [grpc.status.INVALID_ARGUMENT]);
    if (r.ok) violate("accepted-malformed", key, `a malformed put (${what}) was accepted`);
  }

  async function cancelledPut(client, worker) {
    inject("cancelled put");
    const path = newPath(worker);
    const key = keyOf(path);
    mustNotExist.set(key, "put cancelled mid-stream");
    const messages = makeFlight(4, 10_000, 2);
    const t = performance.now();
    await new Promise((resolve) => {
      const call = client.doPut(new grpc.Metadata(), deadlineIn(30_000));
      let done = false;
      const finish = (code) => {
        if (done) return;
        done = true;
        record("injected:cancelled-put", performance.now() - t, code, code === grpc.status.CANCELLED);
        resolve();
      };
      call.on("error", (err) => finish(err.code));
      call.on("end", () => finish(0));
      call.once("data", () => {
        call.write(flightData(messages[2]));
        call.cancel();
      });
      call.write(flightData(messages[0], path));
      call.write(flightData(messages[1], undefined, Buffer.from("ack")));
    });
  }

  async function cancelledGet(client) {
    const key = readable();
    if (!key) return tinyDeadline(client);
    inject("cancelled get");
    const f = flights.get(key);
    f.readers++;
    try {
      const info = await timed("getFlightInfo", () => unary(client, "getFlightInfo", { type: 1, cmd: NONE, path: f.path }));
      if (!info.ok) return;
      const t = performance.now();
      await new Promise((resolve) => {
        const call = client.doGet(info.value.endpoint[0].ticket, new grpc.Metadata(), deadlineIn(30_000));
        let done = false;
        const finish = (code) => {
          if (done) return;
          done = true;
          record("injected:cancelled-get", performance.now() - t, code, code === grpc.status.CANCELLED);
          resolve();
        };
        call.once("data", () => call.cancel());
        call.on("data", () => undefined);
        call.on("error", (err) => finish(err.code));
        call.on("end", () => finish(0));
      });
    } finally {
      f.readers--;
    }
  }

  async function tinyDeadline(client) {
    inject("1 ms deadline");
    const which = rand() < 0.5 ? () => serverStream(client, "listFlights", { expression: NONE }, deadlineIn(1)) : () => action(client, "stats", NONE, deadlineIn(1));
    await timed("injected:1ms-deadline", which, [grpc.status.DEADLINE_EXCEEDED]);
  }

  let killing = false;
  async function killedClient(client, worker) {
    if (killing) return tinyDeadline(client);
    killing = true;
    inject("killed client");
    const path = newPath(worker);
    const key = keyOf(path);
    mustNotExist.set(key, "client killed mid-DoPut");
    const t = performance.now();
    try {
      const child = track(spawn(process.execPath, [__filename, "--kill-client", JSON.stringify({ port, path, seed: run.putCount })], { stdio: ["ignore", "pipe", "ignore"] }));
      const exited = new Promise((resolve) => child.on("exit", resolve));
      // "streaming": the server acknowledged the first batch; "error <code>": the put failed first.
      const outcome = await new Promise((resolve) => {
        let out = "";
        const timer = setTimeout(() => resolve({ streaming: false, code: -1 }), 15_000);
        child.stdout.on("data", (d) => {
          out += d;
          const failed = /error (\d+)/.exec(out);
          const streamingAt = out.indexOf("streaming");
          if (streamingAt >= 0 && (!failed || streamingAt < failed.index)) {
            clearTimeout(timer);
            resolve({ streaming: true, code: 0 });
          } else if (failed) {
            clearTimeout(timer);
            resolve({ streaming: false, code: Number(failed[1]) });
          }
        });
        child.on("exit", () => {
          clearTimeout(timer);
          resolve({ streaming: false, code: -1 });
        });
      });
      if (outcome.streaming) await new Promise((r) => setTimeout(r, Math.floor(rand() * 200)));
      child.kill("SIGKILL");
      await exited;
      record("injected:killed-client", performance.now() - t, outcome.code, outcome.streaming);
    } finally {
      killing = false;
    }
  }

  return { injected, malformedPut, cancelledPut, cancelledGet, tinyDeadline, killedClient };
}

/** Picks each worker's next operation: an injected failure at `failureRate`, else a weighted normal one. */
function operationChooser(run, { opPut, opGet, opList, opAction, opDelete }, { malformedPut, cancelledPut, cancelledGet, tinyDeadline, killedClient }) {
  const { opts, rand, pick } = run;
  const kinds = { malformed: [malformedPut], "cancel-put": [cancelledPut], "cancel-get": [cancelledGet], deadline: [tinyDeadline], kill: [killedClient, killedClient] };
  const injections = opts.inject.flatMap((k) => kinds[k]);
  const chooseOp = () => {
    if (injections.length > 0 && rand() < opts.failureRate) return pick(injections);
    const full = run.modelBytes / opts.maxMemoryBytes;
    const weights = [
      [opPut, full < 0.5 ? 30 : 12],
      [opGet, 25],
      [opList, 10],
      [opAction, 15],
      [opDelete, full > 0.3 ? 30 : 10],
    ];
    let r = rand() * weights.reduce((n, [, w]) => n + w, 0);
    for (const [fn, w] of weights) if ((r -= w) < 0) return fn;
    return opAction;
  };
  return chooseOp;
}

/** Runs the load for `durationMs` on `opts.concurrency` clients, sampling the server's stats. */
async function runLoad(run, chooseOp, durationMs) {
  const { opts, port, ops, flights, violationsByKey, violate } = run;
  run.startedAt = Date.now();
  const { startedAt } = run;
  const endAt = startedAt + durationMs;
  const clients = Array.from({ length: opts.concurrency }, () => connect(port));
  const control = connect(port);

  // ---- server figures over time, through the stats action
  const samples = [];
  const sampleEvery = Math.max(1000, Math.min(10_000, durationMs / 30));
  const sample = async () => {
    try {
      const s = JSON.parse((await action(control, "stats", NONE, deadlineIn(10_000)))[0].toString());
      samples.push({ atMs: Date.now() - startedAt, rss: s.memory.rss, used: s.memory.used, reserved: s.memory.reserved, flights: s.flights });
    } catch {
      samples.push({ atMs: Date.now() - startedAt, rss: undefined });
    }
  };
  await sample();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await new Promise((r) => setTimeout(r, sampleEvery - ((Date.now() - startedAt) % sampleEvery)));
      if (sampling) await sample();
    }
  })();
  const progress = setInterval(() => {
    const calls = [...ops.values()].reduce((n, o) => n + o.calls, 0);
    process.stderr.write(`soak: ${((Date.now() - startedAt) / 1000).toFixed(0)} s, ${calls} calls, ${flights.size} flights held, ${violationsByKey.size} problems\n`);
  }, 15_000);

  await Promise.all(
    clients.map(async (client, worker) => {
      while (Date.now() < endAt && run.serverDied === undefined) {
        const op = chooseOp();
        try {
          await op(client, worker);
        } catch (err) {
          violate("driver-error", String(err && err.message), String(err && err.stack ? err.stack : err));
        }
      }
    }),
  );
  sampling = false;
  clearInterval(progress);
  await sampler.catch(() => undefined);
  const loadMs = Date.now() - startedAt;
  return { clients, control, samples, sample, loadMs };
}

/** After the load: every flight the model holds is listed, described and read back intact, and nothing else is stored. */
async function verifyAtEnd(run, control, sample) {
  const { server, merkle, flights, uncertain, mustNotExist, deletedAt, violate, keyOf, phantomKind } = run;
  let verification = { checked: 0, merkleChecked: 0, listed: 0 };
  if (run.serverDied === undefined) {
    await sample();
    let last;
    const released = await (async () => {
      for (let i = 0; i < 100; i++) {
        last = JSON.parse((await action(control, "stats"))[0].toString());
        if (last.memory.reserved === 0) return true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return false;
    })();
    if (!released) {
      const puts = last.concurrency?.byMethod?.doPut?.inFlight;
      violate("leak", "memory.reserved", `${last.memory.reserved} bytes still reserved 10 s after the load stopped; DoPuts in flight: ${puts}; upload budget: ${JSON.stringify(last.putByteBudget)}`);
    }
    const listed = new Map();
    for (const info of await serverStream(control, "listFlights", { expression: Buffer.from(PREFIX) }, deadlineIn(120_000))) listed.set(keyOf(info.flightDescriptor.path), info);
    verification.listed = listed.size;
    for (const [key, f] of flights) {
      verification.checked++;
      if (!listed.has(key)) {
        violate("lost", key, "not listed at the end");
        continue;
      }
      let info;
      try {
        info = await unary(control, "getFlightInfo", { type: 1, cmd: NONE, path: f.path }, deadlineIn(60_000));
      } catch (err) {
        violate("lost", key, `GetFlightInfo at the end: ${codeName(err.code)}`);
        continue;
      }
      if (Number(info.totalRecords) !== f.rows) violate("changed", key, `${info.totalRecords} rows at the end, put ${f.rows}`);
      if (merkle) {
        const m = security.readMerkleMetadata(info);
        if (!m) violate("changed", key, "no Merkle summary in FlightInfo.app_metadata");
        else if (m.root !== f.root) violate("changed", key, "Merkle root differs from the one computed at put time");
        else verification.merkleChecked++;
      }
      try {
        const got = await serverStream(control, "doGet", info.endpoint[0].ticket, deadlineIn(60_000));
        if (digestOf(got) !== f.digest) violate("changed", key, "SHA-256 of the messages differs from the one computed at put time");
      } catch (err) {
        violate("lost", key, `DoGet at the end: ${codeName(err.code)}`);
      }
    }
    let uncertainStored = 0;
    for (const [key, info] of listed) {
      if (flights.has(key)) continue;
      if (uncertain.has(key)) {
        const u = uncertain.get(key);
        if (Number(info.totalRecords) !== u.rows) violate("partial", key, `stored after an unclear put with ${info.totalRecords} of ${u.rows} rows`);
        else uncertainStored++;
      } else if (mustNotExist.has(key)) violate(phantomKind(key), key, `stored, yet ${mustNotExist.get(key)}`);
      else if (deletedAt.has(key)) violate("resurrected", key, "stored after its delete was confirmed");
      else violate("unknown", key, "stored, but never put by this run");
    }
    verification.uncertainStored = uncertainStored;
  } else {
    violate("server-died", "", `the server exited (${run.serverDied}) during the run:\n${server.stderr()}`);
  }
  return verification;
}

/** Closes the clients and stops the server with SIGTERM; says whether it exited cleanly. */
async function shutDown(run, clients, control) {
  const { server } = run;
  run.stopping = true;
  for (const c of [...clients, control]) c.close();
  let shutdown = "not running";
  if (run.serverDied === undefined) {
    server.child.kill("SIGTERM");
    const how = await Promise.race([server.exited, new Promise((r) => setTimeout(() => r("timeout"), 15_000))]);
    shutdown = how === 0 ? "clean (exit 0 after SIGTERM)" : `unclean: ${how}`;
    if (how === "timeout") server.child.kill("SIGKILL");
  }
  return shutdown;
}

/** One soak run: start the server, drive the load with injected failures, verify, shut down. */
async function drive(opts) {
  const server = startServer(opts.maxMemoryBytes);
  const { port, merkle } = await server.ready;
  const run = newRun(opts, server, port, merkle);
  const normal = normalOperations(run);
  const failures = injectedFailures(run, normal);
  const chooseOp = operationChooser(run, normal, failures);
  const { clients, control, samples, sample, loadMs } = await runLoad(run, chooseOp, opts.minutes * 60_000);
  const verification = await verifyAtEnd(run, control, sample);
  const shutdown = await shutDown(run, clients, control);
  const violations = [...run.violationsByKey.values()];
  return { opts, port, merkle, loadMs, ops: run.ops, samples, injected: failures.injected, violations, verification, shutdown, unresolved: { uncertain: run.uncertain.size, mustNotExist: run.mustNotExist.size }, heldAtEnd: run.flights.size };
}

// ---------------------------------------------------------------------------------------------
// The report.

function report(r) {
  const lines = [];
  const mib = (n) => (n === undefined ? "   ?" : `${(n / MiB).toFixed(1)}`);
  const all = [];
  let calls = 0;
  let errors = 0;
  let unexpected = 0;
  const codes = {};
  const unexpectedCodes = {};
  for (const [op, o] of r.ops) {
    calls += o.calls;
    if (!op.startsWith("injected:")) all.push(...o.latencies);
    for (const [c, n] of Object.entries(o.codes)) {
      codes[c] = (codes[c] ?? 0) + n;
      errors += n;
    }
    for (const [c, n] of Object.entries(o.unexpected)) {
      unexpectedCodes[c] = (unexpectedCodes[c] ?? 0) + n;
      unexpected += n;
    }
  }
  all.sort((a, b) => a - b);
  const ms = (v) => (Number.isNaN(v) ? "-" : v.toFixed(1));
  lines.push(`BlackIce Flight soak: ${(r.loadMs / 60_000).toFixed(2)} min of load, ${r.opts.concurrency} clients, failure rate ${r.opts.failureRate}, store limit ${mib(r.opts.maxMemoryBytes)} MiB, seed ${r.opts.seed}`);
  lines.push(`integrity check: ${r.merkle ? "Merkle root (FlightInfo.app_metadata, merkleIntegrity) and SHA-256 of DoGet" : "SHA-256 of DoGet (merkleIntegrity not available)"}`);
  lines.push("");
  lines.push(`calls: ${calls} (${(calls / (r.loadMs / 1000)).toFixed(0)}/s), errors: ${errors}, of which unexpected: ${unexpected}`);
  lines.push(`errors by code: ${Object.keys(codes).length ? Object.entries(codes).map(([c, n]) => `${c} ${n}`).join(", ") : "none"}`);
  lines.push(`unexpected errors by code: ${Object.keys(unexpectedCodes).length ? Object.entries(unexpectedCodes).map(([c, n]) => `${c} ${n}`).join(", ") : "none"}`);
  lines.push(`latency of successful calls, injected failures left out (ms): p50 ${ms(percentile(all, 50))}, p99 ${ms(percentile(all, 99))}, max ${ms(all[all.length - 1] ?? NaN)}`);
  lines.push("");
  lines.push("operation                 calls      ok   p50 ms   p99 ms  errors by code (* = unexpected)");
  for (const [op, o] of [...r.ops].sort((a, b) => a[0].localeCompare(b[0]))) {
    const l = o.latencies.slice().sort((a, b) => a - b);
    const errs = Object.entries(o.codes).map(([c, n]) => `${c} ${n}${o.unexpected[c] ? ` (*${o.unexpected[c]})` : ""}`).join(", ");
    lines.push(`${op.padEnd(24)} ${String(o.calls).padStart(6)} ${String(o.ok).padStart(7)} ${ms(percentile(l, 50)).padStart(8)} ${ms(percentile(l, 99)).padStart(8)}  ${errs}`);
  }
  lines.push("");
  lines.push(`injected failures: ${Object.keys(r.injected).length ? Object.entries(r.injected).map(([k, n]) => `${k} ${n}`).join(", ") : "none"}`);
  lines.push("");
  lines.push("server over time (stats action):   t s   RSS MiB   store MiB   reserved MiB   flights");
  for (const s of r.samples) {
    lines.push(`${" ".repeat(35)}${(s.atMs / 1000).toFixed(0).padStart(5)} ${mib(s.rss).padStart(9)} ${mib(s.used).padStart(11)} ${mib(s.reserved).padStart(14)} ${String(s.flights ?? "?").padStart(9)}`);
  }
  const rss = r.samples.map((s) => s.rss).filter((v) => v !== undefined);
  if (rss.length) lines.push(`RSS: first ${mib(rss[0])} MiB, max ${mib(Math.max(...rss))} MiB, last ${mib(rss[rss.length - 1])} MiB`);
  lines.push("");
  const v = r.verification;
  lines.push(`verification: ${v.checked} flights held by the model checked (${v.merkleChecked} by Merkle root), ${v.listed} listed by the server, ${v.uncertainStored ?? 0} stored after a put with an unclear outcome (checked whole)`);
  lines.push(`server shutdown: ${r.shutdown}`);
  const lost = r.violations.filter((x) => LOSS_KINDS.includes(x.kind));
  const byKind = {};
  for (const x of r.violations) byKind[x.kind] = (byKind[x.kind] ?? 0) + 1;
  const kinds = Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(", ");
  if (lost.length > 0) lines.push(`DATA LOST: YES: ${lost.length} flights lost or changed. Problems: ${kinds}`);
  else lines.push(`data lost: no. Every flight the model holds was intact at the end${r.violations.length ? "." : ", and no partial, phantom or resurrected flight was ever seen."}`);
  if (r.violations.length > 0) {
    if (lost.length === 0) lines.push(`INTEGRITY PROBLEMS (no loss): ${kinds}`);
    for (const x of r.violations.slice(0, 20)) lines.push(`  ${x.kind} ${x.key}: ${x.detail}${x.count > 1 ? ` (seen ${x.count} times)` : ""}`);
    if (r.violations.length > 20) lines.push(`  ... and ${r.violations.length - 20} more (see --json)`);
    if (byKind["committed-after-cancel"]) {
      lines.push("  committed-after-cancel: a DoPut the client cancelled mid-stream (grpc-js call.cancel()) was committed: Node's http2");
      lines.push("  sends END_STREAM before RST_STREAM on cancel, and the server commits on the half-close (see docs/operations.md).");
    }
    if (byKind["driver-error"]) lines.push("  driver-error: a bug of the soak driver itself");
  }
  return lines.join("\n");
}

async function main() {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string", default: "1" },
      concurrency: { type: "string", default: "8" },
      "failure-rate": { type: "string", default: "0.05" },
      "max-memory": { type: "string", default: "256MiB" },
      seed: { type: "string" },
      inject: { type: "string", default: "malformed,cancel-put,cancel-get,deadline,kill" },
      json: { type: "string" },
      serve: { type: "string" },
      "kill-client": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.serve) return serve(JSON.parse(values.serve));
  if (values["kill-client"]) return killClient(JSON.parse(values["kill-client"]));
  if (values.help) {
    process.stdout.write(fs.readFileSync(__filename, "utf8").split("\n").slice(1, 28).map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
    return;
  }
  const number = (name, v, min, max) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const opts = {
    minutes: number("minutes", values.minutes, 0.01, 10_000),
    concurrency: Math.floor(number("concurrency", values.concurrency, 1, 256)),
    failureRate: number("failure-rate", values["failure-rate"], 0, 1),
    maxMemoryBytes: parseSize(values["max-memory"], "--max-memory"),
    seed: values.seed !== undefined ? Math.floor(number("seed", values.seed, 0, 2 ** 32 - 1)) : Date.now() % 2 ** 32,
    inject: values.inject.split(",").map((k) => k.trim()).filter((k) => k.length > 0 && k !== "none"),
  };
  const known = ["malformed", "cancel-put", "cancel-get", "deadline", "kill"];
  const bad = opts.inject.filter((k) => !known.includes(k));
  if (bad.length) throw new Error(`--inject: unknown kind ${bad.join(", ")}; kinds: ${known.join(", ")} (or none)`);
  process.stderr.write(`soak: ${opts.minutes} min, ${opts.concurrency} clients, failure rate ${opts.failureRate} (${opts.inject.join(", ") || "none"}), seed ${opts.seed}\n`);
  const result = await drive(opts);
  const text = report(result);
  process.stdout.write(`${text}\n`);
  if (values.json) {
    const ops = Object.fromEntries(
      [...result.ops].map(([op, o]) => {
        const l = o.latencies.slice().sort((a, b) => a - b);
        return [op, { calls: o.calls, ok: o.ok, p50Ms: percentile(l, 50), p99Ms: percentile(l, 99), errors: o.codes, unexpected: o.unexpected }];
      }),
    );
    fs.writeFileSync(values.json, JSON.stringify({ ...result, ops }, null, 2));
  }
  const dataLost = result.violations.some((v) => LOSS_KINDS.includes(v.kind));
  process.exit(dataLost ? 1 : result.violations.length > 0 ? 3 : 0);
}

main().catch((err) => {
  process.stderr.write(`soak: ${(err && err.stack) || err}\n`);
  process.exit(2);
});
