import {
  FlightError,
  StatusCode,
  MessageKind,
  descriptorFromKey,
  descriptorKey,
  offersGc,
  offersMemoryLimit,
  offersTtl,
  readMessageHeader,
  ticketFromKey,
  ticketToKey,
  pathPrefixMatcher,
  type FlightDescriptor,
  type FlightStore,
  type PutOptions,
  type PutTransaction,
  type StoredFlight,
  type StoredMessage,
  type StoreStats,
  type GcReport,
} from "@blackice/flight-core";
import { factsOf, type CatalogEntry, type CatalogFacts } from "./cluster-catalog";
import type { ClusterNode, ReplicaStream } from "./cluster-node";
import { rendezvousOrder } from "./placement";

const EMPTY = new Uint8Array(0);

function toData(m: StoredMessage) {
  return { dataHeader: m.header, dataBody: m.body, appMetadata: m.appMetadata };
}

function messageBytes(m: StoredMessage): number {
  return m.header.byteLength + m.body.byteLength;
}

/** A flight read through another node: facts from the catalog, messages streamed from a holder. */
function remoteFlight(node: ClusterNode, entry: CatalogEntry, locations: readonly string[], holders: readonly string[]): StoredFlight {
  const schemaInfo = readMessageHeader(entry.schemaHeader, 0);
  const schema: StoredMessage = { header: entry.schemaHeader, body: EMPTY, appMetadata: entry.schemaMetadata, info: schemaInfo, byteSize: 0 };
  return {
    key: entry.key,
    descriptor: descriptorFromKey(entry.key),
    schema,
    messageCount: entry.messageCount,
    totalRecords: entry.totalRecords,
    totalBytes: entry.totalBytes,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
    expiresAt: entry.expiresAt,
    locations,
    messages: () => node.readFromHolders(entry.key, holders),
  };
}

/** The same flight with the locations of every holder. */
function withLocations(f: StoredFlight, locations: readonly string[]): StoredFlight {
  return {
    key: f.key,
    descriptor: f.descriptor,
    schema: f.schema,
    messageCount: f.messageCount,
    totalRecords: f.totalRecords,
    totalBytes: f.totalBytes,
    memoryBytes: f.memoryBytes,
    createdAt: f.createdAt,
    updatedAt: f.updatedAt,
    expiresAt: f.expiresAt,
    locations,
    messages: (options) => f.messages(options),
    ...(f.batchStats === undefined ? {} : { batchStats: () => f.batchStats!() }),
  };
}

/**
 * The store a cluster node serves from: its own store (`local`) for the bytes, the catalog in
 * Redis for which flights exist and who holds them. See docs/cluster.md.
 *
 * - `beginPut` places the flight (its holders if it exists, else rendezvous hashing over the
 *   live nodes), streams every appended message to the remote holders' DoPut as it comes, and
 *   `commit` resolves only once every holder committed and the catalog lists them.
 * - `get`, `getByTicket`, `list`, `delete` and `renew` answer for every flight of the cluster.
 *   A flight held elsewhere streams its messages from a holder (a proxied DoGet).
 * - When Redis is away, flights held here are still read; everything that needs the catalog
 *   fails at once with UNAVAILABLE.
 */
export class ClusterStore implements FlightStore {
  setDefaultTtl?: (ms: number) => void;
  gc?: () => Promise<GcReport>;
  setGcInterval?: (ms: number) => void;
  setGcEnabled?: (enabled: boolean) => void;
  setMaxMemoryBytes?: (bytes: number) => void;
  renew?: (descriptor: FlightDescriptor, ttlMs?: number) => Promise<StoredFlight | undefined>;

  constructor(
    readonly local: FlightStore,
    private readonly node: ClusterNode,
  ) {
    // Capabilities are the local store's: offered exactly when it offers them.
    if (offersTtl(local)) {
      this.setDefaultTtl = (ms) => local.setDefaultTtl(ms);
      this.renew = (d, ttlMs) => this.renewEverywhere(d, ttlMs);
    }
    if (offersGc(local)) {
      this.gc = () => local.gc();
      this.setGcInterval = (ms) => local.setGcInterval(ms);
      this.setGcEnabled = (on) => local.setGcEnabled(on);
    }
    if (offersMemoryLimit(local)) this.setMaxMemoryBytes = (b) => local.setMaxMemoryBytes(b);
  }

  // ---------------------------------------------------------------- reads

  async get(descriptor: FlightDescriptor): Promise<StoredFlight | undefined> {
    const key = descriptorKey(descriptor);
    let entry: CatalogEntry | undefined;
    try {
      entry = await this.node.catalog.lookup(key);
    } catch (err) {
      // Redis away: a flight held here is still served (its locations: this node only).
      const f = await this.local.get(descriptor);
      if (f) return f;
      throw err;
    }
    if (!entry) return undefined;
    return this.flightOf(entry, descriptor);
  }

  async getByTicket(ticket: Uint8Array): Promise<StoredFlight | undefined> {
    // A DoGet needs no locations: a flight held here is served without asking Redis.
    const here = await this.local.getByTicket(ticket);
    if (here) return here;
    return this.get(descriptorFromKey(ticketToKey(ticket)));
  }

  ticketFor(flight: StoredFlight): Uint8Array {
    return ticketFromKey(flight.key);
  }

  async *list(pathPrefix?: readonly string[]): AsyncGenerator<StoredFlight> {
    const matches = pathPrefixMatcher(pathPrefix);
    for await (const keys of this.node.catalog.keys()) {
      const wanted = keys.filter(matches);
      const entries = await this.node.catalog.lookupMany(wanted);
      for (const e of entries) {
        if (!e) continue;
        const live = this.node.liveHolders(e.holders);
        yield remoteFlight(this.node, e, live.map((n) => n.location), live.map((n) => n.id));
      }
    }
  }

  private async flightOf(entry: CatalogEntry, descriptor: FlightDescriptor): Promise<StoredFlight | undefined> {
    const live = this.node.liveHolders(entry.holders);
    if (entry.holders.includes(this.node.id)) {
      const f = await this.local.get(descriptor);
      if (f) return withLocations(f, live.map((n) => n.location));
    }
    // Listed as a holder but without the copy (a memory store that restarted, before it
    // withdrew itself): served from the others, and not listed.
    const others = live.filter((n) => n.id !== this.node.id);
    if (others.length === 0) {
      throw new FlightError(StatusCode.UNAVAILABLE, `no live node holds the flight ${entry.key} (holders: ${entry.holders.join(", ") || "none"}); it may come back when they do`);
    }
    return remoteFlight(this.node, entry, others.map((n) => n.location), others.map((n) => n.id));
  }

  // ---------------------------------------------------------------- writes

  async beginPut(descriptor: FlightDescriptor, schema: StoredMessage, options?: PutOptions): Promise<PutTransaction> {
    const key = descriptorKey(descriptor);
    // Fails fast with UNAVAILABLE when Redis is away: nothing is placed or streamed.
    const entry = await this.node.catalog.lookup(key);
    const liveIds = this.node.liveNodeIds();
    let targets: string[];
    if (entry) {
      const live = this.node.liveHolders(entry.holders).map((n) => n.id);
      if (live.length === 0) throw new FlightError(StatusCode.UNAVAILABLE, `cannot append to ${key}: none of its holders (${entry.holders.join(", ")}) is alive`);
      targets = live;
    } else {
      targets = rendezvousOrder(key, liveIds).slice(0, Math.min(this.node.replicas, liveIds.length));
    }
    // The TTL every copy gets: the put's own, else (for a new flight) this node's default, so
    // that all copies expire together.
    const ttlMs = options?.ttlMs ?? (entry ? undefined : this.local.stats().ttl?.defaultTtlMs);
    const isNew = !entry;
    const localTx = targets.includes(this.node.id) ? await this.local.beginPut(descriptor, schema, options) : undefined;
    const replicas: ReplicaStream[] = [];
    try {
      for (const id of targets) {
        if (id === this.node.id) continue;
        replicas.push(this.node.openReplica(id, descriptor, ttlMs));
      }
      for (const r of replicas) await r.feed.push(toData(schema));
    } catch (err) {
      for (const r of replicas) r.controller.abort();
      await localTx?.abort();
      throw err;
    }
    let records = 0;
    let bytes = 0;
    let count = 0;
    const node = this.node;
    let finished = false;
    const abortAll = async (): Promise<void> => {
      for (const r of replicas) {
        r.feed.fail(new Error("put aborted"));
        r.controller.abort();
      }
      await Promise.allSettled(replicas.map((r) => r.done));
      await localTx?.abort();
    };
    return {
      async append(m: StoredMessage): Promise<void> {
        if (localTx) await localTx.append(m);
        for (const r of replicas) await r.feed.push(toData(m));
        count++;
        bytes += messageBytes(m);
        if (m.info.kind === MessageKind.RECORD_BATCH) records += m.info.rows;
      },
      async commit(): Promise<StoredFlight> {
        // Replicas first: each commits when its stream ends; the local copy only after all
        // did, so that an acknowledged put is on every target.
        for (const r of replicas) r.feed.end();
        const results = await Promise.allSettled(replicas.map((r) => r.done));
        const failed = results.findIndex((x) => x.status === "rejected");
        if (failed >= 0) {
          finished = true;
          await localTx?.abort();
          // A new flight is removed from the replicas that did commit (best effort); an append
          // cannot be taken back (docs/cluster.md).
          if (isNew) await node.deleteOn(replicas.filter((_, i) => results[i]!.status === "fulfilled").map((r) => r.nodeId), key);
          throw FlightError.from((results[failed] as PromiseRejectedResult).reason, StatusCode.UNAVAILABLE);
        }
        finished = true;
        let committed: StoredFlight | undefined;
        try {
          if (localTx) committed = await localTx.commit();
        } catch (err) {
          if (isNew) await node.deleteOn(replicas.map((r) => r.nodeId), key);
          throw err;
        }
        const now = Date.now();
        const facts: CatalogFacts = committed
          ? factsOf(committed)
          : {
              key,
              schemaHeader: schema.header,
              schemaMetadata: schema.appMetadata,
              messageCount: (entry?.messageCount ?? 0) + count,
              totalRecords: (entry?.totalRecords ?? 0) + records,
              totalBytes: (entry?.totalBytes ?? messageBytes(schema)) + bytes,
              createdAt: entry?.createdAt ?? now,
              updatedAt: now,
              expiresAt: ttlMs === undefined ? entry?.expiresAt : ttlMs === 0 ? undefined : now + ttlMs,
            };
        try {
          await node.catalog.register(facts, targets);
        } catch (err) {
          // Not registered (Redis lost meanwhile): a new flight is removed from every holder,
          // so that a failed put leaves nothing; an append stays (docs/cluster.md).
          if (isNew) await node.deleteOn(targets, key);
          throw err;
        }
        const live = node.liveHolders(targets);
        const locations = live.map((n) => n.location);
        if (committed) return withLocations(committed, locations);
        return remoteFlight(node, { ...facts, holders: targets }, locations, live.map((n) => n.id));
      },
      async abort(): Promise<void> {
        if (finished) return;
        finished = true;
        await abortAll();
      },
    };
  }

  async delete(descriptor: FlightDescriptor): Promise<boolean> {
    const key = descriptorKey(descriptor);
    const holders = await this.node.catalog.remove(key, this.node.tombstoneMs);
    const here = await this.local.delete(descriptor);
    await this.node.deleteOn(holders.filter((h) => h !== this.node.id), key);
    return holders.length > 0 || here;
  }

  private async renewEverywhere(descriptor: FlightDescriptor, ttlMs?: number): Promise<StoredFlight | undefined> {
    const key = descriptorKey(descriptor);
    const entry = await this.node.catalog.lookup(key);
    if (!entry) return undefined;
    const renewed = await this.node.renewOn(entry, descriptor, ttlMs);
    if (!renewed) return undefined;
    await this.node.catalog.setExpiry(key, renewed.expiresAt);
    const fresh = await this.node.catalog.lookup(key);
    return fresh ? this.flightOf(fresh, descriptor) : undefined;
  }

  stats(): StoreStats {
    return this.local.stats();
  }

  close(): Promise<void> {
    return this.local.close();
  }
}
