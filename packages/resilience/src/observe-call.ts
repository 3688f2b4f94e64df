import {
  FlightError,
  STREAMING_RESPONSE_METHODS,
  StatusCode,
  type FlightCall,
  type FlightHandler,
  type FlightMethod,
  type FlightResponse,
} from "@blackice/flight-core";
import { isAsyncIterable, watchIterable, type StreamEnd } from "./watch-iterable";

/** How a call ended, as a middleware sees it. */
export interface CallOutcome {
  /** The status the client gets (OK, the error's code, or CANCELLED/DEADLINE_EXCEEDED when abandoned). */
  readonly code: StatusCode;
  /** What was thrown, if anything. */
  readonly error?: unknown;
  /** True when the response stream was stopped before its end (client cancel, deadline). */
  readonly abandoned: boolean;
}

/**
 * The status code a thrown value becomes on the wire (see FlightError.from).
 *
 * @example
 * codeOf(new FlightError(StatusCode.NOT_FOUND, "gone")); // 5
 * codeOf(new Error("bug"));                              // 13 (INTERNAL)
 */
export function codeOf(err: unknown, fallback: StatusCode = StatusCode.INTERNAL): StatusCode {
  return FlightError.from(err, fallback).code;
}

function outcomeOf(end: StreamEnd): CallOutcome {
  switch (end.kind) {
    case "done":
      return { code: StatusCode.OK, abandoned: false };
    case "error":
      return { code: codeOf(end.error), error: end.error, abandoned: false };
    case "returned":
      return { code: StatusCode.CANCELLED, abandoned: true };
    case "aborted":
      return { code: codeOf(end.reason, StatusCode.CANCELLED), error: end.reason, abandoned: true };
  }
}

/** Hooks of {@link observeCall}. */
export interface ObserveHooks {
  /** Called exactly once when the call is over (see {@link CallOutcome}). */
  onEnd: (outcome: CallOutcome) => void;
  /** Sees every message of a streaming response. Throwing fails the stream. */
  onResponseItem?: (item: unknown) => void;
  /** Ends (and interrupts) a streaming response when aborted. Default: `call.signal`. */
  signal?: AbortSignal;
}

/**
 * Runs `next(call)` and reports the end of the call exactly once: when a unary response
 * settles, or when a streaming response finishes, fails, is returned early, or `signal`
 * aborts (a response that is never pulled still ends when the call is cancelled).
 *
 * @example
 * return observeCall(call, next, { onEnd: ({ code }) => record(call.method, code) });
 */
export async function observeCall(call: FlightCall, next: FlightHandler, hooks: ObserveHooks): Promise<FlightResponse> {
  let response: FlightResponse;
  try {
    response = await next(call);
  } catch (error) {
    hooks.onEnd({ code: codeOf(error), error, abandoned: false });
    throw error;
  }
  if (!STREAMING_RESPONSE_METHODS.has(call.method) || !isAsyncIterable(response)) {
    hooks.onEnd({ code: StatusCode.OK, abandoned: false });
    return response;
  }
  return watchIterable(response, {
    onItem: hooks.onResponseItem,
    onEnd: (end) => hooks.onEnd(outcomeOf(end)),
    signal: hooks.signal ?? call.signal,
  }) as FlightResponse;
}

/** A copy of `call` with some fields replaced; the context stays the same object. */
export function withFields(call: FlightCall, fields: Partial<Pick<FlightCall, "request" | "signal" | "deadline">>): FlightCall {
  return { ...call, ...fields } as FlightCall;
}
