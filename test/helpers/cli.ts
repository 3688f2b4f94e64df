import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as path from "node:path";

/** The built CLI (`npm run build` first). */
export const CLI = path.resolve(__dirname, "../../packages/cli/dist/cli.js");

/** Starts the built CLI on a free port (logs silent) and resolves once it prints its address. */
export function startCli(args: string[], env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcessWithoutNullStreams; port: number }> {
  const child = spawn(process.execPath, [CLI, "--port", "0", "--log-level", "silent", ...args], env ? { env: { ...process.env, ...env } } : {});
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on grpc\+tcp:\/\/127\.0\.0\.1:(\d+)\n/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
  });
}
