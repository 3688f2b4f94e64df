import { performance } from "node:perf_hooks";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import {
  FLIGHT_METHODS,
  onLifecycle,
  statusCodeName,
  type FlightData,
  type FlightMiddleware,
  type FlightStore,
  type StoreStats,
  serverParts,
  type ServerParts,
  checkBoolean,
  checkImplements,
  checkPattern,
} from "@blackice/flight-core";
import type { BreakerState, BreakerStats } from "./breaker-core";
import { observeCall, withFields } from "./observe-call";
import { checkFunction, checkOptions } from "@blackice/flight-core";
import { defaultOnError, report } from "./option-checks";
import { flightDataBytes } from "./put-byte-budget";
import { watchIterable } from "./watch-iterable";

/** What metrics need of a breaker: both `circuitBreaker` and `clientBreaker` qualify. */
export interface BreakerSource {
  readonly name: string;
  stats(): BreakerStats;
}

/** Options of {@link metrics}. */
export interface MetricsOptions {
  /** The prom-client registry to register into. Required: the library never uses the global one. */
  registry: Registry;
  /** Prefix of every metric name. Default `"blackice_flight_"`. */
  prefix?: string;
  /** Buckets of the call duration histogram, in seconds, increasing. */
  buckets?: readonly number[];
  /**
   * Export the figures of the server's store (flights, rows, bytes, and the memory and GC
   * sections when the store has them), read at each scrape. Default true.
   */
  storeMetrics?: boolean;
  /** Breakers whose state, transitions, failures and rejections are exported. */
  breakers?: readonly BreakerSource[];
  /** Authentication failures so far, by reason (cumulative counts), read at each scrape. */
  authFailures?: () => Record<string, number>;
  /** Receives errors of the collectors above (the scrape goes on). Default: a process warning. */
  onError?: (err: unknown) => void;
}

/** Default duration buckets (s): Flight calls range from sub-millisecond lookups to long streams. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
]);

/** The value of the `breaker_state` gauge for each state. */
export const BREAKER_STATE_VALUES: Readonly<Record<BreakerState, number>> = Object.freeze({ closed: 0, halfOpen: 1, open: 2, shutdown: 3 });

/** Distinct auth failure reasons exported; beyond, they are summed under "other". */
const MAX_REASONS = 64;

/**
 * Turns cumulative figures read from elsewhere (store GC runs, breaker totals, auth failures)
 * into counter increments. A figure that went down (its source was replaced) counts afresh.
 */
function cumulativeFeeder(counter: Counter<string>): (labels: Record<string, string>, value: number) => void {
  const last = new Map<string, number>();
  return function feed(labels, value) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return;
    const key = JSON.stringify(labels);
    const previous = last.get(key) ?? 0;
    const delta = value >= previous ? value - previous : value;
    if (delta > 0) counter.inc(labels, delta);
    last.set(key, value);
  };
}

/**
 * Prometheus metrics of a Flight server, registered in the given registry (`prefix` defaults
 * to `blackice_flight_`):
 *
 * - `calls_total{method,code}`, `call_duration_seconds{method}` (histogram), `calls_in_flight{method}`;
 * - `received_bytes_total{method}`, `sent_bytes_total{method}`: FlightData header + body bytes
 *   of DoPut / DoExchange requests and DoGet / DoExchange responses;
 * - unless `storeMetrics: false`, from the server's store: `store_flights`, `store_rows`,
 *   `store_bytes`, and when the store has a memory limit and GC, `store_memory_bytes`,
 *   `store_memory_reserved_bytes`, `store_memory_limit_bytes`, `gc_runs_total`,
 *   `gc_flights_removed_total`, `gc_bytes_freed_total` (the store is the one the server is
 *   built with; the figures appear once the server is built);
 * - with `breakers`: `breaker_state{breaker}` (0 closed, 1 half-open, 2 open, 3 shut down),
 *   `breaker_transitions_total{breaker,to}`, `breaker_failures_total{breaker}`,
 *   `breaker_rejections_total{breaker}`;
 * - with `authFailures`: `auth_failures_total{reason}`.
 *
 * Place it first (outermost) so that calls refused by later middleware are counted too.
 * Returns the middleware and a lifecycle setting that learns the server's store when the
 * server is built and removes the metrics from the registry when it shuts down, so a new
 * server can register them again.
 *
 * @throws TypeError for invalid options, or when a metric of that name is already registered.
 *
 * @example
 * const registry = new Registry();
 * const server = createFlightServer(
 *   metrics({ registry, breakers: [storeBreaker] }),
 *   storeBreaker.parts,
 * );
 * http.createServer(async (_req, res) => res.end(await registry.metrics())).listen(9464);
 */
export function metrics(options: MetricsOptions): ServerParts {
  const where = "metrics";
  if (options !== null && typeof options === "object" && "storeStats" in options) {
    throw new TypeError(`${where}: the storeStats option is gone; the server's store is read directly (storeMetrics: false to leave it out)`);
  }
  const o = checkOptions<MetricsOptions>(where, options, ["registry", "prefix", "buckets", "storeMetrics", "breakers", "authFailures", "onError"], true);
  const registry = checkImplements<Registry>(
    where,
    "registry",
    o.registry,
    ["registerMetric", "removeSingleMetric"],
    "a prom-client Registry (the library never uses the global registry)",
    true,
  );
  const prefix = checkPattern(where, "prefix", o.prefix, /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/, "empty or match [a-zA-Z_:][a-zA-Z0-9_:]*", "blackice_flight_");
  const buckets = o.buckets ?? DEFAULT_DURATION_BUCKETS;
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b, i) => typeof b !== "number" || !(b > 0) || !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]))) {
    throw new TypeError(`${where}: buckets must be a non-empty array of increasing positive numbers of seconds`);
  }
  const storeMetrics = checkBoolean(where, "storeMetrics", o.storeMetrics, true);
  /** The server's store, learned when the server is built (onCreate). */
  let serverStore: FlightStore | undefined;
  const storeStats = !storeMetrics ? undefined : (): StoreStats | undefined => serverStore?.stats();
  const authFailures = checkFunction<() => Record<string, number>>(where, "authFailures", o.authFailures);
  const onError = checkFunction<(err: unknown) => void>(where, "onError", o.onError) ?? defaultOnError(where);
  const breakers = o.breakers ?? [];
  if (!Array.isArray(breakers) || breakers.some((b) => !b || typeof b.stats !== "function" || typeof b.name !== "string")) {
    throw new TypeError(`${where}: breakers must be an array of breakers made by circuitBreaker() or clientBreaker()`);
  }
  const names = new Set(breakers.map((b) => b.name));
  if (names.size !== breakers.length) throw new TypeError(`${where}: breakers must have distinct names`);

  const reg = registry as Registry;
  const registered: Array<{ name: string; metric: unknown }> = [];
  const register = <M extends { get(): unknown }>(make: () => M, name: string): M => {
    if (reg.getSingleMetric(name) !== undefined) {
      for (const r of registered) reg.removeSingleMetric(r.name);
      throw new TypeError(`${where}: a metric named ${name} is already registered in this registry; use another prefix or registry`);
    }
    const metric = make();
    registered.push({ name, metric });
    return metric;
  };
  const registers = [reg];

  // ---- calls
  const n = (s: string): string => prefix + s;
  const calls = register(
    () => new Counter({ name: n("calls_total"), help: "Finished Flight calls by method and status code.", labelNames: ["method", "code"], registers }),
    n("calls_total"),
  );
  const duration = register(
    () =>
      new Histogram({
        name: n("call_duration_seconds"),
        help: "Duration of Flight calls in seconds, streaming the response included.",
        labelNames: ["method"],
        buckets: [...buckets],
        registers,
      }),
    n("call_duration_seconds"),
  );
  const inFlight = register(
    () => new Gauge({ name: n("calls_in_flight"), help: "Flight calls in progress by method.", labelNames: ["method"], registers }),
    n("calls_in_flight"),
  );
  const received = register(
    () => new Counter({ name: n("received_bytes_total"), help: "FlightData header + body bytes received (DoPut, DoExchange).", labelNames: ["method"], registers }),
    n("received_bytes_total"),
  );
  const sent = register(
    () => new Counter({ name: n("sent_bytes_total"), help: "FlightData header + body bytes sent (DoGet, DoExchange).", labelNames: ["method"], registers }),
    n("sent_bytes_total"),
  );
  for (const method of FLIGHT_METHODS) inFlight.set({ method }, 0);

  // ---- store
  if (storeStats) {
    let cached: StoreStats | undefined;
    let failed = false;
    /** One storeStats() per scrape: collectors of one scrape run in the same tick. */
    const read = (): StoreStats | undefined => {
      if (cached === undefined && !failed && serverStore !== undefined) {
        try {
          cached = storeStats();
        } catch (err) {
          failed = true;
          report(onError, err);
        }
        queueMicrotask(() => {
          cached = undefined;
          failed = false;
        });
      }
      return cached;
    };
    const gauge = (name: string, help: string, pick: (s: StoreStats) => number | undefined): void => {
      register(
        () =>
          new Gauge({
            name: n(name),
            help,
            registers,
            collect() {
              const s = read();
              const v = s === undefined ? undefined : pick(s);
              if (v !== undefined) this.set(v);
            },
          }),
        n(name),
      );
    };
    gauge("store_flights", "Flights held by the store.", (s) => s.flights);
    gauge("store_rows", "Rows held by the store.", (s) => s.rows);
    gauge("store_bytes", "IPC bytes (header + body) held by the store.", (s) => s.bytes);
    gauge("store_memory_bytes", "Memory held by stored flights, in bytes.", (s) => s.memory?.memoryBytes);
    gauge("store_memory_reserved_bytes", "Memory reserved by puts in progress, in bytes.", (s) => s.memory?.reservedBytes);
    gauge("store_memory_limit_bytes", "The store's memory limit, in bytes.", (s) => s.memory?.maxMemoryBytes);
    gauge("store_disk_bytes", "Bytes of data files and manifests of a store on disk.", (s) => s.disk?.usedBytes);
    gauge("store_disk_reserved_bytes", "Disk bytes reserved by puts in progress.", (s) => s.disk?.reservedBytes);
    gauge("store_disk_limit_bytes", "The store's disk limit, in bytes (absent when there is none).", (s) => s.disk?.maxDiskBytes);
    const counter = (name: string, help: string, pick: (s: StoreStats) => number | undefined): void => {
      let feed: ReturnType<typeof cumulativeFeeder> | undefined;
      const c: Counter<string> = register(
        () =>
          new Counter({
            name: n(name),
            help,
            registers,
            collect() {
              const s = read();
              const v = s === undefined ? undefined : pick(s);
              if (v !== undefined) feed?.({}, v);
            },
          }),
        n(name),
      );
      feed = cumulativeFeeder(c);
    };
    counter("gc_runs_total", "Garbage collection runs of the store.", (s) => s.gc?.gcRuns);
    counter("gc_flights_removed_total", "Expired flights removed by garbage collection.", (s) => s.gc?.gcFlightsRemoved);
    counter("gc_bytes_freed_total", "Memory freed by garbage collection, in bytes.", (s) => s.gc?.gcBytesFreed);
  }

  // ---- breakers
  if (breakers.length > 0) {
    const each = (fn: (b: BreakerSource, s: BreakerStats) => void): void => {
      for (const b of breakers) {
        try {
          fn(b, b.stats());
        } catch (err) {
          report(onError, err);
        }
      }
    };
    register(
      () =>
        new Gauge({
          name: n("breaker_state"),
          help: "Circuit breaker state: 0 closed, 1 half-open, 2 open, 3 shut down.",
          labelNames: ["breaker"],
          registers,
          collect() {
            each((b, s) => this.set({ breaker: b.name }, BREAKER_STATE_VALUES[s.state]));
          },
        }),
      n("breaker_state"),
    );
    const breakerCounter = (name: string, help: string, labelNames: string[], feedAll: (feed: ReturnType<typeof cumulativeFeeder>) => void): void => {
      let feed: ReturnType<typeof cumulativeFeeder> | undefined;
      const c: Counter<string> = register(
        () =>
          new Counter({
            name: n(name),
            help,
            labelNames,
            registers,
            collect() {
              if (feed) feedAll(feed);
            },
          }),
        n(name),
      );
      feed = cumulativeFeeder(c);
    };
    breakerCounter("breaker_transitions_total", "Circuit breaker state changes by the state entered.", ["breaker", "to"], (feed) =>
      each((b, s) => {
        feed({ breaker: b.name, to: "open" }, s.transitions.open);
        feed({ breaker: b.name, to: "halfOpen" }, s.transitions.halfOpen);
        feed({ breaker: b.name, to: "closed" }, s.transitions.closed);
      }),
    );
    breakerCounter("breaker_failures_total", "Guarded calls that failed and counted towards opening.", ["breaker"], (feed) =>
      each((b, s) => feed({ breaker: b.name }, s.totals.failures)),
    );
    breakerCounter("breaker_rejections_total", "Calls refused at once because the circuit was open.", ["breaker"], (feed) =>
      each((b, s) => feed({ breaker: b.name }, s.totals.rejected)),
    );
  }

  // ---- authentication
  if (authFailures) {
    let feed: ReturnType<typeof cumulativeFeeder> | undefined;
    const c: Counter<string> = register(
      () =>
        new Counter({
          name: n("auth_failures_total"),
          help: "Authentication failures by reason.",
          labelNames: ["reason"],
          registers,
          collect() {
            let counts: Record<string, number>;
            try {
              counts = authFailures();
            } catch (err) {
              report(onError, err);
              return;
            }
            const entries = Object.entries(counts ?? {});
            let other = 0;
            entries.forEach(([reason, count], i) => {
              if (i < MAX_REASONS) feed?.({ reason }, count);
              else if (typeof count === "number" && count > 0) other += count;
            });
            if (entries.length > MAX_REASONS) feed?.({ reason: "other" }, other);
          },
        }),
      n("auth_failures_total"),
    );
    feed = cumulativeFeeder(c);
  }

  const middleware: FlightMiddleware = function metricsMiddleware(next) {
    return async function metrics(call) {
      const method = call.method;
      const started = performance.now();
      inFlight.inc({ method });
      let inner = call;
      if (method === "doPut" || method === "doExchange") {
        const request = watchIterable(call.request as AsyncIterable<FlightData>, {
          onItem: (m) => received.inc({ method }, flightDataBytes(m)),
        });
        inner = withFields(call, { request });
      }
      return observeCall(inner, next, {
        onEnd: ({ code }) => {
          inFlight.dec({ method });
          calls.inc({ method, code: statusCodeName(code) });
          duration.observe({ method }, (performance.now() - started) / 1000);
        },
        onResponseItem:
          method === "doGet" || method === "doExchange" ? (m) => sent.inc({ method }, flightDataBytes(m as FlightData)) : undefined,
      });
    };
  };

  const lifecycle = onLifecycle({
    onCreate: function learnServerStore(setup) {
      serverStore = setup.store;
    },
    onShutdown: function unregisterMetrics() {
      // Only our own: a later server may have registered the same names after this one stopped.
      for (const r of registered) if (reg.getSingleMetric(r.name) === r.metric) reg.removeSingleMetric(r.name);
    },
  });
  return serverParts(middleware, lifecycle);
}
