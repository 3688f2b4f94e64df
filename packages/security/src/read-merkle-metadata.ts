import type { FlightInfo } from "@blackice/flight-core";
import { HASH_BYTES, MERKLE_ALGORITHM } from "./merkle-tree";

/**
 * The Merkle summary `merkleIntegrity` adds to FlightInfo.app_metadata, as the UTF-8 JSON
 * `{"merkle":{"alg":"sha256-rfc6962","root":"<64 hex>","leaves":<n>}}`, plus `"sig"` (base64url
 * Ed25519 signature) and `"kid"` (its key id) when the server signs roots (other top-level keys
 * of an existing JSON object are kept). `leaves` counts the schema message plus the stored
 * messages, in DoGet order.
 */
export interface MerkleMetadata {
  readonly alg: typeof MERKLE_ALGORITHM;
  /** Lower-case hex of the root. */
  readonly root: string;
  /** Number of leaves (messages) the root covers. */
  readonly leaves: number;
  /** Base64url Ed25519 signature of `merkleRootStatement`, when the server signs roots (`merkleIntegrity({ signingKey })`). */
  readonly signature?: string;
  /** Id of the key that made {@link signature}. */
  readonly keyId?: string;
}

/**
 * The answer of the `merkle-proof` action, as UTF-8 JSON: the inclusion proof of message
 * `index` (0 = schema) of a flight, hashes in lower-case hex, `proof` from the leaf's sibling up.
 */
export interface MerkleProof {
  readonly alg: typeof MERKLE_ALGORITHM;
  readonly root: string;
  readonly leaves: number;
  readonly index: number;
  readonly leafHash: string;
  readonly proof: readonly string[];
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** A hash given as hex text or bytes, as bytes; undefined when it is neither. */
export function hashBytes(h: unknown): Buffer | undefined {
  if (typeof h === "string") return HEX64.test(h) ? Buffer.from(h, "hex") : undefined;
  if (h instanceof Uint8Array && h.length === HASH_BYTES) return Buffer.from(h);
  return undefined;
}

/** Whether `v` is a usable leaf count. */
export function isLeafCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Reads the Merkle summary from a FlightInfo (or its app_metadata bytes). Undefined when there
 * is none or it is not well-formed.
 *
 * @example
 * const m = readMerkleMetadata(await client.getFlightInfo(descriptor));
 * if (m) for await (const batch of verifyFlightStream(client.doGet(ticket), m)) use(batch);
 */
export function readMerkleMetadata(source: FlightInfo | Uint8Array): MerkleMetadata | undefined {
  const bytes = source instanceof Uint8Array ? source : source?.appMetadata;
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
  const m = (parsed as { merkle?: unknown } | null)?.merkle as { alg?: unknown; root?: unknown; leaves?: unknown; sig?: unknown; kid?: unknown } | undefined;
  if (!m || typeof m !== "object") return undefined;
  if (m.alg !== MERKLE_ALGORITHM || typeof m.root !== "string" || !HEX64.test(m.root) || !isLeafCount(m.leaves)) return undefined;
  const signed = typeof m.sig === "string" && /^[A-Za-z0-9_-]{1,200}$/.test(m.sig) && typeof m.kid === "string" && m.kid.length > 0 && m.kid.length <= 128;
  return { alg: MERKLE_ALGORITHM, root: m.root.toLowerCase(), leaves: m.leaves, ...(signed ? { signature: m.sig as string, keyId: m.kid as string } : {}) };
}
