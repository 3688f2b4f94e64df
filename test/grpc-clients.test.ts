// Plain gRPC clients against the server's own transport: grpcio (C-core, from Python) and
// grpc-js. Deadlines, cancellation, text and -bin metadata, trailers-only errors, health.
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { defineAction, serverConfig, type CallHeaders } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { run, venvPython } from "./helpers/python";

const headersJson = (headers: CallHeaders): Buffer =>
  Buffer.from(
    JSON.stringify(Object.fromEntries([...headers].map(([k, vs]) => [k, vs.map((v) => (typeof v === "string" ? v : Buffer.from(v).toString("hex")))]))),
  );

const identity = (b: Buffer): Buffer => b;
/** A grpc-js client for one method path with raw bytes in and out. */
function rawMethod(client: grpc.Client, methodPath: string) {
  return {
    unary: (req: Buffer, md = new grpc.Metadata(), options: grpc.CallOptions = {}) =>
      new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(methodPath, identity, identity, req, md, options, (err, res) => (err ? reject(err) : resolve(res!))),
      ),
    serverStream: (req: Buffer, md = new grpc.Metadata(), options: grpc.CallOptions = {}) => client.makeServerStreamRequest(methodPath, identity, identity, req, md, options),
  };
}

const action = (type: string) => Buffer.from([0x0a, type.length, ...Buffer.from(type)]);
const FLIGHT = "/arrow.flight.protocol.FlightService/";

describe("plain gRPC clients against the transport", () => {
  let server: FlightServer;
  let client: grpc.Client;
  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      defineAction("sleep", "never answers (tests deadlines and cancellation)", () => new Promise(() => undefined)),
      defineAction("headers", "the request metadata as JSON", async (_body, call) => ({ body: headersJson(call.headers) })),
    );
    await server.start();
    client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 0 });
  });

  const doActionCodes = () => (server.stats().calls as Record<string, { byCode: Record<string, number> }>).doAction.byCode;

  it("passes test/python/test_grpcio_client.py (grpcio)", async () => {
    const result = await run(venvPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.join(__dirname, "python/test_grpcio_client.py")], {
      env: { BLACKICE_FLIGHT_TARGET: `127.0.0.1:${server.port}` },
    });
    if (result.code !== 0) throw new Error(`pytest failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    expect(result.stdout).toMatch(/6 passed/);
    // The server saw grpcio's deadline and cancellation as such.
    expect(doActionCodes().DEADLINE_EXCEEDED).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(doActionCodes().CANCELLED).toBeGreaterThanOrEqual(1);
  });

  it("grpc-js: a deadline ends the call with DEADLINE_EXCEEDED", async () => {
    const call = rawMethod(client, `${FLIGHT}DoAction`).serverStream(action("sleep"), new grpc.Metadata(), { deadline: Date.now() + 300 });
    const err = await new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve).on("data", () => undefined));
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it("grpc-js: a cancelled call is seen by the server as CANCELLED", async () => {
    const before = doActionCodes().CANCELLED ?? 0;
    const call = rawMethod(client, `${FLIGHT}DoAction`).serverStream(action("sleep"));
    call.on("error", () => undefined);
    await new Promise((r) => setTimeout(r, 50));
    call.cancel();
    const until = Date.now() + 2000;
    while ((doActionCodes().CANCELLED ?? 0) === before && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(doActionCodes().CANCELLED).toBe(before + 1);
  });

  it("grpc-js: text and -bin metadata arrive as sent", async () => {
    const md = new grpc.Metadata();
    md.add("x-text", "hello");
    md.add("x-raw-bin", Buffer.from([0, 1, 0xfe, 0xff]));
    md.add("x-raw-bin", Buffer.from([7]));
    const call = rawMethod(client, `${FLIGHT}DoAction`).serverStream(action("headers"), md);
    const messages: Buffer[] = [];
    for await (const m of call) messages.push(m as Buffer);
    const seen = JSON.parse(messages[0]!.subarray(2).toString()) as Record<string, string[]>;
    expect(seen["x-text"]).toEqual(["hello"]);
    expect(seen["x-raw-bin"]).toEqual(["0001feff", "07"]);
  });

  it("grpc-js: errors before any response keep their code and message (trailers-only)", async () => {
    await expect(rawMethod(client, `${FLIGHT}NoSuchMethod`).unary(Buffer.alloc(0))).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    const missing = Buffer.from([0x08, 0x01, 0x1a, 0x07, ...Buffer.from("missing")]);
    await expect(rawMethod(client, `${FLIGHT}GetFlightInfo`).unary(missing)).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: expect.stringContaining("missing"),
    });
  });
});
