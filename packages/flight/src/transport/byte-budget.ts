import { checkInt } from "@blackice/flight-core";
/**
 * A server-wide count of bytes that may be held at once, taken before the bytes are
 * buffered (nginx and grpc-go refuse on the declared size the same way). A reservation
 * that does not fit is refused, never queued, so a flood gets RESOURCE_EXHAUSTED at once
 * instead of growing memory.
 *
 * @example
 * const inFlight = new ByteBudget(256 * 2 ** 20);
 * if (!inFlight.tryReserve(declared)) throw resourceExhausted("...");
 * // ... later
 * inFlight.release(declared);
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {
    checkInt("ByteBudget", "limit", limit, 0, Number.MAX_SAFE_INTEGER);
  }

  /** Bytes reserved now. */
  get reserved(): number {
    return this.used;
  }

  /** Reserves `n` bytes if they fit under the limit. */
  tryReserve(n: number): boolean {
    if (n > this.limit - this.used) return false;
    this.used += n;
    return true;
  }

  /** Gives back `n` bytes reserved earlier. */
  release(n: number): void {
    this.used -= n;
    if (this.used < 0) this.used = 0;
  }
}
