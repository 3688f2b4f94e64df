// Serving your own data (docs/serving-your-own-data.md): a Flight server whose flights are not
// put by clients but computed by the host app, here one table of readings per sensor, made
// when asked. ListFlights, GetFlightInfo, GetSchema and DoGet are answered by the handlers of
// flightHandlers(); everything else (and any descriptor the handlers leave alone) goes to the
// server's own store, so clients can still DoPut their own flights beside them.
//
//   npm run build
//   npx ts-node examples/own-data/server.ts --port 8815
//   # then, from Python: pyarrow.flight.connect("grpc://127.0.0.1:8815").list_flights()
import { parseArgs } from "node:util";
import { tableFromArrays, tableToIPC, type Table } from "apache-arrow";
import { DescriptorType, notFound, serverConfig, type FlightDescriptor } from "@blackice/flight-core";
import { createFlightServer, describeFlight, flightHandlers, pathDescriptor, type FlightServer } from "@blackice/flight";

/** The data source: a few sensors whose readings are computed on demand. */
export const SENSORS = ["boiler", "pump", "valve"] as const;
export const ROWS = 1000;

function readings(sensor: string): Table {
  const seed = SENSORS.indexOf(sensor as (typeof SENSORS)[number]) + 1;
  return tableFromArrays({
    sensor: Array.from({ length: ROWS }, () => sensor),
    t: BigInt64Array.from({ length: ROWS }, (_, i) => BigInt(1_700_000_000_000 + i * 1000)),
    value: Float64Array.from({ length: ROWS }, (_, i) => seed * 100 + Math.sin(i / 10)),
  });
}

/** `sensors/<name>` when the descriptor names one of ours; otherwise undefined (the store's). */
function sensorOf(d: FlightDescriptor): string | undefined {
  if (d.type !== DescriptorType.PATH || d.path.length !== 2 || d.path[0] !== "sensors") return undefined;
  if (!(SENSORS as readonly string[]).includes(d.path[1]!)) throw notFound(`no sensor ${JSON.stringify(d.path[1])}`);
  return d.path[1];
}

function describe(sensor: string) {
  const table = readings(sensor);
  return describeFlight({ descriptor: pathDescriptor("sensors", sensor), schema: tableToIPC(table, "stream"), ticket: `sensor:${sensor}`, totalRecords: table.numRows });
}

/** Starts the server on `addr` (port 0 picks one). */
export async function startOwnDataServer(addr = "127.0.0.1:0"): Promise<FlightServer> {
  const server = createFlightServer(
    serverConfig({ addr }),
    flightHandlers({
      listFlights: () => SENSORS.map(describe),
      getFlightInfo: (descriptor) => {
        const sensor = sensorOf(descriptor);
        return sensor === undefined ? undefined : describe(sensor);
      },
      doGet: (ticket) => {
        const text = Buffer.from(ticket).toString("utf8");
        if (!text.startsWith("sensor:")) return undefined; // a ticket of the store
        const sensor = text.slice("sensor:".length);
        if (!(SENSORS as readonly string[]).includes(sensor)) throw notFound(`no sensor ${JSON.stringify(sensor)}`);
        return tableToIPC(readings(sensor), "stream");
      },
    }),
  );
  await server.start();
  return server;
}

if (require.main === module) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8815" } } });
  startOwnDataServer(`127.0.0.1:${values.port}`).then(
    (server) => {
      process.stdout.write(`serving ${SENSORS.length} sensors on grpc+tcp://127.0.0.1:${server.port}\n`);
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
