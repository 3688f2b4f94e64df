// Test helper for the examples' tests: Arrow data as DoPut messages, descriptors, and a way
// to start an example as its own process.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as path from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { splitIpcStream, type FlightData, type FlightDescriptor } from "@blackice/flight-core";

export const ROOT = path.resolve(__dirname, "../..");

/** A small table as DoPut messages: the schema (with the descriptor) then batches of `chunk` rows. */
export function tableMessages(descriptor: FlightDescriptor, rows: number, chunk = 1000): FlightData[] {
  const ids = Int32Array.from({ length: rows }, (_, i) => i);
  const values = Float64Array.from({ length: rows }, (_, i) => i / 7);
  const chunkAt = (at: number) => tableFromArrays({ id: ids.subarray(at, at + chunk), v: values.subarray(at, at + chunk) });
  let table = chunkAt(0);
  for (let at = chunk; at < rows; at += chunk) table = table.concat(chunkAt(at));
  const messages = splitIpcStream(tableToIPC(table, "stream"));
  return messages.map((m, i) => ({
    flightDescriptor: i === 0 ? descriptor : undefined,
    dataHeader: m.header,
    dataBody: m.body,
    appMetadata: i === 0 ? new Uint8Array(0) : Buffer.from(`batch-${i}`),
  }));
}

/** A process started by {@link startProcess}, with the first line that matched. */
export interface StartedProcess {
  child: ChildProcessWithoutNullStreams;
  match: RegExpExecArray;
  output: () => string;
  /** SIGTERM, then the exit code (SIGKILL after 10 s). */
  stop: () => Promise<number | null>;
}

/**
 * Runs a TypeScript entry point with ts-node (transpile only: the suite type-checks it) and
 * waits for a line of its output matching `ready`. ts-node resolves `@blackice/*` through
 * node_modules to the built packages, so `npm run build` must have run (`npm test` does).
 */
export function startTsProcess(entry: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<StartedProcess> {
  const tsNode = require.resolve("ts-node/dist/bin.js", { paths: [ROOT] });
  const child = spawn(process.execPath, [tsNode, entry, ...args], { cwd: ROOT, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "1", ...env } });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${entry} did not print ${ready} within 30 s; output:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, output: () => out, stop });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before it was ready; output:\n${out}`));
    });
  });
}
