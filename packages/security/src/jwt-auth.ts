import * as fs from "node:fs";
import * as https from "node:https";
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from "jose";
import {
  FlightError,
  StatusCode,
  statsSection,
  type FlightMethod,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkFunction,
  checkInt,
  checkObject,
  checkString,
} from "@blackice/flight-core";
import { singleTextHeader } from "./call-headers";
import { kAuthenticationConfigured, kIdentity, type Identity, type IdentityClaims } from "./identity-of";

/** The asymmetric JWS algorithms jwtAuth can accept (never `none`, never an HMAC `HS*`). */
export const JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;
/** One of {@link JWT_ALGORITHMS}. */
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** Why a call was refused: the keys of the `jwtAuth` stats section's `rejected`. */
export const JWT_FAILURE_REASONS = [
  "missing",
  "malformed",
  "algorithm",
  "unknown-key",
  "bad-signature",
  "expired",
  "not-yet-valid",
  "wrong-issuer",
  "wrong-audience",
  "bad-claims",
  "revoked",
  "jwks-unavailable",
] as const;
/** One of {@link JWT_FAILURE_REASONS}. */
export type JwtFailureReason = (typeof JWT_FAILURE_REASONS)[number];

/** Options of {@link jwtAuth}. */
export interface JwtAuthOptions {
  /**
   * Where the verification keys are: a JWKS object, the path of a JWKS file (read once, at
   * build time), or an `https:` URL (fetched when first needed, cached for `jwksCacheMaxAgeMs`,
   * and fetched again, at most once per `jwksCooldownMs`, when a token names a key id the cached
   * set does not have: that is how signing keys rotate).
   */
  jwks: JSONWebKeySet | string | URL;
  /** The only accepted `iss` (exact match). Required. */
  issuer: string;
  /** The accepted `aud`: one value or several (a token must name at least one). Required. */
  audience: string | readonly string[];
  /** Accepted algorithms, a subset of {@link JWT_ALGORITHMS}. Default all of them. */
  algorithms?: readonly JwtAlgorithm[];
  /** Clock skew allowed on `exp` and `nbf`, in seconds (0-300). Default 30. */
  clockToleranceSec?: number;
  /** The claim holding roles (an array of strings; `["admin"]` opens `gc` and the full `stats`). Default `"roles"`. */
  rolesClaim?: string;
  /** Methods served without a token (e.g. `["listActions"]`). Default none. */
  publicMethods?: readonly FlightMethod[];
  /** Refuses a token by its `jti` (for example a revocation list); tokens without `jti` pass. */
  isRevoked?: (jti: string) => boolean;
  /** For an `https:` JWKS: trusted CA certificates (PEM), when the JWKS server's CA is not a public one. */
  jwksCa?: string | Buffer;
  /** For an `https:` JWKS: how long a fetched set is used before it is fetched again. Default 600 000 (10 min). */
  jwksCacheMaxAgeMs?: number;
  /** For an `https:` JWKS: least time between two fetches. Default 30 000. */
  jwksCooldownMs?: number;
  /** For an `https:` JWKS: fetch timeout. Default 5 000. */
  jwksTimeoutMs?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** The one message of every refusal; the reason is only counted. */
const FAILURE_MESSAGE = "authentication failed";
const BEARER = /^bearer +([A-Za-z0-9_.~+/-]+=*)$/i;
/** A compact JWS: three base64url parts. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Tokens longer than this are refused before any parsing. */
const MAX_TOKEN_CHARS = 8192;

class JwtFailure extends Error {
  constructor(readonly reason: JwtFailureReason) {
    super(reason);
  }
}

function fail(what: string): never {
  throw new TypeError(`jwtAuth: ${what}`);
}

/** Checks a key set: public asymmetric keys only (a private or symmetric key in a verifier's JWKS is a mistake). */
function checkKeySet(set: unknown, where: string): JSONWebKeySet {
  if (set === null || typeof set !== "object" || !Array.isArray((set as JSONWebKeySet).keys)) fail(`${where} is not a JWKS ({ "keys": [...] })`);
  const keys = (set as JSONWebKeySet).keys;
  if (keys.length === 0) fail(`${where} has no keys`);
  for (const k of keys) {
    if (k === null || typeof k !== "object") fail(`${where} holds a key that is not an object`);
    if (k.kty !== "RSA" && k.kty !== "EC" && k.kty !== "OKP") fail(`${where}: key type ${JSON.stringify(k.kty)} is not accepted (use RSA, EC or OKP public keys)`);
    if ("d" in k) fail(`${where} holds a private key; give the public keys only`);
  }
  return set as JSONWebKeySet;
}

function keySetFrom(options: JwtAuthOptions): { getKey: JWTVerifyGetKey; source: string } {
  const { jwks } = options;
  const remote = (url: URL): { getKey: JWTVerifyGetKey; source: string } => {
    if (url.protocol !== "https:") fail(`jwks URL must be https:, got ${url.protocol}`);
    const agent = options.jwksCa === undefined ? undefined : new https.Agent({ ca: options.jwksCa });
    const ms = (what: string, v: number | undefined, fallback: number): number => checkInt("jwtAuth", what, v, 1, 86_400_000, fallback);
    const getKey = createRemoteJWKSet(url, {
      cacheMaxAge: ms("jwksCacheMaxAgeMs", options.jwksCacheMaxAgeMs, 600_000),
      cooldownDuration: ms("jwksCooldownMs", options.jwksCooldownMs, 30_000),
      timeoutDuration: ms("jwksTimeoutMs", options.jwksTimeoutMs, 5_000),
      ...(agent ? { agent } : {}),
    });
    return { getKey, source: url.origin + url.pathname };
  };
  if (jwks instanceof URL) return remote(jwks);
  if (typeof jwks === "string") {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(jwks)) {
      let url: URL;
      try {
        url = new URL(jwks);
      } catch {
        fail(`jwks ${JSON.stringify(jwks)} is not a valid URL`);
      }
      return remote(url);
    }
    let text: string;
    try {
      text = fs.readFileSync(jwks, "utf8");
    } catch (err) {
      fail(`cannot read the JWKS file ${JSON.stringify(jwks)} (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      fail(`the JWKS file ${JSON.stringify(jwks)} is not JSON`);
    }
    return { getKey: createLocalJWKSet(checkKeySet(parsed, `the JWKS file ${JSON.stringify(jwks)}`)), source: "file" };
  }
  return { getKey: createLocalJWKSet(checkKeySet(jwks, "jwks")), source: "inline" };
}

/** The reason of a jose verification error (by its documented `code`). */
function reasonOf(err: unknown): JwtFailureReason {
  const e = err as { code?: unknown; claim?: unknown };
  switch (e?.code) {
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return e.claim === "iss" ? "wrong-issuer" : e.claim === "aud" ? "wrong-audience" : e.claim === "nbf" ? "not-yet-valid" : "bad-claims";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "algorithm";
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return "unknown-key";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "bad-signature";
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return "jwks-unavailable";
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
    case "ERR_JOSE_NOT_SUPPORTED":
      return "malformed";
    default:
      // Anything else comes from fetching a remote JWKS (network, HTTP status).
      return "jwks-unavailable";
  }
}

/** The scopes of a token: OAuth2 `scope` (space-separated) or `scp` (an array, or a string). */
function scopesOf(p: JWTPayload): string[] | undefined {
  const raw = p.scope ?? p.scp;
  if (raw === undefined) return undefined;
  const list = typeof raw === "string" ? raw.split(" ") : Array.isArray(raw) ? raw : undefined;
  if (list === undefined || !list.every((s) => typeof s === "string")) throw new JwtFailure("bad-claims");
  return [...new Set((list as string[]).filter((s) => s.length > 0))];
}

/** The identity a verified token gives: `sub`, scalar claims, roles, scopes. */
function identityOfPayload(p: JWTPayload, rolesClaim: string): Identity {
  if (typeof p.sub !== "string" || p.sub.length === 0) throw new JwtFailure("bad-claims");
  const claims: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(p)) if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") claims[k] = v;
  const rawRoles = p[rolesClaim];
  let roles: string[] | undefined;
  if (rawRoles !== undefined) {
    if (!Array.isArray(rawRoles) || !rawRoles.every((r) => typeof r === "string" && r.length > 0)) throw new JwtFailure("bad-claims");
    roles = [...new Set(rawRoles as string[])];
  }
  const scopes = scopesOf(p);
  return Object.freeze({
    subject: p.sub,
    method: "jwt",
    claims: Object.freeze(claims) as IdentityClaims,
    ...(roles ? { roles: Object.freeze(roles) } : {}),
    ...(scopes ? { scopes: Object.freeze(scopes) } : {}),
  });
}

/**
 * OAuth2/OIDC bearer authentication with JSON Web Tokens (RFC 7519), verified with `jose`.
 * Every call must carry `authorization: Bearer <JWT>`, signed by a key of the JWKS with an
 * allowed asymmetric algorithm, with `iss` equal to `issuer`, an `aud` naming `audience`,
 * an `exp` in the future and any `nbf` in the past (both within `clockToleranceSec`), and a
 * `sub`. The call then gets `{ subject: sub, method: "jwt", claims, roles?, scopes? }` under
 * `kIdentity`: `claims` are the token's string, number and boolean claims, `roles` the
 * `rolesClaim` array, `scopes` the OAuth2 `scope` (space-separated) or `scp` claim, which
 * `pathPrefixPolicy(grants, { by: "scope" })` can grant on.
 *
 * Not accepted, whatever the token says: `alg: none`, HMAC algorithms (a token "signed" with
 * the public key as an HMAC secret), keys that are not in the JWKS, a JWKS with private or
 * symmetric keys (a TypeError at build time). Every refusal is UNAUTHENTICATED with one
 * message; the reason is counted in the `jwtAuth` stats section. When a remote JWKS cannot be
 * fetched the call gets UNAVAILABLE (the credentials may be good; try again).
 *
 * A call already authenticated by an earlier middleware (e.g. `hmacAuth`, mTLS) passes as it is.
 *
 * @example
 * createFlightServer(
 *   jwtAuth({ jwks: "https://login.example.com/.well-known/jwks.json", issuer: "https://login.example.com/", audience: "flight" }),
 *   authorize(pathPrefixPolicy({ "telemetry:read": { read: ["telemetry"] } }, { by: "scope" })),
 * );
 * // pyarrow: FlightCallOptions(headers=[(b"authorization", b"Bearer " + token)])
 */
export function jwtAuth(options: JwtAuthOptions): ServerParts {
  const where = "jwtAuth";
  checkObject(where, "options", options);
  if (options.jwks === undefined) fail("jwks must be a JWKS object, a file path or an https: URL");
  const issuer = checkString(where, "issuer", options.issuer, "a non-empty string", true) as string;
  const audience = typeof options.audience === "string" ? [options.audience] : options.audience;
  if (!Array.isArray(audience) || audience.length === 0 || !audience.every((a) => typeof a === "string" && a.length > 0)) fail("audience must be a non-empty string or an array of them");
  const algorithms = options.algorithms ?? JWT_ALGORITHMS;
  if (!Array.isArray(algorithms) || algorithms.length === 0 || !algorithms.every((a) => (JWT_ALGORITHMS as readonly string[]).includes(a))) {
    fail(`algorithms must be a non-empty subset of ${JWT_ALGORITHMS.join(", ")}`);
  }
  const tolerance = checkInt(where, "clockToleranceSec", options.clockToleranceSec, 0, 300, 30);
  const rolesClaim = checkString(where, "rolesClaim", options.rolesClaim) ?? "roles";
  const isRevoked = checkFunction<(jti: string) => boolean>(where, "isRevoked", options.isRevoked, false, "a function (jti) => boolean");
  const now = checkFunction<() => number>(where, "now", options.now) ?? Date.now;
  const publicMethods = new Set<FlightMethod>(options.publicMethods ?? []);
  const { getKey, source } = keySetFrom(options);
  const verifyOptions = { issuer, audience: [...audience], algorithms: [...algorithms], clockTolerance: tolerance, requiredClaims: ["exp", "sub"] };
  const rejected = Object.fromEntries(JWT_FAILURE_REASONS.map((r) => [r, 0])) as Record<JwtFailureReason, number>;
  let accepted = 0;

  const verify = async (header: string | null | undefined): Promise<Identity> => {
    if (header === undefined) throw new JwtFailure("missing");
    const m = header === null || header.length > MAX_TOKEN_CHARS + 7 ? null : BEARER.exec(header);
    if (!m || !COMPACT_JWS.test(m[1]!)) throw new JwtFailure("malformed");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(m[1]!, getKey, { ...verifyOptions, currentDate: new Date(now()) }));
    } catch (err) {
      throw new JwtFailure(reasonOf(err));
    }
    const identity = identityOfPayload(payload, rolesClaim);
    if (isRevoked && typeof payload.jti === "string" && isRevoked(payload.jti)) throw new JwtFailure("revoked");
    return identity;
  };

  const middleware: FlightMiddleware = (next) =>
    async function jwtAuthenticate(call) {
      call.context.set(kAuthenticationConfigured, true);
      if (call.context.get(kIdentity) !== undefined) return next(call);
      const header = singleTextHeader(call.headers, "authorization");
      if (header === undefined && publicMethods.has(call.method)) return next(call);
      try {
        call.context.set(kIdentity, await verify(header));
      } catch (err) {
        if (!(err instanceof JwtFailure)) throw err;
        rejected[err.reason]++;
        if (err.reason === "jwks-unavailable") throw new FlightError(StatusCode.UNAVAILABLE, "authentication unavailable, try again");
        throw new FlightError(StatusCode.UNAUTHENTICATED, FAILURE_MESSAGE);
      }
      accepted++;
      return next(call);
    };

  const stats = statsSection("jwtAuth", () => ({
    issuer,
    audience: [...audience],
    algorithms: [...algorithms],
    jwks: source,
    accepted,
    rejected: { ...rejected },
  }));
  return serverParts(middleware, stats);
}
