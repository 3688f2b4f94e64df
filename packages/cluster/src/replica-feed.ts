import type { FlightData } from "@blackice/flight-core";

/** How many messages a replica stream may hold before `append` waits for it to drain. */
const REPLICA_QUEUE_DEPTH = 4;

/**
 * A bounded queue between a put's `append` and one replica's DoPut: `push` waits while the
 * replica is behind, so a slow replica slows the put instead of filling memory. Holds
 * references to the received messages, never copies.
 */
export class ReplicaFeed implements AsyncIterable<Partial<FlightData>> {
  private items: Array<Partial<FlightData>> = [];
  private ended = false;
  private failure: Error | undefined;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  async push(m: Partial<FlightData>): Promise<void> {
    while (this.items.length >= REPLICA_QUEUE_DEPTH && !this.failure) await new Promise<void>((r) => (this.wakeProducer = r));
    if (this.failure) throw this.failure;
    this.items.push(m);
    this.wakeConsumer?.();
  }

  end(): void {
    this.ended = true;
    this.wakeConsumer?.();
  }

  /** The replica failed or the put was aborted: producers stop waiting and see the error, and the stream to the replica fails (it does not end, which would commit it). */
  fail(err: Error): void {
    this.failure ??= err;
    this.wakeProducer?.();
    this.wakeConsumer?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Partial<FlightData>> {
    for (;;) {
      // Thrown, not returned: a replica stream that ended would commit what it had.
      if (this.failure) throw this.failure;
      const m = this.items.shift();
      if (m !== undefined) {
        this.wakeProducer?.();
        yield m;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }
}

