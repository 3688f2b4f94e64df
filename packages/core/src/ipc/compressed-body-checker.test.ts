import * as fs from "fs";
import * as path from "path";
import { ByteChunks, type Bytes } from "../byte-chunks";
import { StatusCode } from "../status-code";
import { CompressedBodyChecker } from "./compressed-body-checker";
import { splitIpcStream } from "./ipc-stream";
import { CompressionCodec, parseMessageHeader } from "./message-header";
import { IpcStreamValidator } from "./stream-validator";
import { lz4Frame, lz4Stored, prefixed, zstdFrame, type Lz4FrameOptions, type ZstdFrameOptions } from "./test-compressed-frames";
import { flightErrorOf, listFiles, requireConformance } from "./test-helpers";

const { LZ4_FRAME: LZ4, ZSTD } = CompressionCodec;
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 17) & 0xff);
const LIMIT = 1 << 30;

/** Lays `buffers` out 8-byte aligned in one body; returns the body and each buffer's [offset, length]. */
function layout(buffers: Uint8Array[]): { body: Uint8Array; places: Array<[number, number]> } {
  const places: Array<[number, number]> = [];
  let size = 0;
  for (const b of buffers) {
    places.push([size, b.length]);
    size += Math.ceil(b.length / 8) * 8;
  }
  const body = new Uint8Array(size);
  buffers.forEach((b, i) => body.set(b, places[i]![0]));
  return { body, places };
}

/** `body` cut at the given positions into a ByteChunks. */
function cut(body: Uint8Array, at: number[]): ByteChunks {
  const points = [0, ...at, body.length];
  return new ByteChunks(points.slice(1).map((end, i) => body.subarray(points[i], end)));
}

/** Runs the checker over `buffers` laid out in `body` (or the contiguous body); returns each buffer's size. */
function checkIn(codec: number, buffers: Uint8Array[], asBody: (b: Uint8Array) => Bytes = (b) => b, limit = LIMIT): number[] {
  const { body, places } = layout(buffers);
  const checker = new CompressedBodyChecker();
  checker.begin(asBody(body), codec, limit, "record batch");
  try {
    return places.map(([offset, length], i) => checker.buffer(i, offset, length));
  } finally {
    checker.end();
  }
}

/**
 * Checks `buffers` contiguous, cut at every position, and in 1-, 3- and 7-byte chunks; every
 * way must give the same result. Returns the sizes, or the error message when refused.
 */
function check(codec: number, buffers: Uint8Array[], limit = LIMIT): number[] | string {
  const outcome = (asBody?: (b: Uint8Array) => Bytes) => {
    try {
      return checkIn(codec, buffers, asBody, limit);
    } catch (e) {
      const error = flightErrorOf(() => {
        throw e;
      });
      return `${error.code === StatusCode.INVALID_ARGUMENT ? "" : `code ${error.code}: `}${error.message}`;
    }
  };
  const expected = outcome();
  const { body } = layout(buffers);
  const ways: Array<(b: Uint8Array) => Bytes> = [1, 3, 7].map((n) => (b) => cut(b, Array.from({ length: Math.ceil(b.length / n) - 1 }, (_, i) => (i + 1) * n)));
  if (body.length < 400) for (let at = 1; at < body.length; at++) ways.push((b) => cut(b, [at]));
  for (const way of ways) expect(outcome(way)).toEqual(expected);
  return expected;
}

const lz4 = (declared: number | bigint, blocks: Parameters<typeof lz4Frame>[0], o?: Lz4FrameOptions) => prefixed(declared, lz4Frame(blocks, o));
const zstd = (declared: number | bigint, blocks: Parameters<typeof zstdFrame>[0], o?: ZstdFrameOptions) => prefixed(declared, zstdFrame(blocks, o));
const refusal = (pattern: RegExp) => expect.stringMatching(pattern);

describe("CompressedBodyChecker: the length prefix", () => {
  it("takes empty buffers, and -1 buffers as stored after the prefix", () => {
    expect(check(LZ4, [new Uint8Array(0), prefixed(-1, bytes(13)), prefixed(-1)])).toEqual([0, 13, 0]);
    const { body, places } = layout([prefixed(-1, bytes(5)), new Uint8Array(0)]);
    const checker = new CompressedBodyChecker();
    checker.begin(body, ZSTD, LIMIT, "record batch");
    expect(checker.buffer(0, ...places[0]!)).toBe(5);
    expect(checker.dataStart).toBe(8);
    expect(checker.buffer(1, ...places[1]!)).toBe(0);
    expect(checker.dataStart).toBe(-1);
  });

  it("refuses buffers shorter than the prefix, and prefixes below -1 or past 2^53 - 1", () => {
    expect(check(LZ4, [bytes(7)])).toEqual(refusal(/^record batch: compressed buffer 0 is shorter than its 8-byte length prefix$/));
    expect(check(ZSTD, [new Uint8Array(0), prefixed(-2, bytes(8))])).toEqual(refusal(/^record batch: compressed buffer 1 declares an invalid uncompressed length$/));
    expect(check(ZSTD, [prefixed(-(2n ** 63n), bytes(8))])).toEqual(refusal(/declares an invalid uncompressed length/));
    expect(check(ZSTD, [prefixed(2n ** 53n, bytes(8))])).toEqual(refusal(/declares an invalid uncompressed length/));
  });

  it("refuses declared sizes over the limit, one by one and added up, with RESOURCE_EXHAUSTED", () => {
    const ok = zstd(1000, [{ type: "rle", byte: 1, size: 1000 }], { contentSize: 1000 });
    expect(check(ZSTD, [ok, ok], 2000)).toEqual([1000, 1000]);
    expect(check(ZSTD, [ok], 999)).toEqual(refusal(/^code 8: record batch: uncompressed buffer 0 \(1000 bytes\) is over the limit of 999 bytes$/));
    expect(check(ZSTD, [ok, ok, ok], 2500)).toEqual(refusal(/^code 8: record batch: uncompressed body \(over 3000 bytes\) is over the limit of 2500 bytes$/));
    // Stored (-1) buffers count towards the sum too.
    expect(check(ZSTD, [ok, prefixed(-1, bytes(16))], 1010)).toEqual(refusal(/^code 8: .*uncompressed body/));
  });

  it("refuses garbage after a valid prefix, whatever the codec", () => {
    for (const codec of [LZ4, ZSTD]) {
      for (const n of [0, 3, 6, 40, 1000]) {
        expect(check(codec, [prefixed(n, bytes(n, n))])).toEqual(refusal(/^record batch: compressed buffer 0 (does not start with|is too short for)/));
      }
    }
  });
});

describe("CompressedBodyChecker: LZ4 frames", () => {
  const data = bytes(70_000);

  it("accepts stored and compressed blocks, with or without content size, checksums and dictionary-free descriptors", () => {
    expect(check(LZ4, [prefixed(70_000, lz4Stored(data))])).toEqual([70_000]);
    expect(check(LZ4, [prefixed(70_000, lz4Stored(data, { contentSize: 70_000, blockChecksums: true, contentChecksum: true }))])).toEqual([70_000]);
    expect(check(LZ4, [prefixed(70_000, lz4Stored(data, { blockSizeId: 7 }))])).toEqual([70_000]);
    // A compressed block of n bytes decodes to at most 255 n.
    expect(check(LZ4, [lz4(255 * 20, [{ bytes: bytes(20) }])])).toEqual([5100]);
    expect(check(LZ4, [lz4(1, [{ bytes: bytes(20) }])])).toEqual([1]);
    // Empty content: no blocks at all.
    expect(check(LZ4, [lz4(0, []), lz4(0, [], { contentSize: 0 })])).toEqual([0, 0]);
  });

  it("refuses a wrong magic number and skippable frames", () => {
    const frame = lz4Stored(bytes(16));
    frame[0] = 0x03;
    expect(check(LZ4, [prefixed(16, frame)])).toEqual(refusal(/^record batch: compressed buffer 0 does not start with an LZ4 frame \(wrong magic number\)$/));
    const skippable = Uint8Array.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
    expect(check(LZ4, [prefixed(0, skippable)])).toEqual(refusal(/starts with a skippable frame, where an LZ4 frame is expected/));
  });

  it("refuses bad version bits, reserved bits, block size ids, header checksums and dictionaries", () => {
    const one = (o: Lz4FrameOptions) => check(LZ4, [lz4(16, [{ bytes: bytes(16), stored: true }], o)]);
    expect(one({})).toEqual([16]);
    expect(one({ flgXor: 0x40 })).toEqual(refusal(/has LZ4 frame version 0 \(only 01 exists\)/));
    expect(one({ flgXor: 0xc0 })).toEqual(refusal(/has LZ4 frame version 2/));
    expect(one({ flgXor: 0x02 })).toEqual(refusal(/sets the reserved bit of its LZ4 FLG byte/));
    expect(one({ bdXor: 0x80 })).toEqual(refusal(/sets reserved bits of its LZ4 BD byte/));
    expect(one({ bdXor: 0x01 })).toEqual(refusal(/sets reserved bits of its LZ4 BD byte/));
    expect(one({ blockSizeId: 3 })).toEqual(refusal(/has LZ4 block maximum size id 3 \(valid ones are 4 to 7\)/));
    expect(one({ blockSizeId: 0 })).toEqual(refusal(/block maximum size id 0/));
    expect(one({ hcDelta: 1 })).toEqual(refusal(/has a wrong LZ4 frame header checksum/));
    expect(one({ dictionaryId: 7 })).toEqual(refusal(/needs an LZ4 dictionary/));
  });

  it("refuses a content size other than the prefix", () => {
    expect(check(LZ4, [lz4(16, [{ bytes: bytes(16), stored: true }], { contentSize: 17 })])).toEqual(
      refusal(/^record batch: compressed buffer 0 declares 17 content bytes in its LZ4 frame but 16 in its length prefix$/),
    );
    expect(check(LZ4, [lz4(16, [{ bytes: bytes(16), stored: true }], { contentSize: 2n ** 64n - 1n })])).toEqual(refusal(/content bytes in its LZ4 frame but 16/));
  });

  it("refuses truncated frames, blocks over the maximum, and bytes after the frame", () => {
    const stored = [{ bytes: bytes(16), stored: true }];
    expect(check(LZ4, [lz4(16, stored, { noEndMark: true })])).toEqual(refusal(/ends inside its LZ4 frame \(no end mark\)/));
    const frame = lz4Frame(stored);
    expect(check(LZ4, [prefixed(16, frame.subarray(0, 6))])).toEqual(refusal(/is too short for an LZ4 frame/));
    expect(check(LZ4, [prefixed(16, frame.subarray(0, 20))])).toEqual(refusal(/ends inside an LZ4 block/));
    expect(check(LZ4, [prefixed(16, Uint8Array.from([...frame, 0]))])).toEqual(refusal(/has 1 bytes after its LZ4 frame/));
    expect(check(LZ4, [prefixed(32, Uint8Array.from([...frame, ...frame]))])).toEqual(refusal(/has 31 bytes after its LZ4 frame/));
    const withContentSize = lz4Frame(stored, { contentSize: 16 });
    expect(check(LZ4, [prefixed(16, withContentSize.subarray(0, 10))])).toEqual(refusal(/ends inside its LZ4 frame descriptor/));
    expect(check(LZ4, [prefixed(16, lz4Frame(stored, { contentChecksum: true }).subarray(0, 33))])).toEqual(refusal(/ends inside its LZ4 content checksum/));
    // 64 KiB + 1 in a frame whose blocks are at most 64 KiB.
    expect(check(LZ4, [lz4(65537, [{ bytes: bytes(65537), stored: true }])])).toEqual(refusal(/has an LZ4 block of 65537 bytes, over the frame's block maximum of 65536/));
  });

  it("refuses declared sizes the blocks cannot produce", () => {
    // Stored blocks are their own output.
    expect(check(LZ4, [lz4(15, [{ bytes: bytes(16), stored: true }])])).toEqual(
      refusal(/^record batch: compressed buffer 0 declares 15 uncompressed bytes, but its LZ4 frame decodes to between 16 and 16$/),
    );
    // A 20-byte compressed block cannot make more than 255 x 20 bytes: the decompression bomb.
    expect(check(LZ4, [lz4(255 * 20 + 1, [{ bytes: bytes(20) }])])).toEqual(refusal(/declares 5101 uncompressed bytes, but its LZ4 frame decodes to between 0 and 5100/));
    // A block never makes more than the block maximum.
    expect(check(LZ4, [lz4(65537, [{ bytes: bytes(60_000) }])])).toEqual(refusal(/between 0 and 65536/));
    // An empty frame makes nothing.
    expect(check(LZ4, [lz4(1, [])])).toEqual(refusal(/between 0 and 0/));
  });

  it("refuses frames with more blocks than one per 256 declared bytes, plus one", () => {
    const empties = (n: number) => Array.from({ length: n }, () => ({ bytes: new Uint8Array(0), stored: true }));
    expect(check(LZ4, [lz4(512, [...empties(2), { bytes: bytes(512), stored: true }])])).toEqual([512]);
    expect(check(LZ4, [lz4(512, [...empties(3), { bytes: bytes(512), stored: true }])])).toEqual(refusal(/has more than 3 blocks for 512 uncompressed bytes/));
  });
});

describe("CompressedBodyChecker: Zstandard frames", () => {
  const raw = (n: number) => ({ type: "raw" as const, bytes: bytes(n) });

  it("accepts single-segment and windowed frames, raw, RLE and compressed blocks, with or without a checksum", () => {
    expect(check(ZSTD, [zstd(200, [raw(200)], { contentSize: 200 })])).toEqual([200]);
    for (const fcsBytes of [2, 4, 8] as const) expect(check(ZSTD, [zstd(300, [raw(300)], { contentSize: 300, fcsBytes })])).toEqual([300]);
    expect(check(ZSTD, [zstd(1300, [raw(300), { type: "rle", byte: 9, size: 1000 }], { checksum: true })])).toEqual([1300]);
    expect(check(ZSTD, [zstd(1300, [raw(300), { type: "rle", byte: 9, size: 1000 }], { contentSize: 1300, singleSegment: false })])).toEqual([1300]);
    // A compressed block makes at most the block maximum: 128 KiB here.
    expect(check(ZSTD, [zstd(100_000, [{ type: "compressed", bytes: bytes(50) }])])).toEqual([100_000]);
    // The empty frame libzstd writes: content size 0, one empty last raw block.
    expect(check(ZSTD, [zstd(0, [raw(0)], { contentSize: 0 })])).toEqual([0]);
  });

  it("refuses a wrong magic number and skippable frames", () => {
    const frame = zstdFrame([raw(16)], { contentSize: 16 });
    frame[3] = 0xfe;
    expect(check(ZSTD, [prefixed(16, frame)])).toEqual(refusal(/^record batch: compressed buffer 0 does not start with a Zstandard frame \(wrong magic number\)$/));
    const skippable = Uint8Array.from([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
    expect(check(ZSTD, [prefixed(0, skippable)])).toEqual(refusal(/starts with a skippable frame, where a Zstandard frame is expected/));
  });

  it("refuses the reserved descriptor bit, dictionaries and windows no decoder takes", () => {
    expect(check(ZSTD, [zstd(16, [raw(16)], { contentSize: 16, descriptorOr: 0x08 })])).toEqual(refusal(/sets the reserved bit of its Zstandard frame header/));
    expect(check(ZSTD, [zstd(16, [raw(16)], { contentSize: 16, dictionaryId: 5 })])).toEqual(refusal(/needs a Zstandard dictionary/));
    // Dictionary id 0 means none.
    expect(check(ZSTD, [zstd(16, [raw(16)], { contentSize: 16, dictionaryId: 0 })])).toEqual([16]);
    expect(check(ZSTD, [zstd(16, [raw(16)], { windowDescriptor: 21 << 3 })])).toEqual([16]);
    expect(check(ZSTD, [zstd(16, [raw(16)], { windowDescriptor: 22 << 3 })])).toEqual(refusal(/declares a Zstandard window of 2\^32 bytes \(decoders accept at most 2\^31\)/));
  });

  it("refuses a Frame_Content_Size other than the prefix", () => {
    expect(check(ZSTD, [zstd(16, [raw(16)], { contentSize: 17 })])).toEqual(
      refusal(/^record batch: compressed buffer 0 declares 17 content bytes in its Zstandard frame but 16 in its length prefix$/),
    );
    expect(check(ZSTD, [zstd(300, [raw(300)], { contentSize: 301, fcsBytes: 2 })])).toEqual(refusal(/declares 301 content bytes/));
    expect(check(ZSTD, [zstd(300, [raw(300)], { contentSize: 2n ** 40n, fcsBytes: 8 })])).toEqual(refusal(/declares 1099511627776 content bytes/));
  });

  it("refuses reserved block types, blocks over the maximum, truncation and bytes after the frame", () => {
    expect(check(ZSTD, [zstd(16, [{ type: "reserved", size: 16 }])])).toEqual(refusal(/has a Zstandard block of the reserved type/));
    // Over 128 KiB, and over a small window (1 KiB) or a single segment's content size.
    expect(check(ZSTD, [zstd(131073, [{ type: "rle", byte: 0, size: 131073 }])])).toEqual(refusal(/has a Zstandard block of 131073 bytes, over the frame's block maximum of 131072/));
    expect(check(ZSTD, [zstd(1025, [raw(1025)], { windowDescriptor: 0 })])).toEqual(refusal(/block of 1025 bytes, over the frame's block maximum of 1024/));
    expect(check(ZSTD, [zstd(100, [{ type: "compressed", bytes: bytes(150) }], { contentSize: 100 })])).toEqual(refusal(/block of 150 bytes, over the frame's block maximum of 100/));
    expect(check(ZSTD, [zstd(16, [raw(16)], { noLastBlock: true })])).toEqual(refusal(/ends inside its Zstandard frame \(no last block\)/));
    const frame = zstdFrame([raw(16)], { contentSize: 16, checksum: true });
    expect(check(ZSTD, [prefixed(16, frame.subarray(0, 4))])).toEqual(refusal(/is too short for a Zstandard frame/));
    expect(check(ZSTD, [prefixed(16, frame.subarray(0, 5))])).toEqual(refusal(/ends inside its Zstandard frame header/));
    expect(check(ZSTD, [prefixed(16, frame.subarray(0, 20))])).toEqual(refusal(/ends inside a Zstandard block/));
    expect(check(ZSTD, [prefixed(16, frame.subarray(0, frame.length - 1))])).toEqual(refusal(/ends inside its Zstandard content checksum/));
    expect(check(ZSTD, [prefixed(16, Uint8Array.from([...frame, 0, 0]))])).toEqual(refusal(/has 2 bytes after its Zstandard frame/));
    // Concatenated frames are refused too (Arrow C++ would take them; no writer makes them).
    const plain = zstdFrame([raw(16)]);
    expect(check(ZSTD, [prefixed(32, Uint8Array.from([...plain, ...plain]))])).toEqual(refusal(/bytes after its Zstandard frame/));
  });

  it("refuses declared sizes the blocks cannot produce, when the frame has no content size", () => {
    const blocks = [raw(300), { type: "rle" as const, byte: 9, size: 1000 }];
    expect(check(ZSTD, [zstd(1299, blocks)])).toEqual(refusal(/declares 1299 uncompressed bytes, but its Zstandard frame decodes to between 1300 and 1300/));
    // One compressed block under a 1 KiB window makes at most 1 KiB: a 1 GiB claim is refused.
    expect(check(ZSTD, [zstd(2 ** 30, [{ type: "compressed", bytes: bytes(40) }], { windowDescriptor: 0 })])).toEqual(refusal(/between 0 and 1024/));
  });

  it("refuses frames with more blocks than one per 256 declared bytes, plus one", () => {
    expect(check(ZSTD, [zstd(512, [raw(0), raw(0), raw(512)])])).toEqual([512]);
    expect(check(ZSTD, [zstd(512, [raw(0), raw(0), raw(0), raw(512)])])).toEqual(refusal(/has more than 3 blocks for 512 uncompressed bytes/));
  });
});

describe("CompressedBodyChecker: real streams from Arrow C++", () => {
  const corpus = requireConformance();
  const streams = listFiles(path.join(corpus, "ipc", "2.0.0-compression")).filter((f) => f.endsWith(".stream"));

  /** Each compressed message of `file`, with its batch. */
  function compressedMessages(file: string) {
    return splitIpcStream(fs.readFileSync(file))
      .map((m) => ({ ...m, batch: parseMessageHeader(m.header, m.body).batch }))
      .filter((m) => m.batch !== undefined && m.batch.compression >= 0);
  }

  it.each(streams.map((f) => [path.basename(f, ".stream"), f]))("%s validates with its bodies cut into 1-, 5- and 4099-byte chunks", (_name, file) => {
    const messages = splitIpcStream(fs.readFileSync(file));
    for (const size of [1, 5, 4099]) {
      const validator = new IpcStreamValidator();
      for (const m of messages) {
        validator.accept(m.header, cut(m.body, Array.from({ length: Math.max(0, Math.ceil(m.body.length / size) - 1) }, (_, i) => (i + 1) * size)));
      }
    }
    expect(compressedMessages(file).length).toBeGreaterThan(0);
  });

  it("refuses the real frames once broken: magic, descriptor, declared size, truncation, trailing bytes", () => {
    let frames = 0;
    for (const file of streams) {
      for (const m of compressedMessages(file)) {
        const batch = m.batch!;
        const codec = batch.compression;
        for (let i = 0; i < batch.bufferCount; i++) {
          const offset = batch.bufferOffset(i);
          const length = batch.bufferLength(i);
          const buffer = m.body.subarray(offset, offset + length);
          if (length === 0 || new DataView(buffer.buffer, buffer.byteOffset).getBigInt64(0, true) === -1n) continue;
          frames++;
          const declared = Number(new DataView(buffer.buffer, buffer.byteOffset).getBigInt64(0, true));
          const frame = buffer.subarray(8);
          expect(check(codec, [buffer])).toEqual([declared]);
          const broken = (edit: (b: Uint8Array) => Uint8Array) => check(codec, [edit(Uint8Array.from(buffer))]);
          expect(broken((b) => ((b[8] ^= 0xff), b))).toEqual(refusal(/does not start with/));
          // FLG version bits (LZ4) or the reserved descriptor bit (Zstandard).
          expect(broken((b) => ((b[12] ^= codec === LZ4 ? 0xc0 : 0x08), b))).toEqual(refusal(/version|reserved bit/));
          // More than the frame could make (LZ4 frames from Arrow C++ carry no content size).
          expect(broken((b) => (new DataView(b.buffer).setBigInt64(0, BigInt(255 * frame.length + 1), true), b))).toEqual(refusal(/declares/));
          expect(broken((b) => b.subarray(0, b.length - 1))).toEqual(refusal(/ends inside/));
          expect(broken((b) => Uint8Array.from([...b, ...frame]))).toEqual(refusal(/bytes after its/));
        }
      }
    }
    expect(frames).toBe(18);
  });
});
