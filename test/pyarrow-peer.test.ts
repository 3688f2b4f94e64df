import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { run, venvPython } from "./helpers/python";

// pyarrow's Flight client is Arrow C++: a real peer, not our own client.
describe("pyarrow.flight client against the server", () => {
  let server: FlightServer;

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000 }));
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });

  it("passes test/python/test_pyarrow_client.py", async () => {
    const result = await run(venvPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.join(__dirname, "python/test_pyarrow_client.py")], {
      env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${server.port}` },
    });
    if (result.code !== 0) throw new Error(`pytest failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    expect(result.stdout).toMatch(/\d+ passed/);
    expect(result.stdout).not.toMatch(/failed|error/i);
  });
});
