// A put flood against a DiskStore, for test/disk-store-crash.test.ts, which kills it with
// SIGKILL. Runs the built core (packages/core/dist). Usage:
//   node disk-put-flood.js DIR ROUND FSYNC
// After each commit resolves it prints one line (stdout to a pipe is synchronous on Linux):
//   ack KEY MESSAGES SHA256
// where MESSAGES is the flight's message count after the commit and SHA256 the digest of its
// messages (header, body, app_metadata of each, in order) up to that count.
"use strict";
const { createHash } = require("node:crypto");
const path = require("node:path");
const { tableFromArrays, tableToIPC } = require("apache-arrow");
const core = require(path.resolve(__dirname, "../../packages/core/dist/index.js"));

const [dir, round, fsync] = process.argv.slice(2);

/** The messages of a random table: its schema and its record batches. */
function messagesOfTable(rows, seed) {
  const ids = Int32Array.from({ length: rows }, (_, i) => seed * 1000 + i);
  const values = Float64Array.from({ length: rows }, (_, i) => Math.sin(seed + i));
  const ipc = tableToIPC(tableFromArrays({ id: ids, value: values }), "stream");
  return core.splitIpcStream(ipc).map(({ header, body }) => ({
    header,
    body,
    appMetadata: new Uint8Array(0),
    info: core.readMessageHeader(header, body),
    byteSize: header.byteLength + body.byteLength,
  }));
}

/** Running digests of the shared flight, which every round appends to. */
function digestOf(messages) {
  const h = createHash("sha256");
  for (const m of messages) {
    h.update(m.header);
    h.update(m.body);
    h.update(m.appMetadata);
  }
  return h.digest("hex");
}

async function main() {
  const store = core.diskStore({ dir, fsync, enableGC: false });
  // The shared flight's messages so far (as the store has them), to extend its digest.
  const shared = { type: core.DescriptorType.PATH, path: ["shared"], cmd: new Uint8Array() };
  const sharedSoFar = [];
  const existing = await store.get(shared);
  if (existing) for await (const m of existing.messages()) sharedSoFar.push(m);
  process.stdout.write("ready\n");
  for (let i = 0; ; i++) {
    const toShared = i % 3 === 0;
    const d = toShared ? shared : { type: core.DescriptorType.PATH, path: [`r${round}`, `f${i}`], cmd: new Uint8Array() };
    const k = 1 + (i % 4);
    const [schema, ...batches] = messagesOfTable(200 + ((i * 7919) % 5000), Number(round) * 100000 + i);
    const tx = await store.beginPut(d, schema);
    const put = [];
    for (let j = 0; j < k; j++) {
      // Each batch names its put and its place in it, so a check can tell a put is whole.
      const m = { ...batches[0], appMetadata: new TextEncoder().encode(`${round}.${i}:${j + 1}/${k}`) };
      await tx.append(m);
      put.push(m);
    }
    const flight = await tx.commit();
    const all = toShared ? sharedSoFar.concat(put) : put;
    if (toShared) sharedSoFar.push(...put);
    process.stdout.write(`ack ${flight.key} ${all.length} ${digestOf(all)}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
