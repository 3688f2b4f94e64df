import { CLI_FLAGS, UsageError, parseCli, usage } from "./cli-options";

describe("parseCli: --project-exchange", () => {
  it("is off unless asked for", () => {
    expect(parseCli([], {}).projectExchange).toBe(false);
  });

  it("is a switch: --project-exchange turns it on, and takes no value", () => {
    expect(parseCli(["--project-exchange"], {}).projectExchange).toBe(true);
    expect(() => parseCli(["--project-exchange=yes"], {})).toThrow(UsageError);
  });

  it.each([
    ["1", true],
    ["true", true],
    ["YES", true],
    ["on", true],
    ["0", false],
    ["false", false],
    ["no", false],
    ["off", false],
    ["", false],
  ])("reads BLACKICE_PROJECT_EXCHANGE=%p as %p", (value, on) => {
    expect(parseCli([], { BLACKICE_PROJECT_EXCHANGE: value }).projectExchange).toBe(on);
  });

  it("refuses any other value of BLACKICE_PROJECT_EXCHANGE, naming the valid ones", () => {
    expect(() => parseCli([], { BLACKICE_PROJECT_EXCHANGE: "maybe" })).toThrow(
      new UsageError('BLACKICE_PROJECT_EXCHANGE must be 1, true, yes, on, 0, false, no or off; got "maybe"'),
    );
  });

  it("the flag wins over the environment, as every flag does", () => {
    expect(parseCli(["--project-exchange"], { BLACKICE_PROJECT_EXCHANGE: "0" }).projectExchange).toBe(true);
  });

  it("is listed in --help with its environment variable", () => {
    expect(CLI_FLAGS.map((f) => f.flag)).toContain("project-exchange");
    expect(usage()).toMatch(/\n {2}--project-exchange +serve the `project` DoExchange .*\[BLACKICE_PROJECT_EXCHANGE\]\n/);
  });
});

describe("parseCli: --data-dir, --fsync, --max-disk", () => {
  it("keeps flights in memory unless --data-dir is given", () => {
    expect(parseCli([], {}).disk).toBeUndefined();
  });

  it("takes a directory, an fsync policy (default always) and a disk limit", () => {
    expect(parseCli(["--data-dir", "/var/lib/bi"], {}).disk).toEqual({ dir: "/var/lib/bi", fsync: "always" });
    expect(parseCli(["--data-dir", "d", "--fsync", "interval", "--max-disk", "2GiB"], {}).disk).toEqual({ dir: "d", fsync: "interval", maxDiskBytes: 2 * 2 ** 30 });
  });

  it("reads BLACKICE_DATA_DIR, BLACKICE_FSYNC and BLACKICE_MAX_DISK; flags win", () => {
    const env = { BLACKICE_DATA_DIR: "e", BLACKICE_FSYNC: "never", BLACKICE_MAX_DISK: "1MiB" };
    expect(parseCli([], env).disk).toEqual({ dir: "e", fsync: "never", maxDiskBytes: 2 ** 20 });
    expect(parseCli(["--fsync", "always"], env).disk?.fsync).toBe("always");
  });

  it.each([
    [["--data-dir", "d", "--fsync", "sometimes"], '--fsync must be always, interval or never; got "sometimes"'],
    [["--fsync", "never"], "--fsync needs --data-dir"],
    [["--max-disk", "1GiB"], "--max-disk needs --data-dir"],
    [["--data-dir", "d", "--max-memory", "1GiB"], "--max-memory limits the in-memory store; with --data-dir use --max-disk"],
  ])("refuses %p: %s", (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(new UsageError(message));
  });

  it("lists the flags in --help with their environment variables", () => {
    expect(usage()).toMatch(/--data-dir .*\[BLACKICE_DATA_DIR\]/);
    expect(usage()).toMatch(/--fsync .*\[BLACKICE_FSYNC\]/);
    expect(usage()).toMatch(/--max-disk .*\[BLACKICE_MAX_DISK\]/);
  });
});

describe("parseCli: --flight-sql", () => {
  it("is a switch, off by default, from the flag or BLACKICE_FLIGHT_SQL, and turns on --query", () => {
    expect(parseCli([], {})).toMatchObject({ flightSql: false, query: false });
    expect(parseCli(["--flight-sql"], {})).toMatchObject({ flightSql: true, query: true });
    expect(parseCli([], { BLACKICE_FLIGHT_SQL: "1" })).toMatchObject({ flightSql: true, query: true });
    expect(parseCli([], { BLACKICE_FLIGHT_SQL: "off" })).toMatchObject({ flightSql: false, query: false });
    expect(() => parseCli(["--flight-sql=yes"], {})).toThrow(UsageError);
    expect(usage()).toMatch(/\n {2}--flight-sql +serve Arrow Flight SQL .*\[BLACKICE_FLIGHT_SQL\]\n/);
  });
});

describe("parseCli: --query", () => {
  it("is off by default, a switch, and read from BLACKICE_QUERY", () => {
    expect(parseCli([], {}).query).toBe(false);
    expect(parseCli(["--query"], {}).query).toBe(true);
    expect(parseCli([], { BLACKICE_QUERY: "1" }).query).toBe(true);
    expect(() => parseCli(["--query=yes"], {})).toThrow(UsageError);
    expect(usage()).toMatch(/\n {2}--query +serve query descriptors .*\[BLACKICE_QUERY\]\n/);
  });
});

describe("parseCli: JWT bearer authentication", () => {
  it("is off unless asked for; takes a JWKS, an issuer and comma-separated audiences", () => {
    expect(parseCli([], {}).jwt).toBeUndefined();
    expect(parseCli(["--jwt-jwks", "keys.json", "--jwt-issuer", "https://idp/", "--jwt-audience", "flight, flight-2"], {}).jwt).toEqual({
      jwks: "keys.json",
      issuer: "https://idp/",
      audience: ["flight", "flight-2"],
    });
    expect(parseCli([], { BLACKICE_JWT_JWKS: "https://idp/jwks", BLACKICE_JWT_ISSUER: "i", BLACKICE_JWT_AUDIENCE: "a" }).jwt).toEqual({ jwks: "https://idp/jwks", issuer: "i", audience: ["a"] });
  });

  it.each([
    [["--jwt-jwks", "k.json"], "--jwt-jwks, --jwt-issuer and --jwt-audience go together"],
    [["--jwt-issuer", "i", "--jwt-audience", "a"], "--jwt-jwks, --jwt-issuer and --jwt-audience go together"],
    [["--jwt-jwks", "k.json", "--jwt-issuer", "i", "--jwt-audience", ","], "--jwt-audience must name at least one audience"],
  ])("refuses %p: %s", (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(new UsageError(message));
  });

  it("lists the flags in --help with their environment variables", () => {
    expect(usage()).toMatch(/--jwt-jwks .*\[BLACKICE_JWT_JWKS\]/);
    expect(usage()).toMatch(/--jwt-issuer .*\[BLACKICE_JWT_ISSUER\]/);
    expect(usage()).toMatch(/--jwt-audience .*\[BLACKICE_JWT_AUDIENCE\]/);
  });
});

describe("parseCli: --merkle-signing-key", () => {
  it("is off unless given; takes a file, from the flag or BLACKICE_MERKLE_SIGNING_KEY", () => {
    expect(parseCli([], {}).merkleSigningKey).toBeUndefined();
    expect(parseCli(["--merkle-signing-key", "merkle.pem"], {}).merkleSigningKey).toBe("merkle.pem");
    expect(parseCli([], { BLACKICE_MERKLE_SIGNING_KEY: "k.pem" }).merkleSigningKey).toBe("k.pem");
    expect(usage()).toMatch(/--merkle-signing-key .*\[BLACKICE_MERKLE_SIGNING_KEY\]/);
  });
});

describe("parseCli: the browser page and CORS", () => {
  it("serves no page and sends no CORS headers unless asked", () => {
    const s = parseCli([], {});
    expect(s.config.webPage).toBeUndefined();
    expect(s.config.corsOrigins).toBeUndefined();
  });

  it("takes --web and repeatable --cors-origin, or BLACKICE_WEB and a comma-separated BLACKICE_CORS_ORIGIN", () => {
    const s = parseCli(["--web", "--cors-origin", "https://a.test", "--cors-origin", "http://b.test:8080"], {});
    expect(s.config.webPage).toBe(true);
    expect(s.config.corsOrigins).toEqual(["https://a.test", "http://b.test:8080"]);
    const e = parseCli([], { BLACKICE_WEB: "1", BLACKICE_CORS_ORIGIN: "https://a.test, *" });
    expect(e.config).toMatchObject({ webPage: true, corsOrigins: ["https://a.test", "*"] });
  });
});

describe("parseCli: --cluster, --advertise, --node-id, --replicas, --cluster-heartbeat, --cluster-ca", () => {
  it("is a single node unless --cluster is given", () => {
    expect(parseCli([], {}).cluster).toBeUndefined();
  });

  it("takes one Redis URL, or several (repeated flag) for a Redis Cluster, with the node's settings", () => {
    expect(parseCli(["--cluster", "redis://r:6379", "--advertise", "grpc+tcp://n1:8815", "--node-id", "n1", "--replicas", "3", "--cluster-heartbeat", "500ms"], {}).cluster).toEqual({
      redis: ["redis://r:6379"],
      advertise: "grpc+tcp://n1:8815",
      nodeId: "n1",
      replicas: 3,
      heartbeatMs: 500,
      caFile: undefined,
    });
    expect(parseCli(["--cluster", "redis://a:7000", "--cluster", "redis://b:7001"], {}).cluster!.redis).toEqual(["redis://a:7000", "redis://b:7001"]);
  });

  it("reads the environment (BLACKICE_CLUSTER comma-separated); flags win", () => {
    const env = { BLACKICE_CLUSTER: "redis://a:7000,redis://b:7001", BLACKICE_NODE_ID: "n2", BLACKICE_REPLICAS: "1", BLACKICE_ADVERTISE: "grpc+tcp://n2:1" };
    expect(parseCli([], env).cluster).toMatchObject({ redis: ["redis://a:7000", "redis://b:7001"], nodeId: "n2", replicas: 1, advertise: "grpc+tcp://n2:1" });
    expect(parseCli(["--replicas", "2"], env).cluster!.replicas).toBe(2);
  });

  it.each([
    [["--replicas", "2"], /--replicas needs --cluster/],
    [["--cluster", "redis://r:1", "--replicas", "0"], /--replicas must be a whole number from 1 to 16/],
    [["--cluster", "redis://r:1", "--cluster-heartbeat", "10ms"], /--cluster-heartbeat must be from 100ms to 60s/],
    [["--cluster", "redis://r:1", "--cluster-ca", "ca.pem"], /--cluster-ca needs --tls-cert/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(message);
  });

  it("lists the flags in --help with their environment variables", () => {
    const text = usage();
    for (const [flag, env] of [
      ["--cluster", "BLACKICE_CLUSTER"],
      ["--advertise", "BLACKICE_ADVERTISE"],
      ["--node-id", "BLACKICE_NODE_ID"],
      ["--replicas", "BLACKICE_REPLICAS"],
      ["--cluster-heartbeat", "BLACKICE_CLUSTER_HEARTBEAT"],
    ]) {
      expect(text).toMatch(new RegExp(`${flag} .*\\[${env}\\]`));
    }
  });
});

describe("parseCli: where a setting comes from", () => {
  const fs = require("node:fs") as typeof import("node:fs");
  const os = require("node:os") as typeof import("node:os");
  const path = require("node:path") as typeof import("node:path");
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-options-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };

  it("takes a flag over the --config file, and the file over the environment, and records which", () => {
    const cfg = file("a.yaml", "port: 9001\nttl: 1m\nquery: true\nhmac-secret-file: [a.secret, k2:b.secret]\n");
    const env = { BLACKICE_PORT: "9002", BLACKICE_TTL: "1h", BLACKICE_MAX_MEMORY: "2GiB" };
    const s = parseCli(["--config", cfg, "--ttl", "5s"], env);
    expect(s.config).toMatchObject({ addr: "127.0.0.1:9001", ttl: 5000, maxMemoryBytes: 2 * 2 ** 30 });
    expect(s.query).toBe(true);
    expect(s.hmacSecretFiles).toEqual([{ path: "a.secret" }, { keyId: "k2", path: "b.secret" }]);
    expect(s.sources).toMatchObject({ config: "--config", port: `port in ${cfg}`, ttl: "--ttl", "max-memory": "BLACKICE_MAX_MEMORY" });
  });

  it("reads the file named by BLACKICE_CONFIG, JSON by its name", () => {
    const cfg = file("b.json", JSON.stringify({ port: 9003, web: true }));
    const s = parseCli([], { BLACKICE_CONFIG: cfg });
    expect(s.config).toMatchObject({ addr: "127.0.0.1:9003", webPage: true });
  });

  it("names the key and the file of a bad value, and refuses unknown keys", () => {
    const bad = file("c.yaml", "max-memory: 0\n");
    expect(() => parseCli(["--config", bad], {})).toThrow(new UsageError(`max-memory in ${bad} must be at least 1 byte (e.g. 512MiB), got "0"`));
    const unknown = file("d.yaml", "prot: 1\n");
    expect(() => parseCli(["--config", unknown], {})).toThrow(/^unknown key "prot" in .*d\.yaml; the keys are the flags' names without --: host, port,/);
  });

  it("takes a value that starts with a dash for a flag, so the flag's own check names it", () => {
    expect(() => parseCli(["--ttl", "-5s"], {})).toThrow(/^--ttl: cannot read "-5s"/);
    expect(() => parseCli(["--ttl", "--port", "1"], {})).toThrow(new UsageError("--ttl needs a value"));
    expect(parseCli(["--grace", "0"], {}).graceMs).toBe(0);
    expect(parseCli([], {}).graceMs).toBe(10_000);
  });
});
