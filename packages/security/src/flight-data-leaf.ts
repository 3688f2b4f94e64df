import { createHash } from "node:crypto";
import { chunksOf, type Bytes } from "@blackice/flight-core";

/** A message as a client receives it (FlightData) or as the store keeps it (StoredMessage). */
export type LeafMessage =
  | { readonly dataHeader: Uint8Array; readonly dataBody: Bytes; readonly appMetadata: Uint8Array }
  | { readonly header: Uint8Array; readonly body: Bytes; readonly appMetadata: Uint8Array };

const MAX_U32 = 0xffffffff;

function parts(msg: LeafMessage): [Uint8Array, Bytes, Uint8Array] {
  if (msg === null || typeof msg !== "object") throw new TypeError("flightDataLeaf: expected a FlightData or a stored message");
  const header = "dataHeader" in msg ? msg.dataHeader : msg.header;
  const body = "dataHeader" in msg ? msg.dataBody : msg.body;
  const meta = msg.appMetadata;
  const empty = new Uint8Array(0);
  return [header ?? empty, body ?? empty, meta ?? empty];
}

function lengths(header: Uint8Array, body: Bytes, meta: Uint8Array): [Buffer, Buffer, Buffer] {
  if (header.length > MAX_U32 || meta.length > MAX_U32) throw new RangeError("flightDataLeaf: header or app_metadata longer than 2^32 - 1 bytes");
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32BE(header.length);
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(body.byteLength));
  const m = Buffer.allocUnsafe(4);
  m.writeUInt32BE(meta.length);
  return [h, b, m];
}

/**
 * The Merkle leaf bytes of one Flight message:
 *
 * ```
 * u32be(len(data_header)) ‖ data_header ‖ u64be(len(data_body)) ‖ data_body ‖ u32be(len(app_metadata)) ‖ app_metadata
 * ```
 *
 * `data_header` is the IPC flatbuffer Message (no continuation marker or length prefix),
 * exactly the FlightData field; the descriptor is not part of the leaf. The lengths make the
 * split between the three parts unambiguous. This copies the message: prefer
 * {@link flightDataLeafHash} for large bodies.
 *
 * @example
 * leafHash(flightDataLeaf(msg)).equals(flightDataLeafHash(msg)); // true
 */
export function flightDataLeaf(msg: LeafMessage): Buffer {
  const [header, body, meta] = parts(msg);
  const [h, b, m] = lengths(header, body, meta);
  return Buffer.concat([h, header, b, ...chunksOf(body), m, meta]);
}

/**
 * The Merkle leaf hash of one Flight message: SHA-256(0x00 ‖ {@link flightDataLeaf}(msg)),
 * computed without copying the body.
 *
 * @example
 * builder.appendLeafHash(flightDataLeafHash(flightData));
 */
export function flightDataLeafHash(msg: LeafMessage): Buffer {
  const [header, body, meta] = parts(msg);
  const [h, b, m] = lengths(header, body, meta);
  const hash = createHash("sha256").update(Buffer.of(0x00)).update(h).update(header).update(b);
  for (const c of chunksOf(body)) hash.update(c);
  return hash.update(m).update(meta).digest();
}
