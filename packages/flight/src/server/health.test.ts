import { serverConfig } from "@blackice/flight-core";
import { healthClient } from "../../../../test/helpers/raw-flight-client";
import { createFlightServer } from "./create-flight-server";

describe("grpc.health.v1.Health next to Flight", () => {
  it("reports SERVING once started, and NOT_SERVING as soon as shutdown begins", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    const health = healthClient(server.port);
    try {
      const check = (service: string) =>
        new Promise<string>((resolve, reject) => health.check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))));
      expect(await check("")).toBe("SERVING");
      expect(await check("arrow.flight.protocol.FlightService")).toBe("SERVING");
      server.setHealth("NOT_SERVING");
      expect(await check("")).toBe("NOT_SERVING");
      server.setHealth("SERVING");

      const watch = health.watch({ service: "" });
      const seen: string[] = [];
      const sawNotServing = new Promise<void>((resolve) =>
        watch.on("data", (m: { status: string }) => {
          seen.push(m.status);
          if (m.status === "NOT_SERVING") resolve();
        }),
      );
      watch.on("error", () => undefined); // the stream is cut when shutdown ends
      await new Promise((r) => setTimeout(r, 50));
      const stopping = server.shutdown({ graceMs: 200 });
      await sawNotServing;
      await stopping;
      expect(seen[0]).toBe("SERVING");
      expect(seen).toContain("NOT_SERVING");
      expect(server.serving).toBe(false);
    } finally {
      health.close();
      await server.shutdown({ graceMs: 0 });
    }
  });
});
