// The browser side of BlackIce Flight, with no dependency but apache-arrow's browser build
// (window.Arrow, served by the server at /web/arrow.js). Written by hand, without a gRPC-Web
// library, because the page needs only two things: gRPC-Web framing (5-byte prefix, status in
// a 0x80 trailer frame) and the four fields of FlightData, decoded below.

const FLIGHT = "/arrow.flight.protocol.FlightService";
const STATUS_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

/** A failed call: `code` is the Flight status name (UNAUTHENTICATED, NOT_FOUND, ...); `httpStatus` when it came over plain HTTP. */
export class FlightWebError extends Error {
  constructor(code, message, httpStatus) {
    super(`${code}: ${message}`);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

function authHeaders(token) {
  return token ? { authorization: /^bearer /i.test(token) ? token : `Bearer ${token}` } : {};
}

async function httpError(res) {
  let body = {};
  try {
    body = await res.json();
  } catch {
    // not JSON: keep the status alone
  }
  return new FlightWebError(body.code ?? `HTTP_${res.status}`, body.message ?? res.statusText, res.status);
}

/** The flights under a path prefix, from GET /flights (JSON). */
export async function listFlights({ prefix = "", token } = {}) {
  const res = await fetch(`/flights${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ""}`, { headers: authHeaders(token) });
  if (!res.ok) throw await httpError(res);
  return res.json();
}

/** A RecordBatchReader over GET /ticket/<ticket> (an Arrow IPC stream over plain HTTP). */
export async function readHttp(ticket, { token } = {}) {
  const res = await fetch(`/ticket/${ticket}`, { headers: authHeaders(token) });
  if (!res.ok) throw await httpError(res);
  const reader = await Arrow.RecordBatchReader.from(res.body);
  await reader.open();
  return reader;
}

// --- protobuf, the little the page needs ---------------------------------------------------

function varint(bytes, pos) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new FlightWebError("INTERNAL", "truncated varint");
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, pos];
    shift += 7;
  }
}

function lengthDelimited(fieldNumber, payload) {
  const head = [];
  let tag = (fieldNumber << 3) | 2;
  while (tag >= 0x80) {
    head.push((tag & 0x7f) | 0x80);
    tag >>>= 7;
  }
  head.push(tag);
  let n = payload.byteLength;
  while (n >= 0x80) {
    head.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  head.push(n);
  const out = new Uint8Array(head.length + payload.byteLength);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** FlightData's data_header (2) and data_body (1000); descriptor and app_metadata are skipped. */
function decodeFlightData(bytes) {
  let header = new Uint8Array(0);
  let body = new Uint8Array(0);
  let pos = 0;
  while (pos < bytes.length) {
    let key;
    [key, pos] = varint(bytes, pos);
    const field = Math.floor(key / 8);
    if ((key & 7) !== 2) throw new FlightWebError("INTERNAL", `unexpected wire type in FlightData field ${field}`);
    let length;
    [length, pos] = varint(bytes, pos);
    const value = bytes.subarray(pos, pos + length);
    pos += length;
    if (field === 2) header = value;
    else if (field === 1000) body = value;
  }
  return { header, body };
}

/** An IPC stream message: continuation marker, length, header padded to 8 bytes, body. */
function ipcFrame({ header, body }) {
  const padded = Math.ceil(header.byteLength / 8) * 8;
  const prefix = new Uint8Array(8 + padded);
  const view = new DataView(prefix.buffer);
  view.setUint32(0, 0xffffffff, true);
  view.setInt32(4, padded, true);
  prefix.set(header, 8);
  return [prefix, body];
}

// --- gRPC-Web ----------------------------------------------------------------------------------

function grpcWebFrame(message) {
  const out = new Uint8Array(5 + message.byteLength);
  new DataView(out.buffer).setUint32(1, message.byteLength);
  out.set(message, 5);
  return out;
}

/**
 * One gRPC-Web call (unary or server-streaming): yields each response message's bytes as it
 * arrives, and throws a FlightWebError if the status in the trailer frame is not OK.
 */
export async function* grpcWebCall(method, requestBytes, { token } = {}) {
  const res = await fetch(`${FLIGHT}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...authHeaders(token) },
    body: grpcWebFrame(requestBytes),
  });
  if (!res.ok) throw await httpError(res);
  const reader = res.body.getReader();
  // Received chunks are queued and joined only once a whole frame is there (one copy per frame).
  const queue = [];
  let queued = 0;
  const take = (n) => {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = queue[0];
      const k = Math.min(head.byteLength, n - filled);
      out.set(head.subarray(0, k), filled);
      filled += k;
      if (k === head.byteLength) queue.shift();
      else queue[0] = head.subarray(k);
    }
    queued -= n;
    return out;
  };
  let frame; // { flag, length } of the frame being received
  let status;
  let message = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (value && value.byteLength > 0) {
      queue.push(value);
      queued += value.byteLength;
    }
    for (;;) {
      if (!frame) {
        if (queued < 5) break;
        const head = take(5);
        frame = { flag: head[0], length: new DataView(head.buffer).getUint32(1) };
      }
      if (queued < frame.length) break;
      const payload = take(frame.length);
      const flag = frame.flag;
      frame = undefined;
      if (flag & 0x80) {
        for (const line of new TextDecoder().decode(payload).split("\r\n")) {
          const i = line.indexOf(":");
          if (i < 0) continue;
          const name = line.slice(0, i).trim().toLowerCase();
          const v = line.slice(i + 1).trim();
          if (name === "grpc-status") status = Number(v);
          if (name === "grpc-message") message = decodeURIComponent(v);
        }
      } else {
        yield payload;
      }
    }
    if (done) break;
  }
  if (status === undefined) status = Number(res.headers.get("grpc-status") ?? 2);
  if (status !== 0) throw new FlightWebError(STATUS_NAMES[status] ?? `CODE_${status}`, message || res.headers.get("grpc-message") || "call failed");
}

/** A RecordBatchReader over a gRPC-Web DoGet of `ticket` (base64url, as in the listing). */
export async function readGrpcWeb(ticket, { token } = {}) {
  const b64 = ticket.replace(/-/g, "+").replace(/_/g, "/");
  const raw = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
  const messages = grpcWebCall("DoGet", lengthDelimited(1, raw), { token });
  // Each FlightData becomes an IPC stream message; apache-arrow reads the stream as it comes.
  async function* ipcStream() {
    for await (const m of messages) for (const piece of ipcFrame(decodeFlightData(m))) yield piece;
    yield new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  }
  const reader = await Arrow.RecordBatchReader.from(ipcStream());
  await reader.open();
  return reader;
}

/** The value of a cell as a number (bigint, Date and timestamps included), or NaN. */
export function numberOf(value) {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) return value.getTime();
  return typeof value === "number" ? value : NaN;
}

/** Reads every batch: the row count and the sum of a numeric column (a checksum to compare). */
export async function summarize(reader, column) {
  let rows = 0;
  let sum = 0;
  for await (const batch of reader) {
    rows += batch.numRows;
    const vector = column ? batch.getChild(column) : null;
    if (!vector) continue;
    const values = vector.toArray();
    for (let i = 0; i < values.length; i++) sum += Number(values[i]);
  }
  return { rows, sum };
}
