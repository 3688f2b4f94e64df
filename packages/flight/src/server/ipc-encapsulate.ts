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
