#!/usr/bin/env node
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { diskStore, serverConfig, withStore, type DiskStore, type ServerPart } from "@blackice/flight-core";
import { callLogger, metrics } from "@blackice/flight-resilience";
import { hmacAuth, hmacSigner, jwtAuth, merkleIntegrity, tls } from "@blackice/flight-security";
import pino from "pino";
import pinoPretty from "pino-pretty";
import { Registry } from "prom-client";
import { createFlightServer, flightSql, projectExchange, query, type FlightClientOptions } from "@blackice/flight";
import { cluster } from "@blackice/flight-cluster";
import { parseCli, usage, UsageError, type CliFlag, type CliSettings } from "./cli-options";

/**
 * The flag a TypeError from building the server is about, by the option or factory its
 * message starts with: the CLI checks its own values first, and this names the setting the
 * operator wrote (flag, config key or variable) for the checks only the factories make
 * (CORS origins, key files, Redis URLs, ...).
 */
const BUILD_ERRORS: ReadonlyArray<readonly [RegExp, CliFlag]> = [
  [/^corsOrigins\b/, "cors-origin"],
  [/^serverConfig: addr\b/, "host"],
  [/^serverConfig: ttl\b/, "ttl"],
  [/^serverConfig: maxMemoryBytes\b/, "max-memory"],
  [/^serverConfig: maxMessageBytes\b/, "max-message-size"],
  [/^serverConfig: gcInterval\b/, "gc-interval"],
  [/^tls\b/, "tls-cert"],
  [/^hmac(Auth|Signer)\b/, "hmac-secret-file"],
  [/^jwtAuth\b/, "jwt-jwks"],
  [/^merkleIntegrity\b/, "merkle-signing-key"],
  [/^cluster\b/, "cluster"],
  [/^DiskStore\b/, "data-dir"],
];

/** A TypeError from building the server, as a message that names the setting it came from. */
function buildErrorMessage(err: TypeError, settings: CliSettings): string {
  const hit = BUILD_ERRORS.find(([re]) => re.test(err.message));
  const from = hit ? settings.sources[hit[1]] : undefined;
  return from ? `${from}: ${err.message}` : err.message;
}

/** A pino logger at `level`: JSON lines on stdout, or pino-pretty's lines when stdout is a terminal. */
function makeLogger(level: string): pino.Logger {
  if (process.stdout.isTTY) return pino({ level }, pinoPretty({ colorize: true, sync: true }));
  return pino({ level }, pino.destination({ fd: 1, sync: true }));
}

/** The server parts the CLI settings ask for, in middleware order; `store` is the disk store to use, if any. */
function partsFor(settings: CliSettings, logger: pino.Logger, registry: Registry | undefined, store: DiskStore | undefined): ServerPart[] {
  const parts: ServerPart[] = [serverConfig(settings.config)];
  if (store) parts.push(withStore(store));
  if (settings.logLevel !== "silent") parts.push(callLogger({ logger }));
  // metrics reads the server's store itself (its store_* figures).
  if (registry) parts.push(metrics({ registry }));
  if (settings.tls) parts.push(tls({ ...settings.tls, watch: true }));
  if (settings.hmacSecretFiles.length > 0) {
    parts.push(hmacAuth({ keys: settings.hmacSecretFiles.map((f, i) => ({ keyId: f.keyId ?? (i === 0 ? "default" : `key-${i + 1}`), secretPath: f.path })), allowUnsigned: settings.jwt !== undefined }));
  }
  // After HMAC, which then lets unsigned calls through: a call signed with a known key is authenticated already and passes jwtAuth as it is.
  if (settings.jwt) parts.push(jwtAuth(settings.jwt));
  if (settings.merkleSigningKey !== undefined) parts.push(merkleIntegrity({ signingKey: { privateKeyPath: settings.merkleSigningKey } }));
  // After authentication, which checks the call as the client sent it (docs/query.md).
  // flightSql() turns Flight SQL statements into query commands, so it comes before query().
  if (settings.flightSql) parts.push(flightSql());
  if (settings.query) parts.push(query());
  if (settings.projectExchange) parts.push(projectExchange());
  if (settings.cluster) {
    const c = settings.cluster;
    // The nodes call each other with the settings they serve with: TLS (this node's certificate
    // as the client certificate when the nodes require mTLS) and the first HMAC key.
    const peer: FlightClientOptions = {};
    if (settings.tls) {
      peer.tls = {
        rootCerts: c.caFile ? fs.readFileSync(c.caFile) : undefined,
        ...(settings.tls.clientCaFile ? { cert: fs.readFileSync(settings.tls.certFile), key: fs.readFileSync(settings.tls.keyFile) } : {}),
      };
    }
    if (settings.hmacSecretFiles.length > 0) {
      const f = settings.hmacSecretFiles[0]!;
      peer.signer = hmacSigner({ keyId: f.keyId ?? "default", secretPath: f.path });
    }
    parts.push(
      cluster({
        redis: c.redis,
        // Default: the address listened on, grpc+tls:// with TLS (known once the port is bound).
        advertise: c.advertise,
        nodeId: c.nodeId,
        replicas: c.replicas,
        heartbeatMs: c.heartbeatMs,
        peer,
        onError: (err) => logger.warn({ err: (err as Error)?.message ?? String(err) }, "cluster"),
      }),
    );
  }
  return parts;
}

/** Runs the CLI: starts a server and stops it gracefully on SIGINT/SIGTERM. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let settings;
  try {
    settings = parseCli(argv, env);
  } catch (err) {
    if (err instanceof UsageError) {
      // One line naming the setting; the whole usage would bury it.
      process.stderr.write(`blackice-flight: ${err.message} (blackice-flight --help lists the options)\n`);
      process.exit(2);
    }
    throw err;
  }
  if (settings.help) {
    process.stdout.write(usage());
    return;
  }
  if (settings.version) {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "../package.json"), "utf8")) as { version: string };
    process.stdout.write(`blackice-flight ${pkg.version}\n`);
    return;
  }
  const logger = makeLogger(settings.logLevel);
  const registry = settings.metricsPort === undefined ? undefined : new Registry();
  let server: ReturnType<typeof createFlightServer>;
  let metricsServer: http.Server | undefined;
  let store: DiskStore | undefined;
  let stopping = false;
  try {
    // Opening recovers the directory and locks it: a locked or read-only directory ends here.
    if (settings.disk) {
      store = diskStore({ ...settings.disk, onError: (err) => logger.error({ err }, "disk store") });
      const r = store.recovery;
      logger.info({ dir: settings.disk.dir, fsync: settings.disk.fsync, ...r }, "disk store opened");
    }
    try {
      server = createFlightServer(...partsFor(settings, logger, registry, store));
    } catch (err) {
      // A value only a factory could check: a usage error too, named after its setting.
      if (!(err instanceof TypeError)) throw err;
      process.stderr.write(`blackice-flight: ${buildErrorMessage(err, settings)} (blackice-flight --help lists the options)\n`);
      await store?.close().catch(() => undefined);
      process.exit(2);
    }
    await server.start();
    if (registry) metricsServer = await serveMetrics(registry, settings.config.addr.replace(/:\d+$/, ""), settings.metricsPort!, () => !stopping);
  } catch (err) {
    // One line, no stack: a port in use says which setting chooses another.
    const inUse = /EADDRINUSE/.test((err as Error).message);
    const metricsPort = inUse && /cannot serve metrics/.test((err as Error).message);
    const line = !inUse
      ? (err as Error).message
      : metricsPort
        ? `cannot serve metrics on port ${settings.metricsPort}: the port is already in use (choose another with ${settings.sources["metrics-port"]})`
        : `cannot listen on ${settings.config.addr}: the port is already in use (choose another with ${settings.sources.port ?? "--port"})`;
    process.stderr.write(`blackice-flight: ${line}\n`);
    await store?.close().catch(() => undefined);
    process.exit(1);
  }
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: settings.graceMs }, "shutting down");
    // The metrics port stays open through the grace period: /readyz answers 503 from now on.
    // The server does not close a store given with withStore: close it (fsync, unlock) after the calls end.
    server
      .shutdown({ graceMs: settings.graceMs })
      .then(() => store?.close())
      .then(
        () => process.exit(0),
        (err) => {
          process.stderr.write(`blackice-flight: shutdown failed: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // Through the logger, so stdout stays JSON lines: tests and tools read `location` and `port`.
  const host = settings.config.addr.replace(/:\d+$/, "");
  logger.info({ location: server.location, port: server.port }, `BlackIce Flight listening on ${server.location}`);
  if (settings.config.webPage) logger.info({ page: `${settings.tls ? "https" : "http"}://${host}:${server.port}/` }, "browser page");
  if (metricsServer) {
    const a = metricsServer.address() as { port: number };
    logger.info({ metrics: `http://${host}:${a.port}/metrics`, metricsPort: a.port }, "metrics, /healthz and /readyz");
  }
}

/**
 * The metrics port: Prometheus text at `/metrics`; `/healthz` answers 200 while the process
 * runs; `/readyz` 200 while the server takes calls and 503 once it is shutting down (so a load
 * balancer stops sending new calls while the open ones finish).
 */
function serveMetrics(registry: Registry, host: string, port: number, ready: () => boolean): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const text = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };
    if (req.url === "/healthz") {
      res.writeHead(200, text).end("ok\n");
      return;
    }
    if (req.url === "/readyz") {
      if (ready()) res.writeHead(200, text).end("ready\n");
      else res.writeHead(503, text).end("shutting down\n");
      return;
    }
    if (req.url !== "/metrics") {
      res.writeHead(404).end("not found; this port serves /metrics, /healthz and /readyz\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      () => res.writeHead(500).end("metrics unavailable\n"),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot serve metrics on port ${port}: ${err.message}`)));
    server.listen(port, host.replace(/^\[|\]$/g, ""), () => resolve(server));
  });
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).catch((err) => {
    process.stderr.write(`blackice-flight: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
