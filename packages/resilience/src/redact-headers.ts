import type { CallHeaders } from "@blackice/flight-core";

/** What a redacted value is replaced with. */
export const REDACTED = "[REDACTED]";

/**
 * Header names whose values are never shown: credentials, signatures, secrets, sessions,
 * keys and anything close. Deliberately broad: over-redacting a harmless header costs less
 * than one leaked token.
 */
const SECRET_NAME = /auth|cookie|token|secret|sign|passw|pwd|credential|session|key|jwt|bearer|hmac|nonce|cert|private|attest|evidence|x-amz-/i;

/** Values that look like credentials whatever their header is called. */
const SECRET_VALUE = [
  /^\s*(bearer|basic|digest|hmac|token|negotiate|aws4-hmac-sha256)\s/i,
  /^eyJ[\w-]*\.[\w-]*\./, // a JWT
  /^[A-Za-z0-9+/_=-]{32,}$/, // a long opaque string: a key, a token, a signature
];

/** Longest header value shown; longer ones are cut. */
const MAX_VALUE = 200;

function redactValue(name: string, value: string | Uint8Array): string {
  // Binary headers may carry anything, including payload bytes: only their size is shown.
  if (typeof value !== "string" || name.endsWith("-bin")) {
    return `[${typeof value === "string" ? Buffer.byteLength(value) : value.byteLength} bytes]`;
  }
  if (SECRET_NAME.test(name) || SECRET_VALUE.some((re) => re.test(value))) return REDACTED;
  return value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE)}…` : value;
}

/**
 * A loggable copy of request headers: values of credential-like names (authorization,
 * cookies, signatures, tokens, keys, secrets...) and credential-like values (bearer tokens,
 * JWTs, long opaque strings) become `[REDACTED]`, binary (`-bin`) values become their size,
 * and long values are cut.
 *
 * @example
 * logger.debug({ headers: redactHeaders(call.headers) }, "call started");
 * // { authorization: "[REDACTED]", "user-agent": "grpc-python/1.66", "x-trace-bin": "[16 bytes]" }
 */
export function redactHeaders(headers: CallHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of headers) {
    const shown = values.map((v) => redactValue(name, v));
    out[name] = shown.length === 1 ? shown[0] : shown;
  }
  return out;
}
