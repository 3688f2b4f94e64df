import * as grpc from "@grpc/grpc-js";
import type * as http2 from "node:http2";

/** Default HTTP/2 flow-control window: 16 MiB per stream and per connection. */
export const DEFAULT_FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

/** Largest window HTTP/2 allows (2^31 - 1). */
const MAX_WINDOW = 2 ** 31 - 1;

// grpc-js exposes no server option for HTTP/2 flow control, and the default 64 KiB window
// caps a stream at about 0.4 GB/s here. This subclass is the one place that reaches into
// grpc-js: it adds `initialWindowSize` to the settings grpc-js passes to
// http2.createServer (per-stream window) and raises each session's connection window as it
// opens. `tuned-grpc-server.test.ts` checks from a raw HTTP/2 client that both hold, so a
// grpc-js upgrade that moves these internals fails the tests instead of silently slowing down.
interface GrpcServerInternals {
  commonServerOptions?: http2.ServerOptions;
  _setupHandlers?: (server: http2.Http2Server | http2.Http2SecureServer | null, ...rest: unknown[]) => void;
}

function peerOf(session: http2.ServerHttp2Session): string | undefined {
  const socket = session.socket;
  if (!socket?.remoteAddress) return undefined;
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress;
}

/**
 * A grpc-js Server whose HTTP/2 flow-control windows are set to `flowControlWindow` bytes.
 *
 * @example
 * const server = new TunedGrpcServer({ "grpc.max_receive_message_length": 64 << 20 }, 16 << 20);
 */
export class TunedGrpcServer extends grpc.Server {
  /** The window this server applies, in bytes. */
  readonly flowControlWindow: number;
  /** Open HTTP/2 sessions by peer address, as grpc-js's `call.getPeer()` spells it. */
  private readonly sessionsByPeer = new Map<string, http2.ServerHttp2Session>();

  /**
   * Resolves after an HTTP/2 PING to `peer` came back. Frames arrive in order on a
   * connection, so everything the peer sent before it answered (a RST_STREAM that followed
   * an END_STREAM, say) has been processed by then. Resolves false when there is no open
   * session for the peer or the ping fails.
   */
  pingPeer(peer: string): Promise<boolean> {
    const session = this.sessionsByPeer.get(peer);
    if (!session || session.closed || session.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      try {
        if (!session.ping((err) => resolve(!err))) resolve(false);
      } catch {
        resolve(false);
      }
    });
  }

  constructor(options: grpc.ServerOptions | undefined, flowControlWindow: number = DEFAULT_FLOW_CONTROL_WINDOW) {
    super(options);
    if (!Number.isInteger(flowControlWindow) || flowControlWindow < 65_535 || flowControlWindow > MAX_WINDOW) {
      throw new TypeError(`flowControlWindow must be an integer from 65535 to ${MAX_WINDOW}, got ${flowControlWindow}`);
    }
    this.flowControlWindow = flowControlWindow;
    const internals = this as unknown as GrpcServerInternals;
    if (!internals.commonServerOptions || typeof internals._setupHandlers !== "function") {
      throw new Error("TunedGrpcServer: this @grpc/grpc-js version has no commonServerOptions/_setupHandlers; update tuned-grpc-server.ts");
    }
    const common = internals.commonServerOptions;
    common.settings = { ...common.settings, initialWindowSize: flowControlWindow };
    const setup = internals._setupHandlers;
    const sessions = this.sessionsByPeer;
    internals._setupHandlers = function tunedSetupHandlers(this: unknown, server, ...rest) {
      setup.call(this, server, ...rest);
      server?.on("session", (session: http2.ServerHttp2Session) => {
        const peer = peerOf(session);
        if (peer) {
          sessions.set(peer, session);
          session.once("close", () => {
            if (sessions.get(peer) === session) sessions.delete(peer);
          });
        }
        const apply = (): void => {
          try {
            session.setLocalWindowSize(flowControlWindow);
          } catch {
            // The session closed before its window could be raised; nothing to tune.
          }
        };
        if (session.connecting) session.once("connect", apply);
        else apply();
      });
    };
  }
}
