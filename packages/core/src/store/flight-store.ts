import type { FlightDescriptor } from "../flight-types";
import type { StoredMessage } from "../ipc/ipc-message";

/** A flight as the store holds it. Treat as read-only. */
export interface StoredFlight {
  /** The canonical key of the descriptor (see `descriptorKey`). */
  readonly key: string;
  readonly descriptor: FlightDescriptor;
  /** The schema message, first in every DoGet. */
  readonly schema: StoredMessage;
  /** Dictionary and record batch messages, in the order they were put. */
  readonly messages: readonly StoredMessage[];
  /** Rows in record batches. */
  readonly totalRecords: number;
  /** Sum of header + body bytes of all messages, schema included. */
  readonly totalBytes: number;
  /** Bytes held in memory for this flight (see StoredMessage.byteSize). */
  readonly memoryBytes: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Epoch ms when the flight expires, or undefined if it never does. */
  readonly expiresAt: number | undefined;
}

/** Options of one put. */
export interface PutOptions {
  /** Time to live in ms; 0 means never expire; undefined means the store's default. */
  ttlMs?: number;
}

/**
 * An open put. Messages become visible only on `commit()`; `abort()` (or a thrown error)
 * leaves nothing behind. Memory is reserved as messages are appended, so a put that would
 * pass the memory limit fails with RESOURCE_EXHAUSTED before anything is stored.
 */
export interface PutTransaction {
  /** Appends a dictionary or record batch. Throws FlightError (RESOURCE_EXHAUSTED, INVALID_ARGUMENT). */
  append(message: StoredMessage): void;
  /** Makes the put visible atomically (appending to an existing flight with the same schema). */
  commit(): StoredFlight;
  /** Drops the put and releases its reservation. Safe to call more than once. */
  abort(): void;
}

/** What a garbage collection freed. */
export interface GcReport {
  flightsRemoved: number;
  bytesFreed: number;
  durationMs: number;
}

/** Store-wide figures for `stats`. */
export interface StoreStats {
  flights: number;
  rows: number;
  bytes: number;
  memoryBytes: number;
  /** Bytes reserved by puts still in progress. */
  reservedBytes: number;
  maxMemoryBytes: number;
  defaultTtlMs: number;
  gcRuns: number;
  gcFlightsRemoved: number;
  gcBytesFreed: number;
}

/**
 * Storage of Arrow IPC messages keyed by Flight descriptor. The in-memory implementation is
 * `MemoryStore`; other stores implement this interface.
 */
export interface FlightStore {
  /**
   * Opens a put. Throws INVALID_ARGUMENT if a flight exists under the descriptor with a
   * different schema (the message names the difference).
   */
  beginPut(descriptor: FlightDescriptor, schema: StoredMessage, options?: PutOptions): PutTransaction;
  /** The flight under a descriptor, or undefined (expired flights are not returned). */
  get(descriptor: FlightDescriptor): StoredFlight | undefined;
  /** The flight a ticket names, or undefined. */
  getByTicket(ticket: Uint8Array): StoredFlight | undefined;
  /** The ticket that redeems a flight. */
  ticketFor(flight: StoredFlight): Uint8Array;
  /** Flights whose path starts with `pathPrefix` (all when empty), in key order of insertion. */
  list(pathPrefix?: readonly string[]): Iterable<StoredFlight>;
  /** Removes a flight; false if there was none. */
  delete(descriptor: FlightDescriptor): boolean;
  /** Sets a flight's expiry to now + ttlMs (0: never). Returns the updated flight, or undefined. */
  renew(descriptor: FlightDescriptor, ttlMs?: number): StoredFlight | undefined;
  /** Removes expired flights now. */
  gc(): GcReport;
  /** Optional: the same as `gc()` in slices that yield to the event loop (preferred by the `gc` action). */
  gcInSlices?(): Promise<GcReport>;
  stats(): StoreStats;
  /** Stops background timers. The store stays readable. */
  close(): void;
}
