import { StatusCode, statusCodeName } from "./status-code";

/**
 * The one error type of BlackIce Flight. It carries a gRPC status code; only the binding
 * turns it into a status on the wire. Messages must never contain secrets or payload bytes.
 *
 * @example
 * throw new FlightError(StatusCode.NOT_FOUND, `no flight at path ${JSON.stringify(path)}`);
 */
export class FlightError extends Error {
  override readonly name = "FlightError";
  /** The gRPC status code. */
  readonly code: StatusCode;
  /** Extra response trailers (for example a retry hint), as plain strings. */
  readonly metadata: Record<string, string>;

  constructor(code: StatusCode, message: string, options?: { cause?: unknown; metadata?: Record<string, string> }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.metadata = options?.metadata ?? {};
  }

  /** `"NOT_FOUND: no flight ..."`. */
  override toString(): string {
    return `${statusCodeName(this.code)}: ${this.message}`;
  }

  /**
   * Turns anything thrown into a FlightError. A FlightError is returned as it is; an object
   * that already carries a numeric gRPC `code` (such as a grpc-js ServiceError) keeps it;
   * anything else becomes `fallback` (INTERNAL by default) with a generic message, so that an
   * internal error text never reaches a caller unintended.
   */
  static from(err: unknown, fallback: StatusCode = StatusCode.INTERNAL): FlightError {
    if (err instanceof FlightError) return err;
    if (typeof err === "object" && err !== null) {
      const e = err as { code?: unknown; details?: unknown; message?: unknown; name?: unknown };
      if (e.name === "FlightError" && typeof e.code === "number" && typeof e.message === "string") {
        return new FlightError(e.code as StatusCode, e.message, { cause: err });
      }
      if (typeof e.code === "number" && e.code >= 0 && e.code <= 16) {
        const msg = typeof e.details === "string" ? e.details : typeof e.message === "string" ? e.message : "";
        return new FlightError(e.code as StatusCode, msg, { cause: err });
      }
      if (e.name === "AbortError") return new FlightError(StatusCode.CANCELLED, "call cancelled", { cause: err });
    }
    return new FlightError(fallback, fallback === StatusCode.INTERNAL ? "internal error" : String(err), { cause: err });
  }
}

/** Shorthands for the codes a Flight server uses most. */
export const invalidArgument = (msg: string): FlightError => new FlightError(StatusCode.INVALID_ARGUMENT, msg);
/** RESOURCE_EXHAUSTED: over a size or memory limit. */
export const resourceExhausted = (msg: string): FlightError => new FlightError(StatusCode.RESOURCE_EXHAUSTED, msg);
/** NOT_FOUND: no such flight. */
export const notFound = (msg: string): FlightError => new FlightError(StatusCode.NOT_FOUND, msg);
