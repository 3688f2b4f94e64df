// Fault: a put flood offering twice the memory cap from 16 concurrent clients, each on its
// own connection. The server runs in a child process, so that its RSS is its own, and the
// flooding clients in another, so that this process stays free to list, read and measure.
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import {
  ROOT,
  codeOf,
  connect,
  get,
  killHard,
  listPaths,
  makeFlight,
  pathDescriptor,
  ping,
  put,
  sameMessage,
  serverStream,
  sleep,
  spawnFixtureServer,
  stats,
  unary,
  type ChildServer,
  type Client,
  type DataLike,
  type FlightInfoLike,
} from "./helpers";

const MiB = 2 ** 20;
const CAP = 64 * MiB;
const CLIENTS = 16;
const PUTS_PER_CLIENT = 4;
const BATCHES = 4; // 4 × 512 KiB: 2 MiB per flight; 16 × 4 × 2 MiB = 128 MiB offered = 2 × CAP
/**
 * V8 collects ArrayBuffers (the bytes of refused puts and of grpc-js's message assembly)
 * only once 64 MiB of them accumulated since the last collection (its external-memory soft
 * limit), and freed memory is not always handed back to the OS. The RSS bound allows for
 * that much garbage on top of cap + 10 %; the live memory is checked against cap + 10 % alone.
 */
const GC_SLACK = 64 * MiB;

interface Outcome {
  name: string;
  rows: number;
  bytes: number;
  outcome: "ok" | number | string;
  sha256: string;
}

interface Memory {
  rss: number;
  arrayBuffers: number;
  peakRss: number;
  gcExposed: boolean;
}

async function memory(client: Client, what = ""): Promise<Memory> {
  const [r] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "test.memory", body: Buffer.from(what) });
  return JSON.parse(Buffer.from(r.body).toString("utf8"));
}

/** SHA-256 as fixtures/flight-client.js computes it at put time. */
function digestOf(messages: DataLike[]): string {
  const h = createHash("sha256");
  for (const m of messages) {
    const a = Buffer.alloc(4);
    a.writeUInt32BE(m.dataHeader.length);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(m.dataBody.length));
    h.update(a).update(m.dataHeader).update(b).update(m.dataBody);
  }
  return h.digest("hex");
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

describe("a put flood at twice the memory cap", () => {
  let server: ChildServer | undefined;
  let flooder: ReturnType<typeof spawn> | undefined;
  const clients: Client[] = [];

  afterAll(async () => {
    for (const c of clients) c.close();
    flooder?.kill("SIGKILL");
    await killHard(server);
  });

  it("refuses with RESOURCE_EXHAUSTED, never lists a partial flight, keeps serving reads, stays within memory", async () => {
    server = await spawnFixtureServer({ config: { maxMemoryBytes: CAP, maxMessageBytes: 8 * MiB, enableGC: false } }, ["--expose-gc"]);
    const control = connect(server.port);
    const reader = connect(server.port);
    clients.push(control, reader);

    // A flight to read during the flood, stored before the baseline is taken.
    const readMessages = makeFlight(2, 65_536, 999);
    await put(control, ["read-me"], readMessages);
    const readInfo = await unary<FlightInfoLike>(control, "getFlightInfo", pathDescriptor("read-me"));
    for (let i = 0; i < 3; i++) await get(reader, readInfo.endpoint[0].ticket);

    // The flooder makes its data, then waits for the go.
    flooder = spawn(process.execPath, [path.join(__dirname, "fixtures/flood.js"), JSON.stringify({ port: server.port, clients: CLIENTS, puts: PUTS_PER_CLIENT, batches: BATCHES })], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    let floodOut = "";
    flooder.stdout!.on("data", (d: Buffer) => (floodOut += d.toString()));
    const floodDone = new Promise<void>((resolve, reject) => {
      flooder!.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`flooder exited with ${code}:\n${floodOut}`))));
    });
    while (!floodOut.includes("ready\n")) await sleep(20);

    await memory(control, "gc");
    const baseline = (await stats(control)).memory.rss;
    await memory(control, "reset-peak");

    // ---- the flood, with a lister, a reader and an RSS poller (the stats action) beside it
    let flooding = true;
    const partial: string[] = [];
    let listings = 0;
    const expectedRows = (key: string) => {
      const c = /^flood\/c(\d+)\/p\d+$/.exec(key);
      return c ? BATCHES * (65_536 - Number(c[1]) * 16) : undefined;
    };
    const lister = (async () => {
      while (flooding) {
        for (const info of await listPaths(control)) {
          const key = (info.flightDescriptor?.path ?? []).join("/");
          if (key !== "read-me" && info.totalRecords !== expectedRows(key)) partial.push(`${key}: ${info.totalRecords} rows`);
        }
        listings++;
        await sleep(5);
      }
    })();
    let reads = 0;
    const readFailures: string[] = [];
    const readerLoop = (async () => {
      while (flooding) {
        try {
          const got = await get(reader, readInfo.endpoint[0].ticket, { deadline: Date.now() + 20_000 });
          if (got.length !== readMessages.length || !got.every((m, i) => sameMessage(m, readMessages[i]))) readFailures.push("DoGet returned other bytes");
          if ((await ping(reader, { deadline: Date.now() + 20_000 })) !== "pong") readFailures.push("ping answered something else");
          reads++;
        } catch (err) {
          readFailures.push(String(err));
        }
      }
    })();
    const rssSamples: number[] = [];
    const poller = (async () => {
      while (flooding) {
        rssSamples.push((await stats(control)).memory.rss);
        await sleep(5);
      }
    })();

    const started = Date.now();
    flooder.stdin!.write("go\n");
    await floodDone;
    const floodMs = Date.now() - started;
    flooding = false;
    await Promise.all([lister, readerLoop, poller]);

    const final = await stats(control);
    const after = await memory(control);
    // Backing stores are released by a sweeper after the collection: collect, wait, collect again.
    await memory(control, "gc");
    await sleep(200);
    const afterGc = await memory(control, "gc");
    const peak = Math.max(after.peakRss, ...rssSamples, final.memory.rss);
    const outcomes: Outcome[] = floodOut
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    const ok = outcomes.filter((o) => o.outcome === "ok");
    const refused = outcomes.filter((o) => o.outcome !== "ok");
    const offered = outcomes.reduce((n, o) => n + o.bytes, 0);
    process.stdout.write(
      `put flood: ${outcomes.length} puts (${mib(offered)}) in ${floodMs} ms, ${ok.length} stored, ${refused.length} refused; ` +
        `${listings} listings, ${reads} reads during the flood. RSS: baseline ${mib(baseline)}, peak ${mib(peak)} ` +
        `(+${mib(peak - baseline)}; ${rssSamples.length} stats samples, max ${mib(Math.max(...rssSamples))}), ` +
        `after ${mib(after.rss)}, after a full GC ${mib(afterGc.rss)} with ${mib(afterGc.arrayBuffers)} of ArrayBuffers; ` +
        `store ${mib(final.memory.used)} used of ${mib(CAP)}\n`,
    );

    expect(outcomes.length).toBe(CLIENTS * PUTS_PER_CLIENT);
    expect(offered).toBeGreaterThanOrEqual(2 * CAP * 0.98);
    // Every refusal is RESOURCE_EXHAUSTED; the flood did pass the cap.
    expect(refused.filter((o) => o.outcome !== grpc.status.RESOURCE_EXHAUSTED)).toEqual([]);
    expect(refused.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(0);
    expect(final.memory.used).toBeLessThanOrEqual(CAP);
    expect(final.memory.reserved).toBe(0);

    // Never a partial flight; afterwards exactly the completed puts are listed, whole, with their bytes.
    expect(partial).toEqual([]);
    expect(listings).toBeGreaterThan(1);
    const listed = (await listPaths(control)).filter((i) => i.flightDescriptor?.path.join("/") !== "read-me");
    expect(listed.map((i) => i.flightDescriptor!.path.join("/")).sort()).toEqual(ok.map((o) => o.name).sort());
    for (const info of listed) {
      const o = ok.find((x) => x.name === info.flightDescriptor!.path.join("/"))!;
      expect(info.totalRecords).toBe(o.rows);
      expect(digestOf(await get(reader, info.endpoint[0].ticket))).toBe(o.sha256);
    }

    // Reads kept working throughout.
    expect(readFailures).toEqual([]);
    expect(reads).toBeGreaterThan(0);

    // Memory: what the process holds after a full GC is the store plus 10 %; its peak RSS
    // stays within baseline + cap + 10 % + the garbage V8 lets pile up (GC_SLACK).
    expect(after.gcExposed).toBe(true);
    expect(afterGc.arrayBuffers).toBeLessThan(CAP * 1.1);
    expect(peak).toBeLessThan(baseline + CAP * 1.1 + GC_SLACK);
  });
});
