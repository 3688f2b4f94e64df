import type { FlightDescriptor } from "@blackice/flight-core";
import { readProtobufFields } from "./read-protobuf-fields";

const utf8 = new TextEncoder();
// Same decoding as the binding's protobuf runtime: invalid UTF-8 becomes U+FFFD and a
// leading U+FEFF is kept as text, so both sides see the same strings.
const utf8Lenient = new TextDecoder("utf-8", { ignoreBOM: true });

function pushVarint(out: number[], v: bigint): void {
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
}

function pushBytes(out: number[], tag: number, value: Uint8Array): void {
  out.push(tag);
  pushVarint(out, BigInt(value.length));
  for (let i = 0; i < value.length; i++) out.push(value[i]!);
}

/**
 * The canonical protobuf encoding of a FlightDescriptor, the bytes whose SHA-256 an HMAC
 * signature covers for DoPut and DoExchange. It is the proto3 encoding in field order, with
 * default values left out, which is what the binding's ts-proto encoder writes:
 *
 * - field 1 `type`, varint (int32; a negative value as its 10-byte two's complement), only if ≠ 0;
 * - field 2 `cmd`, length-delimited bytes, only if non-empty;
 * - field 3 `path`, one length-delimited UTF-8 string per segment, in order (empty segments kept).
 *
 * The server has the decoded descriptor, not its bytes, so it hashes this encoding of what it
 * decoded; the client signer decodes and re-encodes what it sends
 * ({@link canonicalizeFlightDescriptor}) so that both sides hash the same bytes.
 *
 * @example
 * encodeFlightDescriptor({ type: 1, cmd: new Uint8Array(0), path: ["a"] }); // 08 01 1a 01 61
 */
export function encodeFlightDescriptor(d: FlightDescriptor): Uint8Array {
  const out: number[] = [];
  const type = Number(d.type);
  if (!Number.isInteger(type)) throw new TypeError("encodeFlightDescriptor: type must be an integer");
  if (type !== 0) {
    out.push(0x08);
    pushVarint(out, BigInt.asIntN(32, BigInt(type)));
  }
  if (d.cmd && d.cmd.length > 0) pushBytes(out, 0x12, d.cmd);
  for (const segment of d.path ?? []) pushBytes(out, 0x1a, utf8.encode(String(segment)));
  return Uint8Array.from(out);
}

/**
 * Decodes a serialized FlightDescriptor the way the server's protobuf runtime does (last
 * `type` and `cmd` win, `path` accumulates, fields of the wrong wire type and unknown fields
 * are skipped).
 *
 * @example
 * decodeFlightDescriptor(Buffer.from("08011a0161", "hex")); // { type: 1, cmd: <empty>, path: ["a"] }
 *
 * @throws ProtobufDecodeError on bytes that are not a protobuf message.
 */
export function decodeFlightDescriptor(bytes: Uint8Array): FlightDescriptor {
  const d: FlightDescriptor = { type: 0, cmd: new Uint8Array(0), path: [] };
  for (const f of readProtobufFields(bytes)) {
    if (f.field === 1 && f.wireType === 0) d.type = Number(BigInt.asIntN(32, f.varint));
    else if (f.field === 2 && f.wireType === 2) d.cmd = f.bytes.slice();
    else if (f.field === 3 && f.wireType === 2) d.path.push(utf8Lenient.decode(f.bytes));
  }
  return d;
}

/**
 * Re-encodes serialized FlightDescriptor bytes canonically: the bytes the server will hash
 * for the descriptor it decodes from them.
 *
 * @example
 * canonicalizeFlightDescriptor(pb.FlightDescriptor.encode(d).finish()); // equal to encodeFlightDescriptor(d)
 */
export function canonicalizeFlightDescriptor(bytes: Uint8Array): Uint8Array {
  return encodeFlightDescriptor(decodeFlightDescriptor(bytes));
}
