import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { parseDuration, parseSize, type FlightServerConfig } from "@blackice/flight-core";
import { parse as parseYaml } from "yaml";

/** A command-line, config-file or environment setting that could not be used. Exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The CLI's settings: each flag, its environment variable, and what it takes. A config file uses the flags' names as keys. */
export const CLI_FLAGS = [
  { flag: "config", env: "BLACKICE_CONFIG", help: "read settings from this JSON or YAML file, keys named as the flags (port: 9000); flags override it, it overrides the environment" },
  { flag: "host", env: "BLACKICE_HOST", help: "address to listen on (default 127.0.0.1)" },
  { flag: "port", env: "BLACKICE_PORT", help: "port to listen on, 0 for any (default 8815)" },
  { flag: "ttl", env: "BLACKICE_TTL", help: "default time to live of a flight: ms or 30s/5m/1h; 0 = never (default 0)" },
  { flag: "max-memory", env: "BLACKICE_MAX_MEMORY", help: "memory limit for stored data: bytes or 512MiB/4GiB (default 1GiB)" },
  { flag: "data-dir", env: "BLACKICE_DATA_DIR", help: "keep flights on disk in this directory (durable; see docs/storage.md); default: in memory" },
  { flag: "fsync", env: "BLACKICE_FSYNC", help: "with --data-dir: when puts are forced to disk: always, interval (every 1s), never (default always)" },
  { flag: "max-disk", env: "BLACKICE_MAX_DISK", help: "with --data-dir: limit of stored bytes on disk: bytes or 100GiB (default none)" },
  { flag: "max-message-size", env: "BLACKICE_MAX_MESSAGE_SIZE", help: "largest gRPC message, up to 256MiB (default 64MiB)" },
  { flag: "gc-interval", env: "BLACKICE_GC_INTERVAL", help: "background GC interval: ms or 30s (default 30s); 0 disables background GC" },
  { flag: "grace", env: "BLACKICE_GRACE", help: "on SIGTERM/SIGINT, how long open calls may finish before they are cut: ms or 30s (default 10s)" },
  { flag: "tls-cert", env: "BLACKICE_TLS_CERT", help: "PEM certificate chain; turns on TLS (needs --tls-key)" },
  { flag: "tls-key", env: "BLACKICE_TLS_KEY", help: "PEM private key" },
  { flag: "tls-client-ca", env: "BLACKICE_TLS_CLIENT_CA", help: "PEM CA for client certificates; turns on mTLS" },
  { flag: "hmac-secret-file", env: "BLACKICE_HMAC_SECRET_FILE", help: "HMAC secret file, or KEYID:PATH; repeatable (env: comma-separated)" },
  { flag: "jwt-jwks", env: "BLACKICE_JWT_JWKS", help: "JWT bearer auth: JWKS file or https: URL of the verification keys (needs --jwt-issuer, --jwt-audience)" },
  { flag: "jwt-issuer", env: "BLACKICE_JWT_ISSUER", help: "JWT bearer auth: the accepted iss" },
  { flag: "jwt-audience", env: "BLACKICE_JWT_AUDIENCE", help: "JWT bearer auth: the accepted aud (comma-separated for several)" },
  { flag: "merkle-signing-key", env: "BLACKICE_MERKLE_SIGNING_KEY", help: "publish Merkle roots in FlightInfo, signed with this Ed25519 private key (PEM file)" },
  { flag: "metrics-port", env: "BLACKICE_METRICS_PORT", help: "serve Prometheus metrics on this port at /metrics, and /healthz, /readyz" },
  { flag: "log-level", env: "BLACKICE_LOG_LEVEL", help: "log level: silent, error, warn, info, debug (default info); JSON lines on stdout, pretty on a terminal" },
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

/** A flag's name, without `--`. */
export type CliFlag = (typeof CLI_FLAGS)[number]["flag"];

/** The flags that take no value (switches); their environment variables take 1/true/yes/on or 0/false/no/off. */
const SWITCHES: ReadonlySet<string> = new Set(["project-exchange", "query", "flight-sql", "web"]);
/** The flags that may be given more than once. */
const REPEATABLE: ReadonlySet<string> = new Set(["hmac-secret-file", "cors-origin", "cluster"]);
const FLAG_NAMES: ReadonlySet<string> = new Set(CLI_FLAGS.map((f) => f.flag));
const ENV_OF = new Map<string, string>(CLI_FLAGS.map((f) => [f.flag, f.env]));

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
  /** How long open calls may finish after SIGTERM/SIGINT, ms (`--grace`; default 10 000). */
  graceMs: number;
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
  /**
   * Where each setting that was given came from, as an error message names it: `--ttl`,
   * `BLACKICE_TTL`, or `ttl in FILE`. A check made later (when the server is built) uses it to
   * name the setting the operator wrote.
   */
  sources: Partial<Record<CliFlag, string>>;
  help: boolean;
  /** `--version`: print the version and exit. */
  version: boolean;
}

/** One setting as given: its text (a list for repeatable flags, `true`/`false` for switches) and where it came from. */
interface Given {
  value: string | string[] | boolean;
  from: string;
}

function intIn(what: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new UsageError(`${what} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** Runs a core parser (parseSize, parseDuration), whose TypeError names `what`, as a UsageError. */
function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * node:util's parseArgs refuses a value that starts with `-` ("ambiguous"), so `--ttl -5s`
 * would never reach the check that names the flag. A value-taking flag followed by something
 * that is not one of our flags takes it as its value (`--ttl=-5s`); one followed by nothing or
 * by another flag is missing its value.
 */
function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : undefined;
    if (name !== undefined && FLAG_NAMES.has(name) && !SWITCHES.has(name)) {
      const next = argv[i + 1];
      const isFlag = next !== undefined && (next === "-h" || (next.startsWith("--") && FLAG_NAMES.has(next.slice(2).split("=")[0]!)) || next === "--help" || next === "--version");
      if (next === undefined || isFlag) throw new UsageError(`--${name} needs a value`);
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * Reads a config file: JSON (`.json`) or YAML (anything else; YAML 1.2 reads JSON too), one
 * mapping whose keys are the flags' names. `from` names where the file's path was given.
 */
function readConfigFile(file: string, from: string): Map<string, Given> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${from}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  const json = /\.json$/i.test(file);
  try {
    doc = json ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new UsageError(`${from}: ${file} is not valid ${json ? "JSON" : "YAML"}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== "object" || Array.isArray(doc)) throw new UsageError(`${from}: ${file} must hold a mapping of settings (port: 9000), not ${Array.isArray(doc) ? "a list" : typeof doc}`);
  const out = new Map<string, Given>();
  for (const [key, raw] of Object.entries(doc as Record<string, unknown>)) {
    const where = `${key} in ${file}`;
    if (!FLAG_NAMES.has(key) || key === "config") {
      throw new UsageError(`unknown key ${JSON.stringify(key)} in ${file}; the keys are the flags' names without --: ${CLI_FLAGS.filter((f) => f.flag !== "config").map((f) => f.flag).join(", ")}`);
    }
    const scalar = (v: unknown): string => {
      if (typeof v === "string") return v;
      if (typeof v === "number" && Number.isFinite(v)) return String(v);
      throw new UsageError(`${where} must be ${REPEATABLE.has(key) ? "a string or a list of strings" : "a string or a number"}, got ${JSON.stringify(v)}`);
    };
    if (SWITCHES.has(key)) {
      if (typeof raw !== "boolean") throw new UsageError(`${where} must be true or false, got ${JSON.stringify(raw)}`);
      out.set(key, { value: raw, from: where });
    } else if (REPEATABLE.has(key)) {
      out.set(key, { value: (Array.isArray(raw) ? raw : [raw]).map(scalar), from: where });
    } else {
      out.set(key, { value: scalar(raw), from: where });
    }
  }
  return out;
}

/**
 * Reads the CLI's settings: flags first, then the `--config` file, then environment
 * variables. Throws {@link UsageError} with a message naming the flag, file key or variable
 * the bad value came from and what it takes.
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
    ({ values } = parseArgs({ args: joinDashValues(argv), options: { ...options, help: { type: "boolean", short: "h" }, version: { type: "boolean" } }, strict: true, allowPositionals: false }));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // parseArgs' own texts run over several lines; the first says what is wrong.
    throw new UsageError((err as Error).message.split("\n")[0]!);
  }
  const fromEnv = (flag: string): Given | undefined => {
    const name = ENV_OF.get(flag)!;
    const text = env[name];
    if (text === undefined || text === "") return undefined;
    if (SWITCHES.has(flag)) {
      const t = text.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(t)) return { value: true, from: name };
      if (["0", "false", "no", "off"].includes(t)) return { value: false, from: name };
      throw new UsageError(`${name} must be 1, true, yes, on, 0, false, no or off; got ${JSON.stringify(text)}`);
    }
    if (REPEATABLE.has(flag)) return { value: text.split(",").map((s) => s.trim()).filter((s) => s.length > 0), from: name };
    return { value: text, from: name };
  };
  const fromFlags = (flag: string): Given | undefined => {
    const v = values[flag];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) return undefined;
    return { value: v, from: `--${flag}` };
  };
  const configGiven = fromFlags("config") ?? fromEnv("config");
  const file = configGiven ? readConfigFile(configGiven.value as string, configGiven.from) : new Map<string, Given>();
  const sources: CliSettings["sources"] = configGiven ? { config: configGiven.from } : {};
  const given = (flag: CliFlag): Given | undefined => {
    const g = fromFlags(flag) ?? file.get(flag) ?? fromEnv(flag);
    if (g) sources[flag] = g.from;
    return g;
  };
  /** A value-taking setting: its text and where it came from. */
  const get = (flag: CliFlag): { text: string; from: string } | undefined => {
    const g = given(flag);
    return g === undefined ? undefined : { text: g.value as string, from: g.from };
  };
  /** A repeatable setting: every value, and where they came from. */
  const list = (flag: CliFlag): { items: string[]; from: string } => {
    const g = given(flag);
    return g === undefined ? { items: [], from: `--${flag}` } : { items: (g.value as string[]).filter((s) => s.length > 0), from: g.from };
  };
  const on = (flag: CliFlag): boolean => given(flag)?.value === true;

  const host = get("host")?.text ?? "127.0.0.1";
  const portGiven = get("port");
  const port = portGiven ? intIn(portGiven.from, portGiven.text, 0, 65535) : 8815;
  const config: CliSettings["config"] = { addr: `${host.includes(":") ? `[${host}]` : host}:${port}` };
  // The ranges are createFlightServer's (a TypeError there would name its option, not the flag).
  const ttl = get("ttl");
  if (ttl !== undefined) config.ttl = wrap(() => parseDuration(ttl.text, ttl.from));
  const mem = get("max-memory");
  if (mem !== undefined) {
    config.maxMemoryBytes = wrap(() => parseSize(mem.text, mem.from));
    if (config.maxMemoryBytes < 1) throw new UsageError(`${mem.from} must be at least 1 byte (e.g. 512MiB), got ${JSON.stringify(mem.text)}`);
  }
  const msg = get("max-message-size");
  if (msg !== undefined) {
    config.maxMessageBytes = wrap(() => parseSize(msg.text, msg.from));
    if (config.maxMessageBytes > 256 * 2 ** 20 || config.maxMessageBytes < 1024) throw new UsageError(`${msg.from} must be from 1KiB to 256MiB, got ${JSON.stringify(msg.text)}`);
  }
  const gc = get("gc-interval");
  if (gc !== undefined) {
    const ms = wrap(() => parseDuration(gc.text, gc.from));
    if (ms > 2 ** 31 - 1) throw new UsageError(`${gc.from} must be at most 24d, got ${JSON.stringify(gc.text)}`);
    if (ms === 0) config.enableGC = false;
    else config.gcInterval = ms;
  }
  const grace = get("grace");
  let graceMs = 10_000;
  if (grace !== undefined) {
    graceMs = wrap(() => parseDuration(grace.text, grace.from));
    if (graceMs > 3_600_000) throw new UsageError(`${grace.from} must be from 0 to 1h, got ${JSON.stringify(grace.text)}`);
  }
  const dataDir = get("data-dir");
  const fsync = get("fsync");
  const maxDisk = get("max-disk");
  let disk: CliSettings["disk"];
  if (dataDir !== undefined) {
    if (fsync !== undefined && fsync.text !== "always" && fsync.text !== "interval" && fsync.text !== "never") {
      throw new UsageError(`${fsync.from} must be always, interval or never; got ${JSON.stringify(fsync.text)}`);
    }
    // The disk store holds little in memory and has no memory limit to set.
    if (mem !== undefined) throw new UsageError(`${mem.from} limits the in-memory store; with ${dataDir.from} use --max-disk`);
    disk = { dir: dataDir.text, fsync: (fsync?.text ?? "always") as "always" | "interval" | "never" };
    if (maxDisk !== undefined) disk.maxDiskBytes = wrap(() => parseSize(maxDisk.text, maxDisk.from));
  } else if (fsync !== undefined || maxDisk !== undefined) {
    throw new UsageError(`${(fsync ?? maxDisk)!.from} needs --data-dir`);
  }
  const cert = get("tls-cert");
  const key = get("tls-key");
  const clientCa = get("tls-client-ca");
  let tls: CliSettings["tls"];
  if (cert || key || clientCa) {
    if (!cert || !key) throw new UsageError(`${(cert ?? key ?? clientCa)!.from} needs both --tls-cert and --tls-key`);
    tls = { certFile: cert.text, keyFile: key.text, clientCaFile: clientCa?.text };
  }
  const hmacSecretFiles = list("hmac-secret-file").items.map((s) => {
    const m = /^([A-Za-z0-9._-]+):(.+)$/.exec(s);
    return m && !/^[A-Za-z]:[\\/]/.test(s) ? { keyId: m[1], path: m[2]! } : { path: s };
  });
  const jwks = get("jwt-jwks");
  const issuer = get("jwt-issuer");
  const audience = get("jwt-audience");
  let jwt: CliSettings["jwt"];
  if (jwks !== undefined || issuer !== undefined || audience !== undefined) {
    if (jwks === undefined || issuer === undefined || audience === undefined) throw new UsageError("--jwt-jwks, --jwt-issuer and --jwt-audience go together");
    const audiences = audience.text.split(",").map((a) => a.trim()).filter((a) => a.length > 0);
    if (audiences.length === 0) throw new UsageError(`${audience.from} must name at least one audience`);
    jwt = { jwks: jwks.text, issuer: issuer.text, audience: audiences };
  }
  if (on("web")) config.webPage = true;
  const corsOrigins = list("cors-origin").items.map((s) => s.trim()).filter((s) => s.length > 0);
  if (corsOrigins.length > 0) config.corsOrigins = corsOrigins;
  const metrics = get("metrics-port");
  const logLevel = get("log-level");
  if (logLevel !== undefined && !["silent", "fatal", "error", "warn", "info", "debug", "trace"].includes(logLevel.text)) {
    throw new UsageError(`${logLevel.from} must be one of silent, error, warn, info, debug, trace; got ${JSON.stringify(logLevel.text)}`);
  }
  const clusterUrls = list("cluster").items.map((u) => u.trim()).filter((u) => u.length > 0);
  let cluster: CliSettings["cluster"];
  const clusterOnly = (["advertise", "node-id", "replicas", "cluster-heartbeat", "cluster-ca"] as const).map((f) => get(f)).find((g) => g !== undefined);
  if (clusterUrls.length > 0) {
    const replicas = get("replicas");
    const heartbeat = get("cluster-heartbeat");
    cluster = {
      redis: clusterUrls,
      advertise: get("advertise")?.text,
      nodeId: get("node-id")?.text,
      replicas: replicas === undefined ? undefined : intIn(replicas.from, replicas.text, 1, 16),
      heartbeatMs: heartbeat === undefined ? undefined : wrap(() => parseDuration(heartbeat.text, heartbeat.from)),
      caFile: get("cluster-ca")?.text,
    };
    if (heartbeat !== undefined && (cluster.heartbeatMs! < 100 || cluster.heartbeatMs! > 60_000)) throw new UsageError(`${heartbeat.from} must be from 100ms to 60s, got ${JSON.stringify(heartbeat.text)}`);
    if (cluster.caFile !== undefined && !tls) throw new UsageError(`${sources["cluster-ca"]} needs --tls-cert (the nodes speak TLS to each other only when they serve TLS)`);
  } else if (clusterOnly !== undefined) {
    throw new UsageError(`${clusterOnly.from} needs --cluster`);
  }
  return {
    config,
    tls,
    cluster,
    hmacSecretFiles,
    jwt,
    merkleSigningKey: get("merkle-signing-key")?.text,
    metricsPort: metrics === undefined ? undefined : intIn(metrics.from, metrics.text, 0, 65535),
    logLevel: logLevel?.text ?? "info",
    graceMs,
    disk,
    projectExchange: on("project-exchange"),
    query: on("query") || on("flight-sql"),
    flightSql: on("flight-sql"),
    sources,
    help: values.help === true,
    version: values.version === true,
  };
}

/** The `--help` text. */
export function usage(): string {
  const lines = CLI_FLAGS.map((f) => `  --${f.flag.padEnd(18)} ${f.help} [${f.env}]`);
  return [
    "Usage: blackice-flight [options]",
    "",
    "Starts a BlackIce Flight server with an in-memory store, or a durable one with --data-dir; with --cluster, a node of a cluster sharing its catalog in Redis.",
    "A setting is taken from its flag, else from the --config file, else from its environment variable.",
    "",
    ...lines,
    "  -h, --help           this text",
    "      --version        the version",
    "",
  ].join("\n");
}
