import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import * as pb from "../gen/Flight";
import type { FlightData } from "@blackice/flight-core";
import { decodeFlightData, encodeFlightData } from "./flight-data-codec";

/** The fully qualified gRPC service name of Arrow Flight. */
export const FLIGHT_SERVICE_NAME = "arrow.flight.protocol.FlightService";

/** A ts-proto message codec (what `src/gen/Flight.ts` generates for each message). */
interface ProtoCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

/** How one message type goes to and from the wire. */
interface WireCodec<T> {
  serialize(value: T): Buffer;
  deserialize(bytes: Buffer): T;
}

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function protoWire<T>(codec: ProtoCodec<T>): WireCodec<T> {
  return {
    serialize: (value: T): Buffer => toBuffer(codec.encode(value).finish()),
    deserialize: (bytes: Buffer): T => codec.decode(bytes),
  };
}

/** FlightData goes through the strict hand-written codec, never through the generated one. */
const flightDataWire: WireCodec<FlightData> = {
  serialize: (m: FlightData): Buffer => encodeFlightData(m),
  deserialize: (b: Buffer): FlightData => decodeFlightData(b),
};

/**
 * One Flight method as grpc-js describes it, typed by its request and response messages and
 * whether each side streams.
 */
export interface FlightMethodDefinition<Req, Res, RequestStream extends boolean, ResponseStream extends boolean> extends MethodDefinition<Req, Res> {
  readonly path: string;
  readonly originalName: string;
  readonly requestStream: RequestStream;
  readonly responseStream: ResponseStream;
}

/** The grpc-js service definition of Arrow Flight, one typed entry per method. */
export type FlightServiceDefinition = {
  readonly handshake: FlightMethodDefinition<pb.HandshakeRequest, pb.HandshakeResponse, true, true>;
  readonly listFlights: FlightMethodDefinition<pb.Criteria, pb.FlightInfo, false, true>;
  readonly getFlightInfo: FlightMethodDefinition<pb.FlightDescriptor, pb.FlightInfo, false, false>;
  readonly pollFlightInfo: FlightMethodDefinition<pb.FlightDescriptor, pb.PollInfo, false, false>;
  readonly getSchema: FlightMethodDefinition<pb.FlightDescriptor, pb.SchemaResult, false, false>;
  readonly doGet: FlightMethodDefinition<pb.Ticket, FlightData, false, true>;
  readonly doPut: FlightMethodDefinition<FlightData, pb.PutResult, true, true>;
  readonly doExchange: FlightMethodDefinition<FlightData, FlightData, true, true>;
  readonly doAction: FlightMethodDefinition<pb.Action, pb.Result, false, true>;
  readonly listActions: FlightMethodDefinition<pb.Empty, pb.ActionType, false, true>;
};

function method<Req, Res, RS extends boolean, SS extends boolean>(
  name: string,
  requestStream: RS,
  responseStream: SS,
  req: WireCodec<Req>,
  res: WireCodec<Res>,
): FlightMethodDefinition<Req, Res, RS, SS> {
  return {
    path: `/${FLIGHT_SERVICE_NAME}/${name}`,
    originalName: name,
    requestStream,
    responseStream,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
  };
}

/**
 * The grpc-js service definition of Arrow Flight, used by FlightClient (the server has its
 * own transport, see src/transport). FlightData uses the strict codec; every other message
 * uses the ts-proto code generated from proto/Flight.proto.
 *
 * @example
 * const Raw = grpc.makeGenericClientConstructor(flightServiceDefinition, "FlightService");
 */
export const flightServiceDefinition: FlightServiceDefinition = Object.freeze({
  handshake: method("Handshake", true, true, protoWire(pb.HandshakeRequest), protoWire(pb.HandshakeResponse)),
  listFlights: method("ListFlights", false, true, protoWire(pb.Criteria), protoWire(pb.FlightInfo)),
  getFlightInfo: method("GetFlightInfo", false, false, protoWire(pb.FlightDescriptor), protoWire(pb.FlightInfo)),
  pollFlightInfo: method("PollFlightInfo", false, false, protoWire(pb.FlightDescriptor), protoWire(pb.PollInfo)),
  getSchema: method("GetSchema", false, false, protoWire(pb.FlightDescriptor), protoWire(pb.SchemaResult)),
  doGet: method("DoGet", false, true, protoWire(pb.Ticket), flightDataWire),
  doPut: method("DoPut", true, true, flightDataWire, protoWire(pb.PutResult)),
  doExchange: method("DoExchange", true, true, flightDataWire, flightDataWire),
  doAction: method("DoAction", false, true, protoWire(pb.Action), protoWire(pb.Result)),
  listActions: method("ListActions", false, true, protoWire(pb.Empty), protoWire(pb.ActionType)),
});

// grpc-js accepts it as a service definition (a compile-time check; nothing runs).
flightServiceDefinition satisfies ServiceDefinition;
