import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import { FlightError, StatusCode, type FlightDescriptor, checkObject, checkPattern } from "@blackice/flight-core";
import { encodeFlightDescriptor } from "./encode-flight-descriptor";
import type { MerkleMetadata } from "./read-merkle-metadata";

/** The Ed25519 key a server signs Merkle roots with: a PEM (PKCS#8) private key, as a file or a value. */
export type MerkleSigningKey = { readonly keyId?: string } & ({ readonly privateKeyPath: string } | { readonly privateKey: string | KeyObject });

/** Trusted public keys of Merkle-root signers, by key id (several at once: keys rotate). PEM (SPKI) text or KeyObjects. */
export type MerkleTrustedKeys = Readonly<Record<string, string | KeyObject>>;

const KEY_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The bytes a Merkle root signature covers (UTF-8, five lines joined by `\n`):
 *
 * ```
 * blackice-merkle-root-v1
 * <alg>                          sha256-rfc6962
 * <hex SHA-256 of the canonical FlightDescriptor encoding (encodeFlightDescriptor)>
 * <leaves, decimal>
 * <root, lower-case hex>
 * ```
 *
 * So a signature vouches for one root of one flight with one number of messages.
 *
 * @example
 * merkleRootStatement(info.flightDescriptor!, readMerkleMetadata(info)!);
 */
export function merkleRootStatement(descriptor: FlightDescriptor, m: Pick<MerkleMetadata, "alg" | "root" | "leaves">): Buffer {
  const d = createHash("sha256").update(encodeFlightDescriptor(descriptor)).digest("hex");
  return Buffer.from(["blackice-merkle-root-v1", m.alg, d, String(m.leaves), m.root.toLowerCase()].join("\n"), "utf8");
}

/** A key id for a public key when none is given: the first 16 hex characters of SHA-256 of its SPKI DER encoding. */
export function merkleKeyId(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);
}

/** Loads a signing key at build time: an Ed25519 private key, or a TypeError naming the file (never its bytes). */
export function loadMerkleSigningKey(key: MerkleSigningKey): { keyId: string; sign: (statement: Buffer) => string } {
  checkObject("merkleIntegrity", "signingKey", key, "{ privateKeyPath } or { privateKey }, with an optional keyId");
  let privateKey: KeyObject;
  const where = "privateKeyPath" in key ? `the key file ${JSON.stringify(key.privateKeyPath)}` : "signingKey.privateKey";
  try {
    if ("privateKeyPath" in key) privateKey = createPrivateKey(fs.readFileSync(key.privateKeyPath));
    else privateKey = typeof key.privateKey === "string" ? createPrivateKey(key.privateKey) : key.privateKey;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TypeError(`merkleIntegrity: cannot read ${where} as a PEM private key${code ? ` (${code})` : ""}`);
  }
  if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") throw new TypeError(`merkleIntegrity: ${where} must be an Ed25519 private key`);
  const keyId = checkPattern("merkleIntegrity", "signingKey.keyId", key.keyId ?? merkleKeyId(createPublicKey(privateKey)), KEY_ID, "1 to 128 characters of A-Z a-z 0-9 . _ -");
  return { keyId, sign: (statement) => sign(null, statement, privateKey).toString("base64url") };
}

/** Checks trusted keys once: Ed25519 public keys by key id. */
export function loadTrustedKeys(what: string, keys: MerkleTrustedKeys): Map<string, KeyObject> {
  checkObject(what, "trustedKeys", keys, "an object { keyId: public key PEM or KeyObject }");
  const out = new Map<string, KeyObject>();
  for (const [kid, k] of Object.entries(keys)) {
    let key: KeyObject;
    try {
      key = typeof k === "string" ? createPublicKey(k) : k.type === "private" ? createPublicKey(k) : k;
    } catch {
      throw new TypeError(`${what}: trusted key ${JSON.stringify(kid)} is not a PEM public key`);
    }
    if (key.asymmetricKeyType !== "ed25519") throw new TypeError(`${what}: trusted key ${JSON.stringify(kid)} must be an Ed25519 public key`);
    out.set(kid, key);
  }
  if (out.size === 0) throw new TypeError(`${what}: trustedKeys is empty`);
  return out;
}

/**
 * Checks the signature published with a Merkle summary: it must be there, by a key id of
 * `trusted`, over {@link merkleRootStatement} of `descriptor` (the flight the client asked
 * for) and the summary. Throws FlightError DATA_LOSS otherwise: a root recomputed by whoever
 * changed the data cannot carry a valid signature.
 *
 * @example
 * verifyMerkleSignature(readMerkleMetadata(info)!, descriptor, { "2026-01": pemOfServerKey });
 */
export function verifyMerkleSignature(m: MerkleMetadata, descriptor: FlightDescriptor, trusted: MerkleTrustedKeys | Map<string, KeyObject>): void {
  const keys = trusted instanceof Map ? trusted : loadTrustedKeys("verifyMerkleSignature", trusted);
  if (m.signature === undefined || m.keyId === undefined) throw new FlightError(StatusCode.DATA_LOSS, "the Merkle root is not signed");
  const key = keys.get(m.keyId);
  if (key === undefined) throw new FlightError(StatusCode.DATA_LOSS, "the Merkle root is signed by a key that is not trusted");
  const sig = Buffer.from(m.signature, "base64url");
  if (sig.length !== 64 || !verify(null, merkleRootStatement(descriptor, m), key, sig)) throw new FlightError(StatusCode.DATA_LOSS, "the Merkle root signature does not verify");
}
