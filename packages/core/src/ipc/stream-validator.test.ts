import * as fs from "fs";
import * as path from "path";
import { StatusCode } from "../status-code";
import { MessageKind } from "./ipc-message";
import { joinIpcStream, splitIpcStream } from "./ipc-stream";
import { IpcStreamValidator, readSchemaFrom } from "./stream-validator";
import {
  T,
  V4,
  batchMessage,
  bool,
  dictionaryMessage,
  field,
  i16,
  i32,
  i32s,
  i64,
  int32Field,
  recordBatch,
  schemaMessage,
  table,
  utf8Field,
  type Fb,
} from "./test-flatbuffer-builder";
import { lz4Stored, prefixed, zstdFrame } from "./test-compressed-frames";
import { flightErrorOf, requireConformance } from "./test-helpers";

type Pair = [number, number];

/** Lays `parts` out as a body, each 8-byte aligned; returns the body and the Buffer entries. */
function body(...parts: Uint8Array[]): { body: Uint8Array; buffers: Pair[] } {
  const buffers: Pair[] = [];
  let size = 0;
  for (const p of parts) {
    buffers.push([p.length === 0 ? 0 : size, p.length]);
    size += Math.ceil(p.length / 8) * 8;
  }
  const out = new Uint8Array(size);
  parts.forEach((p, i) => out.set(p, (buffers[i] as Pair)[0]));
  return { body: out, buffers };
}
const none = new Uint8Array(0);
const int32s = (...v: number[]) => new Uint8Array(Int32Array.from(v).buffer);
const int64s = (...v: number[]) => new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer);
const bits = (...bytes: number[]) => Uint8Array.from(bytes);
const text = (s: string) => new TextEncoder().encode(s);

function refused(fn: () => unknown, pattern: RegExp, code: number = StatusCode.INVALID_ARGUMENT): void {
  const e = flightErrorOf(fn);
  expect({ code: e.code, message: e.message }).toEqual({ code, message: expect.stringMatching(pattern) });
}

/** A validator that has accepted a schema of `fields`. */
function withSchema(fields: Array<Array<Fb | undefined>>, options?: { maxMessageBytes?: number }, version?: number): IpcStreamValidator {
  const v = new IpcStreamValidator(options);
  v.accept(schemaMessage(fields, version), none);
  return v;
}

/** Sends a record batch of `length` rows with `nodes` and the buffers laid out from `parts`. */
function sendBatch(v: IpcStreamValidator, length: number, nodes: Pair[], parts: Uint8Array[], extra: { codec?: number; variadic?: number[]; version?: number } = {}) {
  const b = body(...parts);
  const header = batchMessage(recordBatch({ length, nodes, buffers: b.buffers, ...extra }), b.body.length, extra.version);
  return v.accept(header, b.body);
}

describe("IpcStreamValidator: stream structure", () => {
  it("accepts a schema then record batches", () => {
    const v = withSchema([int32Field("x"), utf8Field("s")]);
    const info = sendBatch(v, 3, [[3, 1], [3, 0]], [bits(0b101), int32s(1, 0, 3), none, int32s(0, 1, 3, 6), text("abbccc")]);
    expect(info).toMatchObject({ kind: MessageKind.RECORD_BATCH, rows: 3 });
    expect(v.schema?.fields.map((f) => f.name)).toEqual(["x", "s"]);
    expect(readSchemaFrom(v)).toBe(v.schema);
  });

  it("refuses a record batch or dictionary batch before the schema", () => {
    const v = new IpcStreamValidator();
    refused(() => v.accept(batchMessage(recordBatch({ length: 0, nodes: [], buffers: [] }), 0), none), /^record batch before the schema message$/);
    refused(() => v.accept(dictionaryMessage(0, recordBatch({ length: 0, nodes: [], buffers: [] }), 0), none), /^dictionary batch before the schema message$/);
    expect(flightErrorOf(() => readSchemaFrom(v)).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("refuses a second schema", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => v.accept(schemaMessage([int32Field("x")]), none), /unexpected second schema message/);
    // The refused message changed nothing.
    sendBatch(v, 1, [[1, 0]], [none, int32s(7)]);
  });

  it("refuses a batch whose metadata version differs from the schema's", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => sendBatch(v, 1, [[1, 0]], [none, int32s(7)], { version: V4 }), /metadata version V4, the schema V5/);
  });

  it("refuses headers and bodies over maxMessageBytes with RESOURCE_EXHAUSTED", () => {
    const v = withSchema([int32Field("x")], { maxMessageBytes: 200 });
    refused(() => sendBatch(v, 64, [[64, 0]], [none, int32s(...new Array<number>(64).fill(1))]), /^message \(\d+ bytes\) is over the limit of 200 bytes$/, StatusCode.RESOURCE_EXHAUSTED);
    const small = new IpcStreamValidator({ maxMessageBytes: 16 });
    refused(() => small.accept(schemaMessage([int32Field("x")]), none), /^message \(128 bytes\) is over the limit of 16 bytes$/, StatusCode.RESOURCE_EXHAUSTED);
  });

  it("refuses a body shorter than declared and buffers past the body", () => {
    const v = withSchema([int32Field("x")]);
    const b = body(none, int32s(1, 2));
    const header = batchMessage(recordBatch({ length: 2, nodes: [[2, 0]], buffers: b.buffers }), b.body.length);
    refused(() => v.accept(header, b.body.subarray(0, 4)), /declares a 8-byte body but 4 bytes were given/);
    const past = batchMessage(recordBatch({ length: 2, nodes: [[2, 0]], buffers: [[0, 0], [8, 8]] }), 8);
    refused(() => v.accept(past, new Uint8Array(8)), /buffer 1 \(offset 8, length 8\) extends past the 8-byte body/);
  });

  it("refuses negative lengths and null counts", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => sendBatch(v, -1, [[1, 0]], [none, int32s(1)]), /negative record batch length/);
    refused(() => sendBatch(v, 1, [[-1, 0]], [none, int32s(1)]), /field node 0 has negative length -1/);
    refused(() => sendBatch(v, 1, [[1, -1]], [none, int32s(1)]), /negative null count/);
  });
});

describe("IpcStreamValidator: node and buffer counts", () => {
  it("refuses wrong node counts", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => sendBatch(v, 1, [[1, 0], [1, 0]], [none, int32s(1)]), /record batch has 2 field nodes, the schema implies 1/);
    refused(() => sendBatch(v, 1, [], [none, int32s(1)]), /has 0 field nodes, the schema implies 1/);
  });

  it("refuses wrong buffer counts", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => sendBatch(v, 1, [[1, 0]], [int32s(1)]), /record batch has 1 buffers, the schema implies 2/);
    refused(() => sendBatch(v, 1, [[1, 0]], [none, int32s(1), none]), /has 3 buffers, the schema implies 2/);
  });

  it("refuses a real batch sent under a different real schema", () => {
    const dir = requireConformance();
    const primitive = splitIpcStream(fs.readFileSync(path.join(dir, "ipc/cpp-21.0.0/generated_primitive.stream")));
    const binary = splitIpcStream(fs.readFileSync(path.join(dir, "ipc/cpp-21.0.0/generated_binary.stream")));
    const v = new IpcStreamValidator();
    v.accept(primitive[0]!.header, primitive[0]!.body);
    refused(() => v.accept(binary[1]!.header, binary[1]!.body), /record batch has 8 field nodes, the schema implies 22/);
  });

  it("counts variadic buffers of view columns", () => {
    const v = withSchema([field("v", T.Utf8View)]);
    const view = new Uint8Array(16);
    sendBatch(v, 1, [[1, 0]], [none, view, text("long string data"), text("more")], { variadic: [2] });
    sendBatch(v, 1, [[1, 0]], [none, view], { variadic: [0] });
    refused(() => sendBatch(v, 1, [[1, 0]], [none, view, text("x")], { variadic: [] }), /0 variadic buffer counts, the schema has 1 view columns/);
    refused(() => sendBatch(v, 1, [[1, 0]], [none, view, text("x")], { variadic: [0] }), /has 3 buffers, the schema implies 2/);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, view], { variadic: [0] }), /views buffer 1 has 16 bytes, needs at least 32/);
  });
});

describe("IpcStreamValidator: buffer placement and sizes", () => {
  it("refuses unaligned and overlapping buffers, accepts unordered ones", () => {
    const v = withSchema([int32Field("x"), int32Field("y")]);
    const b = new Uint8Array(24);
    const send = (buffers: Pair[]) =>
      v.accept(batchMessage(recordBatch({ length: 2, nodes: [[2, 0], [2, 0]], buffers }), 24), b);
    refused(() => send([[0, 0], [4, 8], [0, 0], [16, 8]]), /buffer 1 starts at offset 4, not a multiple of 8/);
    refused(() => send([[0, 0], [0, 16], [0, 0], [8, 8]]), /buffers 1 and 3 overlap/);
    refused(() => send([[0, 0], [8, 16], [0, 0], [0, 16]]), /buffers 3 and 1 overlap/);
    send([[0, 0], [16, 8], [0, 0], [0, 8]]);
  });

  it("refuses a column whose length differs from the batch's", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => sendBatch(v, 2, [[1, 0]], [none, int32s(1, 2)]), /column "x" has 1 values, the batch 2 rows/);
  });

  it("checks validity bitmaps", () => {
    const v = withSchema([int32Field("x")]);
    refused(() => sendBatch(v, 2, [[2, 1]], [none, int32s(1, 2)]), /column "x" has 1 nulls but no validity bitmap/);
    const many = new Array<number>(9).fill(0);
    refused(() => sendBatch(v, 9, [[9, 1]], [bits(1), int32s(...many)]), /validity buffer 0 has 1 bytes, needs at least 2/);
    sendBatch(v, 9, [[9, 1]], [bits(0xfe, 1), int32s(...many)]);
  });

  it("checks fixed-width value buffers", () => {
    const v = withSchema([int32Field("x"), field("b", T.Bool), field("d", T.Decimal, [i32(10), i32(2), i32(128)])]);
    refused(() => sendBatch(v, 3, [[3, 0], [3, 0], [3, 0]], [none, int32s(1, 2), none, bits(1), none, new Uint8Array(48)]), /column "x" values buffer 1 has 8 bytes, needs at least 12/);
    refused(() => sendBatch(v, 3, [[3, 0], [3, 0], [3, 0]], [none, int32s(1, 2, 3), none, bits(1), none, new Uint8Array(40)]), /column "d" values buffer 5 has 40 bytes, needs at least 48/);
    sendBatch(v, 3, [[3, 0], [3, 0], [3, 0]], [none, int32s(1, 2, 3), none, bits(1), none, new Uint8Array(48)]);
  });

  it("checks offsets of variable-size binaries", () => {
    const v = withSchema([utf8Field("s")]);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, int32s(0, 1), text("ab")]), /offsets buffer 1 has 8 bytes, needs at least 12/);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, int32s(0, 1, 9), text("ab")]), /last offset 9 past its 2-byte data buffer/);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, int32s(-4, 1, 2), text("ab")]), /negative first offset -4/);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, int32s(2, 1, 1), text("ab")]), /last offset 1 smaller than its first 2/);
    sendBatch(v, 2, [[2, 0]], [none, int32s(0, 1, 2), text("ab")]);
    sendBatch(v, 0, [[0, 0]], [none, none, none]);

    const large = withSchema([field("s", 20 /* LargeUtf8 */)]);
    refused(() => sendBatch(large, 1, [[1, 0]], [none, int64s(0, 3), text("ab")]), /last offset 3 past its 2-byte data buffer/);
    sendBatch(large, 1, [[1, 0]], [none, int64s(0, 2), text("ab")]);
  });

  it("checks list offsets against the child and nested lengths", () => {
    const v = withSchema([field("l", T.List, [], { children: [int32Field("item")] })]);
    refused(() => sendBatch(v, 1, [[1, 0], [2, 0]], [none, int32s(0, 3), none, int32s(1, 2)]), /column "l" has a last offset 3 past the 2 values of its child/);
    sendBatch(v, 1, [[1, 0], [2, 0]], [none, int32s(0, 2), none, int32s(1, 2)]);

    const s = withSchema([field("s", T.Struct, [], { children: [int32Field("a"), int32Field("b")] })]);
    refused(() => sendBatch(s, 2, [[2, 0], [2, 0], [1, 0]], [none, none, int32s(1, 2), none, int32s(1)]), /child "b" of 1 values, shorter than the struct's 2/);

    const f = withSchema([field("f", T.FixedSizeList, [i32(3)], { children: [int32Field("item")] })]);
    refused(() => sendBatch(f, 2, [[2, 0], [5, 0]], [none, none, int32s(1, 2, 3, 4, 5)]), /has 5 child values, needs 2 x 3/);
    sendBatch(f, 2, [[2, 0], [6, 0]], [none, none, int32s(1, 2, 3, 4, 5, 6)]);
  });

  it("checks run-end encoded columns", () => {
    const runEnds = field("run_ends", T.Int, [i32(32), bool(true)], { nullable: false });
    const v = withSchema([field("r", T.RunEndEncoded, [], { children: [runEnds, int32Field("values")] })]);
    sendBatch(v, 5, [[5, 0], [2, 0], [2, 0]], [none, int32s(2, 5), none, int32s(7, 8)]);
    refused(() => sendBatch(v, 5, [[5, 1], [2, 0], [2, 0]], [none, int32s(2, 5), none, int32s(7, 8)]), /is run-end encoded but has null count 1/);
    refused(() => sendBatch(v, 5, [[5, 0], [2, 0], [1, 0]], [none, int32s(2, 5), none, int32s(7)]), /has 2 run ends but only 1 values/);
    refused(() => sendBatch(v, 5, [[5, 0], [2, 0], [2, 0]], [none, int32s(2, 4), none, int32s(7, 8)]), /last run end 4 before its length 5/);
    refused(() => sendBatch(v, 5, [[5, 0], [0, 0], [0, 0]], [none, none, none, none]), /has 5 values but no runs/);
  });

  it("checks unions, and refuses V4 unions with nulls", () => {
    const u = (mode: number) => field("u", T.Union, [i16(mode), i32s([0, 1])], { children: [int32Field("a"), int32Field("b")] });
    const sparse = withSchema([u(0)]);
    sendBatch(sparse, 2, [[2, 0], [2, 0], [2, 0]], [bits(0, 1), none, int32s(1, 2), none, int32s(3, 4)]);
    refused(() => sendBatch(sparse, 2, [[2, 0], [2, 0], [1, 0]], [bits(0, 1), none, int32s(1, 2), none, int32s(3)]), /child "b" of 1 values, shorter than the sparse union's 2/);
    refused(() => sendBatch(sparse, 2, [[2, 0], [2, 0], [2, 0]], [bits(0), none, int32s(1, 2), none, int32s(3, 4)]), /type ids buffer 0 has 1 bytes, needs at least 2/);

    const dense = withSchema([u(1)]);
    sendBatch(dense, 2, [[2, 0], [1, 0], [1, 0]], [bits(0, 1), int32s(0, 0), none, int32s(1), none, int32s(3)]);
    refused(() => sendBatch(dense, 2, [[2, 0], [1, 0], [1, 0]], [bits(0, 1), int32s(0), none, int32s(1), none, int32s(3)]), /union offsets buffer 1 has 4 bytes, needs at least 8/);

    const v4 = withSchema([u(0)], undefined, V4);
    sendBatch(v4, 2, [[2, 0], [2, 0], [2, 0]], [none, bits(0, 1), none, int32s(1, 2), none, int32s(3, 4)], { version: V4 });
    refused(() => sendBatch(v4, 2, [[2, 1], [2, 0], [2, 0]], [bits(1), bits(0, 1), none, int32s(1, 2), none, int32s(3, 4)], { version: V4 }), /pre-1.0 \(V4\) union with nulls/);
  });

  it("reads the length prefix of compressed buffers", () => {
    const v = withSchema([int32Field("x")], { maxMessageBytes: 1 << 20 });
    // Declared uncompressed length stands in for the buffer's size.
    sendBatch(v, 4, [[4, 0]], [none, prefixed(16, lz4Stored(int32s(1, 2, 3, 4)))], { codec: 0 });
    sendBatch(v, 4, [[4, 0]], [none, prefixed(16, zstdFrame([{ type: "rle", byte: 0, size: 16 }], { contentSize: 16 }))], { codec: 1 });
    refused(() => sendBatch(v, 4, [[4, 0]], [none, prefixed(12, lz4Stored(int32s(1, 2, 3)))], { codec: 0 }), /values buffer 1 has 12 bytes, needs at least 16/);
    // -1: stored uncompressed after the prefix.
    sendBatch(v, 2, [[2, 0]], [none, prefixed(-1, int32s(1, 2))], { codec: 1 });
    refused(() => sendBatch(v, 2, [[2, 0]], [none, prefixed(-1, int32s(1))], { codec: 1 }), /has 4 bytes, needs at least 8/);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, prefixed(-7, int32s(1))], { codec: 1 }), /compressed buffer 1 declares an invalid uncompressed length/);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, int32s(1)], { codec: 1 }), /compressed buffer 1 is shorter than its 8-byte length prefix/);
    refused(
      () => sendBatch(v, 2, [[2, 0]], [none, prefixed(1 << 30, int32s(1))], { codec: 1 }),
      /uncompressed buffer 1 \(1073741824 bytes\) is over the limit/,
      StatusCode.RESOURCE_EXHAUSTED,
    );
  });

  it("refuses compressed buffers that are not a frame of the codec, nothing else changed", () => {
    const v = withSchema([int32Field("x")]);
    const garbage = Uint8Array.from({ length: 24 }, (_, i) => (i * 37 + 11) & 0xff);
    refused(() => sendBatch(v, 4, [[4, 0]], [none, prefixed(16, garbage)], { codec: 0 }), /^record batch: compressed buffer 1 does not start with an LZ4 frame/);
    refused(() => sendBatch(v, 4, [[4, 0]], [none, prefixed(16, garbage)], { codec: 1 }), /^record batch: compressed buffer 1 does not start with a Zstandard frame/);
    // The right frame for the other codec is garbage too.
    refused(() => sendBatch(v, 4, [[4, 0]], [none, prefixed(16, lz4Stored(int32s(1, 2, 3, 4)))], { codec: 1 }), /not start with a Zstandard frame/);
    // The validity bitmap is checked as well as the values.
    refused(() => sendBatch(v, 4, [[4, 1]], [prefixed(1, garbage), prefixed(16, lz4Stored(int32s(1, 2, 3, 4)))], { codec: 0 }), /compressed buffer 0 does not start/);
    // The refusals left the validator as it was.
    sendBatch(v, 4, [[4, 0]], [none, prefixed(16, lz4Stored(int32s(1, 2, 3, 4)))], { codec: 0 });
  });
});

describe("IpcStreamValidator: dictionaries", () => {
  const dictField = (name: string, id: number) => field(name, T.Utf8, [], { dictionary: [i64(id), table(i32(8), bool(true))] });
  const dictBody = () => body(none, int32s(0, 1, 2), text("ab"));
  const sendDict = (v: IpcStreamValidator, id: number, isDelta = false, rows = 2) => {
    const b = rows === 0 ? body(none, none, none) : dictBody();
    return v.accept(dictionaryMessage(id, recordBatch({ length: rows, nodes: [[rows, 0]], buffers: b.buffers }), b.body.length, isDelta), b.body);
  };

  it("accepts dictionaries then batches, and adds up deltas", () => {
    const v = withSchema([dictField("d", 4)]);
    expect(sendDict(v, 4)).toMatchObject({ kind: MessageKind.DICTIONARY_BATCH, dictionaryId: 4n, isDelta: false });
    sendDict(v, 4, true);
    expect(v.dictionaryLength(4n)).toBe(4);
    sendBatch(v, 2, [[2, 0]], [none, bits(0, 3)]);
    sendDict(v, 4);
    expect(v.dictionaryLength(4n)).toBe(2);
  });

  it("refuses an unknown dictionary id", () => {
    const v = withSchema([dictField("d", 4)]);
    refused(() => sendDict(v, 5), /dictionary batch for id 5, which the schema does not declare/);
  });

  it("refuses a delta without a previous dictionary", () => {
    const v = withSchema([dictField("d", 4)]);
    refused(() => sendDict(v, 4, true), /delta dictionary batch for id 4 without a previous dictionary/);
    expect(v.dictionaryLength(4n)).toBeUndefined();
  });

  it("refuses a batch that uses a dictionary before it arrives", () => {
    const v = withSchema([dictField("d", 4)]);
    refused(() => sendBatch(v, 2, [[2, 0]], [none, bits(0, 1)]), /record batch uses dictionary 4 before any dictionary batch for it/);
  });

  it("refuses non-null indices into an empty dictionary", () => {
    const v = withSchema([dictField("d", 4)]);
    sendDict(v, 4, false, 0);
    sendBatch(v, 2, [[2, 2]], [bits(0), bits(0, 0)]);
    refused(() => sendBatch(v, 2, [[2, 1]], [bits(1), bits(0, 0)]), /non-null indices into dictionary 4, which is empty/);
  });

  it("checks a dictionary batch's values against the value type", () => {
    const v = withSchema([dictField("d", 4)]);
    const b = body(none, int32s(0, 1, 9), text("ab"));
    refused(
      () => v.accept(dictionaryMessage(4, recordBatch({ length: 2, nodes: [[2, 0]], buffers: b.buffers }), b.body.length), b.body),
      /dictionary batch 4: column "d" has a last offset 9 past its 2-byte data buffer/,
    );
  });
});

describe("readSchemaFrom", () => {
  it("reads the schema from stream bytes, a message list or a validator", () => {
    const v = withSchema([int32Field("x")]);
    const header = schemaMessage([int32Field("x")]);
    expect(readSchemaFrom([{ header }]).fields[0]?.name).toBe("x");
    expect(readSchemaFrom(joinIpcStream([{ header, body: none }])).fields[0]?.name).toBe("x");
    expect(readSchemaFrom(v).fields).toHaveLength(1);
    expect(flightErrorOf(() => readSchemaFrom([])).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(flightErrorOf(() => readSchemaFrom(joinIpcStream([]))).code).toBe(StatusCode.INVALID_ARGUMENT);
  });
});
