// What resilience adds to core's option checks (core/src/option-checks.ts): the pino logger
// option, and reporting failures of background work.
import type { Logger } from "pino";
import { checkImplements } from "@blackice/flight-core";

/** A pino logger (anything with `child` and the level methods), or undefined. */
export function checkLogger(where: string, name: string, v: unknown): Logger | undefined {
  return checkImplements<Logger>(where, name, v, ["child", "info", "warn", "error", "debug"], "a pino Logger");
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
