import {
  FlightError,
  StatusCode,
  checkBoolean,
  checkEnum,
  checkFunction,
  checkNumberIn,
  checkObject,
  checkPattern,
  createContextKey,
  type CallContext,
  type CallInfo,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
} from "@blackice/flight-core";
import { singleHeader } from "./call-headers";

/** What a verifier concludes about a call's attestation evidence. */
export interface AttestationVerdict {
  readonly ok: boolean;
  /** A score the host app defines (e.g. 0..1); compared with `minTrustScore` when given. */
  readonly trustScore?: number;
  /** Why, for logs and policies. Never shown to the caller. */
  readonly reason?: string;
}

/** The verdict published for a call: the verifier's, or one made here when there was no evidence. */
export interface AttestationResult extends AttestationVerdict {
  /** Whether the call carried evidence. */
  readonly evidencePresent: boolean;
}

/**
 * The attestation verdict of the call, published by {@link attestation} (undefined when the
 * middleware did not run). Policies read it through `AccessRequest.call.context`.
 *
 * @example
 * const trusted = call.context.get(kAttestation)?.ok === true;
 */
export const kAttestation = createContextKey<AttestationResult | undefined>("blackice.attestation", undefined);

/** Options of {@link attestation}. */
export interface AttestationOptions {
  /** Checks the evidence (text, or bytes for a `-bin` header). Must not throw for bad evidence: return `{ ok: false }`. */
  verify: (evidence: string | Uint8Array, call: CallInfo) => Promise<AttestationVerdict>;
  /** The request header carrying the evidence. Default `x-blackice-attestation`. */
  header?: string;
  /**
   * Where the evidence comes from: the `header`, the client certificate of a mutual-TLS call
   * (its DER bytes are passed to `verify`), or the header when present and else the
   * certificate. Default "header".
   */
  source?: "header" | "certificate" | "header-or-certificate";
  /** Refuse calls without a passing verdict (PERMISSION_DENIED) instead of only publishing it. Default false. */
  required?: boolean;
  /** With `required`, also refuse verdicts whose trustScore is missing or below this. */
  minTrustScore?: number;
}

/**
 * The attestation verdict of a call (its context or the call itself).
 *
 * @example
 * if (!attestationOf(call)?.ok) throw new FlightError(StatusCode.PERMISSION_DENIED, "untrusted device");
 */
export function attestationOf(ctx: CallContext | { readonly context: CallContext }): AttestationResult | undefined {
  const context = "context" in ctx ? ctx.context : ctx;
  return context.get(kAttestation);
}

/**
 * Device or workload attestation: reads evidence from a request header, has the host app's
 * `verify` judge it, and publishes `{ ok, trustScore?, reason?, evidencePresent }` under
 * {@link kAttestation} for later middleware and policies. A call without evidence, or whose
 * `verify` throws, gets `{ ok: false }` (reason `missing` / `verifier-error`). With
 * `required: true` a call whose verdict is not ok (or scores below `minTrustScore`) is
 * refused with PERMISSION_DENIED and one generic message.
 *
 * @example
 * createFlightServer(
 *   attestation({ verify: async (evidence) => tpm.check(evidence), required: true, minTrustScore: 0.8 }),
 * );
 */
export function attestation(options: AttestationOptions): ServerParts {
  const where = "attestation";
  checkObject(where, "options", options);
  const verify = checkFunction<AttestationOptions["verify"]>(where, "verify", options.verify, true, "a function (evidence, call) => Promise<{ ok, trustScore?, reason? }>");
  const header = checkPattern(where, "header", options.header, /^[a-z0-9][a-z0-9._-]*$/, "a lower-case metadata name", "x-blackice-attestation");
  const required = checkBoolean(where, "required", options.required, false);
  const min = options.minTrustScore === undefined ? undefined : checkNumberIn(where, "minTrustScore", options.minTrustScore, -Infinity, Infinity, "a finite number");
  const source = checkEnum(where, "source", options.source, ["header", "certificate", "header-or-certificate"] as const, "header");

  const judge = async (call: CallInfo): Promise<AttestationResult> => {
    const fromHeader = source === "certificate" ? undefined : singleHeader(call.headers, header);
    const evidence = fromHeader === undefined && source !== "header" ? call.peerCertificate?.raw : fromHeader;
    if (evidence === undefined) return { ok: false, reason: "missing", evidencePresent: false };
    if (evidence === null) return { ok: false, reason: "malformed", evidencePresent: true };
    let v: AttestationVerdict;
    try {
      v = await verify(evidence, call);
    } catch {
      return { ok: false, reason: "verifier-error", evidencePresent: true };
    }
    if (v === null || typeof v !== "object" || typeof v.ok !== "boolean") return { ok: false, reason: "verifier-error", evidencePresent: true };
    const trustScore = typeof v.trustScore === "number" && Number.isFinite(v.trustScore) ? v.trustScore : undefined;
    return { ok: v.ok, ...(trustScore !== undefined ? { trustScore } : {}), ...(typeof v.reason === "string" ? { reason: v.reason } : {}), evidencePresent: true };
  };

  const middleware: FlightMiddleware = (next) =>
    async function attest(call) {
      const result = await judge(call);
      call.context.set(kAttestation, result);
      if (required && (!result.ok || (min !== undefined && !(result.trustScore !== undefined && result.trustScore >= min)))) {
        throw new FlightError(StatusCode.PERMISSION_DENIED, "attestation required");
      }
      return next(call);
    };
  return serverParts(middleware);
}
