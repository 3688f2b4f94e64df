import { randomBytes } from "node:crypto";
import {
  createContextKey,
  defineAction,
  invalidArgument,
  notFound,
  onLifecycle,
  resourceExhausted,
  type CallInfo,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkFunction,
  checkInt,
  checkObject,
} from "@blackice/flight-core";
import * as pb from "../gen/Flight";

/** The cookie that carries the session id, as Arrow suggests. */
export const SESSION_COOKIE = "arrow_flight_session_id";

/** One session option value (exactly one field set). */
export type SessionOptionValue = pb.SessionOptionValue;

/** A client session: its id and options. */
export interface FlightSession {
  readonly id: string;
  readonly options: Map<string, SessionOptionValue>;
  lastUsed: number;
}

/** Why a session option was refused (Arrow's SetSessionOptionsResult.ErrorValue). */
export type SessionOptionError = "INVALID_NAME" | "INVALID_VALUE" | "ERROR";

/** Options of {@link sessionOptions}. */
export interface SessionOptionsConfig {
  /** Checks one option before it is set; return a reason to refuse it. Default: accept all. */
  validate?: (name: string, value: SessionOptionValue) => SessionOptionError | undefined;
  /** Sessions idle longer than this are dropped. Default 1 hour. */
  idleTimeoutMs?: number;
  /** At most this many sessions; a new one beyond it is refused with RESOURCE_EXHAUSTED. Default 10 000. */
  maxSessions?: number;
}

/** The caller's session, when its request carried a known session cookie. */
export const kSession = createContextKey<FlightSession | undefined>("blackice.session", undefined);

function cookieSessionId(call: CallInfo): string | undefined {
  for (const header of call.headers.get("cookie") ?? []) {
    const text = typeof header === "string" ? header : Buffer.from(header).toString("utf8");
    for (const part of text.split(";")) {
      const [name, ...rest] = part.trim().split("=");
      if (name === SESSION_COOKIE) return rest.join("=");
    }
  }
  return undefined;
}

function isUnset(v: SessionOptionValue | undefined): boolean {
  return (
    !v ||
    (v.stringValue === undefined && v.boolValue === undefined && v.int64Value === undefined && v.doubleValue === undefined && v.stringListValue === undefined)
  );
}

const ERROR_VALUES: Record<SessionOptionError, pb.SetSessionOptionsResult_ErrorValue> = {
  INVALID_NAME: pb.SetSessionOptionsResult_ErrorValue.INVALID_NAME,
  INVALID_VALUE: pb.SetSessionOptionsResult_ErrorValue.INVALID_VALUE,
  ERROR: pb.SetSessionOptionsResult_ErrorValue.ERROR,
};

/**
 * Arrow Flight session options: the `SetSessionOptions`, `GetSessionOptions` and
 * `CloseSession` actions, with sessions riding the `arrow_flight_session_id` cookie.
 * Any call without a live session cookie gets a new session and a `set-cookie` header;
 * a valueless option unsets it. CloseSession needs a known session (NOT_FOUND otherwise);
 * after it the id is gone. The session reaches handlers under {@link kSession}.
 *
 * @example
 * createFlightServer(sessionOptions({ validate: (name) => (name.startsWith("x") ? undefined : "INVALID_NAME") }));
 */
export function sessionOptions(config: SessionOptionsConfig = {}): ServerParts {
  const where = "sessionOptions";
  checkObject(where, "options", config);
  const idleTimeoutMs = checkInt(where, "idleTimeoutMs", config.idleTimeoutMs, 1, Number.MAX_SAFE_INTEGER, 3_600_000);
  const maxSessions = checkInt(where, "maxSessions", config.maxSessions, 1, Number.MAX_SAFE_INTEGER, 10_000);
  checkFunction(where, "validate", config.validate);
  const sessions = new Map<string, FlightSession>();

  const live = (id: string | undefined): FlightSession | undefined => {
    if (id === undefined) return undefined;
    const s = sessions.get(id);
    if (!s) return undefined;
    if (Date.now() - s.lastUsed > idleTimeoutMs) {
      sessions.delete(id);
      return undefined;
    }
    s.lastUsed = Date.now();
    return s;
  };
  const sweep = (): void => {
    const now = Date.now();
    for (const [id, s] of sessions) if (now - s.lastUsed > idleTimeoutMs) sessions.delete(id);
  };
  let timer: NodeJS.Timeout | undefined;

  const open = (call: CallInfo): FlightSession => {
    if (sessions.size >= maxSessions) sweep();
    if (sessions.size >= maxSessions) throw resourceExhausted("too many open sessions; try again later");
    const session: FlightSession = { id: randomBytes(16).toString("hex"), options: new Map(), lastUsed: Date.now() };
    sessions.set(session.id, session);
    call.responseHeaders.set("set-cookie", `${SESSION_COOKIE}=${session.id}`);
    return session;
  };

  // As in the reference implementations, a call without a live session cookie gets a new
  // session (and its cookie); CloseSession is the one call that never opens one.
  const middleware: FlightMiddleware = (next) =>
    async function sessionCookie(call) {
      let session = live(cookieSessionId(call));
      if (!session && !(call.method === "doAction" && call.request.type === "CloseSession")) session = open(call);
      if (session) call.context.set(kSession, session);
      return next(call);
    };

  const requireSession = (call: CallInfo, action: string): FlightSession => {
    const s = call.context.get(kSession);
    if (!s) throw notFound(`${action}: no session (send the ${SESSION_COOKIE} cookie from SetSessionOptions)`);
    return s;
  };

  const decode = <T>(what: string, codec: { decode(b: Uint8Array): T }, body: Uint8Array): T => {
    try {
      return codec.decode(body);
    } catch {
      throw invalidArgument(`${what}: the body is not a ${what}Request`);
    }
  };

  return serverParts(
    middleware,
    defineAction(
      "SetSessionOptions",
      "Sets session options by name. Body: SetSessionOptionsRequest. Returns SetSessionOptionsResult. Creates a session (set-cookie arrow_flight_session_id) when the call has none.",
      async (body, call) => {
        const request = decode("SetSessionOptions", pb.SetSessionOptionsRequest, body);
        const session = call.context.get(kSession) ?? open(call);
        const errors: Record<string, pb.SetSessionOptionsResult_Error> = {};
        for (const [name, value] of Object.entries(request.sessionOptions)) {
          if (isUnset(value)) {
            session.options.delete(name);
            continue;
          }
          const refused = config.validate?.(name, value!);
          if (refused) errors[name] = { value: ERROR_VALUES[refused] };
          else session.options.set(name, value!);
        }
        return { body: pb.SetSessionOptionsResult.encode({ errors }).finish() };
      },
    ),
    defineAction(
      "GetSessionOptions",
      "Returns the session's options. Body: GetSessionOptionsRequest. Returns GetSessionOptionsResult. NOT_FOUND without a session.",
      async (body, call) => {
        decode("GetSessionOptions", pb.GetSessionOptionsRequest, body);
        const session = requireSession(call, "GetSessionOptions");
        return { body: pb.GetSessionOptionsResult.encode({ sessionOptions: Object.fromEntries(session.options) }).finish() };
      },
    ),
    defineAction(
      "CloseSession",
      "Closes the session. Body: CloseSessionRequest. Returns CloseSessionResult (CLOSED). NOT_FOUND without a session.",
      async (body, call) => {
        decode("CloseSession", pb.CloseSessionRequest, body);
        const session = requireSession(call, "CloseSession");
        sessions.delete(session.id);
        call.context.delete(kSession);
        return { body: pb.CloseSessionResult.encode({ status: pb.CloseSessionResult_Status.CLOSED }).finish() };
      },
    ),
    onLifecycle({
      onStart: () => {
        timer = setInterval(sweep, Math.min(idleTimeoutMs, 60_000));
        timer.unref();
      },
      onShutdown: () => {
        if (timer) clearInterval(timer);
        sessions.clear();
      },
    }),
  );
}
