import { NonceCache } from "./nonce-cache";

describe("NonceCache", () => {
  it("refuses a replay, refuses when full, frees expired entries", () => {
    const c = new NonceCache(2, 100);
    expect(c.add("a", 0)).toBe("added");
    expect(c.add("a", 50)).toBe("replayed");
    expect(c.add("b", 60)).toBe("added");
    expect(c.add("c", 70)).toBe("full");
    expect(c.size).toBe(2);
    expect(c.add("c", 100)).toBe("added"); // "a" expired at 100
    expect(c.add("a", 100)).toBe("full"); // b and c held
    expect(c.add("a", 160)).toBe("added");
    expect(c.add("b", 160)).toBe("full"); // b expired and was purged, but c (until 200) and a (until 260) fill it
    expect(c.add("b", 200)).toBe("added");
  });

  it("keeps a nonce that is out of order after a backwards clock step (never forgets early)", () => {
    const c = new NonceCache(10, 100);
    c.add("late", 1000);
    c.add("early", 500); // clock stepped back: expires at 600 but sits behind "late"
    expect(c.add("early", 700)).toBe("replayed");
  });

  it("validates its arguments", () => {
    expect(() => new NonceCache(0, 1)).toThrow(TypeError);
    expect(() => new NonceCache(1, 0)).toThrow(TypeError);
  });
});
