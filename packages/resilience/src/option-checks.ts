// What resilience adds to core's option checks (core/src/option-checks.ts): the pino logger
// option, and reporting failures of background work.
import type { Logger } from "pino";
import { describeValue } from "@blackice/flight-core";

/** A pino logger (anything with `child`, `level` and the level methods), or undefined. */
export function checkLogger(where: string, name: string, v: unknown): Logger | undefined {
  if (v === undefined) return undefined;
  const l = v as Partial<Record<string, unknown>> | null;
  const ok =
    l !== null &&
    typeof l === "object" &&
    typeof l.child === "function" &&
    typeof l.info === "function" &&
    typeof l.warn === "function" &&
    typeof l.error === "function" &&
    typeof l.debug === "function";
  if (!ok) throw new TypeError(`${where}: ${name} must be a pino Logger; got ${describeValue(v)}`);
  return v as Logger;
}

/** Reports a failure of background work (a listener, a collector) without throwing. */
export function defaultOnError(where: string): (err: unknown) => void {
  return function reportBackgroundError(err: unknown): void {
    process.emitWarning(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  };
}

/** Calls `onError`, swallowing whatever it throws: it is the last place to report to. */
export function report(onError: (err: unknown) => void, err: unknown): void {
  try {
    onError(err);
  } catch {
    // An error handler that throws has nowhere left to report to.
  }
}
