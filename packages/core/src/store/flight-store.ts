import type { FlightDescriptor } from "../flight-types";
import type { BatchStats } from "../ipc/batch-stats";
import type { MessageKind, StoredMessage } from "../ipc/ipc-message";
import type { MessageReadOptions } from "./read-lease";

/**
 * A flight as the store describes it: its identity, schema and totals, and its messages as a
 * stream. A `StoredFlight` is a snapshot: its totals and its messages are those of the moment
 * it was read, so an append that commits later does not change what a running DoGet sends.
 * Treat as read-only.
 */
export interface StoredFlight {
  /** The canonical key of the descriptor (see `descriptorKey`). */
  readonly key: string;
  readonly descriptor: FlightDescriptor;
  /** The schema message, first in every DoGet. */
  readonly schema: StoredMessage;
  /** How many messages {@link messages} yields (dictionaries and record batches, not the schema). */
  readonly messageCount: number;
  /** Rows in record batches. */
  readonly totalRecords: number;
  /** Sum of header + body bytes of all messages, schema included. */
  readonly totalBytes: number;
  /** Bytes this flight holds in memory, for a store that counts memory (see {@link StoreMemoryLimit}). */
  readonly memoryBytes?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Epoch ms when the flight expires, or undefined if it never does (or the store has no TTL). */
  readonly expiresAt: number | undefined;
  /**
   * Where the flight can be read: the location URIs (`grpc+tcp://host:port`) of the servers
   * that hold a copy, for a store spread over several servers (the cluster's). FlightInfo lists
   * them as the endpoint's locations, which Flight clients treat as replicas. Absent: the
   * serving server's own location.
   */
  readonly locations?: readonly string[];
  /**
   * The flight's dictionary and record batch messages, in the order they were put, as of this
   * snapshot. Each call starts a new pass; a store may stream them from disk or network.
   *
   * A store whose messages are already in memory may return an iterable that is also
   * synchronously iterable (`Symbol.iterator`): readers that check for it (DoGet does) then
   * skip an await per message.
   *
   * With `options.lease` the reader promises to say which messages it is done with (see
   * `ReadLease`); a store may then reuse their buffers for later messages of this pass.
   * Without one, every message stays valid for as long as the reader holds it.
   */
  messages(options?: MessageReadOptions): AsyncIterable<StoredMessage>;
  /**
   * What the store knows of each message of {@link messages}, in the same order: its kind and,
   * for a record batch, its statistics (see `computeBatchStats`; undefined when the batch has
   * none). A store may compute them when first asked and keep them for later calls: MemoryStore
   * does, so that DoPut never pays for them; DiskStore computes them at put and keeps them in
   * its manifest, so that a pruned read skips batches on disk from the first query on. Absent
   * when the store keeps no statistics. Batch pruning (`selectBatches`) calls it.
   */
  batchStats?(): Promise<readonly MessageStats[]>;
}

/** One entry of {@link StoredFlight.batchStats}. */
export interface MessageStats {
  readonly kind: MessageKind;
  /** A record batch's min/max per column; undefined for dictionaries and for batches without statistics. */
  readonly stats: BatchStats | undefined;
}

/** Options of one put. */
export interface PutOptions {
  /**
   * Time to live in ms; 0 means never expire; undefined means the store's default. A store
   * without the TTL capability ({@link StoreTtl}) refuses a put with `ttlMs` other than 0 or
   * undefined (INVALID_ARGUMENT).
   */
  ttlMs?: number;
  /**
   * When true, the commit replaces any flight under the descriptor (whatever its schema) with
   * this put's messages, atomically, instead of appending to it: a reader sees the old flight
   * or the new one, never a mix. A cluster's re-replication copies a whole flight this way, so
   * that a copy landing on a node that already holds one never doubles it. Default false.
   */
  replace?: boolean;
}

/**
 * An open put: a transaction. Messages become visible only when `commit()` resolves, all at
 * once; `abort()` (or a failed append or commit) leaves nothing behind. A store with a memory
 * or disk limit reserves as messages are appended, so a put that would pass the limit fails
 * with RESOURCE_EXHAUSTED before anything is stored.
 *
 * Calls on one transaction are sequential: the caller awaits each `append` before the next.
 */
export interface PutTransaction {
  /** Appends a dictionary or record batch. Rejects with FlightError (RESOURCE_EXHAUSTED, INVALID_ARGUMENT). */
  append(message: StoredMessage): Promise<void>;
  /**
   * Makes the put visible atomically (appending to an existing flight with the same schema,
   * or replacing it with `replace`);
   * resolves with the flight as committed. On rejection nothing of the put is visible.
   */
  commit(): Promise<StoredFlight>;
  /** Drops the put and releases what it holds. Safe to call more than once, and after a failure. */
  abort(): Promise<void>;
}

/** What a garbage collection freed. */
export interface GcReport {
  flightsRemoved: number;
  bytesFreed: number;
  durationMs: number;
}

/** The memory section of {@link StoreStats}: present when the store offers {@link StoreMemoryLimit}. */
export interface StoreMemoryStats {
  /** Bytes held by stored flights. */
  memoryBytes: number;
  /** Bytes reserved by puts still in progress. */
  reservedBytes: number;
  /** The limit of stored plus reserved bytes. */
  maxMemoryBytes: number;
}

/** The TTL section of {@link StoreStats}: present when the store offers {@link StoreTtl}. */
export interface StoreTtlStats {
  /** TTL of a put without its own, ms; 0 = never expire. */
  defaultTtlMs: number;
}

/** The GC section of {@link StoreStats}: present when the store offers {@link StoreGc}. */
export interface StoreGcStats {
  /** Whether expired flights are collected in the background. */
  gcEnabled: boolean;
  /** Interval of background collection, ms. */
  gcIntervalMs: number;
  gcRuns: number;
  gcFlightsRemoved: number;
  gcBytesFreed: number;
}

/** The disk section of {@link StoreStats}: present for a store that keeps flights on disk. */
export interface StoreDiskStats {
  /** The store's directory. */
  dir: string;
  /** When written bytes are forced to the disk: `always`, `interval` or `never`. */
  fsync: string;
  /** Bytes of data files and manifests. */
  usedBytes: number;
  /** Bytes reserved by puts still in progress (in temp files). */
  reservedBytes: number;
  /** The limit of used plus reserved bytes, or undefined when there is none. */
  maxDiskBytes: number | undefined;
}

/**
 * Store-wide figures for `stats` and metrics. Every store reports what it holds; a section is
 * present when the store offers the matching capability. Synchronous on purpose: they are read
 * at every metrics scrape and `stats` call, so a store keeps them as counters (a store that
 * must ask elsewhere keeps a recent copy).
 */
export interface StoreStats {
  /** Flights held (expired flights not yet collected included: they still hold resources). */
  flights: number;
  /** Rows in record batches of all flights. */
  rows: number;
  /** Header + body bytes of all messages of all flights. */
  bytes: number;
  memory?: StoreMemoryStats;
  ttl?: StoreTtlStats;
  gc?: StoreGcStats;
  disk?: StoreDiskStats;
}

/**
 * Capability: flights that expire. A store offers it by having all of these members
 * (check with {@link offersTtl}).
 */
export interface StoreTtl {
  /** Sets the TTL of later puts without their own (0: never expire). @throws TypeError when out of range. */
  setDefaultTtl(ms: number): void;
  /**
   * Sets a live flight's expiry to now + ttl (`ttlMs`, else the flight's own TTL, else the
   * default; 0: never). Resolves with the renewed flight, or undefined when there is none.
   */
  renew(descriptor: FlightDescriptor, ttlMs?: number): Promise<StoredFlight | undefined>;
}

/**
 * Capability: collection of expired flights, now and in the background (check with
 * {@link offersGc}).
 */
export interface StoreGc {
  /** Removes expired flights now, yielding to the event loop as it goes. */
  gc(): Promise<GcReport>;
  /** Sets the background collection interval. @throws TypeError when out of range. */
  setGcInterval(ms: number): void;
  /** Turns background collection on or off. */
  setGcEnabled(enabled: boolean): void;
}

/** Capability: a limit on the memory stored flights hold (check with {@link offersMemoryLimit}). */
export interface StoreMemoryLimit {
  /** Sets the limit; lowering it removes nothing, later reservations are refused. @throws TypeError when out of range. */
  setMaxMemoryBytes(bytes: number): void;
}

/**
 * Storage of Arrow IPC messages keyed by Flight descriptor: asynchronous and streaming, so a
 * store may keep flights on disk or across a network. `MemoryStore` implements it in memory.
 *
 * TTL, garbage collection and memory limits are optional capabilities ({@link StoreTtl},
 * {@link StoreGc}, {@link StoreMemoryLimit}): a store offers one by having all its members.
 * The server applies `serverConfig`'s `ttl`, `gcInterval`, `enableGC` and `maxMemoryBytes`
 * through them, and refuses at build a setting the store cannot honour.
 *
 * Middleware and actions reach the server's store as `call.store`.
 *
 * @example
 * const tx = await store.beginPut(descriptor, schema);
 * try {
 *   for (const m of batches) await tx.append(m);
 *   await tx.commit();
 * } catch (err) {
 *   await tx.abort();
 *   throw err;
 * }
 * const flight = await store.get(descriptor);
 * for await (const m of flight!.messages()) send(m);
 */
export interface FlightStore extends Partial<StoreTtl>, Partial<StoreGc>, Partial<StoreMemoryLimit> {
  /**
   * Opens a put. Rejects with INVALID_ARGUMENT if a flight exists under the descriptor with a
   * different schema (the message names the difference), or RESOURCE_EXHAUSTED when the
   * schema alone does not fit.
   */
  beginPut(descriptor: FlightDescriptor, schema: StoredMessage, options?: PutOptions): Promise<PutTransaction>;
  /** The flight under a descriptor, or undefined (expired flights are not returned). */
  get(descriptor: FlightDescriptor): Promise<StoredFlight | undefined>;
  /** The flight a ticket names, or undefined. Rejects with INVALID_ARGUMENT for a malformed ticket. */
  getByTicket(ticket: Uint8Array): Promise<StoredFlight | undefined>;
  /** The ticket that redeems a flight. Pure: computed from the flight's identity. */
  ticketFor(flight: StoredFlight): Uint8Array;
  /** Flights whose path starts with `pathPrefix` (all when empty), as the store yields them. */
  list(pathPrefix?: readonly string[]): AsyncIterable<StoredFlight>;
  /** Removes a flight; resolves false if there was none. */
  delete(descriptor: FlightDescriptor): Promise<boolean>;
  /** What the store holds, and the sections of the capabilities it offers. */
  stats(): StoreStats;
  /** Stops background work and releases what the store holds open. */
  close(): Promise<void>;
}

/** Whether a store offers {@link StoreTtl} (every member present). */
export function offersTtl(store: FlightStore): store is FlightStore & StoreTtl {
  return typeof store.setDefaultTtl === "function" && typeof store.renew === "function";
}

/** Whether a store offers {@link StoreGc} (every member present). */
export function offersGc(store: FlightStore): store is FlightStore & StoreGc {
  return typeof store.gc === "function" && typeof store.setGcInterval === "function" && typeof store.setGcEnabled === "function";
}

/** Whether a store offers {@link StoreMemoryLimit}. */
export function offersMemoryLimit(store: FlightStore): store is FlightStore & StoreMemoryLimit {
  return typeof store.setMaxMemoryBytes === "function";
}

/**
 * Whether a value has the members every {@link FlightStore} has (capabilities not checked).
 * Used by factories that take a store, to fail at build with a clear TypeError.
 */
export function isFlightStore(value: unknown): value is FlightStore {
  if (value === null || typeof value !== "object") return false;
  const s = value as Record<string, unknown>;
  return ["beginPut", "get", "getByTicket", "ticketFor", "list", "delete", "stats", "close"].every((m) => typeof s[m] === "function");
}
