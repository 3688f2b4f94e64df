// Decoders for Arrow IPC body compression (LZ4_FRAME and ZSTD), registered with apache-arrow's
// `compressionRegistry` (apache-arrow >= 21), so that record batches sent compressed decode to
// their values. Decoding only: registering an encoder would make apache-arrow check it by
// compressing, and the client never writes compressed batches.

import { decompress as zstdDecompress } from "fzstd";
import { decodeLz4Frames } from "./lz4-frame";

/** `CompressionType` values of the Arrow format (`Message.fbs`). */
export const CompressionCodecId = { LZ4_FRAME: 0, ZSTD: 1 } as const;

/** A codec as apache-arrow's `compressionRegistry` holds it. */
export interface CodecLike {
  encode?(data: Uint8Array): Uint8Array;
  decode?(data: Uint8Array): Uint8Array;
}

/** What is used of apache-arrow's `compressionRegistry`. */
interface RegistryLike {
  get(compression: number): CodecLike | null | undefined;
  set(compression: number, codec: CodecLike): void;
}

/**
 * What became of one codec when the compression codecs were registered (`registerArrowCompressionCodecs`):
 * - `"registered"`: this package's decoder is now the codec's (an encoder the app had
 *   registered for it alone is kept);
 * - `"kept"`: the app had registered a decoder, which stays;
 * - `"unavailable"`: this apache-arrow has no `compressionRegistry` (before 21), so it cannot
 *   decode compressed record batches at all.
 */
export type CodecRegistration = "registered" | "kept" | "unavailable";

/** The outcome of registering the compression codecs (`registerArrowCompressionCodecs`), by codec. */
export interface CompressionCodecsRegistration {
  lz4Frame: CodecRegistration;
  zstd: CodecRegistration;
}

/**
 * apache-arrow views a decompressed buffer in place as the column's typed array
 * (a BigInt64Array, a Float64Array...), which must start at a multiple of its element size.
 * A decoder's output that does not start at a multiple of 8 is copied once.
 */
function aligned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
}

/** Decodes one ZSTD-compressed Arrow buffer. */
export function decodeZstdBuffer(data: Uint8Array): Uint8Array {
  let out: Uint8Array;
  try {
    out = zstdDecompress(data);
  } catch (err) {
    throw new Error(`ZSTD: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  // fzstd hands out a view 12 bytes into its window buffer.
  return aligned(out);
}

function registryOf(arrow: unknown): RegistryLike | undefined {
  const registry = (arrow as { compressionRegistry?: Partial<RegistryLike> } | null | undefined)?.compressionRegistry;
  return registry && typeof registry.get === "function" && typeof registry.set === "function" ? (registry as RegistryLike) : undefined;
}

function registerOne(registry: RegistryLike, compression: number, decode: (data: Uint8Array) => Uint8Array): CodecRegistration {
  const existing = registry.get(compression);
  if (typeof existing?.decode === "function") return "kept";
  if (existing && typeof existing.encode === "function") {
    // The app registered an encoder only: it stays the encoder (apache-arrow checks it once
    // more, by compressing 8 bytes with it), and decoding is added.
    const host = existing;
    registry.set(compression, { encode: (data) => host.encode!(data), decode });
  } else {
    registry.set(compression, { decode });
  }
  return "registered";
}

/**
 * Registers the LZ4_FRAME and ZSTD decoders with `arrow`'s `compressionRegistry`, leaving a
 * decoder the app registered in place.
 */
export function registerCompressionCodecs(arrow: unknown): CompressionCodecsRegistration {
  const registry = registryOf(arrow);
  if (!registry) return { lz4Frame: "unavailable", zstd: "unavailable" };
  return {
    lz4Frame: registerOne(registry, CompressionCodecId.LZ4_FRAME, decodeLz4Frames),
    zstd: registerOne(registry, CompressionCodecId.ZSTD, decodeZstdBuffer),
  };
}
