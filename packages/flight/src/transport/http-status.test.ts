import { FlightError, StatusCode } from "@blackice/flight-core";
import { httpStatusOf, sendHttpError } from "./http-status";
import type { HttpExchange } from "./http-exchange";

function fakeExchange(headersSent = false) {
  const sent: { status?: number; headers?: Record<string, string>; body: Buffer[]; ended: boolean; aborted: boolean } = { body: [], ended: false, aborted: false };
  const ex = {
    closed: false,
    headersSent,
    extraHeaders: {},
    respond: (status: number, headers: Record<string, string>) => Object.assign(sent, { status, headers }),
    write: (chunk: Uint8Array) => sent.body.push(Buffer.from(chunk)),
    end: () => (sent.ended = true),
    abort: () => (sent.aborted = true),
  } as unknown as HttpExchange;
  return { ex, sent };
}

describe("httpStatusOf", () => {
  it("maps the Flight codes a browser meets to their HTTP statuses", () => {
    expect(httpStatusOf(StatusCode.OK)).toBe(200);
    expect(httpStatusOf(StatusCode.NOT_FOUND)).toBe(404);
    expect(httpStatusOf(StatusCode.INVALID_ARGUMENT)).toBe(400);
    expect(httpStatusOf(StatusCode.UNAUTHENTICATED)).toBe(401);
    expect(httpStatusOf(StatusCode.PERMISSION_DENIED)).toBe(403);
    expect(httpStatusOf(StatusCode.RESOURCE_EXHAUSTED)).toBe(429);
    expect(httpStatusOf(StatusCode.UNAVAILABLE)).toBe(503);
    expect(httpStatusOf(StatusCode.DEADLINE_EXCEEDED)).toBe(504);
    expect(httpStatusOf(StatusCode.UNIMPLEMENTED)).toBe(501);
    expect(httpStatusOf(StatusCode.DATA_LOSS)).toBe(500);
    expect(httpStatusOf(99)).toBe(500);
  });
});

describe("sendHttpError", () => {
  it("answers with the status and a JSON body of code and message", () => {
    const { ex, sent } = fakeExchange();
    sendHttpError(ex, new FlightError(StatusCode.UNAUTHENTICATED, "authentication failed"));
    expect(sent.status).toBe(401);
    expect(sent.headers!["www-authenticate"]).toBe("Bearer");
    expect(JSON.parse(Buffer.concat(sent.body).toString())).toEqual({ code: "UNAUTHENTICATED", message: "authentication failed" });
    expect(sent.ended).toBe(true);
  });

  it("cuts short a response that has begun instead of appending an error to it", () => {
    const { ex, sent } = fakeExchange(true);
    sendHttpError(ex, new FlightError(StatusCode.UNAVAILABLE, "down"));
    expect(sent.aborted).toBe(true);
    expect(sent.status).toBeUndefined();
  });
});
