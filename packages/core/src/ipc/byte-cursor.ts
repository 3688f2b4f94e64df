import { chunkAt, chunksOf, type Bytes } from "../byte-chunks";

const EMPTY = new Uint8Array(0);

/**
 * Reads a region of {@link Bytes} front to back: little-endian integers and skips, whether or
 * not a value spans two chunks. Made for walking a compressed frame's block headers, which
 * are many small reads in order: unlike `BytesReader` (random access, a binary search per
 * read), a step here costs a few array reads and no allocation.
 *
 * Chunk sizes are read with `length`, not `byteLength`: in Node 20's optimized code the latter
 * is several times slower, and a frame can have millions of blocks.
 *
 * Reads past the region's end throw `RangeError`: callers check {@link remaining} first, so
 * one means a bug, not bad input.
 *
 * @example
 * const cursor = new ByteCursor();
 * cursor.reset(body);
 * cursor.seek(offset, offset + length);
 * if (cursor.remaining >= 4) magic = cursor.u32();
 * @internal used by the compressed body checks
 */
export class ByteCursor {
  private chunks: readonly Uint8Array[] = [];
  /** Start position of each chunk in the bytes. */
  private starts: number[] = [];
  private index = 0;
  private chunk: Uint8Array = EMPTY;
  /** Position in `chunk` of the next byte. */
  private at = 0;
  private pos = 0;
  private end = 0;
  private total = 0;

  /** Reads `bytes` from now on (positioned at 0 with an empty region until {@link seek}). */
  reset(bytes: Bytes): void {
    this.chunks = chunksOf(bytes);
    this.starts.length = 0;
    let start = 0;
    for (const c of this.chunks) {
      this.starts.push(start);
      start += c.length;
    }
    this.total = start;
    this.index = 0;
    this.chunk = this.chunks[0] ?? EMPTY;
    this.at = 0;
    this.pos = 0;
    this.end = 0;
  }

  /** Drops the bytes, so that the cursor does not keep them alive. */
  clear(): void {
    this.reset(EMPTY);
  }

  /** Moves to `pos` and limits reads to `[pos, end)`; both within the bytes. */
  seek(pos: number, end: number): void {
    if (!(pos >= 0 && pos <= end && end <= this.total)) throw new RangeError(`region [${pos}, ${end}) is outside ${this.total} bytes`);
    const lo = chunkAt(this.starts, pos);
    this.index = lo;
    this.chunk = this.chunks[lo] ?? EMPTY;
    this.at = pos - (this.starts[lo] ?? 0);
    this.pos = pos;
    this.end = end;
  }

  /** Position of the next byte. */
  get position(): number {
    return this.pos;
  }

  /** Bytes left in the region. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    if (n > this.end - this.pos) this.outOfRange(n);
    this.pos += n;
    this.at += n;
    if (this.at > this.chunk.length) this.nextChunks();
  }

  u8(): number {
    if (this.pos >= this.end) this.outOfRange(1);
    if (this.at >= this.chunk.length) this.nextChunks();
    this.pos++;
    return this.chunk[this.at++]!;
  }

  /** An unsigned little-endian 24-bit integer. */
  u24(): number {
    const c = this.chunk;
    const a = this.at;
    if (a + 3 > c.length || this.pos + 3 > this.end) return this.slow(3);
    this.at = a + 3;
    this.pos += 3;
    return c[a]! | (c[a + 1]! << 8) | (c[a + 2]! << 16);
  }

  /** An unsigned little-endian 32-bit integer. */
  u32(): number {
    return this.i32() >>> 0;
  }

  /** A signed little-endian 32-bit integer (stays a small integer in V8, where u32 may not). */
  i32(): number {
    const c = this.chunk;
    const a = this.at;
    if (a + 4 > c.length || this.pos + 4 > this.end) return this.slow(4) | 0;
    this.at = a + 4;
    this.pos += 4;
    return c[a]! | (c[a + 1]! << 8) | (c[a + 2]! << 16) | (c[a + 3]! << 24);
  }

  /** An unsigned little-endian integer of `width` bytes (1 to 4). */
  uint(width: number): number {
    return this.slow(width);
  }

  /** Byte by byte: for values that span chunks, and to report reads past the end. */
  private slow(width: number): number {
    if (width > this.end - this.pos) this.outOfRange(width);
    let value = 0;
    for (let i = 0; i < width; i++) value += this.u8() * 2 ** (8 * i);
    return value;
  }

  /** Moves past the current chunk while the position is beyond it (chunks are never empty). */
  private nextChunks(): void {
    while (this.at >= this.chunk.length && this.index + 1 < this.chunks.length) {
      this.at -= this.chunk.length;
      this.chunk = this.chunks[++this.index]!;
    }
  }

  private outOfRange(n: number): never {
    throw new RangeError(`read of ${n} bytes at ${this.pos} is past the region's end ${this.end}`);
  }
}
