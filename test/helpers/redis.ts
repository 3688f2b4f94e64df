import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { run } from "./python";

/** Debian's redis-server and redis-cli (scripts/ensure-test-peers.js installs them). */
export const REDIS_SERVER = "/usr/bin/redis-server";
export const REDIS_CLI = "/usr/bin/redis-cli";

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connection to port succeeds and PING answers PONG; rejects after timeoutMs. */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1");
      let text = "";
      sock.setTimeout(500);
      sock.on("connect", () => sock.write("PING\r\n"));
      sock.on("data", (d) => {
        text += d;
        if (text.includes("\r\n")) {
          sock.destroy();
          resolve(text.startsWith("+PONG"));
        }
      });
      sock.on("error", () => resolve(false));
      sock.on("timeout", () => {
        sock.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One redis-server process of a test: its port and URL; `stop()` ends it, `start()` brings it back on the same port. */
export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Starts (again) on the same port and waits until it answers. */
  start(): Promise<void>;
  /** Stops it (SIGKILL) and waits for the exit. Safe to call when stopped. */
  stop(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/**
 * Starts `redis-server` on a free port, without persistence, in its own temp directory, and
 * waits until it answers PING. `extraArgs` are added (e.g. `--cluster-enabled yes`).
 */
export async function startRedis(extraArgs: string[] = []): Promise<RedisProcess> {
  if (!fs.existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: run \`node scripts/ensure-test-peers.js\` (apt-get install redis-server)`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-test-"));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = "";
  const proc: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async start() {
      if (child) return;
      const c = spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extraArgs], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      child = c;
      c.stdout!.on("data", (d) => (log = (log + d).slice(-4000)));
      c.stderr!.on("data", (d) => (log = (log + d).slice(-4000)));
      exited = new Promise((resolve) => c.on("exit", () => resolve()));
      exited.then(() => {
        if (child === c) child = undefined;
      });
      try {
        await waitForPong(port, 10_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}; its output:\n${log}`);
      }
    },
    async stop() {
      const c = child;
      if (!c) return;
      c.kill("SIGKILL");
      await exited;
      child = undefined;
    },
    async destroy() {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await proc.start();
  return proc;
}

/** A Redis Cluster of masters on free ports: their URLs; `destroy()` stops them all. */
export interface RedisClusterProcess {
  readonly nodes: RedisProcess[];
  readonly urls: string[];
  destroy(): Promise<void>;
}

/**
 * Starts `masters` redis-servers with `--cluster-enabled yes` and joins them with
 * `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`, then waits until the
 * cluster reports `cluster_state:ok` on every node.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcess> {
  const nodes: RedisProcess[] = [];
  const destroy = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.destroy()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(await startRedis(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]));
    }
    const created = await run(REDIS_CLI, ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"], { timeoutMs: 30_000 });
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed (${created.code}):\n${created.stdout}\n${created.stderr}`);
    const until = Date.now() + 20_000;
    for (const n of nodes) {
      for (;;) {
        const info = await run(REDIS_CLI, ["-p", String(n.port), "cluster", "info"], { timeoutMs: 5_000 });
        if (/cluster_state:ok/.test(info.stdout)) break;
        if (Date.now() > until) throw new Error(`Redis Cluster node ${n.port} not ok:\n${info.stdout}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { nodes, urls: nodes.map((n) => n.url), destroy };
}

/** A Redis Sentinel watching one master (a {@link RedisProcess}) under `name`. */
export interface RedisSentinelProcess {
  readonly port: number;
  /** `redis+sentinel://127.0.0.1:PORT/NAME`, the form the CLI's --cluster takes. */
  readonly url: string;
  destroy(): Promise<void>;
}

/** Starts `redis-server sentinel.conf --sentinel` on a free port, monitoring `master` as `name` (quorum 1). */
export async function startRedisSentinel(master: RedisProcess, name = "blackice"): Promise<RedisSentinelProcess> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-sentinel-"));
  const conf = path.join(dir, "sentinel.conf");
  fs.writeFileSync(conf, [`port ${port}`, "bind 127.0.0.1", `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`, `sentinel down-after-milliseconds ${name} 2000`, ""].join("\n"));
  const child = spawn(REDIS_SERVER, [conf, "--sentinel"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d) => (log = (log + d).slice(-4000)));
  child.stderr!.on("data", (d) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  try {
    await waitForPong(port, 10_000);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${(err as Error).message}; its output:\n${log}`);
  }
  return {
    port,
    url: `redis+sentinel://127.0.0.1:${port}/${name}`,
    async destroy() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
