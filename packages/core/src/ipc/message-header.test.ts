import * as fs from "fs";
import * as path from "path";
import { StatusCode } from "../status-code";
import { splitIpcStream } from "./ipc-stream";
import { MessageKind } from "./ipc-message";
import { declaredUncompressedBytes, parseMessageHeader, readMessageHeader } from "./message-header";
import { ByteChunks } from "../byte-chunks";
import {
  HEADER_RECORD_BATCH,
  V4,
  V5,
  batchMessage,
  dictionaryMessage,
  i64,
  message,
  recordBatch,
  schemaMessage,
  int32Field,
  table,
  i8,
  i64s,
  i16,
  pairs,
  buildFlatbuffer,
} from "./test-flatbuffer-builder";
import { flightErrorOf, requireConformance } from "./test-helpers";

function refused(fn: () => unknown, pattern: RegExp, code: number = StatusCode.INVALID_ARGUMENT): void {
  const e = flightErrorOf(fn);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(pattern);
}

const simpleBatch = (over: Partial<Parameters<typeof recordBatch>[0]> = {}) =>
  recordBatch({ length: 2, nodes: [[2, 0]], buffers: [[0, 0], [0, 8]], ...over });

describe("readMessageHeader", () => {
  it("reads a schema message", () => {
    const info = readMessageHeader(schemaMessage([int32Field("x")]), 0);
    expect(info).toEqual({ kind: MessageKind.SCHEMA, version: V5, bodyLength: 0, rows: 0 });
  });

  it("reads a record batch and a dictionary batch", () => {
    expect(readMessageHeader(batchMessage(simpleBatch(), 8), new Uint8Array(8))).toEqual({
      kind: MessageKind.RECORD_BATCH,
      version: V5,
      bodyLength: 8,
      rows: 2,
    });
    expect(readMessageHeader(dictionaryMessage(7, simpleBatch(), 8, true), 8)).toEqual({
      kind: MessageKind.DICTIONARY_BATCH,
      version: V5,
      bodyLength: 8,
      rows: 2,
      dictionaryId: 7n,
      isDelta: true,
    });
  });

  it("accepts V4 and reports compression", () => {
    const info = readMessageHeader(batchMessage(simpleBatch({ codec: 1 }), 8, V4));
    expect(info.version).toBe(V4);
    expect(info.compression).toBe("zstd");
  });

  it("reads every message of a real stream", () => {
    const dir = requireConformance();
    const bytes = fs.readFileSync(path.join(dir, "ipc/cpp-21.0.0/generated_dictionary.stream"));
    const infos = splitIpcStream(bytes).map((m) => readMessageHeader(m.header, m.body));
    expect(infos.map((i) => i.kind)).toEqual([1, 2, 2, 2, 3, 3]);
    expect(infos.map((i) => i.dictionaryId)).toEqual([undefined, 0n, 1n, 2n, undefined, undefined]);
    expect(infos.map((i) => i.rows)).toEqual([0, 10, 5, 50, 7, 10]);
  });

  it("refuses metadata versions V1 to V3 and unknown ones", () => {
    for (const v of [0, 1, 2]) refused(() => readMessageHeader(batchMessage(simpleBatch(), 8, v)), new RegExp(`version V${v + 1}`));
    refused(() => readMessageHeader(batchMessage(simpleBatch(), 8, 9)), /unknown IPC metadata version 9/);
  });

  it("refuses a truncated header", () => {
    const header = batchMessage(simpleBatch(), 8);
    for (const n of [0, 3, 12, 40, header.length - 40]) {
      refused(() => readMessageHeader(header.subarray(0, n)), /invalid IPC message header/);
    }
  });

  it("refuses a body that does not match bodyLength", () => {
    const header = batchMessage(simpleBatch(), 16);
    refused(() => readMessageHeader(header, new Uint8Array(8)), /declares a 16-byte body but 8 bytes were given/);
    refused(() => readMessageHeader(header, 24), /but 24 bytes/);
  });

  it("refuses negative and unsafe body lengths", () => {
    refused(() => readMessageHeader(message({ headerType: HEADER_RECORD_BATCH, header: simpleBatch(), bodyLength: -8 })), /negative message body length/);
    refused(() => readMessageHeader(message({ headerType: HEADER_RECORD_BATCH, header: simpleBatch(), bodyLength: 2n ** 62n })), /safe integer/);
  });

  it("refuses a schema with a body", () => {
    const header = message({ headerType: 1, header: table(), bodyLength: 8 });
    refused(() => readMessageHeader(header), /schemas have none/);
  });

  it("refuses tensors, unknown and missing headers", () => {
    refused(() => readMessageHeader(message({ headerType: 4, header: table() })), /unsupported message type Tensor/);
    refused(() => readMessageHeader(message({ headerType: 5, header: table() })), /unsupported message type SparseTensor/);
    refused(() => readMessageHeader(message({ headerType: 9, header: table() })), /unsupported message type 9/);
    refused(() => readMessageHeader(message({ headerType: 0, header: table() })), /has a value but no type/);
    refused(() => readMessageHeader(buildFlatbuffer([i16(V5)])), /IPC message has no header/);
  });

  it("refuses negative batch lengths, node lengths and null counts", () => {
    refused(() => readMessageHeader(batchMessage(simpleBatch({ length: -1 }), 8)), /negative record batch length/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ nodes: [[-2, 0]] }), 8)), /field node 0 has negative length/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ nodes: [[2, -1]] }), 8)), /negative null count/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ nodes: [[2, 3]] }), 8)), /null count 3 greater than its length 2/);
  });

  it("refuses buffers with negative offsets or lengths, or past the body", () => {
    refused(() => readMessageHeader(batchMessage(simpleBatch({ buffers: [[0, 0], [-8, 8]] }), 8)), /buffer 1 has negative offset/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ buffers: [[0, 0], [0, -8]] }), 8)), /buffer 1 has negative length/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ buffers: [[0, 0], [8, 8]] }), 8)), /extends past the 8-byte body/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ buffers: [[0, 0], [2 ** 53 - 8, 16]] }), 8)), /extends past/);
  });

  it("refuses unknown compression codecs and methods", () => {
    refused(() => readMessageHeader(batchMessage(simpleBatch({ codec: 2 }), 8)), /unknown compression codec 2/);
    const header = batchMessage(table(i64(2), pairs([[2, 0]]), pairs([[0, 0], [0, 8]]), table(i8(0), i8(1))), 8);
    refused(() => readMessageHeader(header), /unknown body compression method 1/);
  });

  it("refuses variadic buffer counts that are negative or exceed the buffers", () => {
    refused(() => readMessageHeader(batchMessage(simpleBatch({ variadic: [-1] }), 8)), /variadic buffer count 0 is negative/);
    refused(() => readMessageHeader(batchMessage(simpleBatch({ variadic: [1, 2] }), 8)), /add up to more than the 2 buffers/);
    const huge = table(i64(2), undefined, undefined, undefined, i64s([2 ** 53]));
    refused(() => readMessageHeader(batchMessage(huge, 0)), /safe integer/);
  });

  it("refuses a dictionary batch without data", () => {
    const header = message({ headerType: 2, header: table(i64(3)) });
    refused(() => readMessageHeader(header), /dictionary batch for id 3 has no data/);
  });

  it("gives the validator the batch's nodes and buffers", () => {
    const parsed = parseMessageHeader(batchMessage(recordBatch({ length: 3, nodes: [[3, 1]], buffers: [[0, 8], [8, 16]] }), 24), 24);
    const batch = parsed.batch;
    expect(batch?.nodeCount).toBe(1);
    expect(batch?.nodeNullCount(0)).toBe(1);
    expect(batch?.bufferCount).toBe(2);
    expect(batch?.bufferOffset(1)).toBe(8);
    expect(batch?.bufferLength(1)).toBe(16);
    expect(batch?.compression).toBe(-1);
  });
});

describe("declaredUncompressedBytes", () => {
  const corpus = path.resolve(__dirname, "../../../../test/fixtures/conformance/ipc/2.0.0-compression");
  const batchesOf = (file: string) =>
    splitIpcStream(new Uint8Array(fs.readFileSync(path.join(corpus, file)))).filter((m) => readMessageHeader(m.header, m.body).compression !== undefined);

  it("sums the lengths the compressed buffers declare, whole or in chunks, and is 0 for other messages", () => {
    for (const file of ["generated_lz4.stream", "generated_zstd.stream", "generated_uncompressible_lz4.stream"]) {
      const batches = batchesOf(file);
      expect(batches.length).toBeGreaterThan(0);
      for (const m of batches) {
        const total = declaredUncompressedBytes(m.header, m.body);
        expect(total).toBeGreaterThan(0);
        // The same body cut into 3-byte chunks gives the same sum.
        const chunks = new ByteChunks(Array.from({ length: Math.ceil(m.body.byteLength / 3) }, (_, i) => m.body.subarray(3 * i, 3 * i + 3)));
        expect(declaredUncompressedBytes(m.header, chunks)).toBe(total);
      }
    }
    const [schema] = splitIpcStream(new Uint8Array(fs.readFileSync(path.join(corpus, "generated_lz4.stream"))));
    expect(declaredUncompressedBytes(schema!.header, schema!.body)).toBe(0);
  });

  it("reads a stored-uncompressed buffer (-1) as its own bytes, and refuses a negative or unsafe length", () => {
    const m = batchesOf("generated_lz4.stream")[0]!;
    const view = parseMessageHeader(m.header, m.body).batch!;
    let first = -1;
    for (let i = 0; i < view.bufferCount && first < 0; i++) if (view.bufferLength(i) >= 8) first = i;
    const offset = view.bufferOffset(first);
    const len = view.bufferLength(first);
    const withPrefix = (lo: number, hi: number): Uint8Array => {
      const body = Uint8Array.from(m.body);
      new DataView(body.buffer).setUint32(offset, lo >>> 0, true);
      new DataView(body.buffer).setInt32(offset + 4, hi, true);
      return body;
    };
    const base = declaredUncompressedBytes(m.header, m.body);
    const declaredFirst = new DataView(m.body.buffer, m.body.byteOffset).getUint32(offset, true);
    expect(declaredUncompressedBytes(m.header, withPrefix(-1, -1))).toBe(base - declaredFirst + (len - 8));
    expect(declaredUncompressedBytes(m.header, withPrefix(0, 1 << 12))).toBe(base - declaredFirst + 2 ** 44);
    expect(() => declaredUncompressedBytes(m.header, withPrefix(5, -1))).toThrow(expect.objectContaining({ code: StatusCode.INVALID_ARGUMENT }));
    expect(() => declaredUncompressedBytes(m.header, withPrefix(0, 1 << 30))).toThrow(/out of range/);
  });
});
