/**
 * Message bodies as the pieces they arrived in. A transport receives a large message as many
 * network chunks; joining them would copy every byte once more (grpc-go's codec v2 keeps a
 * `mem.BufferSlice` for the same reason). A body is therefore either one `Uint8Array` or a
 * {@link ByteChunks}: an immutable list of views whose concatenation is the body.
 *
 * Both forms have `byteLength`. Code that needs the bytes in one piece calls
 * {@link contiguous}, which copies only when there is more than one chunk; code that only
 * streams the bytes (hashing, writing to a socket) iterates {@link chunksOf}.
 */

/** The bytes of a message body: one array, or several chunks in order. */
export type Bytes = Uint8Array | ByteChunks;

const EMPTY = new Uint8Array(0);

/**
 * An immutable list of byte chunks read as one sequence. It holds no encoding and no state
 * besides its content, so copying a message object that holds it (`{ ...m }`) keeps the
 * same bytes.
 *
 * @example
 * const body = new ByteChunks([chunkA.subarray(100), chunkB.subarray(0, 40)]);
 * body.byteLength; // chunkA.length - 100 + 40
 */
export class ByteChunks {
  /** The chunks, in order; none is empty. */
  readonly chunks: readonly Uint8Array[];
  /** Sum of the chunks' lengths. */
  readonly byteLength: number;

  constructor(chunks: readonly Uint8Array[]) {
    const kept = chunks.filter((c) => c.byteLength > 0);
    let n = 0;
    for (const c of kept) n += c.byteLength;
    this.chunks = Object.freeze(kept);
    this.byteLength = n;
    Object.freeze(this);
  }

  /** Copies the chunks into one new array (the explicit, rare copy). */
  toUint8Array(): Uint8Array {
    if (this.chunks.length === 0) return EMPTY;
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.byteLength);
    let pos = 0;
    for (const c of this.chunks) {
      out.set(c, pos);
      pos += c.byteLength;
    }
    return out;
  }
}

/** The chunks of `bytes`, in order (a single array is one chunk; empty input gives none). */
export function chunksOf(bytes: Bytes): readonly Uint8Array[] {
  if (bytes instanceof ByteChunks) return bytes.chunks;
  return bytes.byteLength === 0 ? [] : [bytes];
}

/** `bytes` in one piece: the array itself, or a copy of the chunks when there are several. */
export function contiguous(bytes: Bytes): Uint8Array {
  return bytes instanceof ByteChunks ? bytes.toUint8Array() : bytes;
}

/** Bytes from chunks: the single chunk itself when there is one, otherwise a {@link ByteChunks}. */
export function bytesFromChunks(chunks: readonly Uint8Array[]): Bytes {
  const kept = chunks.filter((c) => c.byteLength > 0);
  if (kept.length === 0) return EMPTY;
  if (kept.length === 1) return kept[0]!;
  return new ByteChunks(kept);
}

/**
 * The index of the chunk holding byte `pos`, given each chunk's start offset in ascending
 * order (the last chunk when `pos` is at the very end). A binary search.
 */
export function chunkAt(starts: readonly number[], pos: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= pos) lo = mid;
    else hi = mid - 1;
  }
  return Math.max(lo, 0);
}

/**
 * Reads little fixed-width integers at any position of {@link Bytes}, whether or not the value
 * spans two chunks. Used by validators that look at a few bytes of a body (offsets, length
 * prefixes) without joining it.
 */
export class BytesReader {
  private readonly chunks: readonly Uint8Array[];
  /** Start position of each chunk. */
  private readonly starts: number[];
  private readonly scratch = new DataView(new ArrayBuffer(8));
  private readonly single: DataView | undefined;
  readonly byteLength: number;

  constructor(bytes: Bytes) {
    this.chunks = chunksOf(bytes);
    this.byteLength = bytes.byteLength;
    this.starts = [];
    let pos = 0;
    for (const c of this.chunks) {
      this.starts.push(pos);
      pos += c.byteLength;
    }
    const only = this.chunks.length === 1 ? this.chunks[0]! : undefined;
    this.single = only ? new DataView(only.buffer, only.byteOffset, only.byteLength) : undefined;
  }

  /** A DataView over `width` bytes at `pos`: the chunk itself, or a scratch copy when the value spans chunks. */
  private at(pos: number, width: number): [DataView, number] {
    if (pos < 0 || pos + width > this.byteLength) throw new RangeError(`read of ${width} bytes at ${pos} is outside ${this.byteLength} bytes`);
    if (this.single) return [this.single, pos];
    const lo = chunkAt(this.starts, pos);
    const chunk = this.chunks[lo]!;
    const off = pos - this.starts[lo]!;
    if (off + width <= chunk.byteLength) return [new DataView(chunk.buffer, chunk.byteOffset + off, width), 0];
    for (let i = 0, c = lo, o = off; i < width; i++, o++) {
      if (o >= this.chunks[c]!.byteLength) {
        c++;
        o = 0;
      }
      this.scratch.setUint8(i, this.chunks[c]![o]!);
    }
    return [this.scratch, 0];
  }

  getInt16(pos: number, littleEndian: boolean): number {
    const [v, o] = this.at(pos, 2);
    return v.getInt16(o, littleEndian);
  }
  getInt32(pos: number, littleEndian: boolean): number {
    const [v, o] = this.at(pos, 4);
    return v.getInt32(o, littleEndian);
  }
  getUint32(pos: number, littleEndian: boolean): number {
    const [v, o] = this.at(pos, 4);
    return v.getUint32(o, littleEndian);
  }
  getUint8(pos: number): number {
    const [v, o] = this.at(pos, 1);
    return v.getUint8(o);
  }
}

/**
 * Bytes that `parts` keep alive: each distinct backing `ArrayBuffer` counted whole, since a
 * view pins all of the buffer it is a view into. Used to count what a stored message really
 * retains (a small view into a large receive buffer counts the buffer).
 */
export function retainedBytes(parts: Iterable<Uint8Array>): number {
  const seen = new Set<ArrayBufferLike>();
  let n = 0;
  for (const p of parts) {
    if (p.byteLength === 0 || seen.has(p.buffer)) continue;
    seen.add(p.buffer);
    n += p.buffer.byteLength;
  }
  return n;
}
