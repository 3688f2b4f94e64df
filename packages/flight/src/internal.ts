// @blackice/flight/internal: for transport authors and wire-level tools, not for server
// users. The server transport, the FlightData codec, the gRPC method table and the grpc-js
// service definition. It follows the package's version but may change in any minor release.

export { decodeFlightData, encodeFlightData, flightDataPieces, FlightDataDecodeError } from "./codec/flight-data-codec";
export type { DecodeFlightDataOptions } from "./codec/flight-data-codec";
export { flightServiceDefinition, FLIGHT_SERVICE_NAME } from "./codec/service-definition";
export type { FlightMethodDefinition, FlightServiceDefinition } from "./codec/service-definition";
export { encapsulateMessage } from "./server/ipc-encapsulate";
export { Http2GrpcTransport } from "./transport/http2-grpc-transport";
export type { TransportHooks } from "./transport/http2-grpc-transport";
export type { ServerTransport, TransportCall, TransportLimits, TransportMethod, TransportSettings, TransportStats, HttpExchange, HttpRequestContext, HttpRoutes } from "./transport/transport";
export { httpStatusOf } from "./transport/http-status";
export { percentDecode, percentEncode } from "./transport/grpc-metadata";
export { httpArrowRoutes } from "./server/http-arrow-routes";
export type { HttpArrowRoutesOptions } from "./server/http-arrow-routes";
export { HealthService, HEALTH_SERVICE_NAME } from "./transport/health-service";
export { flightServiceMethods } from "./server/flight-service";
export type { FlightRequestLimits } from "./server/flight-service";
