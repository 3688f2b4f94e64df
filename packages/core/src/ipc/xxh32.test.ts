import { xxh32 } from "./xxh32";

const text = (s: string) => new TextEncoder().encode(s);

describe("xxh32", () => {
  it("matches the reference vectors, short and long (the 16-byte stripes)", () => {
    expect(xxh32(new Uint8Array(0))).toBe(0x02cc5d05);
    expect(xxh32(text("a"))).toBe(0x550d7456);
    expect(xxh32(text("abc"))).toBe(0x32d153ff);
    expect(xxh32(text("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f);
  });

  it("hashes a range of a larger array as if it stood alone", () => {
    const inner = text("Nobody inspects the spammish repetition");
    const outer = new Uint8Array(inner.length + 10);
    outer.set(inner, 3);
    expect(xxh32(outer, 3, 3 + inner.length)).toBe(0xe2293b2f);
  });

  it("gives the LZ4 frame header checksum of a common descriptor", () => {
    // FLG 0x60 (version 01, independent blocks), BD 0x40 (64 KiB): Arrow C++ and lz4 write HC 0x82.
    expect((xxh32(Uint8Array.from([0x60, 0x40])) >>> 8) & 0xff).toBe(0x82);
  });
});
