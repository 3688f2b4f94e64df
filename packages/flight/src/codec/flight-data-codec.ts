import type { FlightData } from "@blackice/flight-core";
import { FlightDescriptor as FlightDescriptorCodec } from "../gen/Flight";

/**
 * A FlightData that may carry its own protobuf encoding (`wire`, without descriptor). The
 * codec sends `wire` as it is, so a stored message goes out without being re-encoded.
 */
export type WireFlightData = FlightData & { wire?: Uint8Array };

// Field tags of FlightData (field << 3 | wire type 2).
const TAG_DESCRIPTOR = 0x0a; // field 1
const TAG_HEADER = 0x12; // field 2
const TAG_APP_METADATA = 0x1a; // field 3
const TAG_BODY = 8002; // field 1000, varint 0xC2 0x3E

const EMPTY: Uint8Array = new Uint8Array(0);

/** Thrown by {@link decodeFlightData} on bytes that are not a FlightData message. */
export class FlightDataDecodeError extends Error {
  override readonly name = "FlightDataDecodeError";
}

function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new FlightDataDecodeError("truncated varint in FlightData");
    const b = buf[pos++];
    if (shift < 49) result += (b & 0x7f) * 2 ** shift;
    else if (b & 0x7f) throw new FlightDataDecodeError("varint too large in FlightData");
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
  }
  throw new FlightDataDecodeError("malformed varint in FlightData");
}

/**
 * Decodes a FlightData message without copying: header, body and app_metadata are views
 * into `buf`. When the message has no descriptor, or the descriptor is its first field,
 * `wire` is set to the bytes after the descriptor, a valid descriptor-free encoding.
 */
export function decodeFlightData(buf: Uint8Array): WireFlightData {
  let pos = 0;
  let header: Uint8Array = EMPTY;
  let body: Uint8Array = EMPTY;
  let appMetadata: Uint8Array = EMPTY;
  let descriptorBytes: Uint8Array | undefined;
  let descriptorEnd = -1;
  let descriptorFirst = false;
  while (pos < buf.length) {
    const tagStart = pos;
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const wireType = tag & 7;
    if (wireType === 2) {
      let len: number;
      [len, pos] = readVarint(buf, pos);
      if (len > buf.length - pos) throw new FlightDataDecodeError("FlightData field length past end of message");
      const value = buf.subarray(pos, pos + len);
      pos += len;
      switch (tag) {
        case TAG_HEADER:
          header = value;
          break;
        case TAG_BODY:
          body = value;
          break;
        case TAG_APP_METADATA:
          appMetadata = value;
          break;
        case TAG_DESCRIPTOR:
          descriptorBytes = value;
          descriptorEnd = pos;
          descriptorFirst = tagStart === 0;
          break;
        default:
          break; // unknown length-delimited field: skipped, as protobuf requires
      }
    } else if (wireType === 0) {
      [, pos] = readVarint(buf, pos);
    } else if (wireType === 1) {
      pos += 8;
    } else if (wireType === 5) {
      pos += 4;
    } else {
      throw new FlightDataDecodeError(`unsupported protobuf wire type ${wireType} in FlightData`);
    }
    if (pos > buf.length) throw new FlightDataDecodeError("truncated FlightData");
  }
  let flightDescriptor: FlightData["flightDescriptor"];
  if (descriptorBytes) {
    try {
      flightDescriptor = FlightDescriptorCodec.decode(descriptorBytes);
    } catch {
      throw new FlightDataDecodeError("malformed FlightDescriptor in FlightData");
    }
  }
  const wire = descriptorBytes === undefined ? buf : descriptorFirst ? buf.subarray(descriptorEnd) : undefined;
  return { flightDescriptor, dataHeader: header, dataBody: body, appMetadata, wire };
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

function fieldSize(tagSize: number, len: number): number {
  return len === 0 ? 0 : tagSize + varintSize(len) + len;
}

function writeField(out: Uint8Array, pos: number, tag: number, value: Uint8Array): number {
  if (value.length === 0) return pos;
  pos = writeVarint(out, pos, tag);
  pos = writeVarint(out, pos, value.length);
  out.set(value, pos);
  return pos + value.length;
}

/**
 * Encodes a FlightData. A message with `wire` and no descriptor is returned as it is (no
 * copy); otherwise the fields are written into one buffer of exactly the right size.
 */
export function encodeFlightData(msg: WireFlightData): Buffer {
  if (msg.wire && !msg.flightDescriptor) {
    return Buffer.from(msg.wire.buffer, msg.wire.byteOffset, msg.wire.byteLength);
  }
  const descriptor = msg.flightDescriptor ? FlightDescriptorCodec.encode(msg.flightDescriptor).finish() : EMPTY;
  const header = msg.dataHeader ?? EMPTY;
  const meta = msg.appMetadata ?? EMPTY;
  const body = msg.dataBody ?? EMPTY;
  // An empty descriptor message still has to be sent so that the peer sees the field.
  const descSize = msg.flightDescriptor ? 1 + varintSize(descriptor.length) + descriptor.length : 0;
  const size = descSize + fieldSize(1, header.length) + fieldSize(1, meta.length) + fieldSize(2, body.length);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  if (msg.flightDescriptor) {
    out[pos++] = TAG_DESCRIPTOR;
    pos = writeVarint(out, pos, descriptor.length);
    out.set(descriptor, pos);
    pos += descriptor.length;
  }
  pos = writeField(out, pos, TAG_HEADER, header);
  pos = writeField(out, pos, TAG_APP_METADATA, meta);
  pos = writeField(out, pos, TAG_BODY, body);
  return out;
}
