// A telemetry ingest server composed the way a BlackIce service is, from the public barrels
// only. Outermost first:
//
//   metrics (prom-client, /metrics over HTTP) → call log (pino) → deadlines →
//   HMAC request authentication → authorization (each producer key writes and deletes only
//   telemetry/<its key id>) → concurrency limit → per-connection upload budget →
//   memory pressure guard → Merkle roots in FlightInfo → the store, behind a circuit breaker
//
// plus the admin role (admin actions, gc, the full stats, any flight) for the HMAC keys named
// with --admin-key-id, TLS when certificate files
// are given, grpc.health.v1 (NOT_SERVING while the store's circuit is open and once shutdown
// begins) and a graceful shutdown on SIGTERM/SIGINT.
//
//   npm run build
//   npx ts-node examples/telemetry-server/server.ts --port 8815 --metrics-port 9464 \
//     --hmac-secret-file edge-1:edge-1.secret --hmac-secret-file ops:ops.secret --admin-key-id ops
//
// Every flag of the blackice-flight CLI works (and falls back to its BLACKICE_* environment
// variable); README.md in this folder lists them and the three flags of this example.
import * as http from "node:http";
import pino, { type Logger } from "pino";
import { Registry } from "prom-client";
import {
  ADMIN_ROLE,
  DEFAULT_MAX_MEMORY_BYTES,
  MemoryStore,
  describeSchemaDifference,
  hasRole,
  identityOf,
  parseSize,
  readSchema,
  serverConfig,
  settingsOf,
  withStore,
  type CallInfo,
  type ServerPart,
  type StoredMessage,
} from "@blackice/flight-core";
import { createFlightServer, projectExchange, type FlightServer } from "@blackice/flight";
import { UsageError, parseCli, usage, type CliSettings } from "@blackice/flight-cli";
import {
  adminActions,
  callLogger,
  circuitBreaker,
  concurrencyLimit,
  deadlines,
  guardedStore,
  memoryPressureGuard,
  metrics,
  putByteBudget,
} from "@blackice/flight-resilience";
import { authorize, hmacAuth, isPathDescriptor, merkleIntegrity, tls, type AccessRequest } from "@blackice/flight-security";

const MiB = 1024 * 1024;

/** The first path segment of the telemetry flights: producer `K` writes `telemetry/K` and below. */
export const TELEMETRY_PREFIX = "telemetry";

/**
 * Who may do what once calls are signed. Admin keys (role `admin`, from --admin-key-id): all.
 * Any other key: read and list every flight under `telemetry/`; write (put, append, renew) and
 * delete only its own, `telemetry/<key id>` and below, so one producer cannot overwrite or
 * delete another's flights. Actions and exchanges are open to every key: `gc`, the full
 * `stats` and the `admin.*` actions check the admin role themselves, and exchanges only
 * transform what the caller sends.
 *
 * @example
 * authorize(telemetryPolicy); // after hmacAuth
 */
export function telemetryPolicy(request: AccessRequest): boolean {
  const who = request.identity;
  if (who === undefined) return false;
  if (hasRole(who, ADMIN_ROLE)) return true;
  const path = isPathDescriptor(request.descriptor) ? request.descriptor.path : undefined;
  const telemetry = path !== undefined && path[0] === TELEMETRY_PREFIX;
  switch (request.operation) {
    case "meta":
    case "action":
    case "exchange":
      return true;
    case "read":
    case "list":
      return telemetry;
    case "write":
    case "delete":
      return telemetry && path!.length >= 2 && path![1] === who.subject;
    default:
      return false;
  }
}

/** Everything the server needs; {@link parseOptions} makes it from flags and the environment. */
export interface TelemetryServerOptions {
  /** The blackice-flight CLI settings (address, limits, TLS files, HMAC secret files, metrics port, log level). */
  readonly cli: CliSettings;
  /** HMAC key ids allowed to use the admin actions. None: admin actions are refused to everyone. */
  readonly adminKeyIds: readonly string[];
  /** RSS above which puts are refused (memoryPressureGuard). Default: the store's limit + 512 MiB. */
  readonly maxRssBytes?: number;
  /** How long in-flight calls may finish at shutdown. Default 10 s. */
  readonly graceMs?: number;
  /** The logger; default pino at the CLI's log level, to stdout. */
  readonly logger?: Logger;
}

/** A composed server with its metrics endpoint. */
export interface TelemetryServer {
  readonly server: FlightServer;
  readonly store: MemoryStore;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Starts the Flight server, then the metrics endpoint; logs where they listen. */
  start(): Promise<{ location: string; metricsUrl: string | undefined }>;
  /** Graceful shutdown: Flight first (health NOT_SERVING, grace for calls in flight), then /metrics. */
  stop(): Promise<void>;
}

/** Schemas are compared by structure, as createFlightServer does for the store it makes itself. */
function schemaDifference(a: StoredMessage, b: StoredMessage): string | undefined {
  return describeSchemaDifference(readSchema(a.header), readSchema(b.header));
}

function hostOf(addr: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(addr);
  return m ? (m[1] ?? m[2]!) : "127.0.0.1";
}

/**
 * Builds the server. Nothing listens until `start()`.
 *
 * @example
 * const t = telemetryServer({ cli: parseCli(["--port", "0", "--metrics-port", "0"], {}), adminKeyIds: [] });
 * await t.start();
 * await t.stop();
 */
export function telemetryServer(options: TelemetryServerOptions): TelemetryServer {
  const { cli } = options;
  const logger = options.logger ?? pino({ level: cli.logLevel, base: { service: "telemetry-server" } });
  const c = cli.config;
  const maxMemoryBytes = c.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
  const graceMs = options.graceMs ?? 10_000;

  // The store the server serves from: a MemoryStore of our own for its schema comparison and
  // its error log. serverConfig's limits (ttl, maxMemoryBytes, gcInterval, enableGC) reach it
  // through withStore, and guardedStore wraps it in the store breaker. Middleware and actions
  // (metrics, merkleIntegrity, adminActions) read it from the call or the server's setup.
  const memory = new MemoryStore({
    schemasEqual: schemaDifference,
    onError: (err) => logger.error({ error: err instanceof Error ? err.name : typeof err }, "store background work failed"),
  });
  const storeBreaker = circuitBreaker({ name: "store", logger });

  // HMAC request authentication, when secret files are given (KEYID:PATH, or PATH for key
  // "default"); the --admin-key-id keys get the admin role.
  const adminKeyIds = new Set(options.adminKeyIds);
  const hmacKeys = cli.hmacSecretFiles.map((f) => {
    const keyId = f.keyId ?? "default";
    return { keyId, secretPath: f.path, ...(adminKeyIds.has(keyId) ? { roles: [ADMIN_ROLE] } : {}) };
  });
  const hmacParts = hmacKeys.length > 0 ? hmacAuth({ keys: hmacKeys }) : [];
  const [hmacStats] = settingsOf(hmacParts, "stats");
  const authFailures = hmacStats ? () => (hmacStats.collect() as { rejected: Record<string, number> }).rejected : undefined;

  const isAdmin = (call: CallInfo): boolean => hasRole(identityOf(call), ADMIN_ROLE);

  const registry = new Registry();
  const parts: ServerPart[] = [
    // Errors no caller sees (the caller gets INTERNAL): logged by name, since their messages may quote data.
    serverConfig({ ...c, onError: (err, { method }) => logger.error({ method, error: err instanceof Error ? err.name : typeof err }, "internal error") }),
    withStore(memory),
    guardedStore(storeBreaker),
    storeBreaker.parts,
    // Middleware, outermost first: metrics and the call log see every call, refusals included.
    metrics({ registry, breakers: [storeBreaker], authFailures }),
    callLogger({ logger }),
    deadlines({ defaultMs: 60_000, maxMs: 10 * 60_000 }),
    hmacParts,
    // Authorization needs an identity, so it comes with authentication only.
    hmacParts.length > 0 ? authorize(telemetryPolicy) : [],
    concurrencyLimit({ global: 256, perMethod: { doPut: 32, doExchange: 16 } }),
    putByteBudget({ perConnectionBytes: Math.min(512 * MiB, maxMemoryBytes) }),
    memoryPressureGuard({ maxRssBytes: options.maxRssBytes ?? maxMemoryBytes + 512 * MiB }),
    merkleIntegrity(),
    // Admin actions change the store's settings, which the breaker passes through unguarded:
    // they work during an incident.
    adminActions({ logger, breakers: [storeBreaker], isAdmin }),
  ];
  if (cli.tls) parts.push(tls({ certFile: cli.tls.certFile, keyFile: cli.tls.keyFile, clientCaFile: cli.tls.clientCaFile, watch: true }));
  if (cli.projectExchange) parts.push(projectExchange());
  const server = createFlightServer(...parts);

  // Load balancers drain this server while its store fails.
  storeBreaker.onStateChange(({ to }) => {
    if (server.serving) server.setHealth(to === "open" ? "NOT_SERVING" : "SERVING");
  });

  let metricsServer: http.Server | undefined;
  const serveMetrics = (port: number, host: string): Promise<string> => {
    metricsServer = http.createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method === "GET" && path === "/metrics") {
        registry.metrics().then(
          (body) => {
            res.writeHead(200, { "content-type": registry.contentType });
            res.end(body);
          },
          () => {
            res.writeHead(500, { "content-type": "text/plain" });
            res.end("metrics unavailable\n");
          },
        );
      } else if (req.method === "GET" && path === "/healthz") {
        res.writeHead(server.serving ? 200 : 503, { "content-type": "text/plain" });
        res.end(server.serving ? "serving\n" : "not serving\n");
      } else {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found: try /metrics\n");
      }
    });
    return new Promise((resolve, reject) => {
      metricsServer!.once("error", reject);
      metricsServer!.listen(port, host, () => {
        const a = metricsServer!.address() as { port: number };
        resolve(`http://${host.includes(":") ? `[${host}]` : host}:${a.port}/metrics`);
      });
    });
  };

  return {
    server,
    store: memory,
    registry,
    logger,
    async start() {
      if (hmacParts.length === 0) logger.warn("no --hmac-secret-file: calls are not authenticated; anyone who can connect can read, write and delete");
      if (adminKeyIds.size === 0) logger.warn("no --admin-key-id: the admin actions are refused to every caller");
      else if (hmacParts.length === 0) logger.warn("--admin-key-id needs --hmac-secret-file: the admin actions are refused to every caller");
      await server.start();
      let metricsUrl: string | undefined;
      try {
        metricsUrl = cli.metricsPort === undefined ? undefined : await serveMetrics(cli.metricsPort, hostOf(c.addr));
      } catch (err) {
        await server.shutdown({ graceMs: 0 });
        throw new Error(`cannot serve metrics on port ${cli.metricsPort}: ${(err as Error).message}`);
      }
      logger.info({ location: server.location, metrics: metricsUrl ?? null, merkle: true, hmac: hmacParts.length > 0, tls: cli.tls !== undefined }, `BlackIce Flight listening on ${server.location}`);
      return { location: server.location, metricsUrl };
    },
    async stop() {
      // Flight first: health goes NOT_SERVING, new calls are refused, calls in flight get the
      // grace time; then the metrics endpoint, so the shutdown can still be scraped.
      await server.shutdown({ graceMs });
      await memory.close();
      if (metricsServer) {
        const m = metricsServer;
        await new Promise<void>((resolve) => m.close(() => resolve()));
        m.closeAllConnections();
      }
      logger.info("stopped");
    },
  };
}

/** This example's own flags, taken out before the CLI's flags are read. */
const EXTRA_FLAGS = {
  "admin-key-id": { env: "TELEMETRY_ADMIN_KEY_IDS", help: "HMAC key id allowed to use the admin actions; repeatable (env: comma-separated)" },
  "max-rss": { env: "TELEMETRY_MAX_RSS", help: "refuse puts above this RSS, e.g. 6GiB (default: --max-memory + 512MiB)" },
} as const;

/** The `--help` text: the CLI's flags and this example's. */
export function exampleUsage(): string {
  const extra = Object.entries(EXTRA_FLAGS).map(([flag, f]) => `  --${flag.padEnd(18)} ${f.help} [${f.env}]`);
  return usage().replace("Usage: blackice-flight [options]", "Usage: ts-node examples/telemetry-server/server.ts [options]").replace(/\n  -h, --help/, `\n${extra.join("\n")}\n  -h, --help`);
}

/** Reads flags (falling back to environment variables) into {@link TelemetryServerOptions}. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): TelemetryServerOptions & { help: boolean } {
  const rest: string[] = [];
  const extra: Record<string, string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m || !(m[1]! in EXTRA_FLAGS)) {
      rest.push(argv[i]!);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${m[1]} needs a value`);
    (extra[m[1]!] ??= []).push(value);
  }
  const get = (flag: keyof typeof EXTRA_FLAGS): string[] =>
    extra[flag] ?? (env[EXTRA_FLAGS[flag].env] ? env[EXTRA_FLAGS[flag].env]!.split(",").map((s) => s.trim()).filter(Boolean) : []);
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const cli = parseCli(rest, env);
  const adminKeyIds = get("admin-key-id");
  for (const id of adminKeyIds) if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) throw new UsageError(`--admin-key-id: ${JSON.stringify(id)} is not a key id`);
  const maxRss = get("max-rss").at(-1);
  return {
    cli: { ...cli, metricsPort: cli.metricsPort ?? 9464 },
    adminKeyIds,
    maxRssBytes: maxRss === undefined ? undefined : wrap(() => parseSize(maxRss, "--max-rss")),
    graceMs: cli.graceMs,
    help: cli.help,
  };
}

if (require.main === module) {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`telemetry-server: ${err.message}\n\n${exampleUsage()}`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(exampleUsage());
    process.exit(0);
  }
  let t: TelemetryServer;
  try {
    t = telemetryServer(options);
  } catch (err) {
    // Bad files (secrets, certificates) are TypeErrors naming the option and the file.
    process.stderr.write(`telemetry-server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // Signal handlers go in before the server announces itself.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    t.logger.info({ signal }, "shutting down");
    t.stop().then(
      () => process.exit(0),
      (err) => {
        t.logger.error({ error: (err as Error).message }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  t.start().catch((err) => {
    t.logger.fatal({ error: (err as Error).message }, "cannot start");
    process.exit(1);
  });
}
