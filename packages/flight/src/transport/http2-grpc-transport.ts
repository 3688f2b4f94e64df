import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { setMaxListeners } from "node:events";
import type { PeerCertificateInfo } from "@blackice/flight-core";
import { ByteBudget } from "./byte-budget";
import { serveGrpcStream, type StreamContext } from "./grpc-server-stream";
import type { ServerTransport, TransportMethod, TransportSettings, TransportStats } from "./transport";

/** Callbacks of {@link Http2GrpcTransport}. */
export interface TransportHooks {
  /** Errors that are not a FlightError (bugs) and failures such as a TLS reload that could not read its files. */
  onInternalError(err: unknown, path: string): void;
  /** Every finished call. */
  observe(path: string, code: number, durationMs: number): void;
}

/** Pings a client may send without data in between before its connection gets GOAWAY. */
const MAX_PING_STRIKES = 2;
/** How long a connection drained for its maximum age may take to finish its calls. */
const AGE_GRACE_MS = 30_000;

function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  const addr = socket.remoteAddress ?? "unknown";
  const host = addr.includes(":") ? `[${addr}]` : addr;
  return socket.remotePort ? `${host}:${socket.remotePort}` : host;
}

function peerCertificateOf(session: http2.ServerHttp2Session): PeerCertificateInfo | undefined {
  const socket = session.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== "function" || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.raw || typeof cert.fingerprint256 !== "string") return undefined;
  const cn = cert.subject?.CN;
  return { subjectCN: typeof cn === "string" ? cn : "", fingerprint256: cert.fingerprint256, raw: new Uint8Array(cert.raw) };
}

/** One connection's state: keepalive, ping policy, idle and age timers. */
interface SessionState {
  streams: number;
  dataSentSincePing: boolean;
  lastPingAt: number;
  strikes: number;
  timers: NodeJS.Timeout[];
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * gRPC's HTTP/2 protocol (grpc/grpc doc/PROTOCOL-HTTP2.md) on `node:http2`, serving the
 * methods it is given. It owns what grpc-js's Server hid: flow-control windows and frame
 * sizes, message limits checked on the length prefix before any byte is held, a server-wide
 * in-flight budget, the pre-authentication budget, keepalive with a ping-abuse policy,
 * idle and maximum connection age, TLS with certificate reload, and graceful GOAWAY.
 *
 * @example
 * const transport = new Http2GrpcTransport(settings, methods, { onInternalError, observe });
 * const { port } = await transport.listen();
 */
export class Http2GrpcTransport implements ServerTransport {
  private server: http2.Http2Server | http2.Http2SecureServer | undefined;
  private readonly sessions = new Map<http2.ServerHttp2Session, SessionState>();
  private readonly inFlight: ByteBudget;
  private readonly preAuth: ByteBudget;
  private readonly shutdownController = new AbortController();
  private openCalls = 0;
  private stopTlsWatch: () => void = () => undefined;

  constructor(
    private readonly settings: TransportSettings,
    private readonly methods: ReadonlyMap<string, TransportMethod>,
    private readonly hooks: TransportHooks,
  ) {
    this.inFlight = new ByteBudget(settings.maxInFlightBytes);
    this.preAuth = new ByteBudget(settings.maxPreAuthBytes);
    // Every open call listens on this signal.
    setMaxListeners(0, this.shutdownController.signal);
  }

  stats(): TransportStats {
    return { connections: this.sessions.size, openCalls: this.openCalls, inFlightBytes: this.inFlight.reserved, preAuthBytes: this.preAuth.reserved };
  }

  async listen(): Promise<{ host: string; port: number }> {
    if (this.server) throw new Error("Http2GrpcTransport.listen: already listening");
    const s = this.settings;
    const options: http2.ServerOptions = {
      settings: {
        initialWindowSize: s.flowControlWindow,
        maxConcurrentStreams: s.maxConcurrentStreams,
        maxFrameSize: s.maxFrameBytes,
      },
      // Node's own per-session cap would refuse streams under load with ENHANCE_YOUR_CALM;
      // what a session may hold is bounded by the budgets and windows instead.
      maxSessionMemory: 1024,
    };
    let server: http2.Http2Server | http2.Http2SecureServer;
    if (s.tls) {
      const tls = s.tls;
      const pem = tls.load();
      const secure = http2.createSecureServer({
        ...options,
        key: pem.key,
        cert: pem.cert,
        ...(pem.clientCa ? { ca: pem.clientCa, requestCert: true, rejectUnauthorized: tls.requireClientCert } : {}),
        ALPNProtocols: ["h2"],
        allowHTTP1: false,
      });
      // Reload: new handshakes use the new certificates; open connections stay up.
      this.stopTlsWatch =
        tls.onReloadable?.(() => {
          try {
            const next = tls.load();
            secure.setSecureContext({ key: next.key, cert: next.cert, ...(next.clientCa ? { ca: next.clientCa } : {}) });
          } catch (err) {
            this.hooks.onInternalError(err, "tls-reload");
          }
        }) ?? (() => undefined);
      server = secure;
    } else {
      server = http2.createServer(options);
    }
    server.on("session", (session: http2.ServerHttp2Session) => this.onSession(session));
    server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) =>
      this.onStream(stream, headers, rawHeaders),
    );
    // A connection that fails (reset, bad TLS) is the client's problem, not the server's.
    server.on("sessionError", () => undefined);
    server.on("tlsClientError", () => undefined);
    // Small frames (WINDOW_UPDATE, PING acks, PutResults, trailers) go out at once instead of
    // waiting for Nagle's algorithm, as gRPC's own servers do. Set on the TCP socket before
    // HTTP/2 takes it over (a session's socket may not be touched).
    server.on("connection", (socket: Socket) => socket.setNoDelay(true));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`cannot listen on ${s.host}:${s.port}: ${err.message}`, { cause: err }));
      server.once("error", onError);
      server.listen(s.port, s.host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    return { host: s.host, port };
  }

  async shutdown(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // GOAWAY to every connection; each closes once its open calls are done.
    for (const session of this.sessions.keys()) this.drain(session);
    const allClosed = (): Promise<void> =>
      Promise.all([...this.sessions.keys()].map((s) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r()))))).then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace">((resolve) => {
      timer = setTimeout(() => resolve("grace"), graceMs);
    });
    const outcome = await Promise.race([allClosed().then(() => "done" as const), graceOver]);
    clearTimeout(timer);
    if (outcome === "grace") {
      // Grace is over: end every open call with UNAVAILABLE, give the trailers a moment to
      // leave, then drop the connections.
      this.shutdownController.abort();
      await Promise.race([allClosed(), new Promise((r) => setTimeout(r, 100))]);
      for (const session of this.sessions.keys()) session.destroy();
    }
    this.shutdownController.abort();
    this.stopTlsWatch();
    await closed;
  }

  private drain(session: http2.ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    try {
      session.close();
    } catch {
      session.destroy();
    }
  }

  private onSession(session: http2.ServerHttp2Session): void {
    const s = this.settings;
    const state: SessionState = { streams: 0, dataSentSincePing: true, lastPingAt: 0, strikes: 0, timers: [], idleTimer: undefined };
    this.sessions.set(session, state);
    session.on("error", () => undefined);
    const raiseWindow = (): void => {
      try {
        session.setLocalWindowSize(s.flowControlWindow);
      } catch {
        // closed before the window could be raised
      }
    };
    if (session.connecting) session.once("connect", raiseWindow);
    else raiseWindow();

    // Keepalive: a client that does not answer a PING within the timeout is dropped.
    const keepalive = setInterval(() => {
      if (session.closed || session.destroyed) return;
      const timeout = setTimeout(() => session.destroy(), s.keepaliveTimeoutMs);
      timeout.unref();
      try {
        if (!session.ping(() => clearTimeout(timeout))) clearTimeout(timeout);
      } catch {
        clearTimeout(timeout);
      }
    }, s.keepaliveTimeMs);
    keepalive.unref();
    state.timers.push(keepalive);

    // Ping abuse: pings closer together than minPingIntervalMs with no data sent in between.
    session.on("ping", () => {
      const now = performance.now();
      if (!state.dataSentSincePing && now - state.lastPingAt < s.minPingIntervalMs) {
        if (++state.strikes > MAX_PING_STRIKES) {
          session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"));
          session.destroy();
          return;
        }
      } else {
        state.strikes = 0;
      }
      state.lastPingAt = now;
      state.dataSentSincePing = false;
    });

    if (s.maxConnectionAgeMs > 0) {
      // ±10 % jitter, so that connections made together do not all drain together.
      const age = s.maxConnectionAgeMs * (0.9 + Math.random() * 0.2);
      const timer = setTimeout(() => {
        this.drain(session);
        const force = setTimeout(() => session.destroy(), AGE_GRACE_MS);
        force.unref();
        session.once("close", () => clearTimeout(force));
      }, age);
      timer.unref();
      state.timers.push(timer);
    }
    this.armIdle(session, state);
    session.once("close", () => {
      for (const t of state.timers) clearTimeout(t);
      if (state.idleTimer) clearTimeout(state.idleTimer);
      this.sessions.delete(session);
    });
  }

  private armIdle(session: http2.ServerHttp2Session, state: SessionState): void {
    const idle = this.settings.maxConnectionIdleMs;
    if (idle <= 0 || state.streams > 0) return;
    state.idleTimer = setTimeout(() => this.drain(session), idle);
    state.idleTimer.unref();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): void {
    const session = stream.session as http2.ServerHttp2Session | undefined;
    const state = session ? this.sessions.get(session) : undefined;
    if (!session || !state) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    state.streams++;
    if (state.idleTimer) clearTimeout(state.idleTimer);
    state.idleTimer = undefined;
    this.openCalls++;
    stream.once("close", () => {
      this.openCalls--;
      state.streams--;
      this.armIdle(session, state);
    });
    const s = this.settings;
    const ctx: StreamContext = {
      methods: this.methods,
      limits: s,
      inFlight: this.inFlight,
      preAuth: this.preAuth,
      readAheadBytes: s.flowControlWindow,
      shutdownSignal: this.shutdownController.signal,
      peer: peerOf(session.socket),
      peerCertificate: peerCertificateOf(session),
      settle: () =>
        new Promise<void>((resolve) => {
          try {
            if (!session.ping(() => resolve())) resolve();
          } catch {
            resolve();
          }
        }),
      onDataSent: () => {
        state.dataSentSincePing = true;
      },
      onInternalError: this.hooks.onInternalError,
      observe: this.hooks.observe,
    };
    serveGrpcStream(stream, headers, rawHeaders, ctx);
  }
}
