/**
 * What a client signs for one call. Exactly one of `message` and `descriptor` is set for
 * calls that have them; Handshake has neither.
 */
export interface SignableCall {
  /** The gRPC method path, `/arrow.flight.protocol.FlightService/DoGet`. */
  readonly path: string;
  /** The serialized request of a unary or server-streaming call (descriptor, ticket, action...). */
  readonly message?: Uint8Array;
  /** The serialized FlightDescriptor of the first message of DoPut or DoExchange. */
  readonly descriptor?: Uint8Array;
}

/**
 * Produces request metadata for a call (for example an HMAC signature). The client calls it
 * once per call, before the call starts. Implemented by `@blackice/flight-security`'s
 * `hmacSigner`; the client knows no signing scheme itself.
 */
export type CallSigner = (call: SignableCall) => Record<string, string> | Promise<Record<string, string>>;
