/**
 * A reader's promise to a store about one pass of `StoredFlight.messages()`: the reader calls
 * {@link release}(n) once it no longer holds, and will never read again, the bytes of the first
 * n messages that pass yielded. A store that reads messages into buffers (DiskStore) may then
 * reuse those buffers for later messages of the same pass, which saves allocating (and page
 * faulting) fresh memory per span; a store that never reuses memory (MemoryStore) ignores it.
 *
 * A reader that cannot be sure when it is done with a message (one that hands messages to code
 * it does not control, such as middleware) passes no lease: the store then never reuses what
 * it handed out. The Flight server releases only after the transport has written a message to
 * the socket, and only when the DoGet response reached the transport unwrapped.
 *
 * @example
 * const lease = new ReadLease();
 * let n = 0;
 * for await (const m of flight.messages({ lease })) {
 *   await send(m);         // resolves once m's bytes are written and no longer referenced
 *   lease.release(++n);
 * }
 */
export class ReadLease {
  #released = 0;
  #listener: ((released: number) => void) | undefined;

  /** How many messages (from the start of the pass) the reader has released. */
  get released(): number {
    return this.#released;
  }

  /**
   * Declares the first `count` messages of the pass done with. Counts only go up; a smaller
   * count than before changes nothing.
   */
  release(count: number): void {
    if (!(count > this.#released)) return;
    this.#released = count;
    this.#listener?.(count);
  }

  /** For stores: `listener` hears every increase of {@link released}. One listener per lease. */
  watch(listener: (released: number) => void): void {
    if (this.#listener !== undefined) throw new Error("a ReadLease serves one pass of messages(): it already has a listener");
    this.#listener = listener;
  }
}

/** Options of one pass of `StoredFlight.messages()`. */
export interface MessageReadOptions {
  /** The reader's promise to say when it is done with messages (see {@link ReadLease}). */
  lease?: ReadLease;
  /**
   * Only these messages of the flight, by index into the full pass (0 is the first message
   * after the schema), ascending: the pass yields them alone, in order, and a lease counts
   * what it yields. A store that reads from disk does not read the others. A store that
   * ignores `only` yields every message, which is still correct for a reader that filters
   * rows (batch pruning).
   */
  only?: readonly number[];
}
