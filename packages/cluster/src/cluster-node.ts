import {
  FlightError,
  StatusCode,
  descriptorFromKey,
  readMessageHeader,
  ticketFromKey,
  type FlightDescriptor,
  type FlightStore,
  type StoredFlight,
  type StoredMessage,
} from "@blackice/flight-core";
import type { Cluster, default as Redis } from "ioredis";
import { FlightClient, proto as pb, TTL_HEADER, type FlightClientOptions } from "@blackice/flight";
import { ClusterCatalog, type CatalogEntry, type NodeRecord } from "./cluster-catalog";
import { factsOf } from "./cluster-catalog";
import { PeerPutClient } from "./peer-put";
import { ReplicaFeed } from "./replica-feed";
import { rendezvousOrder } from "./placement";

/**
 * The request header of calls between nodes (replica puts, proxied reads, deletes and renews
 * of one copy): the receiving node serves them from its own store only, so that a replica put
 * is not replicated again and a proxied read is never proxied further.
 */
export const CLUSTER_LOCAL_HEADER = "x-blackice-cluster-local";

/**
 * With {@link CLUSTER_LOCAL_HEADER} on a DoPut: the put is a whole copy of a flight (a
 * re-replication), and its commit replaces any copy the node holds (`PutOptions.replace`)
 * instead of appending to it.
 */
export const CLUSTER_COPY_HEADER = "x-blackice-cluster-copy";

const EMPTY = new Uint8Array(0);

/** One remote holder a put streams to. */
export interface ReplicaStream {
  readonly nodeId: string;
  readonly location: string;
  readonly feed: ReplicaFeed;
  readonly controller: AbortController;
  /** Resolves when the replica's DoPut ended with OK (it committed). */
  readonly done: Promise<void>;
}

/** What a {@link ClusterNode} is made with (validated by `cluster()`). */
export interface ClusterNodeSettings {
  id: string | undefined;
  advertise: string | undefined;
  replicas: number;
  heartbeatMs: number;
  nodeTtlMs: number;
  tombstoneMs: number;
  peer: FlightClientOptions;
  onError: (err: unknown, context: { method?: string }) => void;
}

/**
 * One node's part in the cluster: its Redis connection and catalog, the membership it sees
 * (refreshed at every heartbeat), the Flight clients to its peers, and the background work
 * (heartbeat, re-registration when Redis returns, re-replication).
 */
export class ClusterNode {
  readonly catalog: ClusterCatalog;
  readonly replicas: number;
  readonly tombstoneMs: number;
  private nodeId: string | undefined;
  private advertised: string | undefined;
  /** The store this node's copies live in (set when the server's store is wrapped). */
  local: FlightStore | undefined;
  private live = new Map<string, NodeRecord>();
  private readonly peers = new Map<string, FlightClient>();
  /** The DoPut streams to each peer (replica puts, copies): see {@link PeerPutClient}. */
  private readonly putClients = new Map<string, PeerPutClient>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private working = false;
  private needsRegistration = true;
  /**
   * No re-replication before this time (epoch ms): after the catalog comes back (at start, or
   * after Redis was away and returned empty), every live node needs one node TTL to heartbeat
   * and register its copies again; repairing earlier would copy flights to a node that is not
   * a holder while the real holders are still re-registering, and leave more than R copies.
   */
  private repairAfter = 0;
  private stopped = false;
  private outage = false;
  private ticks = 0;
  /** Counters for the `stats` section. */
  readonly counters = { replicated: 0, reReplicated: 0, proxiedReads: 0, reRegistered: 0, heartbeatsFailed: 0 };

  constructor(
    readonly redis: Redis | Cluster,
    readonly where: string,
    prefix: string,
    private readonly settings: ClusterNodeSettings,
  ) {
    this.catalog = new ClusterCatalog(redis, prefix, where);
    this.replicas = settings.replicas;
    this.tombstoneMs = settings.tombstoneMs;
    this.nodeId = settings.id;
    this.advertised = settings.advertise;
    // ioredis reports each failed reconnect as an 'error' event: say it once per outage.
    redis.on("error", (err: Error) => {
      if (this.outage || this.stopped) return;
      this.outage = true;
      settings.onError(new Error(`cluster: ${where} is unreachable (${err.message}); serving flights held here only until it returns`), { method: "cluster" });
    });
    redis.on("ready", () => {
      this.outage = false;
      this.needsRegistration = true;
      this.repairAfter = Date.now() + settings.nodeTtlMs;
      void this.tick();
    });
  }

  get id(): string {
    if (this.nodeId === undefined) throw new Error("cluster: the node is not started");
    return this.nodeId;
  }

  get location(): string {
    if (this.advertised === undefined) throw new Error("cluster: the node is not started");
    return this.advertised;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Joins: connects to Redis (not waiting for it when it is away), heartbeats, registers what the local store holds. */
  async start(address: string, port: number): Promise<void> {
    if (this.advertised === undefined) {
      if (address === "0.0.0.0" || address === "::" || address === "[::]") {
        throw new TypeError(`cluster: the server listens on ${address}, which other nodes cannot dial: give advertise (--advertise grpc+tcp://HOST:${port})`);
      }
      const scheme = this.settings.peer.tls ? "grpc+tls" : "grpc+tcp";
      this.advertised = `${scheme}://${address.includes(":") ? `[${address}]` : address}:${port}`;
    }
    this.nodeId ??= this.advertised.replace(/^[a-z+]+:\/\//, "");
    this.live.set(this.nodeId, { id: this.nodeId, location: this.advertised });
    try {
      await this.redis.connect();
    } catch {
      // Reported by the 'error' handler; ioredis keeps trying in the background.
    }
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.settings.heartbeatMs);
    this.timer.unref();
  }

  /** Leaves: stops the heartbeat, removes this node from membership, closes connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.nodeId !== undefined && this.catalog.ready) await this.catalog.leave(this.nodeId).catch(() => undefined);
    for (const c of this.peers.values()) c.close();
    this.peers.clear();
    for (const c of this.putClients.values()) c.close();
    this.putClients.clear();
    this.redis.disconnect();
  }

  /**
   * One heartbeat: renew this node and refresh membership; then start the background work
   * that is due, without waiting for it. The heartbeat never waits behind that work: a
   * registration of many flights or a re-replication copying a large one can take longer
   * than the node TTL, and a node whose heartbeat waited for it would be taken for dead by
   * the others while it works (and its flights re-replicated by them).
   */
  private async tick(): Promise<void> {
    if (this.ticking || this.stopped || this.nodeId === undefined || !this.catalog.ready) return;
    this.ticking = true;
    try {
      await this.catalog.heartbeat({ id: this.id, location: this.location }, this.settings.nodeTtlMs);
      const nodes = await this.catalog.liveNodes();
      const live = new Map(nodes.map((n) => [n.id, n]));
      live.set(this.id, { id: this.id, location: this.location });
      this.live = live;
    } catch (err) {
      this.counters.heartbeatsFailed++;
      if (!this.outage) this.settings.onError(err, { method: "cluster" });
      return;
    } finally {
      this.ticking = false;
    }
    if (!this.working) {
      this.working = true;
      this.work()
        .catch((err: unknown) => {
          if (!this.outage && !this.stopped) this.settings.onError(err, { method: "cluster" });
        })
        .finally(() => (this.working = false));
    }
  }

  /** The background work of a heartbeat: registration when due, re-replication, pruning the index. One runs at a time. */
  private async work(): Promise<void> {
    if (this.needsRegistration) {
      // Cleared first, so that a reconnect during the registration asks for another one; set
      // again if this one fails (a command timing out just after Redis returned), or the
      // copies held here would stay out of the catalog until the next reconnect.
      this.needsRegistration = false;
      try {
        await this.registerHeld();
      } catch (err) {
        this.needsRegistration = true;
        throw err;
      }
    }
    // Repair every other heartbeat (it walks the catalog), once the nodes have had a node TTL to re-register.
    if (this.ticks++ % 2 === 0 && Date.now() >= this.repairAfter) await this.repair();
    await this.catalog.pruneExpired();
  }

  // ---------------------------------------------------------------- membership

  /** Live node ids (this node always among them), sorted. */
  liveNodeIds(): string[] {
    return [...this.live.keys()].sort();
  }

  /** The live ones among `holders`, sorted by id. */
  liveHolders(holders: readonly string[]): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const h of [...holders].sort()) {
      const n = this.live.get(h);
      if (n) out.push(n);
    }
    return out;
  }

  private peer(location: string): FlightClient {
    let c = this.peers.get(location);
    if (!c) this.peers.set(location, (c = new FlightClient(location, this.settings.peer)));
    return c;
  }

  private putClient(location: string): PeerPutClient {
    let c = this.putClients.get(location);
    if (!c) this.putClients.set(location, (c = new PeerPutClient(location, this.settings.peer)));
    return c;
  }

  private locationOf(id: string): string {
    const n = this.live.get(id);
    if (!n) throw new FlightError(StatusCode.UNAVAILABLE, `cluster node ${id} is not alive`);
    return n.location;
  }

  // ---------------------------------------------------------------- calls to peers

  /** Opens a replica DoPut to node `id`, fed through the returned feed. */
  openReplica(id: string, descriptor: FlightDescriptor, ttlMs: number | undefined): ReplicaStream {
    const location = this.locationOf(id);
    const feed = new ReplicaFeed();
    const controller = new AbortController();
    const metadata: Record<string, string> = { [CLUSTER_LOCAL_HEADER]: "1" };
    if (ttlMs !== undefined) metadata[TTL_HEADER] = String(ttlMs);
    const client = this.putClient(location);
    const done = (async () => {
      await client.put(descriptor, feed, metadata, controller.signal);
      this.counters.replicated++;
    })();
    // The put fails with the replica named, whether the failure shows in an append or the commit.
    const failed = done.catch((err: unknown) => {
      const fe = FlightError.from(err, StatusCode.UNAVAILABLE);
      const named = new FlightError(fe.code, `the put was not stored on replica ${id} (${location}): ${fe.message}`, { cause: fe });
      feed.fail(named);
      throw named;
    });
    failed.catch(() => undefined);
    return { nodeId: id, location, feed, controller, done: failed };
  }

  /**
   * The messages of a flight held elsewhere, streamed from its holders in turn: if one fails
   * (it died, or lost its copy), the next continues after the messages already given.
   */
  async *readFromHolders(key: string, holders: readonly string[]): AsyncGenerator<StoredMessage> {
    const ticket = ticketFromKey(key);
    let given = 0;
    let lastError: unknown;
    const order = holders.filter((h) => h !== this.nodeId);
    for (const id of order) {
      const location = this.live.get(id)?.location;
      if (!location) continue;
      let index = 0;
      try {
        this.counters.proxiedReads++;
        for await (const d of this.peer(location).doGetRaw(ticket, { metadata: { [CLUSTER_LOCAL_HEADER]: "1" } })) {
          // The first message is the schema (served from the catalog); then skip what was given.
          if (index++ === 0) continue;
          if (index - 1 <= given) continue;
          // The header is read (not the data) so that a peer's message is checked like a put's.
          const info = readMessageHeader(d.dataHeader, d.dataBody);
          given++;
          yield { header: d.dataHeader, body: d.dataBody, appMetadata: d.appMetadata ?? EMPTY, info, byteSize: d.dataHeader.byteLength + d.dataBody.byteLength };
        }
        return;
      } catch (err) {
        lastError = err;
      }
    }
    if (lastError instanceof FlightError && lastError.code !== StatusCode.NOT_FOUND) {
      throw new FlightError(StatusCode.UNAVAILABLE, `no holder of ${key} could serve it (last: ${lastError.message})`, { cause: lastError });
    }
    throw new FlightError(StatusCode.UNAVAILABLE, `no live holder of ${key} could serve it`, { cause: lastError });
  }

  /** Deletes this node's and other nodes' copies of a flight (best effort; failures are reported to onError). */
  async deleteOn(ids: readonly string[], key: string): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        try {
          if (id === this.nodeId) {
            await this.local?.delete(descriptorFromKey(key));
            return;
          }
          await this.peer(this.locationOf(id)).doAction("delete", ticketFromKey(key), { metadata: { [CLUSTER_LOCAL_HEADER]: "1" } });
        } catch (err) {
          if (err instanceof FlightError && err.code === StatusCode.NOT_FOUND) return;
          this.settings.onError(new Error(`cluster: could not delete the copy of ${key} on ${id}: ${(err as Error).message}`), { method: "cluster" });
        }
      }),
    );
  }

  /** Renews every live copy of a flight; resolves with the latest expiry, or undefined when none was renewed. */
  async renewOn(entry: CatalogEntry, descriptor: FlightDescriptor, ttlMs: number | undefined): Promise<{ expiresAt: number | undefined } | undefined> {
    const ticket = ticketFromKey(entry.key);
    const results = await Promise.allSettled(
      this.liveHolders(entry.holders).map(async (n): Promise<number | undefined | null> => {
        if (n.id === this.nodeId) {
          const f = await this.local?.renew?.(descriptor, ttlMs);
          return f ? f.expiresAt : null;
        }
        const body = pb.RenewFlightEndpointRequest.encode({ endpoint: { ticket: { ticket }, location: [], expirationTime: undefined, appMetadata: EMPTY } }).finish();
        const [r] = await this.peer(n.location).doAction("RenewFlightEndpoint", body, { metadata: { [CLUSTER_LOCAL_HEADER]: "1" } });
        const endpoint = pb.FlightEndpoint.decode(r!.body);
        return endpoint.expirationTime === undefined ? undefined : endpoint.expirationTime.getTime();
      }),
    );
    const renewed = results.flatMap((r) => (r.status === "fulfilled" && r.value !== null ? [r.value] : []));
    if (renewed.length === 0) return undefined;
    if (renewed.includes(undefined)) return { expiresAt: undefined };
    return { expiresAt: Math.max(...(renewed as number[])) };
  }

  // ---------------------------------------------------------------- background work

  /**
   * Registers every flight the local store holds (at start, and whenever Redis returns), and
   * withdraws this node from flights it no longer holds (a memory store that restarted). A
   * flight deleted while this node was away (a tombstone newer than its copy) is dropped.
   */
  private async registerHeld(): Promise<void> {
    const local = this.local;
    if (!local) return;
    for await (const f of local.list()) {
      if (await this.catalog.registerHeld(factsOf(f), this.id)) this.counters.reRegistered++;
      else await local.delete(f.descriptor);
    }
    for await (const keys of this.catalog.keys()) {
      const entries = await this.catalog.lookupMany(keys);
      for (const e of entries) {
        if (!e || !e.holders.includes(this.id)) continue;
        if (!(await local.get(descriptorFromKey(e.key)))) await this.catalog.removeHolders(e.key, [this.id]);
      }
    }
  }

  /**
   * Re-replication: for each flight whose first live holder is this node, drops dead holders
   * and copies the flight to live nodes (in rendezvous order) until it has R holders again.
   */
  private async repair(): Promise<void> {
    const local = this.local;
    if (!local) return;
    const liveIds = this.liveNodeIds();
    const want = Math.min(this.replicas, liveIds.length);
    for await (const keys of this.catalog.keys()) {
      const entries = await this.catalog.lookupMany(keys);
      for (const e of entries) {
        if (!e) continue;
        const live = this.liveHolders(e.holders);
        if (live[0]?.id !== this.id) continue;
        const dead = e.holders.filter((h) => !this.live.has(h));
        if (dead.length > 0) await this.catalog.removeHolders(e.key, dead);
        if (live.length >= want) continue;
        const descriptor = descriptorFromKey(e.key);
        const f = await local.get(descriptor);
        if (!f) continue;
        const targets = rendezvousOrder(e.key, liveIds)
          .filter((id) => !e.holders.includes(id))
          .slice(0, want - live.length);
        for (const id of targets) {
          try {
            await this.copyTo(id, f);
            await this.catalog.addHolder(e.key, id, f.expiresAt);
            this.counters.reReplicated++;
          } catch (err) {
            this.settings.onError(new Error(`cluster: re-replication of ${e.key} to ${id} failed: ${(err as Error).message}`), { method: "cluster" });
          }
        }
      }
    }
  }

  /**
   * Copies a whole local flight to node `id`: a replica DoPut with the remaining TTL, marked
   * with {@link CLUSTER_COPY_HEADER} so that the target's commit replaces any copy it already
   * holds instead of appending to it. The target may hold one: a real holder whose
   * re-registration has not run yet (Redis came back empty), an earlier copy whose catalog
   * write failed, a copy kept while it was thought dead, or a copy another node made at the
   * same time (two nodes that each thought they were the flight's first live holder). A copy
   * that appended doubled the flight in each of these cases (docs/cluster.md, re-replication).
   */
  async copyTo(id: string, f: StoredFlight): Promise<void> {
    const metadata: Record<string, string> = { [CLUSTER_LOCAL_HEADER]: "1", [CLUSTER_COPY_HEADER]: "1" };
    if (f.expiresAt !== undefined) {
      const left = f.expiresAt - Date.now();
      if (left <= 0) return;
      metadata[TTL_HEADER] = String(left);
    } else {
      metadata[TTL_HEADER] = "0";
    }
    async function* messages() {
      yield { dataHeader: f.schema.header, dataBody: f.schema.body, appMetadata: f.schema.appMetadata };
      for await (const m of f.messages()) yield { dataHeader: m.header, dataBody: m.body, appMetadata: m.appMetadata };
    }
    await this.putClient(this.locationOf(id)).put(f.descriptor, messages(), metadata);
  }

  /** The `cluster` section of the `stats` action. */
  status(): Record<string, unknown> {
    return {
      nodeId: this.nodeId,
      advertise: this.advertised,
      redis: this.where,
      redisReady: this.catalog.ready,
      replicas: this.replicas,
      liveNodes: this.liveNodeIds(),
      ...this.counters,
    };
  }
}

