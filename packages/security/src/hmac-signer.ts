import { createHmac, randomBytes } from "node:crypto";
import type { CallSigner, FlightData, SignableCall, SignedStream } from "@blackice/flight-core";
import { checkEnum, checkFunction, checkObject, checkPattern } from "@blackice/flight-core";
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
  type HmacSignatureVersion,
} from "./hmac-canonical-string";
import { StreamDigest, hmacSeal, sealMetadata } from "./hmac-stream-seal";
import { secretFromFile, secretFromValue, type SecretValue } from "./secret-bytes";

/** Options of {@link hmacSigner}: a key id and its secret (value or file). */
export type HmacSignerOptions = {
  readonly keyId: string;
  readonly now?: () => number;
  /**
   * `v2` (default) seals the messages of DoPut and DoExchange; `v1` signs only their first
   * message's descriptor, for servers older than v2 (a v2 server accepts v1 only with `acceptV1`).
   */
  readonly version?: HmacSignatureVersion;
} & (
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
 * With version `v2` (the default) it also has `signStream`, which `FlightClient` uses for
 * DoPut and DoExchange: every message sent is added to a running digest (SHA-256 over each
 * message's Merkle leaf hash, no copy), and one trailing metadata-only message closes the
 * stream with app_metadata `x-blackice-seal-v2:<hex HMAC-SHA256 of hmacSealString>`. The
 * server commits a v2 put only once that seal verifies.
 *
 * @example
 * const signer = hmacSigner({ keyId: "2026-04", secretPath: "/run/secrets/hmac-2026-04" });
 * const client = new FlightClient(uri, { signer }); // DoPut/DoExchange are sealed
 * const headers = await signer({ path: "/arrow.flight.protocol.FlightService/DoGet", message: ticketBytes });
 * // { "x-blackice-signature-version": "v2", "x-blackice-key-id": "2026-04", ... }
 */
export function hmacSigner(options: HmacSignerOptions): CallSigner {
  const where = "hmacSigner";
  checkObject(where, "options", options);
  const keyId = checkPattern(where, "key id", options.keyId, KEY_ID_PATTERN, "1 to 128 characters of A-Z a-z 0-9 . _ -");
  const hasSecret = options.secret !== undefined;
  const hasPath = options.secretPath !== undefined;
  if (hasSecret === hasPath) throw new TypeError("hmacSigner: give exactly one of secret and secretPath");
  const what = `hmacSigner: key ${JSON.stringify(keyId)}`;
  const secret = hasSecret ? secretFromValue(what, options.secret) : secretFromFile(what, options.secretPath);
  const now = checkFunction<() => number>(where, "now", options.now) ?? Date.now;
  const version = checkEnum<HmacSignatureVersion>(where, "version", options.version, ["v1", "v2"], HMAC_SIGNATURE_VERSION);

  const sign = (call: SignableCall): { headers: Record<string, string>; fields: { path: string; timestamp: string; nonce: string; keyId: string } } => {
    if (!call || typeof call.path !== "string" || !PATH_PATTERN.test(call.path)) throw new TypeError("hmacSigner: call.path must be a gRPC method path");
    const timestamp = String(Math.floor(now()));
    const nonce = randomBytes(16).toString("base64url");
    if (!NONCE_PATTERN.test(nonce)) throw new Error("hmacSigner: internal error: bad nonce");
    const fields = { path: call.path, timestamp, nonce, keyId };
    const canonical = hmacCanonicalString({ ...fields, bodySha256: bodySha256(call), version });
    const headers = {
      [HMAC_HEADERS.version]: version,
      [HMAC_HEADERS.keyId]: keyId,
      [HMAC_HEADERS.timestamp]: timestamp,
      [HMAC_HEADERS.nonce]: nonce,
      [HMAC_HEADERS.signature]: createHmac("sha256", secret).update(canonical, "utf8").digest("hex"),
    };
    return { headers, fields };
  };

  const signer: CallSigner = function signWithHmac(call: SignableCall): Record<string, string> {
    return sign(call).headers;
  };
  if (version === "v2") {
    signer.signStream = function signStreamWithHmac(call: SignableCall): SignedStream {
      const { headers, fields } = sign(call);
      const digest = new StreamDigest();
      let sealed = false;
      return {
        headers,
        sealer: {
          update(message: FlightData): void {
            if (sealed) throw new Error("hmacSigner: a message after the seal");
            digest.add(message);
          },
          seal(): Uint8Array {
            if (sealed) throw new Error("hmacSigner: the stream is sealed already");
            sealed = true;
            return sealMetadata(hmacSeal(secret, fields, digest));
          },
        },
      };
    };
  }
  return signer;
}
