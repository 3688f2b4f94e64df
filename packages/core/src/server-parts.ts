import type { CallInfo, FlightMiddleware } from "./middleware";
import type { FlightData, FlightDescriptor, Result } from "./flight-types";
import { checkFunction, checkObject, checkString } from "./option-checks";
import { isFlightStore, type FlightStore } from "./store/flight-store";

/**
 * Everything `createFlightServer(...parts)` accepts: call middleware (functions) and
 * settings (objects tagged by `kind`). Arrays are flattened, so one factory may return a
 * middleware together with the settings it needs. The two kinds are kept apart inside the
 * builder: settings configure the server and transport, middleware wraps calls.
 */
export type ServerPart = FlightMiddleware | ServerSetting | readonly ServerPart[];

/**
 * The one shape every server-part factory of the packages returns (`hmacAuth()`, `metrics()`,
 * `query()`, `tls()`, `guardedStore()`, `cluster()`, ...; and `.parts` of a circuit breaker):
 * a frozen, flat list of the middleware and settings that make one feature. Pass it as-is to
 * `createFlightServer`, in any position; do not pick it apart by index. Its order is the
 * order the parts take in the server (a factory's middleware before its settings).
 *
 * Core's setting constructors (`serverConfig`, `withStore`, `wrapStore`, `defineAction`,
 * `defineExchange`, `statsSection`, `onLifecycle`) are the building blocks factories are made
 * of: each returns the one setting it makes, which is itself a {@link ServerPart}.
 *
 * @example
 * export function requestCounter(): ServerParts {
 *   let calls = 0;
 *   return serverParts(
 *     function requestCounterMiddleware(next) { return (call) => (calls++, next(call)); },
 *     statsSection("requests", () => ({ calls })),
 *   );
 * }
 */
export type ServerParts = readonly (FlightMiddleware | ServerSetting)[];

/** A server setting. Made by the factory functions of the packages, not by hand. */
export type ServerSetting =
  | ConfigSetting
  | StoreSetting
  | StoreWrapperSetting
  | TlsSetting
  | ActionSetting
  | ExchangeSetting
  | StatsSetting
  | LifecycleSetting;

/** Server configuration, mirroring the BlackIce server configuration. */
export interface FlightServerConfig {
  /** `host:port` to listen on. Default `127.0.0.1:8815`. Port 0 picks a free port. */
  addr?: string;
  /*
   * The four store settings below apply to whichever store the server uses. The server's own
   * MemoryStore gets them (or their defaults) at construction. A store given by `withStore`
   * gets each one that is given, through the store's capability (`setDefaultTtl`,
   * `setMaxMemoryBytes`, `setGcInterval`, `setGcEnabled`); settings not given leave the
   * store as it was made. A setting given for a store without the capability is refused with
   * a TypeError when the server is built.
   */
  /** Default time to live of a flight in ms; 0 = never expire. Default 0. Needs the store's TTL capability. */
  ttl?: number;
  /** Memory limit for stored flights in bytes. Default 1 GiB. Needs the store's memory-limit capability. */
  maxMemoryBytes?: number;
  /** Run garbage collection in the background. Default true. Needs the store's GC capability. */
  enableGC?: boolean;
  /** Background GC interval in ms. Default 30 000. Needs the store's GC capability. */
  gcInterval?: number;
  /** Largest gRPC message accepted or sent, in bytes (≤ 256 MiB). Default 64 MiB. */
  maxMessageBytes?: number;
  /** Largest FlightDescriptor (in GetFlightInfo, GetSchema, PollFlightInfo, ListFlights criteria, or a DoPut), bytes. Default 64 KiB. */
  maxDescriptorBytes?: number;
  /** Largest DoGet ticket message, bytes. Default 64 KiB + 64. */
  maxTicketBytes?: number;
  /**
   * Largest first message of a call, bytes: what a caller may send before any middleware
   * (authentication) has accepted the call. Unary requests and actions are first messages.
   * Default 1 MiB.
   */
  maxFirstMessageBytes?: number;
  /** Server-wide bytes of request messages being received or waiting for their handler. Default 256 MiB. */
  maxInFlightBytes?: number;
  /** Server-wide bytes of first messages of calls not yet accepted (pre-authentication budget). Default 32 MiB. */
  maxPreAuthBytes?: number;
  /** A call waiting this long for request data ends with DEADLINE_EXCEEDED, ms; 0 = never. Default 30 000. */
  callIdleTimeoutMs?: number;
  /** Concurrent calls (HTTP/2 streams) per connection. Default 256. */
  maxConcurrentStreams?: number;
  /** HTTP/2 flow-control window (per stream and per connection) in bytes. Default 16 MiB. */
  flowControlWindow?: number;
  /** Largest HTTP/2 DATA frame the server accepts, bytes (16 KiB to 16 MiB - 1). Default 256 KiB. */
  maxFrameBytes?: number;
  /**
   * A client that pings more often than this three times in a row, with no response data in
   * between, gets GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings"), ms. Default 1000.
   */
  minPingIntervalMs?: number;
  /** Interval of HTTP/2 keepalive pings to each client, in ms. Default 30 000. */
  keepaliveTimeMs?: number;
  /** A client that does not answer a keepalive ping within this many ms is dropped. Default 20 000. */
  keepaliveTimeoutMs?: number;
  /** Connections with no call for this long are closed, in ms; 0 = never. Default 900 000 (15 min). */
  maxConnectionIdleMs?: number;
  /** Connections older than this are drained (GOAWAY), in ms; 0 = never. Default 0. */
  maxConnectionAgeMs?: number;
  /**
   * Web origins (`https://host[:port]`, or `*` for any) whose pages may call the server from a
   * browser: they get CORS headers on gRPC-Web and plain-HTTP responses, and preflight
   * `OPTIONS` requests from them are answered. Default none: CORS off (see docs/browser.md).
   */
  corsOrigins?: readonly string[];
  /** Serve the flight browser page at `/` (and `/web/...`). Default false (see docs/browser.md). */
  webPage?: boolean;
  /** The location advertised in FlightInfo endpoints; default `grpc+tcp://addr` (or `grpc+tls`). */
  location?: string;
  /**
   * Receives errors no caller should see: a handler or middleware that threw something other
   * than a FlightError (the caller gets INTERNAL with a generic message), and failures of
   * background work such as GC. Default: `process.emitWarning`.
   */
  onError?: (err: unknown, context: { method?: string }) => void;
}

/** `{ kind: "config" }`: see {@link FlightServerConfig}. Later settings override earlier ones. */
export interface ConfigSetting {
  readonly kind: "config";
  readonly config: FlightServerConfig;
}

/** Use this store instead of a new MemoryStore. */
export interface StoreSetting {
  readonly kind: "store";
  readonly store: FlightStore;
}

/**
 * Wraps the server's store (whichever it is) in another `FlightStore`, for example one that
 * guards every operation with a circuit breaker. Wrappers apply in the order given, the first
 * outermost (like middleware): `createFlightServer(wrapStore(a), wrapStore(b))` serves from
 * `a(b(store))`. The result is what calls see as `call.store` and what `server.store` is.
 */
export interface StoreWrapperSetting {
  readonly kind: "storeWrapper";
  /** Shown in errors. */
  readonly name: string;
  readonly wrap: (store: FlightStore) => FlightStore;
}

/** What a setting learns about the server being built (see {@link LifecycleSetting.onCreate}). */
export interface ServerSetup {
  /** The store calls are served from (wrappers applied): the same object as every `call.store`. */
  readonly store: FlightStore;
}

/**
 * TLS for the server's port, described without gRPC; the binding turns it into credentials.
 * PEM contents are read through the functions so that they can be reloaded.
 */
export interface TlsSetting {
  readonly kind: "tls";
  /** Returns the current PEM certificate chain, private key and optional client CA. */
  readonly load: () => { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Require and verify a client certificate signed by `clientCa` (mTLS). */
  readonly requireClientCert: boolean;
  /** Called with a function the binding provides to trigger a reload of `load()`. */
  readonly onReloadable?: (reload: () => void) => () => void;
}

/** A custom action, listed by ListActions. */
export interface ActionSetting {
  readonly kind: "action";
  readonly type: string;
  readonly description: string;
  readonly handler: (body: Uint8Array, call: CallInfo) => AsyncIterable<Result> | Promise<Result[] | Result>;
}

/** A DoExchange handler for one descriptor command (or path[0]). */
export interface ExchangeSetting {
  readonly kind: "exchange";
  readonly command: string;
  readonly handler: ExchangeHandler;
}

/** Serves one DoExchange. `input` starts after the first message, whose descriptor selected the handler. */
export type ExchangeHandler = (
  input: AsyncIterable<FlightData>,
  first: FlightData,
  call: CallInfo & { descriptor: FlightDescriptor },
) => AsyncIterable<FlightData>;

/** A section added to the `stats` action's JSON. */
export interface StatsSetting {
  readonly kind: "stats";
  readonly section: string;
  readonly collect: () => unknown;
}

/** Hooks run when the server is built, when it starts and after it shut down (e.g. to stop timers). */
export interface LifecycleSetting {
  readonly kind: "lifecycle";
  /**
   * Runs once while `createFlightServer` builds the server, with the store it serves from:
   * how a setting that needs the store outside of calls (a metrics scrape, a stats section)
   * gets it. A TypeError thrown here fails the build (e.g. the store lacks a capability).
   */
  readonly onCreate?: (setup: ServerSetup) => void;
  readonly onStart?: (info: { address: string; port: number }) => void | Promise<void>;
  readonly onShutdown?: () => void | Promise<void>;
}

/**
 * Makes the {@link ServerParts} a factory returns: flattens nested lists, checks each part
 * (a middleware function or a setting with a `kind`; TypeError otherwise) and freezes the list.
 *
 * @example
 * return serverParts(middleware, statsSection("mine", () => stats));
 */
export function serverParts(...parts: readonly ServerPart[]): ServerParts {
  return Object.freeze(flattenParts(parts, "serverParts"));
}

/** The parts, nested lists flattened, in order; a TypeError for anything that is not a part. */
function flattenParts(parts: readonly ServerPart[], where: string): Array<FlightMiddleware | ServerSetting> {
  const out: Array<FlightMiddleware | ServerSetting> = [];
  const visit = (p: ServerPart): void => {
    if (typeof p === "function") out.push(p);
    else if (Array.isArray(p)) for (const q of p as readonly ServerPart[]) visit(q);
    else if (p && typeof p === "object" && typeof (p as ServerSetting).kind === "string") out.push(p as ServerSetting);
    else throw new TypeError(`${where}: expected a middleware function or a setting object with a "kind", got ${p === null ? "null" : typeof p}`);
  };
  for (const p of parts) visit(p);
  return out;
}

/**
 * The settings of one kind among some parts, in order: how a test or a middleware author looks
 * into the {@link ServerParts} a factory returned, without relying on positions.
 *
 * @example
 * const [stats] = settingsOf(concurrencyLimit({ global: 8 }), "stats");
 * stats?.collect();
 */
export function settingsOf<K extends ServerSetting["kind"]>(parts: ServerPart, kind: K): Array<Extract<ServerSetting, { kind: K }>> {
  return splitServerParts([parts]).settings.filter((s): s is Extract<ServerSetting, { kind: K }> => s.kind === kind);
}

/** Flattens parts and splits them into middleware and settings, keeping order. */
export function splitServerParts(parts: readonly ServerPart[]): { middleware: FlightMiddleware[]; settings: ServerSetting[] } {
  const middleware: FlightMiddleware[] = [];
  const settings: ServerSetting[] = [];
  for (const p of flattenParts(parts, "createFlightServer")) {
    if (typeof p === "function") middleware.push(p);
    else settings.push(p);
  }
  return { middleware, settings };
}

/**
 * Server configuration (`addr`, `ttl`, `maxMemoryBytes`, `enableGC`, `gcInterval`, ...).
 *
 * @example
 * createFlightServer(serverConfig({ addr: "0.0.0.0:8815", ttl: 3_600_000, maxMemoryBytes: 4 * 2 ** 30 }));
 */
export function serverConfig(config: FlightServerConfig): ConfigSetting {
  checkObject("serverConfig", "config", config);
  return { kind: "config", config: { ...config } };
}

/**
 * Serves from `store` instead of a new MemoryStore. The server applies the store settings of
 * `serverConfig` to it through its capabilities (see {@link FlightServerConfig}); it does not
 * close it on shutdown: the store belongs to the caller.
 *
 * @example
 * createFlightServer(withStore(new MemoryStore({ maxMemoryBytes: 2 ** 30 })), serverConfig({ ttl: 3_600_000 }));
 */
export function withStore(store: FlightStore): StoreSetting {
  if (!isFlightStore(store)) throw new TypeError("withStore: expected a FlightStore (beginPut, get, getByTicket, ticketFor, list, delete, stats, close)");
  return { kind: "store", store };
}

/**
 * Wraps the server's store: see {@link StoreWrapperSetting}. `wrap` runs once, at build, and
 * must return a FlightStore.
 *
 * @example
 * // guardedStore(breaker) from @blackice/flight-resilience is made this way
 * createFlightServer(wrapStore("audit", (store) => auditedStore(store, auditLog)));
 */
export function wrapStore(name: string, wrap: (store: FlightStore) => FlightStore): StoreWrapperSetting {
  checkString("wrapStore", "name", name, "a non-empty string", true);
  checkFunction(`wrapStore(${name})`, "wrap", wrap, true);
  return { kind: "storeWrapper", name, wrap };
}

/**
 * Registers a custom action, listed by ListActions.
 *
 * @example
 * defineAction("echo", "returns its body", async (body) => ({ body }));
 */
export function defineAction(type: string, description: string, handler: ActionSetting["handler"]): ActionSetting {
  checkString("defineAction", "type", type, "a non-empty string", true);
  checkFunction(`defineAction(${type})`, "handler", handler, true);
  return { kind: "action", type, description, handler };
}

/**
 * Registers a DoExchange handler for a command (the descriptor's `cmd` text, or `path[0]`).
 *
 * @example
 * defineExchange("echo", async function* (input) { for await (const m of input) yield m; });
 */
export function defineExchange(command: string, handler: ExchangeHandler): ExchangeSetting {
  checkString("defineExchange", "command", command, "a non-empty string", true);
  checkFunction(`defineExchange(${command})`, "handler", handler, true);
  return { kind: "exchange", command, handler };
}

/** Adds a section to the `stats` action. */
export function statsSection(section: string, collect: () => unknown): StatsSetting {
  checkString("statsSection", "section", section, "a non-empty string", true);
  return { kind: "stats", section, collect };
}

/** Runs hooks when the server is built, when it starts and after it shuts down. */
export function onLifecycle(hooks: Omit<LifecycleSetting, "kind">): LifecycleSetting {
  return { kind: "lifecycle", ...hooks };
}
