// A simple local attestation scheme for the example: an attestation service (or the device
// agent) that holds the attestation secret signs a claim about a device's posture; the server
// checks the signature, the age and that the claim is about the caller, and turns the
// posture into a trust score. Real deployments would use asymmetric evidence (TPM quotes,
// cloud instance identity documents, SPIFFE SVIDs); the shape of the verifier stays the same.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { CallInfo } from "@blackice/flight-core";
import { identityOf, type AttestationVerdict } from "@blackice/flight-security";

/** What the evidence says: who (the caller's subject), which device, in which state, since when. */
export interface DeviceClaim {
  /** The subject the device acts for: the HMAC key id or the user name. */
  readonly sub: string;
  readonly device: string;
  /** A posture the verifier scores, e.g. `measured-boot`, `patched`, `unknown`. */
  readonly posture: string;
  /** When the claim was made, epoch ms. */
  readonly iat: number;
}

/** Trust score of each posture; anything else scores 0. */
export const POSTURE_SCORES: Readonly<Record<string, number>> = { "measured-boot": 1, patched: 0.7, unknown: 0.2 };

/** Why evidence was not accepted (the verdict's `reason`; never shown to the caller). */
export type EvidenceRejection = "malformed" | "bad-signature" | "stale" | "other-subject";

const EVIDENCE = /^ev1\.([A-Za-z0-9_-]{1,4000})\.([A-Za-z0-9_-]{43})$/;

/** The MAC key, separated from any other use of the same secret. */
const macKey = (secret: Uint8Array): Buffer => createHmac("sha256", secret).update("blackice-example-attestation-v1").digest();

/**
 * Signs a claim: `ev1.<base64url(JSON claim)>.<base64url(HMAC-SHA256)>`, sent by the client in
 * the `x-blackice-attestation` header.
 *
 * @example
 * const evidence = signEvidence(secret, { sub: "ingest", device: "edge-7", posture: "patched", iat: Date.now() });
 */
export function signEvidence(secret: Uint8Array, claim: DeviceClaim): string {
  const payload = Buffer.from(JSON.stringify({ sub: claim.sub, device: claim.device, posture: claim.posture, iat: claim.iat })).toString("base64url");
  const mac = createHmac("sha256", macKey(secret)).update(`ev1.${payload}`).digest("base64url");
  return `ev1.${payload}.${mac}`;
}

/** Options of {@link evidenceVerifier}. */
export interface EvidenceVerifierOptions {
  /** The attestation secret (≥ 32 bytes), shared with whatever signs the evidence. */
  readonly secret: Uint8Array;
  /** Oldest accepted claim. Default 10 minutes. */
  readonly maxAgeMs?: number;
  /** Posture → trust score. Default {@link POSTURE_SCORES}. */
  readonly scores?: Readonly<Record<string, number>>;
  readonly now?: () => number;
}

/**
 * The `verify` function for the security package's `attestation()`: checks the MAC in
 * constant time, the claim's age (at most `maxAgeMs` old, at most a minute in the future) and
 * that it names the caller (the identity an earlier middleware published, so `attestation`
 * must come after authentication). A passing claim is `{ ok: true, trustScore }`; authorization
 * decides what score an operation needs. Never throws for bad evidence.
 */
export function evidenceVerifier(options: EvidenceVerifierOptions): (evidence: string | Uint8Array, call: CallInfo) => Promise<AttestationVerdict> {
  if (!(options.secret instanceof Uint8Array) || options.secret.length < 32) throw new TypeError("evidenceVerifier: the secret must be at least 32 bytes");
  const key = macKey(options.secret);
  const maxAgeMs = options.maxAgeMs ?? 600_000;
  const scores = options.scores ?? POSTURE_SCORES;
  const now = options.now ?? Date.now;
  const refuse = (reason: EvidenceRejection): AttestationVerdict => ({ ok: false, reason });

  return async function verifyEvidence(evidence, call) {
    const m = typeof evidence === "string" ? EVIDENCE.exec(evidence) : null;
    if (!m) return refuse("malformed");
    const given = Buffer.from(m[2]!, "base64url");
    const expected = createHmac("sha256", key).update(`ev1.${m[1]}`).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse("bad-signature");
    let claim: Partial<DeviceClaim>;
    try {
      claim = JSON.parse(Buffer.from(m[1]!, "base64url").toString("utf8"));
    } catch {
      return refuse("malformed");
    }
    if (typeof claim?.sub !== "string" || typeof claim.posture !== "string" || typeof claim.iat !== "number") return refuse("malformed");
    const age = now() - claim.iat;
    if (!(age <= maxAgeMs && age >= -60_000)) return refuse("stale");
    // Evidence is about one subject: another caller cannot borrow it.
    if (identityOf(call)?.subject !== claim.sub) return refuse("other-subject");
    return { ok: true, trustScore: scores[claim.posture] ?? 0, reason: `posture ${claim.posture}` };
  };
}
