import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as path from "node:path";

/** The built CLI (`npm run build` first). */
export const CLI = path.resolve(__dirname, "../../packages/cli/dist/cli.js");

/**
 * The port in the CLI's "listening" log line, once stdout holds it. The CLI logs JSON lines on
 * stdout (not a terminal); the line carries `location` and `port`.
 */
export function listeningPort(stdout: string): number | undefined {
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { port?: unknown; location?: unknown };
      if (typeof entry.port === "number" && typeof entry.location === "string") return entry.port;
    } catch {
      // a line still being written
    }
  }
  return undefined;
}

/**
 * Starts the built CLI on a free port and resolves once it logs its address. Logs at `warn`
 * would hide that line (it is `info`), so the CLI logs at `info`: call logs go to stdout too.
 */
export function startCli(args: string[], env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcessWithoutNullStreams; port: number }> {
  const child = spawn(process.execPath, [CLI, "--port", "0", "--log-level", "info", ...args], env ? { env: { ...process.env, ...env } } : {});
  return new Promise((resolve, reject) => {
    let out = "";
    let found = false;
    child.stdout.on("data", (d) => {
      if (found) return;
      out += d;
      const port = listeningPort(out);
      if (port !== undefined) {
        found = true;
        resolve({ child, port });
      }
    });
    child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
  });
}
