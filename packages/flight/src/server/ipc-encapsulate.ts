import { FlightError, StatusCode } from "@blackice/flight-core";

/**
 * Wraps a flatbuffer message header in the IPC encapsulation that FlightInfo.schema and
 * SchemaResult.schema carry: continuation marker 0xFFFFFFFF, little-endian int32 length,
 * the header, and zero padding to a multiple of 8 bytes.
 */
export function encapsulateMessage(header: Uint8Array): Uint8Array {
  const padded = Math.ceil(header.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xffffffff, true);
  view.setInt32(4, padded, true);
  out.set(header, 8);
  return out;
}

/**
 * The header inside an encapsulated IPC message (the inverse of {@link encapsulateMessage}):
 * continuation marker, int32 length, header. Used on bytes the server made itself (a stored
 * schema), so anything else is DATA_LOSS; `what` names them in the message.
 */
export function decapsulateMessage(bytes: Uint8Array, what: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || view.getUint32(0, true) !== 0xffffffff) throw new FlightError(StatusCode.DATA_LOSS, `${what} is not an encapsulated IPC message`);
  const length = view.getInt32(4, true);
  if (length < 0 || 8 + length > bytes.byteLength) throw new FlightError(StatusCode.DATA_LOSS, `${what}'s length is past its end`);
  return bytes.subarray(8, 8 + length);
}
