// BlackIce Flight integration server, the counterpart of arrow-go's
// arrow-flight-integration-server:
//
//   npm run integration:server -- --port 0 --scenario ordered
//
// Prints "Server listening on localhost:PORT" once serving; stops on SIGTERM / SIGINT.

import { createFlightServer, type FlightServer } from "@blackice/flight";
import { serverConfig } from "@blackice/flight-core";
import { parseFlags, portFlag, runMain, scenarioFlag } from "./cli-args";
import { EXIT_LIBRARY_GAP, LibraryGapError } from "./scenario-names";
import { SERVER_SCENARIOS } from "./server-scenarios";

const USAGE = "usage: integration:server [--port PORT (31337; 0 = any)] [--scenario NAME (default scenario)] [--host HOST (localhost)]";

async function main(): Promise<number | void> {
  const flags = parseFlags(process.argv.slice(2), ["port", "scenario", "host"]);
  const port = portFlag(flags, 31337);
  const scenario = scenarioFlag(flags);
  const host = flags.get("host") ?? "localhost";

  let server: FlightServer;
  try {
    const parts = SERVER_SCENARIOS[scenario]({ port: () => server.port });
    // GC off: a scenario's flights must stay until the client has read them back.
    server = createFlightServer(serverConfig({ addr: `${host}:${port}`, enableGC: false }), ...parts);
  } catch (err) {
    if (err instanceof LibraryGapError) {
      process.stderr.write(`LIBRARY GAP: scenario ${JSON.stringify(scenario)}: ${err.message}\n`);
      return EXIT_LIBRARY_GAP;
    }
    throw err;
  }
  const bound = await server.start();
  process.stdout.write(`Server listening on localhost:${bound.port}\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  await server.shutdown({ graceMs: 1000 });
}

runMain(main, USAGE);
