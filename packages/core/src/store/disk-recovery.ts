import * as fs from "node:fs";
import * as path from "node:path";
import { EOS, decodeManifest, fileId, type Manifest } from "./disk-format";

/** A flight found intact at open. */
export interface RecoveredFlight {
  manifest: Manifest;
  /** Size of the manifest file. */
  manifestBytes: number;
}

/** What recovery did, for logs and tests. */
export interface RecoveryReport {
  /** Flights found intact (expired ones not counted). */
  flights: number;
  /** Leftovers of puts that never committed: temp data and manifest files. */
  tempFilesRemoved: number;
  /** Data files no manifest names (a crash between writing a flight's data and its manifest, or during a delete). */
  orphansRemoved: number;
  /** Data files cut back to their manifest's length (a crash during an append). */
  truncated: number;
  /** Expired flights removed. */
  expiredRemoved: number;
  /** Manifests that could not be used (damaged, or their data file is missing or short); moved to `damaged/`. */
  damaged: number;
  durationMs: number;
}

/** The directories of a store. */
export function storePaths(dir: string): { flights: string; tmp: string; damaged: string } {
  return { flights: path.join(dir, "flights"), tmp: path.join(dir, "tmp"), damaged: path.join(dir, "damaged") };
}

/**
 * Brings a store directory to a consistent state and lists its flights. Synchronous: it runs
 * once at open, before the store serves anything. Cost: one read of each manifest and one
 * stat of each data file, so 10k flights take well under seconds on a local disk.
 *
 * - `tmp/` is emptied: puts that were never committed leave nothing.
 * - A temp manifest (`*.json.tmp-*`) was never renamed, so never committed: removed.
 * - A data file longer than its manifest says was being appended to: cut back to the
 *   committed length and its end-of-stream marker written again.
 * - A manifest that cannot be read, or whose data file is missing or shorter than committed,
 *   is moved to `damaged/` and reported; other flights are unaffected.
 * - Expired flights (absolute expiry at or before `now`) are removed.
 * - Data files that no manifest names are removed.
 */
export function recoverDirectory(dir: string, now: number, report: (problem: string) => void, sync: boolean): { flights: RecoveredFlight[]; report: RecoveryReport } {
  const started = Date.now();
  const paths = storePaths(dir);
  fs.mkdirSync(paths.flights, { recursive: true });
  fs.mkdirSync(paths.tmp, { recursive: true });
  const r: RecoveryReport = { flights: 0, tempFilesRemoved: 0, orphansRemoved: 0, truncated: 0, expiredRemoved: 0, damaged: 0, durationMs: 0 };

  for (const name of fs.readdirSync(paths.tmp)) {
    fs.rmSync(path.join(paths.tmp, name), { force: true, recursive: true });
    r.tempFilesRemoved++;
  }

  const names = fs.readdirSync(paths.flights);
  const dataFiles = new Set<string>();
  const manifests: string[] = [];
  for (const name of names) {
    if (name.endsWith(".arrows")) dataFiles.add(name);
    else if (name.endsWith(".json")) manifests.push(name);
    else if (name.includes(".json.tmp-")) {
      fs.rmSync(path.join(paths.flights, name), { force: true });
      r.tempFilesRemoved++;
    }
  }

  const damage = (name: string, why: string): void => {
    r.damaged++;
    report(`flight manifest ${name}: ${why}; moved to ${paths.damaged}`);
    fs.mkdirSync(paths.damaged, { recursive: true });
    fs.renameSync(path.join(paths.flights, name), path.join(paths.damaged, name));
  };

  const flights: RecoveredFlight[] = [];
  const referenced = new Set<string>();
  for (const name of manifests) {
    const file = path.join(paths.flights, name);
    let bytes: Buffer;
    let manifest: Manifest;
    try {
      bytes = fs.readFileSync(file);
      manifest = decodeManifest(bytes);
    } catch (err) {
      damage(name, `cannot be read (${(err as Error).message})`);
      continue;
    }
    if (name !== `${fileId(manifest.key)}.json`) {
      // Later changes to the flight would write another manifest beside this one.
      damage(name, `it is named for another key than its own (${manifest.key})`);
      continue;
    }
    const dataFile = path.join(paths.flights, manifest.data);
    if (manifest.expiresAt !== null && manifest.expiresAt <= now) {
      // The manifest goes first: once it is gone the flight is gone, whatever happens next.
      fs.rmSync(file, { force: true });
      fs.rmSync(dataFile, { force: true });
      r.expiredRemoved++;
      continue;
    }
    let size: number;
    try {
      size = fs.statSync(dataFile).size;
    } catch {
      damage(name, `its data file ${manifest.data} is missing`);
      continue;
    }
    if (size < manifest.dataLength) {
      damage(name, `its data file ${manifest.data} holds ${size} bytes, ${manifest.dataLength} were committed`);
      continue;
    }
    if (size > manifest.dataLength) {
      // An append wrote past the committed end (over the end-of-stream marker) and did not commit.
      const fd = fs.openSync(dataFile, "r+");
      try {
        fs.ftruncateSync(fd, manifest.dataLength);
        fs.writeSync(fd, EOS, 0, EOS.length, manifest.dataLength - EOS.length);
        if (sync) fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      r.truncated++;
    }
    referenced.add(manifest.data);
    flights.push({ manifest, manifestBytes: bytes.length });
  }

  for (const name of dataFiles) {
    if (referenced.has(name)) continue;
    fs.rmSync(path.join(paths.flights, name), { force: true });
    r.orphansRemoved++;
  }
  if (sync && r.tempFilesRemoved + r.orphansRemoved + r.expiredRemoved + r.damaged > 0) fsyncDirectory(paths.flights);
  r.flights = flights.length;
  r.durationMs = Date.now() - started;
  return { flights, report: r };
}

/** Makes a directory's entries (creations, renames, removals) durable. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
