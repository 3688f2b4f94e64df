// The transport against a raw HTTP/2 client: what gRPC's HTTP/2 protocol says, and the limits
// that are checked on a message's length prefix before its bytes are held.
import * as http2 from "node:http2";
import { FlightError, StatusCode, defineAction, serverConfig, type CallHeaders, type FlightMiddleware, type ServerPart } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import { FlightClient } from "../client/flight-client";
import { percentDecode, percentEncode } from "./grpc-metadata";
import { connect, grpcFrame, rawGrpcCall } from "./test-h2-client";

const FLIGHT = "/arrow.flight.protocol.FlightService";
const path = (p: string) => Buffer.from([0x08, 0x01, 0x1a, Buffer.byteLength(p), ...Buffer.from(p)]); // FlightDescriptor{type: PATH, path: [p]}
const action = (type: string) => Buffer.from([0x0a, type.length, ...Buffer.from(type)]);
/** A prefix declaring `length` bytes, with nothing after it. */
const prefixOnly = (length: number) => {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length, 1);
  return b;
};

async function start(...parts: ServerPart[]): Promise<FlightServer> {
  const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), ...parts);
  await server.start();
  return server;
}

const transportStats = (server: FlightServer) => server.stats().transport as { inFlightBytes: number; preAuthBytes: number; openCalls: number };

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("gRPC over HTTP/2", () => {
  let server: FlightServer;
  let seen: CallHeaders | undefined;
  const capture: FlightMiddleware = (next) =>
    async function capture(call) {
      seen = call.headers;
      return next(call);
    };
  beforeAll(async () => {
    server = await start(
      capture,
      defineAction("sleep", "never answers", () => new Promise(() => undefined)),
      defineAction("edge", "fails with spaces at both ends of its message", () => {
        throw new FlightError(StatusCode.UNAVAILABLE, " spaces at both ends ");
      }),
    );
  });
  afterAll(() => server.shutdown({ graceMs: 0 }));

  it("answers an unknown method with a trailers-only UNIMPLEMENTED", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/NoSuchMethod`, { writes: [grpcFrame(Buffer.alloc(0))] });
    expect(out.headers[":status"]).toBe(200);
    expect(out.headers["grpc-status"]).toBe(String(StatusCode.UNIMPLEMENTED));
    expect(out.trailers).toEqual({});
  });

  it("answers a non-gRPC content-type with HTTP 415", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, { headers: { "content-type": "text/plain" }, writes: [grpcFrame(Buffer.alloc(0))] });
    expect(out.headers[":status"]).toBe(415);
  });

  it("refuses an unsupported grpc-encoding with UNIMPLEMENTED and names what it accepts", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, { headers: { "grpc-encoding": "gzip" }, writes: [grpcFrame(Buffer.alloc(0), 1)] });
    expect(out.status).toBe(StatusCode.UNIMPLEMENTED);
    expect(out.headers["grpc-accept-encoding"]).toBe("identity");
  });

  it("refuses a compressed message under identity encoding with INTERNAL, as the protocol says", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, { writes: [grpcFrame(Buffer.alloc(0), 1)] });
    expect(out.status).toBe(StatusCode.INTERNAL);
  });

  it("serves a valid call with headers, messages and trailers", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, { writes: [grpcFrame(Buffer.alloc(0))] });
    expect(out.headers["content-type"]).toBe("application/grpc");
    expect(out.trailers["grpc-status"]).toBe("0");
    expect(out.data.length).toBeGreaterThan(5);
  });

  it("percent-encodes grpc-message", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/GetFlightInfo`, { writes: [grpcFrame(path("é%"))] });
    expect(out.status).toBe(StatusCode.NOT_FOUND);
    const raw = String(out.headers["grpc-message"] ?? out.trailers["grpc-message"]);
    expect(raw).toContain("%C3%A9%25");
    expect(out.message).toContain('"é%"');
  });

  it("percent-encodes a space at either end of grpc-message, so that a grpc-js client gets the message whole", async () => {
    expect(percentEncode(" a b ")).toBe("%20a b%20");
    expect(percentDecode(percentEncode(" a b "))).toBe(" a b ");
    // A message ending in a space (grpc-js's own error texts can: "... Resolution note: ")
    // reached a grpc-js client as an empty message before.
    const out = await rawGrpcCall(server.port, `${FLIGHT}/DoAction`, { writes: [grpcFrame(action("edge"))] });
    expect(String(out.headers["grpc-message"] ?? out.trailers["grpc-message"])).toBe("%20spaces at both ends%20");
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    try {
      await expect(client.doAction("edge")).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE, message: " spaces at both ends " });
    } finally {
      client.close();
    }
  });

  it("decodes -bin metadata (padded or not, several values in one header) and keeps repeated text values apart", async () => {
    await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, {
      headers: { "x-data-bin": "AAEC/w,AQ==", "x-text": ["a", "b"] },
      writes: [grpcFrame(Buffer.alloc(0))],
    });
    expect(seen!.get("x-data-bin")!.map((v) => Buffer.from(v as Uint8Array).toString("hex"))).toEqual(["000102ff", "01"]);
    expect(seen!.get("x-text")).toEqual(["a", "b"]);
    expect(seen!.has("content-type")).toBe(false);
    expect(seen!.has(":path")).toBe(false);
  });

  it("ends a call at its grpc-timeout with DEADLINE_EXCEEDED, even if the handler never answers", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/DoAction`, { headers: { "grpc-timeout": "200m" }, writes: [grpcFrame(action("sleep"))] });
    expect(out.status).toBe(StatusCode.DEADLINE_EXCEEDED);
    expect(out.elapsedMs).toBeLessThan(2000);
  });

  it("refuses a malformed grpc-timeout", async () => {
    const out = await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, { headers: { "grpc-timeout": "soon" }, writes: [grpcFrame(Buffer.alloc(0))] });
    expect(out.status).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("refuses a unary call with two request messages, or a stream that ends inside a message", async () => {
    const two = await rawGrpcCall(server.port, `${FLIGHT}/GetFlightInfo`, { writes: [grpcFrame(path("a")), grpcFrame(path("b"))] });
    expect(two.status).toBe(StatusCode.INVALID_ARGUMENT);
    const cut = await rawGrpcCall(server.port, `${FLIGHT}/DoPut`, { writes: [grpcFrame(Buffer.alloc(100)).subarray(0, 50)] });
    expect(cut.status).toBe(StatusCode.INVALID_ARGUMENT);
  });
});

describe("limits checked on the length prefix, before bytes are held", () => {
  it("refuses a declared message over the method's limit at once, before its bytes arrive", async () => {
    const server = await start();
    try {
      // A 100 MiB GetFlightInfo descriptor: only the prefix is sent, the stream stays open.
      const out = await rawGrpcCall(server.port, `${FLIGHT}/GetFlightInfo`, { writes: [prefixOnly(100 * 2 ** 20)], end: false });
      expect(out.status).toBe(StatusCode.RESOURCE_EXHAUSTED);
      expect(out.message).toMatch(/over the limit of 65536 bytes/);
      expect(out.statusMs).toBeLessThan(500);
      await eventually(() => transportStats(server).inFlightBytes === 0);
    } finally {
      await server.shutdown({ graceMs: 0 });
    }
  });

  it("limits a call's first message (read before any middleware accepted the call) to maxFirstMessageBytes", async () => {
    const server = await start();
    try {
      const out = await rawGrpcCall(server.port, `${FLIGHT}/DoPut`, { writes: [prefixOnly(2 * 2 ** 20)], end: false });
      expect(out.status).toBe(StatusCode.RESOURCE_EXHAUSTED);
      expect(out.message).toMatch(/first message of 2097152 bytes is over the limit of 1048576 bytes/);
    } finally {
      await server.shutdown({ graceMs: 0 });
    }
  });

  it("refuses a message that does not fit the server-wide pre-auth budget, and gives reservations back when calls end", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMessageBytes: 4 * 2 ** 20, maxFirstMessageBytes: 4 * 2 ** 20, maxPreAuthBytes: 8 * 2 ** 20 }));
    await server.start();
    const session = connect(server.port);
    try {
      // Two calls each declare 4 MiB and send a little of it: the budget is full.
      const held = [0, 1].map(() => {
        const req = session.request({ ":method": "POST", ":path": `${FLIGHT}/DoPut`, "content-type": "application/grpc" });
        req.on("error", () => undefined);
        req.write(Buffer.concat([prefixOnly(4 * 2 ** 20), Buffer.alloc(1000)]));
        return req;
      });
      await eventually(() => transportStats(server).preAuthBytes === 8 * 2 ** 20);
      const third = await rawGrpcCall(server.port, `${FLIGHT}/DoPut`, { writes: [prefixOnly(4 * 2 ** 20)], end: false });
      expect(third.status).toBe(StatusCode.RESOURCE_EXHAUSTED);
      expect(third.message).toMatch(/too many new calls/);
      for (const req of held) req.close(http2.constants.NGHTTP2_CANCEL);
      await eventually(() => transportStats(server).preAuthBytes === 0 && transportStats(server).inFlightBytes === 0);
    } finally {
      session.destroy();
      await server.shutdown({ graceMs: 0 });
    }
  });

  it("ends a request stream that stalls half-way after callIdleTimeoutMs and releases its reservation", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", callIdleTimeoutMs: 300 }));
    await server.start();
    try {
      const out = await rawGrpcCall(server.port, `${FLIGHT}/DoPut`, { writes: [Buffer.concat([prefixOnly(1000), Buffer.alloc(400)])], end: false });
      expect(out.status).toBe(StatusCode.DEADLINE_EXCEEDED);
      expect(out.message).toMatch(/idle limit is 300 ms/);
      expect(out.elapsedMs).toBeGreaterThanOrEqual(250);
      await eventually(() => transportStats(server).inFlightBytes === 0 && transportStats(server).openCalls === 0);
    } finally {
      await server.shutdown({ graceMs: 0 });
    }
  });
});

describe("connections", () => {
  it("sends GOAWAY ENHANCE_YOUR_CALM to a client that floods pings", async () => {
    const server = await start();
    const session = connect(server.port);
    try {
      const goaway = new Promise<number>((resolve) => session.on("goaway", (code: number) => resolve(code)));
      await new Promise<void>((r) => session.once("connect", () => r()));
      for (let i = 0; i < 10; i++) session.ping(() => undefined);
      expect(await goaway).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    } finally {
      session.destroy();
      await server.shutdown({ graceMs: 0 });
    }
  });

  it("closes a connection idle for maxConnectionIdleMs with GOAWAY", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxConnectionIdleMs: 200 }));
    await server.start();
    const session = connect(server.port);
    try {
      const goaway = new Promise<number>((resolve) => session.on("goaway", (code: number) => resolve(code)));
      await rawGrpcCall(server.port, `${FLIGHT}/ListActions`, { session, writes: [grpcFrame(Buffer.alloc(0))] });
      expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
      await server.shutdown({ graceMs: 0 });
    }
  });

  it("advertises the configured window, frame size and stream limit in its SETTINGS", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", flowControlWindow: 8 * 2 ** 20, maxFrameBytes: 65_536, maxConcurrentStreams: 17 }));
    await server.start();
    const session = connect(server.port);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
      expect(settings).toMatchObject({ initialWindowSize: 8 * 2 ** 20, maxFrameSize: 65_536, maxConcurrentStreams: 17 });
    } finally {
      session.destroy();
      await server.shutdown({ graceMs: 0 });
    }
  });
});
