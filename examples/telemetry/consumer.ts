// A BlackIce telemetry consumer (e.g. anomaly detection): lists the telemetry flights, reads
// each one back as Arrow record batches, and reports the hosts whose CPU went over a threshold.
//
//   npx ts-node examples/telemetry/consumer.ts --location grpc+tcp://127.0.0.1:8815 --threshold 90
import { parseArgs } from "node:util";
import { FlightClient } from "@blackice/flight";

/** Per host: rows read and the highest CPU seen. */
export interface HostSummary {
  host: string;
  rows: number;
  maxCpu: number;
}

/** Reads every flight under `telemetry/` and summarises it. */
export async function consume(location: string): Promise<HostSummary[]> {
  const client = new FlightClient(location);
  const out: HostSummary[] = [];
  try {
    for await (const info of client.listFlights("telemetry")) {
      const host = info.flightDescriptor?.path[1] ?? "?";
      let rows = 0;
      let maxCpu = -Infinity;
      for await (const batch of client.doGet(info.endpoint[0].ticket!)) {
        rows += batch.numRows;
        for (const v of batch.getChild("cpu")!.toArray() as Float64Array) maxCpu = Math.max(maxCpu, v);
      }
      out.push({ host, rows, maxCpu });
    }
  } finally {
    client.close();
  }
  return out.sort((a, b) => a.host.localeCompare(b.host));
}

if (require.main === module) {
  let values: { location?: string; threshold?: string };
  try {
    ({ values } = parseArgs({ options: { location: { type: "string", default: "grpc+tcp://127.0.0.1:8815" }, threshold: { type: "string", default: "90" } } }));
  } catch (err) {
    // A bad flag is the user's mistake: say which, not a stack trace.
    console.error(`consumer: ${(err as Error).message}\nusage: consumer.ts [--location URI] [--threshold PERCENT]`);
    process.exit(2);
  }
  consume(values.location!).then(
    (hosts) => {
      for (const h of hosts) {
        const flag = h.maxCpu > Number(values.threshold) ? "  <-- over threshold" : "";
        console.log(`${h.host.padEnd(12)} ${String(h.rows).padStart(8)} rows  max cpu ${h.maxCpu.toFixed(1)}${flag}`);
      }
    },
    (err) => {
      console.error(`consumer failed: ${err.message}`);
      process.exit(1);
    },
  );
}
