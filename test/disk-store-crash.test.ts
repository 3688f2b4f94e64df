import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DescriptorType, DiskStore, type StoredMessage } from "@blackice/flight-core";
import { run, venvPython } from "./helpers/python";

// The crash test of the disk store (issue 10): a child process floods a DiskStore with puts and
// appends, and is killed with SIGKILL mid-flight, round after round. After each kill the store
// is opened again, and every put acknowledged before the kill must be there, byte for byte; no
// flight may hold part of a put; the figures must match the files. Needs the built core
// (`npx tsc -b`), as the CLI tests need the built CLI.

const FLOOD = path.resolve(__dirname, "helpers/disk-put-flood.js");
const ROUNDS = 12;

interface Ack {
  key: string;
  messages: number;
  digest: string;
}

function digestOf(messages: StoredMessage[]): string {
  const h = createHash("sha256");
  for (const m of messages) {
    h.update(m.header);
    h.update(m.body as Uint8Array);
    h.update(m.appMetadata);
  }
  return h.digest("hex");
}

/** Runs the flood until it is ready, lets it put for `ms`, kills it; returns what it acknowledged. */
async function floodAndKill(dir: string, round: number, fsync: string, ms: number): Promise<Ack[]> {
  const child = spawn(process.execPath, [FLOOD, dir, String(round), fsync], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (out.startsWith("ready\n")) {
          clearInterval(check);
          resolve();
        }
      }, 5);
      void exited.then((code) => {
        clearInterval(check);
        reject(new Error(`the flood exited early (${code}): ${err}`));
      });
    });
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    child.kill("SIGKILL");
  }
  await exited;
  if (err.length > 0) throw new Error(`the flood failed: ${err}`);
  // Only whole lines: a line cut by the kill was not an acknowledgement the parent received.
  return out
    .split("\n")
    .slice(0, -1)
    .filter((l) => l.startsWith("ack "))
    .map((l) => {
      const [, key, n, digest] = l.split(" ");
      return { key: key!, messages: Number(n), digest: digest! };
    });
}

describe("DiskStore crash safety (SIGKILL mid-put)", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "disk-crash-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`keeps every acknowledged put and no partial one, over ${ROUNDS} kills`, async () => {
    const acked = new Map<string, Ack>();
    let totalAcks = 0;
    // Leftovers recovery cleaned up: proof the kills landed mid-put, not between puts.
    let interrupted = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const fsync = round % 2 === 0 ? "always" : "never";
      const acks = await floodAndKill(dir, round, fsync, 150 + ((round * 97) % 400));
      totalAcks += acks.length;
      // The last ack of a key is the state it must have at least (the shared flight grows).
      for (const a of acks) acked.set(a.key, a);

      const store = new DiskStore({ dir, fsync: "never", enableGC: false });
      try {
        for (const a of acked.values()) {
          const flight = await store.get({ type: DescriptorType.PATH, path: a.key.slice(2).split("/"), cmd: new Uint8Array() });
          expect(flight).toBeDefined();
          const messages: StoredMessage[] = [];
          for await (const m of flight!.messages()) messages.push(m);
          // An append may have committed after its ack was cut off: the acked prefix must match.
          expect(messages.length).toBeGreaterThanOrEqual(a.messages);
          expect(digestOf(messages.slice(0, a.messages))).toBe(a.digest);
        }
        // No flight holds part of a put: its batches' "put:j/k" labels come in whole groups.
        let flights = 0;
        let rows = 0;
        for await (const f of store.list()) {
          flights++;
          rows += f.totalRecords;
          const labels: string[] = [];
          for await (const m of f.messages()) labels.push(new TextDecoder().decode(m.appMetadata));
          for (let i = 0; i < labels.length; ) {
            const [, j, k] = /^[\d.]+:(\d+)\/(\d+)$/.exec(labels[i]!)!.map(Number);
            expect(j).toBe(1);
            for (let n = 1; n <= k!; n++) expect(labels[i + n - 1]).toMatch(new RegExp(`:${n}/${k}$`));
            i += k!;
          }
        }
        // The figures match what is on disk.
        const manifests = fs.readdirSync(path.join(dir, "flights")).filter((n) => n.endsWith(".json"));
        expect(store.stats()).toMatchObject({ flights, rows });
        expect(manifests).toHaveLength(flights);
        expect(fs.readdirSync(path.join(dir, "tmp"))).toEqual([]);
        expect(store.recovery.damaged).toBe(0);
        interrupted += store.recovery.tempFilesRemoved + store.recovery.truncated + store.recovery.orphansRemoved;
      } finally {
        await store.close();
      }
    }
    expect(totalAcks).toBeGreaterThan(ROUNDS);
    expect(interrupted).toBeGreaterThan(0);

    // pyarrow reads every data file as it is, and finds the rows the store counts.
    const store = new DiskStore({ dir, fsync: "never", enableGC: false });
    const expected = store.stats().rows;
    await store.close();
    const script = [
      "import sys, glob, pyarrow.ipc as ipc",
      "rows = 0",
      "for f in glob.glob(sys.argv[1] + '/flights/*.arrows'):",
      "    with open(f, 'rb') as fh:",
      "        rows += ipc.open_stream(fh).read_all().num_rows",
      "print(rows)",
    ].join("\n");
    const result = await run(venvPython(), ["-c", script, dir], { timeoutMs: 60_000 });
    expect(result.stderr).toBe("");
    expect(Number(result.stdout.trim())).toBe(expected);
  }, 180_000);
});
