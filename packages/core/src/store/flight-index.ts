import type { FlightDescriptor } from "../flight-types";
import { descriptorKey, pathPrefixMatcher, ticketFromKey, ticketToKey } from "./descriptor-key";
import type { StoredFlight } from "./flight-store";

/** What a store keeps per flight, as far as the index needs: the key and the current snapshot. */
export interface IndexedFlight {
  readonly key: string;
  readonly snapshot: StoredFlight;
}

/**
 * The flights a store holds, by key, in insertion order, with the lookups every store in this
 * package answers the same way: a flight whose expiry has passed is not there for readers
 * (the store's GC removes it later).
 */
export class FlightIndex<R extends IndexedFlight> extends Map<string, R> {
  /** The record under `key`, or undefined when there is none or it expired at `now`. */
  live(key: string, now: number): R | undefined {
    const record = this.get(key);
    if (record === undefined) return undefined;
    const at = record.snapshot.expiresAt;
    return at !== undefined && now >= at ? undefined : record;
  }

  /**
   * The live snapshots at `now`, in insertion order; with a non-empty `pathPrefix`, only PATH
   * flights whose path starts with those segments. Lazy (it reads the index as it goes), and
   * synchronously iterable too.
   *
   * @throws FlightError INVALID_ARGUMENT when the prefix is not an array of strings (at once).
   */
  snapshots(pathPrefix: readonly string[] | undefined, now: number): AsyncIterable<StoredFlight> & Iterable<StoredFlight> {
    const matches = pathPrefixMatcher(pathPrefix);
    const records = this.values.bind(this);
    function* walk(): Generator<StoredFlight> {
      for (const record of records()) {
        const s = record.snapshot;
        if (s.expiresAt !== undefined && now >= s.expiresAt) continue;
        if (!matches(record.key)) continue;
        yield s;
      }
    }
    return {
      [Symbol.iterator]: walk,
      async *[Symbol.asyncIterator]() {
        yield* walk();
      },
    };
  }
}

/**
 * The reads that MemoryStore and DiskStore answer alike from their {@link FlightIndex}: by
 * descriptor, by ticket (the key's bytes), and the listing. A subclass keeps its records in
 * `flights` and says what time it is.
 */
export abstract class IndexedFlightStore<R extends IndexedFlight> {
  /** The store's flights, by key. */
  protected readonly flights = new FlightIndex<R>();

  /** The store's clock, epoch ms. */
  protected abstract currentTime(): number;

  /** The flight under `descriptor`, or undefined; expired flights are never returned. */
  async get(descriptor: FlightDescriptor): Promise<StoredFlight | undefined> {
    return this.flights.live(descriptorKey(descriptor), this.currentTime())?.snapshot;
  }

  /**
   * The flight a ticket names, or undefined when there is none (or it expired).
   * @throws FlightError INVALID_ARGUMENT when the ticket is malformed.
   */
  async getByTicket(ticket: Uint8Array): Promise<StoredFlight | undefined> {
    return this.flights.live(ticketToKey(ticket), this.currentTime())?.snapshot;
  }

  /** The ticket of a flight: the ASCII bytes of its key (see `descriptor-key.ts`). */
  ticketFor(flight: StoredFlight): Uint8Array {
    return ticketFromKey(flight.key);
  }

  /**
   * Live flights in the order they were created (or recovered). With a non-empty `pathPrefix`,
   * only PATH flights whose path starts with those segments (segment-wise: `["a"]` matches
   * `["a","b"]`, not `["ab"]`). The result is lazy and reads the store as it goes; it is
   * synchronously iterable too.
   *
   * @throws FlightError INVALID_ARGUMENT when the prefix is not an array of strings (at once,
   * not on iteration).
   */
  list(pathPrefix?: readonly string[]): AsyncIterable<StoredFlight> & Iterable<StoredFlight> {
    return this.flights.snapshots(pathPrefix, this.currentTime());
  }

  /** The record under `key` unless it expired at `now`. */
  protected liveRecord(key: string, now: number): R | undefined {
    return this.flights.live(key, now);
  }
}
