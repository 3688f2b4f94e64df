import type { CallInfo, FlightMiddleware } from "./middleware";
import type { FlightData, FlightDescriptor, Result } from "./flight-types";
import type { FlightStore } from "./store/flight-store";

/**
 * Everything `createFlightServer(...parts)` accepts: call middleware (functions) and
 * settings (objects tagged by `kind`). Arrays are flattened, so one factory may return a
 * middleware together with the settings it needs. The two kinds are kept apart inside the
 * builder: settings configure the server and transport, middleware wraps calls.
 */
export type ServerPart = FlightMiddleware | ServerSetting | readonly ServerPart[];

/** A server setting. Made by the factory functions of the packages, not by hand. */
export type ServerSetting =
  | ConfigSetting
  | StoreSetting
  | TlsSetting
  | ActionSetting
  | ExchangeSetting
  | StatsSetting
  | LifecycleSetting;

/** Server configuration, mirroring the BlackIce server configuration. */
export interface FlightServerConfig {
  /** `host:port` to listen on. Default `127.0.0.1:8815`. Port 0 picks a free port. */
  addr?: string;
  /** Default time to live of a flight in ms; 0 = never expire. Default 0. */
  ttl?: number;
  /** Memory limit for stored flights in bytes. Default 1 GiB. */
  maxMemoryBytes?: number;
  /** Run garbage collection in the background. Default true. */
  enableGC?: boolean;
  /** Background GC interval in ms. Default 30 000. */
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
  /** Largest HTTP/2 DATA frame the server accepts, bytes (16 KiB to 16 MiB - 1). Default 16 KiB. */
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

/** Hooks run when the server starts and after it shut down (e.g. to stop timers). */
export interface LifecycleSetting {
  readonly kind: "lifecycle";
  readonly onStart?: (info: { address: string; port: number }) => void | Promise<void>;
  readonly onShutdown?: () => void | Promise<void>;
}

/** Flattens parts and splits them into middleware and settings, keeping order. */
export function splitServerParts(parts: readonly ServerPart[]): { middleware: FlightMiddleware[]; settings: ServerSetting[] } {
  const middleware: FlightMiddleware[] = [];
  const settings: ServerSetting[] = [];
  const visit = (p: ServerPart): void => {
    if (typeof p === "function") middleware.push(p);
    else if (Array.isArray(p)) for (const q of p as readonly ServerPart[]) visit(q);
    else if (p && typeof p === "object" && typeof (p as ServerSetting).kind === "string") settings.push(p as ServerSetting);
    else throw new TypeError(`createFlightServer: expected a middleware function or a setting object with a "kind", got ${p === null ? "null" : typeof p}`);
  };
  for (const p of parts) visit(p);
  return { middleware, settings };
}

function assertNonEmptyString(what: string, v: unknown): void {
  if (typeof v !== "string" || v.length === 0) throw new TypeError(`${what} must be a non-empty string`);
}

/**
 * Server configuration (`addr`, `ttl`, `maxMemoryBytes`, `enableGC`, `gcInterval`, ...).
 *
 * @example
 * createFlightServer(serverConfig({ addr: "0.0.0.0:8815", ttl: 3_600_000, maxMemoryBytes: 4 * 2 ** 30 }));
 */
export function serverConfig(config: FlightServerConfig): ConfigSetting {
  if (config === null || typeof config !== "object") throw new TypeError("serverConfig: expected an object");
  return { kind: "config", config: { ...config } };
}

/** Serves from `store` instead of a new MemoryStore. */
export function withStore(store: FlightStore): StoreSetting {
  if (!store || typeof store.beginPut !== "function") throw new TypeError("withStore: expected a FlightStore");
  return { kind: "store", store };
}

/**
 * Registers a custom action, listed by ListActions.
 *
 * @example
 * defineAction("echo", "returns its body", async (body) => ({ body }));
 */
export function defineAction(type: string, description: string, handler: ActionSetting["handler"]): ActionSetting {
  assertNonEmptyString("defineAction: type", type);
  if (typeof handler !== "function") throw new TypeError(`defineAction(${type}): handler must be a function`);
  return { kind: "action", type, description, handler };
}

/**
 * Registers a DoExchange handler for a command (the descriptor's `cmd` text, or `path[0]`).
 *
 * @example
 * defineExchange("echo", async function* (input) { for await (const m of input) yield m; });
 */
export function defineExchange(command: string, handler: ExchangeHandler): ExchangeSetting {
  assertNonEmptyString("defineExchange: command", command);
  if (typeof handler !== "function") throw new TypeError(`defineExchange(${command}): handler must be a function`);
  return { kind: "exchange", command, handler };
}

/** Adds a section to the `stats` action. */
export function statsSection(section: string, collect: () => unknown): StatsSetting {
  assertNonEmptyString("statsSection: section", section);
  return { kind: "stats", section, collect };
}

/** Runs hooks when the server starts and after it shuts down. */
export function onLifecycle(hooks: Omit<LifecycleSetting, "kind">): LifecycleSetting {
  return { kind: "lifecycle", ...hooks };
}
