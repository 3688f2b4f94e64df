import { createHash } from "node:crypto";

/**
 * The current signature scheme version, first line of the canonical string and value of its
 * header: `v2`, which also seals the messages of DoPut and DoExchange (see `hmacSigner`).
 * `v1` signs the first message's descriptor only; servers accept it only with `acceptV1`.
 */
export const HMAC_SIGNATURE_VERSION = "v2";
/** The versions of the scheme. */
export type HmacSignatureVersion = "v1" | "v2";

/** The request metadata (gRPC header) names of an HMAC-signed call. All values are ASCII text. */
export const HMAC_HEADERS = {
  /** Lower-case hex of HMAC-SHA256(secret, canonical string): 64 characters. */
  signature: "x-blackice-signature",
  /** The key id: 1-128 of `A-Z a-z 0-9 . _ -`. */
  keyId: "x-blackice-key-id",
  /** Milliseconds since the epoch, decimal (1-16 digits). */
  timestamp: "x-blackice-timestamp",
  /** A fresh random value per call: 22-128 of `A-Z a-z 0-9 _ -` (base64url or hex of ≥ 16 random bytes). */
  nonce: "x-blackice-nonce",
  /** `v2` (or `v1`, see {@link HMAC_SIGNATURE_VERSION}). */
  version: "x-blackice-signature-version",
} as const;

/** What a key id may look like. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** What a nonce may look like. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** What a timestamp may look like. */
export const TIMESTAMP_PATTERN = /^[0-9]{1,16}$/;
/** What a signature may look like. */
export const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;
/** What a method path may look like (printable ASCII, no spaces). */
export const PATH_PATTERN = /^\/[\x21-\x7e]{1,255}$/;

/** The fields an HMAC signature covers. */
export interface HmacSignedFields {
  /** The gRPC method path, `/arrow.flight.protocol.FlightService/DoGet`. */
  readonly path: string;
  /** The `x-blackice-timestamp` value, as sent. */
  readonly timestamp: string;
  /** The `x-blackice-nonce` value. */
  readonly nonce: string;
  /** The `x-blackice-key-id` value. */
  readonly keyId: string;
  /** Lower-case hex SHA-256 of the signed body (see {@link hmacCanonicalString}). */
  readonly bodySha256: string;
  /** The `x-blackice-signature-version` value, first line of the string. Default `v1`. */
  readonly version?: HmacSignatureVersion;
}

/**
 * The string an HMAC-SHA256 signature is computed over (UTF-8; here always ASCII): six lines
 * joined by `\n`, no trailing newline:
 *
 * ```
 * v1 or v2                    as in x-blackice-signature-version
 * <gRPC method path>          /arrow.flight.protocol.FlightService/DoGet
 * <timestamp>                 epoch ms, as in x-blackice-timestamp
 * <nonce>                     as in x-blackice-nonce
 * <key id>                    as in x-blackice-key-id
 * <body SHA-256, lower hex>
 * ```
 *
 * The body is: for unary and server-streaming calls (ListFlights, GetFlightInfo,
 * PollFlightInfo, GetSchema, DoGet, DoAction, ListActions) the serialized request message
 * exactly as sent; for DoPut and DoExchange the canonical encoding of the first message's
 * FlightDescriptor (`encodeFlightDescriptor`; empty when the first message has none); for
 * Handshake the empty string.
 *
 * @example
 * hmacCanonicalString({ path, timestamp: "1700000000000", nonce, keyId: "k1", bodySha256: sha256Hex(ticketBytes) });
 */
export function hmacCanonicalString(f: HmacSignedFields): string {
  return [f.version ?? "v1", f.path, f.timestamp, f.nonce, f.keyId, f.bodySha256].join("\n");
}

/** Lower-case hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** SHA-256 of the empty string, the body hash of a Handshake. */
export const EMPTY_BODY_SHA256 = sha256Hex(new Uint8Array(0));
