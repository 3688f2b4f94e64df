import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { StatusCode } from "../status-code";
import type { StoredFlight } from "./flight-store";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { splitIpcStream } from "../ipc/ipc-stream";
import { FLIGHT_OVERHEAD_BYTES, MemoryStore, defaultSchemasEqual, flightOverheadBytes, structuralSchemasEqual, type MemoryStoreOptions } from "./memory-store";
import { descriptorKey } from "./descriptor-key";

// ---------------------------------------------------------------- fakes

const SCHEMA_A = [1, 2, 3, 4];
const SCHEMA_B = [1, 2, 3, 5];

function schemaMsg(header: number[] = SCHEMA_A, byteSize = 10): StoredMessage {
  return {
    header: Uint8Array.from(header),
    body: new Uint8Array(0),
    appMetadata: new Uint8Array(0),
    info: { kind: MessageKind.SCHEMA, version: 4, bodyLength: 0, rows: 0 },
    byteSize,
  };
}

function batchMsg(rows: number, byteSize = 100, kind: MessageKind = MessageKind.RECORD_BATCH): StoredMessage {
  return {
    header: new Uint8Array([9, 9]),
    body: new Uint8Array(8),
    appMetadata: new Uint8Array(0),
    info: { kind, version: 4, bodyLength: 8, rows },
    byteSize,
  };
}

const pathD = (...path: string[]): FlightDescriptor => ({ type: DescriptorType.PATH, path, cmd: new Uint8Array() });
const cmdD = (text: string): FlightDescriptor => ({ type: DescriptorType.CMD, path: [], cmd: new TextEncoder().encode(text) });

let clock = 1_000_000;
const stores: MemoryStore[] = [];

// The fake schema messages here are not flatbuffers, so these tests compare them by bytes;
// the structural default is tested with real schemas at the end of this file.
function makeStore(options: MemoryStoreOptions = {}): MemoryStore {
  const store = new MemoryStore({ enableGC: false, now: () => clock, schemasEqual: defaultSchemasEqual, ...options });
  stores.push(store);
  return store;
}

function putFlight(
  store: MemoryStore,
  d: FlightDescriptor,
  batches: StoredMessage[] = [batchMsg(10)],
  options?: { ttlMs?: number },
  schema = schemaMsg(),
): StoredFlight {
  const tx = store.beginPut(d, schema, options);
  for (const b of batches) tx.append(b);
  return tx.commit();
}

function errorOf(fn: () => unknown): FlightError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlightError) return err;
    throw err;
  }
  throw new Error("expected a FlightError, nothing was thrown");
}

beforeEach(() => {
  clock = 1_000_000;
});

/** Bytes a flight's identity (descriptor, key, bookkeeping) is counted for. */
function idBytes(d: FlightDescriptor): number {
  return flightOverheadBytes(descriptorKey(d), d);
}

afterEach(() => {
  while (stores.length > 0) stores.pop()!.close();
  jest.useRealTimers();
});

// ---------------------------------------------------------------- tests

describe("MemoryStore puts and reads", () => {
  it("commits a put and serves it by descriptor and by ticket", () => {
    const store = makeStore();
    const d = pathD("sales", "2024");
    const flight = putFlight(store, d, [batchMsg(5, 100), batchMsg(3, 50, MessageKind.DICTIONARY_BATCH), batchMsg(7, 100)]);

    expect(flight.key).toBe("p:sales/2024");
    expect(flight.descriptor.path).toEqual(["sales", "2024"]);
    expect(flight.messages).toHaveLength(3);
    expect(flight.totalRecords).toBe(12); // dictionary rows do not count
    expect(flight.totalBytes).toBe(4 + 3 * (2 + 8)); // schema header + 3 × (header + body)
    expect(flight.memoryBytes).toBe(10 + 250 + idBytes(d));
    expect(flight.createdAt).toBe(clock);
    expect(flight.expiresAt).toBeUndefined();

    expect(store.get(d)).toBe(flight);
    const ticket = store.ticketFor(flight);
    expect(new TextDecoder().decode(ticket)).toBe("p:sales/2024");
    expect(store.getByTicket(ticket)).toBe(flight);
    expect(store.get(pathD("sales"))).toBeUndefined();
    expect(store.getByTicket(new TextEncoder().encode("p:nothing"))).toBeUndefined();
    expect(errorOf(() => store.getByTicket(new Uint8Array([0xff, 0]))).code).toBe(StatusCode.INVALID_ARGUMENT);

    const s = store.stats();
    expect(s).toMatchObject({ flights: 1, rows: 12, bytes: flight.totalBytes, memoryBytes: 260 + idBytes(d), reservedBytes: 0 });
  });

  it("stores CMD flights too", () => {
    const store = makeStore();
    const flight = putFlight(store, cmdD("SELECT 1"));
    expect(store.get(cmdD("SELECT 1"))).toBe(flight);
    expect(store.getByTicket(store.ticketFor(flight))).toBe(flight);
  });

  it("is not affected by later changes to the caller's descriptor", () => {
    const store = makeStore();
    const d = pathD("a");
    const flight = putFlight(store, d);
    d.path.push("b");
    expect(flight.descriptor.path).toEqual(["a"]);
    expect(store.get(pathD("a"))).toBe(flight);
  });

  it("makes nothing visible before commit", () => {
    const store = makeStore();
    const tx = store.beginPut(pathD("a"), schemaMsg());
    tx.append(batchMsg(1));
    expect(store.get(pathD("a"))).toBeUndefined();
    expect([...store.list()]).toHaveLength(0);
    expect(store.stats().reservedBytes).toBe(110 + idBytes(pathD("a")));
    tx.commit();
    expect(store.get(pathD("a"))?.totalRecords).toBe(1);
  });

  it("abort leaves nothing visible and releases the reservation", () => {
    const store = makeStore();
    const tx = store.beginPut(pathD("a"), schemaMsg());
    tx.append(batchMsg(1, 500));
    expect(store.stats().reservedBytes).toBe(510 + idBytes(pathD("a")));
    tx.abort();
    tx.abort(); // safe twice
    expect(store.get(pathD("a"))).toBeUndefined();
    expect(store.stats()).toMatchObject({ flights: 0, reservedBytes: 0, memoryBytes: 0 });
    expect(errorOf(() => tx.commit()).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("refuses use of a committed transaction with FAILED_PRECONDITION", () => {
    const store = makeStore();
    const tx = store.beginPut(pathD("a"), schemaMsg());
    tx.commit();
    const again = errorOf(() => tx.commit());
    expect(again.code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(again.message).toMatch(/already committed/);
    expect(errorOf(() => tx.append(batchMsg(1))).code).toBe(StatusCode.FAILED_PRECONDITION);
    tx.abort(); // no effect on the committed flight
    expect(store.get(pathD("a"))).toBeDefined();
    expect(store.stats().reservedBytes).toBe(0);
  });

  it("refuses schema messages in append and dooms the put", () => {
    const store = makeStore();
    const tx = store.beginPut(pathD("a"), schemaMsg());
    tx.append(batchMsg(1));
    const err = errorOf(() => tx.append(schemaMsg()));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(errorOf(() => tx.commit()).code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(store.stats().reservedBytes).toBe(0);
    expect(store.get(pathD("a"))).toBeUndefined();
  });

  it("refuses a put that does not start with a schema, and bad descriptors", () => {
    const store = makeStore();
    expect(errorOf(() => store.beginPut(pathD("a"), batchMsg(1))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(errorOf(() => store.beginPut(pathD(), schemaMsg())).code).toBe(StatusCode.INVALID_ARGUMENT);
    const unknown = { type: DescriptorType.UNKNOWN, path: ["a"], cmd: new Uint8Array() };
    expect(errorOf(() => store.beginPut(unknown, schemaMsg())).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(errorOf(() => store.get(unknown)).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(errorOf(() => store.beginPut(pathD("a"), schemaMsg(), { ttlMs: -1 })).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(store.stats().reservedBytes).toBe(0);
  });
});

describe("MemoryStore appends", () => {
  it("appends a put with the same schema to the existing flight", () => {
    const store = makeStore();
    const d = pathD("a");
    const first = putFlight(store, d, [batchMsg(5)]);
    clock += 10;
    const second = putFlight(store, d, [batchMsg(7), batchMsg(1)]);
    expect(second.messages).toHaveLength(3);
    expect(second.totalRecords).toBe(13);
    expect(second.memoryBytes).toBe(10 + 300 + idBytes(d)); // one schema and one identity only
    expect(second.totalBytes).toBe(4 + 3 * 10);
    expect(second.createdAt).toBe(first.createdAt);
    expect(second.updatedAt).toBe(clock);
    expect(second.schema).toBe(first.schema);
    expect(store.stats()).toMatchObject({ flights: 1, rows: 13, memoryBytes: 310 + idBytes(d), reservedBytes: 0 });
  });

  it("refuses a different schema at beginPut with INVALID_ARGUMENT and leaves the flight unchanged", () => {
    const store = makeStore();
    const d = pathD("a");
    const before = putFlight(store, d);
    const err = errorOf(() => store.beginPut(d, schemaMsg(SCHEMA_B)));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/schema differs from the stored flight's schema/);
    expect(store.get(d)).toBe(before);
    expect(store.stats()).toMatchObject({ flights: 1, memoryBytes: before.memoryBytes, reservedBytes: 0 });
  });

  it("re-checks the schema at commit when another put created the flight meanwhile", () => {
    const store = makeStore();
    const d = pathD("race");
    const txA = store.beginPut(d, schemaMsg(SCHEMA_A));
    const txB = store.beginPut(d, schemaMsg(SCHEMA_B));
    txA.append(batchMsg(1));
    txB.append(batchMsg(2));
    const created = txA.commit();
    const err = errorOf(() => txB.commit());
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(store.get(d)).toBe(created);
    expect(store.get(d)!.totalRecords).toBe(1);
    expect(store.stats().reservedBytes).toBe(0);
    expect(errorOf(() => txB.commit()).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("uses an injected schema comparison and names its difference", () => {
    const store = makeStore({
      schemasEqual: (a, b) => (a.header[0] === b.header[0] ? undefined : "field 0: int32 vs utf8"),
    });
    const d = pathD("a");
    putFlight(store, d, [], undefined, schemaMsg([1, 0]));
    // Different bytes, but equal for the injected comparison: appends.
    expect(putFlight(store, d, [batchMsg(1)], undefined, schemaMsg([1, 7])).messages).toHaveLength(1);
    const err = errorOf(() => store.beginPut(d, schemaMsg([2])));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/field 0: int32 vs utf8/);
  });

  it("keeps a reader's snapshot consistent while an append commits", () => {
    const store = makeStore();
    const d = pathD("a");
    putFlight(store, d, [batchMsg(1), batchMsg(2)]);
    const reader = store.get(d)!;
    const seen: number[] = [];
    const it = reader.messages[Symbol.iterator]();
    seen.push(it.next().value!.info.rows);

    putFlight(store, d, [batchMsg(3), batchMsg(4)]);

    for (let r = it.next(); !r.done; r = it.next()) seen.push(r.value.info.rows);
    expect(seen).toEqual([1, 2]);
    expect(reader.messages).toHaveLength(2);
    expect(reader.totalRecords).toBe(3);
    expect(Object.isFrozen(reader)).toBe(true);
    expect(Object.isFrozen(reader.messages)).toBe(true);
    expect(store.get(d)!.messages.map((m) => m.info.rows)).toEqual([1, 2, 3, 4]);
  });
});

describe("MemoryStore memory limit", () => {
  it("counts a flight's descriptor and key, so huge descriptors cannot hide from the limit", () => {
    const store = makeStore({ maxMemoryBytes: 64 * 1024 });
    const segment = "x".repeat(20_000);
    const d = pathD(segment);
    // 2 bytes per path character, the key's percent-encoded characters, the fixed overhead
    expect(idBytes(d)).toBe(FLIGHT_OVERHEAD_BYTES + 2 * 20_000 + 16 + descriptorKey(d).length);
    const flight = putFlight(store, d, []);
    expect(flight.memoryBytes).toBe(10 + idBytes(d));
    const cmd = cmdD("y".repeat(30_000));
    expect(errorOf(() => store.beginPut(cmd, schemaMsg())).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(store.stats()).toMatchObject({ flights: 1, reservedBytes: 0, memoryBytes: flight.memoryBytes });
  });

  it("refuses an append over the limit with RESOURCE_EXHAUSTED before storing anything", () => {
    const limit = 1000 + idBytes(pathD("big"));
    const store = makeStore({ maxMemoryBytes: limit });
    const tx = store.beginPut(pathD("big"), schemaMsg()); // 10 + identity
    tx.append(batchMsg(1, 400));
    tx.append(batchMsg(1, 400));
    const err = errorOf(() => tx.append(batchMsg(1, 400)));
    expect(err.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(new RegExp(`^memory limit of ${limit} bytes reached: `));
    // The put is doomed: only abort is allowed, and its reservation is already released.
    expect(store.stats().reservedBytes).toBe(0);
    expect(errorOf(() => tx.append(batchMsg(1, 1))).code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(errorOf(() => tx.commit()).code).toBe(StatusCode.FAILED_PRECONDITION);
    tx.abort();
    expect(store.get(pathD("big"))).toBeUndefined();
    expect(store.stats()).toMatchObject({ flights: 0, memoryBytes: 0, reservedBytes: 0 });
  });

  it("counts the reservations of concurrent open puts", () => {
    const ids = idBytes(pathD("one")) + idBytes(pathD("two"));
    const store = makeStore({ maxMemoryBytes: 1000 + ids });
    const tx1 = store.beginPut(pathD("one"), schemaMsg());
    const tx2 = store.beginPut(pathD("two"), schemaMsg());
    tx1.append(batchMsg(1, 600));
    // 600 + 10 + 10 (+ both identities) reserved: 400 more would pass the limit although nothing is stored yet.
    expect(store.stats()).toMatchObject({ memoryBytes: 0, reservedBytes: 620 + ids });
    expect(errorOf(() => tx2.append(batchMsg(1, 400))).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    tx1.abort();
    const tx3 = store.beginPut(pathD("three"), schemaMsg());
    tx3.append(batchMsg(1, 400));
    expect(tx3.commit().memoryBytes).toBe(410 + idBytes(pathD("three")));
  });

  it("counts stored flights against the limit", () => {
    const store = makeStore({ maxMemoryBytes: 1000 + idBytes(pathD("a")) + idBytes(pathD("b")) });
    putFlight(store, pathD("a"), [batchMsg(1, 800)]);
    const tx = store.beginPut(pathD("b"), schemaMsg());
    expect(errorOf(() => tx.append(batchMsg(1, 300))).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    store.delete(pathD("a"));
    const tx2 = store.beginPut(pathD("b"), schemaMsg());
    tx2.append(batchMsg(1, 300));
    expect(tx2.commit().memoryBytes).toBe(310 + idBytes(pathD("b")));
  });

  it("frees expired flights to make room instead of refusing", () => {
    const store = makeStore({ maxMemoryBytes: 1000 + idBytes(pathD("old")) });
    putFlight(store, pathD("old"), [batchMsg(1, 800)], { ttlMs: 100 });
    clock += 100;
    const flight = putFlight(store, pathD("new"), [batchMsg(1, 500)]);
    expect(flight.memoryBytes).toBe(510 + idBytes(pathD("new")));
    expect(store.stats()).toMatchObject({ flights: 1, memoryBytes: 510 + idBytes(pathD("new")) });
  });

  it("applies a lowered limit to new reservations only", () => {
    const store = makeStore({ maxMemoryBytes: 1000 + idBytes(pathD("a")) });
    const kept = putFlight(store, pathD("a"), [batchMsg(1, 500)]);
    store.setMaxMemoryBytes(100);
    expect(store.get(pathD("a"))).toBe(kept);
    expect(store.stats().maxMemoryBytes).toBe(100);
    expect(errorOf(() => store.beginPut(pathD("b"), schemaMsg())).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
  });
});

describe("MemoryStore TTL", () => {
  it("hides an expired flight before GC and lets gc remove it", () => {
    const store = makeStore();
    const d = pathD("t");
    const flight = putFlight(store, d, [batchMsg(1, 100)], { ttlMs: 1000 });
    expect(flight.expiresAt).toBe(clock + 1000);
    clock += 999;
    expect(store.get(d)).toBe(flight);
    clock += 1;
    expect(store.get(d)).toBeUndefined();
    expect(store.getByTicket(store.ticketFor(flight))).toBeUndefined();
    expect([...store.list()]).toHaveLength(0);
    expect(store.renew(d)).toBeUndefined();
    expect(store.stats().flights).toBe(1); // still held until collected

    const report = store.gc();
    expect(report.flightsRemoved).toBe(1);
    expect(report.bytesFreed).toBe(110 + idBytes(d));
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    expect(store.stats()).toMatchObject({ flights: 0, memoryBytes: 0, gcRuns: 1, gcFlightsRemoved: 1, gcBytesFreed: 110 + idBytes(d) });
    expect(store.gc().flightsRemoved).toBe(0);
  });

  it("uses the default TTL, and 0 means never", () => {
    const store = makeStore({ defaultTtlMs: 500 });
    expect(putFlight(store, pathD("a")).expiresAt).toBe(clock + 500);
    expect(putFlight(store, pathD("b"), [], { ttlMs: 0 }).expiresAt).toBeUndefined();
    store.setDefaultTtl(0);
    expect(putFlight(store, pathD("c")).expiresAt).toBeUndefined();
    expect(store.stats().defaultTtlMs).toBe(0);
    clock += 10_000_000;
    expect(store.gc().flightsRemoved).toBe(1);
    expect(store.get(pathD("b"))).toBeDefined();
    expect(store.get(pathD("c"))).toBeDefined();
  });

  it("keeps the expiry on an append without ttl and resets it on one with ttl", () => {
    const store = makeStore();
    const d = pathD("a");
    const start = clock;
    putFlight(store, d, [], { ttlMs: 1000 });
    clock += 500;
    expect(putFlight(store, d).expiresAt).toBe(start + 1000);
    clock += 100;
    expect(putFlight(store, d, [], { ttlMs: 2000 }).expiresAt).toBe(start + 2600);
    clock = start + 1500; // past the first expiry: must survive, its heap entry is stale
    expect(store.gc().flightsRemoved).toBe(0);
    expect(store.get(d)).toBeDefined();
    clock = start + 2600;
    expect(store.gc().flightsRemoved).toBe(1);
  });

  it("replaces an expired, uncollected flight instead of appending to it", () => {
    const store = makeStore();
    const d = pathD("a");
    putFlight(store, d, [batchMsg(1)], { ttlMs: 100 });
    clock += 100;
    // A different schema is fine: the old flight is gone for all readers.
    const fresh = putFlight(store, d, [batchMsg(2)], undefined, schemaMsg(SCHEMA_B));
    expect(fresh.totalRecords).toBe(2);
    expect(fresh.createdAt).toBe(clock);
    expect(store.stats()).toMatchObject({ flights: 1, rows: 2 });
    expect(store.gc().flightsRemoved).toBe(0);
  });

  it("renew uses the given ttl, else the flight's own, else the default", () => {
    const store = makeStore({ defaultTtlMs: 300 });
    const own = pathD("own");
    const dflt = pathD("default");
    putFlight(store, own, [], { ttlMs: 1000 });
    putFlight(store, dflt);
    clock += 200;
    expect(store.renew(own)!.expiresAt).toBe(clock + 1000);
    expect(store.renew(dflt)!.expiresAt).toBe(clock + 300);
    expect(store.renew(dflt, 5000)!.expiresAt).toBe(clock + 5000);
    expect(store.renew(own, 0)!.expiresAt).toBeUndefined();
    expect(store.renew(pathD("missing"))).toBeUndefined();
    expect(errorOf(() => store.renew(own, Number.NaN)).code).toBe(StatusCode.INVALID_ARGUMENT);

    clock += 4000;
    expect(store.gc().flightsRemoved).toBe(0); // both renewed past now
    clock += 1000;
    expect(store.gc().flightsRemoved).toBe(1);
    expect(store.get(own)).toBeDefined();
    expect(store.get(dflt)).toBeUndefined();
  });

  it("renewing many times keeps gc exact", () => {
    const store = makeStore();
    const d = pathD("hot");
    putFlight(store, d, [], { ttlMs: 100 });
    for (let i = 0; i < 5000; i++) {
      clock += 1;
      store.renew(d, 100);
    }
    putFlight(store, pathD("cold"), [], { ttlMs: 50 });
    clock += 60;
    expect(store.gc().flightsRemoved).toBe(1);
    expect(store.get(d)).toBeDefined();
    clock += 100;
    expect(store.gc().flightsRemoved).toBe(1);
    expect(store.stats().flights).toBe(0);
  });
});

describe("MemoryStore delete", () => {
  it("removes a flight and its memory; false when there is none", () => {
    const store = makeStore();
    const d = pathD("a");
    putFlight(store, d, [], { ttlMs: 100 });
    expect(store.delete(d)).toBe(true);
    expect(store.get(d)).toBeUndefined();
    expect(store.delete(d)).toBe(false);
    expect(store.stats()).toMatchObject({ flights: 0, memoryBytes: 0, rows: 0, bytes: 0 });
    // Its stale expiry entry must not remove a flight created later under the same key.
    const again = putFlight(store, d, [], { ttlMs: 1000 });
    clock += 500;
    expect(store.gc().flightsRemoved).toBe(0);
    expect(store.get(d)).toBe(again);
  });

  it("returns false for an expired flight but frees it", () => {
    const store = makeStore();
    putFlight(store, pathD("a"), [], { ttlMs: 10 });
    clock += 10;
    expect(store.delete(pathD("a"))).toBe(false);
    expect(store.stats().flights).toBe(0);
  });
});

describe("MemoryStore list", () => {
  it("filters by path prefix segment-wise, in insertion order", () => {
    const store = makeStore();
    const paths = [["a", "b", "c"], ["a", "bc"], ["a/b"], ["a", "b"], ["x"], ["ab"]];
    for (const p of paths) putFlight(store, pathD(...p));
    putFlight(store, cmdD("a"));
    const pathsOf = (it: Iterable<StoredFlight>): string[][] => [...it].map((f) => f.descriptor.path);

    expect(pathsOf(store.list(["a", "b"]))).toEqual([["a", "b", "c"], ["a", "b"]]);
    expect(pathsOf(store.list(["a"]))).toEqual([["a", "b", "c"], ["a", "bc"], ["a", "b"]]);
    expect(pathsOf(store.list(["a/b"]))).toEqual([["a/b"]]);
    expect(pathsOf(store.list(["zzz"]))).toEqual([]);
    expect([...store.list()]).toHaveLength(7);
    expect([...store.list([])]).toHaveLength(7);
    expect([...store.list()].filter((f) => f.descriptor.type === DescriptorType.CMD)).toHaveLength(1);
  });

  it("leaves out expired flights", () => {
    const store = makeStore();
    putFlight(store, pathD("a", "1"), [], { ttlMs: 10 });
    putFlight(store, pathD("a", "2"));
    clock += 10;
    expect([...store.list(["a"])].map((f) => f.key)).toEqual(["p:a/2"]);
  });

  it("refuses a prefix that is not an array of strings", () => {
    const store = makeStore();
    expect(errorOf(() => store.list("a" as unknown as string[])).code).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("lists 100k flights", () => {
    const store = makeStore();
    const schema = schemaMsg();
    const batch = batchMsg(1, 1);
    for (let i = 0; i < 100_000; i++) {
      const tx = store.beginPut(pathD(`g${i % 10}`, `f${i}`), schema);
      tx.append(batch);
      tx.commit();
    }
    let n = 0;
    for (const _ of store.list()) n++;
    expect(n).toBe(100_000);
    expect([...store.list(["g3"])]).toHaveLength(10_000);
    expect([...store.list(["g3", "f13"])].map((f) => f.key)).toEqual(["p:g3/f13"]);
  });
});

describe("MemoryStore gc", () => {
  it("removes exactly the expired flights among 100k live ones", () => {
    const store = makeStore();
    const schema = schemaMsg();
    for (let i = 0; i < 100_000; i++) {
      store.beginPut(pathD("live", String(i)), schema, { ttlMs: i % 2 === 0 ? 0 : 1_000_000 }).commit();
    }
    for (let i = 0; i < 10; i++) putFlight(store, pathD("dead", String(i)), [batchMsg(1, 100)], { ttlMs: 50 });
    clock += 50;
    // A full scan would have to iterate the flight map; the expiry heap never does.
    const scans = (["values", "entries", "keys", "forEach"] as const).map((m) => jest.spyOn(Map.prototype, m));
    const report = store.gc();
    const scanCalls = scans.reduce((n, spy) => n + spy.mock.calls.length, 0);
    scans.forEach((spy) => spy.mockRestore());
    expect(scanCalls).toBe(0);
    expect(report.flightsRemoved).toBe(10);
    let dead = 0;
    for (let i = 0; i < 10; i++) dead += 110 + idBytes(pathD("dead", String(i)));
    expect(report.bytesFreed).toBe(dead);
    expect(store.stats().flights).toBe(100_000);
    expect([...store.list(["dead"])]).toHaveLength(0);
    expect(store.gc().flightsRemoved).toBe(0);
  });

  it("runs in the background on the interval (fake timers)", () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: true, gcIntervalMs: 1000 });
    putFlight(store, pathD("a"), [batchMsg(1, 100)], { ttlMs: 500 });
    putFlight(store, pathD("b"), [batchMsg(1, 100)]);
    clock += 500;
    expect(store.stats().flights).toBe(2);
    jest.advanceTimersByTime(1000);
    expect(store.stats()).toMatchObject({ flights: 1, gcRuns: 1, gcFlightsRemoved: 1, gcBytesFreed: 110 + idBytes(pathD("a")) });
    expect(store.get(pathD("b"))).toBeDefined();
  });

  it("processes a mass expiry in slices that yield to the event loop", () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: true, gcIntervalMs: 1000 });
    const schema = schemaMsg();
    for (let i = 0; i < 12_000; i++) store.beginPut(pathD("x", String(i)), schema, { ttlMs: 10 }).commit();
    clock += 10;
    jest.advanceTimersByTime(1000); // the interval fires and runs the first slice only
    const afterFirst = store.stats();
    expect(afterFirst.gcFlightsRemoved).toBeGreaterThan(0);
    expect(afterFirst.gcFlightsRemoved).toBeLessThanOrEqual(5000);
    expect(afterFirst.gcRuns).toBe(0); // the run is not finished
    jest.advanceTimersByTime(0); // run the setImmediate slices
    let guard = 0;
    while (store.stats().gcRuns === 0 && guard++ < 100) jest.advanceTimersByTime(1);
    expect(store.stats()).toMatchObject({ flights: 0, gcRuns: 1, gcFlightsRemoved: 12_000 });
  });

  it("sends background errors to onError, never to a caller", () => {
    jest.useFakeTimers();
    const errors: unknown[] = [];
    let failClock = false;
    const store = makeStore({
      enableGC: true,
      gcIntervalMs: 100,
      now: () => {
        if (failClock) throw new Error("clock broke");
        return clock;
      },
      onError: (err) => errors.push(err),
    });
    putFlight(store, pathD("a"));
    failClock = true;
    expect(() => jest.advanceTimersByTime(100)).not.toThrow();
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe("clock broke");
    failClock = false;
    jest.advanceTimersByTime(100); // the next run works again
    expect(store.stats().gcRuns).toBe(1);
  });

  it("setGcInterval restarts the timer and close stops it", () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: true, gcIntervalMs: 10_000 });
    expect(jest.getTimerCount()).toBe(1);
    store.setGcInterval(100);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(100);
    expect(store.stats().gcRuns).toBe(1);
    store.close();
    expect(jest.getTimerCount()).toBe(0);
    store.setGcInterval(100); // a closed store stays closed
    expect(jest.getTimerCount()).toBe(0);
    expect(store.get(pathD("nothing"))).toBeUndefined(); // still readable
  });

  it("starts no timer when GC is disabled", () => {
    jest.useFakeTimers();
    makeStore({ enableGC: false });
    expect(jest.getTimerCount()).toBe(0);
  });

  it("runs with a short real interval and an unref'd timer", async () => {
    const store = makeStore({ enableGC: true, gcIntervalMs: 5, now: Date.now });
    putFlight(store, pathD("a"), [], { ttlMs: 1 });
    const deadline = Date.now() + 5000;
    while (store.stats().flights > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(store.stats().flights).toBe(0);
    expect(store.stats().gcFlightsRemoved).toBe(1);
  });
});

describe("MemoryStore option validation", () => {
  it.each<[string, MemoryStoreOptions, RegExp]>([
    ["negative ttl", { defaultTtlMs: -1 }, /defaultTtlMs must be a number of milliseconds from 0/],
    ["NaN ttl", { defaultTtlMs: Number.NaN }, /defaultTtlMs/],
    ["huge ttl", { defaultTtlMs: 1e20 }, /defaultTtlMs/],
    ["zero memory", { maxMemoryBytes: 0 }, /maxMemoryBytes must be a number of bytes greater than 0/],
    ["string memory", { maxMemoryBytes: "1GB" as unknown as number }, /maxMemoryBytes.*got string/],
    ["infinite memory", { maxMemoryBytes: Infinity }, /maxMemoryBytes/],
    ["zero interval", { gcIntervalMs: 0 }, /gcIntervalMs must be a number of milliseconds from 1 to 2147483647/],
    ["too long interval", { gcIntervalMs: 2 ** 31 }, /gcIntervalMs/],
    ["non-boolean enableGC", { enableGC: "yes" as unknown as boolean }, /enableGC must be a boolean/],
    ["non-function now", { now: 5 as unknown as () => number }, /now must be a function/],
    ["non-function onError", { onError: {} as unknown as () => void }, /onError must be a function/],
    ["non-function schemasEqual", { schemasEqual: "x" as unknown as () => undefined }, /schemasEqual must be a function/],
    ["unknown option", { ttlMs: 5 } as unknown as MemoryStoreOptions, /unknown MemoryStore option "ttlMs"/],
  ])("throws TypeError for %s", (_label, options, message) => {
    expect(() => new MemoryStore({ enableGC: false, ...options })).toThrow(TypeError);
    expect(() => new MemoryStore({ enableGC: false, ...options })).toThrow(message);
  });

  it("accepts the defaults", () => {
    const store = new MemoryStore();
    stores.push(store);
    expect(store.stats()).toMatchObject({ maxMemoryBytes: 1024 ** 3, defaultTtlMs: 0, flights: 0 });
  });

  it("validates the runtime setters like the constructor", () => {
    const store = makeStore();
    expect(() => store.setDefaultTtl(-5)).toThrow(TypeError);
    expect(() => store.setMaxMemoryBytes(0)).toThrow(/maxMemoryBytes/);
    expect(() => store.setGcInterval(0)).toThrow(/gcIntervalMs/);
    store.setDefaultTtl(42);
    store.setMaxMemoryBytes(77);
    expect(store.stats()).toMatchObject({ defaultTtlMs: 42, maxMemoryBytes: 77 });
  });
});

describe("structuralSchemasEqual (the default comparator)", () => {
  const schemaOf = (columns: Record<string, Int32Array | Float64Array>): StoredMessage => {
    const [m] = splitIpcStream(tableToIPC(tableFromArrays(columns), "stream"));
    return { header: m.header, body: m.body, appMetadata: new Uint8Array(0), info: { kind: MessageKind.SCHEMA, version: 4, bodyLength: 0, rows: 0 }, byteSize: m.header.byteLength };
  };

  it("accepts the same schema and names the first difference of another", () => {
    const a = schemaOf({ x: Int32Array.from([1]) });
    expect(structuralSchemasEqual(a, schemaOf({ x: Int32Array.from([2]) }))).toBeUndefined();
    expect(structuralSchemasEqual(a, schemaOf({ x: Float64Array.from([2]) }))).toMatch(/field "x"/);
  });

  it("is what a MemoryStore uses when none is given", () => {
    const store = new MemoryStore({ enableGC: false });
    stores.push(store);
    const d = pathD("structural");
    store.beginPut(d, schemaOf({ x: Int32Array.from([1]) })).commit();
    expect(() => store.beginPut(d, schemaOf({ y: Int32Array.from([1]) }))).toThrow(/field/);
  });
});

describe("gcInSlices", () => {
  it("removes every expired flight across several slices, yielding in between", async () => {
    const store = makeStore({ defaultTtlMs: 10 });
    for (let i = 0; i < 12_000; i++) putFlight(store, pathD(`s${i}`));
    clock += 20;
    let otherWorkRan = false;
    setImmediate(() => (otherWorkRan = true)); // runs only if gcInSlices yields to the event loop
    const report = await store.gcInSlices();
    expect(report.flightsRemoved).toBe(12_000);
    expect(store.stats().flights).toBe(0);
    expect(otherWorkRan).toBe(true);
  });
});
