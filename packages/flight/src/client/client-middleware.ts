import * as grpc from "@grpc/grpc-js";
import { FlightError, StatusCode, type FlightMethod, checkArray, checkImplements } from "@blackice/flight-core";

/**
 * Response metadata (headers or trailers) as a middleware receives it: lower-case names, every
 * value of a name in the order received; text values as strings, `-bin` values as bytes.
 */
export type ReceivedMetadata = ReadonlyMap<string, ReadonlyArray<string | Uint8Array>>;

/** Request headers a middleware adds: text, or bytes for a `-bin` name (text for a `-bin` name is sent as UTF-8). */
export type OutgoingHeaders = Record<string, string | Uint8Array | Array<string | Uint8Array>>;

/** What a {@link ClientMiddleware} learns when a call starts. */
export interface ClientCallInfo {
  /** The Flight method, e.g. `"getFlightInfo"`. */
  readonly method: FlightMethod;
  /** The gRPC path, `/arrow.flight.protocol.FlightService/GetFlightInfo`. */
  readonly path: string;
}

/** How a call ended, as {@link ClientCallMiddleware.callCompleted} sees it. */
export interface ClientCallStatus {
  /** The gRPC status code; `StatusCode.OK` for a call that succeeded. */
  readonly code: StatusCode;
  /** The status message (empty on success). */
  readonly details: string;
  /** The trailers the server sent (empty when the call never reached a server, or was cancelled here). */
  readonly trailers: ReceivedMetadata;
}

/**
 * The hooks of one call, returned by {@link ClientMiddleware.startCall}. All are optional and
 * synchronous. A hook that throws fails the call with INTERNAL (the other middleware still
 * see the call through, with what the server sent).
 */
export interface ClientCallMiddleware {
  /** Headers to add to the request. Called once, just after `startCall`, before anything is sent. */
  sendingHeaders?(): OutgoingHeaders | undefined | void;
  /**
   * The response headers. Called exactly once per call, before `callCompleted`. A call that
   * ended without headers (a trailers-only response, which is how a server answers a call
   * it fails at once; or a call that never reached a server) passes its trailers instead, as
   * Arrow's C++ client does: headers a server set before failing travel in the trailers then.
   */
  receivedHeaders?(headers: ReceivedMetadata): void;
  /** Called exactly once when the call has ended, whether it succeeded, failed or was cancelled. */
  callCompleted?(status: ClientCallStatus): void;
}

/**
 * A client middleware, as in Arrow's `ClientMiddlewareFactory`: `startCall` is called once
 * for every call a {@link FlightClient} makes, unary and streaming alike, and returns the hooks
 * of that call (or nothing, to stay out of it). With several middleware the first one given is
 * the outermost: `startCall` and `sendingHeaders` run in the order given, `receivedHeaders` and
 * `callCompleted` in reverse order. Middleware headers are added after the client's and the
 * call's `metadata` and the signer's headers. A call that fails before it starts (bad options,
 * a closed client, an aborted signal, a failing signer) reaches no middleware.
 *
 * @example
 * // Sends a request id with every call, and logs how each call ended and what it took.
 * const timing: ClientMiddleware = {
 *   startCall({ method }) {
 *     const started = performance.now();
 *     return {
 *       sendingHeaders: () => ({ "x-request-id": randomUUID() }),
 *       receivedHeaders: (headers) => console.log(method, "server:", headers.get("x-server-version")?.[0]),
 *       callCompleted: ({ code }) => console.log(method, StatusCode[code], `${(performance.now() - started).toFixed(1)} ms`),
 *     };
 *   },
 * };
 * const client = new FlightClient("grpc+tcp://127.0.0.1:8815", { middleware: [cookieMiddleware(), timing] });
 */
export interface ClientMiddleware {
  /** Called when a call starts; returns the call's hooks, or undefined to ignore the call. */
  startCall(info: ClientCallInfo): ClientCallMiddleware | undefined | void;
}

/** A {@link cookieMiddleware}: a client middleware with its cookie jar. */
export interface CookieMiddleware extends ClientMiddleware {
  /** The cookies held now (expired ones dropped), name → value. A copy. */
  cookies(): Map<string, string>;
  /** Forgets every cookie. */
  clear(): void;
}

interface JarCookie {
  value: string;
  /** Epoch ms; Infinity for a session cookie. */
  expires: number;
}

/**
 * Reads one `set-cookie` value minimally (RFC 6265, 5.2): `name=value`, then `Max-Age`, which
 * wins over `Expires`; other attributes (Domain, Path, Secure, HttpOnly...) are ignored, as a
 * client talks to one server. Undefined when it carries no cookie.
 */
export function parseSetCookie(text: string, now = Date.now()): { name: string; value: string; expires: number } | undefined {
  const [pair, ...attributes] = text.split(";");
  const eq = pair.indexOf("=");
  if (eq < 0) return undefined;
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  if (name === "") return undefined;
  let maxAge: number | undefined;
  let expires: number | undefined;
  for (const attribute of attributes) {
    const at = attribute.indexOf("=");
    const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
    const v = at < 0 ? "" : attribute.slice(at + 1).trim();
    if (key === "max-age" && /^-?\d+$/.test(v)) maxAge = Number(v);
    else if (key === "expires") {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) expires = t;
    }
  }
  if (maxAge !== undefined) return { name, value, expires: maxAge <= 0 ? -Infinity : now + maxAge * 1000 };
  return { name, value, expires: expires ?? Infinity };
}

/**
 * Cookies for a client, as HTTP does them: keeps what the server sends in `set-cookie`
 * (response headers or trailers) and sends the live cookies back as one `cookie` header on
 * every later call. A cookie with `Max-Age=0` (or less), or an `Expires` in the past, is
 * deleted. This is how a client keeps an Arrow Flight session (`arrow_flight_session_id`, see
 * `sessionOptions`). Each call of `cookieMiddleware()` makes a new, empty jar: give one to one
 * client (or to the clients that should share a session).
 *
 * @example
 * const client = new FlightClient("grpc+tcp://127.0.0.1:8815", { middleware: [cookieMiddleware()] });
 * const request = proto.SetSessionOptionsRequest.encode({ sessionOptions: { catalog: { stringValue: "main" } } }).finish();
 * await client.doAction("SetSessionOptions", request);
 * // The next call carries the session cookie, so it sees the option set above.
 * const [reply] = await client.doAction("GetSessionOptions", proto.GetSessionOptionsRequest.encode({}).finish());
 */
export function cookieMiddleware(): CookieMiddleware {
  const jar = new Map<string, JarCookie>();
  const live = (): Map<string, JarCookie> => {
    const now = Date.now();
    for (const [name, c] of jar) if (c.expires <= now) jar.delete(name);
    return jar;
  };
  const take = (md: ReceivedMetadata): void => {
    const now = Date.now();
    for (const raw of md.get("set-cookie") ?? []) {
      const cookie = parseSetCookie(typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8"), now);
      if (!cookie) continue;
      if (cookie.expires <= now) jar.delete(cookie.name);
      else jar.set(cookie.name, { value: cookie.value, expires: cookie.expires });
    }
  };
  const hooks: ClientCallMiddleware = {
    sendingHeaders() {
      const cookies = live();
      if (cookies.size === 0) return undefined;
      return { cookie: [...cookies].map(([name, c]) => `${name}=${c.value}`).join("; ") };
    },
    receivedHeaders: take,
    callCompleted: (status) => take(status.trailers),
  };
  return {
    startCall: () => hooks,
    cookies: () => new Map([...live()].map(([name, c]) => [name, c.value])),
    clear: () => jar.clear(),
  };
}

// ------------------------------------------------------------------ internals of FlightClient

/** Checks the `middleware` option of a FlightClient. */
export function checkMiddleware(middleware: unknown): void {
  if (middleware === undefined) return;
  checkArray("FlightClient", "middleware", middleware, "an array of ClientMiddleware ({ startCall(info) })").forEach((m, i) => {
    checkImplements("FlightClient", `middleware[${i}]`, m, ["startCall"], "a ClientMiddleware", true);
  });
}

function toReceived(md: grpc.Metadata): ReceivedMetadata {
  const out = new Map<string, Array<string | Uint8Array>>();
  for (const key of Object.keys(md.getMap())) out.set(key.toLowerCase(), md.get(key) as Array<string | Uint8Array>);
  return out;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The middleware of one call, started. `headers()` are added to the request; `interceptor()`
 * feeds the response headers and status to the hooks; `abandon(err)` completes a call that
 * could not be made after all, so that every started middleware sees its call complete.
 */
export class StartedCall {
  private completed = false;
  private constructor(private readonly hooks: ClientCallMiddleware[]) {}

  /**
   * Calls `startCall` and `sendingHeaders` of each middleware, in order, adding the headers
   * with `add`. If one throws, the middleware already started see the call complete with
   * INTERNAL and the error is thrown as a FlightError.
   */
  static start(middleware: readonly ClientMiddleware[], info: ClientCallInfo, add: (key: string, value: string | Uint8Array) => void): StartedCall {
    const started = new StartedCall([]);
    try {
      for (const m of middleware) {
        const hooks = m.startCall(info);
        if (hooks === undefined || hooks === null) continue;
        if (typeof hooks !== "object") throw new TypeError(`startCall returned ${typeof hooks}, expected the call's hooks or undefined`);
        started.hooks.push(hooks);
        const headers = hooks.sendingHeaders?.();
        if (headers === undefined || headers === null) continue;
        if (typeof headers !== "object") throw new TypeError(`sendingHeaders returned ${typeof headers}, expected an object of headers`);
        for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) add(k, one);
      }
    } catch (err) {
      const fe = new FlightError(StatusCode.INTERNAL, `a client middleware failed to start the call: ${messageOf(err)}`, { cause: err });
      started.abandon(fe);
      throw fe;
    }
    return started;
  }

  get empty(): boolean {
    return this.hooks.length === 0;
  }

  /** Completes the call without it having reached the network (the error it failed with). */
  abandon(err: unknown): void {
    if (this.completed) return;
    const fe = FlightError.from(err);
    const trailers: ReceivedMetadata = new Map();
    this.finish({ code: fe.code, details: fe.message, trailers }, false);
  }

  /** Runs every hook of a stage (in reverse order: the first middleware is the outermost); returns the first error. */
  private run(stage: (h: ClientCallMiddleware) => void): unknown {
    let failure: unknown;
    for (let i = this.hooks.length - 1; i >= 0; i--) {
      try {
        stage(this.hooks[i]);
      } catch (err) {
        failure ??= err;
      }
    }
    return failure;
  }

  private finish(status: ClientCallStatus, gotHeaders: boolean): unknown {
    this.completed = true;
    const headersFailed = gotHeaders ? undefined : this.run((h) => h.receivedHeaders?.(status.trailers));
    const completedFailed = this.run((h) => h.callCompleted?.(status));
    return headersFailed ?? completedFailed;
  }

  /** A grpc-js interceptor that feeds this call's response headers and status to the hooks. */
  interceptor(): grpc.Interceptor {
    return (options, nextCall) => {
      let gotHeaders = false;
      let failure: unknown;
      return new grpc.InterceptingCall(nextCall(options), {
        start: (metadata, listener, next) => {
          next(metadata, {
            onReceiveMetadata: (md, nextMd) => {
              gotHeaders = true;
              const headers = toReceived(md);
              failure ??= this.run((h) => h.receivedHeaders?.(headers));
              nextMd(md);
            },
            onReceiveStatus: (status, nextStatus) => {
              if (this.completed) return nextStatus(status);
              const finished = this.finish({ code: status.code as number as StatusCode, details: status.details, trailers: toReceived(status.metadata) }, gotHeaders);
              failure ??= finished;
              if (failure === undefined) return nextStatus(status);
              nextStatus({ ...status, code: grpc.status.INTERNAL, details: `a client middleware failed: ${messageOf(failure)}` });
            },
          });
        },
      });
    };
  }
}
