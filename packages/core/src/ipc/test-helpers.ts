// Test-only helpers shared by the ipc tests. Excluded from the build (src/**/test-*.ts).
import * as fs from "fs";
import * as path from "path";
import { FlightError } from "../flight-error";

/** The conformance corpus, carried in the repository (test/fixtures/conformance/SOURCE.md says where it comes from). */
export const CONFORMANCE_DIR = path.resolve(__dirname, "../../../../test/fixtures/conformance");

/** Fails loudly when the corpus is missing, so that its tests cannot pass vacuously. */
export function requireConformance(): string {
  if (!fs.existsSync(path.join(CONFORMANCE_DIR, "SOURCE.md"))) {
    throw new Error(`conformance corpus not found at ${CONFORMANCE_DIR} (expected test/fixtures/conformance in the repository)`);
  }
  return CONFORMANCE_DIR;
}

/** All files below `dir`, sorted. */
export function listFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .sort();
}

/** Runs `fn` and returns the FlightError it throws; fails the test when it throws anything else or nothing. */
export function flightErrorOf(fn: () => unknown): FlightError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FlightError) return e;
    throw new Error(`expected a FlightError, got ${String(e)}`);
  }
  throw new Error("expected a FlightError, nothing was thrown");
}
