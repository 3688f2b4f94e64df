import { ByteChunks } from "../byte-chunks";
import { ByteCursor } from "./byte-cursor";

const bytes = Uint8Array.from({ length: 40 }, (_, i) => i * 7 + 1);
/** `bytes` cut into chunks of the given sizes (then one chunk for the rest). */
const cutInto = (...sizes: number[]) => {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const s of sizes) chunks.push(bytes.subarray(at, (at += s)));
  chunks.push(bytes.subarray(at));
  return new ByteChunks(chunks);
};
const le = (at: number, width: number) => {
  let v = 0;
  for (let i = width - 1; i >= 0; i--) v = v * 256 + bytes[at + i]!;
  return v;
};

describe("ByteCursor", () => {
  it.each([
    ["one array", bytes],
    ["two chunks", cutInto(5)],
    ["1-byte chunks", cutInto(...Array.from({ length: 39 }, () => 1))],
    ["uneven chunks", cutInto(1, 2, 3, 1, 9, 4)],
  ])("reads the same values from %s", (_name, body) => {
    const c = new ByteCursor();
    c.reset(body);
    c.seek(2, 38);
    expect(c.position).toBe(2);
    expect(c.remaining).toBe(36);
    expect(c.u8()).toBe(le(2, 1));
    expect(c.u24()).toBe(le(3, 3));
    expect(c.u32()).toBe(le(6, 4));
    c.skip(5);
    expect(c.uint(2)).toBe(le(15, 2));
    expect(c.i32()).toBe(le(17, 4) | 0);
    c.skip(13);
    expect(c.position).toBe(34);
    expect(c.u32()).toBe(le(34, 4));
    expect(c.remaining).toBe(0);
    c.seek(37, 40);
    expect(c.u24()).toBe(le(37, 3));
  });

  it("throws RangeError for reads past the region and regions outside the bytes", () => {
    const c = new ByteCursor();
    c.reset(cutInto(3));
    c.seek(0, 6);
    c.skip(4);
    expect(() => c.u32()).toThrow(RangeError);
    expect(() => c.skip(3)).toThrow(RangeError);
    expect(c.uint(2)).toBe(le(4, 2));
    expect(() => c.u8()).toThrow(RangeError);
    expect(() => c.seek(0, 41)).toThrow(RangeError);
    expect(() => c.seek(5, 4)).toThrow(RangeError);
  });

  it("forgets the bytes on clear", () => {
    const c = new ByteCursor();
    c.reset(bytes);
    c.clear();
    expect(() => c.seek(0, 1)).toThrow(RangeError);
    c.seek(0, 0);
    expect(c.remaining).toBe(0);
  });
});
