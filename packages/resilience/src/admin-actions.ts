import type { Logger } from "pino";
import {
  FlightError,
  StatusCode,
  defineAction,
  offersGc,
  offersMemoryLimit,
  offersTtl,
  onLifecycle,
  parseDuration,
  parseSize,
  statsSection,
  type ActionSetting,
  type CallInfo,
  type FlightStore,
  type Result,
  serverParts,
  type ServerParts,
} from "@blackice/flight-core";
import type { BreakerState } from "./breaker-core";
import { checkFunction, checkInt, checkOptions } from "@blackice/flight-core";
import { checkLogger } from "./option-checks";
import { silentLogger } from "./silent-logger";

/** What `admin.reset-breaker` needs of a breaker: both `circuitBreaker` and `clientBreaker` qualify. */
export interface AdminBreaker {
  readonly name: string;
  readonly state: BreakerState;
  reset(): boolean;
}

/** Options of {@link adminActions}. The actions change the server's store (`call.store`). */
export interface AdminActionsOptions {
  /** The server logger: changes are logged to it, and `admin.set-log-level` sets its level. Default: silent. */
  logger?: Logger;
  /** Breakers `admin.reset-breaker` can reset and `admin.get` reports. */
  breakers?: readonly AdminBreaker[];
  /**
   * Decides whether a call may use the admin actions (all of them, `admin.get` included).
   * Without it every admin action is refused: admin access must be granted explicitly.
   */
  isAdmin?: (call: CallInfo) => boolean | Promise<boolean>;
  /** Changes kept for `admin.get` and stats. Default 50. */
  historySize?: number;
}

/** One change made through an admin action. */
export interface AdminChange {
  /** ISO time of the change. */
  readonly at: string;
  readonly action: string;
  readonly previous: unknown;
  readonly current: unknown;
  /** The caller's address. */
  readonly peer: string;
}

const MAX_BODY = 4096;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function invalid(msg: string): FlightError {
  return new FlightError(StatusCode.INVALID_ARGUMENT, msg);
}

function json(value: unknown): Result {
  return { body: Buffer.from(JSON.stringify(value)) };
}

/** Reads a JSON object body; an empty body is `{}`. */
function readBody(action: string, body: Uint8Array): Record<string, unknown> {
  if (body.byteLength === 0) return {};
  if (body.byteLength > MAX_BODY) throw invalid(`${action}: body too large (${body.byteLength} bytes, at most ${MAX_BODY})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch {
    throw invalid(`${action}: body must be a JSON object`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw invalid(`${action}: body must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Runs a setter, turning its TypeError (out of range) into INVALID_ARGUMENT with the same text. */
function apply(action: string, set: () => void): void {
  try {
    set();
  } catch (err) {
    if (err instanceof FlightError) throw err;
    throw invalid(`${action}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function field(action: string, body: Record<string, unknown>, name: string, example: string): string | number {
  const v = body[name];
  if (typeof v !== "number" && typeof v !== "string") throw invalid(`${action}: body must be {"${name}": ${example}}`);
  return v;
}

/**
 * Admin actions to tune a running server, each taking and returning JSON:
 *
 * - `admin.get` → `{ memoryLimitBytes, defaultTtlMs, gcIntervalMs, logLevel, breakers, changes }`
 * - `admin.set-memory-limit` `{"bytes": 4294967296 | "4GiB"}`
 * - `admin.set-default-ttl` `{"ms": 3600000 | "1h"}` (0: never expire; applies to later puts)
 * - `admin.set-gc-interval` `{"ms": 30000 | "30s"}`
 * - `admin.set-log-level` `{"level": "debug"}` (fatal, error, warn, info, debug, trace, silent)
 * - `admin.reset-breaker` `{"name": "store"}` (name optional when there is one breaker)
 *
 * Setters answer `{ ok, previous, current }`. Every change is logged (info) with the caller's
 * address and kept in an `admin` stats section. Calls for which `isAdmin` is not true are
 * refused with PERMISSION_DENIED (and logged at warn); without `isAdmin` all are refused.
 *
 * The store settings change the server's store (`call.store`) through its capabilities; on a
 * store without the capability a setter answers UNIMPLEMENTED, and `admin.get` reports null.
 *
 * @throws TypeError for invalid options.
 *
 * @example
 * createFlightServer(
 *   serverConfig({ maxMemoryBytes: 4 * 2 ** 30 }),
 *   adminActions({ logger, breakers: [storeBreaker], isAdmin: (call) => hasRole(identityOf(call), ADMIN_ROLE) }),
 * );
 * // client: doAction({ type: "admin.set-memory-limit", body: '{"bytes":"8GiB"}' })
 */
export function adminActions(options: AdminActionsOptions = {}): ServerParts {
  const where = "adminActions";
  if (options !== null && typeof options === "object" && ("store" in options || "gcIntervalMs" in options)) {
    throw new TypeError(`${where}: the store and gcIntervalMs options are gone; the actions use the server's store (call.store)`);
  }
  const o = checkOptions<AdminActionsOptions>(where, options, ["logger", "breakers", "isAdmin", "historySize"]);
  /** The server's store, known once the server is built (for the stats section). */
  let serverStore: FlightStore | undefined;
  const logger = checkLogger(where, "logger", o.logger);
  const log = logger ?? silentLogger();
  const isAdmin = checkFunction<(call: CallInfo) => boolean | Promise<boolean>>(where, "isAdmin", o.isAdmin);
  const historySize = checkInt(where, "historySize", o.historySize, 0, 10_000, 50);
  const breakers = o.breakers ?? [];
  if (!Array.isArray(breakers) || breakers.some((b) => !b || typeof b.reset !== "function" || typeof b.name !== "string")) {
    throw new TypeError(`${where}: breakers must be an array of breakers made by circuitBreaker() or clientBreaker()`);
  }

  const changes: AdminChange[] = [];
  let changeCount = 0;
  let denied = 0;

  const record = (action: string, previous: unknown, current: unknown, call: CallInfo): AdminChange => {
    const change: AdminChange = { at: new Date().toISOString(), action, previous, current, peer: call.peer };
    changeCount++;
    if (historySize > 0) {
      changes.push(change);
      if (changes.length > historySize) changes.shift();
    }
    log.info({ action, previous, current, peer: call.peer }, "admin change");
    return change;
  };

  /** Wraps a handler with the admin check. */
  const admin = (type: string, description: string, handler: (body: Uint8Array, call: CallInfo) => Result | Promise<Result>): ActionSetting =>
    defineAction(type, description, async function adminAction(body, call) {
      let allowed = false;
      if (isAdmin) {
        try {
          allowed = (await isAdmin(call)) === true;
        } catch (err) {
          // An authentication error of the check itself keeps its code; anything else is a refusal.
          if (err instanceof FlightError) throw err;
        }
      }
      if (!allowed) {
        denied++;
        log.warn({ action: type, peer: call.peer }, "admin action denied");
        throw new FlightError(
          StatusCode.PERMISSION_DENIED,
          isAdmin ? `${type} requires an admin caller` : `${type} is disabled: the server grants admin access to no one (adminActions isAdmin)`,
        );
      }
      return handler(body, call);
    });

  const memoryLimit = (store: FlightStore): number | null => store.stats().memory?.maxMemoryBytes ?? null;
  const defaultTtl = (store: FlightStore): number | null => store.stats().ttl?.defaultTtlMs ?? null;
  const gcInterval = (store: FlightStore): number | null => store.stats().gc?.gcIntervalMs ?? null;
  const unsupported = (action: string, capability: string): FlightError =>
    new FlightError(StatusCode.UNIMPLEMENTED, `${action}: the server's store has no ${capability} capability`);

  const snapshot = (store: FlightStore | undefined): Record<string, unknown> => {
    return {
      memoryLimitBytes: store ? memoryLimit(store) : null,
      defaultTtlMs: store ? defaultTtl(store) : null,
      gcIntervalMs: store ? gcInterval(store) : null,
      logLevel: logger ? logger.level : null,
      breakers: Object.fromEntries(breakers.map((b) => [b.name, b.state])),
      changes: changes.slice(),
    };
  };

  const findBreaker = (action: string, body: Record<string, unknown>): AdminBreaker => {
    const name = body.name;
    if (name === undefined) {
      if (breakers.length === 1) return breakers[0];
      throw invalid(`${action}: body must be {"name": "<breaker>"}; breakers: ${breakers.map((b) => b.name).join(", ") || "none"}`);
    }
    const found = breakers.find((b) => b.name === name);
    if (!found) {
      throw new FlightError(StatusCode.NOT_FOUND, `${action}: no breaker named ${JSON.stringify(name)}; breakers: ${breakers.map((b) => b.name).join(", ") || "none"}`);
    }
    return found;
  };

  return serverParts(
    admin("admin.get", "Admin: current memory limit, default TTL, GC interval, log level, breaker states and recent changes, as JSON.", (_body, call) =>
      json(snapshot(call.store)),
    ),
    admin("admin.set-memory-limit", 'Admin: sets the store memory limit. Body {"bytes": 4294967296 or "4GiB"}.', (body, call) => {
      const action = "admin.set-memory-limit";
      const b = readBody(action, body);
      let bytes: number;
      try {
        bytes = parseSize(field(action, b, "bytes", '4294967296 or "4GiB"'), "bytes");
      } catch (err) {
        throw err instanceof FlightError ? err : invalid(`${action}: ${(err as Error).message}`);
      }
      const { store } = call;
      if (!offersMemoryLimit(store)) throw unsupported(action, "memory-limit");
      const previous = memoryLimit(store);
      apply(action, () => store.setMaxMemoryBytes(bytes));
      const current = memoryLimit(store);
      record(action, previous, current, call);
      return json({ ok: true, previous, current });
    }),
    admin("admin.set-default-ttl", 'Admin: sets the TTL of later puts in ms (0: never expire). Body {"ms": 3600000 or "1h"}.', (body, call) => {
      const action = "admin.set-default-ttl";
      const b = readBody(action, body);
      let ms: number;
      try {
        ms = parseDuration(field(action, b, "ms", '3600000 or "1h"'), "ms");
      } catch (err) {
        throw err instanceof FlightError ? err : invalid(`${action}: ${(err as Error).message}`);
      }
      const { store } = call;
      if (!offersTtl(store)) throw unsupported(action, "TTL");
      const previous = defaultTtl(store);
      apply(action, () => store.setDefaultTtl(ms));
      const current = defaultTtl(store);
      record(action, previous, current, call);
      return json({ ok: true, previous, current });
    }),
    admin("admin.set-gc-interval", 'Admin: sets the background GC interval in ms. Body {"ms": 30000 or "30s"}.', (body, call) => {
      const action = "admin.set-gc-interval";
      const b = readBody(action, body);
      let ms: number;
      try {
        ms = parseDuration(field(action, b, "ms", '30000 or "30s"'), "ms");
      } catch (err) {
        throw err instanceof FlightError ? err : invalid(`${action}: ${(err as Error).message}`);
      }
      const { store } = call;
      if (!offersGc(store)) throw unsupported(action, "GC");
      const previous = gcInterval(store);
      apply(action, () => store.setGcInterval(ms));
      const current = gcInterval(store);
      record(action, previous, current, call);
      return json({ ok: true, previous, current });
    }),
    admin("admin.set-log-level", 'Admin: sets the server log level. Body {"level": "debug"}.', (body, call) => {
      const action = "admin.set-log-level";
      if (!logger) throw new FlightError(StatusCode.FAILED_PRECONDITION, `${action}: the server has no logger (adminActions logger)`);
      const level = readBody(action, body).level;
      const known = Object.keys(logger.levels?.values ?? {}).concat("silent");
      if (typeof level !== "string" || !(known.length > 1 ? known : LOG_LEVELS).includes(level)) {
        throw invalid(`${action}: body must be {"level": "<level>"} with one of ${(known.length > 1 ? known : LOG_LEVELS).join(", ")}`);
      }
      const previous = logger.level;
      // The change is logged at the old level first, so that lowering to "silent" still leaves a trace.
      record(action, previous, level, call);
      logger.level = level;
      return json({ ok: true, previous, current: logger.level });
    }),
    admin("admin.reset-breaker", 'Admin: closes a circuit breaker and clears its failure window. Body {"name": "store"}.', (body, call) => {
      const action = "admin.reset-breaker";
      const breaker = findBreaker(action, readBody(action, body));
      const previous = breaker.state;
      if (!breaker.reset()) throw new FlightError(StatusCode.FAILED_PRECONDITION, `${action}: breaker ${JSON.stringify(breaker.name)} is shut down`);
      record(action, previous, breaker.state, call);
      return json({ ok: true, name: breaker.name, previous, current: breaker.state });
    }),
    statsSection("admin", function collectAdminStats() {
      return { ...snapshot(serverStore), changeCount, denied };
    }),
    onLifecycle({
      onCreate: function learnServerStore(setup) {
        serverStore = setup.store;
      },
    }),
  );
}
