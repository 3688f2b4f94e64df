import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import { TunedGrpcServer } from "./tuned-grpc-server";

async function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

async function windowsSeenByClient(port: number): Promise<{ stream: number | undefined; connection: number | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    await new Promise<void>((resolve, reject) => {
      session.once("remoteSettings", () => resolve());
      session.once("error", reject);
    });
    // The connection WINDOW_UPDATE follows the SETTINGS frame; give it a round trip.
    await new Promise<void>((resolve) => session.ping(() => resolve()));
    return { stream: session.remoteSettings.initialWindowSize, connection: session.state.remoteWindowSize };
  } finally {
    session.destroy();
  }
}

describe("TunedGrpcServer", () => {
  it("advertises the configured per-stream and connection windows to clients", async () => {
    const window = 8 * 1024 * 1024;
    const server = new TunedGrpcServer({}, window);
    try {
      const port = await bind(server);
      const seen = await windowsSeenByClient(port);
      expect(seen.stream).toBe(window);
      expect(seen.connection).toBe(window);
    } finally {
      server.forceShutdown();
    }
  });

  it("differs from a plain grpc-js server, which keeps the 64 KiB default", async () => {
    const server = new grpc.Server();
    try {
      const port = await bind(server);
      const seen = await windowsSeenByClient(port);
      expect(seen.stream).toBe(65535);
      expect(seen.connection).toBe(65535);
    } finally {
      server.forceShutdown();
    }
  });

  it("keeps max_concurrent_streams alongside the window", async () => {
    const server = new TunedGrpcServer({ "grpc.max_concurrent_streams": 7 }, 1 << 20);
    try {
      const port = await bind(server);
      const session = http2.connect(`http://127.0.0.1:${port}`);
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
      expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
      expect(session.remoteSettings.initialWindowSize).toBe(1 << 20);
      session.destroy();
    } finally {
      server.forceShutdown();
    }
  });

  it("refuses a window out of range when built", () => {
    expect(() => new TunedGrpcServer({}, 1000)).toThrow(TypeError);
    expect(() => new TunedGrpcServer({}, 2 ** 31)).toThrow(/flowControlWindow/);
  });
});
