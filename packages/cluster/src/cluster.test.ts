import { cluster } from "./cluster";
import { rendezvousOrder } from "./placement";
import { parseRedisUrls, redact } from "./redis-connection";

describe("cluster(options) validates up front", () => {
  it.each([
    [{ redis: [] }, /at least one URL/],
    [{ redis: "http://r:6379" }, /not a Redis URL/],
    [{ redis: "redis://r" }, /needs a host and a port/],
    [{ redis: "redis://r:1", replicas: 0 }, /replicas must be an integer from 1 to 16/],
    [{ redis: "redis://r:1", replicas: 17 }, /replicas must be an integer from 1 to 16/],
    [{ redis: "redis://r:1", heartbeatMs: 10 }, /heartbeatMs must be an integer from 100 to 60000/],
    [{ redis: "redis://r:1", heartbeatMs: 1000, nodeTtlMs: 1500 }, /nodeTtlMs must be an integer from 2000/],
    [{ redis: "redis://r:1", nodeId: "a b" }, /^cluster: nodeId must be 1 to 128 characters of A-Z a-z 0-9 \. _ : -; got "a b"$/],
    [{ redis: "redis://r:1", advertise: "http://x:1" }, /advertise/],
    [{ redis: "redis://r:1", keyPrefix: "{x}" }, /keyPrefix must be 1 to 64 characters/],
    [{ redis: 6379 }, /^cluster: redis must be a URL or an array of URLs; got 6379$/],
    [{ redis: ["redis://u:s3cret@r:1", 5] }, /^cluster: redis must be a URL or an array of URLs; got an array with other items$/],
    [{ redis: ["redis://a:1/2", "redis://b:2"] }, /Redis Cluster has no databases/],
  ])("refuses %j", (options, message) => {
    expect(() => cluster(options as never)).toThrow(TypeError);
    expect(() => cluster(options as never)).toThrow(message);
  });

  it("returns the store wrapper, the node-to-node middleware, a stats section and its lifecycle", () => {
    const parts = cluster({ redis: "redis://127.0.0.1:6379", nodeId: "n1", advertise: "grpc+tcp://127.0.0.1:8815" });
    expect(parts.map((p) => (typeof p === "function" ? "middleware" : (p as { kind: string }).kind))).toEqual(["storeWrapper", "middleware", "stats", "lifecycle"]);
  });
});

describe("parseRedisUrls", () => {
  it("reads a single Redis, a Redis Cluster and Sentinel", () => {
    expect(parseRedisUrls(["redis://u:p@h:6379/3"])).toEqual({ mode: "single", host: "h", port: 6379, db: 3, tls: false, username: "u", password: "p" });
    expect(parseRedisUrls(["redis://a:7000", "redis://b:7001"])).toMatchObject({ mode: "cluster", nodes: [{ host: "a", port: 7000 }, { host: "b", port: 7001 }] });
    expect(parseRedisUrls(["redis+sentinel://s1:26379,s2:26380/mymaster"])).toMatchObject({ mode: "sentinel", name: "mymaster", sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }] });
  });

  it("never shows a password in its messages", () => {
    expect(redact("redis://user:secret@h:1")).toBe("redis://user:***@h:1");
    expect(() => parseRedisUrls(["redis://user:secret@h"])).toThrow(/^(?!.*secret)/);
  });
});

describe("rendezvousOrder", () => {
  it("orders every node, the same way for the same key whatever the input order", () => {
    const a = rendezvousOrder("p:x", ["n1", "n2", "n3", "n4"]);
    expect([...a].sort()).toEqual(["n1", "n2", "n3", "n4"]);
    expect(rendezvousOrder("p:x", ["n4", "n3", "n2", "n1"])).toEqual(a);
  });

  it("moves only the keys a leaving node ranked first, and spreads keys over the nodes", () => {
    const nodes = ["n1", "n2", "n3"];
    const keys = Array.from({ length: 3000 }, (_, i) => `p:k${i}`);
    const first = new Map(keys.map((k) => [k, rendezvousOrder(k, nodes)[0]!]));
    const counts = nodes.map((n) => [...first.values()].filter((v) => v === n).length);
    for (const c of counts) expect(c).toBeGreaterThan(800);
    for (const k of keys) {
      const after = rendezvousOrder(k, ["n1", "n2"])[0];
      if (first.get(k) !== "n3") expect(after).toBe(first.get(k));
    }
  });
});
