// The example in-process: the page, the listing and a flight over plain HTTP.
import { tableFromIPC } from "apache-arrow";
import type { FlightServer } from "@blackice/flight";
import { startBrowserExample } from "./server";

describe("examples/browser", () => {
  let server: FlightServer;
  beforeAll(async () => {
    server = await startBrowserExample({ port: 0, hosts: ["edge-1"], batches: 2 });
  });
  afterAll(() => server?.shutdown({ graceMs: 100 }));

  it("serves the page and the telemetry it put, as JSON and as an Arrow stream", async () => {
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(200);
    const list = (await (await fetch(`${base}/flights?prefix=telemetry`)).json()) as Array<{ descriptor: { path: string[] }; totalRecords: number }>;
    expect(list).toEqual([expect.objectContaining({ descriptor: { path: ["telemetry", "edge-1"] }, totalRecords: 1200 })]);
    const table = tableFromIPC(new Uint8Array(await (await fetch(`${base}/flight/telemetry/edge-1`)).arrayBuffer()));
    expect(table.numRows).toBe(1200);
    expect(table.schema.fields.map((f) => f.name)).toEqual(["ts", "host", "cpu", "memMiB"]);
  });
});
