import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** The project's virtualenv Python (made by .ci/run). Fails loudly when it is missing. */
export function venvPython(): string {
  const py = path.resolve(__dirname, "../../.venv/bin/python");
  if (!fs.existsSync(py)) {
    throw new Error(`${py} is missing: run \`python3 -m venv .venv && .venv/bin/pip install -r requirements-test.txt\` (as .ci/run does)`);
  }
  return py;
}

/** Runs a command, collecting its output; resolves with the exit code. Kills it after timeoutMs. */
export function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...options.env }, cwd: options.cwd ?? path.resolve(__dirname, "../..") });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
