import { createHmac, randomBytes } from "node:crypto";
import type { CallSigner, SignableCall } from "@blackice/flight-core";
import { canonicalizeFlightDescriptor } from "./encode-flight-descriptor";
import {
  EMPTY_BODY_SHA256,
  HMAC_HEADERS,
  HMAC_SIGNATURE_VERSION,
  KEY_ID_PATTERN,
  NONCE_PATTERN,
  PATH_PATTERN,
  hmacCanonicalString,
  sha256Hex,
} from "./hmac-canonical-string";
import { secretFromFile, secretFromValue, type SecretValue } from "./secret-bytes";

/** Options of {@link hmacSigner}: a key id and its secret (value or file). */
export type HmacSignerOptions = { readonly keyId: string; readonly now?: () => number } & (
  | { readonly secret: SecretValue; readonly secretPath?: undefined }
  | { readonly secretPath: string; readonly secret?: undefined }
);

/** The body hash of a call, as the server computes it (see `hmacCanonicalString`). */
function bodySha256(call: SignableCall): string {
  if (call.message !== undefined && call.descriptor !== undefined) throw new TypeError("hmacSigner: a call has a message or a descriptor, not both");
  if (call.message !== undefined) return sha256Hex(call.message);
  // The server hashes the canonical encoding of the descriptor it decoded; do the same.
  if (call.descriptor !== undefined) return sha256Hex(canonicalizeFlightDescriptor(call.descriptor));
  return EMPTY_BODY_SHA256;
}

/**
 * The client side of `hmacAuth`: a core `CallSigner` that returns the five
 * `x-blackice-*` headers for a call. It signs `message` (the serialized request of a unary
 * or server-streaming call), or `descriptor` (the serialized FlightDescriptor of a DoPut or
 * DoExchange's first message, re-encoded canonically before hashing), or an empty body
 * (Handshake). Each call gets a fresh 16-byte nonce (base64url) and the current time.
 *
 * @example
 * const signer = hmacSigner({ keyId: "2026-04", secretPath: "/run/secrets/hmac-2026-04" });
 * const headers = await signer({ path: "/arrow.flight.protocol.FlightService/DoGet", message: ticketBytes });
 * // { "x-blackice-signature-version": "v1", "x-blackice-key-id": "2026-04", ... }
 */
export function hmacSigner(options: HmacSignerOptions): CallSigner {
  if (options === null || typeof options !== "object") throw new TypeError("hmacSigner: options must be an object");
  const { keyId } = options;
  if (typeof keyId !== "string" || !KEY_ID_PATTERN.test(keyId)) throw new TypeError(`hmacSigner: key id ${JSON.stringify(keyId)} must be 1-128 characters of A-Z a-z 0-9 . _ -`);
  const hasSecret = options.secret !== undefined;
  const hasPath = options.secretPath !== undefined;
  if (hasSecret === hasPath) throw new TypeError("hmacSigner: give exactly one of secret and secretPath");
  const what = `hmacSigner: key ${JSON.stringify(keyId)}`;
  const secret = hasSecret ? secretFromValue(what, options.secret) : secretFromFile(what, options.secretPath);
  if (options.now !== undefined && typeof options.now !== "function") throw new TypeError("hmacSigner: now must be a function");
  const now = options.now ?? Date.now;

  return function signWithHmac(call: SignableCall): Record<string, string> {
    if (!call || typeof call.path !== "string" || !PATH_PATTERN.test(call.path)) throw new TypeError("hmacSigner: call.path must be a gRPC method path");
    const timestamp = String(Math.floor(now()));
    const nonce = randomBytes(16).toString("base64url");
    if (!NONCE_PATTERN.test(nonce)) throw new Error("hmacSigner: internal error: bad nonce");
    const canonical = hmacCanonicalString({ path: call.path, timestamp, nonce, keyId, bodySha256: bodySha256(call) });
    return {
      [HMAC_HEADERS.version]: HMAC_SIGNATURE_VERSION,
      [HMAC_HEADERS.keyId]: keyId,
      [HMAC_HEADERS.timestamp]: timestamp,
      [HMAC_HEADERS.nonce]: nonce,
      [HMAC_HEADERS.signature]: createHmac("sha256", secret).update(canonical, "utf8").digest("hex"),
    };
  };
}
