import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { consume } from "./consumer";
import { produce } from "./producer";

describe("the telemetry producer and consumer examples", () => {
  let server: FlightServer;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
  });
  afterAll(() => server?.shutdown({ graceMs: 100 }));

  it("put batches that the consumer reads back whole", async () => {
    const location = `grpc+tcp://127.0.0.1:${server.port}`;
    expect(await produce(location, ["edge-1", "core-1"], 3, 500)).toBe(6);
    const hosts = await consume(location);
    expect(hosts.map((h) => [h.host, h.rows])).toEqual([
      ["core-1", 1500],
      ["edge-1", 1500],
    ]);
    expect(hosts[0].maxCpu).toBeGreaterThan(90);
    expect(hosts[0].maxCpu).toBeLessThanOrEqual(100);
  });
});
