import { parseArgs } from "node:util";
import { parseDuration, parseSize, type FlightServerConfig } from "@blackice/flight-core";
import { CorsPolicy } from "./transport/cors-policy";

/** A command-line or environment setting that could not be used. Exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The CLI's settings: each flag, its environment variable, and what it takes. */
export const CLI_FLAGS = [
  { flag: "host", env: "BLACKICE_HOST", help: "address to listen on (default 127.0.0.1)" },
  { flag: "port", env: "BLACKICE_PORT", help: "port to listen on, 0 for any (default 8815)" },
  { flag: "ttl", env: "BLACKICE_TTL", help: "default time to live of a flight: ms or 30s/5m/1h; 0 = never (default 0)" },
  { flag: "max-memory", env: "BLACKICE_MAX_MEMORY", help: "memory limit for stored data: bytes or 512MiB/4GiB (default 1GiB)" },
  { flag: "data-dir", env: "BLACKICE_DATA_DIR", help: "keep flights on disk in this directory (durable; see docs/storage.md); default: in memory" },
  { flag: "fsync", env: "BLACKICE_FSYNC", help: "with --data-dir: when puts are forced to disk: always, interval (every 1s), never (default always)" },
  { flag: "max-disk", env: "BLACKICE_MAX_DISK", help: "with --data-dir: limit of stored bytes on disk: bytes or 100GiB (default none)" },
  { flag: "max-message-size", env: "BLACKICE_MAX_MESSAGE_SIZE", help: "largest gRPC message, up to 256MiB (default 64MiB)" },
  { flag: "gc-interval", env: "BLACKICE_GC_INTERVAL", help: "background GC interval: ms or 30s (default 30s); 0 disables background GC" },
  { flag: "tls-cert", env: "BLACKICE_TLS_CERT", help: "PEM certificate chain; turns on TLS (needs --tls-key)" },
  { flag: "tls-key", env: "BLACKICE_TLS_KEY", help: "PEM private key" },
  { flag: "tls-client-ca", env: "BLACKICE_TLS_CLIENT_CA", help: "PEM CA for client certificates; turns on mTLS" },
  { flag: "hmac-secret-file", env: "BLACKICE_HMAC_SECRET_FILE", help: "HMAC secret file, or KEYID:PATH; repeatable (env: comma-separated)" },
  { flag: "jwt-jwks", env: "BLACKICE_JWT_JWKS", help: "JWT bearer auth: JWKS file or https: URL of the verification keys (needs --jwt-issuer, --jwt-audience)" },
  { flag: "jwt-issuer", env: "BLACKICE_JWT_ISSUER", help: "JWT bearer auth: the accepted iss" },
  { flag: "jwt-audience", env: "BLACKICE_JWT_AUDIENCE", help: "JWT bearer auth: the accepted aud (comma-separated for several)" },
  { flag: "merkle-signing-key", env: "BLACKICE_MERKLE_SIGNING_KEY", help: "publish Merkle roots in FlightInfo, signed with this Ed25519 private key (PEM file)" },
  { flag: "metrics-port", env: "BLACKICE_METRICS_PORT", help: "serve Prometheus metrics on this port at /metrics" },
  { flag: "log-level", env: "BLACKICE_LOG_LEVEL", help: "log level: silent, error, warn, info, debug (default info)" },
  { flag: "project-exchange", env: "BLACKICE_PROJECT_EXCHANGE", help: "serve the `project` DoExchange on a bounded worker pool; a switch, env 1/true (default off)" },
  { flag: "query", env: "BLACKICE_QUERY", help: "serve query descriptors and tickets (column projection, docs/query.md); a switch, env 1/true (default off)" },
  { flag: "flight-sql", env: "BLACKICE_FLIGHT_SQL", help: "serve Arrow Flight SQL (ADBC, JDBC; stored flights as tables, docs/query.md); turns on --query; a switch, env 1/true (default off)" },
  { flag: "web", env: "BLACKICE_WEB", help: "serve the flight browser page at / on the server's port; a switch, env 1/true (default off)" },
  { flag: "cors-origin", env: "BLACKICE_CORS_ORIGIN", help: "a web origin (http(s)://host[:port], or *) whose pages may call the server; repeatable (env: comma-separated); default none (CORS off)" },
  {
    flag: "cluster",
    env: "BLACKICE_CLUSTER",
    help: "join a cluster whose catalog is in Redis: redis://HOST:PORT[/DB] (rediss:// for TLS); repeat for the seed nodes of a Redis Cluster; redis+sentinel://H:P[,H:P]/MASTER for Sentinel (env: comma-separated; see docs/cluster.md)",
  },
  { flag: "advertise", env: "BLACKICE_ADVERTISE", help: "with --cluster: the location other nodes and clients reach this node at, grpc+tcp://HOST:PORT (default: grpc+tcp://--host:--port, grpc+tls:// with --tls-cert)" },
  { flag: "node-id", env: "BLACKICE_NODE_ID", help: "with --cluster: this node's id, stable across restarts (default: the advertised HOST:PORT)" },
  { flag: "replicas", env: "BLACKICE_REPLICAS", help: "with --cluster: copies of each flight, 1 to 16, fewer while fewer nodes are alive (default 2)" },
  { flag: "cluster-heartbeat", env: "BLACKICE_CLUSTER_HEARTBEAT", help: "with --cluster: heartbeat interval, ms or 1s; a node silent for 5 intervals is dead (default 1s)" },
  { flag: "cluster-ca", env: "BLACKICE_CLUSTER_CA", help: "with --cluster and --tls-cert: PEM CA that signed the other nodes' certificates (default: the system's)" },
] as const;

/** The flags that take no value (switches); their environment variables take 1/true/yes/on or 0/false/no/off. */
const SWITCHES: ReadonlySet<string> = new Set(["project-exchange", "query", "flight-sql", "web"]);
/** The flags that may be given more than once. */
const REPEATABLE: ReadonlySet<string> = new Set(["hmac-secret-file", "cors-origin", "cluster"]);

/** The settled CLI settings. */
export interface CliSettings {
  config: FlightServerConfig & { addr: string };
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  hmacSecretFiles: Array<{ keyId?: string; path: string }>;
  /** JWT bearer authentication (`jwtAuth`): `--jwt-jwks`, `--jwt-issuer`, `--jwt-audience`. */
  jwt?: { jwks: string; issuer: string; audience: string[] };
  /** Merkle integrity with signed roots (`merkleIntegrity({ signingKey })`): `--merkle-signing-key`. */
  merkleSigningKey?: string;
  metricsPort?: number;
  logLevel: string;
  /** Keep flights on disk (`--data-dir`, `--fsync`, `--max-disk`); absent: the in-memory store. */
  disk?: { dir: string; fsync: "always" | "interval" | "never"; maxDiskBytes?: number };
  /** Serve the `project` DoExchange (`projectExchange()`): `--project-exchange`. */
  projectExchange: boolean;
  /** Serve query descriptors and tickets (`query()`, docs/query.md): `--query`. */
  query: boolean;
  /** Serve Flight SQL (`flightSql()` before `query()`, docs/query.md): `--flight-sql`. Implies {@link query}. */
  flightSql: boolean;
  /** Join a cluster (`--cluster`, `--advertise`, `--node-id`, `--replicas`, `--cluster-heartbeat`, `--cluster-ca`); absent: a single node. */
  cluster?: { redis: string[]; advertise?: string; nodeId?: string; replicas?: number; heartbeatMs?: number; caFile?: string };
  help: boolean;
  /** `--version`: print the version and exit. */
  version: boolean;
}

function intIn(what: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new UsageError(`${what} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * Reads CLI flags, falling back to environment variables. Throws {@link UsageError} with
 * a message naming the bad flag and what it takes.
 *
 * @example
 * parseCli(["--port", "9000", "--ttl", "1h"], process.env);
 */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): CliSettings {
  const options = Object.fromEntries(
    CLI_FLAGS.map((f) => [f.flag, { type: SWITCHES.has(f.flag) ? ("boolean" as const) : ("string" as const), multiple: REPEATABLE.has(f.flag) }]),
  ) as Record<string, { type: "string" | "boolean"; multiple: boolean }>;
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" }, version: { type: "boolean" } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const get = (flag: (typeof CLI_FLAGS)[number]["flag"]): string | undefined => {
    const v = values[flag];
    if (Array.isArray(v)) return v.length > 0 ? v.join(",") : undefined;
    if (typeof v === "string") return v;
    return env[CLI_FLAGS.find((f) => f.flag === flag)!.env] || undefined;
  };
  const on = (flag: (typeof CLI_FLAGS)[number]["flag"]): boolean => {
    if (values[flag] === true) return true;
    const name = CLI_FLAGS.find((f) => f.flag === flag)!.env;
    const text = (env[name] ?? "").trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(text)) return true;
    if (["", "0", "false", "no", "off"].includes(text)) return false;
    throw new UsageError(`${name} must be 1, true, yes, on, 0, false, no or off; got ${JSON.stringify(env[name])}`);
  };
  const host = get("host") ?? "127.0.0.1";
  const port = intIn("--port", get("port") ?? "8815", 0, 65535);
  const config: CliSettings["config"] = { addr: `${host.includes(":") ? `[${host}]` : host}:${port}` };
  const ttl = get("ttl");
  if (ttl !== undefined) config.ttl = wrap(() => parseDuration(ttl, "--ttl"));
  const mem = get("max-memory");
  if (mem !== undefined) config.maxMemoryBytes = wrap(() => parseSize(mem, "--max-memory"));
  const msg = get("max-message-size");
  if (msg !== undefined) {
    config.maxMessageBytes = wrap(() => parseSize(msg, "--max-message-size"));
    if (config.maxMessageBytes > 256 * 2 ** 20 || config.maxMessageBytes < 1024) throw new UsageError("--max-message-size must be from 1KiB to 256MiB");
  }
  const gc = get("gc-interval");
  if (gc !== undefined) {
    const ms = wrap(() => parseDuration(gc, "--gc-interval"));
    if (ms === 0) config.enableGC = false;
    else config.gcInterval = ms;
  }
  const dataDir = get("data-dir");
  const fsync = get("fsync");
  const maxDisk = get("max-disk");
  let disk: CliSettings["disk"];
  if (dataDir !== undefined) {
    if (fsync !== undefined && fsync !== "always" && fsync !== "interval" && fsync !== "never") {
      throw new UsageError(`--fsync must be always, interval or never; got ${JSON.stringify(fsync)}`);
    }
    // The disk store holds little in memory and has no memory limit to set.
    if (mem !== undefined) throw new UsageError("--max-memory limits the in-memory store; with --data-dir use --max-disk");
    disk = { dir: dataDir, fsync: (fsync ?? "always") as "always" | "interval" | "never" };
    if (maxDisk !== undefined) disk.maxDiskBytes = wrap(() => parseSize(maxDisk, "--max-disk"));
  } else if (fsync !== undefined || maxDisk !== undefined) {
    throw new UsageError(`--${fsync !== undefined ? "fsync" : "max-disk"} needs --data-dir`);
  }
  const cert = get("tls-cert");
  const key = get("tls-key");
  const clientCa = get("tls-client-ca");
  let tls: CliSettings["tls"];
  if (cert || key || clientCa) {
    if (!cert || !key) throw new UsageError("--tls-cert and --tls-key go together");
    tls = { certFile: cert, keyFile: key, clientCaFile: clientCa };
  }
  const hmacSecretFiles = (get("hmac-secret-file") ?? "")
    .split(",")
    .filter((s) => s.length > 0)
    .map((s) => {
      const m = /^([A-Za-z0-9._-]+):(.+)$/.exec(s);
      return m && !/^[A-Za-z]:[\\/]/.test(s) ? { keyId: m[1], path: m[2] } : { path: s };
    });
  const jwks = get("jwt-jwks");
  const issuer = get("jwt-issuer");
  const audience = get("jwt-audience");
  let jwt: CliSettings["jwt"];
  if (jwks !== undefined || issuer !== undefined || audience !== undefined) {
    if (jwks === undefined || issuer === undefined || audience === undefined) throw new UsageError("--jwt-jwks, --jwt-issuer and --jwt-audience go together");
    const audiences = audience.split(",").map((a) => a.trim()).filter((a) => a.length > 0);
    if (audiences.length === 0) throw new UsageError("--jwt-audience must name at least one audience");
    jwt = { jwks, issuer, audience: audiences };
  }
  if (on("web")) config.webPage = true;
  const corsOrigins = (get("cors-origin") ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (corsOrigins.length > 0) {
    wrap(() => new CorsPolicy(corsOrigins));
    config.corsOrigins = corsOrigins;
  }
  const metrics = get("metrics-port");
  const logLevel = get("log-level") ?? "info";
  if (!["silent", "fatal", "error", "warn", "info", "debug", "trace"].includes(logLevel)) {
    throw new UsageError(`--log-level must be one of silent, error, warn, info, debug, trace; got ${JSON.stringify(logLevel)}`);
  }
  const clusterUrls = (get("cluster") ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  let cluster: CliSettings["cluster"];
  const clusterOnly = (["advertise", "node-id", "replicas", "cluster-heartbeat", "cluster-ca"] as const).find((f) => get(f) !== undefined);
  if (clusterUrls.length > 0) {
    const replicas = get("replicas");
    const heartbeat = get("cluster-heartbeat");
    cluster = {
      redis: clusterUrls,
      advertise: get("advertise"),
      nodeId: get("node-id"),
      replicas: replicas === undefined ? undefined : intIn("--replicas", replicas, 1, 16),
      heartbeatMs: heartbeat === undefined ? undefined : wrap(() => parseDuration(heartbeat, "--cluster-heartbeat")),
      caFile: get("cluster-ca"),
    };
    if (cluster.heartbeatMs !== undefined && (cluster.heartbeatMs < 100 || cluster.heartbeatMs > 60_000)) throw new UsageError("--cluster-heartbeat must be from 100ms to 60s");
    if (cluster.caFile !== undefined && !tls) throw new UsageError("--cluster-ca needs --tls-cert (the nodes speak TLS to each other only when they serve TLS)");
  } else if (clusterOnly !== undefined) {
    throw new UsageError(`--${clusterOnly} needs --cluster`);
  }
  return {
    config,
    tls,
    cluster,
    hmacSecretFiles,
    jwt,
    merkleSigningKey: get("merkle-signing-key"),
    metricsPort: metrics === undefined ? undefined : intIn("--metrics-port", metrics, 0, 65535),
    logLevel,
    disk,
    projectExchange: on("project-exchange"),
    query: on("query") || on("flight-sql"),
    flightSql: on("flight-sql"),
    help: values.help === true,
    version: values.version === true,
  };
}

/** The `--help` text. */
export function usage(): string {
  const lines = CLI_FLAGS.map((f) => `  --${f.flag.padEnd(18)} ${f.help} [${f.env}]`);
  return ["Usage: blackice-flight [options]", "", "Starts a BlackIce Flight server with an in-memory store, or a durable one with --data-dir; with --cluster, a node of a cluster sharing its catalog in Redis.", "", ...lines, "  -h, --help           this text", "      --version        the version", ""].join("\n");
}
