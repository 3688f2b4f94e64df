// xxHash32 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), for the checksums
// of LZ4 frames. Written here rather than taken as a dependency: it is thirty lines checked
// against the specification's vectors, and core depends on nothing at run time.

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const u32 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);
const round = (acc: number, lane: number): number => Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);

/**
 * xxHash32 of `bytes[start, end)` with `seed`, as an unsigned 32-bit number.
 *
 * @example
 * xxh32(new TextEncoder().encode("abc")); // 0x32d153ff
 * Used for LZ4 frame checksums: by the put-time frame check here and by the client's LZ4 decoder.
 */
export function xxh32(bytes: Uint8Array, start = 0, end = bytes.length, seed = 0): number {
  let p = start;
  let h: number;
  if (end - p >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    for (const limit = end - 16; p <= limit; p += 16) {
      v1 = round(v1, u32(bytes, p));
      v2 = round(v2, u32(bytes, p + 4));
      v3 = round(v3, u32(bytes, p + 8));
      v4 = round(v4, u32(bytes, p + 12));
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + (end - start)) | 0;
  for (; p + 4 <= end; p += 4) h = Math.imul(rotl((h + Math.imul(u32(bytes, p), P3)) | 0, 17), P4);
  for (; p < end; p++) h = Math.imul(rotl((h + Math.imul(bytes[p]!, P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}
