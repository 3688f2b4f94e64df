import { canonicalizeFlightDescriptor, decodeFlightDescriptor, encodeFlightDescriptor } from "./encode-flight-descriptor";
import { ProtobufDecodeError, readProtobufFields } from "./read-protobuf-fields";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("encodeFlightDescriptor", () => {
  it("writes type, cmd, path in field order, leaving defaults out", () => {
    expect(hex(encodeFlightDescriptor({ type: 1, cmd: new Uint8Array(0), path: ["a"] }))).toBe("0801" + "1a0161");
    expect(hex(encodeFlightDescriptor({ type: 2, cmd: Buffer.from("SELECT 1"), path: [] }))).toBe("0802" + "1208" + hex(Buffer.from("SELECT 1")));
    expect(hex(encodeFlightDescriptor({ type: 0, cmd: new Uint8Array(0), path: [] }))).toBe("");
    expect(hex(encodeFlightDescriptor({ type: 1, cmd: new Uint8Array(0), path: ["", "é"] }))).toBe("0801" + "1a00" + "1a02c3a9");
    // a long cmd gets a multi-byte length
    expect(hex(encodeFlightDescriptor({ type: 2, cmd: new Uint8Array(200), path: [] })).slice(0, 10)).toBe("08021" + "2c801".slice(0, 5));
  });

  it("writes a negative type as a 10-byte varint, as protobuf int32 does", () => {
    expect(hex(encodeFlightDescriptor({ type: -1, cmd: new Uint8Array(0), path: [] }))).toBe("08" + "ffffffffffffffffff01");
    expect(decodeFlightDescriptor(encodeFlightDescriptor({ type: -1, cmd: new Uint8Array(0), path: [] })).type).toBe(-1);
  });

  it("canonicalizes other encodings of the same descriptor: field order, repeated scalars, unknown fields", () => {
    const canonical = encodeFlightDescriptor({ type: 1, cmd: Buffer.from("z"), path: ["a", "b"] });
    const odd = Buffer.concat([
      Buffer.from("1a0161", "hex"), // path a
      Buffer.from("120179", "hex"), // cmd y (overridden below)
      Buffer.from("2005", "hex"), // unknown field 4, varint
      Buffer.from("0801", "hex"), // type
      Buffer.from("1a0162", "hex"), // path b
      Buffer.from("12017a", "hex"), // cmd z: last wins
    ]);
    expect(hex(canonicalizeFlightDescriptor(odd))).toBe(hex(canonical));
  });

  it("decodes invalid UTF-8 like the protobuf runtime (U+FFFD) and keeps a leading BOM", () => {
    const d = decodeFlightDescriptor(Buffer.from("1a01ff" + "1a03efbbbf", "hex"));
    expect(d.path).toEqual(["\uFFFD", "\uFEFF"]);
  });
});

describe("readProtobufFields", () => {
  it("reads varint, fixed and length-delimited fields", () => {
    const f = readProtobufFields(Buffer.from("089601" + "11" + "0000000000000000" + "1203616263" + "2d01020304", "hex"));
    expect(f.map((x) => [x.field, x.wireType])).toEqual([[1, 0], [2, 1], [2, 2], [5, 5]]);
    expect(f[0]).toMatchObject({ varint: 150n });
    expect(Buffer.from((f[2] as { bytes: Uint8Array }).bytes).toString()).toBe("abc");
  });

  it("refuses truncated or malformed input", () => {
    for (const bad of ["0a05616263", "08", "0b", "00", "08ffffffffffffffffffff01"]) {
      expect(() => readProtobufFields(Buffer.from(bad, "hex"))).toThrow(ProtobufDecodeError);
    }
  });
});
