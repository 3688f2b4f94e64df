import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FlightError } from "../flight-error";
import { StatusCode } from "../status-code";

/** Name of the lock file in a store directory. */
export const LOCK_FILE = "LOCK";

/** Directories locked by stores of this process (a pid check cannot tell them apart). */
const lockedHere = new Set<string>();

/**
 * Takes the store directory's lock: creates `LOCK` exclusively (O_EXCL) with this process's
 * pid and host. A lock left by a process that no longer runs on this host is stale and taken
 * over; a live one is a clear error. Returns the function that releases it.
 *
 * @throws FlightError FAILED_PRECONDITION when another process (or another store of this
 * process) holds the directory, PERMISSION_DENIED when the directory cannot be written.
 */
export function lockDirectory(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const real = fs.realpathSync(dir);
  if (lockedHere.has(real)) {
    throw new FlightError(StatusCode.FAILED_PRECONDITION, `data directory ${dir} is already open in this process (another DiskStore holds ${file})`);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, "wx", 0o644);
      try {
        fs.writeSync(fd, `${process.pid}\n${os.hostname()}\n`);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EROFS" || code === "EACCES" || code === "EPERM") {
        throw new FlightError(StatusCode.PERMISSION_DENIED, `data directory ${dir} is not writable (${code}); a DiskStore needs to write there`, { cause: err });
      }
      if (code !== "EEXIST") throw err;
      const holder = readHolder(file);
      // attempt > 0: another process took the stale lock over between our removal and create.
      if (attempt > 0 || (holder !== undefined && isAlive(holder))) {
        throw new FlightError(
          StatusCode.FAILED_PRECONDITION,
          `data directory ${dir} is locked by process ${holder?.pid ?? "?"} on ${holder?.host ?? "?"} (${file}); ` +
            `stop that server, or remove the file if no such process runs`,
        );
      }
      // Stale: its process is gone (a crash or kill -9). Take it over.
      fs.rmSync(file, { force: true });
    }
  }
  lockedHere.add(real);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    lockedHere.delete(real);
    fs.rmSync(file, { force: true });
  };
}

interface Holder {
  pid: number;
  host: string;
}

function readHolder(file: string): Holder | undefined {
  try {
    const [pid, host] = fs.readFileSync(file, "utf8").split("\n");
    const n = Number(pid);
    // An empty or garbled file was left by a process killed between create and write.
    return Number.isInteger(n) && n > 0 ? { pid: n, host: host ?? "" } : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(h: Holder): boolean {
  // A lock from another host (a shared volume) cannot be checked: treat it as held.
  if (h.host !== os.hostname()) return true;
  // Our own pid: not held by this process's stores (checked above), so left by an earlier
  // process that had the same pid.
  if (h.pid === process.pid) return false;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
