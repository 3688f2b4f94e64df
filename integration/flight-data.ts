// apache-arrow JS record batches <-> Flight messages, through the public IPC helpers of
// @blackice/flight-core (splitIpcStream / joinIpcStream / readMessageHeader).

import * as arrow from "apache-arrow";
import { MessageKind, joinIpcStream, readMessageHeader, splitIpcStream, type Bytes, type FlightData } from "@blackice/flight-core";
import { encapsulateMessage } from "@blackice/flight/internal";
import { recordBatch } from "./json-reader";

const EMPTY = new Uint8Array(0);

/** The IPC stream of a schema and its batches (no batch: the schema alone). */
function ipcStream(schema: arrow.Schema, batches: readonly arrow.RecordBatch[]): Uint8Array {
  const writer = new arrow.RecordBatchStreamWriter();
  writer.reset(undefined, schema);
  for (const b of batches) writer.write(b);
  writer.finish();
  return writer.toUint8Array(true);
}

/** `FlightInfo.schema` / `SchemaResult.schema`: the schema message, IPC-encapsulated. */
export function schemaBytes(schema: arrow.Schema): Uint8Array {
  const [first] = splitIpcStream(ipcStream(schema, []), { maxMessages: 1 });
  return encapsulateMessage(first.header);
}

/**
 * The Flight messages of a stream: the schema, then each batch's dictionary batches and the
 * batch. `appMetadata(i)` is attached to record batch i's message only.
 */
export function toFlightData(
  schema: arrow.Schema,
  batches: readonly arrow.RecordBatch[],
  appMetadata?: (batchIndex: number) => Uint8Array | undefined,
): FlightData[] {
  const out: FlightData[] = [];
  let batch = 0;
  for (const { header, body } of splitIpcStream(ipcStream(schema, batches))) {
    const info = readMessageHeader(header, body);
    const meta = info.kind === MessageKind.RECORD_BATCH ? (appMetadata?.(batch++) ?? EMPTY) : EMPTY;
    out.push({ flightDescriptor: undefined, dataHeader: header, dataBody: body, appMetadata: meta });
  }
  return out;
}

/** A decoded Flight stream: its schema, exactly its record batches, and each batch's app_metadata. */
export interface DecodedStream {
  schema: arrow.Schema;
  batches: arrow.RecordBatch[];
  appMetadata: Uint8Array[];
  /** app_metadata of metadata-only messages (no IPC header), in order. */
  metadataOnly: Uint8Array[];
}

/**
 * Decodes received Flight messages with apache-arrow JS. Counts record batches from the
 * message headers, since apache-arrow's reader invents an empty batch for a schema-only stream.
 */
export function fromFlightData(messages: readonly FlightData[]): DecodedStream {
  const ipc: Array<{ header: Uint8Array; body: Bytes }> = [];
  const appMetadata: Uint8Array[] = [];
  const metadataOnly: Uint8Array[] = [];
  for (const m of messages) {
    if (m.dataHeader.length === 0) {
      metadataOnly.push(m.appMetadata);
      continue;
    }
    const info = readMessageHeader(m.dataHeader, m.dataBody);
    if (info.kind === MessageKind.RECORD_BATCH) appMetadata.push(m.appMetadata);
    ipc.push({ header: m.dataHeader, body: m.dataBody });
  }
  if (ipc.length === 0) throw new Error("the stream has no schema message");
  const reader = arrow.RecordBatchReader.from(joinIpcStream(ipc)).open() as arrow.RecordBatchStreamReader;
  const schema = reader.schema;
  const batches = appMetadata.length === 0 ? [] : [...reader].map((b) => recordBatch(schema, b.data));
  if (batches.length !== appMetadata.length) throw new Error(`decoded ${batches.length} record batches from ${appMetadata.length} record batch messages`);
  return { schema, batches, appMetadata, metadataOnly };
}

/** Reads a FlightInfo.schema (IPC-encapsulated schema message) with apache-arrow JS. */
export function readSchemaBytes(bytes: Uint8Array): arrow.Schema {
  if (bytes.length === 0) throw new Error("empty schema");
  const [first] = splitIpcStream(bytes, { maxMessages: 1 });
  return (arrow.RecordBatchReader.from(joinIpcStream([first])).open() as arrow.RecordBatchStreamReader).schema;
}
