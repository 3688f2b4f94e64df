import { createHash } from "node:crypto";
import * as zlib from "node:zlib";
import { chunksOf } from "../byte-chunks";
import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import type { BatchStats, ColumnStats } from "../ipc/batch-stats";
import { MessageKind, type MessageHeaderInfo, type StoredMessage } from "../ipc/ipc-message";
import { StatusCode } from "../status-code";

// The on-disk format of DiskStore (docs/storage.md). Each flight is two files in `flights/`:
//
//   <id>.<gen>.arrows  an Arrow IPC stream, readable as it is by pyarrow.ipc.open_stream: every
//                      message encapsulated (0xFFFFFFFF, int32 metadata length, the flatbuffer
//                      header zero-padded to 8 bytes, the body), then the end-of-stream marker
//                      0xFFFFFFFF 00000000.
//   <id>.json          the manifest: descriptor, expiry, per-message offsets, lengths, info,
//                      app_metadata and checksums, and the data file's committed length.
//
// `id` is derived from the descriptor key; `gen` changes whenever a flight is created anew, so
// a new data file never overwrites the one an older manifest names.

/** Version of the manifest layout; a manifest of another version is not read. */
export const MANIFEST_FORMAT = "blackice-flight-store/1";
/**
 * Version of the batch statistics in a manifest (`statsVersion`, and `s` of each record
 * batch). A manifest without it (written before statistics existed) or with another version
 * is read as before, its batches without statistics: they are never pruned.
 */
export const STATS_FORMAT = 1;

const CONTINUATION = 0xffffffff;
/** The end-of-stream marker: continuation, then a zero metadata length. */
export const EOS = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);
const ZEROS = new Uint8Array(8);

/** The header length padded to 8 bytes, so the body after the 8-byte prefix stays 8-aligned. */
export function paddedLength(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Bytes a message takes in the data file: prefix, padded header, body. */
export function frameLength(headerLength: number, bodyLength: number): number {
  return 8 + paddedLength(headerLength) + bodyLength;
}

/**
 * The pieces to write for one message, in order: prefix and padding are new; header and body
 * chunks are the stored bytes as they are (a header is re-padded, never re-encoded).
 */
export function framePieces(message: StoredMessage): Uint8Array[] {
  const h = message.header.byteLength;
  const padded = paddedLength(h);
  // A zero length would read as the end-of-stream marker.
  if (padded === 0) throw new FlightError(StatusCode.INVALID_ARGUMENT, "cannot store a message with an empty header");
  if (padded > 0x7fffffff) throw new FlightError(StatusCode.INVALID_ARGUMENT, `message header of ${h} bytes is too large for an IPC stream`);
  const prefix = new Uint8Array(8);
  const view = new DataView(prefix.buffer);
  view.setUint32(0, CONTINUATION, true);
  view.setInt32(4, padded, true);
  const pieces = [prefix, message.header];
  if (padded > h) pieces.push(ZEROS.subarray(0, padded - h));
  pieces.push(...chunksOf(message.body));
  return pieces;
}

// ---------------------------------------------------------------- checksums

type Crc32 = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | undefined;

/** CRC-32 in JavaScript, for Node versions before zlib.crc32 (20.15). */
function crc32Js(data: Uint8Array, value = 0): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~value >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/**
 * CRC-32 (IEEE, as gzip and zip use), continued from `value`. Native (zlib.crc32) where Node
 * has it. Why CRC-32 and not SHA-256: the checksum guards against accidental damage (bit rot,
 * torn or misdirected writes), and a CRC-32 detects every burst of up to 32 bits and every odd
 * number of flipped bits; it is not a defence against someone who can write the directory
 * (they could rewrite the manifest too; HMAC and Merkle middleware cover that). Native CRC-32
 * runs at several GB/s, several times SHA-256, and DoGet checks every byte it serves.
 * CRC-32C would do equally well but Node has no native implementation of it.
 */
export function crc32(data: Uint8Array, value = 0): number {
  // zlib.crc32 returns 0 for some empty arrays (TextEncoder's encode("") on Node 20), not `value`.
  return data.byteLength === 0 ? value : crc32Impl(data, value);
}

const crc32Impl: Crc32 = typeof (zlib as { crc32?: Crc32 }).crc32 === "function" ? (zlib as unknown as { crc32: Crc32 }).crc32 : crc32Js;

/** The checksum of one stored message: its framed bytes as on disk, then its app_metadata. */
export function messageChecksum(pieces: readonly Uint8Array[], appMetadata: Uint8Array): number {
  let c = 0;
  for (const p of pieces) c = crc32(p, c);
  return crc32(appMetadata, c);
}

// ---------------------------------------------------------------- manifest

/** One message of a flight, as the manifest records it. Short names: a manifest has one per message. */
export interface ManifestMessage {
  /** Offset of the message's frame in the data file. */
  o: number;
  /** Header length as received (unpadded; the padding on disk is not served). */
  h: number;
  /** Body length. */
  b: number;
  /** Message kind ({@link MessageKind}). */
  k: MessageKind;
  /** Metadata version. */
  v: number;
  /** Rows. */
  r: number;
  /** Dictionary id (decimal), for dictionary batches. */
  d?: string;
  /** Whether a dictionary batch is a delta. */
  x?: boolean;
  /** Body compression codec. */
  z?: "lz4_frame" | "zstd";
  /** app_metadata, base64; absent when empty. */
  m?: string;
  /** CRC-32 of the frame bytes and then the app_metadata. */
  c: number;
  /** Record batches: per-column statistics computed at put ({@link encodeStats}); absent when it has none. */
  s?: EncodedColumnStats[];
}

/**
 * One column's statistics in a manifest: null (none), or `[nullCount, min, max]` with a 4th
 * element `1` when a float column holds NaN. `min` and `max` are JSON numbers for 8- to 32-bit
 * integers and finite floats, strings for 64-bit integers (decimal digits, exact) and for
 * infinite floats (`"Infinity"`, `"-Infinity"`), null when no value counted (all null).
 */
export type EncodedColumnStats = null | [number, number | string | null, number | string | null] | [number, number | string | null, number | string | null, 1];

function encodeValue(v: number | bigint | undefined): number | string | null {
  if (v === undefined) return null;
  if (typeof v === "bigint") return v.toString();
  return Number.isFinite(v) ? v : String(v);
}

const DIGITS = /^-?[0-9]{1,20}$/;

/** A value back from {@link encodeValue}'s form; throws on anything else. */
function decodeValue(v: unknown): number | bigint | undefined {
  if (v === null) return undefined;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  if (typeof v === "string" && DIGITS.test(v)) return BigInt(v);
  throw new Error("bad statistics value");
}

/** The manifest form of a batch's statistics. */
export function encodeStats(stats: BatchStats): EncodedColumnStats[] {
  return stats.map((c) => {
    if (c === null) return null;
    const e: EncodedColumnStats = [c.nullCount, encodeValue(c.min), encodeValue(c.max)];
    if (c.hasNaN) return [...e, 1] as EncodedColumnStats;
    return e;
  });
}

/**
 * Statistics back from a manifest entry, or undefined when the entry has none or they are not
 * well formed (then the batch is simply never pruned; the manifest's checksum already guards
 * against damage).
 */
export function decodeStats(encoded: unknown): BatchStats | undefined {
  if (!Array.isArray(encoded)) return undefined;
  try {
    return Object.freeze(
      encoded.map((c): ColumnStats | null => {
        if (c === null) return null;
        if (!Array.isArray(c) || c.length < 3 || c.length > 4 || !Number.isSafeInteger(c[0]) || (c[0] as number) < 0) throw new Error("bad statistics");
        const min = decodeValue(c[1]);
        const max = decodeValue(c[2]);
        if ((min === undefined) !== (max === undefined)) throw new Error("bad statistics");
        return Object.freeze({ nullCount: c[0] as number, min, max, hasNaN: c[3] === 1 });
      }),
    );
  } catch {
    return undefined;
  }
}

/** A flight's manifest: everything about it that is not Arrow data. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  key: string;
  descriptor: { type: "path"; path: string[] } | { type: "cmd"; cmd: string };
  /** Data file name, in the same directory. */
  data: string;
  /** Committed length of the data file, end-of-stream marker included. Bytes past it are an interrupted append. */
  dataLength: number;
  createdAt: number;
  updatedAt: number;
  /** Absolute expiry, epoch ms (so a TTL holds across restarts), or null. */
  expiresAt: number | null;
  /** The TTL a put gave explicitly (used by renew), or null. */
  ttlMs: number | null;
  totalRecords: number;
  /** Header (unpadded) + body bytes of all messages, schema included. */
  totalBytes: number;
  /** The schema's header, base64, so an open needs no data file read to know a flight's schema. */
  schema: string;
  /** The schema first, then dictionaries and batches in order. */
  messages: ManifestMessage[];
  /** {@link STATS_FORMAT} of the `s` entries; absent in manifests written before batch statistics. */
  statsVersion?: number;
}

/** The manifest file's bytes: the manifest and a CRC-32 of its JSON text, so damage to it is detected too. */
export function encodeManifest(m: Manifest): Buffer {
  const text = JSON.stringify(m);
  return Buffer.from(`{"crc32":${crc32(Buffer.from(text))},"manifest":${text}}\n`);
}

/** Reads a manifest file's bytes. @throws Error naming what is wrong (the caller reports it). */
export function decodeManifest(bytes: Buffer): Manifest {
  const outer = JSON.parse(bytes.toString("utf8")) as { crc32?: unknown; manifest?: unknown };
  if (typeof outer !== "object" || outer === null || typeof outer.crc32 !== "number" || typeof outer.manifest !== "object") {
    throw new Error("not a manifest");
  }
  const m = outer.manifest as Manifest;
  // JSON.stringify of what JSON.parse made gives back the same text for the values a manifest holds.
  if (crc32(Buffer.from(JSON.stringify(m))) !== outer.crc32) throw new Error("manifest checksum mismatch");
  if (m.format !== MANIFEST_FORMAT) throw new Error(`unknown manifest format ${JSON.stringify(m.format)}`);
  if (typeof m.key !== "string" || typeof m.data !== "string" || typeof m.schema !== "string" || !Array.isArray(m.messages) || m.messages.length === 0) {
    throw new Error("manifest lacks its key, data file or schema");
  }
  if (m.messages[0]!.k !== MessageKind.SCHEMA || m.messages[0]!.o !== 0) throw new Error("manifest does not start with the schema");
  return m;
}

/**
 * The file name stem of a flight (`<id>.json`, `<id>.<gen>.arrows`): keys may be long and hold
 * any character; 128 bits of SHA-256 cannot collide in practice.
 */
export function fileId(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 32);
}

/** The manifest form of a descriptor. */
export function manifestDescriptor(d: FlightDescriptor): Manifest["descriptor"] {
  return d.type === DescriptorType.PATH ? { type: "path", path: d.path.slice() } : { type: "cmd", cmd: Buffer.from(d.cmd).toString("base64") };
}

const EMPTY = new Uint8Array(0);

/** A frozen descriptor from its manifest form (PATH keeps no cmd and CMD no path, like the key). */
export function descriptorOf(m: Manifest["descriptor"]): FlightDescriptor {
  return m.type === "path"
    ? Object.freeze({ type: DescriptorType.PATH, cmd: EMPTY, path: Object.freeze(m.path.slice()) as string[] })
    : Object.freeze({ type: DescriptorType.CMD, cmd: new Uint8Array(Buffer.from(m.cmd, "base64")), path: Object.freeze([]) as unknown as string[] });
}

/** The manifest entry of a message written at `offset` with checksum `c` (and its statistics, for a record batch). */
export function manifestMessage(message: StoredMessage, offset: number, c: number, stats?: BatchStats): ManifestMessage {
  const { info } = message;
  const e: ManifestMessage = { o: offset, h: message.header.byteLength, b: message.body.byteLength, k: info.kind, v: info.version, r: info.rows, c };
  if (info.dictionaryId !== undefined) e.d = info.dictionaryId.toString();
  if (info.isDelta !== undefined) e.x = info.isDelta;
  if (info.compression !== undefined) e.z = info.compression;
  if (message.appMetadata.byteLength > 0) e.m = Buffer.from(message.appMetadata).toString("base64");
  if (stats !== undefined) e.s = encodeStats(stats);
  return e;
}

/** The header info a manifest entry records (no Arrow parsing on the read path). */
export function infoOf(e: ManifestMessage): MessageHeaderInfo {
  const info: MessageHeaderInfo = { kind: e.k, version: e.v, bodyLength: e.b, rows: e.r };
  if (e.d !== undefined) info.dictionaryId = BigInt(e.d);
  if (e.x !== undefined) info.isDelta = e.x;
  if (e.z !== undefined) info.compression = e.z;
  return info;
}

/** app_metadata of a manifest entry. */
export function appMetadataOf(e: ManifestMessage): Uint8Array {
  return e.m === undefined ? EMPTY : new Uint8Array(Buffer.from(e.m, "base64"));
}
