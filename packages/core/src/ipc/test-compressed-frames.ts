// Test-only builders of compressed Arrow buffers: the int64 length prefix, and LZ4 and
// Zstandard frames laid out by hand (stored, RLE or opaque "compressed" blocks), with knobs
// to break each field. Excluded from the build (src/**/test-*.ts).
import { xxh32 } from "./xxh32";

/** `payload` behind an int64 little-endian length prefix, as in a compressed Arrow buffer. */
export function prefixed(declared: number | bigint, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  new DataView(out.buffer).setBigInt64(0, BigInt(declared), true);
  out.set(payload, 8);
  return out;
}

const le = (value: number | bigint, bytes: number): number[] => {
  const out: number[] = [];
  let v = BigInt(value);
  for (let i = 0; i < bytes; i++, v >>= 8n) out.push(Number(v & 0xffn));
  return out;
};

/** An LZ4 block: stored (its bytes are the output) or compressed (opaque bytes here). */
export interface Lz4Block {
  bytes: Uint8Array;
  stored?: boolean;
}

export interface Lz4FrameOptions {
  /** Block maximum size id, 4 to 7 (default 4: 64 KiB). */
  blockSizeId?: number;
  /** Content size written in the descriptor (sets the FLG bit). */
  contentSize?: number | bigint;
  /** Dictionary id written in the descriptor (sets the FLG bit). */
  dictionaryId?: number;
  blockChecksums?: boolean;
  contentChecksum?: boolean;
  /** Bits ORed into FLG and BD after the flags are set (to break them). */
  flgXor?: number;
  bdXor?: number;
  /** Added to the header checksum byte. */
  hcDelta?: number;
  /** Leave out the end mark. */
  noEndMark?: boolean;
}

/** One LZ4 frame of `blocks`. */
export function lz4Frame(blocks: Lz4Block[], o: Lz4FrameOptions = {}): Uint8Array {
  let flg = 0x40 | 0x20; // version 01, independent blocks
  if (o.blockChecksums) flg |= 0x10;
  if (o.contentSize !== undefined) flg |= 0x08;
  if (o.contentChecksum) flg |= 0x04;
  if (o.dictionaryId !== undefined) flg |= 0x01;
  flg ^= o.flgXor ?? 0;
  const bd = ((o.blockSizeId ?? 4) << 4) ^ (o.bdXor ?? 0);
  const descriptor = [flg, bd];
  if (o.contentSize !== undefined) descriptor.push(...le(o.contentSize, 8));
  if (o.dictionaryId !== undefined) descriptor.push(...le(o.dictionaryId, 4));
  const hc = ((xxh32(Uint8Array.from(descriptor)) >>> 8) + (o.hcDelta ?? 0)) & 0xff;
  const out = [...le(0x184d2204, 4), ...descriptor, hc];
  for (const b of blocks) {
    out.push(...le(b.bytes.length + (b.stored ? 0x80000000 : 0), 4), ...b.bytes);
    if (o.blockChecksums) out.push(...le(xxh32(b.bytes), 4));
  }
  if (!o.noEndMark) out.push(0, 0, 0, 0);
  if (o.contentChecksum) out.push(...le(0x12345678, 4)); // not verified by the checker
  return Uint8Array.from(out);
}

/** `data` as one LZ4 frame of stored blocks of at most 64 KiB. */
export function lz4Stored(data: Uint8Array, o: Lz4FrameOptions = {}): Uint8Array {
  const blocks: Lz4Block[] = [];
  for (let at = 0; at < data.length; at += 64 << 10) blocks.push({ bytes: data.subarray(at, at + (64 << 10)), stored: true });
  return lz4Frame(blocks, o);
}

/** A Zstandard block: raw (its bytes), RLE (`byte` repeated `size` times), compressed (opaque bytes), or of the reserved type. */
export type ZstdBlock =
  | { type: "raw"; bytes: Uint8Array }
  | { type: "rle"; byte: number; size: number }
  | { type: "compressed"; bytes: Uint8Array }
  | { type: "reserved"; size: number };

export interface ZstdFrameOptions {
  /** Frame_Content_Size; absent unless given. */
  contentSize?: number | bigint;
  /** Bytes of the Frame_Content_Size field (default: the fewest that hold it). */
  fcsBytes?: 1 | 2 | 4 | 8;
  /** Single segment (no window descriptor); default: when the content size is given. */
  singleSegment?: boolean;
  /** Window_Descriptor byte when not single segment (default 0x38: 128 KiB). */
  windowDescriptor?: number;
  checksum?: boolean;
  /** Dictionary_ID (4-byte field). */
  dictionaryId?: number;
  /** Bits ORed into the frame header descriptor. */
  descriptorOr?: number;
  /** Leave the last block's Last_Block bit clear. */
  noLastBlock?: boolean;
}

/** One Zstandard frame of `blocks`. */
export function zstdFrame(blocks: ZstdBlock[], o: ZstdFrameOptions = {}): Uint8Array {
  const hasSize = o.contentSize !== undefined;
  const single = o.singleSegment ?? hasSize;
  const size = BigInt(o.contentSize ?? 0);
  let fcsBytes = 0;
  if (hasSize) fcsBytes = o.fcsBytes ?? (size < 256n && single ? 1 : size >= 256n && size < 65792n ? 2 : size < 2n ** 32n ? 4 : 8);
  const fcsFlag = fcsBytes === 8 ? 3 : fcsBytes === 4 ? 2 : fcsBytes === 2 ? 1 : 0;
  const fhd = (fcsFlag << 6) | (single ? 0x20 : 0) | (o.checksum ? 0x04 : 0) | (o.dictionaryId !== undefined ? 3 : 0) | (o.descriptorOr ?? 0);
  const out = [...le(0xfd2fb528, 4), fhd];
  if (!single) out.push(o.windowDescriptor ?? 0x38);
  if (o.dictionaryId !== undefined) out.push(...le(o.dictionaryId, 4));
  if (fcsBytes > 0) out.push(...le(fcsBytes === 2 ? size - 256n : size, fcsBytes));
  blocks.forEach((b, i) => {
    const last = i === blocks.length - 1 && !o.noLastBlock ? 1 : 0;
    const [type, blockSize, bytes] =
      b.type === "raw" ? [0, b.bytes.length, [...b.bytes]] : b.type === "rle" ? [1, b.size, [b.byte]] : b.type === "compressed" ? [2, b.bytes.length, [...b.bytes]] : [3, b.size, []];
    out.push(...le((blockSize << 3) | (type << 1) | last, 3), ...bytes);
  });
  if (o.checksum) out.push(...le(0x12345678, 4)); // not verified by the checker
  return Uint8Array.from(out);
}
