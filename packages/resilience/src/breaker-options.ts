/** Option handling shared by `circuitBreaker` and `clientBreaker`. Internal. */
import type { Logger } from "pino";
import { MAX_TIMER_MS, checkFunction, checkInt, checkName, checkNumber } from "@blackice/flight-core";
import { checkLogger, defaultOnError } from "./option-checks";
import { silentLogger } from "./silent-logger";

/** Options common to both breakers. */
export interface BreakerTuning {
  /**
   * Name of what is guarded: a label in stats, metrics and logs, and the key of `admin.reset-breaker`.
   * 1–64 of `A-Z a-z 0-9 _ . : -`.
   */
  name?: string;
  /** A guarded operation taking longer fails (and counts) and its signal is aborted. 0: no timeout. */
  timeoutMs?: number;
  /** How long the circuit stays open before one probe call is let through. Default 30 000 ms. */
  resetTimeoutMs?: number;
  /** Failure percentage in the rolling window above which the circuit opens (0–100). Default 50. */
  errorThresholdPercentage?: number;
  /**
   * Calls that must be in the rolling window before the circuit may open, so a few early
   * failures do not open it. Default 10.
   */
  volumeThreshold?: number;
  /** Length of the rolling window of counts, in ms. Default 10 000. */
  rollingWindowMs?: number;
  /** Buckets the rolling window is divided into (its resolution). Default 10; at most rollingWindowMs. */
  rollingBuckets?: number;
  /** State changes (warn on open, info otherwise) and failures (debug). Default: silent. */
  logger?: Logger;
  /** Receives errors of state-change listeners and error classifiers. Default: a process warning. */
  onError?: (err: unknown) => void;
}

export const TUNING_KEYS = [
  "name",
  "timeoutMs",
  "resetTimeoutMs",
  "errorThresholdPercentage",
  "volumeThreshold",
  "rollingWindowMs",
  "rollingBuckets",
  "logger",
  "onError",
] as const;

export interface SettledTuning {
  name: string;
  timeoutMs: number;
  resetTimeoutMs: number;
  errorThresholdPercentage: number;
  volumeThreshold: number;
  rollingWindowMs: number;
  rollingBuckets: number;
  logger: Logger;
  onError: (err: unknown) => void;
}

export function settleTuning(where: string, o: BreakerTuning, defaults: { name: string; timeoutMs: number }): SettledTuning {
  const rollingWindowMs = checkInt(where, "rollingWindowMs", o.rollingWindowMs, 1, MAX_TIMER_MS, 10_000);
  return {
    name: checkName(where, "name", o.name, defaults.name),
    timeoutMs: checkInt(where, "timeoutMs (0 = no timeout)", o.timeoutMs, 0, MAX_TIMER_MS, defaults.timeoutMs),
    resetTimeoutMs: checkInt(where, "resetTimeoutMs", o.resetTimeoutMs, 1, MAX_TIMER_MS, 30_000),
    errorThresholdPercentage: checkNumber(where, "errorThresholdPercentage", o.errorThresholdPercentage, 0, 100, 50),
    volumeThreshold: checkInt(where, "volumeThreshold", o.volumeThreshold, 0, Number.MAX_SAFE_INTEGER, 10),
    rollingWindowMs,
    rollingBuckets: checkInt(where, "rollingBuckets", o.rollingBuckets, 1, Math.min(rollingWindowMs, 1000), 10),
    logger: checkLogger(where, "logger", o.logger) ?? silentLogger(),
    onError: checkFunction<(err: unknown) => void>(where, "onError", o.onError) ?? defaultOnError(where),
  };
}
