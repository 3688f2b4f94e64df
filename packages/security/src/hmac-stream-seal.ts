import { createHash, createHmac, type Hash } from "node:crypto";
import type { FlightData } from "@blackice/flight-core";
import { flightDataLeafHash } from "./flight-data-leaf";
import type { HmacSignedFields } from "./hmac-canonical-string";

/**
 * The app_metadata prefix of the message that closes an HMAC v2 stream; 64 lower-case hex
 * characters (the seal) follow it.
 */
export const HMAC_SEAL_PREFIX = "x-blackice-seal-v2:";
const PREFIX_BYTES = Buffer.from(HMAC_SEAL_PREFIX, "ascii");
const SEAL_BYTES = PREFIX_BYTES.length + 64;
const HEX = /^[0-9a-f]{64}$/;

/**
 * The running digest of a v2 stream: SHA-256 over the Merkle leaf hashes
 * (`flightDataLeafHash`: header, body and app_metadata, length-prefixed) of every message, in
 * order. It holds 32 bytes per message for a moment, never a message: bodies are hashed
 * where they lie.
 */
export class StreamDigest {
  private readonly hash: Hash = createHash("sha256");
  /** Messages added so far. */
  count = 0;

  add(message: Pick<FlightData, "dataHeader" | "dataBody" | "appMetadata">): void {
    this.hash.update(flightDataLeafHash(message));
    this.count++;
  }

  /** Lower-case hex of the digest; call once. */
  hex(): string {
    return this.hash.digest("hex");
  }
}

/**
 * The string an HMAC v2 seal is computed over: seven lines joined by `\n`. The first line
 * differs from every call signature's, so neither can stand for the other; the call's
 * timestamp, nonce and key id tie the seal to the headers of that one call.
 *
 * ```
 * v2-seal
 * <gRPC method path>
 * <timestamp>
 * <nonce>
 * <key id>
 * <number of messages before the seal, decimal>
 * <stream digest, lower hex>          see StreamDigest
 * ```
 *
 * @example
 * hmacSealString({ path, timestamp, nonce, keyId }, digest.count, digest.hex());
 */
export function hmacSealString(call: Omit<HmacSignedFields, "bodySha256">, messages: number, digestHex: string): string {
  return ["v2-seal", call.path, call.timestamp, call.nonce, call.keyId, String(messages), digestHex].join("\n");
}

/** The seal: lower-case hex HMAC-SHA256 of {@link hmacSealString}. */
export function hmacSeal(secret: Uint8Array, call: Omit<HmacSignedFields, "bodySha256">, digest: StreamDigest): string {
  return createHmac("sha256", secret).update(hmacSealString(call, digest.count, digest.hex()), "utf8").digest("hex");
}

/** The trailing message's app_metadata for a seal. */
export function sealMetadata(sealHex: string): Uint8Array {
  return Buffer.from(HMAC_SEAL_PREFIX + sealHex, "ascii");
}

/**
 * The seal a message carries (64 hex characters), or undefined when it is not a seal message:
 * no descriptor, no header, no body, and app_metadata = {@link HMAC_SEAL_PREFIX} + 64 hex.
 */
export function sealOf(m: FlightData): string | undefined {
  const meta = m.appMetadata;
  if (m.flightDescriptor !== undefined || m.dataHeader.length !== 0 || m.dataBody.byteLength !== 0) return undefined;
  if (meta.length !== SEAL_BYTES || !PREFIX_BYTES.equals(meta.subarray(0, PREFIX_BYTES.length))) return undefined;
  const hex = Buffer.from(meta.buffer, meta.byteOffset + PREFIX_BYTES.length, 64).toString("ascii");
  return HEX.test(hex) ? hex : undefined;
}
