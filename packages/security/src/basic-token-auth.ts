import { createHmac, createPrivateKey, createPublicKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import { SignJWT, jwtVerify } from "jose";
import {
  ADMIN_ROLE,
  FlightError,
  StatusCode,
  defineAction,
  hasRole,
  identityOf,
  invalidArgument,
  statsSection,
  type CallInfo,
  type FlightCall,
  type FlightHandler,
  type FlightMethod,
  type FlightMiddleware,
  type HandshakeRequest,
  type HandshakeResponse,
  serverParts,
  type ServerParts,
  checkFunction,
  checkInt,
  checkObject,
  checkPattern,
  checkString,
} from "@blackice/flight-core";
import { singleTextHeader } from "./call-headers";
import { checkRoles } from "./check-roles";
import { kAuthenticationConfigured, kIdentity, type Identity, type IdentityClaims } from "./identity-of";
import { peekFirst } from "./peek-first";
import { readProtobufFields, lastBytesField } from "./read-protobuf-fields";
import { secretFromValue, type SecretValue } from "./secret-bytes";

/** What the host app's `validate` returns for good credentials. */
export interface ValidatedUser {
  /** The user's name or id; becomes `Identity.subject`. */
  readonly subject: string;
  /** Facts carried in the token and published with the identity. They are signed, not encrypted: the client can read them. */
  readonly claims?: IdentityClaims;
  /**
   * Roles carried in the token like the claims (signed, readable by the client) and published
   * as `Identity.roles`: an array of non-empty strings. `["admin"]` opens the built-in `gc` and
   * the full `stats`.
   */
  readonly roles?: readonly string[];
  /** Ignored (the identity's method is always `"basic"`); lets an `Identity` be returned as it is. */
  readonly method?: string;
}

/** Options of {@link basicTokenAuth}. */
export interface BasicTokenAuthOptions {
  /** Checks a user name and password; resolves to the user, or undefined to refuse. */
  validate: (username: string, password: string, call: CallInfo) => Promise<ValidatedUser | undefined>;
  /** Lifetime of an issued token. Default 3 600 000 (1 hour). */
  tokenTtlMs?: number;
  /**
   * Signs tokens (≥ 32 bytes). Give the same secret to every replica that must accept the
   * same tokens. Default: 32 random bytes per process (tokens die with the process).
   */
  secret?: SecretValue;
  /** Methods served without authentication (e.g. `["listActions"]`). Handshake always is. Default none. */
  publicMethods?: readonly FlightMethod[];
  /**
   * Issue standard JWTs (RFC 7519) instead of `bi1` tokens: signed with this private key
   * (PEM PKCS#8 file or value; Ed25519 → `EdDSA`, EC P-256 → `ES256`), with `iss` = `issuer`,
   * `aud` = `audience`, `sub`, `iat`, `exp` (seconds), `jti`, and `roles`/`claims` when given.
   * Other services can verify them with the public key (`jwtAuth` with a JWKS holding it).
   */
  jwt?: {
    readonly signingKey: { readonly privateKeyPath: string } | { readonly privateKey: string | KeyObject };
    readonly issuer: string;
    readonly audience: string;
    /** The `kid` header. Default none. */
    readonly keyId?: string;
  };
  /** Most revoked token ids (`revoke-token` action) remembered at once. Default 100 000. */
  maxRevoked?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** The admin action that revokes one issued token by its `jti`: body JSON `{"jti": "..."}`. */
export const REVOKE_TOKEN_ACTION = "revoke-token";

/** Why a call was refused: the keys of the `basicTokenAuth` stats section's `rejected`. */
export const BASIC_AUTH_FAILURE_REASONS = ["missing", "malformed", "bad-credentials", "bad-token", "expired", "revoked"] as const;
type Reason = (typeof BASIC_AUTH_FAILURE_REASONS)[number];

const TOKEN_VERSION = "bi1";
const TOKEN_PATTERN = /^bi1\.([A-Za-z0-9_-]{1,6000})\.([A-Za-z0-9_-]{43})$/;
const JWT_PATTERN = /^[A-Za-z0-9_-]{1,2000}\.[A-Za-z0-9_-]{1,8000}\.[A-Za-z0-9_-]{1,400}$/;
const BEARER = /^bearer +(\S+)$/i;
/** The binary header in which Arrow's reference clients return a Handshake token. */
const LEGACY_TOKEN_HEADER = "auth-token-bin";
const BASIC = /^basic +([A-Za-z0-9+/]+={0,2})$/i;
const MAX_CREDENTIAL_BYTES = 4096;
const MAX_TTL_MS = 366 * 24 * 3600 * 1000;
const FAILURE_MESSAGE = "authentication failed";
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class AuthFailure extends Error {
  constructor(readonly reason: Reason) {
    super(reason);
  }
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Credentials of an Arrow `BasicAuth` message (field 2 username, field 3 password), or undefined. */
function basicAuthFromPayload(payload: Uint8Array): { username: string; password: string } | undefined {
  if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > 2 * MAX_CREDENTIAL_BYTES + 16) return undefined;
  let fields;
  try {
    fields = readProtobufFields(payload);
  } catch {
    return undefined;
  }
  const user = lastBytesField(fields, 2);
  if (user === undefined) return undefined;
  const username = decodeUtf8(user);
  const password = decodeUtf8(lastBytesField(fields, 3) ?? new Uint8Array(0));
  if (username === undefined || password === undefined) return undefined;
  return { username, password };
}

/** Credentials of an `authorization: Basic base64(user:pass)` header (RFC 7617), or undefined. */
function basicAuthFromHeader(value: string): { username: string; password: string } | undefined {
  const m = BASIC.exec(value);
  // Padded base64 as RFC 7617 writes it, or unpadded: arrow-go's AuthenticateBasicToken (the
  // ADBC Flight SQL driver's username/password login) encodes with RawStdEncoding. A length of
  // 4n + 1 is never base64.
  const encoded = m?.[1];
  if (encoded === undefined || (encoded.includes("=") ? encoded.length % 4 !== 0 : encoded.length % 4 === 1)) return undefined;
  const text = decodeUtf8(Buffer.from(encoded, "base64"));
  const colon = text === undefined ? -1 : text.indexOf(":");
  if (colon < 0) return undefined;
  return { username: text!.slice(0, colon), password: text!.slice(colon + 1) };
}

/** The identity of a user, with claims and roles only when there are some. */
function basicIdentity(subject: string, claims: IdentityClaims | undefined, roles: readonly string[] | undefined): Identity {
  return { subject, method: "basic", ...(claims !== undefined ? { claims } : {}), ...(roles !== undefined ? { roles } : {}) };
}

function checkClaims(claims: unknown): IdentityClaims | undefined {
  if (claims === undefined) return undefined;
  if (claims === null || typeof claims !== "object" || Array.isArray(claims)) throw new TypeError("basicTokenAuth: validate returned claims that are not an object");
  for (const v of Object.values(claims)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") throw new TypeError("basicTokenAuth: claim values must be strings, numbers or booleans");
  }
  return { ...(claims as IdentityClaims) };
}

/** Loads the JWT signing key once: Ed25519 (EdDSA) or EC P-256 (ES256); TypeError naming the file, never its bytes. */
function loadJwtOptions(o: NonNullable<BasicTokenAuthOptions["jwt"]>): { privateKey: KeyObject; publicKey: KeyObject; alg: "EdDSA" | "ES256"; issuer: string; audience: string; keyId?: string } {
  checkObject("basicTokenAuth", "jwt", o, "an object { signingKey, issuer, audience, keyId? }");
  const issuer = checkString("basicTokenAuth", "jwt.issuer", o.issuer, "a non-empty string", true) as string;
  const audience = checkString("basicTokenAuth", "jwt.audience", o.audience, "a non-empty string", true) as string;
  const keyId = o.keyId === undefined ? undefined : checkPattern("basicTokenAuth", "jwt.keyId", o.keyId, /^[A-Za-z0-9._-]{1,128}$/, "1 to 128 characters of A-Z a-z 0-9 . _ -");
  const k = o.signingKey as { privateKeyPath?: string; privateKey?: string | KeyObject } | undefined;
  const where = k && typeof k.privateKeyPath === "string" ? `the key file ${JSON.stringify(k.privateKeyPath)}` : "jwt.signingKey.privateKey";
  let privateKey: KeyObject;
  try {
    if (!k || typeof k !== "object") throw new Error("none");
    privateKey = typeof k.privateKeyPath === "string" ? createPrivateKey(fs.readFileSync(k.privateKeyPath)) : typeof k.privateKey === "string" ? createPrivateKey(k.privateKey) : (k.privateKey as KeyObject);
    if (privateKey?.type !== "private") throw new Error("not private");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TypeError(`basicTokenAuth: cannot read ${where} as a PEM private key${code ? ` (${code})` : ""}`);
  }
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  const alg = type === "ed25519" ? "EdDSA" : type === "ec" && curve === "prime256v1" ? "ES256" : undefined;
  if (!alg) throw new TypeError(`basicTokenAuth: ${where} must be an Ed25519 or EC P-256 private key`);
  return { privateKey, publicKey: createPublicKey(privateKey), alg, issuer, audience, keyId };
}

/**
 * Arrow Flight's basic → bearer token convention, as pyarrow's `authenticate_basic_token`
 * and the Arrow C++/Java clients use it.
 *
 * Handshake: credentials come from the call header `authorization: Basic base64(user:pass)`,
 * or from the first HandshakeRequest's payload as an Arrow `BasicAuth` message (field 2
 * username, field 3 password). `validate` (the host app's check) decides; on success the
 * token is sent in the response header `authorization: Bearer <token>` (what pyarrow reads)
 * and as the payload of the HandshakeResponse (one per HandshakeRequest with the header
 * form, which needs no message; one for the payload form). Every other call must carry
 * `authorization: Bearer <token>` and gets `{ subject, method: "basic", claims, roles }` under
 * `kIdentity`. A call already authenticated by an earlier middleware (e.g. `hmacAuth`) passes
 * as it is. Missing, malformed, refused or expired credentials: UNAUTHENTICATED, one message.
 *
 * Tokens are stateless and HMAC-signed: `bi1.<base64url(JSON {v, sub, iat, exp, jti, claims, roles})>.<base64url(HMAC-SHA256)>`,
 * with a key derived from `secret`; with `jwt`, standard JWTs signed with an Ed25519 or P-256
 * key instead. Either kind can be revoked one by one with the admin action `revoke-token`
 * (body `{"jti": "..."}`) until it expires; the list is in this process's memory (give each
 * replica the revocation, and a restart forgets it). Changing `secret` (or the JWT key)
 * revokes all.
 *
 * @example
 * createFlightServer(
 *   basicTokenAuth({ validate: async (user, pass) => (await users.check(user, pass) ? { subject: user, roles: users.rolesOf(user) } : undefined) }),
 * );
 * // pyarrow: client.authenticate_basic_token("alice", "s3cret") → (b"authorization", b"Bearer ...")
 */
export function basicTokenAuth(options: BasicTokenAuthOptions): ServerParts {
  const where = "basicTokenAuth";
  checkObject(where, "options", options);
  checkFunction(where, "validate", options.validate, true, "a function (username, password, call) => Promise<user | undefined>");
  const ttl = checkInt(where, "tokenTtlMs", options.tokenTtlMs, 1, MAX_TTL_MS, 3_600_000);
  const secret = options.secret === undefined ? randomBytes(32) : secretFromValue("basicTokenAuth: secret", options.secret);
  const publicMethods = new Set<FlightMethod>(options.publicMethods ?? []);
  const now = checkFunction<() => number>(where, "now", options.now) ?? Date.now;
  const validate = options.validate;
  const jwtOptions = options.jwt === undefined ? undefined : loadJwtOptions(options.jwt);
  const maxRevoked = checkInt(where, "maxRevoked", options.maxRevoked, 1, Number.MAX_SAFE_INTEGER, 100_000);
  /** Revoked jti → when it can be forgotten (every token this server issued has expired by then). */
  const revoked = new Map<string, number>();
  let revocations = 0;
  // Domain separation: the same secret may serve elsewhere without its MACs being tokens.
  const tokenKey = createHmac("sha256", secret).update("blackice-bearer-token-v1").digest();
  const rejected = Object.fromEntries(BASIC_AUTH_FAILURE_REASONS.map((r) => [r, 0])) as Record<Reason, number>;
  let issued = 0;
  let accepted = 0;

  const mac = (signed: string): Buffer => createHmac("sha256", tokenKey).update(signed, "utf8").digest();

  const issue = async (user: ValidatedUser): Promise<string> => {
    const iat = now();
    if (jwtOptions) {
      const exp = Math.floor((iat + ttl) / 1000);
      const jwt = new SignJWT({ ...(user.roles ? { roles: [...user.roles] } : {}), ...(user.claims ? { claims: { ...user.claims } } : {}) })
        .setProtectedHeader({ alg: jwtOptions.alg, typ: "JWT", ...(jwtOptions.keyId ? { kid: jwtOptions.keyId } : {}) })
        .setIssuer(jwtOptions.issuer)
        .setAudience(jwtOptions.audience)
        .setSubject(user.subject)
        .setIssuedAt(Math.floor(iat / 1000))
        .setExpirationTime(exp)
        .setJti(randomBytes(12).toString("base64url"));
      issued++;
      return jwt.sign(jwtOptions.privateKey);
    }
    const payload = {
      v: 1,
      sub: user.subject,
      iat,
      exp: iat + ttl,
      jti: randomBytes(12).toString("base64url"),
      ...(user.claims ? { claims: user.claims } : {}),
      ...(user.roles ? { roles: user.roles } : {}),
    };
    const signed = `${TOKEN_VERSION}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
    issued++;
    return `${signed}.${mac(signed).toString("base64url")}`;
  };

  const isRevoked = (jti: unknown): boolean => {
    if (typeof jti !== "string") return false;
    const until = revoked.get(jti);
    if (until === undefined) return false;
    if (until <= now()) {
      revoked.delete(jti);
      return false;
    }
    return true;
  };

  const identityFromJwt = async (token: string): Promise<Identity> => {
    if (!JWT_PATTERN.test(token)) throw new AuthFailure("malformed");
    let p: Record<string, unknown>;
    try {
      ({ payload: p } = await jwtVerify(token, jwtOptions!.publicKey, {
        issuer: jwtOptions!.issuer,
        audience: jwtOptions!.audience,
        algorithms: [jwtOptions!.alg],
        requiredClaims: ["exp", "sub", "jti"],
        currentDate: new Date(now()),
      }));
    } catch (err) {
      throw new AuthFailure((err as { code?: string }).code === "ERR_JWT_EXPIRED" ? "expired" : "bad-token");
    }
    if (typeof p.sub !== "string" || (p.roles !== undefined && !(Array.isArray(p.roles) && p.roles.every((r) => typeof r === "string" && r.length > 0)))) throw new AuthFailure("bad-token");
    if (isRevoked(p.jti)) throw new AuthFailure("revoked");
    return basicIdentity(p.sub, p.claims as IdentityClaims | undefined, p.roles as readonly string[] | undefined);
  };

  const identityFromToken = async (token: string): Promise<Identity> => {
    if (jwtOptions) return identityFromJwt(token);
    const m = TOKEN_PATTERN.exec(token);
    if (!m) throw new AuthFailure("malformed");
    const given = Buffer.from(m[2]!, "base64url");
    const expected = mac(`${TOKEN_VERSION}.${m[1]}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AuthFailure("bad-token");
    let p: { v?: unknown; sub?: unknown; exp?: unknown; jti?: unknown; claims?: unknown; roles?: unknown };
    try {
      p = JSON.parse(Buffer.from(m[1]!, "base64url").toString("utf8"));
    } catch {
      throw new AuthFailure("bad-token");
    }
    if (p.v !== 1 || typeof p.sub !== "string" || typeof p.exp !== "number") throw new AuthFailure("bad-token");
    // Signed by us, so well-formed unless the secret leaked; checked anyway, roles decide access.
    if (p.roles !== undefined && !(Array.isArray(p.roles) && p.roles.every((r) => typeof r === "string" && r.length > 0))) throw new AuthFailure("bad-token");
    if (!(now() < p.exp)) throw new AuthFailure("expired");
    if (isRevoked(p.jti)) throw new AuthFailure("revoked");
    return basicIdentity(p.sub, p.claims as IdentityClaims | undefined, p.roles as readonly string[] | undefined);
  };

  const login = async (creds: { username: string; password: string } | undefined, call: CallInfo): Promise<{ token: string; identity: Identity }> => {
    if (!creds) throw new AuthFailure("malformed");
    if (creds.username.length === 0 || Buffer.byteLength(creds.username) > MAX_CREDENTIAL_BYTES || Buffer.byteLength(creds.password) > MAX_CREDENTIAL_BYTES) {
      throw new AuthFailure("malformed");
    }
    const user = await validate(creds.username, creds.password, call);
    if (user === undefined || user === null) throw new AuthFailure("bad-credentials");
    if (typeof user !== "object" || typeof user.subject !== "string" || user.subject.length === 0) {
      throw new TypeError("basicTokenAuth: validate must resolve to { subject: string, claims?, roles? } or undefined");
    }
    const claims = checkClaims(user.claims);
    const roles = user.roles === undefined ? undefined : checkRoles("basicTokenAuth: validate", user.roles);
    return { token: await issue({ subject: user.subject, claims, roles }), identity: basicIdentity(user.subject, claims, roles) };
  };

  const grant = (call: CallInfo, token: string, identity: Identity): Uint8Array => {
    call.responseHeaders.set("authorization", `Bearer ${token}`);
    call.context.set(kIdentity, identity);
    accepted++;
    return Buffer.from(token, "utf8");
  };

  const handshake = async (call: FlightCall<"handshake">, next: FlightHandler) => {
    const header = singleTextHeader(call.headers, "authorization");
    if (header === null) throw new AuthFailure("malformed");
    if (header !== undefined && BASIC.test(header)) {
      const { token, identity } = await login(basicAuthFromHeader(header), call);
      const payload = grant(call, token, identity);
      const requests = call.request;
      return (async function* handshakeAnswers(): AsyncGenerator<HandshakeResponse> {
        for await (const r of requests) yield { protocolVersion: r.protocolVersion, payload };
      })();
    }
    if (header !== undefined && BEARER.test(header)) {
      call.context.set(kIdentity, await identityFromToken(BEARER.exec(header)![1]!));
      accepted++;
      return next(call);
    }
    if (header !== undefined) throw new AuthFailure("malformed");
    const { first, stream } = await peekFirst<HandshakeRequest>(call.request);
    const creds = first ? basicAuthFromPayload(first.payload) : undefined;
    if (creds === undefined) {
      if (call.context.get(kIdentity) !== undefined) return next({ ...call, request: stream } as FlightCall);
      throw new AuthFailure(first ? "malformed" : "missing");
    }
    const { token, identity } = await login(creds, call);
    const payload = grant(call, token, identity);
    return (async function* handshakeAnswer(): AsyncGenerator<HandshakeResponse> {
      yield { protocolVersion: first!.protocolVersion, payload };
    })();
  };

  const middleware: FlightMiddleware = (next) =>
    async function basicTokenAuthenticate(call) {
      call.context.set(kAuthenticationConfigured, true);
      try {
        if (call.method === "handshake") return await handshake(call, next);
        if (publicMethods.has(call.method) || call.context.get(kIdentity) !== undefined) return await next(call);
        const header = singleTextHeader(call.headers, "authorization");
        if (header === undefined) {
          // Arrow's C++, Java and Go clients send the Handshake token back as `auth-token-bin`.
          const legacy = call.headers.get(LEGACY_TOKEN_HEADER);
          if (!legacy || legacy.length !== 1) throw new AuthFailure(legacy ? "malformed" : "missing");
          const value = legacy[0]!;
          call.context.set(kIdentity, await identityFromToken(typeof value === "string" ? value : Buffer.from(value).toString("utf8")));
          accepted++;
          return next(call);
        }
        const m = header === null ? null : BEARER.exec(header);
        if (!m) throw new AuthFailure("malformed");
        call.context.set(kIdentity, await identityFromToken(m[1]!));
        accepted++;
      } catch (err) {
        if (err instanceof AuthFailure) {
          rejected[err.reason]++;
          throw new FlightError(StatusCode.UNAUTHENTICATED, FAILURE_MESSAGE);
        }
        throw err;
      }
      return next(call);
    };

  const revokeAction = defineAction(
    REVOKE_TOKEN_ACTION,
    'Revokes one issued token by its jti until it expires (admin role). Body: JSON {"jti": "..."}.',
    async (body, call) => {
      if (!hasRole(identityOf(call), ADMIN_ROLE)) throw new FlightError(StatusCode.PERMISSION_DENIED, `${REVOKE_TOKEN_ACTION} needs the ${ADMIN_ROLE} role`);
      let jti: unknown;
      try {
        jti = (JSON.parse(Buffer.from(body).toString("utf8")) as { jti?: unknown } | null)?.jti;
      } catch {
        jti = undefined;
      }
      if (typeof jti !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(jti)) throw invalidArgument(`${REVOKE_TOKEN_ACTION}: body must be JSON {"jti": "<token id>"}`);
      const t = now();
      for (const [k, until] of revoked) if (until <= t) revoked.delete(k);
      if (revoked.size >= maxRevoked && !revoked.has(jti)) throw new FlightError(StatusCode.RESOURCE_EXHAUSTED, `${REVOKE_TOKEN_ACTION}: ${maxRevoked} tokens are revoked already`);
      revoked.set(jti, t + ttl + 1000);
      revocations++;
      return { body: Buffer.from(JSON.stringify({ revoked: jti })) };
    },
  );

  const stats = statsSection("basicTokenAuth", () => ({ format: jwtOptions ? "jwt" : "bi1", issued, accepted, rejected: { ...rejected }, tokenTtlMs: ttl, revocations, revokedHeld: revoked.size }));
  return serverParts(middleware, revokeAction, stats);
}
