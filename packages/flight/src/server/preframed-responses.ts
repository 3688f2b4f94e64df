// grpc-js frames every outgoing message by copying it behind a 5-byte prefix
// (BaseServerInterceptingCall.serializeMessage). For DoGet that copy undoes the zero-copy
// codec and dominates the profile (docs/benchmarks.md, F1). A message stored from a DoPut
// is a view at offset 5 of the buffer grpc-js built when it received it, so the prefix it
// needs is usually already in memory, just before the view. This module, the second and
// last place that reaches into grpc-js, lets such messages go out without the copy.
//
// Safety: only values carrying the PREFRAMED symbol are considered (set by the store
// handler on stored messages, never by other grpc-js users in the process), the five bytes
// are checked to be exactly [0, length as big-endian u32] — the frame grpc-js would write —
// and stored messages are never mutated. Anything else takes grpc-js's own path.
import type { WireFlightData } from "../codec/flight-data-codec";

/** Marks a response whose `wire` bytes may be sent with the frame prefix found before them. */
export const PREFRAMED: unique symbol = Symbol("blackice.preframed");

/** Marks a chunk of several already framed messages, written to the stream as one. */
export const PREFRAMED_CHUNK: unique symbol = Symbol("blackice.preframedChunk");

/** Several complete gRPC frames (prefix + message each), sent with one grpc-js write. */
export interface PreframedChunk {
  readonly [PREFRAMED_CHUNK]: Buffer;
}

/** A response message eligible for the pre-framed path. */
export type PreframedFlightData = WireFlightData & { [PREFRAMED]?: true };

interface SerializingCall {
  serializeMessage(value: unknown): Buffer;
}

let installed: boolean | undefined;
let hits = 0;

/** The framed bytes of `value` without a copy, or undefined when the prefix is not in place. */
export function preframedBytes(value: PreframedFlightData): Buffer | undefined {
  const wire = value[PREFRAMED] && !value.flightDescriptor ? value.wire : undefined;
  if (!wire || wire.byteOffset < 5) return undefined;
  const len = wire.byteLength;
  const prefix = new Uint8Array(wire.buffer, wire.byteOffset - 5, 5);
  if (prefix[0] !== 0 || prefix[1] !== len >>> 24 || prefix[2] !== ((len >>> 16) & 0xff) || prefix[3] !== ((len >>> 8) & 0xff) || prefix[4] !== (len & 0xff)) {
    return undefined;
  }
  return Buffer.from(wire.buffer, wire.byteOffset - 5, len + 5);
}

/**
 * Installs the pre-framed path into grpc-js once per process. Returns false when this
 * grpc-js version has no `BaseServerInterceptingCall.serializeMessage` (then every message
 * takes the copying path; `preframed-responses.test.ts` fails so the upgrade is noticed).
 */
export function installPreframedResponses(): boolean {
  if (installed !== undefined) return installed;
  let proto: SerializingCall | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    proto = require("@grpc/grpc-js/build/src/server-interceptors").BaseServerInterceptingCall?.prototype;
  } catch {
    proto = undefined;
  }
  if (!proto || typeof proto.serializeMessage !== "function") return (installed = false);
  const copying = proto.serializeMessage;
  proto.serializeMessage = function serializeMessagePreframed(this: unknown, value: unknown): Buffer {
    if (value !== null && typeof value === "object" && (value as PreframedChunk)[PREFRAMED_CHUNK]) {
      hits++;
      return (value as PreframedChunk)[PREFRAMED_CHUNK];
    }
    if (value !== null && typeof value === "object" && (value as PreframedFlightData)[PREFRAMED]) {
      const framed = preframedBytes(value as PreframedFlightData);
      if (framed) {
        hits++;
        return framed;
      }
    }
    return copying.call(this, value);
  };
  return (installed = true);
}

/** How many messages went out without the framing copy (for tests and benchmarks). */
export function preframedHits(): number {
  return hits;
}

/**
 * Serializes and frames small messages itself and hands grpc-js chunks of about `chunkBytes`,
 * so that a response of many small messages (ListFlights over 100k flights) costs one
 * stream write per chunk instead of one per message. The client sees the same messages.
 * Only for sources that produce their items without waiting (a chunk is sent when full or
 * when the source ends), and only when {@link installPreframedResponses} succeeded.
 */
export async function* coalesceFramed(source: AsyncIterable<unknown>, serialize: (value: never) => Buffer, chunkBytes = 64 * 1024): AsyncGenerator<PreframedChunk> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const value of source) {
    const body = serialize(value as never);
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(body.byteLength, 1);
    parts.push(prefix, body);
    size += body.byteLength + 5;
    if (size >= chunkBytes) {
      yield { [PREFRAMED_CHUNK]: Buffer.concat(parts, size) };
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield { [PREFRAMED_CHUNK]: Buffer.concat(parts, size) };
}
