// Internal: reading request metadata.
import type { CallHeaders } from "@blackice/flight-core";

/**
 * The single value of a header: `undefined` when absent, `null` when it is present more than
 * once or empty (ambiguous: callers treat it as malformed).
 */
export function singleHeader(headers: CallHeaders, name: string): string | Uint8Array | null | undefined {
  const values = headers.get(name);
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) return null;
  const v = values[0];
  return v.length === 0 ? null : v;
}

/** The single text value of a header; bytes (a `-bin` header) count as malformed (`null`). */
export function singleTextHeader(headers: CallHeaders, name: string): string | null | undefined {
  const v = singleHeader(headers, name);
  if (v === undefined || v === null) return v;
  return typeof v === "string" ? v : null;
}
