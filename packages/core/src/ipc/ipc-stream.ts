import { invalidArgument } from "../flight-error";
import { parseMessageHeader } from "./message-header";
import { chunksOf, type Bytes } from "../byte-chunks";

/** One IPC message as framed in a stream: its flatbuffer header and its body. */
export interface IpcMessageBytes {
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

const CONTINUATION = 0xffffffff;

/**
 * Splits an Arrow IPC stream into its messages, without copying: each header and body is a
 * view into `bytes`. Reads the current framing (0xFFFFFFFF continuation marker, int32 metadata
 * length, flatbuffer and padding, body) and the pre-0.15 framing without the marker. Stops at
 * the end-of-stream marker (a zero length) or, if there is none, at the end of the bytes.
 *
 * Every header is read with the same checks as `readMessageHeader`, since its `bodyLength`
 * decides where the next message starts; a truncated frame, a header or body running past the
 * end, or a malformed header throws INVALID_ARGUMENT. Headers keep their padding.
 *
 * @param options.maxMessages stop after this many messages (e.g. 1 to read only the schema)
 *
 * @example
 * const messages = splitIpcStream(tableToIPC(table, "stream"));
 * for (const { header, body } of messages) validator.accept(header, body);
 */
export function splitIpcStream(bytes: Uint8Array, options?: { maxMessages?: number }): IpcMessageBytes[] {
  const maxMessages = options?.maxMessages ?? Infinity;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  const out: IpcMessageBytes[] = [];
  let pos = 0;
  while (pos < end && out.length < maxMessages) {
    if (end - pos < 4) throw invalidArgument(`IPC stream truncated: ${end - pos} stray bytes at byte ${pos}`);
    let length = view.getInt32(pos, true);
    let prefix = 4;
    if (view.getUint32(pos, true) === CONTINUATION) {
      if (end - pos < 8) throw invalidArgument(`IPC stream truncated: continuation marker without a length at byte ${pos}`);
      length = view.getInt32(pos + 4, true);
      prefix = 8;
    }
    if (length === 0) break;
    if (length < 0) throw invalidArgument(`IPC stream has a negative metadata length ${length} at byte ${pos}`);
    const headerStart = pos + prefix;
    if (length > end - headerStart) {
      throw invalidArgument(`IPC stream truncated: ${length}-byte message header at byte ${pos} runs past the end`);
    }
    const header = bytes.subarray(headerStart, headerStart + length);
    const { bodyLength } = parseMessageHeader(header).info;
    const bodyStart = headerStart + length;
    if (bodyLength > end - bodyStart) {
      throw invalidArgument(`IPC stream truncated: message at byte ${pos} declares a ${bodyLength}-byte body, ${end - bodyStart} bytes remain`);
    }
    out.push({ header, body: bytes.subarray(bodyStart, bodyStart + bodyLength) });
    pos = bodyStart + bodyLength;
  }
  return out;
}

/**
 * Writes messages as an Arrow IPC stream: for each, the continuation marker, the metadata
 * length, the header padded with zeros to a multiple of 8 bytes (so that bodies stay 8-byte
 * aligned), and the body; then the end-of-stream marker. Bodies are written as they are (a
 * body's length is part of its header, so it cannot be padded here). One allocation, one copy.
 *
 * @example
 * const bytes = joinIpcStream(storedMessages);
 * const table = tableFromIPC(bytes);
 */
export function joinIpcStream(messages: Iterable<{ readonly header: Uint8Array; readonly body: Bytes }>): Uint8Array {
  const list = [...messages];
  let total = 8;
  for (const m of list) total += 8 + padded(m.header.byteLength) + m.body.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const m of list) {
    const length = padded(m.header.byteLength);
    // A zero length would read as the end-of-stream marker.
    if (length === 0) throw invalidArgument("cannot write a message with an empty header");
    if (length > 0x7fffffff) throw invalidArgument(`message header of ${m.header.byteLength} bytes is too large for an IPC stream`);
    view.setUint32(pos, CONTINUATION, true);
    view.setInt32(pos + 4, length, true);
    out.set(m.header, pos + 8);
    pos += 8 + length;
    for (const c of chunksOf(m.body)) {
      out.set(c, pos);
      pos += c.byteLength;
    }
  }
  view.setUint32(pos, CONTINUATION, true);
  view.setInt32(pos + 4, 0, true);
  return out;
}

/**
 * The bytes that go before a message's body in an Arrow IPC stream: the continuation marker,
 * the little-endian int32 metadata length, the header and its zero padding to a multiple of 8
 * bytes. The body follows as it is, so a stream can be written message by message without
 * copying bodies (`joinIpcStream` is the one-buffer version).
 *
 * @example
 * out.write(ipcMessagePrefix(message.header)); for (const c of chunksOf(message.body)) out.write(c);
 * out.write(ipcEndOfStream());
 */
export function ipcMessagePrefix(header: Uint8Array): Uint8Array {
  const length = padded(header.byteLength);
  if (length === 0) throw invalidArgument("cannot write a message with an empty header");
  if (length > 0x7fffffff) throw invalidArgument(`message header of ${header.byteLength} bytes is too large for an IPC stream`);
  const out = new Uint8Array(8 + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, CONTINUATION, true);
  view.setInt32(4, length, true);
  out.set(header, 8);
  return out;
}

/** The end-of-stream marker of an Arrow IPC stream (the continuation marker and a zero length), new each call. */
export function ipcEndOfStream(): Uint8Array {
  return new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
}

function padded(n: number): number {
  return Math.ceil(n / 8) * 8;
}
