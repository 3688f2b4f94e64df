import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { StatusCode } from "../status-code";
import { isFlightStore, offersGc, offersMemoryLimit, offersTtl, type FlightStore, type StoredFlight } from "./flight-store";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { splitIpcStream } from "../ipc/ipc-stream";
import { FLIGHT_OVERHEAD_BYTES, MESSAGE_STATS_SLOT_BYTES as SLOT, MemoryStore, defaultSchemasEqual, flightOverheadBytes, structuralSchemasEqual, type MemoryStoreOptions } from "./memory-store";
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

async function putFlight(
  store: MemoryStore,
  d: FlightDescriptor,
  batches: StoredMessage[] = [batchMsg(10)],
  options?: { ttlMs?: number },
  schema = schemaMsg(),
): Promise<StoredFlight> {
  const tx = (await store.beginPut(d, schema, options));
  for (const b of batches) (await tx.append(b));
  return (await tx.commit());
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

beforeEach(() => {
  clock = 1_000_000;
});

/** A store's stats with its sections spread out, for short assertions. */
function figures(store: MemoryStore) {
  const { memory, ttl, gc, ...totals } = store.stats();
  return { ...totals, ...memory, ...ttl, ...gc };
}

/** A flight's messages, read through the asynchronous stream the contract defines. */
async function messagesOf(flight: StoredFlight): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const m of flight.messages()) out.push(m);
  return out;
}

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
  it("commits a put and serves it by descriptor and by ticket", async () => {
    const store = makeStore();
    const d = pathD("sales", "2024");
    const flight = (await putFlight(store, d, [batchMsg(5, 100), batchMsg(3, 50, MessageKind.DICTIONARY_BATCH), batchMsg(7, 100)]));

    expect(flight.key).toBe("p:sales/2024");
    expect(flight.descriptor.path).toEqual(["sales", "2024"]);
    expect(flight.messageCount).toBe(3);
    expect(flight.totalRecords).toBe(12); // dictionary rows do not count
    expect(flight.totalBytes).toBe(4 + 3 * (2 + 8)); // schema header + 3 × (header + body)
    expect(flight.memoryBytes).toBe(10 + 250 + 3 * SLOT + idBytes(d)); // SLOT: each message's statistics entry
    expect(flight.createdAt).toBe(clock);
    expect(flight.expiresAt).toBeUndefined();

    expect((await store.get(d))).toBe(flight);
    const ticket = store.ticketFor(flight);
    expect(new TextDecoder().decode(ticket)).toBe("p:sales/2024");
    expect((await store.getByTicket(ticket))).toBe(flight);
    expect((await store.get(pathD("sales")))).toBeUndefined();
    expect((await store.getByTicket(new TextEncoder().encode("p:nothing")))).toBeUndefined();
    expect((await errorOf(() => (store.getByTicket(new Uint8Array([0xff, 0]))))).code).toBe(StatusCode.INVALID_ARGUMENT);

    const s = figures(store);
    expect(s).toMatchObject({ flights: 1, rows: 12, bytes: flight.totalBytes, memoryBytes: 260 + 3 * SLOT + idBytes(d), reservedBytes: 0 });
  });

  it("stores CMD flights too", async () => {
    const store = makeStore();
    const flight = (await putFlight(store, cmdD("SELECT 1")));
    expect((await store.get(cmdD("SELECT 1")))).toBe(flight);
    expect((await store.getByTicket(store.ticketFor(flight)))).toBe(flight);
  });

  it("is not affected by later changes to the caller's descriptor", async () => {
    const store = makeStore();
    const d = pathD("a");
    const flight = (await putFlight(store, d));
    d.path.push("b");
    expect(flight.descriptor.path).toEqual(["a"]);
    expect((await store.get(pathD("a")))).toBe(flight);
  });

  it("makes nothing visible before commit", async () => {
    const store = makeStore();
    const tx = (await store.beginPut(pathD("a"), schemaMsg()));
    (await tx.append(batchMsg(1)));
    expect((await store.get(pathD("a")))).toBeUndefined();
    expect([...store.list()]).toHaveLength(0);
    expect(figures(store).reservedBytes).toBe(110 + SLOT + idBytes(pathD("a")));
    (await tx.commit());
    expect((await store.get(pathD("a")))?.totalRecords).toBe(1);
  });

  it("abort leaves nothing visible and releases the reservation", async () => {
    const store = makeStore();
    const tx = (await store.beginPut(pathD("a"), schemaMsg()));
    (await tx.append(batchMsg(1, 500)));
    expect(figures(store).reservedBytes).toBe(510 + SLOT + idBytes(pathD("a")));
    (await tx.abort());
    (await tx.abort()); // safe twice
    expect((await store.get(pathD("a")))).toBeUndefined();
    expect(figures(store)).toMatchObject({ flights: 0, reservedBytes: 0, memoryBytes: 0 });
    expect((await errorOf(() => (tx.commit()))).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("refuses use of a committed transaction with FAILED_PRECONDITION", async () => {
    const store = makeStore();
    const tx = (await store.beginPut(pathD("a"), schemaMsg()));
    (await tx.commit());
    const again = (await errorOf(() => (tx.commit())));
    expect(again.code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(again.message).toMatch(/already committed/);
    expect((await errorOf(() => (tx.append(batchMsg(1))))).code).toBe(StatusCode.FAILED_PRECONDITION);
    (await tx.abort()); // no effect on the committed flight
    expect((await store.get(pathD("a")))).toBeDefined();
    expect(figures(store).reservedBytes).toBe(0);
  });

  it("refuses schema messages in append and dooms the put", async () => {
    const store = makeStore();
    const tx = (await store.beginPut(pathD("a"), schemaMsg()));
    (await tx.append(batchMsg(1)));
    const err = (await errorOf(() => (tx.append(schemaMsg()))));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await errorOf(() => (tx.commit()))).code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(figures(store).reservedBytes).toBe(0);
    expect((await store.get(pathD("a")))).toBeUndefined();
  });

  it("refuses a put that does not start with a schema, and bad descriptors", async () => {
    const store = makeStore();
    expect((await errorOf(() => (store.beginPut(pathD("a"), batchMsg(1))))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await errorOf(() => (store.beginPut(pathD(), schemaMsg())))).code).toBe(StatusCode.INVALID_ARGUMENT);
    const unknown = { type: DescriptorType.UNKNOWN, path: ["a"], cmd: new Uint8Array() };
    expect((await errorOf(() => (store.beginPut(unknown, schemaMsg())))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await errorOf(() => (store.get(unknown)))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await errorOf(() => (store.beginPut(pathD("a"), schemaMsg(), { ttlMs: -1 })))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(figures(store).reservedBytes).toBe(0);
  });
});

describe("MemoryStore appends", () => {
  it("appends a put with the same schema to the existing flight", async () => {
    const store = makeStore();
    const d = pathD("a");
    const first = (await putFlight(store, d, [batchMsg(5)]));
    clock += 10;
    const second = (await putFlight(store, d, [batchMsg(7), batchMsg(1)]));
    expect(second.messageCount).toBe(3);
    expect(second.totalRecords).toBe(13);
    expect(second.memoryBytes).toBe(10 + 300 + 3 * SLOT + idBytes(d)); // one schema and one identity only
    expect(second.totalBytes).toBe(4 + 3 * 10);
    expect(second.createdAt).toBe(first.createdAt);
    expect(second.updatedAt).toBe(clock);
    expect(second.schema).toBe(first.schema);
    expect(figures(store)).toMatchObject({ flights: 1, rows: 13, memoryBytes: 310 + 3 * SLOT + idBytes(d), reservedBytes: 0 });
  });

  it("replaces the flight instead of appending with replace: true, even when both puts were open together", async () => {
    const store = makeStore();
    const d = pathD("copy");
    await putFlight(store, d, [batchMsg(5), batchMsg(6)]);
    // Two whole copies of one flight open at once (a cluster's re-replication from two nodes):
    // whichever commits last is the flight, never both.
    const a = await store.beginPut(d, schemaMsg(), { replace: true });
    const b = await store.beginPut(d, schemaMsg(), { replace: true });
    await a.append(batchMsg(7));
    await b.append(batchMsg(7));
    const snapshot = (await store.get(d))!;
    await a.commit();
    const last = await b.commit();
    expect(last.messageCount).toBe(1);
    expect(last.totalRecords).toBe(7);
    expect((await store.get(d))!.totalRecords).toBe(7);
    expect(snapshot.totalRecords).toBe(11); // a reader's snapshot keeps the old flight
    expect(figures(store)).toMatchObject({ flights: 1, rows: 7, memoryBytes: 110 + SLOT + idBytes(d), reservedBytes: 0 });
  });

  it("refuses a different schema at beginPut with INVALID_ARGUMENT and leaves the flight unchanged", async () => {
    const store = makeStore();
    const d = pathD("a");
    const before = (await putFlight(store, d));
    const err = (await errorOf(() => (store.beginPut(d, schemaMsg(SCHEMA_B)))));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/schema differs from the stored flight's schema/);
    expect((await store.get(d))).toBe(before);
    expect(figures(store)).toMatchObject({ flights: 1, memoryBytes: before.memoryBytes, reservedBytes: 0 });
  });

  it("re-checks the schema at commit when another put created the flight meanwhile", async () => {
    const store = makeStore();
    const d = pathD("race");
    const txA = (await store.beginPut(d, schemaMsg(SCHEMA_A)));
    const txB = (await store.beginPut(d, schemaMsg(SCHEMA_B)));
    (await txA.append(batchMsg(1)));
    (await txB.append(batchMsg(2)));
    const created = (await txA.commit());
    const err = (await errorOf(() => (txB.commit())));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await store.get(d))).toBe(created);
    expect((await store.get(d))!.totalRecords).toBe(1);
    expect(figures(store).reservedBytes).toBe(0);
    expect((await errorOf(() => (txB.commit()))).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("uses an injected schema comparison and names its difference", async () => {
    const store = makeStore({
      schemasEqual: (a, b) => (a.header[0] === b.header[0] ? undefined : "field 0: int32 vs utf8"),
    });
    const d = pathD("a");
    (await putFlight(store, d, [], undefined, schemaMsg([1, 0])));
    // Different bytes, but equal for the injected comparison: appends.
    expect((await putFlight(store, d, [batchMsg(1)], undefined, schemaMsg([1, 7]))).messageCount).toBe(1);
    const err = (await errorOf(() => (store.beginPut(d, schemaMsg([2])))));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/field 0: int32 vs utf8/);
  });

  it("keeps a reader's snapshot consistent while an append commits", async () => {
    const store = makeStore();
    const d = pathD("a");
    (await putFlight(store, d, [batchMsg(1), batchMsg(2)]));
    const reader = (await store.get(d))!;
    const seen: number[] = [];
    const it = reader.messages()[Symbol.asyncIterator]();
    seen.push((await it.next()).value!.info.rows);

    (await putFlight(store, d, [batchMsg(3), batchMsg(4)]));

    for (let r = await it.next(); !r.done; r = await it.next()) seen.push(r.value.info.rows);
    expect(seen).toEqual([1, 2]);
    expect(reader.messageCount).toBe(2);
    expect(await messagesOf(reader)).toHaveLength(2);
    expect(reader.totalRecords).toBe(3);
    expect(Object.isFrozen(reader)).toBe(true);
    expect((await messagesOf((await store.get(d))!)).map((m) => m.info.rows)).toEqual([1, 2, 3, 4]);
  });
});

describe("MemoryStore memory limit", () => {
  it("counts a flight's descriptor and key, so huge descriptors cannot hide from the limit", async () => {
    const store = makeStore({ maxMemoryBytes: 64 * 1024 });
    const segment = "x".repeat(20_000);
    const d = pathD(segment);
    // 2 bytes per path character, the key's percent-encoded characters, the fixed overhead
    expect(idBytes(d)).toBe(FLIGHT_OVERHEAD_BYTES + 2 * 20_000 + 16 + descriptorKey(d).length);
    const flight = (await putFlight(store, d, []));
    expect(flight.memoryBytes).toBe(10 + idBytes(d));
    const cmd = cmdD("y".repeat(30_000));
    expect((await errorOf(() => (store.beginPut(cmd, schemaMsg())))).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(figures(store)).toMatchObject({ flights: 1, reservedBytes: 0, memoryBytes: flight.memoryBytes });
  });

  it("refuses an append over the limit with RESOURCE_EXHAUSTED before storing anything", async () => {
    const limit = 1000 + idBytes(pathD("big"));
    const store = makeStore({ maxMemoryBytes: limit });
    const tx = (await store.beginPut(pathD("big"), schemaMsg())); // 10 + identity
    (await tx.append(batchMsg(1, 400)));
    (await tx.append(batchMsg(1, 400)));
    const err = (await errorOf(() => (tx.append(batchMsg(1, 400)))));
    expect(err.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(new RegExp(`^memory limit of ${limit} bytes reached: `));
    // The put is doomed: only abort is allowed, and its reservation is already released.
    expect(figures(store).reservedBytes).toBe(0);
    expect((await errorOf(() => (tx.append(batchMsg(1, 1))))).code).toBe(StatusCode.FAILED_PRECONDITION);
    expect((await errorOf(() => (tx.commit()))).code).toBe(StatusCode.FAILED_PRECONDITION);
    (await tx.abort());
    expect((await store.get(pathD("big")))).toBeUndefined();
    expect(figures(store)).toMatchObject({ flights: 0, memoryBytes: 0, reservedBytes: 0 });
  });

  it("counts the reservations of concurrent open puts", async () => {
    const ids = idBytes(pathD("one")) + idBytes(pathD("two"));
    const store = makeStore({ maxMemoryBytes: 1000 + ids });
    const tx1 = (await store.beginPut(pathD("one"), schemaMsg()));
    const tx2 = (await store.beginPut(pathD("two"), schemaMsg()));
    (await tx1.append(batchMsg(1, 600)));
    // 600 + 10 + 10 (+ both identities) reserved: 400 more would pass the limit although nothing is stored yet.
    expect(figures(store)).toMatchObject({ memoryBytes: 0, reservedBytes: 620 + SLOT + ids });
    expect((await errorOf(() => (tx2.append(batchMsg(1, 400))))).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    (await tx1.abort());
    const tx3 = (await store.beginPut(pathD("three"), schemaMsg()));
    (await tx3.append(batchMsg(1, 400)));
    expect((await tx3.commit()).memoryBytes).toBe(410 + SLOT + idBytes(pathD("three")));
  });

  it("counts stored flights against the limit", async () => {
    const store = makeStore({ maxMemoryBytes: 1000 + idBytes(pathD("a")) + idBytes(pathD("b")) });
    (await putFlight(store, pathD("a"), [batchMsg(1, 800)]));
    const tx = (await store.beginPut(pathD("b"), schemaMsg()));
    expect((await errorOf(() => (tx.append(batchMsg(1, 300))))).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    (await store.delete(pathD("a")));
    const tx2 = (await store.beginPut(pathD("b"), schemaMsg()));
    (await tx2.append(batchMsg(1, 300)));
    expect((await tx2.commit()).memoryBytes).toBe(310 + SLOT + idBytes(pathD("b")));
  });

  it("frees expired flights to make room instead of refusing", async () => {
    const store = makeStore({ maxMemoryBytes: 1000 + idBytes(pathD("old")) });
    (await putFlight(store, pathD("old"), [batchMsg(1, 800)], { ttlMs: 100 }));
    clock += 100;
    const flight = (await putFlight(store, pathD("new"), [batchMsg(1, 500)]));
    expect(flight.memoryBytes).toBe(510 + SLOT + idBytes(pathD("new")));
    expect(figures(store)).toMatchObject({ flights: 1, memoryBytes: 510 + SLOT + idBytes(pathD("new")) });
  });

  it("applies a lowered limit to new reservations only", async () => {
    const store = makeStore({ maxMemoryBytes: 1000 + idBytes(pathD("a")) });
    const kept = (await putFlight(store, pathD("a"), [batchMsg(1, 500)]));
    store.setMaxMemoryBytes(100);
    expect((await store.get(pathD("a")))).toBe(kept);
    expect(figures(store).maxMemoryBytes).toBe(100);
    expect((await errorOf(() => (store.beginPut(pathD("b"), schemaMsg())))).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
  });
});

describe("MemoryStore TTL", () => {
  it("hides an expired flight before GC and lets gc remove it", async () => {
    const store = makeStore();
    const d = pathD("t");
    const flight = (await putFlight(store, d, [batchMsg(1, 100)], { ttlMs: 1000 }));
    expect(flight.expiresAt).toBe(clock + 1000);
    clock += 999;
    expect((await store.get(d))).toBe(flight);
    clock += 1;
    expect((await store.get(d))).toBeUndefined();
    expect((await store.getByTicket(store.ticketFor(flight)))).toBeUndefined();
    expect([...store.list()]).toHaveLength(0);
    expect((await store.renew(d))).toBeUndefined();
    expect(figures(store).flights).toBe(1); // still held until collected

    const report = (await store.gc());
    expect(report.flightsRemoved).toBe(1);
    expect(report.bytesFreed).toBe(110 + SLOT + idBytes(d));
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    expect(figures(store)).toMatchObject({ flights: 0, memoryBytes: 0, gcRuns: 1, gcFlightsRemoved: 1, gcBytesFreed: 110 + SLOT + idBytes(d) });
    expect((await store.gc()).flightsRemoved).toBe(0);
  });

  it("uses the default TTL, and 0 means never", async () => {
    const store = makeStore({ defaultTtlMs: 500 });
    expect((await putFlight(store, pathD("a"))).expiresAt).toBe(clock + 500);
    expect((await putFlight(store, pathD("b"), [], { ttlMs: 0 })).expiresAt).toBeUndefined();
    store.setDefaultTtl(0);
    expect((await putFlight(store, pathD("c"))).expiresAt).toBeUndefined();
    expect(figures(store).defaultTtlMs).toBe(0);
    clock += 10_000_000;
    expect((await store.gc()).flightsRemoved).toBe(1);
    expect((await store.get(pathD("b")))).toBeDefined();
    expect((await store.get(pathD("c")))).toBeDefined();
  });

  it("keeps the expiry on an append without ttl and resets it on one with ttl", async () => {
    const store = makeStore();
    const d = pathD("a");
    const start = clock;
    (await putFlight(store, d, [], { ttlMs: 1000 }));
    clock += 500;
    expect((await putFlight(store, d)).expiresAt).toBe(start + 1000);
    clock += 100;
    expect((await putFlight(store, d, [], { ttlMs: 2000 })).expiresAt).toBe(start + 2600);
    clock = start + 1500; // past the first expiry: must survive, its heap entry is stale
    expect((await store.gc()).flightsRemoved).toBe(0);
    expect((await store.get(d))).toBeDefined();
    clock = start + 2600;
    expect((await store.gc()).flightsRemoved).toBe(1);
  });

  it("replaces an expired, uncollected flight instead of appending to it", async () => {
    const store = makeStore();
    const d = pathD("a");
    (await putFlight(store, d, [batchMsg(1)], { ttlMs: 100 }));
    clock += 100;
    // A different schema is fine: the old flight is gone for all readers.
    const fresh = (await putFlight(store, d, [batchMsg(2)], undefined, schemaMsg(SCHEMA_B)));
    expect(fresh.totalRecords).toBe(2);
    expect(fresh.createdAt).toBe(clock);
    expect(figures(store)).toMatchObject({ flights: 1, rows: 2 });
    expect((await store.gc()).flightsRemoved).toBe(0);
  });

  it("renew uses the given ttl, else the flight's own, else the default", async () => {
    const store = makeStore({ defaultTtlMs: 300 });
    const own = pathD("own");
    const dflt = pathD("default");
    (await putFlight(store, own, [], { ttlMs: 1000 }));
    (await putFlight(store, dflt));
    clock += 200;
    expect((await store.renew(own))!.expiresAt).toBe(clock + 1000);
    expect((await store.renew(dflt))!.expiresAt).toBe(clock + 300);
    expect((await store.renew(dflt, 5000))!.expiresAt).toBe(clock + 5000);
    expect((await store.renew(own, 0))!.expiresAt).toBeUndefined();
    expect((await store.renew(pathD("missing")))).toBeUndefined();
    expect((await errorOf(() => (store.renew(own, Number.NaN)))).code).toBe(StatusCode.INVALID_ARGUMENT);

    clock += 4000;
    expect((await store.gc()).flightsRemoved).toBe(0); // both renewed past now
    clock += 1000;
    expect((await store.gc()).flightsRemoved).toBe(1);
    expect((await store.get(own))).toBeDefined();
    expect((await store.get(dflt))).toBeUndefined();
  });

  it("renewing many times keeps gc exact", async () => {
    const store = makeStore();
    const d = pathD("hot");
    (await putFlight(store, d, [], { ttlMs: 100 }));
    for (let i = 0; i < 5000; i++) {
      clock += 1;
      (await store.renew(d, 100));
    }
    (await putFlight(store, pathD("cold"), [], { ttlMs: 50 }));
    clock += 60;
    expect((await store.gc()).flightsRemoved).toBe(1);
    expect((await store.get(d))).toBeDefined();
    clock += 100;
    expect((await store.gc()).flightsRemoved).toBe(1);
    expect(figures(store).flights).toBe(0);
  });
});

describe("MemoryStore delete", () => {
  it("removes a flight and its memory; false when there is none", async () => {
    const store = makeStore();
    const d = pathD("a");
    (await putFlight(store, d, [], { ttlMs: 100 }));
    expect((await store.delete(d))).toBe(true);
    expect((await store.get(d))).toBeUndefined();
    expect((await store.delete(d))).toBe(false);
    expect(figures(store)).toMatchObject({ flights: 0, memoryBytes: 0, rows: 0, bytes: 0 });
    // Its stale expiry entry must not remove a flight created later under the same key.
    const again = (await putFlight(store, d, [], { ttlMs: 1000 }));
    clock += 500;
    expect((await store.gc()).flightsRemoved).toBe(0);
    expect((await store.get(d))).toBe(again);
  });

  it("returns false for an expired flight but frees it", async () => {
    const store = makeStore();
    (await putFlight(store, pathD("a"), [], { ttlMs: 10 }));
    clock += 10;
    expect((await store.delete(pathD("a")))).toBe(false);
    expect(figures(store).flights).toBe(0);
  });
});

describe("MemoryStore list", () => {
  it("filters by path prefix segment-wise, in insertion order", async () => {
    const store = makeStore();
    const paths = [["a", "b", "c"], ["a", "bc"], ["a/b"], ["a", "b"], ["x"], ["ab"]];
    for (const p of paths) (await putFlight(store, pathD(...p)));
    (await putFlight(store, cmdD("a")));
    const pathsOf = (it: Iterable<StoredFlight>): string[][] => [...it].map((f) => f.descriptor.path);

    expect(pathsOf(store.list(["a", "b"]))).toEqual([["a", "b", "c"], ["a", "b"]]);
    expect(pathsOf(store.list(["a"]))).toEqual([["a", "b", "c"], ["a", "bc"], ["a", "b"]]);
    expect(pathsOf(store.list(["a/b"]))).toEqual([["a/b"]]);
    expect(pathsOf(store.list(["zzz"]))).toEqual([]);
    expect([...store.list()]).toHaveLength(7);
    expect([...store.list([])]).toHaveLength(7);
    expect([...store.list()].filter((f) => f.descriptor.type === DescriptorType.CMD)).toHaveLength(1);
  });

  it("leaves out expired flights", async () => {
    const store = makeStore();
    (await putFlight(store, pathD("a", "1"), [], { ttlMs: 10 }));
    (await putFlight(store, pathD("a", "2")));
    clock += 10;
    expect([...store.list(["a"])].map((f) => f.key)).toEqual(["p:a/2"]);
  });

  it("refuses a prefix that is not an array of strings", async () => {
    const store = makeStore();
    expect((await errorOf(() => store.list("a" as unknown as string[]))).code).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("lists 100k flights", async () => {
    const store = makeStore();
    const schema = schemaMsg();
    const batch = batchMsg(1, 1);
    for (let i = 0; i < 100_000; i++) {
      const tx = (await store.beginPut(pathD(`g${i % 10}`, `f${i}`), schema));
      (await tx.append(batch));
      (await tx.commit());
    }
    let n = 0;
    for (const _ of store.list()) n++;
    expect(n).toBe(100_000);
    expect([...store.list(["g3"])]).toHaveLength(10_000);
    expect([...store.list(["g3", "f13"])].map((f) => f.key)).toEqual(["p:g3/f13"]);
  });
});

describe("MemoryStore gc", () => {
  it("removes exactly the expired flights among 100k live ones", async () => {
    const store = makeStore();
    const schema = schemaMsg();
    for (let i = 0; i < 100_000; i++) {
      await (await store.beginPut(pathD("live", String(i)), schema, { ttlMs: i % 2 === 0 ? 0 : 1_000_000 })).commit();
    }
    for (let i = 0; i < 10; i++) (await putFlight(store, pathD("dead", String(i)), [batchMsg(1, 100)], { ttlMs: 50 }));
    clock += 50;
    // A full scan would have to iterate the flight map; the expiry heap never does.
    const scans = (["values", "entries", "keys", "forEach"] as const).map((m) => jest.spyOn(Map.prototype, m));
    const report = (await store.gc());
    const scanCalls = scans.reduce((n, spy) => n + spy.mock.calls.length, 0);
    scans.forEach((spy) => spy.mockRestore());
    expect(scanCalls).toBe(0);
    expect(report.flightsRemoved).toBe(10);
    let dead = 0;
    for (let i = 0; i < 10; i++) dead += 110 + SLOT + idBytes(pathD("dead", String(i)));
    expect(report.bytesFreed).toBe(dead);
    expect(figures(store).flights).toBe(100_000);
    expect([...store.list(["dead"])]).toHaveLength(0);
    expect((await store.gc()).flightsRemoved).toBe(0);
  });

  it("runs in the background on the interval (fake timers)", async () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: true, gcIntervalMs: 1000 });
    (await putFlight(store, pathD("a"), [batchMsg(1, 100)], { ttlMs: 500 }));
    (await putFlight(store, pathD("b"), [batchMsg(1, 100)]));
    clock += 500;
    expect(figures(store).flights).toBe(2);
    jest.advanceTimersByTime(1000);
    expect(figures(store)).toMatchObject({ flights: 1, gcRuns: 1, gcFlightsRemoved: 1, gcBytesFreed: 110 + SLOT + idBytes(pathD("a")) });
    expect((await store.get(pathD("b")))).toBeDefined();
  });

  it("processes a mass expiry in slices that yield to the event loop", async () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: true, gcIntervalMs: 1000 });
    const schema = schemaMsg();
    for (let i = 0; i < 12_000; i++) await (await store.beginPut(pathD("x", String(i)), schema, { ttlMs: 10 })).commit();
    clock += 10;
    jest.advanceTimersByTime(1000); // the interval fires and runs the first slice only
    const afterFirst = figures(store);
    expect(afterFirst.gcFlightsRemoved).toBeGreaterThan(0);
    expect(afterFirst.gcFlightsRemoved).toBeLessThanOrEqual(5000);
    expect(afterFirst.gcRuns).toBe(0); // the run is not finished
    jest.advanceTimersByTime(0); // run the setImmediate slices
    let guard = 0;
    while (figures(store).gcRuns === 0 && guard++ < 100) jest.advanceTimersByTime(1);
    expect(figures(store)).toMatchObject({ flights: 0, gcRuns: 1, gcFlightsRemoved: 12_000 });
  });

  it("sends background errors to onError, never to a caller", async () => {
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
    (await putFlight(store, pathD("a")));
    failClock = true;
    expect(() => jest.advanceTimersByTime(100)).not.toThrow();
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe("clock broke");
    failClock = false;
    jest.advanceTimersByTime(100); // the next run works again
    expect(figures(store).gcRuns).toBe(1);
  });

  it("setGcInterval restarts the timer and close stops it", async () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: true, gcIntervalMs: 10_000 });
    expect(jest.getTimerCount()).toBe(1);
    store.setGcInterval(100);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(100);
    expect(figures(store).gcRuns).toBe(1);
    store.close();
    expect(jest.getTimerCount()).toBe(0);
    store.setGcInterval(100); // a closed store stays closed
    expect(jest.getTimerCount()).toBe(0);
    expect((await store.get(pathD("nothing")))).toBeUndefined(); // still readable
  });

  it("starts no timer when GC is disabled", async () => {
    jest.useFakeTimers();
    makeStore({ enableGC: false });
    expect(jest.getTimerCount()).toBe(0);
  });

  it("runs with a short real interval and an unref'd timer", async () => {
    const store = makeStore({ enableGC: true, gcIntervalMs: 5, now: Date.now });
    (await putFlight(store, pathD("a"), [], { ttlMs: 1 }));
    const deadline = Date.now() + 5000;
    while (figures(store).flights > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(figures(store).flights).toBe(0);
    expect(figures(store).gcFlightsRemoved).toBe(1);
  });
});

describe("MemoryStore option validation", () => {
  it.each<[string, MemoryStoreOptions, RegExp]>([
    ["negative ttl", { defaultTtlMs: -1 }, /defaultTtlMs must be a number of milliseconds from 0/],
    ["NaN ttl", { defaultTtlMs: Number.NaN }, /defaultTtlMs/],
    ["huge ttl", { defaultTtlMs: 1e20 }, /defaultTtlMs/],
    ["zero memory", { maxMemoryBytes: 0 }, /maxMemoryBytes must be a number of bytes greater than 0/],
    ["string memory", { maxMemoryBytes: "1GB" as unknown as number }, /^MemoryStore: maxMemoryBytes must be .*; got "1GB"$/],
    ["infinite memory", { maxMemoryBytes: Infinity }, /maxMemoryBytes/],
    ["zero interval", { gcIntervalMs: 0 }, /gcIntervalMs must be a number of milliseconds from 1 to 2147483647/],
    ["too long interval", { gcIntervalMs: 2 ** 31 }, /gcIntervalMs/],
    ["non-boolean enableGC", { enableGC: "yes" as unknown as boolean }, /enableGC must be a boolean/],
    ["non-function now", { now: 5 as unknown as () => number }, /now must be a function/],
    ["non-function onError", { onError: {} as unknown as () => void }, /onError must be a function/],
    ["non-function schemasEqual", { schemasEqual: "x" as unknown as () => undefined }, /schemasEqual must be a function/],
    ["unknown option", { ttlMs: 5 } as unknown as MemoryStoreOptions, /^MemoryStore: unknown option "ttlMs"/],
  ])("throws TypeError for %s", (_label, options, message) => {
    expect(() => new MemoryStore({ enableGC: false, ...options })).toThrow(TypeError);
    expect(() => new MemoryStore({ enableGC: false, ...options })).toThrow(message);
  });

  it("accepts the defaults", async () => {
    const store = new MemoryStore();
    stores.push(store);
    expect(figures(store)).toMatchObject({ maxMemoryBytes: 1024 ** 3, defaultTtlMs: 0, flights: 0 });
  });

  it("validates the runtime setters like the constructor", async () => {
    const store = makeStore();
    expect(() => store.setDefaultTtl(-5)).toThrow(TypeError);
    expect(() => store.setMaxMemoryBytes(0)).toThrow(/maxMemoryBytes/);
    expect(() => store.setGcInterval(0)).toThrow(/gcIntervalMs/);
    store.setDefaultTtl(42);
    store.setMaxMemoryBytes(77);
    expect(figures(store)).toMatchObject({ defaultTtlMs: 42, maxMemoryBytes: 77 });
  });
});

describe("structuralSchemasEqual (the default comparator)", () => {
  const schemaOf = (columns: Record<string, Int32Array | Float64Array>): StoredMessage => {
    const [m] = splitIpcStream(tableToIPC(tableFromArrays(columns), "stream"));
    return { header: m.header, body: m.body, appMetadata: new Uint8Array(0), info: { kind: MessageKind.SCHEMA, version: 4, bodyLength: 0, rows: 0 }, byteSize: m.header.byteLength };
  };

  it("accepts the same schema and names the first difference of another", async () => {
    const a = schemaOf({ x: Int32Array.from([1]) });
    expect(structuralSchemasEqual(a, schemaOf({ x: Int32Array.from([2]) }))).toBeUndefined();
    expect(structuralSchemasEqual(a, schemaOf({ x: Float64Array.from([2]) }))).toMatch(/field "x"/);
  });

  it("is what a MemoryStore uses when none is given", async () => {
    const store = new MemoryStore({ enableGC: false });
    stores.push(store);
    const d = pathD("structural");
    await (await store.beginPut(d, schemaOf({ x: Int32Array.from([1]) }))).commit();
    await expect(store.beginPut(d, schemaOf({ y: Int32Array.from([1]) }))).rejects.toThrow(/field/);
  });
});

describe("MemoryStore gc in slices", () => {
  it("removes every expired flight across several slices, yielding in between", async () => {
    const store = makeStore({ defaultTtlMs: 10 });
    for (let i = 0; i < 12_000; i++) (await putFlight(store, pathD(`s${i}`)));
    clock += 20;
    let otherWorkRan = false;
    setImmediate(() => (otherWorkRan = true)); // runs only if gc yields to the event loop
    const report = await store.gc();
    expect(report.flightsRemoved).toBe(12_000);
    expect(figures(store).flights).toBe(0);
    expect(otherWorkRan).toBe(true);
  });
});

describe("MemoryStore and the FlightStore contract", () => {
  it("answers reads with promises", async () => {
    const store: FlightStore = makeStore();
    const d = pathD("async");
    const pending = store.get(d);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBeUndefined();
    const flight = await putFlight(store as MemoryStore, d, [batchMsg(2)]);
    const byTicket = store.getByTicket(store.ticketFor(flight));
    expect(byTicket).toBeInstanceOf(Promise);
    expect(await byTicket).toBe(flight);
    expect(store.delete(pathD("none"))).toBeInstanceOf(Promise);
    // A malformed ticket is a rejection, not a synchronous throw.
    const bad = store.getByTicket(new Uint8Array([0xff]));
    await expect(bad).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
  });

  it("lists flights as an async iterable", async () => {
    const store: FlightStore = makeStore();
    await putFlight(store as MemoryStore, pathD("l", "1"));
    await putFlight(store as MemoryStore, pathD("l", "2"));
    const keys: string[] = [];
    for await (const f of store.list(["l"])) keys.push(f.key);
    expect(keys).toEqual(["p:l/1", "p:l/2"]);
  });

  it("streams a flight's messages, and each call starts a new pass", async () => {
    const store = makeStore();
    const flight = await putFlight(store, pathD("s"), [batchMsg(1), batchMsg(2), batchMsg(3)]);
    expect(flight.messageCount).toBe(3);
    const stream = flight.messages();
    expect(typeof stream[Symbol.asyncIterator]).toBe("function");
    expect((await messagesOf(flight)).map((m) => m.info.rows)).toEqual([1, 2, 3]);
    expect((await messagesOf(flight)).map((m) => m.info.rows)).toEqual([1, 2, 3]);
    // The memory store's stream is synchronously iterable too (DoGet's fast path).
    expect([...(stream as unknown as Iterable<StoredMessage>)].map((m) => m.info.rows)).toEqual([1, 2, 3]);
  });

  it("keeps a streaming reader on its snapshot while an append commits between two reads", async () => {
    const store = makeStore();
    const d = pathD("cow");
    await putFlight(store, d, [batchMsg(1)]);
    const reader = (await store.get(d))!;
    const it = reader.messages()[Symbol.asyncIterator]();
    await putFlight(store, d, [batchMsg(2)]);
    const seen: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) seen.push(r.value.info.rows);
    expect(seen).toEqual([1]);
    expect((await messagesOf((await store.get(d))!)).map((m) => m.info.rows)).toEqual([1, 2]);
  });

  it("commits concurrent puts to one flight atomically: each put's messages stay together", async () => {
    const store = makeStore();
    const d = pathD("concurrent");
    await putFlight(store, d, []);
    const txs = await Promise.all([1, 2, 3, 4].map(() => store.beginPut(d, schemaMsg())));
    // Interleave the appends of all puts, then commit them in parallel.
    for (let round = 0; round < 3; round++) {
      await Promise.all(txs.map((tx, i) => tx.append(batchMsg(10 * (i + 1) + round))));
    }
    // While nothing is committed, a reader sees none of them.
    expect((await store.get(d))!.messageCount).toBe(0);
    await Promise.all(txs.map((tx) => tx.commit()));
    const rows = (await messagesOf((await store.get(d))!)).map((m) => m.info.rows);
    expect(rows).toHaveLength(12);
    const groups = [0, 3, 6, 9].map((i) => rows.slice(i, i + 3));
    for (const g of groups) expect(g).toEqual([g[0]!, g[0]! + 1, g[0]! + 2]);
    expect(new Set(groups.map((g) => g[0]))).toEqual(new Set([10, 20, 30, 40]));
    expect(figures(store)).toMatchObject({ flights: 1, rows: rows.reduce((a, b) => a + b, 0), reservedBytes: 0 });
  });

  it("abort leaves nothing: no flight, no rows, no reservation, even next to a committed put", async () => {
    const store = makeStore();
    const kept = await store.beginPut(pathD("kept"), schemaMsg());
    const dropped = await store.beginPut(pathD("dropped"), schemaMsg());
    await kept.append(batchMsg(5, 200));
    await dropped.append(batchMsg(7, 300));
    await dropped.abort();
    await kept.commit();
    await dropped.abort(); // safe twice
    expect(await store.get(pathD("dropped"))).toBeUndefined();
    expect([...store.list()].map((f) => f.key)).toEqual(["p:kept"]);
    expect(figures(store)).toMatchObject({ flights: 1, rows: 5, reservedBytes: 0, memoryBytes: 210 + SLOT + idBytes(pathD("kept")) });
    await expect(dropped.commit()).rejects.toMatchObject({ code: StatusCode.FAILED_PRECONDITION });
  });

  it("offers every capability, and reports a section for each in stats", () => {
    const store = makeStore({ defaultTtlMs: 5, maxMemoryBytes: 1234, gcIntervalMs: 77 });
    expect(isFlightStore(store)).toBe(true);
    expect(offersTtl(store)).toBe(true);
    expect(offersGc(store)).toBe(true);
    expect(offersMemoryLimit(store)).toBe(true);
    expect(store.stats()).toEqual({
      flights: 0,
      rows: 0,
      bytes: 0,
      memory: { memoryBytes: 0, reservedBytes: 0, maxMemoryBytes: 1234 },
      ttl: { defaultTtlMs: 5 },
      gc: { gcEnabled: false, gcIntervalMs: 77, gcRuns: 0, gcFlightsRemoved: 0, gcBytesFreed: 0 },
    });
  });

  it("turns background GC on and off with setGcEnabled", () => {
    jest.useFakeTimers();
    const store = makeStore({ enableGC: false, gcIntervalMs: 100 });
    expect(jest.getTimerCount()).toBe(0);
    store.setGcEnabled(true);
    expect(jest.getTimerCount()).toBe(1);
    expect(store.stats().gc.gcEnabled).toBe(true);
    jest.advanceTimersByTime(100);
    expect(store.stats().gc.gcRuns).toBe(1);
    store.setGcEnabled(false);
    expect(jest.getTimerCount()).toBe(0);
    expect(() => store.setGcEnabled("yes" as unknown as boolean)).toThrow(TypeError);
  });

  it("a store without capabilities is still a FlightStore", () => {
    const bare: FlightStore = {
      beginPut: async () => {
        throw new Error("unused");
      },
      get: async () => undefined,
      getByTicket: async () => undefined,
      ticketFor: () => new Uint8Array(0),
      list: () => ({ async *[Symbol.asyncIterator]() {} }),
      delete: async () => false,
      stats: () => ({ flights: 0, rows: 0, bytes: 0 }),
      close: async () => undefined,
    };
    expect(isFlightStore(bare)).toBe(true);
    expect(offersTtl(bare) || offersGc(bare) || offersMemoryLimit(bare)).toBe(false);
    expect(isFlightStore({ get: async () => undefined })).toBe(false);
  });
});
