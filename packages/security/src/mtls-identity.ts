import { X509Certificate } from "node:crypto";
import { FlightError, StatusCode, statsSection, type FlightMiddleware, type PeerCertificateInfo, serverParts, type ServerParts, checkBoolean, checkObject, checkPattern } from "@blackice/flight-core";
import { checkRoles } from "./check-roles";
import { kAuthenticationConfigured, kIdentity, type Identity } from "./identity-of";

/** Which part of the client certificate names the caller. */
export type MtlsSubjectSource = "cn" | "san-uri" | "san-dns" | "san-email";

/** Options of {@link mtlsIdentity}. */
export interface MtlsIdentityOptions {
  /**
   * Where the subject comes from: the subject's common name (`cn`, default), or the first
   * subjectAltName of a kind (`san-uri`, e.g. a SPIFFE id; `san-dns`; `san-email`), or a
   * function of the parsed certificate returning the subject or undefined.
   */
  from?: MtlsSubjectSource | ((cert: X509Certificate) => string | undefined);
  /** Roles per subject (`["admin"]` opens `gc` and the full `stats`). Default none. */
  roles?: Readonly<Record<string, readonly string[]>>;
  /**
   * Refuse (UNAUTHENTICATED) a call that has no identity after this middleware: no client
   * certificate, or one without the chosen name. Default false: such calls pass on, for a
   * later authentication middleware.
   */
  required?: boolean;
}

/** Reasons counted in the `mtlsIdentity` stats section. */
const REASONS = ["no-certificate", "no-name"] as const;
type Reason = (typeof REASONS)[number];
/** Identities kept per certificate fingerprint, so a certificate is parsed once, not per call. */
const MAX_CACHED = 1024;

/**
 * The subjectAltName entries of one kind. Node writes `DNS:a, URI:b, email:c`; a value with a
 * comma or quote is written as a JSON string (`URI:"a,b"`), which is read back as such.
 */
function sanValues(cert: X509Certificate, kind: "URI" | "DNS" | "email"): string[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const out: string[] = [];
  // Hand-written because Node exposes SANs only as this text; the split honours its quoting.
  const re = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] !== kind) continue;
    let v = m[2]!;
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        continue;
      }
    }
    if (v.length > 0) out.push(v);
  }
  return out;
}

/**
 * mTLS identity: the client certificate of a call (verified by the TLS handshake against the
 * server's `clientCaFile`, see `tls`) names the caller, so `authorize` policies work with
 * mutual TLS alone. The call gets `{ subject, method: "mtls", roles? }` under `kIdentity`,
 * with the subject from the certificate's common name or a subjectAltName (`from`), and the
 * roles `roles[subject]`. A call already authenticated by an earlier middleware keeps its
 * identity. Without a certificate (or the chosen name) the call passes on without an
 * identity, or, with `required: true`, is refused with UNAUTHENTICATED.
 *
 * Put it first among the authentication middleware. Revoked certificates are not checked
 * (no CRL or OCSP): keep client certificates short-lived.
 *
 * @example
 * createFlightServer(
 *   tls({ certFile, keyFile, clientCaFile }),
 *   mtlsIdentity({ from: "san-uri", roles: { "spiffe://corp/ops": ["admin"] } }),
 *   authorize(pathPrefixPolicy({ "spiffe://corp/ingest": { write: ["telemetry"] } })),
 * );
 */
export function mtlsIdentity(options: MtlsIdentityOptions = {}): ServerParts {
  const where = "mtlsIdentity";
  checkObject(where, "options", options);
  const from = typeof options.from === "function" ? options.from : (checkPattern(where, "from", options.from, /^(cn|san-uri|san-dns|san-email)$/, '"cn", "san-uri", "san-dns", "san-email" or a function', "cn") as MtlsSubjectSource);
  const roles = new Map<string, readonly string[]>();
  if (options.roles !== undefined) {
    checkObject(where, "roles", options.roles, "an object { subject: [roles] }");
    for (const [subject, r] of Object.entries(options.roles)) roles.set(subject, checkRoles(`mtlsIdentity: roles of ${JSON.stringify(subject)}`, r));
  }
  const required = checkBoolean(where, "required", options.required, false);
  const cache = new Map<string, Identity | null>();
  const rejected = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<Reason, number>;
  let accepted = 0;
  let passed = 0;

  const subjectOf = (peer: PeerCertificateInfo): string | undefined => {
    if (from === "cn") return peer.subjectCN || undefined;
    const cert = new X509Certificate(peer.raw);
    if (typeof from === "function") {
      const s = from(cert);
      return typeof s === "string" && s.length > 0 ? s : undefined;
    }
    return sanValues(cert, from === "san-uri" ? "URI" : from === "san-dns" ? "DNS" : "email")[0];
  };

  const identityOfPeer = (peer: PeerCertificateInfo): Identity | undefined => {
    const hit = cache.get(peer.fingerprint256);
    if (hit !== undefined) return hit ?? undefined;
    let subject: string | undefined;
    try {
      subject = subjectOf(peer);
    } catch {
      subject = undefined;
    }
    const r = subject === undefined ? undefined : roles.get(subject);
    const identity = subject === undefined ? undefined : Object.freeze(r ? { subject, method: "mtls", roles: r } : { subject, method: "mtls" });
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(peer.fingerprint256, identity ?? null);
    return identity;
  };

  const middleware: FlightMiddleware = (next) =>
    async function mtlsAuthenticate(call) {
      call.context.set(kAuthenticationConfigured, true);
      if (call.context.get(kIdentity) !== undefined) return next(call);
      const peer = call.peerCertificate;
      const identity = peer ? identityOfPeer(peer) : undefined;
      if (identity) {
        call.context.set(kIdentity, identity);
        accepted++;
        return next(call);
      }
      if (required) {
        rejected[peer ? "no-name" : "no-certificate"]++;
        throw new FlightError(StatusCode.UNAUTHENTICATED, "authentication failed");
      }
      passed++;
      return next(call);
    };

  const stats = statsSection("mtlsIdentity", () => ({ from: typeof from === "function" ? "custom" : from, accepted, passedOn: passed, rejected: { ...rejected }, cachedCertificates: cache.size }));
  return serverParts(middleware, stats);
}
