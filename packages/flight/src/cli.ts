#!/usr/bin/env node
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { diskStore, serverConfig, withStore, type DiskStore, type ServerPart } from "@blackice/flight-core";
import { callLogger, metrics } from "@blackice/flight-resilience";
import { hmacAuth, hmacSigner, jwtAuth, merkleIntegrity, tls } from "@blackice/flight-security";
import pino from "pino";
import { Registry } from "prom-client";
import { createFlightServer } from "./server/create-flight-server";
import { projectExchange } from "./server/project-exchange";
import { query } from "./server/query";
import { flightSql } from "./server/flight-sql";
import { cluster } from "./cluster/cluster";
import type { FlightClientOptions } from "./client/flight-client";
import { parseCli, usage, UsageError, type CliSettings } from "./cli-options";

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
      process.stderr.write(`blackice-flight: ${err.message}\n\n${usage()}`);
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
  const logger = pino({ level: settings.logLevel });
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
    server = createFlightServer(...partsFor(settings, logger, registry, store));
    await server.start();
    if (registry) metricsServer = await serveMetrics(registry, settings.config.addr.replace(/:\d+$/, ""), settings.metricsPort!, () => !stopping);
  } catch (err) {
    process.stderr.write(`blackice-flight: ${(err as Error).message}\n`);
    await store?.close().catch(() => undefined);
    process.exit(1);
  }
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down\n`);
    // The metrics port stays open through the grace period: /readyz answers 503 from now on.
    // The server does not close a store given with withStore: close it (fsync, unlock) after the calls end.
    server
      .shutdown({ graceMs: 10_000 })
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
  process.stdout.write(`BlackIce Flight listening on ${server.location}\n`);
  if (settings.config.webPage) process.stdout.write(`page on ${settings.tls ? "https" : "http"}://${settings.config.addr.replace(/:\d+$/, "")}:${server.port}/\n`);
  if (metricsServer) {
    const a = metricsServer.address() as { port: number };
    process.stdout.write(`metrics on http://${settings.config.addr.replace(/:\d+$/, "")}:${a.port}/metrics\n`);
  }
}

/** Serves the registry at /metrics in the Prometheus text format. */
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
