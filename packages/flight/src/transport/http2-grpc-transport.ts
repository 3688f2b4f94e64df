import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { setMaxListeners } from "node:events";
import { FlightError, StatusCode, type PeerCertificateInfo } from "@blackice/flight-core";
import { ByteBudget } from "./byte-budget";
import { CorsPolicy } from "./cors-policy";
import { serveGrpcStream, type StreamContext } from "./grpc-server-stream";
import { isGrpcWeb, serveGrpcWeb, type GrpcWebContext } from "./grpc-web-stream";
import { metadataFromRawHeaders, metadataToHeaders } from "./grpc-metadata";
import { exchangeFromHttp1, exchangeFromStream, type HttpExchange } from "./http-exchange";
import { sendHttpError } from "./http-status";
import type { HttpRoutes, ServerTransport, TransportCall, TransportMethod, TransportSettings, TransportStats } from "./transport";

/** Callbacks of {@link Http2GrpcTransport}. */
export interface TransportHooks {
  /** Errors that are not a FlightError (bugs) and failures such as a TLS reload that could not read its files. */
  onInternalError(err: unknown, path: string): void;
  /** Every finished call. */
  observe(path: string, code: number, durationMs: number): void;
}

/** The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113 §3.4); anything else on a cleartext port is HTTP/1.1. */
const H2_PREFACE_START = "PRI";
/** A cleartext connection that sends nothing for this long is closed before it is told apart. */
const FIRST_BYTES_TIMEOUT_MS = 30_000;

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
  /** What listens: the HTTP/2 server itself (TLS, where ALPN tells the protocols apart) or a cleartext front that reads the first bytes. */
  private listener: net.Server | undefined;
  /** HTTP/1.1 connections (gRPC-Web and plain HTTP), with their number of open requests. */
  private readonly http1 = http.createServer({ keepAliveTimeout: 5000, headersTimeout: 30_000, requestTimeout: 0, maxHeaderSize: 16 * 1024 });
  private readonly http1Sockets = new Map<Socket, number>();
  private draining = false;
  private readonly cors: CorsPolicy;
  private readonly webContext: GrpcWebContext;
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
    private readonly routes?: HttpRoutes,
  ) {
    this.inFlight = new ByteBudget(settings.maxInFlightBytes);
    this.preAuth = new ByteBudget(settings.maxPreAuthBytes);
    this.cors = new CorsPolicy(settings.corsOrigins);
    this.webContext = {
      methods,
      limits: settings,
      inFlight: this.inFlight,
      preAuth: this.preAuth,
      readAheadBytes: settings.flowControlWindow,
      shutdownSignal: this.shutdownController.signal,
      onInternalError: hooks.onInternalError,
      observe: hooks.observe,
    };
    this.http1.on("connection", (socket: Socket) => {
      this.http1Sockets.set(socket, 0);
      socket.once("close", () => this.http1Sockets.delete(socket));
    });
    this.http1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => this.onHttp1Request(req, res));
    this.http1.on("clientError", (_err: Error, socket: Socket) => socket.destroy());
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
        // http/1.1 is offered for browsers' gRPC-Web and plain-HTTP requests; such connections
        // come back as "unknownProtocol" and are handed to the HTTP/1.1 server.
        ALPNProtocols: ["h2", "http/1.1"],
        allowHTTP1: false,
      });
      secure.on("unknownProtocol", (socket: Socket) => this.http1.emit("connection", socket));
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
    const listener: net.Server = s.tls ? server : net.createServer((socket) => this.sniff(socket, server));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`cannot listen on ${s.host}:${s.port}: ${err.message}`, { cause: err }));
      listener.once("error", onError);
      listener.listen(s.port, s.host, () => {
        listener.off("error", onError);
        resolve();
      });
    });
    const port = (listener.address() as AddressInfo).port;
    return { host: s.host, port };
  }

  async shutdown(graceMs: number): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    // GOAWAY to every connection; each closes once its open calls are done.
    for (const session of this.sessions.keys()) this.drain(session);
    // HTTP/1.1: idle connections close now, busy ones after their last response.
    this.draining = true;
    for (const [socket, open] of this.http1Sockets) if (open === 0) socket.destroy();
    const allClosed = (): Promise<void> =>
      Promise.all([
        ...[...this.sessions.keys()].map((s) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())))),
        ...[...this.http1Sockets.keys()].map((s) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())))),
      ]).then(() => undefined);
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
      for (const socket of this.http1Sockets.keys()) socket.destroy();
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
    const contentType = headers["content-type"];
    const path = String(headers[":path"] ?? "");
    const grpc = typeof contentType === "string" && /^application\/grpc(?:$|[+;])/.test(contentType);
    // Native gRPC, or a POST to a gRPC method (which gets gRPC's 415 if its content-type is wrong);
    // everything else (gRPC-Web, plain HTTP, CORS preflights) is an HTTP exchange.
    const verb = headers[":method"];
    if (verb === "OPTIONS" || isGrpcWeb(contentType as string | undefined) || (!grpc && !(verb === "POST" && this.methods.has(path)))) {
      this.serveHttp(exchangeFromStream(stream, headers, rawHeaders, peerOf(session.socket), peerCertificateOf(session)));
      return;
    }
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

  /**
   * A cleartext connection: HTTP/2 with prior knowledge (gRPC) starts with the connection
   * preface, anything else is HTTP/1.1. The first bytes are read, put back, and the socket
   * is handed to the server for its protocol (both take sockets through their public
   * "connection" event; node:http2 reads what was put back before its own reads).
   */
  private sniff(socket: Socket, h2: net.Server): void {
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    const timer = setTimeout(() => socket.destroy(), FIRST_BYTES_TIMEOUT_MS);
    timer.unref();
    const onReadable = (): void => {
      const head: Buffer | null = socket.read(H2_PREFACE_START.length) ?? (socket.readableEnded ? socket.read() : null);
      if (head === null) return; // fewer than three bytes so far
      socket.off("readable", onReadable);
      socket.off("close", onClose);
      clearTimeout(timer);
      socket.unshift(head);
      if (head.toString("latin1") === H2_PREFACE_START) h2.emit("connection", socket);
      else this.http1.emit("connection", socket);
    };
    const onClose = (): void => clearTimeout(timer);
    socket.on("readable", onReadable);
    socket.once("close", onClose);
  }

  private onHttp1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    this.http1Sockets.set(socket, (this.http1Sockets.get(socket) ?? 0) + 1);
    this.openCalls++;
    if (this.draining) res.setHeader("connection", "close");
    res.once("close", () => {
      this.openCalls--;
      const open = (this.http1Sockets.get(socket) ?? 1) - 1;
      if (this.http1Sockets.has(socket)) this.http1Sockets.set(socket, open);
      if (this.draining && open === 0) socket.destroy();
    });
    const tlsSocket = socket as TLSSocket;
    let cert: PeerCertificateInfo | undefined;
    if (typeof tlsSocket.getPeerCertificate === "function" && tlsSocket.authorized) {
      const c = tlsSocket.getPeerCertificate();
      if (c && c.raw && typeof c.fingerprint256 === "string") cert = { subjectCN: typeof c.subject?.CN === "string" ? c.subject.CN : "", fingerprint256: c.fingerprint256, raw: new Uint8Array(c.raw) };
    }
    const ex = exchangeFromHttp1(req, res, peerOf(socket), cert);
    const contentType = ex.headers["content-type"];
    if (typeof contentType === "string" && /^application\/grpc(?:$|[+;])/.test(contentType) && !isGrpcWeb(contentType)) {
      sendHttpError(ex, new FlightError(StatusCode.UNIMPLEMENTED, "native gRPC needs HTTP/2; over HTTP/1.1 use gRPC-Web (application/grpc-web+proto)"));
      ex.body.resume();
      return;
    }
    this.serveHttp(ex);
  }

  /** gRPC-Web, CORS preflights and the plain-HTTP routes, over either HTTP version. */
  private serveHttp(ex: HttpExchange): void {
    if (this.cors.apply(ex)) return;
    if (isGrpcWeb(ex.headers["content-type"])) {
      serveGrpcWeb(ex, this.webContext);
      return;
    }
    // Plain-HTTP requests carry no body the routes read: it is dropped as it arrives.
    ex.body.resume();
    const routes = this.routes;
    if (!routes) {
      sendHttpError(ex, new FlightError(StatusCode.NOT_FOUND, "this server serves gRPC and gRPC-Web only"));
      return;
    }
    const started = performance.now();
    const controller = new AbortController();
    const onShutdown = (): void => controller.abort(new FlightError(StatusCode.UNAVAILABLE, "server shutting down"));
    this.shutdownController.signal.addEventListener("abort", onShutdown, { once: true });
    ex.onClose(() => {
      if (!controller.signal.aborted) controller.abort(new FlightError(StatusCode.CANCELLED, "call cancelled by the client"));
    });
    let calledPath: string | undefined;
    const invoke = async (path: string, rawRequest: Uint8Array): Promise<unknown> => {
      const method = this.methods.get(path);
      if (!method || method.clientStreaming) throw new FlightError(StatusCode.UNIMPLEMENTED, `unknown method ${path}`);
      calledPath = path;
      const limit = Math.min(method.maxRequestBytes, this.settings.maxMessageBytes, this.settings.maxFirstMessageBytes);
      if (rawRequest.byteLength > limit) throw new FlightError(StatusCode.RESOURCE_EXHAUSTED, `request of ${rawRequest.byteLength} bytes is over the limit of ${limit} bytes`);
      let request: unknown;
      try {
        request = method.decode(rawRequest);
      } catch (err) {
        throw err instanceof FlightError ? err : new FlightError(StatusCode.INVALID_ARGUMENT, `malformed request: ${(err as Error).message ?? String(err)}`);
      }
      const responseHeaders = new Map<string, string>();
      const call: TransportCall = {
        path,
        headers: metadataFromRawHeaders(ex.rawHeaders as string[]),
        responseHeaders,
        signal: controller.signal,
        peer: ex.peer,
        deadline: undefined,
        peerCertificate: ex.peerCertificate,
        rawRequest,
        request,
      };
      try {
        return await method.handle(call);
      } finally {
        // Response headers set by middleware (x-request-id, session cookies) go out with the
        // answer, a refusal included, as they do on a trailers-only gRPC response.
        Object.assign(ex.extraHeaders, metadataToHeaders(responseHeaders));
      }
    };
    const done = (code: number): void => {
      this.shutdownController.signal.removeEventListener("abort", onShutdown);
      if (!controller.signal.aborted) controller.abort(new FlightError(StatusCode.CANCELLED, "call finished"));
      if (calledPath !== undefined) this.hooks.observe(calledPath, code, performance.now() - started);
    };
    routes({ exchange: ex, signal: controller.signal, invoke }).then(
      () => done(ex.closed && !ex.headersSent ? StatusCode.CANCELLED : StatusCode.OK),
      (err) => {
        const fe = FlightError.from(err);
        if (!(err instanceof FlightError) && fe.code === StatusCode.INTERNAL) this.hooks.onInternalError(err, calledPath ?? ex.url);
        sendHttpError(ex, fe);
        done(fe.code);
      },
    );
  }
}
