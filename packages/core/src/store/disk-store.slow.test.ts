import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { tableFromArrays, tableToIPC } from "apache-arrow";

import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { splitIpcStream } from "../ipc/ipc-stream";
import { readMessageHeader } from "../ipc/message-header";
import { StatusCode } from "../status-code";
import { contiguous } from "../byte-chunks";
import { EOS, decodeManifest, encodeManifest, fileId } from "./disk-format";
import { DiskStore, type DiskStoreOptions } from "./disk-store";
import { offersGc, offersMemoryLimit, offersTtl, type StoredFlight } from "./flight-store";
import { defaultSchemasEqual } from "./memory-store";
import { ReadLease } from "./read-lease";

// ---------------------------------------------------------------- fakes

const SCHEMA_A = [1, 2, 3, 4];
const SCHEMA_B = [1, 2, 3, 5];

function schemaMsg(header: number[] = SCHEMA_A): StoredMessage {
  return {
    header: Uint8Array.from(header),
    body: new Uint8Array(0),
    appMetadata: new Uint8Array(0),
    info: { kind: MessageKind.SCHEMA, version: 4, bodyLength: 0, rows: 0 },
    byteSize: header.length,
  };
}

let seq = 0;
/** A batch whose bytes are unique, so a read can be compared byte for byte. */
function batchMsg(rows: number, bodyLength = 16, meta = ""): StoredMessage {
  const n = ++seq;
  const body = new Uint8Array(bodyLength).map((_, i) => (n * 31 + i) & 0xff);
  return {
    header: Uint8Array.from([9, 9, n & 0xff]),
    body,
    appMetadata: new TextEncoder().encode(meta),
    info: { kind: MessageKind.RECORD_BATCH, version: 4, bodyLength, rows },
    byteSize: 3 + bodyLength,
  };
}

const pathD = (...p: string[]): FlightDescriptor => ({ type: DescriptorType.PATH, path: p, cmd: new Uint8Array() });
const cmdD = (text: string): FlightDescriptor => ({ type: DescriptorType.CMD, path: [], cmd: new TextEncoder().encode(text) });

let clock = 1_000_000;
let dir: string;
const stores: DiskStore[] = [];
let errors: unknown[] = [];

function open(options: Partial<DiskStoreOptions> = {}): DiskStore {
  const store = new DiskStore({
    dir,
    enableGC: false,
    fsync: "never",
    now: () => clock,
    schemasEqual: defaultSchemasEqual,
    onError: (e) => errors.push(e),
    ...options,
  });
  stores.push(store);
  return store;
}

async function reopen(store: DiskStore, options: Partial<DiskStoreOptions> = {}): Promise<DiskStore> {
  await store.close();
  return open(options);
}

async function putFlight(store: DiskStore, d: FlightDescriptor, batches: StoredMessage[] = [batchMsg(10)], options?: { ttlMs?: number }, schema = schemaMsg()): Promise<StoredFlight> {
  const tx = await store.beginPut(d, schema, options);
  for (const b of batches) await tx.append(b);
  return tx.commit();
}

async function messagesOf(flight: StoredFlight): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const m of flight.messages()) out.push(m);
  return out;
}

/** Byte equality of large bodies (jest's deep equality is slow on MiBs and tells Buffer from Uint8Array). */
function sameBytes(a: StoredMessage["body"], b: StoredMessage["body"]): boolean {
  return Buffer.compare(Buffer.from(contiguous(a)), Buffer.from(contiguous(b))) === 0;
}

/** The parts a reader sees, as plain arrays, to compare a read with what was put. */
function plain(messages: StoredMessage[]) {
  return messages.map((m) => ({
    header: [...m.header],
    body: [...contiguous(m.body)],
    appMetadata: [...m.appMetadata],
    kind: m.info.kind,
    rows: m.info.rows,
    bodyLength: m.info.bodyLength,
  }));
}

async function errorOf(fn: () => unknown): Promise<FlightError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof FlightError) return err;
    throw err;
  }
  throw new Error("expected a FlightError, nothing was thrown");
}

function files(sub: string): string[] {
  return fs.readdirSync(path.join(dir, sub)).sort();
}

beforeEach(() => {
  clock = 1_000_000;
  errors = [];
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "disk-store-"));
});

afterEach(async () => {
  while (stores.length > 0) await stores.pop()!.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- contract

describe("DiskStore puts and reads", () => {
  it("commits a put and streams it back byte for byte, by descriptor and by ticket", async () => {
    const store = open();
    const d = pathD("sales", "2024");
    const batches = [batchMsg(5, 24, "m1"), batchMsg(3, 0), batchMsg(7, 1000, "m3")];
    const flight = await putFlight(store, d, batches);

    expect(flight.key).toBe("p:sales/2024");
    expect(flight.descriptor.path).toEqual(["sales", "2024"]);
    expect(flight.messageCount).toBe(3);
    expect(flight.totalRecords).toBe(15);
    expect(flight.totalBytes).toBe(4 + 3 * 3 + 24 + 0 + 1000);
    expect([...flight.schema.header]).toEqual(SCHEMA_A);
    expect(plain(await messagesOf(flight))).toEqual(plain(batches));

    const byTicket = await store.getByTicket(store.ticketFor(flight));
    expect(byTicket?.key).toBe(flight.key);
    expect(plain(await messagesOf(byTicket!))).toEqual(plain(batches));
    expect(await store.get(pathD("sales"))).toBeUndefined();
    expect(store.stats()).toMatchObject({ flights: 1, rows: 15, bytes: flight.totalBytes });
  });

  /** Counts the bytes every FileHandle.read returns while `fn` runs. */
  async function countingReads<T>(fn: (read: () => number) => Promise<T>): Promise<T> {
    const probe = await fs.promises.open(path.join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const original = proto.read;
    let read = 0;
    const spy = jest.spyOn(proto, "read").mockImplementation(async function (this: unknown, ...args: unknown[]) {
      const r = await original.apply(this, args);
      read += r.bytesRead;
      return r;
    });
    try {
      return await fn(() => read);
    } finally {
      spy.mockRestore();
    }
  }

  it("streams a flight with a bounded read-ahead: never more than two 4 MiB spans beyond what was taken", async () => {
    const store = open();
    const d = pathD("large");
    // 24 MiB: six spans, so the read-ahead runs several times.
    const batches = Array.from({ length: 96 }, () => batchMsg(1, 256 * 1024));
    await putFlight(store, d, batches);
    const flight = (await store.get(d))!;
    await countingReads(async (read) => {
      let taken = 0;
      let most = 0;
      let i = 0;
      for await (const m of flight.messages()) {
        expect(sameBytes(m.body, batches[i++]!.body)).toBe(true);
        // Let a read ahead finish before measuring, as a slow consumer would.
        await new Promise((r) => setImmediate(r));
        taken += 8 + 8 + m.body.byteLength;
        most = Math.max(most, read() - taken);
      }
      expect(i).toBe(batches.length);
      expect(taken).toBe(read());
      expect(most).toBeGreaterThan(4 * 1024 * 1024 - 1024); // it does read ahead
      expect(most).toBeLessThanOrEqual(8 * 1024 * 1024);
    });
  });

  it("reads one message larger than a span by itself, and stops reading when the reader stops", async () => {
    const store = open();
    const d = pathD("huge");
    const batches = [batchMsg(1, 5 * 1024 * 1024), batchMsg(1, 16), batchMsg(1, 5 * 1024 * 1024), batchMsg(1, 16)];
    await putFlight(store, d, batches);
    const flight = (await store.get(d))!;
    const all = await messagesOf(flight);
    expect(all.map((m, i) => sameBytes(m.header, batches[i]!.header) && sameBytes(m.body, batches[i]!.body))).toEqual([true, true, true, true]);
    await countingReads(async (read) => {
      for await (const m of flight.messages()) {
        expect(m.body.byteLength).toBe(5 * 1024 * 1024);
        break; // the read ahead of the next span (one message) finishes, the file is closed
      }
      expect(read()).toBeLessThanOrEqual(2 * (5 * 1024 * 1024 + 16));
    });
  });

  describe("with a ReadLease", () => {
    // 24 MiB of 256 KiB batches: six 4 MiB spans.
    const flightOfSpans = async (store: DiskStore, name: string) => {
      const batches = Array.from({ length: 96 }, () => batchMsg(1, 256 * 1024));
      await putFlight(store, pathD(name), batches);
      return { batches, flight: (await store.get(pathD(name)))! };
    };

    it("reads later spans into the buffers of spans whose messages were all released", async () => {
      const store = open();
      const { batches, flight } = await flightOfSpans(store, "leased");
      const lease = new ReadLease();
      const buffers = new Set<ArrayBufferLike>();
      let i = 0;
      for await (const m of flight.messages({ lease })) {
        expect(sameBytes(m.header, batches[i]!.header) && sameBytes(m.body, batches[i]!.body)).toBe(true);
        buffers.add(contiguous(m.body).buffer);
        lease.release(++i);
      }
      expect(i).toBe(batches.length);
      // Without a lease each span has a buffer of its own (24 MiB: at least six); with one,
      // the spans share a few: the one served, the one read ahead, and those freed.
      const spans = new Set((await messagesOf(flight)).map((m) => contiguous(m.body).buffer)).size;
      expect(spans).toBeGreaterThanOrEqual(6);
      expect(buffers.size).toBeLessThanOrEqual(3);
    });

    it("never overwrites a message that was not released", async () => {
      const store = open();
      const { batches, flight } = await flightOfSpans(store, "held");
      const lease = new ReadLease();
      const held: StoredMessage[] = [];
      const reused = new Set<ArrayBufferLike>();
      let broken = 0;
      for await (const m of flight.messages({ lease })) {
        held.push(m);
        // Release lagging five messages behind, across span boundaries.
        lease.release(Math.max(0, held.length - 5));
        await new Promise((r) => setImmediate(r)); // let the read ahead land in a reused buffer
        for (let k = lease.released; k < held.length; k++) if (!sameBytes(held[k]!.body, batches[k]!.body)) broken++;
        reused.add(contiguous(m.body).buffer);
      }
      expect(held.length).toBe(batches.length);
      expect(broken).toBe(0);
      expect(reused.size).toBeLessThanOrEqual(3); // buffers were reused meanwhile
      // Without a lease nothing is reused: every message held is intact at the end.
      const all = await messagesOf(flight);
      expect(all.every((m, k) => sameBytes(m.body, batches[k]!.body))).toBe(true);
    });

    it("serves one pass per lease", async () => {
      const store = open();
      const { flight } = await flightOfSpans(store, "once");
      const lease = new ReadLease();
      for await (const _ of flight.messages({ lease })) break;
      expect(() => flight.messages({ lease })[Symbol.asyncIterator]()).toThrow(/one pass/);
    });
  });

  it("a read ahead that fails (EIO) while the reader is slow ends the read with DATA_LOSS, reported, not the process", async () => {
    const store = open();
    const d = pathD("eio");
    const batches = Array.from({ length: 12 }, () => batchMsg(1, 1024 * 1024));
    await putFlight(store, d, batches);
    const flight = (await store.get(d))!;
    const probe = await fs.promises.open(path.join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const original = proto.read;
    let calls = 0;
    const spy = jest.spyOn(proto, "read").mockImplementation(async function (this: unknown, ...args: unknown[]) {
      if (++calls === 2) throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
      return original.apply(this, args);
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      let seen = 0;
      let err: unknown;
      try {
        for await (const m of flight.messages()) {
          void m;
          seen++;
          // Slow: the read ahead fails long before it is awaited.
          await new Promise((r) => setTimeout(r, 5));
        }
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FlightError);
      expect((err as FlightError).code).toBe(StatusCode.DATA_LOSS);
      expect(String(err)).toMatch(/EIO/);
      expect(errors.some((e) => e instanceof FlightError && e.code === StatusCode.DATA_LOSS)).toBe(true);
      expect(seen).toBe(3); // the first span (three 1 MiB frames fit in 4 MiB), then the error
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      spy.mockRestore();
    }
  });

  it("offers TTL and GC, not a memory limit", () => {
    const store = open();
    expect(offersTtl(store)).toBe(true);
    expect(offersGc(store)).toBe(true);
    expect(offersMemoryLimit(store)).toBe(false);
  });

  it("shows nothing before commit, and an abort leaves no file behind", async () => {
    const store = open();
    const d = cmdD("SELECT 1");
    const tx = await store.beginPut(d, schemaMsg());
    await tx.append(batchMsg(1));
    expect(await store.get(d)).toBeUndefined();
    expect(files("tmp")).toHaveLength(1);
    await tx.abort();
    await tx.abort();
    expect(await store.get(d)).toBeUndefined();
    expect(files("tmp")).toEqual([]);
    expect(files("flights")).toEqual([]);
    expect(store.stats().disk.reservedBytes).toBe(0);
    expect((await errorOf(() => tx.commit())).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("appends atomically; a snapshot taken before keeps its messages", async () => {
    const store = open();
    const d = pathD("a");
    const first = [batchMsg(1, 8, "x")];
    const before = await putFlight(store, d, first);
    const second = [batchMsg(2, 16), batchMsg(3, 32, "y")];
    const tx = await store.beginPut(d, schemaMsg());
    for (const b of second) await tx.append(b);
    expect((await store.get(d))!.messageCount).toBe(1);
    const after = await tx.commit();

    expect(after.messageCount).toBe(3);
    expect(after.totalRecords).toBe(6);
    expect(after.createdAt).toBe(before.createdAt);
    expect(plain(await messagesOf(after))).toEqual(plain([...first, ...second]));
    expect(plain(await messagesOf(before))).toEqual(plain(first));
    expect(store.stats()).toMatchObject({ flights: 1, rows: 6 });
  });

  it("replaces the flight instead of appending with replace: true, even when both puts were open together", async () => {
    const store = open();
    const d = pathD("copy");
    const before = await putFlight(store, d, [batchMsg(5, 8), batchMsg(6, 8)]);
    const copy = [batchMsg(7, 24, "c")];
    const a = await store.beginPut(d, schemaMsg(), { replace: true });
    const b = await store.beginPut(d, schemaMsg(), { replace: true });
    for (const m of copy) {
      await a.append(m);
      await b.append(m);
    }
    await a.commit();
    const last = await b.commit();
    expect(last.messageCount).toBe(1);
    expect(plain(await messagesOf((await store.get(d))!))).toEqual(plain(copy));
    expect(before.totalRecords).toBe(11);
    expect(store.stats()).toMatchObject({ flights: 1, rows: 7 });
    // One data file and one manifest: the replaced flight's file is gone, also after a restart.
    expect(files("flights")).toHaveLength(2);
    const again = await reopen(store);
    expect(plain(await messagesOf((await again.get(d))!))).toEqual(plain(copy));
  });

  it("refuses an append with a different schema, at begin and at commit", async () => {
    const store = open();
    const d = pathD("s");
    await putFlight(store, d);
    expect((await errorOf(() => store.beginPut(d, schemaMsg(SCHEMA_B)))).code).toBe(StatusCode.INVALID_ARGUMENT);

    const other = pathD("t");
    const tx1 = await store.beginPut(other, schemaMsg(SCHEMA_A));
    const tx2 = await store.beginPut(other, schemaMsg(SCHEMA_B));
    await tx1.commit();
    const err = await errorOf(() => tx2.commit());
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/cannot append to flight p:t/);
    expect((await store.get(other))!.messageCount).toBe(0);
    expect(files("tmp")).toEqual([]);
  });

  it("commits concurrent puts to one flight and to many, none lost", async () => {
    const store = open();
    const shared = pathD("shared");
    const puts = Array.from({ length: 8 }, async (_, i) => {
      await putFlight(store, shared, [batchMsg(1, 8, `s${i}`)]);
      await putFlight(store, pathD("own", String(i)), [batchMsg(2, 64), batchMsg(3, 8)]);
    });
    await Promise.all(puts);
    const flight = (await store.get(shared))!;
    expect(flight.messageCount).toBe(8);
    const metas = (await messagesOf(flight)).map((m) => new TextDecoder().decode(m.appMetadata)).sort();
    expect(metas).toEqual(["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]);
    const listed: string[] = [];
    for await (const f of store.list(["own"])) listed.push(f.key);
    expect(listed.sort()).toEqual(Array.from({ length: 8 }, (_, i) => `p:own/${i}`));
    expect(store.stats()).toMatchObject({ flights: 9, rows: 8 + 8 * 5 });
  });

  it("deletes a flight and its files", async () => {
    const store = open();
    const d = pathD("gone");
    await putFlight(store, d);
    expect(await store.delete(d)).toBe(true);
    expect(await store.delete(d)).toBe(false);
    expect(await store.get(d)).toBeUndefined();
    expect(files("flights")).toEqual([]);
    expect(store.stats()).toMatchObject({ flights: 0, rows: 0, bytes: 0, disk: { usedBytes: 0 } });
  });

  it("refuses a put over maxDiskBytes with RESOURCE_EXHAUSTED before writing it, and leaves nothing", async () => {
    const store = open({ maxDiskBytes: 4096 });
    const d = pathD("big");
    const tx = await store.beginPut(d, schemaMsg());
    await tx.append(batchMsg(1, 1024));
    const err = await errorOf(() => tx.append(batchMsg(1, 8192)));
    expect(err.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/disk limit of 4096 bytes/);
    expect((await errorOf(() => tx.commit())).code).toBe(StatusCode.FAILED_PRECONDITION);
    await tx.abort();
    expect(await store.get(d)).toBeUndefined();
    expect(files("tmp")).toEqual([]);
    expect(store.stats().disk).toMatchObject({ reservedBytes: 0, usedBytes: 0, maxDiskBytes: 4096 });
    // The space is back.
    await putFlight(store, d, [batchMsg(1, 2048)]);
  });

  describe("on a full disk (ENOSPC)", () => {
    /** Makes the next `count` vectored writes of any file handle fail as a full disk does. */
    async function diskFullFor(count: number): Promise<jest.SpyInstance> {
      const probe = await fs.promises.open(path.join(dir, "probe"), "w");
      const proto = Object.getPrototypeOf(probe) as { writev: (...args: unknown[]) => Promise<unknown> };
      await probe.close();
      fs.rmSync(path.join(dir, "probe"));
      const original = proto.writev;
      let left = count;
      return jest.spyOn(proto, "writev").mockImplementation(function (this: unknown, ...args: unknown[]) {
        if (left-- > 0) return Promise.reject(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
        return original.apply(this, args);
      });
    }

    it("fails an append with RESOURCE_EXHAUSTED, and nothing of the put is visible", async () => {
      const store = open();
      const d = pathD("full");
      const tx = await store.beginPut(d, schemaMsg());
      const spy = await diskFullFor(1);
      try {
        const err = await errorOf(() => tx.append(batchMsg(1, 64)));
        expect(err.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
        expect(err.message).toMatch(/the disk is full/);
      } finally {
        spy.mockRestore();
      }
      await tx.abort();
      expect(await store.get(d)).toBeUndefined();
      expect(files("tmp")).toEqual([]);
      expect(store.stats().disk.reservedBytes).toBe(0);
    });

    it("fails an append's commit with RESOURCE_EXHAUSTED and leaves the flight as it was", async () => {
      const store = open();
      const d = pathD("full");
      const first = [batchMsg(1, 64)];
      await putFlight(store, d, first);
      const dataName = files("flights").find((n) => n.endsWith(".arrows"))!;
      const before = fs.readFileSync(path.join(dir, "flights", dataName));
      const tx = await store.beginPut(d, schemaMsg());
      await tx.append(batchMsg(2, 64));
      const spy = await diskFullFor(1); // the copy into the data file
      try {
        expect((await errorOf(() => tx.commit())).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
      } finally {
        spy.mockRestore();
      }
      const f = (await store.get(d))!;
      expect(f.messageCount).toBe(1);
      expect(plain(await messagesOf(f))).toEqual(plain(first));
      expect(fs.readFileSync(path.join(dir, "flights", dataName)).equals(before)).toBe(true);
      expect(files("tmp")).toEqual([]);
    });
  });

  it("collects expired flights to make room under maxDiskBytes", async () => {
    const store = open({ maxDiskBytes: 6000 });
    await putFlight(store, pathD("old"), [batchMsg(1, 3000)], { ttlMs: 1000 });
    clock += 1000;
    await putFlight(store, pathD("new"), [batchMsg(1, 3000)]);
    expect(store.stats().flights).toBe(1);
  });

  it("expires flights, renews them, and collects them with gc()", async () => {
    const store = open({ defaultTtlMs: 5_000 });
    const d = pathD("ttl");
    const f = await putFlight(store, d);
    expect(f.expiresAt).toBe(clock + 5_000);
    clock += 4_000;
    const renewed = await store.renew(d, 10_000);
    expect(renewed!.expiresAt).toBe(clock + 10_000);
    clock += 9_999;
    expect(await store.get(d)).toBeDefined();
    clock += 1;
    expect(await store.get(d)).toBeUndefined();
    expect(await store.renew(d)).toBeUndefined();
    const report = await store.gc();
    expect(report.flightsRemoved).toBe(1);
    expect(report.bytesFreed).toBeGreaterThan(0);
    expect(files("flights")).toEqual([]);
    expect(store.stats()).toMatchObject({ flights: 0, gc: { gcRuns: 1, gcFlightsRemoved: 1 } });
    store.setDefaultTtl(0);
    expect((await putFlight(store, d)).expiresAt).toBeUndefined();
    expect(() => store.setDefaultTtl(-1)).toThrow(TypeError);
  });

  it("validates its options up front", () => {
    expect(() => new DiskStore({} as DiskStoreOptions)).toThrow(/dir must be a non-empty path/);
    expect(() => new DiskStore({ dir, fsync: "sometimes" as never })).toThrow(/^DiskStore: fsync must be one of "always", "interval", "never"; got "sometimes"$/);
    expect(() => new DiskStore({ dir, maxDiskBytes: 0 })).toThrow(TypeError);
    expect(() => new DiskStore({ dir, bogus: 1 } as never)).toThrow(/^DiskStore: unknown option "bogus"/);
  });
});

// ---------------------------------------------------------------- directory

describe("DiskStore's directory", () => {
  it("is locked: a second store gets a clear error, and a stale lock is taken over", async () => {
    const store = open();
    const err = await errorOf(() => open());
    expect(err.code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(err.message).toMatch(/already open in this process/);
    await store.close();

    // A lock left by a process that is gone (this child exits at once).
    const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
    fs.writeFileSync(path.join(dir, "LOCK"), `${child.stdout.toString()}\n${os.hostname()}\n`);
    open();
    // A lock held by a live process (ours, as another host would see it... use the parent's pid).
    await stores.pop()!.close();
    fs.writeFileSync(path.join(dir, "LOCK"), `${process.ppid}\n${os.hostname()}\n`);
    const locked = await errorOf(() => open());
    expect(locked.message).toMatch(new RegExp(`locked by process ${process.ppid}`));
    fs.rmSync(path.join(dir, "LOCK"));
  });

  it("refuses a directory it cannot write, at open", async () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere; a file where the directory should be fails the same way.
      const file = path.join(dir, "not-a-dir");
      fs.writeFileSync(file, "x");
      const err = await errorOf(() => new DiskStore({ dir: path.join(file, "sub") }));
      expect(err.code).toBe(StatusCode.PERMISSION_DENIED);
      expect(err.message).toMatch(/cannot create data directory/);
      return;
    }
    fs.chmodSync(dir, 0o500);
    try {
      const err = await errorOf(() => new DiskStore({ dir }));
      expect(err.code).toBe(StatusCode.PERMISSION_DENIED);
      expect(err.message).toMatch(/not writable/);
    } finally {
      fs.chmodSync(dir, 0o700);
    }
  });
});

// ---------------------------------------------------------------- restart

describe("DiskStore after a restart", () => {
  it("has the same flights, messages, expiries and figures; appends and deletes work", async () => {
    let store = open({ fsync: "always" });
    const a = pathD("a", "1");
    const b = cmdD("b");
    const c = pathD("c");
    const aBatches = [batchMsg(4, 40, "one"), batchMsg(6, 8)];
    await putFlight(store, a, aBatches);
    await putFlight(store, b, [batchMsg(1)], { ttlMs: 60_000 });
    await putFlight(store, c, [batchMsg(2)]);
    const figures = store.stats();

    store = await reopen(store, { fsync: "always" });
    expect(store.recovery).toMatchObject({ flights: 3, damaged: 0, truncated: 0, orphansRemoved: 0 });
    expect(store.stats()).toEqual(figures);
    const fa = (await store.get(a))!;
    expect(plain(await messagesOf(fa))).toEqual(plain(aBatches));
    expect([...fa.schema.header]).toEqual(SCHEMA_A);
    expect((await store.get(b))!.expiresAt).toBe(clock + 60_000);
    expect((await store.get(b))!.descriptor.cmd).toEqual(new TextEncoder().encode("b"));

    // Appends after a restart go after what was there.
    const more = [batchMsg(5, 16, "two")];
    await putFlight(store, a, more);
    expect(await store.delete(c)).toBe(true);

    // The TTL is absolute: it holds across a restart, and an expired flight is collected at open.
    clock += 60_000;
    store = await reopen(store);
    expect(store.recovery).toMatchObject({ flights: 1, expiredRemoved: 1 });
    expect(await store.get(b)).toBeUndefined();
    expect(await store.get(c)).toBeUndefined();
    const again = (await store.get(a))!;
    expect(again.totalRecords).toBe(15);
    expect(plain(await messagesOf(again))).toEqual(plain([...aBatches, ...more]));
    expect(store.stats()).toMatchObject({ flights: 1, rows: 15, bytes: again.totalBytes });
    expect(files("flights")).toHaveLength(2);
  });

  it.each(["always", "interval", "never"] as const)("keeps committed puts across a clean restart with fsync %s", async (fsync) => {
    let store = open({ fsync, fsyncIntervalMs: 10 });
    const batches = [batchMsg(2, 32, "a"), batchMsg(3, 8)];
    await putFlight(store, pathD("f"), batches);
    await new Promise((resolve) => setTimeout(resolve, 30)); // an interval fsync runs
    await putFlight(store, pathD("f"), [batchMsg(1)]);
    store = await reopen(store, { fsync });
    const f = (await store.get(pathD("f")))!;
    expect(f.messageCount).toBe(3);
    expect(plain((await messagesOf(f)).slice(0, 2))).toEqual(plain(batches));
    expect(errors).toEqual([]);
  });

  it("recovers 10 000 flights in seconds", async () => {
    let store = open();
    await putFlight(store, pathD("seed"), [batchMsg(1, 64)]);
    await store.close();
    stores.pop();
    // Copies of the seed flight under 10k keys, written directly (puts would take longer than the open).
    const flightsDir = path.join(dir, "flights");
    const seedName = files("flights").find((n) => n.endsWith(".json"))!;
    const seed = decodeManifest(fs.readFileSync(path.join(flightsDir, seedName)));
    const data = fs.readFileSync(path.join(flightsDir, seed.data));
    for (let i = 0; i < 10_000; i++) {
      const id = fileId(`p:many/${i}`);
      const m = { ...seed, key: `p:many/${i}`, descriptor: { type: "path" as const, path: ["many", String(i)] }, data: `${id}.0.arrows` };
      fs.writeFileSync(path.join(flightsDir, m.data), data);
      fs.writeFileSync(path.join(flightsDir, `${id}.json`), encodeManifest(m));
    }
    const started = Date.now();
    store = open();
    const ms = Date.now() - started;
    expect(store.recovery.flights).toBe(10_001);
    expect(store.stats()).toMatchObject({ flights: 10_001, rows: 10_001 });
    expect(ms).toBeLessThan(5_000);
    expect(store.recovery.durationMs).toBeLessThanOrEqual(ms);
    const f = (await store.get(pathD("many", "9999")))!;
    expect((await messagesOf(f))).toHaveLength(1);
  }, 60_000);

  it("drops what no commit finished: temp files, temp manifests, orphan data, an interrupted append", async () => {
    let store = open();
    const d = pathD("x");
    const batches = [batchMsg(1, 16)];
    await putFlight(store, d, batches);
    const manifestName = files("flights").find((n) => n.endsWith(".json"))!;
    const manifest = decodeManifest(fs.readFileSync(path.join(dir, "flights", manifestName)));
    await store.close();
    // The temp file of a put open when the process died, a half-written manifest, an orphan
    // data file, and bytes past the committed end.
    fs.writeFileSync(path.join(dir, "tmp", "dead.part"), "partial put");
    fs.writeFileSync(path.join(dir, "flights", `${manifestName}.tmp-abc`), "{");
    fs.writeFileSync(path.join(dir, "flights", "0123.beef.arrows"), "partial");
    const dataPath = path.join(dir, "flights", manifest.data);
    const fd = fs.openSync(dataPath, "r+");
    fs.writeSync(fd, Buffer.alloc(100, 7), 0, 100, manifest.dataLength - 8);
    fs.closeSync(fd);

    store = open();
    expect(store.recovery).toMatchObject({ flights: 1, tempFilesRemoved: 2, orphansRemoved: 1, truncated: 1 });
    expect(files("tmp")).toEqual([]);
    expect(files("flights")).toEqual([manifest.data, manifestName].sort());
    const bytes = fs.readFileSync(dataPath);
    expect(bytes.length).toBe(manifest.dataLength);
    expect([...bytes.subarray(bytes.length - 8)]).toEqual([...EOS]);
    expect(plain(await messagesOf((await store.get(d))!))).toEqual(plain(batches));
    expect(await store.get(pathD("never"))).toBeUndefined();
  });

  it("sets aside a damaged manifest and serves the other flights", async () => {
    let store = open();
    await putFlight(store, pathD("ok"));
    await putFlight(store, pathD("bad"));
    store = await reopen(store);
    const badId = files("flights").find((n) => n.endsWith(".json") && decodeManifest(fs.readFileSync(path.join(dir, "flights", n))).key === "p:bad")!;
    await store.close();
    const p = path.join(dir, "flights", badId);
    const text = fs.readFileSync(p, "utf8");
    fs.writeFileSync(p, text.replace('"p:bad"', '"p:bax"'));
    store = open();
    expect(store.recovery).toMatchObject({ flights: 1, damaged: 1, orphansRemoved: 1 });
    expect(errors.map((e) => String(e))).toEqual([expect.stringMatching(/DATA_LOSS: flight manifest .*manifest checksum mismatch/)]);
    expect(await store.get(pathD("ok"))).toBeDefined();
    expect(fs.readdirSync(path.join(dir, "damaged"))).toEqual([badId]);
  });
});

// ---------------------------------------------------------------- corruption

describe("DiskStore integrity", () => {
  it("ends a read with DATA_LOSS at a flipped bit, reports the flight, and serves the others", async () => {
    const store = open();
    const bad = pathD("bad");
    const good = pathD("good");
    const goodBatches = [batchMsg(1, 64), batchMsg(2, 64)];
    await putFlight(store, bad, [batchMsg(1, 64), batchMsg(2, 64)]);
    await putFlight(store, good, goodBatches);
    const flight = (await store.get(bad))!;
    const manifest = files("flights")
      .filter((n) => n.endsWith(".json"))
      .map((n) => decodeManifest(fs.readFileSync(path.join(dir, "flights", n))))
      .find((m) => m.key === "p:bad")!;
    // Flip one bit in the body of the second batch.
    const second = manifest.messages[2]!;
    const at = second.o + 8 + 8 + 10;
    const file = path.join(dir, "flights", manifest.data);
    const bytes = fs.readFileSync(file);
    bytes[at] ^= 0x10;
    fs.writeFileSync(file, bytes);

    const seen: StoredMessage[] = [];
    const err = await errorOf(async () => {
      for await (const m of flight.messages()) seen.push(m);
    });
    expect(err.code).toBe(StatusCode.DATA_LOSS);
    expect(err.message).toMatch(/flight p:bad is damaged on disk \(message 2 of 2\)/);
    expect(seen).toHaveLength(1); // the good message before it, nothing corrupt
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/fails its checksum/);
    expect(plain(await messagesOf((await store.get(good))!))).toEqual(plain(goodBatches));
  });

  it("serves the good spans before a damaged one in a later span, and nothing of it", async () => {
    const store = open();
    const d = pathD("bad-late");
    // 12 x 1 MiB: spans of up to 4 MiB; the flipped bit is in message 7 (the second span).
    const batches = Array.from({ length: 12 }, () => batchMsg(1, 1024 * 1024));
    await putFlight(store, d, batches);
    const flight = (await store.get(d))!;
    const manifest = files("flights")
      .filter((n) => n.endsWith(".json"))
      .map((n) => decodeManifest(fs.readFileSync(path.join(dir, "flights", n))))[0]!;
    const file = path.join(dir, "flights", manifest.data);
    const fd = fs.openSync(file, "r+");
    const at = manifest.messages[7]!.o + 8 + 8 + 4096;
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, at);
    byte[0]! ^= 0x01;
    fs.writeSync(fd, byte, 0, 1, at);
    fs.closeSync(fd);

    const seen: StoredMessage[] = [];
    const err = await errorOf(async () => {
      for await (const m of flight.messages()) seen.push(m);
    });
    expect(err.code).toBe(StatusCode.DATA_LOSS);
    expect(err.message).toMatch(/message 7 of 12/);
    expect(seen.map((m, i) => sameBytes(m.body, batches[i]!.body))).toEqual([true, true, true, true, true, true]);
  });

  it("checks app_metadata too", async () => {
    const store = open();
    const d = pathD("meta");
    await putFlight(store, d, [batchMsg(1, 8, "abc")]);
    const name = files("flights").find((n) => n.endsWith(".json"))!;
    const p = path.join(dir, "flights", name);
    const m = decodeManifest(fs.readFileSync(p));
    // A manifest rewritten with other app_metadata but the old checksum (its own CRC fixed up).
    m.messages[1]!.m = Buffer.from("abd").toString("base64");
    fs.writeFileSync(p, encodeManifest(m));
    const reopened = await reopen(stores.pop()!);
    const flight = (await reopened.get(d))!;
    expect((await errorOf(() => messagesOf(flight))).code).toBe(StatusCode.DATA_LOSS);
  });
});

// ---------------------------------------------------------------- real Arrow data

describe("DiskStore with real Arrow data", () => {
  it("writes a data file that is the IPC stream that was put, byte for byte", async () => {
    const table = tableFromArrays({ id: Int32Array.from([1, 2, 3]), name: ["a", "b", "c"] });
    const ipc = tableToIPC(table, "stream");
    const parts = splitIpcStream(ipc).map(({ header, body }) => ({
      header,
      body,
      appMetadata: new Uint8Array(0),
      info: readMessageHeader(header, body),
      byteSize: header.byteLength + body.byteLength,
    }));
    const store = open();
    await putFlight(store, pathD("arrow"), parts.slice(1), undefined, parts[0]);
    const data = files("flights").find((n) => n.endsWith(".arrows"))!;
    // apache-arrow's writer pads headers to 8 bytes as we do, so the files are identical.
    expect(Buffer.from(fs.readFileSync(path.join(dir, "flights", data))).equals(Buffer.from(ipc))).toBe(true);
  });
});
