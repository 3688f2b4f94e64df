import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import {
  FlightError,
  StatusCode,
  createContextKey,
  statusCodeName,
  type CallContext,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkBoolean,
  checkPattern,
} from "@blackice/flight-core";
import { observeCall, type CallOutcome } from "./observe-call";
import { checkOptions } from "@blackice/flight-core";
import { checkLogger } from "./option-checks";
import { redactHeaders } from "./redact-headers";
import { silentLogger } from "./silent-logger";

/**
 * The call's logger, a child of the server logger bound to `callId`, `method` and `peer`.
 * Set by {@link callLogger}; read it with {@link loggerOf}.
 *
 * @example
 * const log = call.context.get(kLogger); // undefined without callLogger; loggerOf() never is
 */
export const kLogger = createContextKey<Logger | undefined>("blackice.logger", undefined);

/**
 * The call's id (the client's request id when it sent a valid one, else a new UUID).
 *
 * @example
 * const id = call.context.get(kCallId); // "3f0c…", also sent back in the x-request-id response header
 */
export const kCallId = createContextKey<string | undefined>("blackice.callId", undefined);

/**
 * The logger of a call: the child logger {@link callLogger} published, or a silent logger
 * when there is none, so handlers can always log.
 *
 * @example
 * defineAction("reindex", "rebuilds the index", async (body, call) => {
 *   loggerOf(call.context).info({ bytes: body.byteLength }, "reindex requested");
 *   return [];
 * });
 */
export function loggerOf(ctx: CallContext): Logger {
  return ctx.get(kLogger) ?? silentLogger();
}

/** Options of {@link callLogger}. */
export interface CallLoggerOptions {
  /** The server logger; each call gets a child of it. Default: silent. */
  logger?: Logger;
  /**
   * Request header holding the client's request id, reused as the call id when it is 1–64 of
   * `A-Z a-z 0-9 . _ : -`, and echoed in the response headers. `false`: always a new id, not echoed.
   * Default `"x-request-id"`.
   */
  requestIdHeader?: string | false;
  /** Log the request headers (redacted, see `redactHeaders`) when a call starts, at debug. Default false. */
  logHeaders?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

type Level = "info" | "warn" | "error";

/** Log level of a call's end: client-side outcomes at info, overload at warn, server faults at error. */
function levelOf(code: StatusCode): Level {
  switch (code) {
    case StatusCode.RESOURCE_EXHAUSTED:
    case StatusCode.DEADLINE_EXCEEDED:
    case StatusCode.UNAVAILABLE:
      return "warn";
    case StatusCode.UNKNOWN:
    case StatusCode.UNIMPLEMENTED:
    case StatusCode.INTERNAL:
    case StatusCode.DATA_LOSS:
      return "error";
    default:
      return "info";
  }
}

/**
 * The end-of-call fields. A FlightError's message is logged (FlightError messages never
 * carry secrets or payload bytes, by contract); of any other error only its name, because
 * foreign messages may quote requests, credentials or data.
 */
function endFields(outcome: CallOutcome, durationMs: number): Record<string, unknown> {
  const fields: Record<string, unknown> = { code: statusCodeName(outcome.code), durationMs: Math.round(durationMs * 1000) / 1000 };
  if (outcome.abandoned) fields.abandoned = true;
  const err = outcome.error;
  if (err instanceof FlightError) fields.error = err.message;
  else if (err !== undefined) fields.error = err instanceof Error ? err.name : typeof err;
  return fields;
}

/**
 * Logs every call with pino: a child logger per call bound to `callId`, `method` and `peer`
 * is published under {@link kLogger} for later middleware and handlers, and the end of the
 * call is logged with its status code and duration (streaming responses included).
 *
 * Never logged: header values with credential-like names or values (only with `logHeaders`,
 * and then redacted), request or response payloads, and messages of errors other than
 * FlightError. Silent unless given a logger.
 *
 * @throws TypeError for invalid options.
 *
 * @example
 * const logger = pino({ level: "info" });
 * createFlightServer(callLogger({ logger }), ...otherParts);
 * // {"level":30,"callId":"6f1c…","method":"doGet","peer":"127.0.0.1:51234","code":"OK","durationMs":12.5,"msg":"call finished"}
 */
export function callLogger(options?: CallLoggerOptions): ServerParts {
  const where = "callLogger";
  const o = checkOptions<CallLoggerOptions>(where, options, ["logger", "requestIdHeader", "logHeaders"]);
  const logger = checkLogger(where, "logger", o.logger) ?? silentLogger();
  const header =
    o.requestIdHeader === false
      ? false
      : checkPattern(where, "requestIdHeader", o.requestIdHeader, /^(?![\s\S]*-bin$)[a-z0-9_.-]+$/, "a lower-case ASCII header name (not -bin) or false", "x-request-id");
  const logHeaders = checkBoolean(where, "logHeaders", o.logHeaders, false);

  const middleware: FlightMiddleware = function callLoggerMiddleware(next) {
    return async function callLogger(call) {
      const started = performance.now();
      let callId: string | undefined;
      if (header !== false) {
        const given = call.headers.get(header)?.[0];
        if (typeof given === "string" && REQUEST_ID.test(given)) callId = given;
      }
      callId ??= randomUUID();
      if (header !== false) call.responseHeaders.set(header, callId);
      const log = logger.child({ callId, method: call.method, peer: call.peer });
      call.context.set(kLogger, log).set(kCallId, callId);
      if (log.isLevelEnabled("debug")) {
        log.debug(
          {
            path: call.path,
            deadline: call.deadline === undefined ? undefined : new Date(call.deadline).toISOString(),
            ...(logHeaders ? { headers: redactHeaders(call.headers) } : {}),
          },
          "call started",
        );
      }
      return observeCall(call, next, {
        onEnd: (outcome) => {
          log[levelOf(outcome.code)](endFields(outcome, performance.now() - started), "call finished");
        },
      });
    };
  };
  return serverParts(middleware);
}
