// A host app's own authentication middleware: callers send an API key in a request header,
// the server looks it up in a map of subject → key, and publishes who the caller is under the
// security package's kIdentity, where authorize() and every later middleware find it.
import { timingSafeEqual } from "node:crypto";
import { FlightError, StatusCode, serverParts, statsSection, type FlightMiddleware, type ServerParts } from "@blackice/flight-core";
import { kAuthenticationConfigured, kIdentity } from "@blackice/flight-security";

/** Options of {@link apiKeyAuth}. */
export interface ApiKeyAuthOptions {
  /**
   * subject → API key, or several keys (to rotate: add the new key, move the client, drop the
   * old). The subject becomes `Identity.subject`, what pathPrefixPolicy grants to.
   */
  keys: Readonly<Record<string, string | readonly string[]>> | ReadonlyMap<string, string | readonly string[]>;
  /** The request header carrying the key. Default `x-api-key`. */
  header?: string;
}

/** The shortest key accepted: 16 bytes (128 bits), e.g. `openssl rand -hex 16` gives 32 characters. */
export const MIN_API_KEY_BYTES = 16;

/** The one message of every refusal. Which check failed is only counted (stats section `apiKeyAuth`). */
const FAILURE_MESSAGE = "authentication failed";

/**
 * API-key authentication. Every call, Handshake included, must carry exactly one `x-api-key`
 * header whose value is one of the keys. Keys are compared with `crypto.timingSafeEqual`
 * after a length check, against every known key without stopping at the first match, so the
 * time taken does not depend on how much of a key was right or on which key matched (only
 * on whether the length was; give all keys the same length). A call that passes gets
 * `{ subject, method: "api-key" }` under `kIdentity`; any other is refused with
 * UNAUTHENTICATED and one generic message. Keys never appear in errors, logs or stats.
 *
 * Returns the middleware and its `stats` section, so it is used as
 * `createFlightServer(apiKeyAuth({ keys }), ...)`.
 *
 * @example
 * createFlightServer(
 *   apiKeyAuth({ keys: { alice: process.env.ALICE_KEY!, bob: process.env.BOB_KEY! } }),
 *   authorize(pathPrefixPolicy({ alice: ["tenants/alice"], bob: ["tenants/bob"] })),
 * );
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): ServerParts {
  if (options === null || typeof options !== "object") throw new TypeError("apiKeyAuth: options must be an object");
  const header = options.header ?? "x-api-key";
  // Metadata names reach middleware lower-cased; a -bin header would carry bytes, not text.
  if (typeof header !== "string" || !/^[a-z0-9][a-z0-9._-]*$/.test(header) || header.endsWith("-bin")) {
    throw new TypeError(`apiKeyAuth: header must be a lower-case text metadata name, got ${JSON.stringify(header)}`);
  }
  const source = options.keys instanceof Map ? [...options.keys.entries()] : Object.entries(options.keys ?? {});
  const entries: Array<{ subject: string; key: Buffer }> = [];
  for (const [subject, keyOrKeys] of source) {
    // Errors name the subject, never the key.
    if (typeof subject !== "string" || subject.length === 0) throw new TypeError("apiKeyAuth: every subject must be a non-empty string");
    const keys = Array.isArray(keyOrKeys) ? (keyOrKeys as readonly unknown[]) : [keyOrKeys];
    if (keys.length === 0) throw new TypeError(`apiKeyAuth: ${JSON.stringify(subject)} has no key`);
    for (const key of keys) {
      if (typeof key !== "string") throw new TypeError(`apiKeyAuth: the keys of ${JSON.stringify(subject)} must be strings`);
      const bytes = Buffer.from(key, "utf8");
      if (bytes.length < MIN_API_KEY_BYTES) throw new TypeError(`apiKeyAuth: a key of ${JSON.stringify(subject)} is shorter than ${MIN_API_KEY_BYTES} bytes`);
      const twin = entries.find((e) => e.key.equals(bytes));
      if (twin) throw new TypeError(`apiKeyAuth: ${twin.subject === subject ? `${JSON.stringify(subject)} has the same key twice` : `${JSON.stringify(subject)} and ${JSON.stringify(twin.subject)} have the same key`}`);
      entries.push({ subject, key: bytes });
    }
  }
  if (entries.length === 0) throw new TypeError("apiKeyAuth: keys must name at least one subject");

  const counts = { accepted: 0, missing: 0, malformed: 0, unknown: 0 };
  const refuse = (reason: "missing" | "malformed" | "unknown"): never => {
    counts[reason]++;
    throw new FlightError(StatusCode.UNAUTHENTICATED, FAILURE_MESSAGE);
  };

  /** The subject whose key equals `given`, comparing against every key. */
  const subjectOf = (given: Buffer): string | undefined => {
    let found: string | undefined;
    for (const { subject, key } of entries) {
      // timingSafeEqual throws on different lengths, hence the check; it only leaks the length.
      const same = given.length === key.length && timingSafeEqual(given, key);
      if (same && found === undefined) found = subject;
    }
    return found;
  };

  const middleware: FlightMiddleware = (next) =>
    async function apiKeyAuthenticate(call) {
      // Marks the call as one on a server with authentication, before anything can let it through.
      call.context.set(kAuthenticationConfigured, true);
      const values = call.headers.get(header);
      if (values === undefined || values.length === 0) return refuse("missing");
      // Two values would be ambiguous; bytes mean a -bin header.
      if (values.length !== 1 || typeof values[0] !== "string" || values[0].length === 0) return refuse("malformed");
      const subject = subjectOf(Buffer.from(values[0], "utf8"));
      if (subject === undefined) return refuse("unknown");
      counts.accepted++;
      call.context.set(kIdentity, { subject, method: "api-key" });
      return next(call);
    };

  const subjects = new Set(entries.map((e) => e.subject)).size;
  const stats = statsSection("apiKeyAuth", () => ({ subjects, keys: entries.length, accepted: counts.accepted, rejected: { missing: counts.missing, malformed: counts.malformed, unknown: counts.unknown } }));
  return serverParts(middleware, stats);
}
