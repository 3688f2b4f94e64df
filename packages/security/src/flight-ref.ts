// Internal: the JSON flight references that action bodies use, as in the built-in `delete`.
import { DescriptorType, invalidArgument, type FlightDescriptor } from "@blackice/flight-core";

/** A flight named by a descriptor or by a ticket. */
export type FlightRef = { readonly descriptor: FlightDescriptor; readonly ticket?: undefined } | { readonly ticket: Uint8Array; readonly descriptor?: undefined };

/**
 * Reads `{"path": [...]}`, `{"cmd": "<base64>"}` or `{"ticket": "<ticket text>"}`.
 * @throws FlightError INVALID_ARGUMENT for anything else.
 */
export function parseFlightRef(value: unknown, what: string): FlightRef {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalidArgument(`${what}: a flight must be a JSON object`);
  const ref = value as { path?: unknown; cmd?: unknown; ticket?: unknown };
  if (Array.isArray(ref.path)) {
    if (!ref.path.every((s) => typeof s === "string")) throw invalidArgument(`${what}: path must be an array of strings`);
    return { descriptor: { type: DescriptorType.PATH, cmd: new Uint8Array(0), path: ref.path as string[] } };
  }
  if (typeof ref.cmd === "string") return { descriptor: { type: DescriptorType.CMD, cmd: Buffer.from(ref.cmd, "base64"), path: [] } };
  if (typeof ref.ticket === "string") return { ticket: Buffer.from(ref.ticket, "utf8") };
  throw invalidArgument(`${what}: a flight must be {"path": [...]}, {"cmd": "<base64>"} or {"ticket": "<ticket text>"}`);
}

/** Parses a JSON body; INVALID_ARGUMENT when it is not JSON. */
export function parseJsonBody(body: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(body).toString("utf8"));
  } catch {
    throw invalidArgument(`${what}: the body is not valid JSON`);
  }
}
