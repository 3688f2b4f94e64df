// Fault: a client process is SIGKILLed in the middle of a DoPut. Nothing of the put may
// become visible, its memory reservation must be released, and the server keeps serving.
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { ROOT, connect, eventually, get, listPaths, makeFlight, pathDescriptor, ping, put, stats, unary, type Client, type FlightInfoLike } from "./helpers";

const MiB = 2 ** 20;

describe("a client killed mid-DoPut", () => {
  let server: FlightServer;
  let client: Client;
  const children: ReturnType<typeof spawn>[] = [];

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMemoryBytes: 1024 * MiB, maxMessageBytes: 8 * MiB, enableGC: false }));
    await server.start();
    client = connect(server.port);
    await put(client, ["kept"], makeFlight(2, 1000));
  });
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it.each([
    ["as soon as the server acknowledged the first batch", 0],
    ["after streaming for a while", 300],
  ])("leaves nothing visible and releases its reservation when killed %s", async (_when, streamMs) => {
    const name = `killed-${streamMs}`;
    const child = spawn(process.execPath, [path.join(__dirname, "fixtures/killed-put.js"), JSON.stringify({ port: server.port, name: [name] })], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    const exited = new Promise<string | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    expect(await eventually(() => out.includes("streaming\n"), 20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, streamMs));

    // The put is open: memory is reserved for it, yet nothing is visible.
    const during = await stats(client);
    expect(out).not.toMatch(/error/);
    expect(during.memory.reserved).toBeGreaterThan(0);
    await expect(unary(client, "getFlightInfo", pathDescriptor(name))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");

    // The server sees the connection go, aborts the put and releases its reservation.
    expect(await eventually(async () => (await stats(client)).memory.reserved === 0, 10_000)).toBe(true);
    await expect(unary(client, "getFlightInfo", pathDescriptor(name))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const listed = (await listPaths(client)).map((i) => i.flightDescriptor!.path.join("/"));
    expect(listed).not.toContain(name);
    const after = await stats(client);
    expect(after.flights).toBe(listed.length);
    expect(after.memory.reserved).toBe(0);

    // And serves on: reads, pings and a new put under the same name.
    expect(await ping(client)).toBe("pong");
    const kept = await unary<FlightInfoLike>(client, "getFlightInfo", pathDescriptor("kept"));
    expect((await get(client, kept.endpoint[0].ticket)).length).toBe(3);
    await put(client, [name], makeFlight(1, 10));
    expect((await unary<FlightInfoLike>(client, "getFlightInfo", pathDescriptor(name))).totalRecords).toBe(10);
  });
});
