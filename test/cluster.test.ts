import { FlightClient, createFlightServer, encodeTable, proto, type FlightServer } from "@blackice/flight";
import { CLUSTER_COPY_HEADER, CLUSTER_LOCAL_HEADER, cluster } from "@blackice/flight-cluster";
import { hmacSigner } from "@blackice/flight-security";
import type { FlightData, FlightDescriptor, FlightStore } from "@blackice/flight-core";
import { MemoryStore, chunksOf, descriptorKey, serverConfig, withStore } from "@blackice/flight-core";
import * as arrow from "apache-arrow";
import { tableFromArrays } from "apache-arrow";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { rendezvousOrder } from "../packages/cluster/src/placement";
import { clusterStats, eventually, pyarrow, startNode, type NodeProcess } from "./helpers/cluster-nodes";
import { makeTestCerts, type TestCerts } from "./helpers/certs";
import { run } from "./helpers/python";
import { startRedis, startRedisCluster, startRedisSentinel, type RedisClusterProcess, type RedisProcess, type RedisSentinelProcess } from "./helpers/redis";
import { ROOT, unpackDatasets } from "../integration/matrix";

/** SHA-256 of every byte of a DoGet as received (header, body, app_metadata of each message). */
async function rawDigest(location: string, key: string): Promise<{ messages: number; sha256: string }> {
  const c = new FlightClient(location);
  try {
    const h = createHash("sha256");
    let messages = 0;
    for await (const m of c.doGetRaw(Buffer.from(key, "latin1"), { deadline: 20_000 }) as AsyncIterable<FlightData>) {
      messages++;
      h.update(m.dataHeader);
      for (const chunk of chunksOf(m.dataBody)) h.update(chunk);
      h.update(m.appMetadata);
    }
    return { messages, sha256: h.digest("hex") };
  } finally {
    c.close();
  }
}

const HEARTBEAT = "200ms";

// Three BlackIce nodes as separate processes (the built CLI) sharing a catalog in their own
// redis-server; pyarrow's Flight client (Arrow C++) is the client.
describe("a cluster of three nodes (real processes, redis-server, pyarrow)", () => {
  let redis: RedisProcess;
  const nodes: NodeProcess[] = [];
  const byLocation = (loc: string): NodeProcess => nodes.find((n) => n.location === loc)!;

  beforeAll(async () => {
    redis = await startRedis();
    for (const id of ["n1", "n2", "n3"]) nodes.push(await startNode(id, ["--cluster", redis.url, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT]));
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.destroy();
  });

  it("stores a put on two nodes: FlightInfo anywhere lists both, DoGet anywhere is byte-identical", async () => {
    const [put] = await pyarrow([{ op: "put", loc: nodes[0]!.location, path: ["sales", "2024"], rows: 5000 }]);
    expect(put).toEqual({ acked: true });

    const [info] = await pyarrow([{ op: "info", loc: nodes[2]!.location, path: ["sales", "2024"] }]);
    expect(info!.records).toBe(5000);
    expect(info!.locations).toHaveLength(2);
    for (const loc of info!.locations as string[]) expect(nodes.map((n) => n.location)).toContain(loc);

    // pyarrow reads the flight from every node: the holders directly, the others proxied.
    const reads = await pyarrow(nodes.map((n) => ({ op: "get", loc: n.location, path: ["sales", "2024"] })));
    for (const r of reads) expect(r).toEqual({ rows: 5000, sha256: reads[0]!.sha256 });

    // Byte for byte as received: every node sends the same messages.
    const raw = await Promise.all(nodes.map((n) => rawDigest(n.location, "p:sales/2024")));
    for (const r of raw) expect(r).toEqual(raw[0]);
    expect(raw[0]!.messages).toBeGreaterThan(2);

    // The copies are in the two holders' own stores, not on the third node.
    const holders = (info!.locations as string[]).map(byLocation);
    const other = nodes.find((n) => !holders.includes(n))!;
    for (const h of holders) expect(await holdsLocally(h.location, "p:sales/2024")).toBe(true);
    expect(await holdsLocally(other.location, "p:sales/2024")).toBe(false);
  });

  it("lists the flights of all nodes on every node", async () => {
    await pyarrow([
      { op: "put", loc: nodes[1]!.location, path: ["logs", "a"], rows: 10 },
      { op: "put", loc: nodes[2]!.location, path: ["logs", "b"], rows: 20 },
    ]);
    const lists = await pyarrow(nodes.map((n) => ({ op: "list", loc: n.location })));
    for (const l of lists) expect(l).toEqual({ paths: ["logs/a", "logs/b", "sales/2024"] });
  });

  it("deletes a flight everywhere from any node", async () => {
    const [info] = await pyarrow([{ op: "info", loc: nodes[0]!.location, path: ["logs", "a"] }]);
    const [del] = await pyarrow([{ op: "delete", loc: nodes[2]!.location, path: ["logs", "a"] }]);
    expect(del!.deleted).toHaveLength(1);
    const after = await pyarrow(nodes.flatMap((n) => [{ op: "info", loc: n.location, path: ["logs", "a"] }, { op: "list", loc: n.location }]));
    for (let i = 0; i < nodes.length; i++) {
      // NOT_FOUND, as pyarrow raises it
      expect(after[2 * i]!.error).toBe("ArrowKeyError");
      expect(after[2 * i + 1]).toEqual({ paths: ["logs/b", "sales/2024"] });
    }
    // The holders' own stores dropped their copies.
    expect(info!.locations).toHaveLength(2);
    for (const n of nodes) expect(await holdsLocally(n.location, "p:logs/a")).toBe(false);
  });

  it("keeps serving local copies while Redis is down, fails catalog calls fast with UNAVAILABLE, and recovers when it returns", async () => {
    const [info] = await pyarrow([{ op: "info", loc: nodes[0]!.location, path: ["sales", "2024"] }]);
    const holder = byLocation((info!.locations as string[])[0]!);
    const other = nodes.find((n) => !(info!.locations as string[]).includes(n.location))!;
    const before = await pyarrow([{ op: "get", loc: holder.location, path: ["sales", "2024"] }]);

    await redis.stop();
    const down = await pyarrow([
      { op: "get", loc: holder.location, path: ["sales", "2024"] },
      { op: "info", loc: holder.location, path: ["sales", "2024"] },
      { op: "info", loc: other.location, path: ["sales", "2024"] },
      { op: "list", loc: other.location },
      { op: "put", loc: other.location, path: ["during", "outage"], rows: 5 },
    ]);
    expect(down[0]).toEqual(before[0]);
    expect(down[1]!.records).toBe(5000);
    for (const r of down.slice(2)) {
      expect(r.error).toBe("FlightUnavailableError");
      expect(r.message).toMatch(/cluster catalog .*unreachable/);
      expect(r.seconds).toBeLessThan(3);
    }

    // A fresh redis-server (no persistence): the nodes register what they hold again.
    await redis.start();
    await eventually("the catalog is rebuilt from the nodes' copies", async () => {
      const [again] = await pyarrow([{ op: "info", loc: other.location, path: ["sales", "2024"] }]);
      return Array.isArray(again!.locations) && again!.locations.length === 2;
    });
    const lists = await pyarrow(nodes.map((n) => ({ op: "list", loc: n.location })));
    for (const l of lists) expect(l).toEqual({ paths: ["logs/b", "sales/2024"] });
    const reads = await pyarrow([{ op: "get", loc: other.location, path: ["sales", "2024"] }]);
    expect(reads[0]).toEqual(before[0]);
  }, 60_000);

  it("expires a flight everywhere at its TTL", async () => {
    const [put] = await pyarrow([{ op: "put", loc: nodes[0]!.location, path: ["short", "lived"], rows: 100, ttl: "2s" }]);
    expect(put).toEqual({ acked: true });
    const [info] = await pyarrow([{ op: "info", loc: nodes[1]!.location, path: ["short", "lived"] }]);
    expect(info!.records).toBe(100);
    await new Promise((r) => setTimeout(r, 2500));
    const after = await pyarrow(nodes.flatMap((n) => [{ op: "info", loc: n.location, path: ["short", "lived"] }, { op: "get", loc: n.location, path: ["short", "lived"] }, { op: "list", loc: n.location }]));
    for (let i = 0; i < nodes.length; i++) {
      expect(after[3 * i]!.error).toBe("ArrowKeyError");
      expect(after[3 * i + 1]!.error).toBe("ArrowKeyError");
      expect(after[3 * i + 2]).toEqual({ paths: ["logs/b", "sales/2024"] });
    }
  });

  it("survives kill -9 of a holder: reads go on from the replica, its location leaves FlightInfo, and a new copy is made", async () => {
    const [info] = await pyarrow([{ op: "info", loc: nodes[0]!.location, path: ["sales", "2024"] }]);
    const [before] = await pyarrow([{ op: "get", loc: nodes[0]!.location, path: ["sales", "2024"] }]);
    const victim = byLocation((info!.locations as string[])[0]!);
    const survivors = nodes.filter((n) => n !== victim);
    await victim.kill();
    const killedAt = Date.now();

    // Reads continue at once, from every surviving node.
    const reads = await pyarrow(survivors.map((n) => ({ op: "get", loc: n.location, path: ["sales", "2024"] })));
    for (const r of reads) expect(r).toEqual(before);

    // The dead node's location leaves FlightInfo within the heartbeat TTL (5 × 200 ms), and
    // re-replication brings the flight back to two holders, both alive.
    await eventually("FlightInfo lists two live holders again", async () => {
      const [now] = await pyarrow([{ op: "info", loc: survivors[0]!.location, path: ["sales", "2024"] }]);
      const locs = (now!.locations ?? []) as string[];
      return locs.length === 2 && !locs.includes(victim.location);
    });
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    for (const n of survivors) expect(await holdsLocally(n.location, "p:sales/2024")).toBe(true);
    const again = await pyarrow(survivors.map((n) => ({ op: "get", loc: n.location, path: ["sales", "2024"] })));
    for (const r of again) expect(r).toEqual(before);
  }, 60_000);
});

/**
 * Whether a node's own store holds a flight: a DoGet with the cluster's node-to-node header is
 * served from the node's store only, never proxied.
 */
async function holdsLocally(location: string, key: string): Promise<boolean> {
  const c = new FlightClient(location);
  try {
    for await (const _ of c.doGetRaw(Buffer.from(key, "latin1"), { deadline: 5000, metadata: { [CLUSTER_LOCAL_HEADER]: "1" } })) return true;
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 5) return false;
    throw err;
  } finally {
    c.close();
  }
}

// The same code against a Redis Cluster of three masters (the CLI takes its seed nodes as
// repeated --cluster flags).
describe("a cluster of three nodes on a Redis Cluster of three masters", () => {
  let redis: RedisClusterProcess;
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    redis = await startRedisCluster(3);
    const seeds = redis.urls.flatMap((u) => ["--cluster", u]);
    for (const id of ["c1", "c2", "c3"]) nodes.push(await startNode(id, [...seeds, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT]));
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.destroy();
  });

  it("places, lists, serves and deletes flights from any node", async () => {
    await pyarrow([
      { op: "put", loc: nodes[0]!.location, path: ["rc", "one"], rows: 3000 },
      { op: "put", loc: nodes[1]!.location, path: ["rc", "two"], rows: 10 },
    ]);
    const infos = await pyarrow(nodes.map((n) => ({ op: "info", loc: n.location, path: ["rc", "one"] })));
    for (const i of infos) {
      expect(i.records).toBe(3000);
      expect(i.locations).toHaveLength(2);
      expect(i.locations).toEqual(infos[0]!.locations);
    }
    const reads = await pyarrow(nodes.map((n) => ({ op: "get", loc: n.location, path: ["rc", "one"] })));
    for (const r of reads) expect(r).toEqual({ rows: 3000, sha256: reads[0]!.sha256 });
    const lists = await pyarrow(nodes.map((n) => ({ op: "list", loc: n.location })));
    for (const l of lists) expect(l).toEqual({ paths: ["rc/one", "rc/two"] });
    await pyarrow([{ op: "delete", loc: nodes[2]!.location, path: ["rc", "one"] }]);
    const after = await pyarrow(nodes.map((n) => ({ op: "list", loc: n.location })));
    for (const l of after) expect(l).toEqual({ paths: ["rc/two"] });
    for (const n of nodes) expect(await holdsLocally(n.location, "p:rc/one")).toBe(false);
  });
});

// Nodes on disk stores: a holder killed and restarted under the same id registers its copies
// again; a put whose replica dies mid-stream is refused and leaves no flight behind.
describe("a cluster of three nodes on disk stores", () => {
  let redis: RedisProcess;
  const nodes: NodeProcess[] = [];
  const dirs: string[] = [];
  const argsOf = (i: number): string[] => ["--cluster", redis.url, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT, "--data-dir", dirs[i]!, "--fsync", "never"];

  beforeAll(async () => {
    redis = await startRedis();
    for (let i = 0; i < 3; i++) {
      dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), "cluster-disk-")));
      nodes.push(await startNode(`d${i + 1}`, argsOf(i)));
    }
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.destroy();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("a holder restarted on its disk store registers its copy again", async () => {
    await pyarrow([{ op: "put", loc: nodes[0]!.location, path: ["disk", "kept"], rows: 2000 }]);
    const [info] = await pyarrow([{ op: "info", loc: nodes[0]!.location, path: ["disk", "kept"] }]);
    const i = nodes.findIndex((n) => n.location === (info!.locations as string[])[0]);
    const victim = nodes[i]!;
    // Redis restarted empty while the holder is down: only the nodes' own stores know the flight.
    await victim.kill();
    await redis.stop();
    await redis.start();
    nodes[i] = await startNode(victim.id, argsOf(i));
    const restarted = nodes[i]!;
    await eventually("the restarted holder is listed again", async () => {
      const [now] = await pyarrow([{ op: "info", loc: nodes[(i + 1) % 3]!.location, path: ["disk", "kept"] }]);
      return Array.isArray(now!.locations) && now!.locations.includes(restarted.location);
    });
    expect(await holdsLocally(restarted.location, "p:disk/kept")).toBe(true);
    const reads = await pyarrow(nodes.map((n) => ({ op: "get", loc: n.location, path: ["disk", "kept"] })));
    for (const r of reads) expect(r).toEqual({ rows: 2000, sha256: reads[0]!.sha256 });
  }, 60_000);

  it("refuses a put whose replica dies mid-stream, and leaves no flight anywhere", async () => {
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
    // A key whose two holders do not include the node the put is sent to: both are replicas.
    const ids = nodes.map((n) => n.id).sort();
    let key = "";
    for (let k = 0; ; k++) {
      const order = rendezvousOrder(`p:mid/${k}`, ids);
      if (!order.slice(0, 2).includes(nodes[0]!.id)) {
        key = `${k}`;
        break;
      }
    }
    const holders = rendezvousOrder(`p:mid/${key}`, ids).slice(0, 2);
    const victim = nodes.find((n) => n.id === holders[1])!;
    const survivor = nodes.find((n) => n.id === holders[0])!;
    const table = tableFromArrays({ v: Float64Array.from({ length: 100_000 }, (_, i) => i) });
    const messages = [...encodeTable(arrow, table, { maxBatchRows: 5_000 })];
    const client = new FlightClient(nodes[0]!.location);
    let sent = 0;
    async function* slowly() {
      for (const m of messages) {
        if (sent === 5) await victim.kill();
        sent++;
        yield m;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    let failure: unknown;
    try {
      for await (const _ of client.doPutRaw({ type: 1, path: ["mid", key], cmd: new Uint8Array(0) }, slowly(), { deadline: 30_000 }).results) {
        // no acks expected: the batches carry no app_metadata
      }
    } catch (err) {
      failure = err;
    } finally {
      client.close();
    }
    expect(failure).toBeDefined();
    if ((failure as { code: number }).code !== 14) throw new Error(`${(failure as Error).message}\n${nodes[0]!.output()}`);
    expect((failure as { code: number }).code).toBe(14); // UNAVAILABLE
    expect((failure as Error).message).toMatch(new RegExp(`replica ${victim.id}`));
    const alive = nodes.filter((n) => n !== victim);
    const infos = await pyarrow(alive.map((n) => ({ op: "info", loc: n.location, path: ["mid", key] })));
    for (const i of infos) expect(i.error).toBe("ArrowKeyError");
    expect(await holdsLocally(survivor.location, `p:mid/${key}`)).toBe(false);
  }, 60_000);
});

// Apache Arrow's integration client (arrow-go's, the default scenario: DoPut a dataset, then
// GetFlightInfo and DoGet from the endpoint's locations) against one node of a cluster; the
// flights are then read back on every node and compared with the datasets.
describe("Arrow's integration client against a node of a three-node cluster", () => {
  const DATASETS = ["cpp-21.0.0/generated_primitive", "cpp-21.0.0/generated_dictionary", "cpp-21.0.0/generated_nested", "cpp-21.0.0/generated_datetime"];
  let redis: RedisProcess;
  const nodes: NodeProcess[] = [];
  let tmp: string;
  let files: Map<string, string>;

  beforeAll(async () => {
    execFileSync("bash", [path.join(ROOT, "scripts", "install-go-peers.sh")], { cwd: ROOT, stdio: "pipe" });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require("../integration/run.js") as { ensureBuilt(o: { quiet: boolean }): void }).ensureBuilt({ quiet: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cluster-integration-"));
    files = unpackDatasets(tmp);
    redis = await startRedis();
    for (const id of ["i1", "i2", "i3"]) nodes.push(await startNode(id, ["--cluster", redis.url, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT]));
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
  }, 300_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test.each(DATASETS)("%s: arrow-go's client passes on node 3, and every node serves the flight", async (dataset) => {
    const file = files.get(dataset);
    expect(file).toBeDefined();
    const portOf = (n: NodeProcess): string => /:(\d+)$/.exec(n.location)![1]!;
    const go = await run(path.join(ROOT, ".cache", "go-bin", "arrow-flight-integration-client"), ["-host", "localhost", "-port", portOf(nodes[2]!), "-path", file!], { timeoutMs: 60_000 });
    if (go.code !== 0) throw new Error(`arrow-go integration client failed (${go.code}):\n${go.stdout}\n${go.stderr}`);
    for (const n of nodes) {
      const back = await run(process.execPath, [path.join(ROOT, ".cache", "integration-build", "client.js"), "--host", "localhost", "--port", portOf(n), "--path", file!, "--verify-stored"], { timeoutMs: 60_000 });
      if (back.code !== 0) throw new Error(`read-back on ${n.id} failed (${back.code}):\n${back.stdout}\n${back.stderr}`);
      expect(back.stdout).toMatch(/read-back .* passed/);
    }
  }, 120_000);
});

// Nodes that require HMAC-signed calls sign their calls to each other (the CLI gives the
// cluster its first --hmac-secret-file key); GetSchema, PollFlightInfo and
// RenewFlightEndpoint answer for flights held elsewhere.
describe("a cluster of three nodes requiring HMAC", () => {
  let redis: RedisProcess;
  const nodes: NodeProcess[] = [];
  let tmp: string;
  let secretPath: string;
  const clients: FlightClient[] = [];
  const signedClient = (n: NodeProcess): FlightClient => {
    const c = new FlightClient(n.location, { signer: hmacSigner({ keyId: "default", secretPath }) });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cluster-hmac-"));
    secretPath = path.join(tmp, "secret");
    fs.writeFileSync(secretPath, "cluster-test-hmac-secret-0123456789abcdef", { mode: 0o600 });
    redis = await startRedis();
    for (const id of ["h1", "h2", "h3"]) nodes.push(await startNode(id, ["--cluster", redis.url, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT, "--hmac-secret-file", secretPath]));
    // The stats action (which shows the live nodes) is for admins only here: give every node
    // five heartbeats to see the others.
    await new Promise((r) => setTimeout(r, 1000));
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("replicates and proxies with signed calls, and refuses unsigned ones", async () => {
    const table = tableFromArrays({ v: Float64Array.from({ length: 10_000 }, (_, i) => i) });
    await signedClient(nodes[0]!).putTable({ type: 1, path: ["signed"], cmd: new Uint8Array(0) }, table, { metadata: { "x-blackice-ttl": "1h" } });
    const info = await signedClient(nodes[2]!).getFlightInfo({ type: 1, path: ["signed"], cmd: new Uint8Array(0) });
    expect(info.endpoint[0]!.location).toHaveLength(2);
    expect(Number(info.totalRecords)).toBe(10_000);
    const digests = await Promise.all(
      nodes.map(async (n) => {
        const h = createHash("sha256");
        for await (const m of signedClient(n).doGetRaw(info.endpoint[0]!.ticket!)) {
          h.update(m.dataHeader);
          for (const c of chunksOf(m.dataBody)) h.update(c);
        }
        return h.digest("hex");
      }),
    );
    for (const d of digests) expect(d).toBe(digests[0]);

    const unsigned = new FlightClient(nodes[1]!.location);
    clients.push(unsigned);
    await expect(unsigned.getFlightInfo({ type: 1, path: ["signed"], cmd: new Uint8Array(0) })).rejects.toMatchObject({ code: 16 }); // UNAUTHENTICATED
  });

  it("answers GetSchema, PollFlightInfo and RenewFlightEndpoint on a node that does not hold the flight", async () => {
    const d = { type: 1, path: ["signed"], cmd: new Uint8Array(0) };
    const info = await signedClient(nodes[0]!).getFlightInfo(d);
    const holders = info.endpoint[0]!.location.map((l) => l.uri);
    const other = nodes.find((n) => !holders.includes(n.location))!;
    const c = signedClient(other);
    expect(Buffer.from((await c.getSchema(d)).schema).equals(Buffer.from(info.schema))).toBe(true);
    const poll = await c.pollFlightInfo(d);
    expect(poll.info!.endpoint[0]!.location.map((l) => l.uri).sort()).toEqual([...holders].sort());
    const before = info.endpoint[0]!.expirationTime!.getTime();
    await new Promise((r) => setTimeout(r, 50));
    const body = proto.RenewFlightEndpointRequest.encode({ endpoint: info.endpoint[0]! }).finish();
    const [renewed] = await c.doAction("RenewFlightEndpoint", body);
    const endpoint = proto.FlightEndpoint.decode(renewed!.body);
    expect(endpoint.expirationTime!.getTime()).toBeGreaterThan(before);
    expect(endpoint.location.map((l) => l.uri).sort()).toEqual([...holders].sort());
    // Every holder's copy was renewed (each at its own moment, so within a few ms of the
    // latest, which the catalog keeps): FlightInfo from each shows its new expiry.
    for (const loc of holders) {
      const again = await signedClient(nodes.find((n) => n.location === loc)!).getFlightInfo(d);
      expect(again.endpoint[0]!.expirationTime!.getTime()).toBeGreaterThan(before);
      expect(again.endpoint[0]!.expirationTime!.getTime()).toBeLessThanOrEqual(endpoint.expirationTime!.getTime());
    }
  });
});

// Nodes that serve mTLS call each other over mTLS: each presents its own certificate (issued
// for both server and client use) and trusts the cluster's CA (--cluster-ca).
describe("a cluster of three nodes serving mTLS", () => {
  let redis: RedisProcess;
  const nodes: NodeProcess[] = [];
  let certs: TestCerts;
  const clients: FlightClient[] = [];
  const tlsClient = (n: NodeProcess): FlightClient => {
    const c = new FlightClient(n.location, { tls: { rootCerts: fs.readFileSync(certs.caCert), cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) } });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    certs = makeTestCerts();
    // A node certificate for both ends of a node-to-node call.
    const ssl = (args: string[]): void => void execFileSync("openssl", args, { cwd: certs.dir, stdio: "pipe" });
    fs.writeFileSync(path.join(certs.dir, "node.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
    ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=blackice-node"]);
    ssl(["x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "node.crt", "-days", "2", "-extfile", "node.ext"]);
    redis = await startRedis();
    const tlsArgs = ["--tls-cert", path.join(certs.dir, "node.crt"), "--tls-key", path.join(certs.dir, "node.key"), "--tls-client-ca", certs.caCert, "--cluster-ca", certs.caCert];
    for (const id of ["t1", "t2", "t3"]) nodes.push(await startNode(id, ["--cluster", redis.url, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT, ...tlsArgs]));
    for (const n of nodes) {
      await eventually(`${n.id} sees three live nodes`, async () => {
        const [r] = await tlsClient(n).doAction("stats", undefined, { deadline: 5000 });
        return JSON.parse(Buffer.from(r!.body).toString("utf8")).cluster.liveNodes.length === 3;
      });
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.destroy();
    if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
  });

  it("replicates and proxies over mTLS, advertising grpc+tls locations", async () => {
    for (const n of nodes) expect(n.location).toMatch(/^grpc\+tls:\/\/127\.0\.0\.1:\d+$/);
    const table = tableFromArrays({ v: Float64Array.from({ length: 20_000 }, (_, i) => i) });
    const d = { type: 1, path: ["tls", "flight"], cmd: new Uint8Array(0) };
    await tlsClient(nodes[0]!).putTable(d, table);
    const info = await tlsClient(nodes[2]!).getFlightInfo(d);
    const locations = info.endpoint[0]!.location.map((l) => l.uri);
    expect(locations).toHaveLength(2);
    for (const l of locations) expect(nodes.map((n) => n.location)).toContain(l);
    const digests = await Promise.all(
      nodes.map(async (n) => {
        const h = createHash("sha256");
        for await (const m of tlsClient(n).doGetRaw(info.endpoint[0]!.ticket!)) {
          h.update(m.dataHeader);
          for (const c of chunksOf(m.dataBody)) h.update(c);
        }
        return h.digest("hex");
      }),
    );
    for (const x of digests) expect(x).toBe(digests[0]);
    // A client without a certificate does not get in.
    const anonymous = new FlightClient(nodes[1]!.location, { tls: { rootCerts: fs.readFileSync(certs.caCert) } });
    clients.push(anonymous);
    await expect(anonymous.getFlightInfo(d, { deadline: 5000 })).rejects.toMatchObject({ code: 14 });
  });
});

// The catalog through Redis Sentinel: the nodes ask the sentinel for the master.
describe("a cluster of three nodes through Redis Sentinel", () => {
  let redis: RedisProcess;
  let sentinel: RedisSentinelProcess;
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    sentinel = await startRedisSentinel(redis);
    for (const id of ["s1", "s2", "s3"]) nodes.push(await startNode(id, ["--cluster", sentinel.url, "--replicas", "2", "--cluster-heartbeat", HEARTBEAT]));
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await sentinel?.destroy();
    await redis?.destroy();
  });

  it("places, lists and serves flights from any node", async () => {
    expect(String((await clusterStats(nodes[0]!.location)).redis)).toMatch(/^Redis Sentinel master blackice via 127\.0\.0\.1:\d+$/);
    await pyarrow([{ op: "put", loc: nodes[0]!.location, path: ["sentinel", "one"], rows: 1000 }]);
    const infos = await pyarrow(nodes.map((n) => ({ op: "info", loc: n.location, path: ["sentinel", "one"] })));
    for (const i of infos) {
      expect(i.records).toBe(1000);
      expect(i.locations).toHaveLength(2);
    }
    const reads = await pyarrow(nodes.map((n) => ({ op: "get", loc: n.location, path: ["sentinel", "one"] })));
    for (const r of reads) expect(r).toEqual({ rows: 1000, sha256: reads[0]!.sha256 });
    const lists = await pyarrow(nodes.map((n) => ({ op: "list", loc: n.location })));
    for (const l of lists) expect(l).toEqual({ paths: ["sentinel/one"] });
  });
});

// Re-replication onto a node that already holds the flight. The nodes run in this process
// (each its own server, MemoryStore and Redis connection; redis-server is a real process) so
// that the test can hold one node's registration back: after Redis returns empty, the holder
// that registers first is the flight's only listed holder, and re-replicates it onto the other
// holder, whose own copy is not registered yet. A copy that appended doubled the flight there
// (the 10 000 rows read instead of 5 000 in one run of the kill -9 test, which runs after the
// Redis outage test); a copy replaces it.
describe("re-replication onto a node that already holds a copy (in-process nodes, redis-server)", () => {
  interface InProcessNode {
    id: string;
    store: MemoryStore;
    server: FlightServer;
    location: string;
    /** While set, the node's registration (which lists its store) waits for it. */
    held?: Promise<void>;
  }
  let redis: RedisProcess;
  const nodes: InProcessNode[] = [];
  const clients: FlightClient[] = [];
  const client = (n: InProcessNode): FlightClient => {
    const c = new FlightClient(n.location);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await startRedis();
    for (const id of ["r1", "r2", "r3"]) {
      const store = new MemoryStore();
      const node: InProcessNode = { id, store, server: undefined!, location: "" };
      const list = store.list.bind(store);
      (store as { list: FlightStore["list"] }).list = async function* heldList(prefix) {
        while (node.held) await node.held;
        yield* list(prefix);
      };
      node.server = createFlightServer(
        serverConfig({ addr: "127.0.0.1:0" }),
        withStore(store),
        cluster({ redis: redis.url, nodeId: id, replicas: 2, heartbeatMs: 200, onError: () => undefined }),
      );
      await node.server.start();
      node.location = `grpc+tcp://127.0.0.1:${node.server.port}`;
      nodes.push(node);
    }
    for (const n of nodes) await eventually(`${n.id} sees three live nodes`, async () => (await clusterStats(n.location)).liveNodes.length === 3);
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) n.held = undefined;
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.server.shutdown({ graceMs: 100 })));
    await redis?.destroy();
  });

  const rowsHeldBy = async (n: InProcessNode, d: FlightDescriptor): Promise<number | undefined> => (await n.store.get(d))?.totalRecords;

  it("after Redis returns empty, the copy made onto a holder that registers late replaces its copy instead of doubling it", async () => {
    const d = { type: 1, path: ["late", "holder"], cmd: new Uint8Array(0) };
    const [first, second] = rendezvousOrder(descriptorKey(d), nodes.map((n) => n.id)).map((id) => nodes.find((n) => n.id === id)!);
    const table = tableFromArrays({ v: Float64Array.from({ length: 5000 }, (_, i) => i) });
    await client(nodes[0]!).putTable(d, table, { maxBatchRows: 1000 });
    for (const n of nodes) expect(await rowsHeldBy(n, d)).toBe(n === first || n === second ? 5000 : undefined);

    // Redis restarts empty; `second` keeps heartbeating but its registration waits.
    let release!: () => void;
    second!.held = new Promise<void>((r) => (release = r));
    const copiesBefore = Number((await clusterStats(first!.location)).reReplicated);
    await redis.stop();
    await redis.start();
    // `first` registers alone, and after a node TTL re-replicates to the next node in
    // rendezvous order: `second`, which still holds its unregistered copy.
    await eventually("the first holder copied the flight to the second", async () => Number((await clusterStats(first!.location)).reReplicated) > copiesBefore);
    second!.held = undefined;
    release();
    await eventually("the second holder registered its copy", async () => Number((await clusterStats(second!.location)).reRegistered) > 0);

    for (const n of nodes) expect(await rowsHeldBy(n, d)).toBe(n === first || n === second ? 5000 : undefined);
    const info = await client(nodes[2]!).getFlightInfo(d);
    expect(Number(info.totalRecords)).toBe(5000);
    expect(info.endpoint[0]!.location.map((l) => l.uri).sort()).toEqual([first!.location, second!.location].sort());
    for (const n of nodes) expect((await client(n).getTable(info.endpoint[0]!.ticket!)).numRows).toBe(5000);
  }, 60_000);

  it("two whole copies racing onto one node leave one copy, whichever commits last", async () => {
    // What two nodes that both take themselves for a flight's first live holder send to the
    // same target at once (their views of who is alive differ by up to a heartbeat).
    const d = { type: 1, path: ["racing", "copies"], cmd: new Uint8Array(0) };
    const target = nodes[1]!;
    const messages = [...encodeTable(arrow, tableFromArrays({ v: Float64Array.from({ length: 4000 }, (_, i) => i) }), { maxBatchRows: 1000 })];
    const gates = [0, 1].map(() => {
      let open!: () => void;
      return { opened: new Promise<void>((r) => (open = r)), open };
    });
    const sent = [0, 1].map(() => {
      let done!: () => void;
      return { all: new Promise<void>((r) => (done = r)), done };
    });
    const copy = (i: number) =>
      (async () => {
        const stream = async function* () {
          for (const m of messages) yield m;
          sent[i]!.done();
          await gates[i]!.opened; // the stream (and so the put) stays open until the test says
        };
        for await (const _ of client(target).doPutRaw(d, stream(), { metadata: { [CLUSTER_LOCAL_HEADER]: "1", [CLUSTER_COPY_HEADER]: "1" } }).results) {
          // no acks: the batches carry no app_metadata
        }
      })();
    const puts = [copy(0), copy(1)];
    await Promise.all(sent.map((s) => s.all));
    gates[0]!.open();
    await puts[0];
    gates[1]!.open();
    await puts[1];
    expect(await rowsHeldBy(target, d)).toBe(4000);
    expect((await target.store.get(d))!.messageCount).toBe(4);
  });
});
