// gRPC-Web against a real socket (HTTP/1.1, node:http): framing across chunk boundaries, the
// text mode, deadlines, and a client that goes away.
import * as http from "node:http";
import { StatusCode, defineAction, serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import { isGrpcWeb } from "./grpc-web-stream";

const FLIGHT = "/arrow.flight.protocol.FlightService";
const action = (type: string) => Buffer.from([0x0a, type.length, ...Buffer.from(type)]);
const frame = (m: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, m.length]), m]);

/** Posts `pieces` one write at a time; resolves with the HTTP status, the body and whether it ended. */
function post(port: number, method: string, contentType: string, pieces: Array<Buffer | string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: `${FLIGHT}/${method}`, headers: { "content-type": contentType, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), type: String(res.headers["content-type"]) }));
    });
    req.on("error", reject);
    (async () => {
      for (const p of pieces) {
        req.write(p);
        await new Promise((r) => setImmediate(r));
      }
      req.end();
    })().catch(reject);
  });
}

/** The trailer frame's fields (binary body). */
function trailersOf(body: Buffer): Record<string, string> {
  let pos = 0;
  while (pos < body.length) {
    const len = body.readUInt32BE(pos + 1);
    if (body[pos]! & 0x80) {
      return Object.fromEntries(
        body
          .subarray(pos + 5, pos + 5 + len)
          .toString("latin1")
          .split("\r\n")
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
      );
    }
    pos += 5 + len;
  }
  throw new Error("no trailer frame");
}

describe("gRPC-Web", () => {
  let server: FlightServer;
  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      defineAction("sleep", "never answers", (_body, call) => new Promise((_, reject) => call.signal.addEventListener("abort", () => reject(call.signal.reason)))),
    );
    await server.start();
  });
  afterAll(() => server.shutdown({ graceMs: 0 }));

  it("tells gRPC-Web content types apart", () => {
    expect(isGrpcWeb("application/grpc-web")).toBe(true);
    expect(isGrpcWeb("application/grpc-web+proto")).toBe(true);
    expect(isGrpcWeb("application/grpc-web-text")).toBe(true);
    expect(isGrpcWeb("application/grpc")).toBe(false);
    expect(isGrpcWeb(undefined)).toBe(false);
  });

  it("reads a request whose frame arrives a byte at a time", async () => {
    const bytes = frame(action("ping"));
    const out = await post(server.port, "DoAction", "application/grpc-web+proto", [...bytes].map((b) => Buffer.from([b])));
    expect(out.type).toBe("application/grpc-web+proto");
    expect(trailersOf(out.body)["grpc-status"]).toBe("0");
  });

  it("decodes grpc-web-text split inside base64 groups and answers in base64", async () => {
    const text = frame(action("ping")).toString("base64");
    const out = await post(server.port, "DoAction", "application/grpc-web-text", text.match(/.{1,3}/g)!);
    expect(out.type).toBe("application/grpc-web-text+proto");
    const decoded = Buffer.concat(out.body.toString("latin1").match(/[A-Za-z0-9+/]+={0,2}/g)!.map((s) => Buffer.from(s, "base64")));
    expect(trailersOf(decoded)["grpc-status"]).toBe("0");
  });

  it("refuses a text body that is not base64 with INVALID_ARGUMENT", async () => {
    const out = await post(server.port, "DoAction", "application/grpc-web-text", ["AAA!AAAA"]);
    const decoded = Buffer.concat(out.body.toString("latin1").match(/[A-Za-z0-9+/]+={0,2}/g)!.map((s) => Buffer.from(s, "base64")));
    expect(trailersOf(decoded)["grpc-status"]).toBe(String(StatusCode.INVALID_ARGUMENT));
  });

  it("refuses two request messages, and a request that ends inside its frame, with INVALID_ARGUMENT", async () => {
    const two = await post(server.port, "DoAction", "application/grpc-web+proto", [Buffer.concat([frame(action("ping")), frame(action("ping"))])]);
    expect(trailersOf(two.body)["grpc-status"]).toBe(String(StatusCode.INVALID_ARGUMENT));
    const cut = await post(server.port, "DoAction", "application/grpc-web+proto", [frame(action("ping")).subarray(0, 7)]);
    expect(trailersOf(cut.body)["grpc-status"]).toBe(String(StatusCode.INVALID_ARGUMENT));
  });

  it("ends a call at its grpc-timeout with DEADLINE_EXCEEDED", async () => {
    const out = await post(server.port, "DoAction", "application/grpc-web+proto", [frame(action("sleep"))], { "grpc-timeout": "200m" });
    expect(trailersOf(out.body)["grpc-status"]).toBe(String(StatusCode.DEADLINE_EXCEEDED));
  });

  it("cancels the call when the client goes away, and gives back what it held", async () => {
    await new Promise<void>((resolve) => {
      const req = http.request({ host: "127.0.0.1", port: server.port, method: "POST", path: `${FLIGHT}/DoAction`, headers: { "content-type": "application/grpc-web+proto" } });
      req.on("error", () => resolve());
      req.end(frame(action("sleep")));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    const until = Date.now() + 3000;
    while ((server.stats().transport as { openCalls: number }).openCalls > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(server.stats().transport).toMatchObject({ openCalls: 0, inFlightBytes: 0, preAuthBytes: 0 });
    const calls = server.stats().calls as Record<string, { byCode: Record<string, number> }>;
    expect(calls.doAction!.byCode.CANCELLED).toBe(1);
  });

  it("answers GET with 405 and a non-proto gRPC-Web type with 415", async () => {
    const get = await new Promise<number>((resolve, reject) =>
      http.get({ host: "127.0.0.1", port: server.port, path: `${FLIGHT}/ListActions`, headers: { "content-type": "application/grpc-web+proto" } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on("error", reject),
    );
    expect(get).toBe(405);
    expect((await post(server.port, "ListActions", "application/grpc-web+json", ["{}"])).status).toBe(415);
  });
});
