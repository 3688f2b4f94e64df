/**
 * Canonical keys for Flight descriptors, and the tickets derived from them.
 *
 * Key format (ASCII only, so keys and tickets print cleanly in logs):
 *
 * - PATH descriptor: `p:` followed by the path segments joined with `/`, each segment being
 *   its UTF-8 bytes percent-encoded. Example: `["sales", "2024/q1"]` → `p:sales/2024%2Fq1`.
 * - CMD descriptor: `c:` followed by the cmd bytes percent-encoded.
 *   Example: the bytes of `SELECT 1` → `c:SELECT%201`.
 *
 * Percent-encoding keeps the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) as they
 * are and writes every other byte as `%` plus two UPPERCASE hex digits. Because `/` and `%`
 * inside a segment are always encoded, the `/` separators are unambiguous; because the
 * encoding is exactly one form per byte string, equal descriptors give equal keys and
 * different descriptors give different keys.
 *
 * A ticket is the UTF-8 (here: ASCII) bytes of the key itself, so a ticket can be read in a
 * packet dump and pasted into a client. {@link ticketToKey} accepts only the canonical form.
 */
import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { StatusCode } from "../status-code";

/** Prefix of the key of a PATH descriptor. */
const PATH_PREFIX = "p:";
/** Prefix of the key of a CMD descriptor. */
const CMD_PREFIX = "c:";
const HEX = "0123456789ABCDEF";

/** `UNRESERVED[b]` is true for the bytes written as themselves. */
const UNRESERVED: boolean[] = (() => {
  const t = new Array<boolean>(256).fill(false);
  for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") t[ch.charCodeAt(0)] = true;
  return t;
})();

/** Most real segments need no encoding; this lets them skip the byte loop. */
const ALL_UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
/** A lone surrogate has no UTF-8 form; TextEncoder would silently turn it into U+FFFD, making two segments share a key. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const utf8Encoder = new TextEncoder();
// ignoreBOM: a segment that starts with U+FEFF must keep it, or it would not round-trip.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function invalid(message: string): FlightError {
  return new FlightError(StatusCode.INVALID_ARGUMENT, message);
}

const HEX_CODES = Uint8Array.from(HEX, (c) => c.charCodeAt(0));

/**
 * Linear in the input: the encoding is written into one byte array and turned into a string
 * once (building it by `+=` per byte took seconds for a 16 MiB command).
 */
function percentEncode(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length * 3);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (UNRESERVED[b]) {
      out[n++] = b;
    } else {
      out[n++] = 37; // %
      out[n++] = HEX_CODES[b >> 4]!;
      out[n++] = HEX_CODES[b & 15]!;
    }
  }
  return Buffer.from(out.buffer, 0, n).toString("latin1");
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  return -1; // lowercase hex is refused on purpose: it would be a second spelling of the same byte
}

/** Strict inverse of percentEncode; `what` names the part in error messages. */
function percentDecode(text: string, what: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 37 /* % */) {
      const hi = i + 2 < text.length ? hexValue(text.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(text.charCodeAt(i + 2)) : -1;
      if (lo < 0) throw invalid(`${what}: malformed percent escape at offset ${i} (expected %XX with uppercase hex)`);
      const b = (hi << 4) | lo;
      if (UNRESERVED[b]) throw invalid(`${what}: non-canonical percent escape at offset ${i} (byte ${b} must not be escaped)`);
      out[n++] = b;
      i += 2;
    } else if (c < 128 && UNRESERVED[c]) {
      out[n++] = c;
    } else {
      throw invalid(`${what}: character code ${c} at offset ${i} is not allowed (only A-Z a-z 0-9 - . _ ~ and %XX)`);
    }
  }
  return out.subarray(0, n);
}

function encodeSegment(segment: string, index: number): string {
  if (ALL_UNRESERVED.test(segment)) return segment;
  if (LONE_SURROGATE.test(segment)) {
    throw invalid(`descriptor path segment ${index} is not well-formed Unicode (it contains a lone surrogate)`);
  }
  return percentEncode(utf8Encoder.encode(segment));
}

/**
 * The canonical key of a descriptor: `p:<segments>` for PATH, `c:<cmd>` for CMD (see the
 * module comment for the exact encoding). Equal descriptors get equal keys and different
 * descriptors different keys, whatever characters the segments or bytes contain. A PATH
 * descriptor's `cmd` and a CMD descriptor's `path` are ignored, as the Flight spec says.
 *
 * @throws FlightError INVALID_ARGUMENT for an UNKNOWN or unsupported type, a PATH with no
 * segments, a CMD with an empty cmd, a segment that is not a string or not well-formed Unicode.
 */
export function descriptorKey(d: FlightDescriptor): string {
  if (typeof d !== "object" || d === null) throw invalid("a flight descriptor is required");
  switch (d.type) {
    case DescriptorType.PATH: {
      const path: unknown = d.path;
      if (!Array.isArray(path) || path.length === 0) {
        throw invalid("empty PATH descriptor: at least one path segment is required");
      }
      const parts = new Array<string>(path.length);
      for (let i = 0; i < path.length; i++) {
        const seg: unknown = path[i];
        if (typeof seg !== "string") throw invalid(`descriptor path segment ${i} is not a string`);
        parts[i] = encodeSegment(seg, i);
      }
      return PATH_PREFIX + parts.join("/");
    }
    case DescriptorType.CMD: {
      const cmd: unknown = d.cmd;
      if (!(cmd instanceof Uint8Array) || cmd.length === 0) {
        throw invalid("empty CMD descriptor: cmd must be non-empty bytes");
      }
      return CMD_PREFIX + percentEncode(cmd);
    }
    case DescriptorType.UNKNOWN:
      throw invalid("descriptor type UNKNOWN (0) is not supported: use PATH (1) or CMD (2)");
    default:
      throw invalid(`descriptor type ${String(d.type)} is not supported: use PATH (1) or CMD (2)`);
  }
}

/**
 * The descriptor a key stands for (the inverse of {@link descriptorKey}). The result is
 * normalised: a PATH descriptor has an empty `cmd`, a CMD descriptor an empty `path`.
 *
 * @throws FlightError INVALID_ARGUMENT when `key` is not a canonical key.
 */
export function descriptorFromKey(key: string): FlightDescriptor {
  if (typeof key !== "string") throw invalid("a flight key must be a string");
  if (key.startsWith(PATH_PREFIX)) {
    const parts = key.slice(PATH_PREFIX.length).split("/");
    const path = parts.map((part, i) => {
      const bytes = percentDecode(part, `flight key path segment ${i}`);
      try {
        return utf8Decoder.decode(bytes);
      } catch {
        throw invalid(`flight key path segment ${i} is not valid UTF-8`);
      }
    });
    return { type: DescriptorType.PATH, cmd: new Uint8Array(0), path };
  }
  if (key.startsWith(CMD_PREFIX)) {
    const cmd = percentDecode(key.slice(CMD_PREFIX.length), "flight key cmd");
    if (cmd.length === 0) throw invalid("flight key has an empty cmd");
    return { type: DescriptorType.CMD, cmd: cmd.slice(), path: [] };
  }
  throw invalid('not a flight key: it must start with "p:" (path) or "c:" (command)');
}

/**
 * The ticket bytes of a key: the key's bytes, one per character (keys are ASCII). Written with
 * `Buffer.from(key, "latin1")`, not a TextEncoder: for keys this short the encoder's fixed cost
 * per call was most of ListFlights' time over 100k flights.
 */
export function ticketFromKey(key: string): Uint8Array {
  return Buffer.from(key, "latin1");
}

/**
 * The key a ticket names. Accepts only tickets made by {@link ticketFromKey} (canonical keys),
 * so that a malformed ticket is reported as such rather than as an unknown flight. Error
 * messages name offsets, never the ticket bytes, since tickets come from clients.
 *
 * @throws FlightError INVALID_ARGUMENT for anything that is not a canonical ticket.
 */
export function ticketToKey(ticket: Uint8Array): string {
  if (!(ticket instanceof Uint8Array)) throw invalid("a ticket must be bytes");
  if (ticket.length === 0) throw invalid("empty ticket");
  for (let i = 0; i < ticket.length; i++) {
    const b = ticket[i]!;
    // Checked here, before decoding, so that non-ASCII input never reaches the UTF-8 decoder.
    if (!(UNRESERVED[b] || b === 37 /* % */ || b === 47 /* / */ || b === 58 /* : */)) {
      throw invalid(`malformed ticket: byte ${i} (value ${b}) is not allowed in a BlackIce Flight ticket`);
    }
  }
  const key = utf8Decoder.decode(ticket);
  try {
    descriptorFromKey(key);
  } catch (err) {
    throw invalid(`malformed ticket: ${(err as Error).message}`);
  }
  return key;
}

/**
 * A test of flight keys against a path prefix, as `list` takes it: everything for an empty or
 * missing prefix, else the PATH flights whose path starts with those segments, segment-wise
 * (`["a"]` matches `["a","b"]`, not `["ab"]`). Segments never hold a raw "/" in a key, so a
 * segment-wise prefix is the prefix's own key, or a string prefix ending at a "/".
 *
 * @throws FlightError INVALID_ARGUMENT when the prefix is not an array of strings.
 */
export function pathPrefixMatcher(pathPrefix: readonly string[] | undefined): (key: string) => boolean {
  if (pathPrefix !== undefined && !Array.isArray(pathPrefix)) throw invalid("the path prefix must be an array of strings");
  if (pathPrefix === undefined || pathPrefix.length === 0) return () => true;
  const exact = descriptorKey({ type: DescriptorType.PATH, path: pathPrefix as string[], cmd: new Uint8Array(0) });
  const below = exact + "/";
  return (key) => key === exact || key.startsWith(below);
}
