// The few protobuf wire-format primitives the hand-written encoders need (FlightData, whose
// body must go out uncopied, and FlightInfo, which ListFlights sends 100k times): sizes first,
// then writes into one buffer of exactly that size. The generated code (src/gen, through
// @bufbuild/protobuf's BinaryWriter) encodes everything else; tests check these encoders
// against it byte for byte.

/** Bytes of `n` (a non-negative safe integer) as a varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` (a non-negative safe integer) as a varint at `pos`; returns the position after it. */
export function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/**
 * Bytes of an `int64`/`int32`/enum value: negative values are sign-extended to 64 bits, so
 * they always take 10 bytes (as protobuf encodes them).
 */
export function signedVarintSize(n: number): number {
  return n < 0 ? 10 : varintSize(n);
}

/** Writes an `int64`/`int32`/enum value (see {@link signedVarintSize}). */
export function writeSignedVarint(out: Uint8Array, pos: number, n: number): number {
  if (n >= 0) return writeVarint(out, pos, n);
  let v = BigInt.asUintN(64, BigInt(Math.trunc(n)));
  for (let i = 0; i < 9; i++) {
    out[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[pos++] = Number(v);
  return pos;
}

/** Bytes of a length-delimited field with a one-byte tag; 0 when empty (proto3 omits it). */
export function fieldSize(tagSize: number, len: number): number {
  return len === 0 ? 0 : tagSize + varintSize(len) + len;
}

/** Writes a length-delimited field unless `value` is empty; returns the position after it. */
export function writeField(out: Uint8Array, pos: number, tag: number, value: Uint8Array): number {
  if (value.length === 0) return pos;
  pos = writeVarint(out, pos, tag);
  pos = writeVarint(out, pos, value.length);
  out.set(value, pos);
  return pos + value.length;
}

/** Writes a tag and a length, the head of a length-delimited field whose content follows. */
export function writeFieldHead(out: Uint8Array, pos: number, tag: number, len: number): number {
  return writeVarint(out, writeVarint(out, pos, tag), len);
}
