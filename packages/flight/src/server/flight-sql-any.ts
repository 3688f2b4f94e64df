import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { FlightError, StatusCode } from "@blackice/flight-core";
import * as sql from "../gen/FlightSql";

/** The type URL prefix of every Flight SQL message packed in a `google.protobuf.Any`. */
export const FLIGHT_SQL_TYPE_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql.";

/**
 * The Flight SQL messages the server understands, by name (the type URL after the prefix).
 * A message of another name under the prefix is a Flight SQL command this server does not
 * implement (UNIMPLEMENTED); bytes that are not an Any under the prefix are not Flight SQL.
 */
interface Codec<T> {
  encode(message: T): BinaryWriter;
  decode(input: Uint8Array): T;
}

/** The message type of each name. */
export interface FlightSqlMessages {
  CommandGetSqlInfo: sql.CommandGetSqlInfo;
  CommandGetCatalogs: sql.CommandGetCatalogs;
  CommandGetDbSchemas: sql.CommandGetDbSchemas;
  CommandGetTables: sql.CommandGetTables;
  CommandGetTableTypes: sql.CommandGetTableTypes;
  CommandStatementQuery: sql.CommandStatementQuery;
  CommandPreparedStatementQuery: sql.CommandPreparedStatementQuery;
  CommandStatementIngest: sql.CommandStatementIngest;
  TicketStatementQuery: sql.TicketStatementQuery;
  ActionCreatePreparedStatementRequest: sql.ActionCreatePreparedStatementRequest;
  ActionClosePreparedStatementRequest: sql.ActionClosePreparedStatementRequest;
  ActionCreatePreparedStatementResult: sql.ActionCreatePreparedStatementResult;
  DoPutUpdateResult: sql.DoPutUpdateResult;
  DoPutPreparedStatementResult: sql.DoPutPreparedStatementResult;
}

const CODECS: { [N in keyof FlightSqlMessages]: Codec<FlightSqlMessages[N]> } = {
  CommandGetSqlInfo: sql.CommandGetSqlInfo,
  CommandGetCatalogs: sql.CommandGetCatalogs,
  CommandGetDbSchemas: sql.CommandGetDbSchemas,
  CommandGetTables: sql.CommandGetTables,
  CommandGetTableTypes: sql.CommandGetTableTypes,
  CommandStatementQuery: sql.CommandStatementQuery,
  CommandPreparedStatementQuery: sql.CommandPreparedStatementQuery,
  CommandStatementIngest: sql.CommandStatementIngest,
  TicketStatementQuery: sql.TicketStatementQuery,
  ActionCreatePreparedStatementRequest: sql.ActionCreatePreparedStatementRequest,
  ActionClosePreparedStatementRequest: sql.ActionClosePreparedStatementRequest,
  ActionCreatePreparedStatementResult: sql.ActionCreatePreparedStatementResult,
  DoPutUpdateResult: sql.DoPutUpdateResult,
  DoPutPreparedStatementResult: sql.DoPutPreparedStatementResult,
};

/** The name of a Flight SQL message this server decodes. */
export type FlightSqlMessageName = keyof FlightSqlMessages;
type MessageOf<N extends FlightSqlMessageName> = FlightSqlMessages[N];

/** A decoded Flight SQL message, told apart by its name. */
export type FlightSqlMessage = { [N in FlightSqlMessageName]: { readonly name: N; readonly message: MessageOf<N> } }[FlightSqlMessageName];

/** An Any under the Flight SQL prefix whose message this server does not implement. */
export interface UnknownFlightSqlMessage {
  readonly name: string;
  readonly message: undefined;
}

/**
 * Reads a `google.protobuf.Any` (type_url = 1, value = 2). Hand-written on the generated
 * code's wire reader: the Any is two fields, and generating google/protobuf/any.proto would
 * bring a second copy of the same reader. Returns undefined for bytes that are not an Any.
 */
export function readAny(bytes: Uint8Array): { typeUrl: string; value: Uint8Array } | undefined {
  // An Any starts with its type_url (field 1, length-delimited: tag 0x0a); a quick refusal for
  // everything else (JSON query commands, store keys, paths).
  if (bytes.byteLength < 2 || bytes[0] !== 0x0a) return undefined;
  try {
    const reader = new BinaryReader(bytes);
    let typeUrl: string | undefined;
    let value: Uint8Array = new Uint8Array(0);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      if (field === 1 && (tag & 7) === 2) typeUrl = reader.string();
      else if (field === 2 && (tag & 7) === 2) value = reader.bytes();
      else reader.skip(tag & 7);
    }
    return typeUrl === undefined ? undefined : { typeUrl, value };
  } catch {
    return undefined;
  }
}

/**
 * Encodes a Flight SQL message as it is, without an Any: how DoPutUpdateResult and
 * DoPutPreparedStatementResult travel in PutResult.app_metadata.
 */
export function encodeFlightSql<N extends FlightSqlMessageName>(name: N, message: MessageOf<N>): Uint8Array {
  return (CODECS[name] as Codec<MessageOf<N>>).encode(message).finish();
}

/** Packs a Flight SQL message in an Any (commands, tickets, action bodies and action results). */
export function packFlightSql<N extends FlightSqlMessageName>(name: N, message: MessageOf<N>): Uint8Array {
  const codec = CODECS[name] as Codec<MessageOf<N>>;
  return new BinaryWriter().uint32(0x0a).string(FLIGHT_SQL_TYPE_PREFIX + name).uint32(0x12).bytes(codec.encode(message).finish()).finish();
}

/**
 * Unpacks bytes that may hold a Flight SQL message in an Any: undefined when they do not
 * (not an Any, or another type URL), `{ name, message: undefined }` for a Flight SQL message
 * this server does not implement, and the decoded message otherwise. A message that does not
 * decode is INVALID_ARGUMENT naming it.
 */
export function unpackFlightSql(bytes: Uint8Array): FlightSqlMessage | UnknownFlightSqlMessage | undefined {
  const any = readAny(bytes);
  if (any === undefined || !any.typeUrl.startsWith(FLIGHT_SQL_TYPE_PREFIX)) return undefined;
  const name = any.typeUrl.slice(FLIGHT_SQL_TYPE_PREFIX.length);
  if (!Object.prototype.hasOwnProperty.call(CODECS, name)) return { name, message: undefined };
  const codec = CODECS[name as FlightSqlMessageName] as Codec<unknown>;
  try {
    return { name, message: codec.decode(any.value) } as FlightSqlMessage;
  } catch (err) {
    throw new FlightError(StatusCode.INVALID_ARGUMENT, `malformed Flight SQL ${name}: ${(err as Error).message}`);
  }
}
