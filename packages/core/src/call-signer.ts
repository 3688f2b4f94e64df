import type { FlightData } from "./flight-types";

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
 * Sees every message of a client stream (DoPut, DoExchange) as it goes out, then gives the
 * `app_metadata` of one trailing message (no header, no body) that closes the stream: a
 * signature over everything sent (`hmacSigner`'s v2).
 */
export interface StreamSealer {
  /** Called once per message, in order, with the message exactly as it is sent. */
  update(message: FlightData): void;
  /** Called once after the last message: the trailing message's app_metadata. */
  seal(): Uint8Array;
}

/** What {@link CallSigner.signStream} returns: the call's headers and the sealer of its messages. */
export interface SignedStream {
  readonly headers: Record<string, string>;
  readonly sealer: StreamSealer;
}

/**
 * Produces request metadata for a call (for example an HMAC signature). The client calls it
 * once per call, before the call starts. Implemented by `@blackice/flight-security`'s
 * `hmacSigner`; the client knows no signing scheme itself.
 *
 * A signer that also covers the data of DoPut and DoExchange has `signStream`: the client then
 * calls it instead for those two methods, feeds the sealer every message it sends, and sends
 * the sealer's trailing message last.
 */
export interface CallSigner {
  (call: SignableCall): Record<string, string> | Promise<Record<string, string>>;
  signStream?: (call: SignableCall) => SignedStream | Promise<SignedStream>;
}
