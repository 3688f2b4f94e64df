// @blackice/flight-resilience: circuit breakers, load shedding, deadlines, metrics, logs and
// admin actions for BlackIce Flight. Depends on @blackice/flight-core only (no gRPC).
// Creates no globals: no default prom-client registry, loggers are silent unless given one.
// The stream and call wrappers its middleware share (watch-iterable.ts, observe-call.ts) are
// not exported: they are how this package is built, not part of its API.

// ---- for server users ----
export { circuitBreaker, CLIENT_ERROR_CODES } from "./circuit-breaker";
export type { CircuitBreakerOptions, FlightCircuitBreaker, GuardOptions } from "./circuit-breaker";
export { guardedStore } from "./guarded-store";
export { clientBreaker, PEER_FAILURE_CODES } from "./client-breaker";
export type { ClientBreaker, ClientBreakerOptions } from "./client-breaker";
export type { BreakerTuning } from "./breaker-options";
export { RETRY_AFTER_MS } from "./breaker-core";
export type { BreakerState, BreakerStats, StateChangeListener } from "./breaker-core";
export { concurrencyLimit } from "./concurrency-limit";
export type { ConcurrencyLimitOptions } from "./concurrency-limit";
export { putByteBudget } from "./put-byte-budget";
export type { PutByteBudgetOptions } from "./put-byte-budget";
export { memoryPressureGuard } from "./memory-pressure-guard";
export type { MemoryPressureGuardOptions } from "./memory-pressure-guard";
export { deadlines } from "./deadlines";
export type { DeadlinesOptions } from "./deadlines";
export { metrics, DEFAULT_DURATION_BUCKETS, BREAKER_STATE_VALUES } from "./metrics";
export type { BreakerSource, MetricsOptions } from "./metrics";
export { tracing } from "./tracing";
export type { TracingOptions } from "./tracing";
export { callLogger } from "./call-logger";
export type { CallLoggerOptions } from "./call-logger";
export { adminActions } from "./admin-actions";
export type { AdminActionsOptions, AdminBreaker, AdminChange } from "./admin-actions";

// ---- for middleware authors ----
export { kLogger, kCallId, loggerOf } from "./call-logger";
export { redactHeaders, REDACTED } from "./redact-headers";
export { silentLogger } from "./silent-logger";
