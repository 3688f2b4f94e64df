import { checkInt, onLifecycle, statsSection, wrapStore, type FlightMiddleware, type FlightStore, serverParts, type ServerParts, checkFunction, checkObject, checkPattern, checkString, checkStringArray } from "@blackice/flight-core";
import { parseLocation, type FlightClientOptions } from "@blackice/flight";
import { CLUSTER_COPY_HEADER, CLUSTER_LOCAL_HEADER, ClusterNode } from "./cluster-node";
import { ClusterStore } from "./cluster-store";
import { describeTarget, openRedis, parseRedisUrls } from "./redis-connection";

/** Options of {@link cluster}. */
export interface ClusterOptions {
  /**
   * Where the catalog lives: one `redis://HOST:PORT[/DB]` (`rediss://` for TLS), several
   * `redis://` URLs (seed nodes of a Redis Cluster), or `redis+sentinel://H:P[,H:P]/MASTER`.
   */
  redis: string | readonly string[];
  /**
   * The location other nodes and clients reach this node at (`grpc+tcp://HOST:PORT` or
   * `grpc+tls://...`), listed in FlightInfo. Default: the address the server listens on
   * (refused when that is a wildcard such as 0.0.0.0).
   */
  advertise?: string;
  /** This node's id, stable across restarts (a disk store's copies are registered under it). 1-128 of A-Z a-z 0-9 . _ : -. Default: the advertised HOST:PORT. */
  nodeId?: string;
  /** Copies of each flight, 1 to 16; fewer while fewer nodes are alive. Default 2. */
  replicas?: number;
  /** Heartbeat interval, ms (100 to 60 000). Default 1000. */
  heartbeatMs?: number;
  /** A node whose heartbeat is this old is dead, ms (at least 2 × heartbeatMs, up to 600 000). Default 5 × heartbeatMs. */
  nodeTtlMs?: number;
  /** Prefix (and Redis Cluster hash tag) of every key, so clusters can share a Redis. 1-64 of A-Z a-z 0-9 . _ -. Default `blackice`. */
  keyPrefix?: string;
  /** A Redis command not answered within this many ms fails (UNAVAILABLE), 50 to 60 000. Default 1000. */
  commandTimeoutMs?: number;
  /** How long a deleted flight's tombstone stops a returning node from registering its copy again, ms. Default 7 days. */
  tombstoneMs?: number;
  /**
   * Options of the Flight clients this node calls its peers with: TLS (root CA, client
   * certificate for mTLS) and a `signer` (e.g. `hmacSigner`) when the nodes require HMAC.
   * Replica puts and re-replication copies are written on `node:http2` directly and use only
   * `tls`, `signer` and `metadata`; the other calls (proxied reads, deletes, renews) use all.
   */
  peer?: FlightClientOptions;
  /** Receives background failures (Redis lost, a failed re-replication). Default: `process.emitWarning`. */
  onError?: (err: unknown, context: { method?: string }) => void;
}

/** The store with every put made replacing (`PutOptions.replace`): what a re-replication copy is committed to. */
function replacingPuts(store: FlightStore): FlightStore {
  return {
    beginPut: (descriptor, schema, options) => store.beginPut(descriptor, schema, { ...options, replace: true }),
    get: (descriptor) => store.get(descriptor),
    getByTicket: (ticket) => store.getByTicket(ticket),
    ticketFor: (flight) => store.ticketFor(flight),
    list: (pathPrefix) => store.list(pathPrefix),
    delete: (descriptor) => store.delete(descriptor),
    stats: () => store.stats(),
    close: () => store.close(),
  };
}


/**
 * Distributed mode as a server part: several nodes share a flight catalog in Redis, every
 * node answers for every flight, and each put is stored on `replicas` nodes before it is
 * acknowledged. The node's own store (memory or disk) keeps the bytes; this part wraps it.
 * See docs/cluster.md for the design and the consistency model.
 *
 * @example
 * createFlightServer(
 *   serverConfig({ addr: "0.0.0.0:8815" }),
 *   cluster({ redis: "redis://redis:6379", advertise: "grpc+tcp://node1:8815", replicas: 2 }),
 * );
 */
export function cluster(options: ClusterOptions): ServerParts {
  checkObject("cluster", "options", options);
  // checkStringArray never echoes the items: a Redis URL may hold a password.
  const urls = typeof options.redis === "string" ? [options.redis] : checkStringArray("cluster", "redis", options.redis, false, "a URL or an array of URLs");
  const target = parseRedisUrls(urls);
  if (checkString("cluster", "advertise", options.advertise, "a grpc+tcp:// or grpc+tls:// location") !== undefined) {
    try {
      parseLocation(options.advertise!);
    } catch (err) {
      throw new TypeError(`cluster: advertise: ${(err as Error).message}`);
    }
  }
  if (options.nodeId !== undefined) checkPattern("cluster", "nodeId", options.nodeId, /^[A-Za-z0-9._:-]{1,128}$/, "1 to 128 characters of A-Z a-z 0-9 . _ : -");
  const replicas = checkInt("cluster", "replicas", options.replicas, 1, 16, 2);
  const heartbeatMs = checkInt("cluster", "heartbeatMs", options.heartbeatMs, 100, 60_000, 1000);
  const nodeTtlMs = checkInt("cluster", "nodeTtlMs", options.nodeTtlMs, 2 * heartbeatMs, 600_000, 5 * heartbeatMs);
  const commandTimeoutMs = checkInt("cluster", "commandTimeoutMs", options.commandTimeoutMs, 50, 60_000, 1000);
  const tombstoneMs = checkInt("cluster", "tombstoneMs", options.tombstoneMs, 1000, 365 * 86_400_000, 7 * 86_400_000);
  const keyPrefix = checkPattern("cluster", "keyPrefix", options.keyPrefix, /^[A-Za-z0-9._-]{1,64}$/, "1 to 64 characters of A-Z a-z 0-9 . _ -", "blackice");
  if (options.peer !== undefined) checkObject("cluster", "peer", options.peer, "FlightClient options");
  const onError =
    checkFunction<(err: unknown) => void>("cluster", "onError", options.onError) ?? ((err: unknown) => process.emitWarning(`BlackIce Flight cluster: ${err instanceof Error ? err.message : String(err)}`));

  const where = describeTarget(target);
  const node = new ClusterNode(openRedis(target, commandTimeoutMs), where, keyPrefix, {
    id: options.nodeId,
    advertise: options.advertise,
    replicas,
    heartbeatMs,
    nodeTtlMs,
    tombstoneMs,
    peer: options.peer ?? {},
    onError,
  });
  let local: FlightStore | undefined;

  // Calls from other nodes (replica puts, proxied reads, deletes of one copy) are served from
  // this node's own store: a replica put is not replicated again, a read is not proxied on.
  // A re-replication copy (CLUSTER_COPY_HEADER) replaces the copy held here, if any.
  let copies: FlightStore | undefined;
  const localCalls: FlightMiddleware = (next) =>
    async function clusterLocalCalls(call) {
      if (local && call.headers.has(CLUSTER_LOCAL_HEADER)) {
        if (call.method === "doPut" && call.headers.has(CLUSTER_COPY_HEADER)) return next({ ...call, store: (copies ??= replacingPuts(local)) });
        return next({ ...call, store: local });
      }
      return next(call);
    };

  return serverParts(
    wrapStore("cluster", (store) => {
      local = store;
      node.local = store;
      return new ClusterStore(store, node);
    }),
    localCalls,
    statsSection("cluster", () => node.status()),
    onLifecycle({
      onStart: ({ address, port }) => node.start(address, port),
      onShutdown: () => node.stop(),
    }),
  );
}
