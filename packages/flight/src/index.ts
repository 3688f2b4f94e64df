// @blackice/flight: the Arrow Flight server (gRPC on node:http2) and client (@grpc/grpc-js).
// What a transport author needs (the transport, the wire codecs, the method table) is in
// "@blackice/flight/internal" (src/internal.ts), not here.

// ---- for server users ----
export { createFlightServer, DEFAULT_CONFIG, DEFAULT_FLOW_CONTROL_WINDOW, MAX_COUNTED_SUBJECTS, MAX_MESSAGE_BYTES_LIMIT } from "./server/create-flight-server";
export type { FlightServer, ServingStatus } from "./server/create-flight-server";
export { MESSAGE_OVERHEAD_BYTES } from "./server/store-handler";
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
  ReadTarget,
  RequestSource,
  TicketInput,
} from "./client/flight-client";
export type { ChannelPoolOptions, ChannelPoolStats } from "./client/channel-pool";
export type { DecoderOptions } from "./client/worker-decode";
export { BatchWriter } from "./client/batch-writer";
export type { BatchWriterFailure, BatchWriterInput, BatchWriterOptions, BatchWriterRetryOptions, BatchWriterStats, RowRange, WrittenBatch } from "./client/batch-writer";
export type { Row } from "./client/row-batcher";
export { pathDescriptor, cmdDescriptor } from "./client/descriptors";
export { cookieMiddleware } from "./client/client-middleware";
export { traceContext } from "./client/trace-context";
export type { TraceContextOptions } from "./client/trace-context";
export type { ClientCallInfo, ClientCallMiddleware, ClientCallStatus, ClientMiddleware, CookieMiddleware, OutgoingHeaders, ReceivedMetadata } from "./client/client-middleware";
export { parseLocation } from "./client/location";
export type { ParsedLocation } from "./client/location";
export { decodeRecordBatches, encodeTable, IpcMessageEncoder, readArrowSchema, registerArrowCompressionCodecs } from "./client/arrow-interop";
export type { EncodeTableOptions, RecordBatchLike, TableLike, SchemaLike, CodecRegistration, CompressionCodecsRegistration } from "./client/arrow-interop";

export { ARROW_STREAM_TYPE } from "./server/http-arrow-routes";
export { sessionOptions, kSession, SESSION_COOKIE } from "./server/session-options";
export type { FlightSession, SessionOptionError, SessionOptionsConfig, SessionOptionValue } from "./server/session-options";
export { projectExchange } from "./server/project-exchange";
/** The Flight SQL protobuf messages (proto/FlightSql.proto), for clients that build commands by hand. */
export * as flightSqlProto from "./gen/FlightSql";
export { flightSql, DEFAULT_FLIGHT_SQL_DB_SCHEMA } from "./server/flight-sql";
export type { FlightSqlOptions } from "./server/flight-sql";
export { encodeFlightSql, packFlightSql, unpackFlightSql, FLIGHT_SQL_TYPE_PREFIX } from "./server/flight-sql-any";
export type { FlightSqlMessage, FlightSqlMessageName, FlightSqlMessages } from "./server/flight-sql-any";
export type { ProjectExchangeOptions } from "./server/project-exchange";
export { query } from "./server/query";
export { flightHandlers, describeFlight } from "./server/flight-handlers";
export type { FlightHandlers, FlightDataSource, FlightInfoSource, FlightDescription } from "./server/flight-handlers";
export type { QueryOptions } from "./server/query";
export * as proto from "./gen/Flight";
export type { EngineRequest, EngineResult, EngineTable, EngineTableSchema, QueryEngine, QueryEngineStats } from "./query/query-engine";
export { createQueryEngine } from "./query/engine-pool";
export type { QueryEngineOptions } from "./query/engine-pool";
