// @blackice/flight: Arrow Flight over @grpc/grpc-js.

// ---- for server users ----
export { createFlightServer, DEFAULT_CONFIG, MAX_MESSAGE_BYTES_LIMIT } from "./server/create-flight-server";
export type { FlightServer } from "./server/create-flight-server";
export { TTL_HEADER } from "./server/store-handler";
export { echoExchange } from "./server/builtin-exchanges";
export { parseListCriteria } from "./server/list-criteria";
export { FlightClient, DEFAULT_CLIENT_MAX_MESSAGE_BYTES, DEFAULT_CLIENT_FLOW_CONTROL_WINDOW } from "./client/flight-client";
export type {
  CallOptions,
  DescriptorInput,
  DoPutCall,
  FlightClientOptions,
  FlightClientTlsOptions,
  FlightDataInput,
  MetadataValue,
  PutTableOptions,
  RequestSource,
  TicketInput,
} from "./client/flight-client";
export { pathDescriptor, cmdDescriptor } from "./client/descriptors";
export { cookieMiddleware } from "./client/client-middleware";
export type { ClientCallInfo, ClientCallMiddleware, ClientCallStatus, ClientMiddleware, CookieMiddleware, OutgoingHeaders, ReceivedMetadata } from "./client/client-middleware";
export { parseLocation } from "./client/location";
export type { ParsedLocation } from "./client/location";
export { decodeRecordBatches, encodeTable, readArrowSchema, registerArrowCompressionCodecs } from "./client/arrow-interop";
export type { EncodeTableOptions, RecordBatchLike, TableLike, SchemaLike, CodecRegistration, CompressionCodecsRegistration } from "./client/arrow-interop";
export { parseCli, usage, UsageError, CLI_FLAGS } from "./cli-options";
export type { CliSettings } from "./cli-options";

// ---- for middleware and transport authors ----
export { decodeFlightData, encodeFlightData, FlightDataDecodeError } from "./codec/flight-data-codec";
export type { WireFlightData } from "./codec/flight-data-codec";
export { flightServiceDefinition, FLIGHT_SERVICE_NAME } from "./codec/service-definition";
export { encapsulateMessage } from "./server/ipc-encapsulate";
export { TunedGrpcServer, DEFAULT_FLOW_CONTROL_WINDOW } from "./server/tuned-grpc-server";
export * as proto from "./gen/Flight";
export { sessionOptions, kSession, SESSION_COOKIE } from "./server/session-options";
export type { FlightSession, SessionOptionError, SessionOptionsConfig, SessionOptionValue } from "./server/session-options";
export { projectExchange } from "./server/project-exchange";
export type { ProjectExchangeOptions } from "./server/project-exchange";
