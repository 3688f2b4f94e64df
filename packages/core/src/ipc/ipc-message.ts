import type { Bytes } from "../byte-chunks";

/** The Arrow IPC `MessageHeader` union tag values this server distinguishes. */
export const MessageKind = { SCHEMA: 1, DICTIONARY_BATCH: 2, RECORD_BATCH: 3 } as const;
/** One of {@link MessageKind}. */
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

/**
 * What the server reads from one IPC message's flatbuffer header, and nothing more.
 * Produced by `readMessageHeader`, which validates it against the body it was given.
 */
export interface MessageHeaderInfo {
  /** Schema, dictionary batch or record batch. */
  kind: MessageKind;
  /** The metadata version in the header (V4 = 3, V5 = 4). */
  version: number;
  /** `Message.bodyLength`; equals the body's byte length after validation. */
  bodyLength: number;
  /** Row count of a record batch or dictionary batch; 0 for a schema. */
  rows: number;
  /** The dictionary id of a dictionary batch. */
  dictionaryId?: bigint;
  /** Whether a dictionary batch is a delta. */
  isDelta?: boolean;
  /**
   * The codec a batch's buffers are compressed with (`RecordBatch.compression`); absent when
   * the body is not compressed. Lets a server tell whether serving decoded data needs a codec.
   */
  compression?: "lz4_frame" | "zstd";
}

/**
 * One stored IPC message, kept as received: the flatbuffer header bytes, the body (one
 * array or the chunks it arrived in, see {@link Bytes}) and the Flight `app_metadata`.
 * The three parts are all there is: the binding frames them again on the way out, so
 * nothing that was not validated is ever served.
 */
export interface StoredMessage {
  readonly header: Uint8Array;
  readonly body: Bytes;
  readonly appMetadata: Uint8Array;
  readonly info: MessageHeaderInfo;
  /**
   * Bytes this message keeps alive: every backing buffer its parts are views into, counted
   * whole, plus a fixed per-message overhead (see `retainedBytes`).
   */
  readonly byteSize: number;
}
