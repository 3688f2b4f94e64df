// @blackice/flight-core: storage, the middleware type, FlightError and context keys.
// No gRPC here.

// ---- for server users ----
export { FlightError, invalidArgument, notFound, resourceExhausted } from "./flight-error";
export { StatusCode, statusCodeName } from "./status-code";
export { DescriptorType } from "./flight-types";
export type {
  Action,
  ActionType,
  Criteria,
  Empty,
  FlightData,
  FlightDescriptor,
  FlightEndpoint,
  FlightInfo,
  HandshakeRequest,
  HandshakeResponse,
  Location,
  PollInfo,
  PutResult,
  Result,
  SchemaResult,
  Ticket,
} from "./flight-types";
export {
  defineAction,
  defineExchange,
  onLifecycle,
  serverConfig,
  serverParts,
  settingsOf,
  splitServerParts,
  statsSection,
  withStore,
  wrapStore,
} from "./server-parts";
export type {
  ActionSetting,
  ConfigSetting,
  ExchangeHandler,
  ExchangeSetting,
  FlightServerConfig,
  LifecycleSetting,
  ServerPart,
  ServerParts,
  ServerSetting,
  StatsSetting,
  ServerSetup,
  StoreSetting,
  StoreWrapperSetting,
  TlsSetting,
} from "./server-parts";
export { parseDuration, parseSize } from "./units";
export { ADMIN_ROLE, hasRole, identityOf, isOperator, kAuthenticationConfigured, kIdentity } from "./identity";
export type { Identity, IdentityClaims } from "./identity";
export { ByteChunks, BytesReader, bytesFromChunks, chunksOf, contiguous, retainedBytes } from "./byte-chunks";
export type { Bytes } from "./byte-chunks";
export { descriptorKey, descriptorFromKey, pathPrefixMatcher, ticketFromKey, ticketToKey } from "./store/descriptor-key";
export { MemoryStore, MESSAGE_STATS_SLOT_BYTES, defaultSchemasEqual, structuralSchemasEqual, DEFAULT_MAX_MEMORY_BYTES, DEFAULT_GC_INTERVAL_MS, MAX_TTL_MS, FLIGHT_OVERHEAD_BYTES, flightOverheadBytes } from "./store/memory-store";
export type { MemoryStoreOptions, MemoryStoreStats, SchemaComparator } from "./store/memory-store";
export { DiskStore, diskStore, DEFAULT_FSYNC_INTERVAL_MS } from "./store/disk-store";
export type { DiskStoreOptions, DiskStoreStats, FsyncPolicy } from "./store/disk-store";
export type { RecoveryReport } from "./store/disk-recovery";
export { ReadLease } from "./store/read-lease";
export type { MessageReadOptions } from "./store/read-lease";
export { isFlightStore, offersGc, offersMemoryLimit, offersTtl } from "./store/flight-store";
export type {
  FlightStore,
  GcReport,
  PutOptions,
  PutTransaction,
  StoreDiskStats,
  StoreGc,
  StoreGcStats,
  StoreMemoryLimit,
  StoreMemoryStats,
  StoreStats,
  StoreTtl,
  StoreTtlStats,
  StoredFlight,
  MessageStats,
} from "./store/flight-store";

// ---- for middleware authors ----
export {
  MAX_TIMER_MS,
  checkArray,
  checkBoolean,
  checkByteArray,
  checkDuration,
  checkEnum,
  checkEnumArray,
  checkFunction,
  checkImplements,
  checkInt,
  checkIntArray,
  checkName,
  checkObject,
  checkNumber,
  checkNumberIn,
  checkOptionalInt,
  checkOptions,
  checkPattern,
  checkString,
  checkStringArray,
  describeValue,
} from "./option-checks";
export { CallContext, createContextKey } from "./context";
export type { ContextKey } from "./context";
export { FLIGHT_METHODS, STREAMING_REQUEST_METHODS, STREAMING_RESPONSE_METHODS, composeMiddleware } from "./middleware";
export type {
  CallHeaders,
  CallInfo,
  FlightCall,
  FlightHandler,
  FlightMethod,
  FlightMiddleware,
  FlightRequests,
  FlightResponse,
  FlightResponses,
  PeerCertificateInfo,
} from "./middleware";
export { MessageKind } from "./ipc/ipc-message";
export { readMessageHeader, declaredUncompressedBytes, MetadataVersion, CompressionCodec } from "./ipc/message-header";
export { readSchema } from "./ipc/schema-info";
export { describeSchemaDifference } from "./ipc/schema-difference";
export { formatArrowType } from "./ipc/arrow-type-format";
export { ArrowTypeId, MAX_NESTING_DEPTH } from "./ipc/arrow-schema";
export type { SchemaInfo, FieldInfo, ArrowTypeInfo, ArrowUnit, DictionaryEncodingInfo, DictionaryInfo } from "./ipc/arrow-schema";
export { IpcStreamValidator, readSchemaFrom, DEFAULT_MAX_MESSAGE_BYTES } from "./ipc/stream-validator";
export type { IpcStreamValidatorOptions } from "./ipc/stream-validator";
export { splitIpcStream, joinIpcStream, ipcMessagePrefix, ipcEndOfStream } from "./ipc/ipc-stream";
export { xxh32 } from "./ipc/xxh32";
export type { IpcMessageBytes } from "./ipc/ipc-stream";
export type { MessageHeaderInfo, StoredMessage } from "./ipc/ipc-message";
export type { CallSigner, SignableCall, SignedStream, StreamSealer } from "./call-signer";
export { projectIpcSchema, MAX_PROJECTED_COLUMNS } from "./ipc/ipc-projection";
export type { IpcProjection, IpcMessageParts } from "./ipc/ipc-projection";
export {
  parseQueryCommand,
  encodeQueryTicket,
  parseQueryTicket,
  isQueryTicket,
  readTarget,
  readTicketTarget,
  readTargets,
  readTicketTargets,
  MAX_QUERY_WHERE_LENGTH,
  MAX_QUERY_LIMIT,
  QUERY_KEYS,
  RESERVED_QUERY_KEYS,
  QUERY_TICKET_PREFIX,
  MAX_QUERY_TICKET_BYTES,
  MAX_QUERY_COLUMN_NAME,
} from "./query/query-command";
export type { QueryCommand, QueryTicket, QueryReadTarget } from "./query/query-command";
export { sqlTables, sqlTableName, sqlTablePath, sqlTableDescriptor, quoteSqlIdentifier, checkWhereExpression, MAX_SQL_LENGTH, MAX_SQL_TABLES } from "./query/sql-tables";
export type { SqlTableRef } from "./query/sql-tables";
export { bindSqlParameters, sqlParameterCount, MAX_SQL_PARAMETERS } from "./query/sql-parameters";
export type { SqlParameterValue } from "./query/sql-parameters";
export { computeBatchStats, hasBatchStats, batchStatsBytes, batchStatsBytesBound } from "./ipc/batch-stats";
export type { BatchStats, ColumnStats } from "./ipc/batch-stats";
export { selectBatches, prunedMessages, mayMatch, kBatchPruning } from "./query/batch-pruning";
export type { BatchSelection, BatchPruningRequest, RangeOp, RangePredicate } from "./query/batch-pruning";
export { rangePredicatesOf, timestampLiteral } from "./query/where-predicates";
