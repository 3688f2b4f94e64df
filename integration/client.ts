// BlackIce Flight integration client, the counterpart of arrow-go's
// arrow-flight-integration-client:
//
//   npm run integration:client -- --host localhost --port 31337 --scenario ordered
//   npm run integration:client -- --host localhost --port 31337 --path generated_primitive.json
//
// Exits 0 when the scenario passes; 1 with the first difference when it fails; 3 when the
// JSON file has a type apache-arrow JS cannot build ("UNSUPPORTED: <type>: <reason>"); 4 when
// the scenario needs something the library does not offer yet ("LIBRARY GAP: ...").

import { UsageError, parseFlags, portFlag, runMain, scenarioFlag } from "./cli-args";
import { CLIENT_SCENARIOS, verifyStoredFlight } from "./client-scenarios";
import { UnsupportedTypeError } from "./json-reader";
import { EXIT_LIBRARY_GAP, EXIT_UNSUPPORTED, LibraryGapError } from "./scenario-names";

const USAGE =
  "usage: integration:client [--host HOST (localhost)] [--port PORT (31337)] [--scenario NAME (default scenario)] [--path FILE.json (default scenario)]\n" +
  "       [--verify-stored]  default scenario only: do not upload; read back what another client stored under --path and compare it with the file";

async function main(): Promise<number | void> {
  const flags = parseFlags(process.argv.slice(2), ["host", "port", "scenario", "path"], ["verify-stored"]);
  const verifyStored = flags.get("verify-stored") === "true";
  const host = flags.get("host") ?? "localhost";
  const port = portFlag(flags, 31337);
  const scenario = scenarioFlag(flags);
  const path = flags.get("path");
  if (verifyStored && scenario !== "") throw new UsageError("--verify-stored goes with the default scenario only");
  const label = scenario === "" ? `default scenario${verifyStored ? " read-back" : ""}${path ? ` (${path})` : ""}` : `scenario ${scenario}`;
  const started = Date.now();
  try {
    await (verifyStored ? verifyStoredFlight : CLIENT_SCENARIOS[scenario])({ address: `${host}:${port}`, path });
  } catch (err) {
    if (err instanceof UnsupportedTypeError) {
      process.stderr.write(`UNSUPPORTED: ${err.typeName}: ${err.reason}\n`);
      return EXIT_UNSUPPORTED;
    }
    if (err instanceof LibraryGapError) {
      process.stderr.write(`LIBRARY GAP: ${label}: ${err.message}\n`);
      return EXIT_LIBRARY_GAP;
    }
    const message = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
    process.stderr.write(`FAILED: ${label}: ${message}\n`);
    return 1;
  }
  process.stdout.write(`${label} passed in ${Date.now() - started} ms\n`);
}

runMain(main, USAGE);
