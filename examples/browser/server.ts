// A Flight server that a browser can read: the flight page at /, Arrow over plain HTTP and
// gRPC-Web on the gRPC port, with a few telemetry flights put at start so there is something
// to look at (cpu over time per host).
//
//   npm run build
//   npx ts-node examples/browser/server.ts --port 8815
//   # then open http://127.0.0.1:8815/ ; or from another origin, add --cors-origin https://my.app
import { parseArgs } from "node:util";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { produce } from "../telemetry/producer";

/** Starts the server with the page on, and puts `batches` batches of telemetry for each host. */
export async function startBrowserExample(options: { port: number; corsOrigins?: string[]; hosts?: string[]; batches?: number }): Promise<FlightServer> {
  const server = createFlightServer(serverConfig({ addr: `127.0.0.1:${options.port}`, webPage: true, corsOrigins: options.corsOrigins ?? [] }));
  await server.start();
  await produce(`grpc+tcp://127.0.0.1:${server.port}`, options.hosts ?? ["edge-1", "edge-2"], options.batches ?? 3, 600);
  return server;
}

if (require.main === module) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8815" }, "cors-origin": { type: "string", multiple: true } } });
  startBrowserExample({ port: Number(values.port), corsOrigins: values["cors-origin"] ?? [] }).then(
    (server) => {
      process.stdout.write(`page on http://127.0.0.1:${server.port}/\n`);
      const stop = (): void => void server.shutdown({ graceMs: 2000 }).then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    },
    (err) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
