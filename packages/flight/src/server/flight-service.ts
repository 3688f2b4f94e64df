import { CallContext, contiguous, type Bytes, type FlightCall, type FlightData, type FlightHandler, type FlightInfo, type FlightMethod, type FlightStore } from "@blackice/flight-core";
import * as pb from "../gen/Flight";
import { decodeFlightData, flightDataPieces } from "../codec/flight-data-codec";
import { encodeFlightInfoFramed } from "../codec/flight-info-codec";
import { FLIGHT_SERVICE_NAME } from "../codec/service-definition";
import type { TransportCall, TransportMethod } from "../transport/transport";

interface Codec {
  encode(message: never): { finish(): Uint8Array };
  decode(input: Uint8Array): unknown;
}

/** Size limits of Flight requests (see FlightServerConfig). */
export interface FlightRequestLimits {
  maxMessageBytes: number;
  maxDescriptorBytes: number;
  maxTicketBytes: number;
  maxFirstMessageBytes: number;
}

/** One protobuf message framed for gRPC: the 5-byte prefix, then the message. */
function framed(message: Uint8Array): Uint8Array[] {
  const prefix = Buffer.allocUnsafe(5);
  prefix[0] = 0;
  prefix.writeUInt32BE(message.byteLength, 1);
  return [prefix, message];
}

const protobuf = (codec: Codec) => ({
  decode: (bytes: Bytes) => codec.decode(contiguous(bytes)),
  encode: (value: unknown) => framed(codec.encode(value as never).finish()),
});

/** Request and response codecs of each Flight method, and the limit of its request messages. */
function table(limits: FlightRequestLimits) {
  const flightData = {
    decode: (bytes: Bytes) => decodeFlightData(bytes, { maxDescriptorBytes: limits.maxDescriptorBytes }),
    encode: (value: unknown) => flightDataPieces(value as FlightData, true),
  };
  const flightDataIn = { decode: flightData.decode };
  // ListFlights sends one per stored flight: encoded by hand (see flight-info-codec.ts).
  const flightInfo = { encode: (value: unknown) => [encodeFlightInfoFramed(value as FlightInfo)] };
  const row = (
    name: string,
    clientStreaming: boolean,
    serverStreaming: boolean,
    maxRequestBytes: number,
    req: { decode(bytes: Bytes): unknown },
    res: { encode(value: unknown): Uint8Array[] },
  ) => ({ name, clientStreaming, serverStreaming, maxRequestBytes, decode: req.decode, encode: res.encode });
  return {
    handshake: row("Handshake", true, true, limits.maxFirstMessageBytes, protobuf(pb.HandshakeRequest), protobuf(pb.HandshakeResponse)),
    listFlights: row("ListFlights", false, true, limits.maxDescriptorBytes, protobuf(pb.Criteria), flightInfo),
    getFlightInfo: row("GetFlightInfo", false, false, limits.maxDescriptorBytes, protobuf(pb.FlightDescriptor), flightInfo),
    pollFlightInfo: row("PollFlightInfo", false, false, limits.maxDescriptorBytes, protobuf(pb.FlightDescriptor), protobuf(pb.PollInfo)),
    getSchema: row("GetSchema", false, false, limits.maxDescriptorBytes, protobuf(pb.FlightDescriptor), protobuf(pb.SchemaResult)),
    doGet: row("DoGet", false, true, limits.maxTicketBytes, protobuf(pb.Ticket), flightData),
    doPut: row("DoPut", true, true, limits.maxMessageBytes, flightDataIn, protobuf(pb.PutResult)),
    doExchange: row("DoExchange", true, true, limits.maxMessageBytes, flightDataIn, flightData),
    doAction: row("DoAction", false, true, limits.maxFirstMessageBytes, protobuf(pb.Action), protobuf(pb.Result)),
    listActions: row("ListActions", false, true, 1024, protobuf(pb.Empty), protobuf(pb.ActionType)),
  } satisfies Record<FlightMethod, unknown>;
}

/**
 * The Flight service as transport methods: each gRPC call becomes a {@link FlightCall} for
 * the composed middleware chain, carrying the server's `store`, and its response is encoded back. FlightData responses are
 * framed from their parts (header, body chunks, app_metadata), so what goes out is exactly
 * the message the handler returned.
 */
export function flightServiceMethods(handler: FlightHandler, limits: FlightRequestLimits, store: FlightStore): Map<string, TransportMethod> {
  const out = new Map<string, TransportMethod>();
  for (const [method, spec] of Object.entries(table(limits)) as Array<[FlightMethod, ReturnType<typeof table>[FlightMethod]]>) {
    out.set(`/${FLIGHT_SERVICE_NAME}/${spec.name}`, {
      clientStreaming: spec.clientStreaming,
      serverStreaming: spec.serverStreaming,
      maxRequestBytes: spec.maxRequestBytes,
      decode: spec.decode,
      encode: spec.encode,
      handle: (call: TransportCall) =>
        handler({
          method,
          request: call.request,
          context: new CallContext(),
          headers: call.headers,
          responseHeaders: call.responseHeaders,
          signal: call.signal,
          peer: call.peer,
          path: call.path,
          deadline: call.deadline,
          rawRequest: call.rawRequest,
          peerCertificate: call.peerCertificate,
          store,
        } as FlightCall),
    });
  }
  return out;
}
