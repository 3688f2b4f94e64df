import { FlightError, StatusCode, bytesFromChunks, type Bytes } from "@blackice/flight-core";

/** What the reader asks before it buffers a message: a grant for its declared length, or a refusal. */
export type ReserveFn = (index: number, length: number) => (() => void) | FlightError;

/** What {@link GrpcFrameReader} hands on for each complete message. */
export interface FramedMessage {
  /** Index of the message in the call, from 0. */
  readonly index: number;
  /** The message bytes, as views into the chunks they arrived in. */
  readonly bytes: Bytes;
  /** Gives back what was reserved for this message. Safe to call more than once. */
  readonly release: () => void;
}

/** Options of {@link GrpcFrameReader}. */
export interface GrpcFrameReaderOptions {
  /** Grants (or refuses) the declared length of message `index` before any of it is kept. */
  reserve: ReserveFn;
  onMessage: (message: FramedMessage) => void;
  /** Called once, with the reason the call's input cannot be read any further. */
  onError: (error: FlightError) => void;
}

/**
 * Parses gRPC length-prefixed messages out of the DATA chunks of one HTTP/2 stream, across
 * chunk boundaries. The 5-byte prefix is checked and the declared length reserved before a
 * single byte of the message is kept; the message is then kept as views into the chunks it
 * arrived in (no reassembly copy). Only a prefix that spans chunks is copied (5 bytes).
 *
 * Compressed messages (flag 1) are refused: the transport announces only `identity`.
 */
export class GrpcFrameReader {
  private readonly prefix = new Uint8Array(5);
  private prefixHave = 0;
  private expected = -1;
  private have = 0;
  private pieces: Uint8Array[] = [];
  private release: (() => void) | undefined;
  private index = 0;
  private failed = false;

  constructor(private readonly opts: GrpcFrameReaderOptions) {}

  /** Bytes of the message being received (part of a message, not yet handed on). */
  get partialBytes(): number {
    return this.have;
  }

  /** Whether the input ended between messages (as it must). */
  get atBoundary(): boolean {
    return this.prefixHave === 0 && this.expected < 0;
  }

  /** Feeds one DATA chunk. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.byteLength && !this.failed) {
      if (this.expected < 0) {
        const n = Math.min(5 - this.prefixHave, chunk.byteLength - pos);
        this.prefix.set(chunk.subarray(pos, pos + n), this.prefixHave);
        this.prefixHave += n;
        pos += n;
        if (this.prefixHave < 5) return;
        this.prefixHave = 0;
        if (!this.begin()) return;
        if (this.expected === 0) this.finish();
        continue;
      }
      const n = Math.min(this.expected - this.have, chunk.byteLength - pos);
      this.pieces.push(chunk.subarray(pos, pos + n));
      this.have += n;
      pos += n;
      if (this.have === this.expected) this.finish();
    }
  }

  /** Drops what is buffered and gives back its reservation (the call ended). */
  discard(): void {
    this.failed = true;
    this.pieces = [];
    this.have = 0;
    this.release?.();
    this.release = undefined;
  }

  private begin(): boolean {
    const flag = this.prefix[0]!;
    const length = ((this.prefix[1]! << 24) >>> 0) + (this.prefix[2]! << 16) + (this.prefix[3]! << 8) + this.prefix[4]!;
    if (flag !== 0) {
      return this.fail(
        new FlightError(
          flag === 1 ? StatusCode.INTERNAL : StatusCode.INVALID_ARGUMENT,
          flag === 1 ? "compressed message without a supported grpc-encoding (this server accepts identity only)" : `invalid gRPC frame flag ${flag}`,
        ),
      );
    }
    const grant = this.opts.reserve(this.index, length);
    if (grant instanceof FlightError) return this.fail(grant);
    this.release = grant;
    this.expected = length;
    this.have = 0;
    this.pieces = [];
    return true;
  }

  private finish(): void {
    const release = this.release ?? (() => undefined);
    let released = false;
    const message: FramedMessage = {
      index: this.index++,
      bytes: bytesFromChunks(this.pieces),
      release: () => {
        if (!released) {
          released = true;
          release();
        }
      },
    };
    this.release = undefined;
    this.pieces = [];
    this.expected = -1;
    this.have = 0;
    this.opts.onMessage(message);
  }

  private fail(err: FlightError): false {
    this.failed = true;
    this.pieces = [];
    this.opts.onError(err);
    return false;
  }
}
