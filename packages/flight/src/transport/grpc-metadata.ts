// gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md): how request metadata, deadlines and
// statuses are spelled in HTTP/2 headers and trailers.
import type { CallHeaders } from "@blackice/flight-core";

/** Headers that carry the protocol itself, not call metadata; never shown to middleware. */
const PROTOCOL_HEADERS = new Set(["content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "content-length"]);

/**
 * Call metadata from the raw header list Node gives a stream (`[name, value, name, value,
 * ...]`): pseudo-headers and protocol headers dropped, names lower-cased, `-bin` values
 * base64-decoded (padded or not; several values may share one header, comma-separated).
 */
export function metadataFromRawHeaders(raw: readonly string[]): CallHeaders {
  const out = new Map<string, Array<string | Uint8Array>>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name.startsWith(":") || PROTOCOL_HEADERS.has(name)) continue;
    const value = raw[i + 1]!;
    let list = out.get(name);
    if (!list) out.set(name, (list = []));
    if (name.endsWith("-bin")) {
      for (const part of value.split(",")) list.push(new Uint8Array(Buffer.from(part.trim(), "base64")));
    } else {
      list.push(value);
    }
  }
  return out;
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The timeout a `grpc-timeout` header asks for, in ms: up to 8 digits and a unit (H, M, S,
 * m, u, n). Undefined when the header is absent; NaN when it is malformed.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return Number.NaN;
  return Number(m[1]) * TIMEOUT_UNITS[m[2]!]!;
}

/**
 * `grpc-message` as the protocol spells it: UTF-8, with bytes outside printable ASCII and
 * `%` percent-encoded, and a space at either end too: an HTTP/2 field value must not start or
 * end with whitespace, and grpc-js clients then lose the whole message (a status with an
 * empty message), as they did for a grpc-js error text ending in "Resolution note: ".
 */
export function percentEncode(message: string): string {
  const bytes = Buffer.from(message, "utf8");
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const edgeSpace = b === 0x20 && (i === 0 || i === bytes.length - 1);
    if (b >= 0x20 && b <= 0x7e && b !== 0x25 && !edgeSpace) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Reads a percent-encoded `grpc-message` back (for tests and clients). */
export function percentDecode(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length + 0 && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Metadata values ready for HTTP/2: `-bin` values base64-encoded, names lower-cased. */
export function metadataToHeaders(md: ReadonlyMap<string, string | Uint8Array> | Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = md instanceof Map ? [...md.entries()] : Object.entries(md);
  for (const [k, v] of entries) {
    const name = k.toLowerCase();
    if (name.startsWith(":") || name.startsWith("grpc-") || PROTOCOL_HEADERS.has(name)) continue;
    out[name] = name.endsWith("-bin") ? Buffer.from(typeof v === "string" ? Buffer.from(v) : v).toString("base64") : String(v);
  }
  return out;
}
