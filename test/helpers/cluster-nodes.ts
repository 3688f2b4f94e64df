import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { FlightClient } from "@blackice/flight";
import { run, venvPython } from "./python";

const CLI = path.resolve(__dirname, "../../packages/cli/dist/cli.js");
const CLUSTER_CLIENT = path.resolve(__dirname, "../python/cluster_client.py");

/** A BlackIce node started from the built CLI as its own process. */
export interface NodeProcess {
  readonly id: string;
  readonly location: string;
  readonly child: ChildProcess;
  /** Its stderr and stdout so far (for failure messages). */
  output(): string;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

/** Starts `node packages/cli/dist/cli.js --port 0 ...args` and waits for its "listening" log line. */
export async function startNode(id: string, args: string[]): Promise<NodeProcess> {
  const child = spawn(process.execPath, [CLI, "--host", "127.0.0.1", "--port", "0", "--node-id", id, "--log-level", "info", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stderr!.on("data", (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const location = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out = (out + d).slice(-20_000);
      // The "listening" log line (JSON, at info) carries the location.
      const m = /"location":"([^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) => reject(new Error(`node ${id} exited early with ${code}:\n${out}`)));
  });
  return {
    id,
    location,
    child,
    output: () => out,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Runs operations with pyarrow.flight (test/python/cluster_client.py); resolves with their results. */
export async function pyarrow(ops: Array<Record<string, unknown>>): Promise<Array<Record<string, any>>> {
  const r = await run(venvPython(), [CLUSTER_CLIENT, JSON.stringify(ops)], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`cluster_client.py failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** The `cluster` section of a node's `stats` action. */
export async function clusterStats(location: string): Promise<{ liveNodes: string[]; [k: string]: unknown }> {
  const c = new FlightClient(location);
  try {
    const [r] = await c.doAction("stats", undefined, { deadline: 5000 });
    return JSON.parse(Buffer.from(r!.body).toString("utf8")).cluster;
  } finally {
    c.close();
  }
}

/** Polls `check` every 100 ms until it returns true; throws with `what` after timeoutMs. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
