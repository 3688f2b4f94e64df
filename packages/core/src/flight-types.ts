import type { Bytes } from "./byte-chunks";

/**
 * The Flight protocol's messages as plain objects. They mirror the binding's generated
 * protobuf types field for field (camelCase), so the binding hands its decoded messages to
 * middleware without conversion, and core stays free of gRPC and protobuf.
 */

/** `FlightDescriptor.DescriptorType`. */
export const DescriptorType = { UNKNOWN: 0, PATH: 1, CMD: 2 } as const;
/** One of {@link DescriptorType}. */
export type DescriptorType = (typeof DescriptorType)[keyof typeof DescriptorType];

/** Names a dataset: a path (`type: PATH`) or an opaque command (`type: CMD`). */
export interface FlightDescriptor {
  type: number;
  cmd: Uint8Array;
  path: string[];
}

/** An opaque key to a stream, redeemed with DoGet. */
export interface Ticket {
  ticket: Uint8Array;
}

/** A URI where a ticket can be redeemed. */
export interface Location {
  uri: string;
}

/** One part of a flight. */
export interface FlightEndpoint {
  ticket: Ticket | undefined;
  location: Location[];
  expirationTime: Date | undefined;
  appMetadata: Uint8Array;
}

/** Where and how to fetch a flight. `totalRecords`/`totalBytes` are -1 when unknown. */
export interface FlightInfo {
  schema: Uint8Array;
  flightDescriptor: FlightDescriptor | undefined;
  endpoint: FlightEndpoint[];
  totalRecords: number;
  totalBytes: number;
  ordered: boolean;
  appMetadata: Uint8Array;
}

/** Returned by PollFlightInfo. */
export interface PollInfo {
  info: FlightInfo | undefined;
  flightDescriptor: FlightDescriptor | undefined;
  progress?: number | undefined;
  expirationTime: Date | undefined;
}

/**
 * One Arrow IPC message with Flight framing. `dataHeader` is the flatbuffer `Message`
 * (no continuation marker, no length prefix); `dataBody` is its body, as one array or as the
 * chunks it arrived in ({@link Bytes}: use `contiguous()` or `chunksOf()` to read it).
 * A plain value: a middleware that returns `{ ...m, appMetadata }` sends exactly that.
 */
export interface FlightData {
  flightDescriptor: FlightDescriptor | undefined;
  dataHeader: Uint8Array;
  appMetadata: Uint8Array;
  dataBody: Bytes;
}

/** Acknowledgement of a DoPut message. */
export interface PutResult {
  appMetadata: Uint8Array;
}

/** A server-specific filter for ListFlights. */
export interface Criteria {
  expression: Uint8Array;
}

/** An opaque action. */
export interface Action {
  type: string;
  body: Uint8Array;
}

/** One result of an action. */
export interface Result {
  body: Uint8Array;
}

/** An action offered by the server. */
export interface ActionType {
  type: string;
  description: string;
}

/** An IPC-encapsulated schema. */
export interface SchemaResult {
  schema: Uint8Array;
}

/** Handshake request. */
export interface HandshakeRequest {
  protocolVersion: number;
  payload: Uint8Array;
}

/** Handshake response. */
export interface HandshakeResponse {
  protocolVersion: number;
  payload: Uint8Array;
}

/** The empty message (ListActions request). */
export type Empty = Record<string, never>;
