import {
  FLIGHT_METHODS,
  FlightError,
  MemoryStore,
  StatusCode,
  composeMiddleware,
  identityOf,
  splitServerParts,
  statusCodeName,
  type ActionSetting,
  type ExchangeHandler,
  type FlightHandler,
  type FlightMethod,
  type FlightServerConfig,
  type FlightStore,
  type LifecycleSetting,
  type ServerPart,
  type StatsSetting,
  type StoreWrapperSetting,
  type TlsSetting,
  offersGc,
  offersMemoryLimit,
  offersTtl,
  checkBoolean,
  checkFunction,
  checkInt,
  checkPattern,
} from "@blackice/flight-core";
import { FLIGHT_SERVICE_NAME } from "../codec/service-definition";
import { HealthService, type ServingStatus } from "../transport/health-service";
import { Http2GrpcTransport } from "../transport/http2-grpc-transport";
import { builtinActions } from "./builtin-actions";
import { builtinExchanges } from "./builtin-exchanges";
import { flightServiceMethods } from "./flight-service";
import { httpArrowRoutes } from "./http-arrow-routes";
import { createStoreHandler } from "./store-handler";

/** Default HTTP/2 flow-control window: 16 MiB per stream and per connection. */
export const DEFAULT_FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

/** Defaults of {@link FlightServerConfig}. */
export const DEFAULT_CONFIG = {
  addr: "127.0.0.1:8815",
  ttl: 0,
  maxMemoryBytes: 1024 * 1024 * 1024,
  enableGC: true,
  gcInterval: 30_000,
  maxMessageBytes: 64 * 1024 * 1024,
  maxDescriptorBytes: 64 * 1024,
  maxTicketBytes: 64 * 1024 + 64,
  maxFirstMessageBytes: 1024 * 1024,
  maxInFlightBytes: 256 * 1024 * 1024,
  maxPreAuthBytes: 32 * 1024 * 1024,
  callIdleTimeoutMs: 30_000,
  maxConcurrentStreams: 256,
  flowControlWindow: DEFAULT_FLOW_CONTROL_WINDOW,
  // Peers may send DATA frames this large: fewer, larger chunks per DoPut message (an A/B of
  // pyarrow DoPuts measured 256 KiB and 1 MiB about 15 % faster than HTTP/2's 16 KiB default).
  maxFrameBytes: 256 * 1024,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 20_000,
  minPingIntervalMs: 1000,
  maxConnectionIdleMs: 900_000,
  maxConnectionAgeMs: 0,
  corsOrigins: [] as readonly string[],
  webPage: false,
} as const;

/** The largest message size a server may be configured with. */
export const MAX_MESSAGE_BYTES_LIMIT = 256 * 1024 * 1024;

/**
 * How many callers (identity subjects) have their own call counts kept for the `stats` action.
 * Past it, the subject counted least recently is dropped; if it calls again it starts from zero.
 */
export const MAX_COUNTED_SUBJECTS = 10_000;

/** Calls per method: `{ total, byCode: { OK: n, NOT_FOUND: n, ... } }`. */
type CallCounts = Record<FlightMethod, { total: number; byCode: Record<string, number> }>;

const emptyCallCounts = (): CallCounts =>
  Object.fromEntries(FLIGHT_METHODS.map((m) => [m, { total: 0, byCode: {} as Record<string, number> }])) as CallCounts;

function countCall(counts: CallCounts, method: FlightMethod, code: number): void {
  const c = counts[method];
  c.total++;
  const name = statusCodeName(code);
  c.byCode[name] = (c.byCode[name] ?? 0) + 1;
}

/**
 * Call counts per identity subject, for the `stats` answer of non-admins, keeping at most `max`
 * subjects. A Map keeps insertion order: each count moves its subject to the end, so the first
 * key is the one counted least recently, and the one dropped. Exported for tests.
 */
export function callCountsBySubject(max: number): {
  count(subject: string, method: FlightMethod, code: number): void;
  of(subject: string): CallCounts;
  readonly size: number;
} {
  const bySubject = new Map<string, CallCounts>();
  return {
    count(subject, method, code) {
      let counts = bySubject.get(subject);
      if (counts === undefined) {
        if (bySubject.size >= max) bySubject.delete(bySubject.keys().next().value!);
        counts = emptyCallCounts();
      } else {
        bySubject.delete(subject);
      }
      bySubject.set(subject, counts);
      countCall(counts, method, code);
    },
    of: (subject) => bySubject.get(subject) ?? emptyCallCounts(),
    get size() {
      return bySubject.size;
    },
  };
}

/** Calls `end` once, with the code the stream ended with: OK, the error's code, or CANCELLED if the reader stopped early. */
function onStreamEnd<T>(source: AsyncIterable<T>, end: (code: StatusCode) => void): AsyncIterable<T> {
  let ended = false;
  const finish = (code: StatusCode): void => {
    if (ended) return;
    ended = true;
    end(code);
  };
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      // A plain delegating iterator rather than an async generator: one await per message, and
      // return()/throw() reach the source at once.
      return {
        async next() {
          try {
            const r = await it.next();
            if (r.done) finish(StatusCode.OK);
            return r;
          } catch (err) {
            finish(FlightError.from(err).code);
            throw err;
          }
        },
        async return(value?: unknown) {
          finish(StatusCode.CANCELLED);
          return it.return ? it.return(value) : { done: true, value: value as T };
        },
        async throw(err?: unknown) {
          finish(FlightError.from(err).code);
          if (it.throw) return it.throw(err);
          throw err;
        },
      };
    },
  };
}

/**
 * Counts, per identity subject, the calls that reached `handler` (the store handler, after all
 * middleware): unary calls when they return or fail, streaming responses when the stream ends
 * (OK), fails (its code) or is abandoned by the caller (CANCELLED). Calls without an identity
 * are not counted here (the server-wide `calls` counts every call).
 */
function countCallsBySubject(handler: FlightHandler, count: (subject: string, method: FlightMethod, code: number) => void): FlightHandler {
  return async function countedHandler(call) {
    const who = identityOf(call);
    if (who === undefined) return handler(call);
    const { subject } = who;
    const { method } = call;
    let response;
    try {
      response = await handler(call);
    } catch (err) {
      count(subject, method, FlightError.from(err).code);
      throw err;
    }
    if (response !== null && typeof response === "object" && Symbol.asyncIterator in response) {
      return onStreamEnd(response as AsyncIterable<unknown>, (code) => count(subject, method, code)) as typeof response;
    }
    count(subject, method, StatusCode.OK);
    return response;
  };
}

/** A running (or startable) Flight server. */
export interface FlightServer {
  /** Binds and starts serving. Resolves once listening; rejects with a clear error if the address is taken. */
  start(): Promise<{ host: string; port: number }>;
  /**
   * Stops gracefully: refuses new calls, lets in-flight calls finish for `graceMs`
   * (default 5000), cancels what is left, then closes the store and timers.
   */
  shutdown(options?: { graceMs?: number }): Promise<void>;
  /** The port bound (after start). */
  readonly port: number;
  /** The advertised location, `grpc+tcp://host:port`. */
  readonly location: string;
  /** The store the server serves from: the one calls see as `call.store` (wrappers applied). */
  readonly store: FlightStore;
  /** The settled configuration. */
  readonly config: Readonly<Required<Omit<FlightServerConfig, "location" | "onError">>> & Pick<FlightServerConfig, "location" | "onError">;
  /** The full JSON of the `stats` action (what callers without identity and admins get). */
  stats(): Record<string, unknown>;
  /** Whether `start()` succeeded and `shutdown()` has not begun. */
  readonly serving: boolean;
  /**
   * Sets what the `grpc.health.v1.Health` service reports for the server ("" ) and for
   * the Flight service (for example NOT_SERVING while a breaker is open). The server sets
   * SERVING on start and NOT_SERVING when shutdown begins.
   */
  setHealth(status: ServingStatus): void;
}

export type { ServingStatus };

function splitAddr(addr: string): { host: string; port: number } {
  const ADDR = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/;
  const m = ADDR.exec(checkPattern("serverConfig", "addr", addr, ADDR, '"host:port" (e.g. 127.0.0.1:8815)'))!;
  return { host: m[1] ?? m[2], port: checkInt("serverConfig", "addr's port", Number(m[3]), 0, 65535) };
}

/**
 * Applies the store settings the user gave (`ttl`, `maxMemoryBytes`, `gcInterval`,
 * `enableGC`) to a store given by `withStore`, through its capabilities. A setting the store
 * cannot honour is a misconfiguration: TypeError at build, naming the setting and what is
 * missing. Settings not given leave the store as it was made.
 */
function applyStoreSettings(store: FlightStore, given: FlightServerConfig, config: Required<Omit<FlightServerConfig, "location" | "onError">>): void {
  const refuse = (setting: string, capability: string, members: string): never => {
    throw new TypeError(
      `serverConfig ${setting}: the store given by withStore has no ${capability} capability (${members}); ` +
        `remove the setting or configure the store itself`,
    );
  };
  if (given.ttl !== undefined) {
    if (!offersTtl(store)) refuse("ttl", "TTL", "setDefaultTtl, renew");
    else store.setDefaultTtl(config.ttl);
  }
  if (given.maxMemoryBytes !== undefined) {
    if (!offersMemoryLimit(store)) refuse("maxMemoryBytes", "memory-limit", "setMaxMemoryBytes");
    else store.setMaxMemoryBytes(config.maxMemoryBytes);
  }
  if (given.gcInterval !== undefined || given.enableGC !== undefined) {
    const setting = given.gcInterval !== undefined ? "gcInterval" : "enableGC";
    if (!offersGc(store)) refuse(setting, "GC", "gc, setGcInterval, setGcEnabled");
    else {
      if (given.gcInterval !== undefined) store.setGcInterval(config.gcInterval);
      if (given.enableGC !== undefined) store.setGcEnabled(config.enableGC);
    }
  }
}

function checkConfig(c: Required<Omit<FlightServerConfig, "location" | "onError">>): void {
  splitAddr(c.addr);
  checkInt("serverConfig", "ttl", c.ttl, 0, Number.MAX_SAFE_INTEGER);
  checkInt("serverConfig", "maxMemoryBytes", c.maxMemoryBytes, 1, Number.MAX_SAFE_INTEGER);
  checkInt("serverConfig", "gcInterval", c.gcInterval, 1, 2 ** 31 - 1);
  checkInt("serverConfig", "maxMessageBytes", c.maxMessageBytes, 1024, MAX_MESSAGE_BYTES_LIMIT);
  checkInt("serverConfig", "maxDescriptorBytes", c.maxDescriptorBytes, 64, c.maxMessageBytes);
  checkInt("serverConfig", "maxTicketBytes", c.maxTicketBytes, 64, c.maxMessageBytes);
  checkInt("serverConfig", "maxFirstMessageBytes", c.maxFirstMessageBytes, 1024, c.maxMessageBytes);
  checkInt("serverConfig", "maxInFlightBytes", c.maxInFlightBytes, c.maxMessageBytes, Number.MAX_SAFE_INTEGER);
  checkInt("serverConfig", "maxPreAuthBytes", c.maxPreAuthBytes, c.maxFirstMessageBytes, Number.MAX_SAFE_INTEGER);
  checkInt("serverConfig", "callIdleTimeoutMs", c.callIdleTimeoutMs, 0, 2 ** 31 - 1);
  checkInt("serverConfig", "maxConcurrentStreams", c.maxConcurrentStreams, 1, 2 ** 31 - 1);
  checkInt("serverConfig", "flowControlWindow", c.flowControlWindow, 65_535, 2 ** 31 - 1);
  checkInt("serverConfig", "maxFrameBytes", c.maxFrameBytes, 16_384, 16_777_215);
  checkInt("serverConfig", "minPingIntervalMs", c.minPingIntervalMs, 0, 2 ** 31 - 1);
  checkInt("serverConfig", "keepaliveTimeMs", c.keepaliveTimeMs, 1000, 2 ** 31 - 1);
  checkInt("serverConfig", "keepaliveTimeoutMs", c.keepaliveTimeoutMs, 1000, 2 ** 31 - 1);
  checkInt("serverConfig", "maxConnectionIdleMs", c.maxConnectionIdleMs, 0, 2 ** 31 - 1);
  checkInt("serverConfig", "maxConnectionAgeMs", c.maxConnectionAgeMs, 0, 2 ** 31 - 1);
  checkBoolean("serverConfig", "enableGC", c.enableGC);
  checkBoolean("serverConfig", "webPage", c.webPage);
}



/**
 * Builds a Flight server from call middleware and settings. Middleware run in the order
 * given: the first is the outermost, so it sees every call first and its response last.
 * Settings (`serverConfig`, `withStore`, `wrapStore`, `defineAction`, `defineExchange`, TLS
 * from the security package, ...) may come in any order; later config overrides earlier.
 *
 * The store: a new MemoryStore configured by `serverConfig`, or the one `withStore` gives,
 * to which the server applies the store settings that were given (`ttl`, `maxMemoryBytes`,
 * `gcInterval`, `enableGC`) through the store's capabilities, refusing at build (TypeError)
 * a setting the store cannot honour. `wrapStore` wrappers then wrap it (first outermost).
 * Every call carries the result as `call.store`; `onCreate` lifecycle hooks receive it.
 *
 * @example
 * const server = createFlightServer(serverConfig({ addr: "127.0.0.1:8815", ttl: 3_600_000 }), logCalls);
 * const { port } = await server.start();
 * // ...
 * await server.shutdown({ graceMs: 5000 });
 */
export function createFlightServer(...parts: ServerPart[]): FlightServer {
  const { middleware, settings } = splitServerParts(parts);
  let userConfig: FlightServerConfig = {};
  let store: FlightStore | undefined;
  const storeWrappers: StoreWrapperSetting[] = [];
  let tls: TlsSetting | undefined;
  const customActions: ActionSetting[] = [];
  const exchanges = new Map<string, ExchangeHandler>(builtinExchanges());
  const statsSections: StatsSetting[] = [];
  const lifecycle: LifecycleSetting[] = [];
  for (const s of settings) {
    switch (s.kind) {
      case "config":
        userConfig = { ...userConfig, ...s.config };
        break;
      case "store":
        store = s.store;
        break;
      case "storeWrapper":
        storeWrappers.push(s);
        break;
      case "tls":
        tls = s;
        break;
      case "action":
        customActions.push(s);
        break;
      case "exchange":
        exchanges.set(s.command, s.handler);
        break;
      case "stats":
        statsSections.push(s);
        break;
      case "lifecycle":
        lifecycle.push(s);
        break;
      default:
        throw new TypeError(`createFlightServer: unknown setting kind ${JSON.stringify((s as { kind: unknown }).kind)}`);
    }
  }
  const defined = Object.fromEntries(Object.entries(userConfig).filter(([, v]) => v !== undefined));
  const config = { ...DEFAULT_CONFIG, ...defined } as Required<Omit<FlightServerConfig, "location" | "onError">> & Pick<FlightServerConfig, "location" | "onError">;
  checkFunction("serverConfig", "onError", config.onError);
  const onError =
    config.onError ??
    ((err: unknown, context: { method?: string }) =>
      process.emitWarning(`BlackIce Flight: unexpected error${context.method ? ` in ${context.method}` : ""}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`));
  checkConfig(config);
  const ownsStore = store === undefined;
  if (store !== undefined) applyStoreSettings(store, defined as FlightServerConfig, config);
  const baseStore: FlightStore =
    store ??
    new MemoryStore({
      defaultTtlMs: config.ttl,
      maxMemoryBytes: config.maxMemoryBytes,
      enableGC: config.enableGC,
      gcIntervalMs: config.gcInterval,
      onError: (err) => onError(err, { method: "gc" }),
    });
  // The first wrapper given is the outermost, like middleware.
  let theStore = baseStore;
  for (let i = storeWrappers.length - 1; i >= 0; i--) {
    const w = storeWrappers[i]!;
    const wrapped = w.wrap(theStore);
    if (!wrapped || typeof wrapped.beginPut !== "function" || typeof wrapped.get !== "function") {
      throw new TypeError(`wrapStore(${w.name}): wrap must return a FlightStore`);
    }
    theStore = wrapped;
  }

  const { host } = splitAddr(config.addr);
  let port = 0;
  let serving = false;
  const startedAt = Date.now();
  const scheme = tls ? "grpc+tls" : "grpc+tcp";
  const location = (): string => config.location ?? `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const calls = emptyCallCounts();
  const bySubject = callCountsBySubject(MAX_COUNTED_SUBJECTS);
  const stats = (): Record<string, unknown> => {
    const s = theStore.stats();
    // Sections a store does not offer are left out (memory keeps the process RSS).
    const m = s.memory;
    const out: Record<string, unknown> = {
      flights: s.flights,
      rows: s.rows,
      bytes: s.bytes,
      memory: m ? { used: m.memoryBytes, reserved: m.reservedBytes, limit: m.maxMemoryBytes, rss: process.memoryUsage.rss() } : { rss: process.memoryUsage.rss() },
      ...(s.ttl ? { defaultTtlMs: s.ttl.defaultTtlMs } : {}),
      ...(s.gc ? { gc: { runs: s.gc.gcRuns, flightsRemoved: s.gc.gcFlightsRemoved, bytesFreed: s.gc.gcBytesFreed } } : {}),
      ...(s.disk ? { disk: { dir: s.disk.dir, fsync: s.disk.fsync, used: s.disk.usedBytes, reserved: s.disk.reservedBytes, limit: s.disk.maxDiskBytes } } : {}),
      uptimeMs: Date.now() - startedAt,
      transport: transport.stats(),
      calls,
    };
    for (const section of statsSections) out[section.section] = section.collect();
    return out;
  };

  const actions = new Map<string, ActionSetting>();
  for (const a of [...builtinActions({ location, stats, callsOf: bySubject.of }), ...customActions]) actions.set(a.type, a);

  const chain = composeMiddleware(
    middleware,
    countCallsBySubject(createStoreHandler({ location, maxMessageBytes: config.maxMessageBytes, actions, exchanges }), bySubject.count),
  );
  for (const l of lifecycle) l.onCreate?.({ store: theStore });
  // grpc.health.v1.Health next to Flight: NOT_SERVING until start(), and again from the
  // moment shutdown begins, so load balancers drain the server first.
  const health = new HealthService({ "": "NOT_SERVING", [FLIGHT_SERVICE_NAME]: "NOT_SERVING" });
  const setHealth = (status: ServingStatus): void => {
    health.setStatus("", status);
    health.setStatus(FLIGHT_SERVICE_NAME, status);
  };
  const flightPaths = new Map<string, FlightMethod>(FLIGHT_METHODS.map((m) => [`/${FLIGHT_SERVICE_NAME}/${m[0]!.toUpperCase()}${m.slice(1)}`, m]));
  // Every call carries the server's store, so middleware and actions reach it as `call.store`.
  const methods = new Map([...flightServiceMethods(chain, config, theStore), ...health.methods()]);
  const transport = new Http2GrpcTransport(
    { ...config, host, port: splitAddr(config.addr).port, tls },
    methods,
    {
      onInternalError: (err, path) => onError(err, { method: flightPaths.get(path) ?? path }),
      observe: (path, code) => {
        const method = flightPaths.get(path);
        if (method) countCall(calls, method, code);
      },
    },
    // Arrow over plain HTTP and the browser page; gRPC-Web is the transport's own.
    httpArrowRoutes({ store: theStore, webPage: config.webPage }),
  );

  let shuttingDown: Promise<void> | undefined;
  return {
    get port() {
      return port;
    },
    get location() {
      return location();
    },
    get serving() {
      return serving;
    },
    store: theStore,
    config,
    stats,
    setHealth,
    async start() {
      if (serving) throw new Error("FlightServer.start: already started");
      ({ port } = await transport.listen());
      serving = true;
      setHealth("SERVING");
      for (const l of lifecycle) await l.onStart?.({ address: host, port });
      return { host, port };
    },
    shutdown(options = {}) {
      shuttingDown ??= (async () => {
        serving = false;
        setHealth("NOT_SERVING");
        await transport.shutdown(options.graceMs ?? 5000);
        if (ownsStore) await baseStore.close();
        for (const l of lifecycle) await l.onShutdown?.();
      })();
      return shuttingDown;
    },
  };
}
