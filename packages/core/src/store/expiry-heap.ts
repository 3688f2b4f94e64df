/**
 * A binary min-heap ordered by a numeric time. MemoryStore keeps one entry per expiry it
 * schedules and never removes entries early: renew, append and delete just make an entry
 * stale, and GC discards stale entries when they reach the top. That keeps every update
 * O(log n) and makes GC cost depend on what has expired, not on how many flights exist.
 */

/** What the heap orders by; entries may carry anything else. */
export interface HeapEntry {
  /** The time the entry is due (epoch ms). */
  readonly at: number;
}

/** A binary min-heap of {@link HeapEntry} by `at`. Internal to the store. */
export class ExpiryHeap<T extends HeapEntry> {
  private items: T[] = [];

  /** Number of entries, stale ones included. */
  get size(): number {
    return this.items.length;
  }

  /** The entry with the smallest `at`, or undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Adds an entry. O(log n). */
  push(entry: T): void {
    const a = this.items;
    let i = a.length;
    a.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.at <= entry.at) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = entry;
  }

  /** Removes and returns the entry with the smallest `at`. O(log n). */
  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Replaces all entries (used to drop stale entries in bulk). O(n). */
  rebuild(entries: T[]): void {
    this.items = entries;
    for (let i = (entries.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftDown(start: number): void {
    const a = this.items;
    const n = a.length;
    const entry = a[start]!;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && a[child + 1]!.at < a[child]!.at) child++;
      if (a[child]!.at >= entry.at) break;
      a[i] = a[child]!;
      i = child;
    }
    a[i] = entry;
  }
}
