import { FlightError, StatusCode, bytesFromChunks, chunksOf, resourceExhausted, type Bytes, type FlightData } from "@blackice/flight-core";
import { FlightDescriptor as FlightDescriptorCodec } from "../gen/Flight";
import { fieldSize, varintSize, writeField, writeVarint } from "./protobuf-wire";

// The four fields of FlightData, all length-delimited (field << 3 | wire type 2).
const TAG_DESCRIPTOR = 0x0a; // field 1
const TAG_HEADER = 0x12; // field 2
const TAG_APP_METADATA = 0x1a; // field 3
const TAG_BODY = 8002; // field 1000, varint 0xC2 0x3E

const EMPTY: Uint8Array = new Uint8Array(0);

/** Thrown by {@link decodeFlightData} on bytes that are not a FlightData message the server accepts (INVALID_ARGUMENT). */
export class FlightDataDecodeError extends FlightError {
  constructor(message: string) {
    super(StatusCode.INVALID_ARGUMENT, message);
  }
}

/** Options of {@link decodeFlightData}. */
export interface DecodeFlightDataOptions {
  /** Largest FlightDescriptor accepted, bytes; more is RESOURCE_EXHAUSTED. Default: no limit. */
  maxDescriptorBytes?: number;
}

/** Reads protobuf across the chunks of one message without joining them. */
class ChunkCursor {
  private index = 0;
  private offset = 0;
  remaining: number;

  constructor(private readonly chunks: readonly Uint8Array[], total: number) {
    this.remaining = total;
  }

  private byte(): number {
    if (this.remaining === 0) throw new FlightDataDecodeError("truncated FlightData");
    let c = this.chunks[this.index]!;
    while (this.offset >= c.byteLength) {
      this.index++;
      this.offset = 0;
      c = this.chunks[this.index]!;
    }
    this.remaining--;
    return c[this.offset++]!;
  }

  varint(): number {
    let result = 0;
    for (let i = 0, shift = 0; i < 8; i++, shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    // 8 varint bytes hold 56 bits, more than any length a message can have.
    throw new FlightDataDecodeError("varint too long in FlightData");
  }

  /** The next `n` bytes as views into the chunks. */
  take(n: number): Uint8Array[] {
    if (n > this.remaining) throw new FlightDataDecodeError("FlightData field length past end of message");
    const out: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[this.index]!;
      const avail = c.byteLength - this.offset;
      if (avail === 0) {
        this.index++;
        this.offset = 0;
        continue;
      }
      const k = Math.min(avail, left);
      out.push(c.subarray(this.offset, this.offset + k));
      this.offset += k;
      left -= k;
    }
    this.remaining -= n;
    return out;
  }
}

/** Pieces in one array: the piece itself when there is one, otherwise a copy (small fields only). */
function joined(pieces: Uint8Array[]): Uint8Array {
  if (pieces.length === 0) return EMPTY;
  if (pieces.length === 1) return pieces[0]!;
  return Buffer.concat(pieces);
}

/**
 * Decodes a FlightData message strictly. The message may be one buffer or the chunks it
 * arrived in; the body stays in those chunks (no copy), the header and app_metadata are
 * joined when they span chunks (they are small).
 *
 * Only the four FlightData fields are accepted, each length-delimited and at most once:
 * field 0, unknown fields, wrong wire types and repeated fields are refused. The server
 * frames what it serves from the parsed parts, so nothing it did not parse can reach a
 * reader; refusing the rest keeps every reader seeing the message the server validated.
 */
export function decodeFlightData(input: Bytes, options: DecodeFlightDataOptions = {}): FlightData {
  const maxDescriptor = options.maxDescriptorBytes ?? Number.MAX_SAFE_INTEGER;
  const cursor = new ChunkCursor(chunksOf(input), input.byteLength);
  let header: Uint8Array | undefined;
  let body: Bytes | undefined;
  let appMetadata: Uint8Array | undefined;
  let descriptor: Uint8Array | undefined;
  while (cursor.remaining > 0) {
    const tag = cursor.varint();
    if (tag !== TAG_DESCRIPTOR && tag !== TAG_HEADER && tag !== TAG_APP_METADATA && tag !== TAG_BODY) {
      throw new FlightDataDecodeError(`FlightData has field ${Math.floor(tag / 8)} with wire type ${tag & 7}; only fields 1, 2, 3 and 1000 (bytes) are accepted`);
    }
    const len = cursor.varint();
    if (tag === TAG_DESCRIPTOR && len > maxDescriptor) {
      throw resourceExhausted(`FlightDescriptor of ${len} bytes is over the limit of ${maxDescriptor} bytes`);
    }
    const pieces = cursor.take(len);
    const seen = tag === TAG_DESCRIPTOR ? descriptor : tag === TAG_HEADER ? header : tag === TAG_APP_METADATA ? appMetadata : body;
    if (seen !== undefined) throw new FlightDataDecodeError(`FlightData repeats field ${Math.floor(tag / 8)}`);
    if (tag === TAG_BODY) body = bytesFromChunks(pieces);
    else if (tag === TAG_HEADER) header = joined(pieces);
    else if (tag === TAG_APP_METADATA) appMetadata = joined(pieces);
    else descriptor = joined(pieces);
  }
  let flightDescriptor: FlightData["flightDescriptor"];
  if (descriptor) {
    try {
      flightDescriptor = FlightDescriptorCodec.decode(descriptor);
    } catch {
      throw new FlightDataDecodeError("malformed FlightDescriptor in FlightData");
    }
  }
  return { flightDescriptor, dataHeader: header ?? EMPTY, dataBody: body ?? EMPTY, appMetadata: appMetadata ?? EMPTY };
}

/** Largest message a gRPC frame can carry (its length prefix is a u32). */
const MAX_FRAME_MESSAGE = 0xffffffff;

/**
 * A FlightData as the pieces of its encoding: first one buffer with (optionally) the 5-byte
 * gRPC frame prefix, the descriptor, header and app_metadata fields and the body's tag and
 * length; then the body's own chunks, uncopied. Written with one vectored write, the pieces
 * are exactly one gRPC message.
 */
export function flightDataPieces(msg: FlightData, grpcPrefix: boolean): Uint8Array[] {
  const descriptor = msg.flightDescriptor ? FlightDescriptorCodec.encode(msg.flightDescriptor).finish() : EMPTY;
  const header = msg.dataHeader ?? EMPTY;
  const meta = msg.appMetadata ?? EMPTY;
  const body = msg.dataBody ?? EMPTY;
  const bodyLength = body.byteLength;
  // An empty descriptor message still has to be sent so that the peer sees the field.
  const descSize = msg.flightDescriptor ? 1 + varintSize(descriptor.length) + descriptor.length : 0;
  const bodyFieldHead = bodyLength === 0 ? 0 : 2 + varintSize(bodyLength);
  const messageSize = descSize + fieldSize(1, header.length) + fieldSize(1, meta.length) + bodyFieldHead + bodyLength;
  if (messageSize > MAX_FRAME_MESSAGE) throw new RangeError(`FlightData of ${messageSize} bytes does not fit a gRPC frame`);
  const prefix = grpcPrefix ? 5 : 0;
  const head = Buffer.allocUnsafe(prefix + messageSize - bodyLength);
  let pos = 0;
  if (grpcPrefix) {
    head[0] = 0;
    head.writeUInt32BE(messageSize, 1);
    pos = 5;
  }
  if (msg.flightDescriptor) {
    head[pos++] = TAG_DESCRIPTOR;
    pos = writeVarint(head, pos, descriptor.length);
    head.set(descriptor, pos);
    pos += descriptor.length;
  }
  pos = writeField(head, pos, TAG_HEADER, header);
  pos = writeField(head, pos, TAG_APP_METADATA, meta);
  if (bodyLength > 0) {
    pos = writeVarint(head, pos, TAG_BODY);
    writeVarint(head, pos, bodyLength);
  }
  return [head, ...chunksOf(body)];
}

/** Encodes a FlightData into one buffer (the client's path; the server writes {@link flightDataPieces}). */
export function encodeFlightData(msg: FlightData): Buffer {
  const pieces = flightDataPieces(msg, false);
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
}
