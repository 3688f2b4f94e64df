// A decoder of the LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md),
// the LZ4_FRAME codec of Arrow IPC body compression. Decoding only: the client reads
// compressed record batches, it never writes them.
//
// Written here rather than taken from npm because what is there (lz4js) trusts its input:
// a corrupt or truncated frame silently decodes into wrong bytes instead of failing, no
// checksum is verified, it sizes the output by allocating the frame's largest block size
// (4 MiB for Arrow Java's frames) for every block, and it allocates 5 MiB for its encoder
// when loaded. This one checks every length and match offset, verifies the header, block and
// content checksums the frame carries, and decodes in two passes so that the output is
// allocated once at its exact size: the first pass walks the sequences without copying a
// byte (that is where every check happens), the second copies.

import { xxh32 } from "@blackice/flight-core";

const FRAME_MAGIC = 0x184d2204;
/** Skippable frames: magic numbers 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Block maximum sizes by the BD byte's block-max-size id (4 to 7). */
const BLOCK_MAX_SIZE = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];
const MIN_MATCH = 4;

/** A corrupt (or unsupported) LZ4 frame. */
export class Lz4FrameError extends Error {
  override readonly name = "Lz4FrameError";
  constructor(message: string) {
    super(`LZ4 frame: ${message}`);
  }
}

const u32 = (b: Uint8Array, at: number): number => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

// xxHash32 (header, block and content checksums) comes from core, where the put-time frame
// check uses it too; re-exported for this module's tests.
export { xxh32 };

// ---- the decoder ----

/**
 * Decodes LZ4 frames: one frame, or several concatenated (skippable frames are skipped).
 * Throws {@link Lz4FrameError} for anything that is not a well-formed frame, for a checksum
 * that does not match, and for a frame that needs a dictionary. The result is a fresh
 * `Uint8Array` of exactly the decoded size (its `byteOffset` is 0).
 */
export function decodeLz4Frames(src: Uint8Array): Uint8Array {
  if (!(src instanceof Uint8Array)) throw new TypeError("decodeLz4Frames: expected a Uint8Array");
  const size = walkFrames(src, null);
  const out = new Uint8Array(size);
  walkFrames(src, out);
  return out;
}

/** Walks every frame of `src`: counts (and checks) when `dst` is null, decodes into `dst` otherwise. Returns the decoded size. */
function walkFrames(src: Uint8Array, dst: Uint8Array | null): number {
  const end = src.length;
  if (end === 0) throw new Lz4FrameError("no data (an LZ4 frame is at least 7 bytes)");
  let s = 0;
  let d = 0;
  let frames = 0;
  while (s < end) {
    if (end - s < 4) throw new Lz4FrameError(`${end - s} stray bytes after frame ${frames}`);
    const magic = u32(src, s);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (end - s < 8) throw new Lz4FrameError("truncated skippable frame header");
      const skip = u32(src, s + 4);
      if (skip > end - s - 8) throw new Lz4FrameError("truncated skippable frame");
      s += 8 + skip;
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new Lz4FrameError(`bad magic number 0x${magic.toString(16).padStart(8, "0")} at byte ${s} (not LZ4 frame data)`);
    [s, d] = walkFrame(src, s + 4, d, dst);
    frames++;
  }
  if (frames === 0) throw new Lz4FrameError("no frame, only skippable frames");
  return d;
}

/** One frame, from just after its magic number. Returns where the frame ends in `src` and in the output. */
function walkFrame(src: Uint8Array, s: number, d: number, dst: Uint8Array | null): [number, number] {
  const end = src.length;
  if (end - s < 3) throw new Lz4FrameError("truncated frame header");
  const flg = src[s];
  const bd = src[s + 1];
  if (flg >>> 6 !== 1) throw new Lz4FrameError(`unsupported frame version ${flg >>> 6} (only version 01 exists)`);
  if (flg & 0x02) throw new Lz4FrameError("reserved bit set in the frame descriptor's FLG byte");
  if (bd & 0x8f) throw new Lz4FrameError("reserved bits set in the frame descriptor's BD byte");
  const blockSums = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentSum = (flg & 0x04) !== 0;
  const hasDictId = (flg & 0x01) !== 0;
  const blockMax = BLOCK_MAX_SIZE[(bd >>> 4) & 7];
  if (blockMax === 0) throw new Lz4FrameError(`invalid block maximum size id ${(bd >>> 4) & 7}`);

  const descriptorEnd = s + 2 + (hasContentSize ? 8 : 0) + (hasDictId ? 4 : 0);
  if (descriptorEnd + 1 > end) throw new Lz4FrameError("truncated frame header");
  const headerSum = (xxh32(src, s, descriptorEnd) >>> 8) & 0xff;
  if (src[descriptorEnd] !== headerSum) throw new Lz4FrameError("frame header checksum mismatch");
  // A content size of 2^53 or more could not be decoded anyway; the sum stays exact below that.
  const contentSize = hasContentSize ? u32(src, s + 2) + u32(src, s + 6) * 2 ** 32 : -1;
  if (hasDictId) throw new Lz4FrameError("the frame needs a dictionary (dictionary id set), which Arrow IPC never uses");
  s = descriptorEnd + 1;

  const frameStart = d;
  for (;;) {
    if (end - s < 4) throw new Lz4FrameError("truncated: the frame ends without its end mark");
    const word = u32(src, s);
    s += 4;
    if (word === 0) break;
    const raw = word >>> 31 === 1;
    const size = word & 0x7fffffff;
    if (size > blockMax) throw new Lz4FrameError(`block of ${size} bytes exceeds the frame's block maximum size ${blockMax}`);
    if (size > end - s - (blockSums ? 4 : 0)) throw new Lz4FrameError("truncated block");
    if (blockSums && dst === null && xxh32(src, s, s + size) !== u32(src, s + size)) throw new Lz4FrameError("block checksum mismatch");
    if (raw) {
      if (dst !== null) dst.set(src.subarray(s, s + size), d);
      d += size;
    } else {
      d = walkBlock(src, s, s + size, dst, d, frameStart, blockMax);
    }
    s += size + (blockSums ? 4 : 0);
  }
  if (contentSum) {
    if (end - s < 4) throw new Lz4FrameError("truncated content checksum");
    if (dst !== null && xxh32(dst, frameStart, d) !== u32(src, s)) throw new Lz4FrameError("content checksum mismatch");
    s += 4;
  }
  if (contentSize >= 0 && d - frameStart !== contentSize) {
    throw new Lz4FrameError(`the frame declares ${contentSize} bytes of content but decodes to ${d - frameStart}`);
  }
  return [s, d];
}

/**
 * One compressed block `src[s, end)`, decoded at output position `d` (into `dst` unless it is
 * null). Matches may reach back into earlier blocks of the same frame (linked blocks), never
 * before the frame. Returns the output position after the block.
 */
function walkBlock(src: Uint8Array, s: number, end: number, dst: Uint8Array | null, d: number, frameStart: number, blockMax: number): number {
  const blockStart = d; // a block is never empty: a size of 0 is the end mark
  for (;;) {
    const token = src[s++];
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (s >= end) throw new Lz4FrameError("truncated literal length");
        b = src[s++];
        literals += b;
      } while (b === 255);
    }
    if (literals > end - s) throw new Lz4FrameError("literals run past the end of the block");
    if (dst !== null) {
      if (literals > 16) dst.set(src.subarray(s, s + literals), d);
      else for (let i = 0; i < literals; i++) dst[d + i] = src[s + i];
    }
    s += literals;
    d += literals;
    if (s === end) break; // the last sequence has literals only
    if (end - s < 2) throw new Lz4FrameError("truncated match offset");
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d - frameStart) throw new Lz4FrameError(`match offset ${offset} points outside the decoded data`);
    let length = token & 15;
    if (length === 15) {
      let b: number;
      do {
        if (s >= end) throw new Lz4FrameError("truncated match length");
        b = src[s++];
        length += b;
      } while (b === 255);
    }
    length += MIN_MATCH;
    if (dst !== null) copyMatch(dst, d, offset, length);
    d += length;
    if (d - blockStart > blockMax) break;
    if (s === end) throw new Lz4FrameError("the block ends with a match (its last sequence must be literals only)");
  }
  if (d - blockStart > blockMax) throw new Lz4FrameError(`a block decodes to more than the frame's block maximum size ${blockMax}`);
  return d;
}

/** Copies `length` bytes from `offset` bytes back; the source may overlap the destination (a repeated pattern). */
function copyMatch(dst: Uint8Array, d: number, offset: number, length: number): void {
  const from = d - offset;
  if (length <= 16) {
    for (let i = 0; i < length; i++) dst[d + i] = dst[from + i];
    return;
  }
  // [from, at) is whole periods of the pattern: copying it to `at` extends the pattern, and
  // doubles the periodic region each time.
  let at = d;
  let left = length;
  while (left > 0) {
    const n = Math.min(at - from, left);
    dst.copyWithin(at, from, from + n);
    at += n;
    left -= n;
  }
}
