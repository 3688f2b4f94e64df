import { checkInt, checkNumberIn } from "@blackice/flight-core";
/** What {@link NonceCache.add} found. */
export type NonceAddResult = "added" | "replayed" | "full";

/**
 * Remembers nonces for a fixed time, up to a fixed count. When full it refuses new nonces
 * instead of forgetting old ones, so a flood can never make a replay pass. Entries are kept
 * in insertion order, which is expiry order while the clock moves forward, so purging costs
 * only the number of expired entries.
 *
 * @example
 * const seen = new NonceCache(100_000, 600_000);
 * if (seen.add(`${keyId}\n${nonce}`, Date.now()) !== "added") reject();
 */
export class NonceCache {
  readonly #expiries = new Map<string, number>();
  readonly capacity: number;
  readonly ttlMs: number;

  constructor(capacity: number, ttlMs: number) {
    this.capacity = checkInt("NonceCache", "capacity", capacity, 1, Number.MAX_SAFE_INTEGER);
    this.ttlMs = checkNumberIn("NonceCache", "ttlMs", ttlMs, Number.MIN_VALUE, Infinity, "a positive number of milliseconds");
  }

  /** Nonces held now (expired ones may count until the next add or purge). */
  get size(): number {
    return this.#expiries.size;
  }

  /** Drops expired nonces from the front. */
  purge(now: number): void {
    for (const [nonce, expiresAt] of this.#expiries) {
      if (expiresAt > now) break;
      this.#expiries.delete(nonce);
    }
  }

  /** Records `nonce` unless it is already held ("replayed") or the cache is full ("full"). */
  add(nonce: string, now: number): NonceAddResult {
    this.purge(now);
    // A held nonce counts as seen even if a backwards clock step left it past its expiry.
    if (this.#expiries.has(nonce)) return "replayed";
    if (this.#expiries.size >= this.capacity) return "full";
    this.#expiries.set(nonce, now + this.ttlMs);
    return "added";
  }
}
