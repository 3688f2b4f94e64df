import type { ServiceDefinition } from "@grpc/grpc-js";
import * as pb from "../gen/Flight";
import type { FlightData } from "@blackice/flight-core";
import { decodeFlightData, encodeFlightData } from "./flight-data-codec";

/** The fully qualified gRPC service name of Arrow Flight. */
export const FLIGHT_SERVICE_NAME = "arrow.flight.protocol.FlightService";

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function serializer<T>(codec: Codec<T>) {
  return (value: T): Buffer => toBuffer(codec.encode(value).finish());
}

function deserializer<T>(codec: Codec<T>) {
  return (buf: Buffer): T => codec.decode(buf);
}

const flightDataCodec = {
  serialize: (m: FlightData): Buffer => encodeFlightData(m),
  deserialize: (b: Buffer): FlightData => decodeFlightData(b),
};

function method<Req, Res>(
  name: string,
  requestStream: boolean,
  responseStream: boolean,
  req: Codec<Req> | typeof flightDataCodec,
  res: Codec<Res> | typeof flightDataCodec,
) {
  const reqIsData = req === flightDataCodec;
  const resIsData = res === flightDataCodec;
  return {
    path: `/${FLIGHT_SERVICE_NAME}/${name}`,
    originalName: name,
    requestStream,
    responseStream,
    requestSerialize: reqIsData ? flightDataCodec.serialize : serializer(req as Codec<Req>),
    requestDeserialize: reqIsData ? flightDataCodec.deserialize : deserializer(req as Codec<Req>),
    responseSerialize: resIsData ? flightDataCodec.serialize : serializer(res as Codec<Res>),
    responseDeserialize: resIsData ? flightDataCodec.deserialize : deserializer(res as Codec<Res>),
  };
}

/**
 * The grpc-js service definition of Arrow Flight, used by FlightClient (the server has its
 * own transport, see src/transport). FlightData uses the strict codec; every other message
 * uses the ts-proto code generated from proto/Flight.proto.
 */
export const flightServiceDefinition = {
  handshake: method("Handshake", true, true, pb.HandshakeRequest, pb.HandshakeResponse),
  listFlights: method("ListFlights", false, true, pb.Criteria, pb.FlightInfo),
  getFlightInfo: method("GetFlightInfo", false, false, pb.FlightDescriptor, pb.FlightInfo),
  pollFlightInfo: method("PollFlightInfo", false, false, pb.FlightDescriptor, pb.PollInfo),
  getSchema: method("GetSchema", false, false, pb.FlightDescriptor, pb.SchemaResult),
  doGet: method("DoGet", false, true, pb.Ticket, flightDataCodec),
  doPut: method("DoPut", true, true, flightDataCodec, pb.PutResult),
  doExchange: method("DoExchange", true, true, flightDataCodec, flightDataCodec),
  doAction: method("DoAction", false, true, pb.Action, pb.Result),
  listActions: method("ListActions", false, true, pb.Empty, pb.ActionType),
} satisfies ServiceDefinition;
