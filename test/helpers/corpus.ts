import * as fs from "node:fs";
import * as path from "node:path";

/** The conformance corpus, carried in the repository (test/fixtures/conformance/SOURCE.md says where it comes from). */
export const CORPUS = path.resolve(__dirname, "../fixtures/conformance");

function must(dir: string): string {
  if (!fs.existsSync(dir)) throw new Error(`conformance corpus missing at ${dir} (test/fixtures/conformance)`);
  return dir;
}

/** Every `*.stream` under ipc/, as [relative name, absolute path]. */
export function ipcStreams(): Array<[string, string]> {
  const root = must(path.join(CORPUS, "ipc"));
  const out: Array<[string, string]> = [];
  for (const dir of fs.readdirSync(root).sort()) {
    for (const f of fs.readdirSync(path.join(root, dir)).sort()) {
      if (f.endsWith(".stream")) out.push([`${dir}/${f}`, path.join(root, dir, f)]);
    }
  }
  return out;
}

/** Every fuzz case, as [name, absolute path]. */
export function fuzzCases(): Array<[string, string]> {
  const root = must(path.join(CORPUS, "fuzz"));
  return fs.readdirSync(root).sort().map((f) => [f, path.join(root, f)]);
}
