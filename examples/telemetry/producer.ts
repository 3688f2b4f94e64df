// A BlackIce telemetry producer: samples CPU/memory figures of a few hosts and puts them to a
// Flight server as Arrow record batches, one flight per host, each batch acknowledged.
//
//   npm start &                                     # a server on 127.0.0.1:8815
//   npx ts-node examples/telemetry/producer.ts --location grpc+tcp://127.0.0.1:8815 --batches 5
import { parseArgs } from "node:util";
import { Dictionary, Float64, Int32, Table, TimestampMillisecond, Utf8, vectorFromArray } from "apache-arrow";
import { FlightClient, pathDescriptor } from "@blackice/flight";

// One dictionary type for every batch: apache-arrow gives each new Dictionary type a new id,
// and an append must carry the same schema (dictionary ids included) as the stored flight.
const HOST_TYPE = new Dictionary(new Utf8(), new Int32());

/** One batch of telemetry samples for a host. */
export function telemetryBatch(host: string, rows: number, startMs: number): Table {
  const ts = Array.from({ length: rows }, (_, i) => startMs + i * 1000);
  return new Table({
    ts: vectorFromArray(ts, new TimestampMillisecond()),
    host: vectorFromArray(Array.from({ length: rows }, () => host), HOST_TYPE),
    cpu: vectorFromArray(Array.from({ length: rows }, (_, i) => (Math.sin(i / 10) + 1) * 50), new Float64()),
    memMiB: vectorFromArray(Array.from({ length: rows }, (_, i) => 2048 + (i % 128)), new Int32()),
  });
}

/**
 * Puts `batches` batches of `rows` samples for each host, under `telemetry/<host>`.
 * Returns the number of acknowledged batches.
 */
export async function produce(location: string, hosts: string[], batches: number, rows: number): Promise<number> {
  const client = new FlightClient(location);
  let acked = 0;
  try {
    for (const host of hosts) {
      for (let b = 0; b < batches; b++) {
        const table = telemetryBatch(host, rows, Date.UTC(2026, 0, 1) + b * rows * 1000);
        const { acks } = await client.putTable(pathDescriptor("telemetry", host), table, {
          appMetadata: () => Buffer.from(JSON.stringify({ host, batch: b })),
        });
        acked += acks.length;
      }
    }
  } finally {
    client.close();
  }
  return acked;
}

const USAGE = "usage: producer.ts [--location URI] [--hosts a,b,c] [--batches N] [--rows N]";

if (require.main === module) {
  let values: { location?: string; hosts?: string; batches?: string; rows?: string };
  try {
    ({ values } = parseArgs({
      options: {
        location: { type: "string", default: "grpc+tcp://127.0.0.1:8815" },
        hosts: { type: "string", default: "edge-1,edge-2,core-1" },
        batches: { type: "string", default: "3" },
        rows: { type: "string", default: "1000" },
      },
    }));
  } catch (err) {
    // A bad flag is the user's mistake: say which, not a stack trace.
    console.error(`producer: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  for (const k of ["batches", "rows"] as const) {
    if (!/^[1-9]\d*$/.test(values[k]!)) {
      console.error(`producer: --${k} must be a positive integer, got ${JSON.stringify(values[k])}\n${USAGE}`);
      process.exit(2);
    }
  }
  produce(values.location!, values.hosts!.split(","), Number(values.batches), Number(values.rows)).then(
    (n) => console.log(`put ${n} acknowledged batches`),
    (err) => {
      console.error(`producer failed: ${err.message}`);
      process.exit(1);
    },
  );
}
