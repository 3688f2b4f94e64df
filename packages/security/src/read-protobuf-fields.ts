/** One field of a protobuf message as it is on the wire. */
export type ProtobufField =
  | { readonly field: number; readonly wireType: 0; readonly varint: bigint }
  | { readonly field: number; readonly wireType: 1 | 5; readonly fixed: Uint8Array }
  | { readonly field: number; readonly wireType: 2; readonly bytes: Uint8Array };

/** Thrown by {@link readProtobufFields} on bytes that are not a protobuf message. */
export class ProtobufDecodeError extends Error {
  override readonly name = "ProtobufDecodeError";
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new ProtobufDecodeError("truncated varint");
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, result), pos];
  }
  throw new ProtobufDecodeError("varint longer than 10 bytes");
}

/**
 * Splits a protobuf message into its fields, in wire order, without a schema. Length-delimited
 * values are views into `bytes` (no copy). Groups (wire types 3 and 4) and field number 0 are
 * refused. A tiny reader so that this package needs no generated protobuf code.
 *
 * @example
 * // BasicAuth { username = 2; password = 3 }
 * for (const f of readProtobufFields(payload)) if (f.wireType === 2 && f.field === 2) user = f.bytes;
 *
 * @throws ProtobufDecodeError on malformed input.
 */
export function readProtobufFields(bytes: Uint8Array): ProtobufField[] {
  const out: ProtobufField[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let tag: bigint;
    [tag, pos] = readVarint(bytes, pos);
    const wireType = Number(tag & 7n);
    const fieldBig = tag >> 3n;
    if (fieldBig === 0n || fieldBig > 0x1fffffffn) throw new ProtobufDecodeError(`invalid field number ${fieldBig}`);
    const field = Number(fieldBig);
    switch (wireType) {
      case 0: {
        let v: bigint;
        [v, pos] = readVarint(bytes, pos);
        out.push({ field, wireType: 0, varint: v });
        break;
      }
      case 1:
      case 5: {
        const n = wireType === 1 ? 8 : 4;
        if (pos + n > bytes.length) throw new ProtobufDecodeError(`truncated fixed${n * 8} field ${field}`);
        out.push({ field, wireType, fixed: bytes.subarray(pos, pos + n) });
        pos += n;
        break;
      }
      case 2: {
        let len: bigint;
        [len, pos] = readVarint(bytes, pos);
        if (len > BigInt(bytes.length - pos)) throw new ProtobufDecodeError(`field ${field} runs past the end of the message`);
        const end = pos + Number(len);
        out.push({ field, wireType: 2, bytes: bytes.subarray(pos, end) });
        pos = end;
        break;
      }
      default:
        throw new ProtobufDecodeError(`unsupported wire type ${wireType} (field ${field})`);
    }
  }
  return out;
}

/** The last length-delimited value of `field` (protobuf: the last one wins), or undefined. */
export function lastBytesField(fields: readonly ProtobufField[], field: number): Uint8Array | undefined {
  let found: Uint8Array | undefined;
  for (const f of fields) if (f.field === field && f.wireType === 2) found = f.bytes;
  return found;
}
