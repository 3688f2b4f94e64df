// How a Flight status reads over plain HTTP: one table, so that every route answers the same
// failure with the same HTTP status.
import { StatusCode, statusCodeName, type FlightError } from "@blackice/flight-core";
import type { HttpExchange } from "./http-exchange";

/** HTTP status of each Flight status code (gRPC's own HTTP mapping, grpc/grpc doc/http-grpc-status-mapping.md, read backwards). */
const HTTP_STATUS: Readonly<Record<number, number>> = {
  [StatusCode.OK]: 200,
  [StatusCode.CANCELLED]: 499,
  [StatusCode.UNKNOWN]: 500,
  [StatusCode.INVALID_ARGUMENT]: 400,
  [StatusCode.DEADLINE_EXCEEDED]: 504,
  [StatusCode.NOT_FOUND]: 404,
  [StatusCode.ALREADY_EXISTS]: 409,
  [StatusCode.PERMISSION_DENIED]: 403,
  [StatusCode.RESOURCE_EXHAUSTED]: 429,
  [StatusCode.FAILED_PRECONDITION]: 412,
  [StatusCode.ABORTED]: 409,
  [StatusCode.OUT_OF_RANGE]: 416,
  [StatusCode.UNIMPLEMENTED]: 501,
  [StatusCode.INTERNAL]: 500,
  [StatusCode.UNAVAILABLE]: 503,
  [StatusCode.DATA_LOSS]: 500,
  [StatusCode.UNAUTHENTICATED]: 401,
};

/** The HTTP status that stands for a Flight status code (500 for an unknown one). */
export function httpStatusOf(code: number): number {
  return HTTP_STATUS[code] ?? 500;
}

/**
 * Answers with a FlightError as JSON: `{"code": "NOT_FOUND", "message": "..."}` and the
 * matching HTTP status. FlightError messages are written for callers (they never carry
 * secrets; anything unexpected was already turned into a generic INTERNAL). If the response
 * has already begun, the exchange is cut short instead, so the client cannot take a partial
 * body for a whole one.
 */
export function sendHttpError(exchange: HttpExchange, err: FlightError): void {
  if (exchange.closed) return;
  if (exchange.headersSent) {
    exchange.abort();
    return;
  }
  const body = Buffer.from(JSON.stringify({ code: statusCodeName(err.code), message: err.message }));
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", "content-length": String(body.byteLength), "cache-control": "no-store" };
  // RFC 9110: a 401 names the scheme it wants.
  if (err.code === StatusCode.UNAUTHENTICATED) headers["www-authenticate"] = "Bearer";
  exchange.respond(httpStatusOf(err.code), headers);
  exchange.write(body);
  exchange.end();
}
