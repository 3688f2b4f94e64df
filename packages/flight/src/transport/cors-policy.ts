import type { HttpExchange } from "./http-exchange";

/** Request headers a browser may send cross-origin (gRPC-Web's own, auth, HMAC, TTL). */
const ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "x-grpc-web",
  "x-user-agent",
  "grpc-timeout",
  "x-blackice-signature",
  "x-blackice-key-id",
  "x-blackice-timestamp",
  "x-blackice-nonce",
  "x-blackice-signature-version",
].join(", ");
/** Response headers a page may read (gRPC-Web statuses in trailers-only responses). */
const EXPOSED_HEADERS = "grpc-status, grpc-message, content-type";
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/**
 * Which web origins may call the server from a page, and the CORS headers that say so. With
 * no origins (the default) no CORS header is ever sent, so browsers keep other sites' pages
 * out; same-origin pages (the server's own `webPage`) need none.
 */
export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  /** @throws TypeError unless every origin is `*` or `http(s)://host[:port]` with no path. */
  constructor(origins: readonly string[]) {
    if (!Array.isArray(origins)) throw new TypeError("corsOrigins must be an array of origins");
    for (const o of origins) {
      if (o !== "*" && (typeof o !== "string" || !ORIGIN.test(o))) {
        throw new TypeError(`corsOrigins: ${JSON.stringify(o)} is not an origin; use "*" or "http(s)://host[:port]" with no path or trailing slash`);
      }
    }
    this.any = origins.includes("*");
    this.origins = new Set(origins.map((o) => o.toLowerCase()));
  }

  /** Whether CORS is on at all. */
  get enabled(): boolean {
    return this.any || this.origins.size > 0;
  }

  private allows(origin: string | undefined): origin is string {
    return origin !== undefined && (this.any || this.origins.has(origin.toLowerCase()));
  }

  /**
   * Adds the CORS headers the request's origin is entitled to, and answers a preflight
   * (`OPTIONS`). Returns true when the request was answered here.
   */
  apply(exchange: HttpExchange): boolean {
    const origin = typeof exchange.headers.origin === "string" ? exchange.headers.origin : undefined;
    const allowed = this.allows(origin);
    if (allowed) {
      exchange.extraHeaders["access-control-allow-origin"] = this.any ? "*" : origin;
      exchange.extraHeaders["access-control-expose-headers"] = EXPOSED_HEADERS;
    }
    if (this.enabled && !this.any) exchange.extraHeaders["vary"] = "origin";
    if (exchange.method !== "OPTIONS") return false;
    const headers: Record<string, string> = { allow: "GET, POST, OPTIONS", "content-length": "0" };
    if (allowed && exchange.headers["access-control-request-method"] !== undefined) {
      headers["access-control-allow-methods"] = "GET, POST, OPTIONS";
      headers["access-control-allow-headers"] = ALLOWED_HEADERS;
      headers["access-control-max-age"] = "600";
    }
    exchange.respond(204, headers);
    exchange.end();
    exchange.body.resume();
    return true;
  }
}
