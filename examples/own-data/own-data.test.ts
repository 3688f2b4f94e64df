import * as path from "node:path";
import type { FlightServer } from "@blackice/flight";
import { run, venvPython } from "../../test/helpers/python";
import { ROWS, startOwnDataServer } from "./server";

// pyarrow's client (Arrow C++) is the peer: the flights come from flightHandlers(), not the store.
describe("examples/own-data: flightHandlers() over the host app's own data, read by pyarrow", () => {
  let server: FlightServer;
  beforeAll(async () => {
    server = await startOwnDataServer();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });

  it("lists, describes and serves the sensors, answers NOT_FOUND for an unknown one, and leaves other flights to the store", async () => {
    const r = await run(venvPython(), [path.join(__dirname, "own_data_client.py"), `grpc://127.0.0.1:${server.port}`], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`own_data_client.py failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    expect(JSON.parse(r.stdout)).toEqual({
      listed: ["sensors/boiler", "sensors/pump", "sensors/valve"],
      info_records: ROWS,
      info_schema: ["sensor", "t", "value"],
      rows: ROWS,
      first_sensor: "pump",
      mean_value: 200,
      schema_names: ["sensor", "t", "value"],
      missing: "NOT_FOUND",
      stored_rows: 3,
    });
  });
});
