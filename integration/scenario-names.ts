// The integration scenarios, named as Arrow's archery and arrow-go's
// arrow/internal/flight_integration/scenario.go name them. "" is the default scenario
// (DoPut / GetFlightInfo / DoGet of an integration JSON file).

export const DEFAULT_SCENARIO = "";

/** Every scenario this project implements in both directions. */
export const SCENARIOS = [
  DEFAULT_SCENARIO,
  "auth:basic_proto",
  "middleware",
  "ordered",
  "expiration_time:do_get",
  "expiration_time:list_actions",
  "expiration_time:cancel_flight_info",
  "expiration_time:renew_flight_endpoint",
  "location:reuse_connection",
  "poll_flight_info",
  "app_metadata_flight_info_endpoint",
  "session_options",
  "do_exchange:echo",
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

export function isScenario(name: string): name is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(name);
}

/** Exit code of a client that could not run because of a type apache-arrow JS lacks. */
export const EXIT_UNSUPPORTED = 3;
/** Exit code of a server or client that needs something the library does not have yet. */
export const EXIT_LIBRARY_GAP = 4;
/** Exit code of a usage error. */
export const EXIT_USAGE = 2;

/** Thrown when a scenario needs an API the BlackIce Flight library does not offer (yet). */
export class LibraryGapError extends Error {
  override readonly name = "LibraryGapError";
}

/**
 * Looks up an export the library SHOULD have. The scenario code calls the API as it should
 * exist; while it does not, the scenario fails with a LibraryGapError naming it, instead of
 * the whole integration program failing to compile.
 */
export function requireExport<T>(module: object, moduleName: string, name: string, why: string): T {
  const value = (module as Record<string, unknown>)[name];
  if (value === undefined) throw new LibraryGapError(`${moduleName} has no export ${name}: ${why}`);
  return value as T;
}
