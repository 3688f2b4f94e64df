import { invalidArgument } from "@blackice/flight-core";

/**
 * Reads ListFlights criteria as a path prefix. The expression is UTF-8 and either empty (all
 * flights), a JSON array of path segments (`["telemetry","host-1"]`, exact segments), or a
 * `/`-separated path (`telemetry/host-1`). A flight matches when its path starts with those
 * segments, segment by segment: `telemetry` matches `telemetry/cpu` but not `telemetry2`.
 */
export function parseListCriteria(expression: Uint8Array): string[] {
  const text = Buffer.from(expression).toString("utf8").trim();
  if (text === "") return [];
  if (text.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw invalidArgument("ListFlights criteria starting with '[' must be a JSON array of path segments");
    }
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === "string")) {
      throw invalidArgument("ListFlights criteria must be a JSON array of strings");
    }
    return parsed as string[];
  }
  return text.split("/").filter((s) => s.length > 0);
}
