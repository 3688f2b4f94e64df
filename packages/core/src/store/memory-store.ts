import { describeSchemaDifference } from "../ipc/schema-difference";
import { readSchema } from "../ipc/schema-info";
import { batchStatsBytesBound, computeBatchStats } from "../ipc/batch-stats";
import type { SchemaInfo } from "../ipc/arrow-schema";
import { performance } from "node:perf_hooks";

import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { StatusCode } from "../status-code";
import { descriptorKey } from "./descriptor-key";
import { IndexedFlightStore } from "./flight-index";
import { MAX_TIMER_MS, checkBoolean, checkFunction, checkNumberIn, checkOptions } from "../option-checks";
import { ExpiryHeap } from "./expiry-heap";
import { DICTIONARY_STATS, recordBatchStats, schemaForStats } from "./message-stats";
import type { MessageReadOptions } from "./read-lease";
import type {
  FlightStore,
  GcReport,
  PutOptions,
  PutTransaction,
  StoreGc,
  StoreGcStats,
  StoreMemoryLimit,
  StoreMemoryStats,
  StoreStats,
  StoreTtl,
  StoreTtlStats,
  StoredFlight,
  MessageStats,
} from "./flight-store";

/**
 * Compares the schema of a stored flight with the schema of a new put. Returns a short,
 * human-readable description of the difference, or undefined when the schemas are equal.
 * The description goes into an INVALID_ARGUMENT message, so it must not contain payload bytes.
 */
export type SchemaComparator = (stored: StoredMessage, incoming: StoredMessage) => string | undefined;

/** Options of {@link MemoryStore}. Every option is validated by the constructor. */
export interface MemoryStoreOptions {
  /** Time to live of a flight put without `ttlMs`, in ms; 0 means never expire. Default 0. */
  defaultTtlMs?: number;
  /** Limit of stored plus reserved bytes (see StoredMessage.byteSize). Default 1 GiB; must be > 0. */
  maxMemoryBytes?: number;
  /** Interval of background garbage collection in ms. Default 30 000. */
  gcIntervalMs?: number;
  /** Whether to collect expired flights in the background. Default true. */
  enableGC?: boolean;
  /** Clock in epoch ms, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Receives errors of background work, which has no caller to throw to. Default: a process warning. */
  onError?: (err: unknown) => void;
  /** Schema comparison for appends. Default {@link structuralSchemasEqual}. */
  schemasEqual?: SchemaComparator;
}

/** Default of {@link MemoryStoreOptions.maxMemoryBytes}: 1 GiB. */
export const DEFAULT_MAX_MEMORY_BYTES = 1024 * 1024 * 1024;
/** Default of {@link MemoryStoreOptions.gcIntervalMs}. */
export const DEFAULT_GC_INTERVAL_MS = 30_000;
/**
 * Largest accepted TTL: 100 years. Bigger values are almost always a unit mistake
 * (seconds × 1000 twice, or nanoseconds), and keeping `now + ttl` far below 2^53 keeps it exact.
 */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;
/** A background GC slice stops after this many removals... */
const GC_SLICE_MAX_FLIGHTS = 5_000;
/** ...or after this much wall time, so a mass expiry never stalls the event loop for long. */
const GC_SLICE_MAX_MS = 4;
/** Heap entries that may be stale before the heap is rebuilt (beyond twice the live ones). */
const HEAP_SLACK = 1_024;

/**
 * Bytes counted for every flight besides its messages and descriptor: the snapshot and record
 * objects, the map and expiry-heap entries. Measured on Node 20 at about 300 B per flight
 * (100k tiny flights, heap after a full GC); rounded up. Documented in docs/operations.md.
 */
export const FLIGHT_OVERHEAD_BYTES = 512;

/**
 * What a flight's identity keeps alive: {@link FLIGHT_OVERHEAD_BYTES}, its key (ASCII, one
 * byte per character) and its descriptor (path segments counted at two bytes per character,
 * as V8 may hold them; a command's bytes as they are).
 */
export function flightOverheadBytes(key: string, descriptor: FlightDescriptor): number {
  let n = FLIGHT_OVERHEAD_BYTES + key.length + descriptor.cmd.byteLength;
  for (const segment of descriptor.path) n += 2 * segment.length + 16;
  return n;
}

/**
 * The default {@link SchemaComparator}: schemas are equal when their flatbuffer header bytes
 * are identical. Strict on purpose: two encodings of "the same" schema with different field
 * metadata order would not decode the same way for every client.
 */
export function defaultSchemasEqual(stored: StoredMessage, incoming: StoredMessage): string | undefined {
  const a = stored.header;
  const b = incoming.header;
  if (a.length === b.length) {
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    if (i === a.length) return undefined;
  }
  return "schema differs from the stored flight's schema";
}

/**
 * The default comparison for appends: identical bytes pass at once; otherwise both schemas
 * are read and compared field by field (names, types and their parameters, nullability,
 * dictionary encoding), and the first difference is named. Schemas that differ only in how
 * they were written (metadata order, padding) still append.
 */
export function structuralSchemasEqual(stored: StoredMessage, incoming: StoredMessage): string | undefined {
  if (defaultSchemasEqual(stored, incoming) === undefined) return undefined;
  return describeSchemaDifference(readSchema(stored.header), readSchema(incoming.header));
}

/** What {@link MemoryStore.stats} reports: every section is present. */
export interface MemoryStoreStats extends StoreStats {
  memory: StoreMemoryStats;
  ttl: StoreTtlStats;
  gc: StoreGcStats;
}

/**
 * The messages of one snapshot: an async iterable, as the contract asks, that is also
 * synchronously iterable, so DoGet walks the frozen array without an await per message.
 */
class SnapshotMessages implements AsyncIterable<StoredMessage>, Iterable<StoredMessage> {
  constructor(private readonly list: readonly StoredMessage[]) {}

  [Symbol.iterator](): Iterator<StoredMessage> {
    return this.list[Symbol.iterator]();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StoredMessage> {
    yield* this.list;
  }
}

/** The fields of a snapshot besides its messages. */
type SnapshotFields = Omit<StoredFlight, "messages" | "messageCount" | "memoryBytes" | "batchStats"> & { readonly memoryBytes: number };

/**
 * A frozen snapshot of one flight in memory. Its message array is frozen too and replaced,
 * never mutated, by an append (copy-on-write), so a reader of an older snapshot keeps its
 * messages and count.
 */
class MemoryFlight implements StoredFlight {
  readonly key: string;
  readonly descriptor: FlightDescriptor;
  readonly schema: StoredMessage;
  readonly messageCount: number;
  readonly totalRecords: number;
  readonly totalBytes: number;
  readonly memoryBytes: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | undefined;
  /** Frozen; shared by snapshots that differ only in expiry. */
  readonly list: readonly StoredMessage[];

  constructor(f: SnapshotFields, list: readonly StoredMessage[]) {
    this.key = f.key;
    this.descriptor = f.descriptor;
    this.schema = f.schema;
    this.messageCount = list.length;
    this.totalRecords = f.totalRecords;
    this.totalBytes = f.totalBytes;
    this.memoryBytes = f.memoryBytes;
    this.createdAt = f.createdAt;
    this.updatedAt = f.updatedAt;
    this.expiresAt = f.expiresAt;
    this.list = list;
    Object.freeze(this);
  }

  /**
   * Each message's kind and statistics, parallel to `list`. A record batch's statistics are
   * computed the first time any snapshot is asked for them, not at put (computing them on
   * DoPut's path cost about 40 % of its throughput), and kept with the message; their memory
   * was counted at put. The scan yields to the event loop every {@link STATS_YIELD_BYTES}.
   */
  async batchStats(): Promise<readonly MessageStats[]> {
    const list = this.list;
    const out = new Array<MessageStats>(list.length);
    let schema: SchemaInfo | null | undefined;
    let scanned = 0;
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      if (m.info.kind !== MessageKind.RECORD_BATCH) {
        out[i] = DICTIONARY_STATS;
        continue;
      }
      let entry = computedStats.get(m);
      if (entry === undefined) {
        if (scanned >= STATS_YIELD_BYTES) {
          scanned = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        schema ??= schemaForStats(this.schema);
        entry = statsEntry(schema, m);
        computedStats.set(m, entry);
        scanned += m.body.byteLength;
      }
      out[i] = entry;
    }
    return out;
  }

  /**
   * The snapshot's messages (those of `options.only` alone when given); synchronously
   * iterable too (see {@link SnapshotMessages}).
   */
  messages(options?: MessageReadOptions): AsyncIterable<StoredMessage> & Iterable<StoredMessage> {
    const only = options?.only;
    if (only === undefined) return new SnapshotMessages(this.list);
    const list = this.list;
    const picked: StoredMessage[] = [];
    for (const i of only) {
      const m = list[i];
      if (m !== undefined) picked.push(m);
    }
    return new SnapshotMessages(picked);
  }

  /** A new snapshot with some fields changed, sharing or replacing the message arrays. */
  with(changes: Partial<SnapshotFields>, list: readonly StoredMessage[] = this.list): MemoryFlight {
    return new MemoryFlight({ ...this.fields(), ...changes }, list);
  }

  private fields(): SnapshotFields {
    const { key, descriptor, schema, totalRecords, totalBytes, memoryBytes, createdAt, updatedAt, expiresAt } = this;
    return { key, descriptor, schema, totalRecords, totalBytes, memoryBytes, createdAt, updatedAt, expiresAt };
  }
}

/** The store's mutable record of one flight; readers only ever see `snapshot`. */
interface FlightRecord {
  readonly key: string;
  /** Replaced, never mutated, on every change: readers holding the old one stay consistent. */
  snapshot: MemoryFlight;
  /** The TTL given explicitly by a put (the flight's "own" TTL), used by renew without a TTL. */
  ttlMs: number | undefined;
  /** Bumped on every expiry change and on removal; only the heap entry with this version is live. */
  version: number;
  removed: boolean;
}

interface ExpiryEntry {
  readonly at: number;
  readonly record: FlightRecord;
  readonly version: number;
}

interface CollectResult {
  removed: number;
  freed: number;
  /** Whether expired entries remain (a slice limit stopped the loop). */
  more: boolean;
}

type PutState = "open" | "failed" | "committed" | "aborted";

const EMPTY_BYTES = new Uint8Array(0);

/** The entries of messages without statistics are shared. */
/**
 * Bytes counted per stored message for its statistics' slot (an entry of `computedStats`);
 * a record batch whose schema has columns with statistics adds the most its entry object and
 * statistics can take ({@link recordStatsBytesAtPut}).
 */
export const MESSAGE_STATS_SLOT_BYTES = 8;
const STATS_ENTRY_BYTES = 32;
/** Body bytes a `batchStats()` call scans between two yields to the event loop. */
const STATS_YIELD_BYTES = 8 * 1024 * 1024;

/** Statistics computed so far, per stored message; they live as long as the message. */
const computedStats = new WeakMap<StoredMessage, MessageStats>();

/**
 * Bytes counted at put for each record batch's statistics, which `batchStats()` may compute
 * later: the slot, and the most its entry object and statistics can take (nothing more when the
 * schema cannot be read or has no column with statistics). Other messages count the slot only.
 */
function recordStatsBytesAtPut(schema: SchemaInfo | null): number {
  const bound = schema === null ? 0 : batchStatsBytesBound(schema);
  return bound === 0 ? MESSAGE_STATS_SLOT_BYTES : MESSAGE_STATS_SLOT_BYTES + STATS_ENTRY_BYTES + bound;
}

/** The `batchStats` entry of a record batch; a schema that cannot be read (`null`) gives none. */
function statsEntry(schema: SchemaInfo | null, message: StoredMessage): MessageStats {
  const stats = schema === null ? undefined : computeBatchStats(schema, message.header, message.body);
  return recordBatchStats(stats === undefined ? undefined : Object.freeze(stats));
}

function invalid(message: string): FlightError {
  return new FlightError(StatusCode.INVALID_ARGUMENT, message);
}

const ttlRange = `a number of milliseconds from 0 (never expire) to ${MAX_TTL_MS} (100 years)`;
const memoryRange = `a number of bytes greater than 0 and at most ${Number.MAX_SAFE_INTEGER}`;
const intervalRange = `a number of milliseconds from 1 to ${MAX_TIMER_MS}`;

const KNOWN_OPTIONS = ["defaultTtlMs", "maxMemoryBytes", "gcIntervalMs", "enableGC", "now", "onError", "schemasEqual"] as const;

function checkMessage(message: StoredMessage, what: string): void {
  if (typeof message !== "object" || message === null || typeof message.info !== "object" || message.info === null) {
    throw invalid(`${what} is not a stored message`);
  }
  const size = message.byteSize;
  if (typeof size !== "number" || !Number.isFinite(size) || size < 0) {
    throw invalid(`${what} has an invalid byteSize (${String(size)})`);
  }
}

function messageBytes(m: StoredMessage): number {
  return m.header.byteLength + m.body.byteLength;
}

/** A copy the caller cannot change under the store; PATH keeps no cmd and CMD no path, like the key. */
function normalizedDescriptor(d: FlightDescriptor): FlightDescriptor {
  return d.type === DescriptorType.PATH
    ? Object.freeze({ type: DescriptorType.PATH, cmd: EMPTY_BYTES, path: Object.freeze(d.path.slice()) as string[] })
    : // new Uint8Array(x) copies even when x is a Buffer, whose slice() would share memory.
      Object.freeze({ type: DescriptorType.CMD, cmd: new Uint8Array(d.cmd), path: Object.freeze([]) as unknown as string[] });
}

/**
 * A {@link FlightStore} in process memory. Puts reserve memory as they receive messages, so
 * a put that would pass `maxMemoryBytes` fails with RESOURCE_EXHAUSTED before anything is
 * stored; flights may expire after a TTL and are collected by a background GC whose cost
 * grows with the number of expired flights only.
 *
 * Returned {@link StoredFlight} objects are frozen snapshots: an append that commits while a
 * DoGet streams a flight replaces the store's snapshot and leaves the reader's one untouched.
 * A snapshot's `messages()` is a cheap iterable over its frozen array, asynchronously and
 * synchronously iterable.
 *
 * It offers every capability: TTL ({@link StoreTtl}), GC ({@link StoreGc}) and a memory
 * limit ({@link StoreMemoryLimit}). Its methods are asynchronous as the contract asks, but
 * each runs to completion synchronously inside, so a commit can never interleave with
 * another put.
 *
 * An open put holds its reservation until it is committed or aborted, so callers must abort
 * puts whose stream fails.
 *
 * @example
 * const store = new MemoryStore({ defaultTtlMs: 3_600_000, maxMemoryBytes: 512 * 1024 * 1024 });
 * const put = await store.beginPut({ type: DescriptorType.PATH, path: ["sales", "2024"], cmd: new Uint8Array() }, schema);
 * try {
 *   for (const batch of batches) await put.append(batch);
 *   const flight = await put.commit();
 *   const ticket = store.ticketFor(flight); // bytes of "p:sales/2024"
 * } catch (err) {
 *   await put.abort();
 *   throw err;
 * }
 * // later
 * await store.close();
 */
export class MemoryStore extends IndexedFlightStore<FlightRecord> implements FlightStore, StoreTtl, StoreGc, StoreMemoryLimit {
  private readonly heap = new ExpiryHeap<ExpiryEntry>();
  /** Flights with an expiry, i.e. live heap entries; sizes the heap compaction threshold. */
  private expiring = 0;

  private storedBytes = 0;
  private reservedBytes = 0;
  private totalRows = 0;
  private totalBytes = 0;

  private defaultTtlMs: number;
  private maxMemoryBytes: number;
  private gcIntervalMs: number;
  private enableGC: boolean;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private readonly schemasEqual: SchemaComparator;

  private gcRuns = 0;
  private gcFlightsRemoved = 0;
  private gcBytesFreed = 0;

  private timer: NodeJS.Timeout | undefined;
  private sliceImmediate: NodeJS.Immediate | undefined;
  private backgroundRunning = false;
  private closed = false;

  /** @throws TypeError naming the invalid option and its valid range. */
  constructor(options: MemoryStoreOptions = {}) {
    super();
    const where = "MemoryStore";
    checkOptions(where, options, KNOWN_OPTIONS);
    this.defaultTtlMs = checkNumberIn(where, "defaultTtlMs", options.defaultTtlMs, 0, MAX_TTL_MS, ttlRange, 0);
    this.maxMemoryBytes = checkNumberIn(where, "maxMemoryBytes", options.maxMemoryBytes, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, memoryRange, DEFAULT_MAX_MEMORY_BYTES);
    this.gcIntervalMs = checkNumberIn(where, "gcIntervalMs", options.gcIntervalMs, 1, MAX_TIMER_MS, intervalRange, DEFAULT_GC_INTERVAL_MS);
        checkFunction(where, "now", options.now);
    checkFunction(where, "onError", options.onError);
    checkFunction(where, "schemasEqual", options.schemasEqual);
    this.enableGC = checkBoolean(where, "enableGC", options.enableGC, true);
    this.now = options.now ?? Date.now;
    this.onError =
      options.onError ??
      ((err: unknown) => process.emitWarning(`MemoryStore background GC failed: ${err instanceof Error ? err.message : String(err)}`));
    this.schemasEqual = options.schemasEqual ?? structuralSchemasEqual;
    this.startTimer();
  }

  // ---------------------------------------------------------------- puts

  /**
   * Opens a put under `descriptor`. If a flight exists there, the put appends to it on
   * commit; its schema must then equal the stored one (checked now and again at commit).
   * The schema's byteSize is reserved right away.
   *
   * @throws FlightError INVALID_ARGUMENT (bad descriptor, schema, ttl, or schema mismatch),
   * RESOURCE_EXHAUSTED (not even the schema fits).
   */
  async beginPut(descriptor: FlightDescriptor, schema: StoredMessage, options?: PutOptions): Promise<PutTransaction> {
    const key = descriptorKey(descriptor);
    checkMessage(schema, "the schema");
    if (schema.info.kind !== MessageKind.SCHEMA) {
      throw invalid(`a put must start with a schema message, got message kind ${schema.info.kind}`);
    }
    const ttlMs =
      options?.ttlMs === undefined ? undefined : checkNumberIn("beginPut", "ttlMs", options.ttlMs, 0, MAX_TTL_MS, ttlRange, undefined, invalid);
    const replace = options?.replace === true;
    const existing = replace ? undefined : this.liveRecord(key, this.now());
    if (existing !== undefined) this.checkSchema(existing, schema);
    const normalized = normalizedDescriptor(descriptor);
    // A new flight's identity is reserved too; an append gives that part back at commit.
    const identityBytes = flightOverheadBytes(key, normalized);
    this.reserve(schema.byteSize + identityBytes);
    return this.openPut(key, normalized, schema, ttlMs, identityBytes, replace);
  }

  private openPut(key: string, descriptor: FlightDescriptor, schema: StoredMessage, ttlMs: number | undefined, identityBytes: number, replace: boolean): PutTransaction {
    // The transaction is a closure rather than a class so it can reach the store's private state.
    const messages: StoredMessage[] = [];
    let statsBytes = 0;
    let recordStatsBytes: number | undefined;
    let reserved = schema.byteSize + identityBytes;
    let state: PutState = "open";
    let failure = "";

    const release = (): void => {
      this.reservedBytes -= reserved;
      reserved = 0;
    };
    const fail = (reason: string): void => {
      // A put that lost a message must never commit: the flight would silently miss data.
      release();
      state = "failed";
      failure = reason;
    };
    const ensureOpen = (): void => {
      if (state === "open") return;
      const why =
        state === "committed"
          ? "this put was already committed; begin a new put to add more"
          : state === "aborted"
            ? "this put was aborted"
            : `this put failed earlier (${failure}) and can only be aborted`;
      throw new FlightError(StatusCode.FAILED_PRECONDITION, why);
    };

    return {
      append: async (message: StoredMessage): Promise<void> => {
        ensureOpen();
        try {
          checkMessage(message, `message ${messages.length}`);
          if (message.info.kind === MessageKind.SCHEMA) {
            throw invalid("a schema message cannot be appended: a put has exactly one schema, given when it begins");
          }
          // The statistics, computed later, are held as long as the message: counted with it.
          recordStatsBytes ??= recordStatsBytesAtPut(schemaForStats(schema));
          const bytes = message.info.kind === MessageKind.RECORD_BATCH ? recordStatsBytes : MESSAGE_STATS_SLOT_BYTES;
          this.reserve(message.byteSize + bytes);
          reserved += message.byteSize + bytes;
          statsBytes += bytes;
          messages.push(message);
        } catch (err) {
          fail(err instanceof Error ? err.message : String(err));
          throw err;
        }
      },

      commit: async (): Promise<StoredFlight> => {
        ensureOpen();
        try {
          const flight = this.commitPut(key, descriptor, schema, messages, statsBytes, ttlMs, reserved, identityBytes, replace);
          // commitPut converted the whole reservation into stored memory (or released the schema part).
          reserved = 0;
          state = "committed";
          return flight;
        } catch (err) {
          fail(err instanceof Error ? err.message : String(err));
          throw err;
        }
      },

      abort: async (): Promise<void> => {
        if (state !== "open") return;
        release();
        state = "aborted";
      },
    };
  }

  /** Runs synchronously from validation to publication, so no other put can interleave. */
  private commitPut(
    key: string,
    descriptor: FlightDescriptor,
    schema: StoredMessage,
    messages: StoredMessage[],
    statsBytes: number,
    ttlMs: number | undefined,
    reserved: number,
    identityBytes: number,
    replace: boolean,
  ): MemoryFlight {
    const now = this.now();
    // A replacing put commits as a new flight; the live one goes with the stale below.
    const existing = replace ? undefined : this.liveRecord(key, now);
    // Re-checked here: another put may have created the flight since beginPut.
    if (existing !== undefined) this.checkSchema(existing, schema);

    let rows = 0;
    let bytes = 0;
    let memory = statsBytes;
    for (const m of messages) {
      if (m.info.kind === MessageKind.RECORD_BATCH) rows += m.info.rows;
      bytes += messageBytes(m);
      memory += m.byteSize;
    }

    if (existing !== undefined) {
      // The stored flight keeps its own schema and identity, so the put's reservation of them is not needed.
      this.reservedBytes -= reserved;
      this.storedBytes += memory;
      this.totalRows += rows;
      this.totalBytes += bytes;
      const old = existing.snapshot;
      let expiresAt = old.expiresAt;
      if (ttlMs !== undefined) {
        existing.ttlMs = ttlMs;
        expiresAt = ttlMs === 0 ? undefined : now + ttlMs;
      }
      existing.snapshot = old.with(
        {
          totalRecords: old.totalRecords + rows,
          totalBytes: old.totalBytes + bytes,
          memoryBytes: old.memoryBytes + memory,
          updatedAt: now,
          expiresAt,
        },
        // Copy-on-write: readers of `old` keep their array and length.
        Object.freeze(old.list.concat(messages)),
      );
      if (expiresAt !== old.expiresAt) this.scheduleExpiry(existing, old.expiresAt, expiresAt);
      return existing.snapshot;
    }

    // An expired flight not yet collected (or any, for a replacing put) is replaced, not appended to.
    const stale = this.flights.get(key);
    if (stale !== undefined) this.removeRecord(stale);

    const effectiveTtl = ttlMs ?? this.defaultTtlMs;
    const expiresAt = effectiveTtl === 0 ? undefined : now + effectiveTtl;
    const snapshot = new MemoryFlight(
      {
        key,
        descriptor,
        schema,
        totalRecords: rows,
        totalBytes: bytes + messageBytes(schema),
        memoryBytes: memory + schema.byteSize + identityBytes,
        createdAt: now,
        updatedAt: now,
        expiresAt,
      },
      Object.freeze(messages.slice()),
    );
    const record: FlightRecord = { key, snapshot, ttlMs, version: 0, removed: false };
    this.flights.set(key, record);
    this.reservedBytes -= reserved;
    this.storedBytes += snapshot.memoryBytes;
    this.totalRows += snapshot.totalRecords;
    this.totalBytes += snapshot.totalBytes;
    if (expiresAt !== undefined) this.scheduleExpiry(record, undefined, expiresAt);
    return snapshot;
  }

  private checkSchema(record: FlightRecord, schema: StoredMessage): void {
    const diff = this.schemasEqual(record.snapshot.schema, schema);
    if (diff !== undefined) {
      throw invalid(`cannot append to flight ${record.key}: ${diff}`);
    }
  }

  /** Reserves `n` bytes against the limit, reclaiming expired flights first if that makes room. */
  private reserve(n: number): void {
    if (this.storedBytes + this.reservedBytes + n > this.maxMemoryBytes) {
      // Expired flights still hold memory until GC runs; freeing them beats refusing a put.
      this.collect(this.now(), Infinity, Infinity, () => this.storedBytes + this.reservedBytes + n <= this.maxMemoryBytes);
      if (this.storedBytes + this.reservedBytes + n > this.maxMemoryBytes) {
        throw new FlightError(
          StatusCode.RESOURCE_EXHAUSTED,
          `memory limit of ${this.maxMemoryBytes} bytes reached: ${this.storedBytes} bytes stored, ` +
            `${this.reservedBytes} reserved by open puts, ${n} more requested`,
        );
      }
    }
    this.reservedBytes += n;
  }

  // ---------------------------------------------------------------- reads

  // get, getByTicket, ticketFor and list: IndexedFlightStore (flight-index.ts).

  protected currentTime(): number {
    return this.now();
  }

  // ---------------------------------------------------------------- admin

  /** Removes a flight; false if there was none (an expired flight counts as none but is freed). */
  async delete(descriptor: FlightDescriptor): Promise<boolean> {
    const key = descriptorKey(descriptor);
    const record = this.flights.get(key);
    if (record === undefined) return false;
    const wasLive = this.liveRecord(key, this.now()) !== undefined;
    this.removeRecord(record);
    return wasLive;
  }

  /**
   * Sets a live flight's expiry to now + ttl, where ttl is `ttlMs`, else the TTL its puts
   * gave, else the store's current default (0: never expire). Does not change the flight's
   * own TTL or `updatedAt`. Returns the new snapshot, or undefined if there is no live flight.
   *
   * @throws FlightError INVALID_ARGUMENT for a bad descriptor or ttl.
   */
  async renew(descriptor: FlightDescriptor, ttlMs?: number): Promise<StoredFlight | undefined> {
    const key = descriptorKey(descriptor);
    if (ttlMs !== undefined) checkNumberIn("renew", "ttlMs", ttlMs, 0, MAX_TTL_MS, ttlRange, undefined, invalid);
    const now = this.now();
    const record = this.liveRecord(key, now);
    if (record === undefined) return undefined;
    const ttl = ttlMs ?? record.ttlMs ?? this.defaultTtlMs;
    const expiresAt = ttl === 0 ? undefined : now + ttl;
    const old = record.snapshot;
    record.snapshot = old.with({ expiresAt });
    this.scheduleExpiry(record, old.expiresAt, expiresAt);
    return record.snapshot;
  }

  /** Sets the TTL of later puts (and of renews of flights without their own TTL). Existing expiries stay. */
  setDefaultTtl(ms: number): void {
    this.defaultTtlMs = checkNumberIn("MemoryStore.setDefaultTtl", "defaultTtlMs", ms, 0, MAX_TTL_MS, ttlRange);
  }

  /**
   * Sets the memory limit. Lowering it below current use removes nothing; new reservations
   * are refused until enough memory is freed.
   */
  setMaxMemoryBytes(n: number): void {
    this.maxMemoryBytes = checkNumberIn("MemoryStore.setMaxMemoryBytes", "maxMemoryBytes", n, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, memoryRange);
  }

  /** Turns background GC on (starting its timer, unless the store is closed) or off. */
  setGcEnabled(enabled: boolean): void {
    checkBoolean("MemoryStore.setGcEnabled", "enabled", enabled);
    this.enableGC = enabled;
    if (enabled) this.startTimer();
    else this.stopTimer();
  }

  /** Sets the background GC interval and restarts its timer (when GC is enabled and the store is open). */
  setGcInterval(ms: number): void {
    this.gcIntervalMs = checkNumberIn("MemoryStore.setGcInterval", "gcIntervalMs", ms, 1, MAX_TIMER_MS, intervalRange);
    this.stopTimer();
    this.startTimer();
  }

  /** Store-wide figures. Expired flights not yet collected still count: they still hold memory. */
  stats(): MemoryStoreStats {
    return {
      flights: this.flights.size,
      rows: this.totalRows,
      bytes: this.totalBytes,
      memory: { memoryBytes: this.storedBytes, reservedBytes: this.reservedBytes, maxMemoryBytes: this.maxMemoryBytes },
      ttl: { defaultTtlMs: this.defaultTtlMs },
      gc: {
        gcEnabled: this.enableGC,
        gcIntervalMs: this.gcIntervalMs,
        gcRuns: this.gcRuns,
        gcFlightsRemoved: this.gcFlightsRemoved,
        gcBytesFreed: this.gcBytesFreed,
      },
    };
  }

  /** Stops the background GC (including a run in progress). The store stays usable. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
  }

  // ---------------------------------------------------------------- expiry and GC

  /**
   * Removes all expired flights now, in slices separated by `setImmediate` (as background GC
   * runs), so a collection of very many expired flights does not stall other calls. Its cost
   * grows with the number of expired flights (and stale expiry entries), not with the number
   * of flights. Used by the `gc` action.
   */
  async gc(): Promise<GcReport> {
    const started = performance.now();
    let flightsRemoved = 0;
    let bytesFreed = 0;
    for (;;) {
      const { removed, freed, more } = this.collect(this.now(), GC_SLICE_MAX_FLIGHTS, GC_SLICE_MAX_MS);
      flightsRemoved += removed;
      bytesFreed += freed;
      if (!more) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.gcRuns++;
    return { flightsRemoved, bytesFreed, durationMs: performance.now() - started };
  }

  /**
   * Pops due heap entries, skipping stale ones, until none is due, `maxFlights` were removed,
   * the wall-clock `budgetMs` is spent, or `enough()` says so.
   */
  private collect(now: number, maxFlights: number, budgetMs: number, enough?: () => boolean): CollectResult {
    const deadline = budgetMs === Infinity ? Infinity : performance.now() + budgetMs;
    let removed = 0;
    let freed = 0;
    let pops = 0;
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || top.at > now) return { removed, freed, more: false };
      if (removed >= maxFlights || (enough !== undefined && enough())) return { removed, freed, more: true };
      // Reading the clock costs more than a pop, so check the budget only every 256 pops.
      if ((++pops & 255) === 0 && performance.now() > deadline) return { removed, freed, more: true };
      this.heap.pop();
      const record = top.record;
      if (record.removed || record.version !== top.version) continue;
      freed += record.snapshot.memoryBytes;
      removed++;
      this.gcFlightsRemoved++;
      this.gcBytesFreed += record.snapshot.memoryBytes;
      this.removeRecord(record);
    }
  }

  private removeRecord(record: FlightRecord): void {
    const s = record.snapshot;
    this.flights.delete(record.key);
    record.removed = true;
    record.version++; // its heap entry, if any, is now stale
    if (s.expiresAt !== undefined) this.expiring--;
    this.storedBytes -= s.memoryBytes;
    this.totalRows -= s.totalRecords;
    this.totalBytes -= s.totalBytes;
  }

  /** Records an expiry change: the old heap entry goes stale and a new one is pushed. */
  private scheduleExpiry(record: FlightRecord, oldAt: number | undefined, newAt: number | undefined): void {
    record.version++;
    if (oldAt !== undefined) this.expiring--;
    if (newAt === undefined) return;
    this.expiring++;
    this.heap.push({ at: newAt, record, version: record.version });
    // Frequent renews of long-lived flights would otherwise grow the heap without bound.
    if (this.heap.size > 2 * this.expiring + HEAP_SLACK) this.compactHeap();
  }

  private compactHeap(): void {
    const entries: ExpiryEntry[] = [];
    for (const record of this.flights.values()) {
      const at = record.snapshot.expiresAt;
      if (at !== undefined) entries.push({ at, record, version: record.version });
    }
    this.heap.rebuild(entries);
  }

  private startTimer(): void {
    if (!this.enableGC || this.closed || this.timer !== undefined) return;
    this.timer = setInterval(() => this.runBackgroundGc(), this.gcIntervalMs);
    // Background GC alone must not keep the process alive.
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.sliceImmediate !== undefined) clearImmediate(this.sliceImmediate);
    this.sliceImmediate = undefined;
    this.backgroundRunning = false;
  }

  /** One background run, in slices separated by setImmediate so I/O can proceed in between. */
  private runBackgroundGc(): void {
    if (this.backgroundRunning || this.closed) return;
    this.backgroundRunning = true;
    const slice = (): void => {
      this.sliceImmediate = undefined;
      if (this.closed || !this.backgroundRunning) return;
      try {
        const { more } = this.collect(this.now(), GC_SLICE_MAX_FLIGHTS, GC_SLICE_MAX_MS);
        if (more) {
          this.sliceImmediate = setImmediate(slice);
          return;
        }
        this.gcRuns++;
      } catch (err) {
        try {
          this.onError(err);
        } catch {
          // An error handler that throws has nowhere left to report to.
        }
      }
      this.backgroundRunning = false;
    };
    slice();
  }
}
