import type { FlightDescriptor, FlightEndpoint, FlightInfo } from "@blackice/flight-core";
import { fieldSize, signedVarintSize, varintSize, writeField, writeFieldHead, writeSignedVarint, writeVarint } from "./protobuf-wire";

// FlightInfo encoded by hand, because ListFlights sends one per stored flight: through the
// generated code (@bufbuild/protobuf's BinaryWriter, which forks a growing buffer per nested
// message) 100k FlightInfos took about half of the server's CPU for the call. This encoder
// measures the message first and writes it, gRPC prefix included, into one buffer of exactly
// that size. It encodes whatever FlightInfo it is given (middleware may have rewritten it),
// with the generated code's proto3 rules: default values are left out. Field numbers are
// Flight.proto's; flight-info-codec.test.ts checks the output against the generated encoder.

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

function descriptorSize(d: FlightDescriptor): number {
  let n = d.type !== 0 ? 1 + signedVarintSize(d.type) : 0;
  n += fieldSize(1, d.cmd.length);
  for (const segment of d.path) {
    const len = utf8Length(segment);
    n += 1 + varintSize(len) + len;
  }
  return n;
}

function timestampParts(date: Date): [number, number] {
  // As the generated code converts a Date (toTimestamp in src/gen/Flight.ts).
  const ms = date.getTime();
  return [Math.trunc(ms / 1_000), (ms % 1_000) * 1_000_000];
}

function timestampSize(date: Date): number {
  const [seconds, nanos] = timestampParts(date);
  return (seconds !== 0 ? 1 + signedVarintSize(seconds) : 0) + (nanos !== 0 ? 1 + signedVarintSize(nanos) : 0);
}

function endpointSize(e: FlightEndpoint): number {
  let n = 0;
  if (e.ticket !== undefined) {
    const t = fieldSize(1, e.ticket.ticket.length);
    n += 1 + varintSize(t) + t;
  }
  for (const l of e.location) {
    const len = utf8Length(l.uri);
    const loc = len === 0 ? 0 : 1 + varintSize(len) + len;
    n += 1 + varintSize(loc) + loc;
  }
  if (e.expirationTime !== undefined) {
    const t = timestampSize(e.expirationTime);
    n += 1 + varintSize(t) + t;
  }
  return n + fieldSize(1, e.appMetadata.length);
}

function flightInfoSize(info: FlightInfo): number {
  let n = fieldSize(1, info.schema.length);
  if (info.flightDescriptor !== undefined) {
    const d = descriptorSize(info.flightDescriptor);
    n += 1 + varintSize(d) + d;
  }
  for (const e of info.endpoint) {
    const s = endpointSize(e);
    n += 1 + varintSize(s) + s;
  }
  if (info.totalRecords !== 0) n += 1 + signedVarintSize(info.totalRecords);
  if (info.totalBytes !== 0) n += 1 + signedVarintSize(info.totalBytes);
  if (info.ordered) n += 2;
  return n + fieldSize(1, info.appMetadata.length);
}

function writeString(out: Buffer, pos: number, tag: number, s: string): number {
  const len = utf8Length(s);
  if (len === 0) return pos;
  pos = writeFieldHead(out, pos, tag, len);
  return pos + out.write(s, pos, len, "utf8");
}

function writeDescriptor(out: Buffer, pos: number, d: FlightDescriptor): number {
  if (d.type !== 0) pos = writeSignedVarint(out, writeVarint(out, pos, 0x08), d.type);
  pos = writeField(out, pos, 0x12, d.cmd);
  for (const segment of d.path) {
    // Repeated strings are written even when empty: an empty segment is still a segment.
    const len = utf8Length(segment);
    pos = writeFieldHead(out, pos, 0x1a, len);
    pos += out.write(segment, pos, len, "utf8");
  }
  return pos;
}

function writeEndpoint(out: Buffer, pos: number, e: FlightEndpoint): number {
  if (e.ticket !== undefined) {
    pos = writeFieldHead(out, pos, 0x0a, fieldSize(1, e.ticket.ticket.length));
    pos = writeField(out, pos, 0x0a, e.ticket.ticket);
  }
  for (const l of e.location) {
    const len = utf8Length(l.uri);
    pos = writeFieldHead(out, pos, 0x12, len === 0 ? 0 : 1 + varintSize(len) + len);
    pos = writeString(out, pos, 0x0a, l.uri);
  }
  if (e.expirationTime !== undefined) {
    const [seconds, nanos] = timestampParts(e.expirationTime);
    pos = writeFieldHead(out, pos, 0x1a, timestampSize(e.expirationTime));
    if (seconds !== 0) pos = writeSignedVarint(out, writeVarint(out, pos, 0x08), seconds);
    if (nanos !== 0) pos = writeSignedVarint(out, writeVarint(out, pos, 0x10), nanos);
  }
  return writeField(out, pos, 0x22, e.appMetadata);
}

/**
 * One FlightInfo as a gRPC message: the 5-byte prefix and the protobuf encoding, in one
 * buffer. Byte for byte what `pb.FlightInfo.encode(info).finish()` gives after the prefix.
 *
 * @example
 * stream.write(encodeFlightInfoFramed(info));
 */
export function encodeFlightInfoFramed(info: FlightInfo): Buffer {
  const size = flightInfoSize(info);
  const out = Buffer.allocUnsafe(5 + size);
  out[0] = 0;
  out.writeUInt32BE(size, 1);
  let pos = writeField(out, 5, 0x0a, info.schema);
  if (info.flightDescriptor !== undefined) {
    pos = writeFieldHead(out, pos, 0x12, descriptorSize(info.flightDescriptor));
    pos = writeDescriptor(out, pos, info.flightDescriptor);
  }
  for (const e of info.endpoint) {
    pos = writeFieldHead(out, pos, 0x1a, endpointSize(e));
    pos = writeEndpoint(out, pos, e);
  }
  if (info.totalRecords !== 0) pos = writeSignedVarint(out, writeVarint(out, pos, 0x20), info.totalRecords);
  if (info.totalBytes !== 0) pos = writeSignedVarint(out, writeVarint(out, pos, 0x28), info.totalBytes);
  if (info.ordered) {
    out[pos++] = 0x30;
    out[pos++] = 1;
  }
  pos = writeField(out, pos, 0x3a, info.appMetadata);
  if (pos !== out.length) throw new Error(`FlightInfo encoder wrote ${pos - 5} bytes, measured ${size}`);
  return out;
}
