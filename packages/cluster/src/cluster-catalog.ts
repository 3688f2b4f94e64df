import type { StoredFlight } from "@blackice/flight-core";
import type { Cluster, default as Redis } from "ioredis";
import { catalogUnavailable } from "./redis-connection";

/** What the catalog knows of one flight. */
export interface CatalogEntry {
  readonly key: string;
  /** The schema message's flatbuffer header and app_metadata, as the flight was put. */
  readonly schemaHeader: Uint8Array;
  readonly schemaMetadata: Uint8Array;
  readonly messageCount: number;
  readonly totalRecords: number;
  readonly totalBytes: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | undefined;
  /** Node ids that hold a copy (live or not). */
  readonly holders: readonly string[];
}

/** The facts registered for a flight: an entry without its holders. */
export type CatalogFacts = Omit<CatalogEntry, "holders">;

/** A node as membership knows it. */
export interface NodeRecord {
  readonly id: string;
  readonly location: string;
}

/**
 * The cluster's shared state in Redis: membership and the flight catalog.
 *
 * Every key carries the same hash tag (`{prefix}`), so that on Redis Cluster they all live in
 * one slot and a MULTI over a flight's keys and the index is allowed; the catalog is metadata
 * (a few hundred bytes a flight), so one shard holds it (docs/cluster.md).
 *
 * - `{p}:node:<id>` → the node's advertised location, with a TTL the heartbeat renews;
 * - `{p}:nodes` → the set of node ids ever seen (the dead are pruned as their keys expire);
 * - `{p}:f:<key>` → a hash of the flight's facts (schema, totals, times), expiring with the data;
 * - `{p}:h:<key>` → the set of holder node ids, expiring with the data;
 * - `{p}:flights` → a sorted set of flight keys scored by expiry (+inf: never), for listing;
 * - `{p}:t:<key>` → a tombstone (time of delete), so that a holder that was away while the
 *   flight was deleted drops its copy instead of registering it again.
 */
export class ClusterCatalog {
  private readonly p: string;

  constructor(
    private readonly redis: Redis | Cluster,
    prefix: string,
    private readonly where: string,
  ) {
    this.p = `{${prefix}}`;
  }

  /** Whether the client is connected and ready: when not, calls fail at once. */
  get ready(): boolean {
    return this.redis.status === "ready";
  }

  /** Runs one Redis operation, turning any failure into UNAVAILABLE with a clear message. */
  private async run<T>(op: () => Promise<T>): Promise<T> {
    if (!this.ready) throw catalogUnavailable(this.where, new Error(`connection ${this.redis.status}`));
    try {
      return await op();
    } catch (err) {
      throw catalogUnavailable(this.where, err);
    }
  }

  private exec(multi: ReturnType<(Redis | Cluster)["multi"]>): Promise<unknown[]> {
    return multi.exec().then((results) => {
      if (!results) throw new Error("transaction aborted");
      for (const [err] of results) if (err) throw err;
      return results.map(([, v]) => v);
    });
  }

  // ---------------------------------------------------------------- membership

  /** Announces (or renews) this node for `ttlMs`. */
  heartbeat(node: NodeRecord, ttlMs: number): Promise<void> {
    return this.run(async () => {
      await this.exec(this.redis.multi().set(`${this.p}:node:${node.id}`, node.location, "PX", ttlMs).sadd(`${this.p}:nodes`, node.id));
    });
  }

  /** Removes this node's heartbeat (a clean shutdown). */
  leave(id: string): Promise<void> {
    return this.run(async () => {
      await this.exec(this.redis.multi().del(`${this.p}:node:${id}`).srem(`${this.p}:nodes`, id));
    });
  }

  /** The live nodes: those whose heartbeat key has not expired. Prunes the dead from the id set. */
  liveNodes(): Promise<NodeRecord[]> {
    return this.run(async () => {
      const ids = await this.redis.smembers(`${this.p}:nodes`);
      if (ids.length === 0) return [];
      const locations = await this.redis.mget(ids.map((id) => `${this.p}:node:${id}`));
      const live: NodeRecord[] = [];
      const dead: string[] = [];
      ids.forEach((id, i) => {
        const loc = locations[i];
        if (loc) live.push({ id, location: loc });
        else dead.push(id);
      });
      if (dead.length > 0) await this.redis.srem(`${this.p}:nodes`, ...dead);
      return live.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }

  // ---------------------------------------------------------------- flights

  /** The entry of a flight, or undefined. */
  lookup(key: string): Promise<CatalogEntry | undefined> {
    return this.run(async () => {
      const [facts, holders] = (await this.exec(this.redis.multi().hgetallBuffer(`${this.p}:f:${key}`).smembers(`${this.p}:h:${key}`))) as [Record<string, Buffer>, string[]];
      return entryOf(key, facts, holders);
    });
  }

  /** The entries of many flights, in one round trip. */
  lookupMany(keys: readonly string[]): Promise<Array<CatalogEntry | undefined>> {
    return this.run(async () => {
      if (keys.length === 0) return [];
      const pipe = this.redis.pipeline();
      for (const k of keys) pipe.hgetallBuffer(`${this.p}:f:${k}`).smembers(`${this.p}:h:${k}`);
      const results = (await pipe.exec()) ?? [];
      return keys.map((k, i) => {
        const [e1, facts] = results[2 * i]!;
        const [e2, holders] = results[2 * i + 1]!;
        if (e1) throw e1;
        if (e2) throw e2;
        return entryOf(k, facts as Record<string, Buffer>, holders as string[]);
      });
    });
  }

  /** Keys of the flights that have not expired, in key order, `batch` at a time. */
  async *keys(batch = 500): AsyncGenerator<string[]> {
    let offset = 0;
    for (;;) {
      const now = Date.now();
      const page = await this.run(() => this.redis.zrangebyscore(`${this.p}:flights`, now, "+inf", "LIMIT", offset, batch));
      if (page.length > 0) yield page.sort();
      if (page.length < batch) return;
      offset += page.length;
    }
  }

  /**
   * Records a flight's facts and adds holders, with the keys' expiry set to the flight's.
   * Clears a tombstone of the key (the flight was put again after a delete).
   */
  register(facts: CatalogFacts, holders: readonly string[]): Promise<void> {
    return this.run(async () => {
      const f = `${this.p}:f:${facts.key}`;
      const h = `${this.p}:h:${facts.key}`;
      const m = this.redis
        .multi()
        .hset(f, {
          schema: Buffer.from(facts.schemaHeader.buffer, facts.schemaHeader.byteOffset, facts.schemaHeader.byteLength),
          schemaMeta: Buffer.from(facts.schemaMetadata.buffer, facts.schemaMetadata.byteOffset, facts.schemaMetadata.byteLength),
          messages: String(facts.messageCount),
          records: String(facts.totalRecords),
          bytes: String(facts.totalBytes),
          created: String(facts.createdAt),
          updated: String(facts.updatedAt),
          expires: facts.expiresAt === undefined ? "" : String(facts.expiresAt),
        })
        .zadd(`${this.p}:flights`, facts.expiresAt === undefined ? "+inf" : String(facts.expiresAt), facts.key)
        .del(`${this.p}:t:${facts.key}`);
      if (holders.length > 0) m.sadd(h, ...holders);
      if (facts.expiresAt === undefined) m.persist(f).persist(h);
      else m.pexpireat(f, facts.expiresAt).pexpireat(h, facts.expiresAt);
      await this.exec(m);
    });
  }

  /**
   * Registers a copy this node holds, as found in its local store (at start, or when Redis
   * returns): adds the holder, and writes the facts only when the catalog has none. Returns
   * false, registering nothing, when the flight was deleted after `updatedAt` (a tombstone).
   */
  registerHeld(facts: CatalogFacts, holder: string): Promise<boolean> {
    return this.run(async () => {
      const tomb = await this.redis.get(`${this.p}:t:${facts.key}`);
      if (tomb !== null && Number(tomb) >= facts.updatedAt) return false;
      const exists = await this.redis.exists(`${this.p}:f:${facts.key}`);
      if (exists) {
        await this.redis.sadd(`${this.p}:h:${facts.key}`, holder);
        if (facts.expiresAt !== undefined) await this.redis.pexpireat(`${this.p}:h:${facts.key}`, facts.expiresAt);
        return true;
      }
      await this.register(facts, [holder]);
      return true;
    });
  }

  /** Adds one holder to a flight that is registered. */
  addHolder(key: string, holder: string, expiresAt: number | undefined): Promise<void> {
    return this.run(async () => {
      const m = this.redis.multi().sadd(`${this.p}:h:${key}`, holder);
      if (expiresAt !== undefined) m.pexpireat(`${this.p}:h:${key}`, expiresAt);
      await this.exec(m);
    });
  }

  /** Removes holders from a flight (a node that lost its copy, or dead nodes). */
  removeHolders(key: string, holders: readonly string[]): Promise<void> {
    return this.run(async () => {
      if (holders.length > 0) await this.redis.srem(`${this.p}:h:${key}`, ...holders);
    });
  }

  /** Sets a flight's expiry (a renew) on its keys and in the index. */
  setExpiry(key: string, expiresAt: number | undefined): Promise<void> {
    return this.run(async () => {
      const f = `${this.p}:f:${key}`;
      const h = `${this.p}:h:${key}`;
      const m = this.redis
        .multi()
        .hset(f, "expires", expiresAt === undefined ? "" : String(expiresAt))
        .zadd(`${this.p}:flights`, "XX", expiresAt === undefined ? "+inf" : String(expiresAt), key);
      if (expiresAt === undefined) m.persist(f).persist(h);
      else m.pexpireat(f, expiresAt).pexpireat(h, expiresAt);
      await this.exec(m);
    });
  }

  /**
   * Removes a flight from the catalog and leaves a tombstone for `tombstoneMs`. Resolves with
   * the holders it had (empty: there was no such flight).
   */
  remove(key: string, tombstoneMs: number): Promise<string[]> {
    return this.run(async () => {
      const [holders] = (await this.exec(
        this.redis
          .multi()
          .smembers(`${this.p}:h:${key}`)
          .exists(`${this.p}:f:${key}`)
          .del(`${this.p}:f:${key}`, `${this.p}:h:${key}`)
          .zrem(`${this.p}:flights`, key)
          .set(`${this.p}:t:${key}`, String(Date.now()), "PX", tombstoneMs),
      )) as [string[], number];
      return holders;
    });
  }

  /** Drops index entries of flights that expired (their hash keys expire by themselves). */
  pruneExpired(): Promise<number> {
    return this.run(() => this.redis.zremrangebyscore(`${this.p}:flights`, "-inf", `(${Date.now()}`));
  }
}

function entryOf(key: string, facts: Record<string, Buffer> | null, holders: string[]): CatalogEntry | undefined {
  if (!facts || !facts.schema) return undefined;
  const num = (name: string): number => Number(facts[name]?.toString("latin1") ?? "0");
  const expires = facts.expires?.toString("latin1") ?? "";
  const expiresAt = expires === "" ? undefined : Number(expires);
  // An entry whose time has passed is gone, even if Redis has not expired its keys yet.
  if (expiresAt !== undefined && expiresAt <= Date.now()) return undefined;
  return {
    key,
    schemaHeader: new Uint8Array(facts.schema),
    schemaMetadata: new Uint8Array(facts.schemaMeta ?? Buffer.alloc(0)),
    messageCount: num("messages"),
    totalRecords: num("records"),
    totalBytes: num("bytes"),
    createdAt: num("created"),
    updatedAt: num("updated"),
    expiresAt,
    holders: [...holders].sort(),
  };
}

/** The catalog facts of a flight a store committed. */
export function factsOf(f: StoredFlight): CatalogFacts {
  return {
    key: f.key,
    schemaHeader: f.schema.header,
    schemaMetadata: f.schema.appMetadata,
    messageCount: f.messageCount,
    totalRecords: f.totalRecords,
    totalBytes: f.totalBytes,
    createdAt: f.createdAt,
    updatedAt: f.updatedAt,
    expiresAt: f.expiresAt,
  };
}

