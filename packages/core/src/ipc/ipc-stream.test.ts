import { StatusCode } from "../status-code";
import { ipcEndOfStream, ipcMessagePrefix, joinIpcStream, splitIpcStream } from "./ipc-stream";
import { batchMessage, int32Field, recordBatch, schemaMessage } from "./test-flatbuffer-builder";
import { flightErrorOf } from "./test-helpers";

const schema = schemaMessage([int32Field("x")]);
const batchBody = Uint8Array.from([1, 0, 0, 0, 2, 0, 0, 0]);
const batch = batchMessage(recordBatch({ length: 2, nodes: [[2, 0]], buffers: [[0, 0], [0, 8]] }), 8);
const messages = [
  { header: schema, body: new Uint8Array(0) },
  { header: batch, body: batchBody },
];

function refused(bytes: Uint8Array, pattern: RegExp): void {
  const e = flightErrorOf(() => splitIpcStream(bytes));
  expect(e.code).toBe(StatusCode.INVALID_ARGUMENT);
  expect(e.message).toMatch(pattern);
}

/** Frames messages the pre-0.15 way: int32 length (header + padding to 8 with the prefix), no marker. */
function legacy(msgs: typeof messages): Uint8Array {
  const parts: number[] = [];
  for (const m of msgs) {
    const len = Math.ceil((m.header.length + 4) / 8) * 8 - 4;
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setInt32(0, len, true);
    parts.push(...prefix, ...m.header, ...new Array<number>(len - m.header.length).fill(0), ...m.body);
  }
  parts.push(0, 0, 0, 0);
  return Uint8Array.from(parts);
}

describe("joinIpcStream / splitIpcStream", () => {
  it("round-trips messages byte for byte, as views into the input", () => {
    const bytes = joinIpcStream(messages);
    expect(bytes.length % 8).toBe(0);
    const split = splitIpcStream(bytes);
    expect(split).toHaveLength(2);
    split.forEach((m, i) => {
      expect(Buffer.from(m.header)).toEqual(Buffer.from(messages[i]!.header));
      expect(Buffer.from(m.body)).toEqual(Buffer.from(messages[i]!.body));
      expect(m.header.buffer).toBe(bytes.buffer);
    });
  });

  it("pads headers to 8 bytes so bodies stay aligned", () => {
    const odd = { header: Uint8Array.from([...schema, 0, 0, 0]), body: new Uint8Array(0) };
    const bytes = joinIpcStream([odd, messages[1]!]);
    const split = splitIpcStream(bytes);
    expect(split[0]!.header.length).toBe(schema.length + 8);
    expect(split[1]!.body.byteOffset % 8).toBe(0);
  });

  it("writes the end-of-stream marker and stops there", () => {
    const bytes = joinIpcStream(messages);
    expect(Array.from(bytes.subarray(bytes.length - 8))).toEqual([255, 255, 255, 255, 0, 0, 0, 0]);
    const withTrailer = Uint8Array.from([...bytes, 1, 2, 3, 4, 5]);
    expect(splitIpcStream(withTrailer)).toHaveLength(2);
    expect(splitIpcStream(joinIpcStream([]))).toHaveLength(0);
  });

  it("accepts a stream that ends without the marker", () => {
    const bytes = joinIpcStream(messages);
    expect(splitIpcStream(bytes.subarray(0, bytes.length - 8))).toHaveLength(2);
  });

  it("reads the legacy framing without continuation marker", () => {
    const split = splitIpcStream(legacy(messages));
    expect(split).toHaveLength(2);
    expect(Buffer.from(split[1]!.body)).toEqual(Buffer.from(batchBody));
  });

  it("stops after maxMessages", () => {
    expect(splitIpcStream(joinIpcStream(messages), { maxMessages: 1 })).toHaveLength(1);
  });

  it("refuses every truncation", () => {
    const bytes = joinIpcStream(messages);
    const end = bytes.length - 8; // without the marker, every prefix that is not a message boundary is truncated
    const boundaries = new Set([0, 8 + schema.length, end]);
    for (let n = 1; n < end; n++) {
      if (boundaries.has(n)) continue;
      const e = flightErrorOf(() => splitIpcStream(bytes.subarray(0, n)));
      expect(e.code).toBe(StatusCode.INVALID_ARGUMENT);
    }
  });

  it("refuses negative lengths and stray bytes", () => {
    refused(Uint8Array.from([255, 255, 255, 255, 0, 0, 0, 128]), /negative metadata length/);
    refused(Uint8Array.from([255, 255, 255, 255]), /continuation marker without a length/);
    refused(Uint8Array.from([8, 0]), /2 stray bytes/);
    refused(Uint8Array.from([255, 255, 255, 255, 64, 0, 0, 0, 1, 2]), /64-byte message header at byte 0 runs past the end/);
  });

  it("refuses a body shorter than declared", () => {
    const bytes = joinIpcStream(messages);
    refused(bytes.subarray(0, bytes.length - 12), /declares a 8-byte body, 4 bytes remain/);
  });

  it("refuses to write an empty header", () => {
    expect(flightErrorOf(() => joinIpcStream([{ header: new Uint8Array(0), body: new Uint8Array(0) }])).code).toBe(StatusCode.INVALID_ARGUMENT);
  });
});

describe("ipcMessagePrefix and ipcEndOfStream", () => {
  it("frame messages one by one exactly as joinIpcStream frames them together", () => {
    const messages = [
      { header: new Uint8Array([1, 2, 3]), body: new Uint8Array(0) },
      { header: new Uint8Array(16).fill(7), body: new Uint8Array(24).fill(9) },
    ];
    const pieces: Uint8Array[] = [];
    for (const m of messages) pieces.push(ipcMessagePrefix(m.header), m.body);
    pieces.push(ipcEndOfStream());
    expect(Buffer.concat(pieces)).toEqual(Buffer.from(joinIpcStream(messages)));
    expect(() => ipcMessagePrefix(new Uint8Array(0))).toThrow(/empty header/);
  });
});
