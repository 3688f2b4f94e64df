// The worker thread that decodes a DoGet's Arrow messages for FlightClient (see
// worker-decode.ts). It runs only as one of a client's DecoderThreads, which send it the
// messages of several streams (each tagged with its stream) and `{ reset }` when a stream ends;
// it answers each message, in order. The received bytes are untrusted: everything
// apache-arrow does with them (the header's layout, decompression, dictionaries) happens here,
// under the pool's time and memory limits, and the main thread gets back only messages whose
// decoding succeeded here, with 8-byte-aligned bodies, uncompressed.
import { parentPort } from "node:worker_threads";
import { MessageKind, readMessageHeader } from "@blackice/flight-core";
import type * as Arrow from "apache-arrow";
import { IpcMessageEncoder, loadArrow } from "./arrow-interop";
import { registerCompressionCodecs } from "./compression";
import { encapsulateMessage } from "../server/ipc-encapsulate";
import type { DecoderThreadMessage, DecoderThreadReply } from "./decoder-threads";

/** One IPC message of the stream (a Flight message's header and body), or the end of the stream. */
export type DecodeWorkerRequest = { readonly header: Uint8Array; readonly body: Uint8Array } | { readonly end: true };

/** A message for the main thread's reader, checked: `batch` when it is a record batch. */
export interface CheckedMessage {
  readonly header: Uint8Array;
  readonly body: Uint8Array;
  readonly batch: boolean;
}

/** The answer to a {@link DecodeWorkerRequest}: the messages to hand to the main thread's reader, in order. */
export type DecodeWorkerAnswer = CheckedMessage[];

const port = parentPort;
if (port === null) throw new Error("decode-worker.js runs in a worker thread started by FlightClient, not on its own");

const arrow = loadArrow();
const EMPTY = new Uint8Array(0);

/**
 * The bytes of one stream for apache-arrow's synchronous reader, fed a message at a time.
 * apache-arrow's byte source asks for one more chunk before it hands over a read that ends
 * exactly at the end of what it holds; with nothing pending that ask gets an empty chunk,
 * which it skips. A second ask in a row with nothing pending means the reader wants bytes
 * the stream has not sent (a header that claims more than its message holds): refused.
 */
class PendingBytes implements Iterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private emptyAsks = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength > 0) this.chunks.push(chunk);
  }

  end(): void {
    this.ended = true;
  }

  [Symbol.iterator](): Iterator<Uint8Array> {
    return {
      next: (): IteratorResult<Uint8Array> => {
        const chunk = this.chunks.shift();
        if (chunk !== undefined) {
          this.emptyAsks = 0;
          return { done: false, value: chunk };
        }
        if (this.ended) return { done: true, value: undefined };
        if (++this.emptyAsks > 1) throw new Error("a message is shorter than its header says");
        return { done: false, value: EMPTY };
      },
    };
  }
}

/** The state of one stream (one lease). */
class StreamDecoder {
  private readonly bytes = new PendingBytes();
  private reader: Arrow.RecordBatchStreamReader | undefined;
  private iterator: Iterator<Arrow.RecordBatch> | undefined;
  /**
   * Set from the first compressed message on: from then on every batch is sent to the main
   * thread re-encoded (uncompressed) by apache-arrow's writer, with the dictionaries it needs.
   */
  private encoder: IpcMessageEncoder | undefined;
  private codecsChecked = false;
  private batches = 0;

  message(header: Uint8Array, body: Uint8Array): DecodeWorkerAnswer {
    const info = readMessageHeader(header, body);
    if (info.compression !== undefined && !this.codecsChecked) {
      this.codecsChecked = true;
      if (registerCompressionCodecs(arrow).lz4Frame === "unavailable") {
        throw new Error(`the stream has batches compressed with ${info.compression.toUpperCase()}, and the host's apache-arrow cannot decode them (it has no compressionRegistry); upgrade apache-arrow to >= 21`);
      }
    }
    // apache-arrow copies a body that is not 8-byte aligned; doing it here makes that copy
    // ours, off the main thread, and the aligned body is what the main thread then reads.
    const aligned = body.byteOffset % 8 === 0 ? body : copy(body);
    // Prefix and header padded to a multiple of 8, so the body that follows keeps its alignment.
    const prefix = encapsulateMessage(header);
    this.bytes.push(prefix);
    this.bytes.push(aligned);

    if (info.kind === MessageKind.SCHEMA) {
      if (this.reader) throw new Error("a second schema message in the stream");
      this.reader = arrow.RecordBatchReader.from(this.bytes) as Arrow.RecordBatchStreamReader;
      this.reader.open();
      if (!this.reader.schema) throw new Error("the schema message could not be read");
      this.iterator = this.reader[Symbol.iterator]();
      return [{ header, body: EMPTY, batch: false }];
    }
    if (!this.reader || !this.iterator) throw new Error("the stream does not start with a schema message");
    if (info.compression !== undefined && !this.encoder) {
      this.encoder = new IpcMessageEncoder(arrow, this.reader.schema);
      this.encoder.start(); // the main thread's reader has the schema already
    }
    if (info.kind === MessageKind.DICTIONARY_BATCH) {
      // apache-arrow's reader takes a dictionary in when it reads the next record batch, which
      // is when a bad one fails. The main thread's reader gets a copy: this one keeps its own.
      return this.encoder ? [] : [{ header, body: copy(aligned), batch: false }];
    }
    if (info.kind !== MessageKind.RECORD_BATCH) throw new Error(`unexpected message type ${info.kind} in the stream`);
    const r = this.iterator.next();
    if (r.done) throw new Error("the reader ended before the record batch");
    this.batches++;
    if (!this.encoder) return [{ header, body: aligned, batch: true }];
    return this.encoder.write(r.value).map((m) => ({ header: m.dataHeader, body: m.dataBody as Uint8Array, batch: readMessageHeader(m.dataHeader).kind === MessageKind.RECORD_BATCH }));
  }

  /** The stream ended: a dictionary after the last batch is read (and checked) now. */
  end(): DecodeWorkerAnswer {
    this.bytes.end();
    if (this.iterator) {
      // For a stream without batches apache-arrow's reader makes up one empty batch.
      const r = this.iterator.next();
      if (!r.done && (this.batches > 0 || r.value.numRows > 0)) throw new Error("a record batch after the end of the stream");
    }
    return [];
  }
}

function copy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

/** Buffers that may be moved to the main thread: ones a body owns whole (not Node's shared pool). */
function transferable(answer: DecodeWorkerAnswer): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const m of answer) {
    const b = m.body.buffer;
    if (b instanceof ArrayBuffer && b.byteLength > Buffer.poolSize && m.body.byteLength > 0) out.add(b);
  }
  return [...out];
}

const streams = new Map<number, StreamDecoder>();

port.on("message", (m: DecoderThreadMessage<DecodeWorkerRequest>) => {
  if ("reset" in m) {
    streams.delete(m.stream);
    return;
  }
  let stream = streams.get(m.stream);
  if (stream === undefined) streams.set(m.stream, (stream = new StreamDecoder()));
  let reply: DecoderThreadReply<DecodeWorkerAnswer>;
  try {
    const req = m.request;
    reply = { id: m.id, ok: true, value: "end" in req ? stream.end() : stream.message(req.header, req.body) };
  } catch (err) {
    reply = { id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply, reply.ok ? transferable(reply.value) : []);
});

port.postMessage({ ready: true } satisfies DecoderThreadReply<DecodeWorkerAnswer>);
