// @blackice/flight-cli: the `blackice-flight` command, a server composed from every package.

// ---- for server users ----
export { main } from "./cli";
export { parseCli, usage, UsageError, CLI_FLAGS } from "./cli-options";
export type { CliFlag, CliSettings } from "./cli-options";
