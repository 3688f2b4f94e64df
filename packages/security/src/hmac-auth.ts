import { createHmac, timingSafeEqual } from "node:crypto";
import {
  FlightError,
  StatusCode,
  statsSection,
  type FlightCall,
  type FlightData,
  type FlightHandler,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkInt,
  checkBoolean,
  checkFunction,
  checkObject,
  checkPattern,
  checkArray,
} from "@blackice/flight-core";
import { singleTextHeader } from "./call-headers";
import { encodeFlightDescriptor } from "./encode-flight-descriptor";
import {
  EMPTY_BODY_SHA256,
  HMAC_HEADERS,
  HMAC_SIGNATURE_VERSION,
  KEY_ID_PATTERN,
  NONCE_PATTERN,
  SIGNATURE_PATTERN,
  TIMESTAMP_PATTERN,
  hmacCanonicalString,
  sha256Hex,
  type HmacSignatureVersion,
} from "./hmac-canonical-string";
import { StreamDigest, hmacSeal, sealOf } from "./hmac-stream-seal";
import { checkRoles } from "./check-roles";
import { kAuthenticationConfigured, kIdentity, type Identity } from "./identity-of";
import { NonceCache } from "./nonce-cache";
import { peekFirst } from "./peek-first";
import { secretFromFile, secretFromValue, type SecretValue } from "./secret-bytes";

/**
 * One HMAC key: an id and its secret, given as a value or as a file to read at build time, and
 * optionally the roles its callers get (published as `Identity.roles`; `["admin"]` opens the
 * built-in `gc` and the full `stats`).
 */
export type HmacKey = ({ readonly keyId: string; readonly secret: SecretValue } | { readonly keyId: string; readonly secretPath: string }) & {
  readonly roles?: readonly string[];
};

/** Options of {@link hmacAuth}. */
export interface HmacAuthOptions {
  /** `false` makes hmacAuth a pass-through (no checks, no keys needed). Default true. */
  enableHMAC?: boolean;
  /** The BlackIce setting: a file holding the secret of key {@link keyId}. */
  hmacSecretPath?: string;
  /** The secret of key {@link keyId}, as a value. */
  hmacSecret?: SecretValue;
  /** Key id of `hmacSecretPath` / `hmacSecret`. Default `"default"`. */
  keyId?: string;
  /** More keys; all are accepted at once (rotation: add the new key, move clients, drop the old). */
  keys?: readonly HmacKey[];
  /** Largest accepted difference between the call's timestamp and the server clock, either way. Default 300 000 (5 min). */
  windowMs?: number;
  /** Most nonces remembered at once (each for 2 × windowMs). When full, new calls are refused. Default 100 000. */
  maxNonces?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * Let calls that carry no signature header at all through, unauthenticated by HMAC, so that
   * a later middleware (for example basicTokenAuth) can authenticate them. A call with any
   * signature header must still be valid. Default false: unsigned calls are refused.
   */
  allowUnsigned?: boolean;
  /**
   * Accept calls signed with scheme `v1`, whose DoPut and DoExchange signatures cover only the
   * first message's descriptor (a man in the middle without TLS can change every batch). For
   * clients not yet moved to `v2`. Default false: `v1` calls are refused (`unsupported-version`).
   */
  acceptV1?: boolean;
}

/** Why a call failed HMAC authentication: the keys of the `hmac` stats section's `rejected`. */
export const HMAC_FAILURE_REASONS = [
  "missing",
  "malformed",
  "unsupported-version",
  "unknown-key",
  "expired",
  "unverifiable",
  "bad-mac",
  "replayed",
  "nonce-cache-full",
  "bad-seal",
  "unsealed",
] as const;
/** One of {@link HMAC_FAILURE_REASONS}. */
export type HmacFailureReason = (typeof HMAC_FAILURE_REASONS)[number];

/** The one message of every HMAC failure; the reason is only counted. */
const FAILURE_MESSAGE = "request authentication failed";
const DEFAULT_KEY_ID = "default";

/** A loaded key: its secret and the identity its callers get. */
interface LoadedKey {
  readonly secret: Buffer;
  readonly identity: Identity;
}

function loadKeys(options: HmacAuthOptions): Map<string, LoadedKey> {
  const keys = new Map<string, LoadedKey>();
  const add = (rawKeyId: unknown, secret: () => Buffer, roles?: unknown): void => {
    const keyId = checkPattern("hmacAuth", "key id", rawKeyId, KEY_ID_PATTERN, "1 to 128 characters of A-Z a-z 0-9 . _ -");
    if (keys.has(keyId)) throw new TypeError(`hmacAuth: key id ${JSON.stringify(keyId)} is given more than once`);
    const checked = roles === undefined ? undefined : checkRoles(`hmacAuth: key ${JSON.stringify(keyId)}`, roles);
    // One frozen identity per key, shared by its calls.
    const identity: Identity = Object.freeze(checked ? { subject: keyId, method: "hmac", roles: checked } : { subject: keyId, method: "hmac" });
    keys.set(keyId, { secret: secret(), identity });
  };
  const singleId = options.keyId ?? DEFAULT_KEY_ID;
  if (options.hmacSecretPath !== undefined && options.hmacSecret !== undefined) {
    throw new TypeError("hmacAuth: give hmacSecretPath or hmacSecret, not both");
  }
  if (options.hmacSecretPath !== undefined) add(singleId, () => secretFromFile(`hmacAuth: key ${JSON.stringify(singleId)}`, options.hmacSecretPath));
  if (options.hmacSecret !== undefined) add(singleId, () => secretFromValue(`hmacAuth: key ${JSON.stringify(singleId)}`, options.hmacSecret));
  if (options.keys !== undefined) {
    for (const k of checkArray("hmacAuth", "keys", options.keys, "an array of {keyId, secret, roles?} or {keyId, secretPath, roles?}") as readonly HmacKey[]) {
      checkObject("hmacAuth", "each key", k, "{keyId, secret} or {keyId, secretPath}");
      const what = `hmacAuth: key ${JSON.stringify(k.keyId)}`;
      const hasSecret = "secret" in k && k.secret !== undefined;
      const hasPath = "secretPath" in k && k.secretPath !== undefined;
      if (hasSecret === hasPath) throw new TypeError(`${what}: give exactly one of secret and secretPath`);
      add(k.keyId, () => (hasSecret ? secretFromValue(what, (k as { secret: SecretValue }).secret) : secretFromFile(what, (k as { secretPath: string }).secretPath)), k.roles);
    }
  }
  if (keys.size === 0) throw new TypeError("hmacAuth: no key: give hmacSecretPath, hmacSecret or keys (or enableHMAC: false)");
  return keys;
}

class HmacFailure extends Error {
  constructor(readonly reason: HmacFailureReason) {
    super(reason);
  }
}

/** The parsed signature headers of a call. */
interface SignatureHeaders {
  version: HmacSignatureVersion;
  keyId: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

function readSignatureHeaders(call: FlightCall, acceptV1: boolean): SignatureHeaders {
  const version = singleTextHeader(call.headers, HMAC_HEADERS.version);
  const keyId = singleTextHeader(call.headers, HMAC_HEADERS.keyId);
  const timestamp = singleTextHeader(call.headers, HMAC_HEADERS.timestamp);
  const nonce = singleTextHeader(call.headers, HMAC_HEADERS.nonce);
  const signature = singleTextHeader(call.headers, HMAC_HEADERS.signature);
  if (version === undefined || keyId === undefined || timestamp === undefined || nonce === undefined || signature === undefined) {
    throw new HmacFailure("missing");
  }
  if (version === null || keyId === null || timestamp === null || nonce === null || signature === null) throw new HmacFailure("malformed");
  if (version !== HMAC_SIGNATURE_VERSION && !(version === "v1" && acceptV1)) throw new HmacFailure("unsupported-version");
  if (!KEY_ID_PATTERN.test(keyId) || !TIMESTAMP_PATTERN.test(timestamp) || !NONCE_PATTERN.test(nonce) || !SIGNATURE_PATTERN.test(signature)) {
    throw new HmacFailure("malformed");
  }
  return { version: version as HmacSignatureVersion, keyId, timestamp, nonce, signature };
}

/**
 * HMAC request authentication. Every call must carry five headers (see {@link HMAC_HEADERS}):
 * `x-blackice-signature-version: v1`, `x-blackice-key-id`, `x-blackice-timestamp` (epoch ms),
 * `x-blackice-nonce` (≥ 16 random bytes, base64url or hex) and `x-blackice-signature`, the
 * lower-case hex HMAC-SHA256 with the key's secret of the canonical string
 * (`hmacCanonicalString`):
 *
 * ```
 * v1\n<method path>\n<timestamp>\n<nonce>\n<key id>\n<hex SHA-256 of the body>
 * ```
 *
 * where the body is the serialized request of a unary or server-streaming call, the canonical
 * encoding of the first message's FlightDescriptor for DoPut/DoExchange
 * (`encodeFlightDescriptor`), and empty for Handshake. Clients sign with `hmacSigner`.
 *
 * Version `v2` (the default of `hmacSigner`) also seals DoPut and DoExchange: the stream
 * must end with one metadata-only message whose app_metadata is the seal
 * (`x-blackice-seal-v2:<hex>`, see `hmacSealString`) over every message before it. The
 * messages are digested as they pass, the seal message is taken off the stream, and a wrong,
 * misplaced or missing seal fails the stream before its end reaches the handler (a put is
 * aborted, nothing stored). `v1` calls (descriptor only) are accepted only with `acceptV1`.
 *
 * Checks, in order: the headers are present and well-formed, the key is known, the timestamp
 * is within `windowMs` of the server clock (either way), the MAC matches (constant-time), and
 * the nonce was not seen. Nonces are remembered for 2 × windowMs, and only after a valid MAC,
 * so forged calls cannot fill the cache; when `maxNonces` are held, new calls are refused
 * (`nonce-cache-full`) rather than old nonces forgotten. Every failure is UNAUTHENTICATED with
 * the same message; the reason is counted in the `hmac` section of the `stats` action.
 * A call that passes gets `{ subject: keyId, method: "hmac" }` under `kIdentity`, with the
 * key's `roles` when it has some (`roles: ["admin"]` opens the built-in `gc` and full `stats`).
 *
 * Secrets are read at build time, from `hmacSecretPath` (the BlackIce setting), `hmacSecret`
 * or `keys` (several at once, for rotation); a secret shorter than 32 bytes, a missing file,
 * a duplicate key id or `roles` that are not an array of non-empty strings is a TypeError then. `enableHMAC: false` gives a pass-through.
 *
 * @example
 * createFlightServer(
 *   hmacAuth({ keys: [{ keyId: "2026-01", secretPath: "/run/secrets/hmac-2026-01" }, { keyId: "2026-04", secretPath: "/run/secrets/hmac-2026-04" }] }),
 * );
 * // client: new FlightClient(uri, { signer: hmacSigner({ keyId: "2026-04", secretPath: "/run/secrets/hmac-2026-04" }) })
 */
export function hmacAuth(options: HmacAuthOptions = {}): ServerParts {
  const where = "hmacAuth";
  checkObject(where, "options", options);
  const enabled = checkBoolean(where, "enableHMAC", options.enableHMAC, true);
  if (!enabled) {
    const hmacDisabled: FlightMiddleware = (next) => next;
    return [hmacDisabled, statsSection("hmac", () => ({ enabled: false }))];
  }
  const keys = loadKeys(options);
  const windowMs = checkInt(where, "windowMs", options.windowMs, 1, Number.MAX_SAFE_INTEGER, 300_000);
  const maxNonces = checkInt(where, "maxNonces", options.maxNonces, 1, Number.MAX_SAFE_INTEGER, 100_000);
  const now = checkFunction<() => number>(where, "now", options.now) ?? Date.now;
  const allowUnsigned = checkBoolean(where, "allowUnsigned", options.allowUnsigned, false);
  const acceptV1 = checkBoolean(where, "acceptV1", options.acceptV1, false);
  let sealed = 0;
  let unsigned = 0;
  const nonces = new NonceCache(maxNonces, 2 * windowMs);
  const rejected = Object.fromEntries(HMAC_FAILURE_REASONS.map((r) => [r, 0])) as Record<HmacFailureReason, number>;
  let accepted = 0;

  /** Header checks that need no body: run before a DoPut's first message is awaited. */
  const precheck = (call: FlightCall): { headers: SignatureHeaders; key: LoadedKey } => {
    const headers = readSignatureHeaders(call, acceptV1);
    const key = keys.get(headers.keyId);
    if (key === undefined) throw new HmacFailure("unknown-key");
    const skew = Math.abs(now() - Number(headers.timestamp));
    if (!(skew <= windowMs)) throw new HmacFailure("expired");
    return { headers, key };
  };

  /** MAC and nonce, synchronously, so that no other call interleaves between check and record. */
  const verify = (call: FlightCall, headers: SignatureHeaders, secret: Buffer, bodySha256: string): void => {
    // The window is checked again: a DoPut may have waited for its first message.
    if (!(Math.abs(now() - Number(headers.timestamp)) <= windowMs)) throw new HmacFailure("expired");
    const canonical = hmacCanonicalString({ version: headers.version, path: call.path, timestamp: headers.timestamp, nonce: headers.nonce, keyId: headers.keyId, bodySha256 });
    const expected = createHmac("sha256", secret).update(canonical, "utf8").digest();
    const given = Buffer.from(headers.signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new HmacFailure("bad-mac");
    const added = nonces.add(`${headers.keyId}\n${headers.nonce}`, now());
    if (added === "replayed") throw new HmacFailure("replayed");
    if (added === "full") throw new HmacFailure("nonce-cache-full");
  };

  const fail = (err: unknown): never => {
    if (err instanceof HmacFailure) {
      rejected[err.reason]++;
      throw new FlightError(StatusCode.UNAUTHENTICATED, FAILURE_MESSAGE);
    }
    throw err;
  };

  /**
   * A v2 DoPut/DoExchange request stream, checked as it passes: each message is added to the
   * running digest and handed on at once (nothing is held); the seal message must come last
   * and verify. A wrong, misplaced or missing seal fails the stream before its end reaches the
   * handler, so a put is aborted and nothing is stored.
   */
  const sealedStream = (call: FlightCall, headers: SignatureHeaders, secret: Buffer, source: AsyncIterable<FlightData>): AsyncGenerator<FlightData> =>
    (async function* verifySeal() {
      const digest = new StreamDigest();
      let verified = false;
      for await (const m of source) {
        const seal = sealOf(m);
        if (verified) fail(new HmacFailure("bad-seal")); // anything after the seal
        if (seal === undefined) {
          digest.add(m);
          yield m;
          continue;
        }
        const expected = Buffer.from(hmacSeal(secret, { path: call.path, timestamp: headers.timestamp, nonce: headers.nonce, keyId: headers.keyId }, digest), "hex");
        const given = Buffer.from(seal, "hex");
        if (!timingSafeEqual(given, expected)) fail(new HmacFailure("bad-seal"));
        verified = true;
      }
      if (!verified) fail(new HmacFailure("unsealed"));
      sealed++;
    })();

  const middleware: FlightMiddleware = (next: FlightHandler) =>
    async function hmacAuthenticate(call) {
      call.context.set(kAuthenticationConfigured, true);
      if (allowUnsigned && Object.values(HMAC_HEADERS).every((h) => !call.headers.has(h))) {
        unsigned++;
        return next(call);
      }
      let forward: FlightCall = call;
      try {
        const { headers, key } = precheck(call);
        let bodySha256: string;
        if (call.method === "doPut" || call.method === "doExchange") {
          const { first, stream } = await peekFirst<FlightData>(call.request);
          const d = first?.flightDescriptor;
          bodySha256 = d ? sha256Hex(encodeFlightDescriptor(d)) : EMPTY_BODY_SHA256;
          forward = { ...call, request: headers.version === "v2" ? sealedStream(call, headers, key.secret, stream) : stream } as FlightCall;
        } else if (call.method === "handshake") {
          bodySha256 = EMPTY_BODY_SHA256;
        } else {
          if (!(call.rawRequest instanceof Uint8Array)) throw new HmacFailure("unverifiable");
          bodySha256 = sha256Hex(call.rawRequest);
        }
        verify(call, headers, key.secret, bodySha256);
        call.context.set(kIdentity, key.identity);
      } catch (err) {
        fail(err);
      }
      accepted++;
      return next(forward);
    };

  const stats = statsSection("hmac", () => ({
    enabled: true,
    keys: [...keys.keys()],
    windowMs,
    accepted,
    unsigned,
    acceptV1,
    sealedStreams: sealed,
    rejected: { ...rejected },
    nonceCache: { size: nonces.size, capacity: maxNonces },
  }));
  return serverParts(middleware, stats);
}
