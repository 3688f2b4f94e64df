import { invalidArgument, resourceExhausted } from "../flight-error";
import type { Bytes } from "../byte-chunks";
import { ByteCursor } from "./byte-cursor";
import { CompressionCodec, checkSizeLimit } from "./message-header";
import { xxh32 } from "./xxh32";

// Arrow IPC body compression (Message.fbs, BodyCompression): every non-empty buffer of a
// compressed batch starts with its uncompressed length as a little-endian int64, -1 meaning
// that the rest is stored as it is. Then comes one frame of the codec, which consumers
// (Arrow C++ allocates the declared length, decompresses, and fails unless the output is
// exactly that long) decode only when they read the batch. Checked here at put time, without
// decompressing: the frame's structure down to its block headers, and that the declared
// length is one the frame can produce.

const PREFIX_BYTES = 8;
const UNCOMPRESSED = -1;

// LZ4 frame format (lz4/doc/lz4_Frame_format.md).
const LZ4_MAGIC = 0x184d2204;
/** Block maximum sizes by the BD byte's block-max-size id (4 to 7). */
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];
/**
 * Most bytes one byte of an LZ4 block can decode to. Literals decode 1:1; a match costs a
 * token and a 2-byte offset for up to 19 bytes, and each further length byte adds at most
 * 255. So a block of n bytes decodes to at most 255 n bytes (LZ4's documented maximum
 * compression ratio).
 */
const LZ4_MAX_RATIO = 255;

// Zstandard frame format (RFC 8878).
const ZSTD_MAGIC = 0xfd2fb528;
/** RFC 8878 3.1.1.2.4: no block holds (or decodes to) more than 128 KiB. */
const ZSTD_BLOCK_MAX = 128 << 10;
/** libzstd refuses windows over 2^31 bytes on 64-bit hosts (ZSTD_WINDOWLOG_MAX_64). */
const ZSTD_MAX_WINDOW_LOG = 31;
const ZSTD_DICT_ID_BYTES = [0, 1, 2, 4];
const ZSTD_FCS_BYTES = [0, 2, 4, 8];
const ZSTD_RAW = 0;
const ZSTD_RLE = 1;
const ZSTD_RESERVED = 3;

/**
 * A frame may have at most one block per this many declared bytes, plus one. Walking blocks is
 * the one cost here that grows with the body, and tiny blocks (3 bytes each for Zstandard)
 * would make it ~10 ns per 3 bytes received; this caps it by the declared size, which the
 * limit bounds. Honest writers are far above it: LZ4 blocks are 64 KiB to 4 MiB except the
 * last, and libzstd's blocks (split ones included) averaged over 15 KiB on mixed data at every
 * level tried.
 */
const MIN_BYTES_PER_BLOCK = 256;

/** Skippable frames of both formats: magic numbers 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/**
 * Checks the buffers of a compressed record batch or dictionary batch body, one at a time,
 * before the message is stored, without decompressing anything. For each buffer:
 *
 * - an empty buffer is fine (it has no length prefix);
 * - shorter than the 8-byte prefix, or a prefix below -1 or past 2^53 - 1: INVALID_ARGUMENT;
 * - prefix -1: the rest is the buffer, uncompressed;
 * - otherwise the rest must be exactly one frame of the batch's codec, and nothing after it:
 *   - LZ4_FRAME: magic number, FLG version 01 and reserved bit clear, BD block size id 4 to 7
 *     and reserved bits clear, header checksum (xxHash32) right, no dictionary id; every block
 *     no larger than the frame's block maximum, and the frame ends with its end mark (and
 *     content checksum if flagged) exactly at the buffer's end;
 *   - ZSTD: magic number, reserved bit clear, a window no decoder refuses (at most 2^31), no
 *     dictionary id; every block of a defined type and within Block_Maximum_Size, the last
 *     block (and content checksum if flagged) ending exactly at the buffer's end;
 *   - a content size the frame declares (LZ4 content size, Zstandard Frame_Content_Size)
 *     equals the prefix;
 *   - the prefix lies between what the frame's blocks must produce (stored and RLE blocks)
 *     and the most they can (each compressed block at most its block maximum, and for LZ4 at
 *     most 255 times its size): a body cannot make consumers allocate more than its frames
 *     could ever fill;
 *   - at most one block per 256 declared bytes, plus one, which bounds the walk;
 *   - skippable frames and concatenated frames are refused: no Arrow writer emits them,
 *     Arrow C++ refuses a second LZ4 frame, and they would carry bytes nobody reads;
 * - the prefix is at most the limit, and so is the sum of the batch's uncompressed sizes
 *   (RESOURCE_EXHAUSTED), as consumers allocate what is declared before decompressing.
 *
 * What is left unchecked is the compressed data inside the blocks and the block and content
 * checksums: that needs decompression (or hashing every byte), so a body can still pass here
 * and fail to decode. The cost here is one small read per block (64 KiB to 4 MiB of data for
 * LZ4, up to 128 KiB for Zstandard, for the writers we know).
 *
 * Failures are {@link FlightError}s whose message names the batch and the buffer, never the
 * bytes. Reusable: {@link begin} a body, check each buffer, then {@link end}.
 *
 * @example
 * const checker = new CompressedBodyChecker();
 * checker.begin(body, CompressionCodec.ZSTD, maxMessageBytes, "record batch");
 * try {
 *   for (let i = 0; i < batch.bufferCount; i++) sizes[i] = checker.buffer(i, batch.bufferOffset(i), batch.bufferLength(i));
 * } finally {
 *   checker.end();
 * }
 * @internal used by IpcStreamValidator
 */
export class CompressedBodyChecker {
  private readonly cursor = new ByteCursor();
  private readonly descriptor = new Uint8Array(14);
  private codec: number = CompressionCodec.LZ4_FRAME;
  private max = 0;
  private what = "";
  private total = 0;
  /** Where the bytes of the buffer checked last can be read in the body, or -1 when they are compressed or empty. */
  dataStart = -1;
  // What the frame walked last says about its output: produced exactly, and at most in addition.
  private exact = 0;
  private extra = 0;

  /** Starts checking the buffers of `body`, compressed with `codec` ({@link CompressionCodec}). */
  begin(body: Bytes, codec: number, maxBytes: number, what: string): void {
    this.cursor.reset(body);
    this.codec = codec;
    this.max = maxBytes;
    this.what = what;
    this.total = 0;
    this.dataStart = -1;
  }

  /** Lets go of the body. */
  end(): void {
    this.cursor.clear();
  }

  /**
   * Checks buffer `i` at `[offset, offset + length)` of the body (already known to lie inside
   * it) and returns its uncompressed size; sets {@link dataStart}.
   */
  buffer(i: number, offset: number, length: number): number {
    this.dataStart = -1;
    if (length === 0) return 0;
    if (length < PREFIX_BYTES) throw invalidArgument(`${this.what}: compressed buffer ${i} is shorter than its 8-byte length prefix`);
    const cursor = this.cursor;
    cursor.seek(offset, offset + length);
    // The prefix is little-endian whatever the schema's endianness (format spec).
    const lo = cursor.u32();
    const hi = cursor.u32() | 0;
    const declared = hi * 4294967296 + lo;
    let size: number;
    if (declared === UNCOMPRESSED) {
      size = length - PREFIX_BYTES;
      this.dataStart = offset + PREFIX_BYTES;
    } else {
      if (declared < 0 || !Number.isSafeInteger(declared)) {
        throw invalidArgument(`${this.what}: compressed buffer ${i} declares an invalid uncompressed length`);
      }
      checkSizeLimit(declared, this.max, `${this.what}: uncompressed buffer ${i}`);
      const problem = this.codec === CompressionCodec.ZSTD ? this.zstdFrame(declared) : this.lz4Frame(declared);
      if (problem !== null) throw invalidArgument(`${this.what}: compressed buffer ${i} ${problem}`);
      if (declared < this.exact || declared > this.exact + this.extra) {
        throw invalidArgument(
          `${this.what}: compressed buffer ${i} declares ${declared} uncompressed bytes, but its ${codecName(this.codec)} frame decodes to ` +
            `between ${this.exact} and ${this.exact + this.extra}`,
        );
      }
      size = declared;
    }
    this.total += size;
    if (this.total > this.max) {
      throw resourceExhausted(`${this.what}: uncompressed body (over ${this.total} bytes) is over the limit of ${this.max} bytes`);
    }
    return size;
  }

  /** Walks the LZ4 frame at the cursor; returns what is wrong with it, or null. */
  private lz4Frame(declared: number): string | null {
    const c = this.cursor;
    if (c.remaining < 7) return "is too short for an LZ4 frame";
    const magic = c.u32();
    if (magic !== LZ4_MAGIC) return notAFrame(magic, "an LZ4");
    const d = this.descriptor;
    const flg = (d[0] = c.u8());
    const bd = (d[1] = c.u8());
    if (flg >>> 6 !== 1) return `has LZ4 frame version ${flg >>> 6} (only 01 exists)`;
    if ((flg & 0x02) !== 0) return "sets the reserved bit of its LZ4 FLG byte";
    if ((bd & 0x8f) !== 0) return "sets reserved bits of its LZ4 BD byte";
    const blockMax = LZ4_BLOCK_MAX[(bd >>> 4) & 7]!;
    if (blockMax === 0) return `has LZ4 block maximum size id ${(bd >>> 4) & 7} (valid ones are 4 to 7)`;
    const blockChecksum = (flg & 0x10) !== 0 ? 4 : 0;
    const hasContentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0 ? 4 : 0;
    const hasDictionary = (flg & 0x01) !== 0;
    const descriptorBytes = 2 + (hasContentSize ? 8 : 0) + (hasDictionary ? 4 : 0);
    if (c.remaining < descriptorBytes - 2 + 1) return "ends inside its LZ4 frame descriptor";
    for (let k = 2; k < descriptorBytes; k++) d[k] = c.u8();
    if (c.u8() !== ((xxh32(d, 0, descriptorBytes) >>> 8) & 0xff)) return "has a wrong LZ4 frame header checksum";
    if (hasDictionary) return "needs an LZ4 dictionary, which Arrow IPC has no way to carry";
    if (hasContentSize) {
      const size = uint64(d, 2);
      if (size !== declared) return `declares ${size} content bytes in its LZ4 frame but ${declared} in its length prefix`;
    }
    let exact = 0;
    let extra = 0;
    let blocks = maxBlocks(declared);
    for (;;) {
      if (c.remaining < 4) return "ends inside its LZ4 frame (no end mark)";
      // The high bit marks a stored block; read signed so that the word stays a small integer.
      const word = c.i32();
      if (word === 0) break;
      if (--blocks < 0) return tooManyBlocks(declared);
      const size = word & 0x7fffffff;
      if (size > blockMax) return `has an LZ4 block of ${size} bytes, over the frame's block maximum of ${blockMax}`;
      if (c.remaining < size + blockChecksum) return "ends inside an LZ4 block";
      c.skip(size + blockChecksum);
      if (word < 0) exact += size;
      else extra += size * LZ4_MAX_RATIO < blockMax ? size * LZ4_MAX_RATIO : blockMax;
    }
    if (c.remaining < contentChecksum) return "ends inside its LZ4 content checksum";
    c.skip(contentChecksum);
    if (c.remaining !== 0) return `has ${c.remaining} bytes after its LZ4 frame`;
    this.exact = exact;
    this.extra = extra;
    return null;
  }

  /** Walks the Zstandard frame at the cursor; returns what is wrong with it, or null. */
  private zstdFrame(declared: number): string | null {
    const c = this.cursor;
    if (c.remaining < 5) return "is too short for a Zstandard frame";
    const magic = c.u32();
    if (magic !== ZSTD_MAGIC) return notAFrame(magic, "a Zstandard");
    const fhd = c.u8();
    const fcsFlag = fhd >>> 6;
    const singleSegment = (fhd & 0x20) !== 0;
    if ((fhd & 0x08) !== 0) return "sets the reserved bit of its Zstandard frame header";
    const contentChecksum = (fhd & 0x04) !== 0 ? 4 : 0;
    const dictionaryBytes = ZSTD_DICT_ID_BYTES[fhd & 3]!;
    const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : ZSTD_FCS_BYTES[fcsFlag]!;
    if (c.remaining < (singleSegment ? 0 : 1) + dictionaryBytes + fcsBytes) return "ends inside its Zstandard frame header";
    let window = Infinity;
    if (!singleSegment) {
      const wd = c.u8();
      const windowLog = 10 + (wd >>> 3);
      if (windowLog > ZSTD_MAX_WINDOW_LOG) return `declares a Zstandard window of 2^${windowLog} bytes (decoders accept at most 2^${ZSTD_MAX_WINDOW_LOG})`;
      window = 2 ** windowLog + (2 ** windowLog / 8) * (wd & 7);
    }
    if (dictionaryBytes > 0 && c.uint(dictionaryBytes) !== 0) return "needs a Zstandard dictionary, which Arrow IPC has no way to carry";
    if (fcsBytes > 0) {
      let size: number;
      if (fcsBytes === 8) {
        const lo = c.u32();
        size = c.u32() * 4294967296 + lo;
      } else {
        size = c.uint(fcsBytes) + (fcsBytes === 2 ? 256 : 0);
      }
      if (size !== declared) return `declares ${size} content bytes in its Zstandard frame but ${declared} in its length prefix`;
      // A single-segment frame's window is its content.
      if (singleSegment) window = size;
    }
    const blockMax = Math.min(window, ZSTD_BLOCK_MAX);
    let exact = 0;
    let extra = 0;
    let blocks = maxBlocks(declared);
    for (;;) {
      if (c.remaining < 3) return "ends inside its Zstandard frame (no last block)";
      if (--blocks < 0) return tooManyBlocks(declared);
      const header = c.u24();
      const type = (header >>> 1) & 3;
      const size = header >>> 3;
      if (type === ZSTD_RESERVED) return "has a Zstandard block of the reserved type";
      if (size > blockMax) return `has a Zstandard block of ${size} bytes, over the frame's block maximum of ${blockMax}`;
      // An RLE block is one byte repeated `size` times.
      const stored = type === ZSTD_RLE ? 1 : size;
      if (c.remaining < stored) return "ends inside a Zstandard block";
      c.skip(stored);
      if (type === ZSTD_RAW || type === ZSTD_RLE) exact += size;
      else extra += blockMax;
      if ((header & 1) !== 0) break;
    }
    if (c.remaining < contentChecksum) return "ends inside its Zstandard content checksum";
    c.skip(contentChecksum);
    if (c.remaining !== 0) return `has ${c.remaining} bytes after its Zstandard frame`;
    this.exact = exact;
    this.extra = extra;
    return null;
  }
}

function notAFrame(magic: number, kind: string): string {
  if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) return `starts with a skippable frame, where ${kind} frame is expected`;
  return `does not start with ${kind} frame (wrong magic number)`;
}

function maxBlocks(declared: number): number {
  return 1 + Math.floor(declared / MIN_BYTES_PER_BLOCK);
}

function tooManyBlocks(declared: number): string {
  return `has more than ${maxBlocks(declared)} blocks for ${declared} uncompressed bytes (at most one per ${MIN_BYTES_PER_BLOCK} bytes, plus one)`;
}

function codecName(codec: number): string {
  return codec === CompressionCodec.ZSTD ? "Zstandard" : "LZ4";
}

/** An unsigned little-endian 64-bit integer at `at` (exact up to 2^53). */
function uint64(b: Uint8Array, at: number): number {
  const lo = (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  const hi = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0;
  return hi * 4294967296 + lo;
}
