import { ExpiryHeap } from "./expiry-heap";

describe("ExpiryHeap", () => {
  it("pops entries in ascending order of `at`, duplicates included", () => {
    const heap = new ExpiryHeap<{ at: number; id: number }>();
    let seed = 7;
    const values: number[] = [];
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const at = (seed >>> 8) % 500;
      values.push(at);
      heap.push({ at, id: i });
    }
    expect(heap.size).toBe(2000);
    const popped: number[] = [];
    while (heap.size > 0) popped.push(heap.pop()!.at);
    expect(popped).toEqual(values.slice().sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
    expect(heap.peek()).toBeUndefined();
  });

  it("rebuild heapifies an arbitrary array", () => {
    const heap = new ExpiryHeap<{ at: number }>();
    heap.push({ at: 1 });
    heap.rebuild([9, 3, 7, 1, 8, 2].map((at) => ({ at })));
    expect(heap.size).toBe(6);
    expect(heap.peek()!.at).toBe(1);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop()!.at);
    expect(out).toEqual([1, 2, 3, 7, 8, 9]);
  });
});
