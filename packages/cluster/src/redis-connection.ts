import { FlightError, StatusCode, checkInt } from "@blackice/flight-core";
import Redis, { Cluster, type RedisOptions } from "ioredis";

/** The Redis deployment a cluster coordinates through, as read from its URLs. */
export type RedisTarget =
  | { mode: "single"; host: string; port: number; password?: string; username?: string; db: number; tls: boolean }
  | { mode: "sentinel"; sentinels: Array<{ host: string; port: number }>; name: string; password?: string; username?: string; db: number }
  | { mode: "cluster"; nodes: Array<{ host: string; port: number }>; password?: string; username?: string; tls: boolean };

/**
 * Reads the cluster's Redis URLs:
 * - one `redis://[user:pass@]HOST:PORT[/DB]` (or `rediss://` for TLS): a single Redis;
 * - several `redis://HOST:PORT` URLs: the seed nodes of a Redis Cluster;
 * - `redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]`: Redis Sentinel.
 *
 * @throws TypeError naming the accepted forms.
 */
export function parseRedisUrls(urls: readonly string[]): RedisTarget {
  const forms = "redis://HOST:PORT[/DB], rediss://..., several redis:// URLs (Redis Cluster), or redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME";
  if (urls.length === 0) throw new TypeError(`cluster: redis needs at least one URL: ${forms}`);
  const first = urls[0]!;
  if (first.startsWith("redis+sentinel://")) {
    if (urls.length > 1) throw new TypeError("cluster: give the sentinels of redis+sentinel:// in one URL, comma-separated");
    const m = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/]+)\/([^/]+)(?:\/(\d+))?$/.exec(first);
    if (!m) throw new TypeError(`cluster: cannot read ${JSON.stringify(redact(first))}; expected ${forms}`);
    const sentinels = m[3]!.split(",").map((hp) => hostPort(hp, first));
    return { mode: "sentinel", sentinels, name: decodeURIComponent(m[4]!), username: m[1] ? decodeURIComponent(m[1]) : undefined, password: m[2] ? decodeURIComponent(m[2]) : undefined, db: Number(m[5] ?? 0) };
  }
  const parsed = urls.map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new TypeError(`cluster: cannot read ${JSON.stringify(redact(u))}; expected ${forms}`);
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") throw new TypeError(`cluster: ${JSON.stringify(redact(u))} is not a Redis URL; expected ${forms}`);
    if (!url.hostname || !url.port) throw new TypeError(`cluster: ${JSON.stringify(redact(u))} needs a host and a port`);
    const db = url.pathname && url.pathname !== "/" ? Number(url.pathname.slice(1)) : 0;
    checkInt("cluster", `the database of ${JSON.stringify(redact(u))}`, db, 0, 15);
    return {
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port),
      tls: url.protocol === "rediss:",
      db,
      username: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
    };
  });
  if (parsed.length === 1) return { mode: "single", ...parsed[0]! };
  if (parsed.some((p) => p.db !== 0)) throw new TypeError("cluster: Redis Cluster has no databases: drop /DB from the URLs");
  return { mode: "cluster", nodes: parsed.map((p) => ({ host: p.host, port: p.port })), tls: parsed[0]!.tls, username: parsed[0]!.username, password: parsed[0]!.password };
}

function hostPort(hp: string, url: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hp);
  if (!m) throw new TypeError(`cluster: ${JSON.stringify(redact(url))}: ${JSON.stringify(hp)} is not HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** A URL with its password replaced, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

/**
 * Connection settings that make a command fail at once when Redis is away, instead of
 * queueing it until Redis returns: no offline queue, no retry of a sent command, a connect and
 * command timeout. ioredis keeps reconnecting in the background (every 200 ms to 2 s).
 */
function failFast(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(commandTimeoutMs, 500),
    commandTimeout: commandTimeoutMs,
    retryStrategy: (times) => Math.min(200 * times, 2000),
    lazyConnect: true,
  };
}

/** Opens (lazily: `connect()` starts it) the ioredis client for a target. */
export function openRedis(target: RedisTarget, commandTimeoutMs: number): Redis | Cluster {
  const base = failFast(commandTimeoutMs);
  switch (target.mode) {
    case "single":
      return new Redis({ ...base, host: target.host, port: target.port, db: target.db, username: target.username, password: target.password, tls: target.tls ? {} : undefined });
    case "sentinel":
      return new Redis({ ...base, sentinels: target.sentinels, name: target.name, db: target.db, username: target.username, password: target.password, sentinelRetryStrategy: (times) => Math.min(200 * times, 2000) });
    case "cluster":
      return new Cluster(target.nodes, {
        enableOfflineQueue: false,
        lazyConnect: true,
        clusterRetryStrategy: (times) => Math.min(200 * times, 2000),
        redisOptions: { ...base, username: target.username, password: target.password, tls: target.tls ? {} : undefined },
      });
  }
}

/** Where the catalog is, for messages (no password). */
export function describeTarget(target: RedisTarget): string {
  switch (target.mode) {
    case "single":
      return `Redis at ${target.host}:${target.port}`;
    case "sentinel":
      return `Redis Sentinel master ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}`;
    case "cluster":
      return `Redis Cluster via ${target.nodes.map((s) => `${s.host}:${s.port}`).join(",")}`;
  }
}

/** The UNAVAILABLE a catalog operation fails with when Redis cannot be reached. */
export function catalogUnavailable(where: string, err: unknown): FlightError {
  const reason = (err as Error)?.message ?? String(err);
  return new FlightError(StatusCode.UNAVAILABLE, `the cluster catalog (${where}) is unreachable: ${reason}; only flights held on this node can be read until it returns`, { cause: err });
}
