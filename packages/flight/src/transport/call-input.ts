import { FlightError, StatusCode, invalidArgument } from "@blackice/flight-core";
import { GrpcFrameReader, type FramedMessage } from "./grpc-frame-reader";
import type { ByteBudget } from "./byte-budget";
import type { TransportLimits, TransportMethod } from "./transport";

/** What {@link CallInput} needs from the stream it reads. */
export interface CallInputOptions {
  /** Largest message of this method, bytes. */
  maxMessageBytes: number;
  /** Largest first message (before the handler asked for a second one), bytes. */
  maxFirstMessageBytes: number;
  inFlight: ByteBudget;
  preAuth: ByteBudget;
  /** Bytes of complete messages read ahead of the handler before the stream is paused. */
  readAheadBytes: number;
  /** A consumer waiting this long without a byte arriving fails with DEADLINE_EXCEEDED, ms (0 = never). */
  idleTimeoutMs: number;
  /** Whether the method takes a stream of requests (else exactly one). */
  clientStreaming: boolean;
  pause(): void;
  resume(): void;
  /** Ends the call at once with this error (limits, malformed framing, idle). */
  fail(err: FlightError): void;
  /** Resolves when everything the peer sent before now was processed (a PING round trip). */
  settle(): Promise<void>;
  /** Whether the client reset the stream (checked after settle). */
  wasReset(): boolean;
}

const resourceExhausted = (msg: string): FlightError => new FlightError(StatusCode.RESOURCE_EXHAUSTED, msg);

/** What a transport knows of a call's request limits: the server-wide ones and the budgets. */
export interface CallLimitsSource {
  readonly limits: TransportLimits;
  readonly inFlight: ByteBudget;
  readonly preAuth: ByteBudget;
  readonly readAheadBytes: number;
}

/**
 * The limits and budgets of one call's input, the same for every way a call arrives (gRPC,
 * gRPC-Web): the method's message limit capped by the server's, and the server-wide budgets.
 */
export function callInputLimits(
  method: TransportMethod,
  ctx: CallLimitsSource,
): Pick<CallInputOptions, "maxMessageBytes" | "maxFirstMessageBytes" | "inFlight" | "preAuth" | "readAheadBytes" | "idleTimeoutMs"> {
  return {
    maxMessageBytes: Math.min(method.maxRequestBytes, ctx.limits.maxMessageBytes),
    maxFirstMessageBytes: ctx.limits.maxFirstMessageBytes,
    inFlight: ctx.inFlight,
    preAuth: ctx.preAuth,
    readAheadBytes: ctx.readAheadBytes,
    idleTimeoutMs: ctx.limits.callIdleTimeoutMs,
  };
}

/**
 * The request side of one call: frames parsed as DATA arrives, each message's declared length
 * reserved before it is buffered, and messages handed to the handler one at a time.
 *
 * Accounting:
 * - message `i` is reserved against the server-wide in-flight budget (and, for the first
 *   message, the pre-authentication budget) from its length prefix until the handler asks
 *   for message `i + 1` or the call ends, so the budget covers every message being received,
 *   waiting, or being processed;
 * - before the handler asks for a second message (that is, before the middleware chain has
 *   accepted the first), the stream is paused, so an unauthenticated caller holds at most
 *   its first message and what its HTTP/2 window lets it send;
 * - after that, the stream is paused whenever complete messages of `readAheadBytes` wait for
 *   the handler, so flow control follows the consumer.
 */
export class CallInput {
  private readonly reader: GrpcFrameReader;
  private readonly queue: FramedMessage[] = [];
  private queuedBytes = 0;
  private delivered: FramedMessage | undefined;
  private received = 0;
  private pulls = 0;
  private ended = false;
  private failure: FlightError | undefined;
  private waiter: (() => void) | undefined;
  private paused = false;
  private closed = false;
  private lastDataAt = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: CallInputOptions) {
    this.reader = new GrpcFrameReader({
      reserve: (index, length) => this.reserve(index, length),
      onMessage: (m) => {
        this.received++;
        if (!opts.clientStreaming && this.received > 1) {
          m.release();
          this.error(invalidArgument("a unary request must be exactly one message"));
          return;
        }
        this.queue.push(m);
        this.queuedBytes += m.bytes.byteLength;
        this.wake();
        this.flow();
      },
      onError: (err) => this.error(err),
    });
  }

  /** Feeds one DATA chunk of the stream. */
  push(chunk: Buffer): void {
    if (this.closed) return;
    this.lastDataAt = performance.now();
    this.reader.push(chunk);
  }

  /** The client ended its side of the stream. */
  end(): void {
    if (this.closed) return;
    if (!this.reader.atBoundary) {
      this.error(invalidArgument("the request stream ended inside a message"));
      return;
    }
    this.ended = true;
    this.wake();
  }

  /** The call is over: gives back every reservation and drops what is buffered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.discard();
    this.delivered?.release();
    this.delivered = undefined;
    for (const m of this.queue.splice(0)) m.release();
    this.queuedBytes = 0;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.wake();
    if (this.paused) {
      this.paused = false;
      this.opts.resume();
    }
  }

  /**
   * The next request message (its bytes, for the method to decode), or undefined at the end
   * of a client stream. Gives back the previous message's reservation first.
   */
  async next(): Promise<FramedMessage | undefined> {
    this.delivered?.release();
    this.delivered = undefined;
    this.pulls++;
    this.flow();
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.closed) throw new FlightError(StatusCode.CANCELLED, "call ended");
      const m = this.queue.shift();
      if (m) {
        this.queuedBytes -= m.bytes.byteLength;
        this.delivered = m;
        this.flow();
        return m;
      }
      if (this.ended) {
        if (this.opts.clientStreaming) {
          // A grpc-js client cancels by ending its side and then resetting the stream; both
          // look like a normal end until the reset is read. A PING round trip guarantees
          // that any reset sent before it has been processed.
          await this.opts.settle();
          if (this.opts.wasReset()) throw new FlightError(StatusCode.CANCELLED, "the client cancelled the call");
        }
        return undefined;
      }
      await this.wait();
    }
  }

  private reserve(index: number, length: number): (() => void) | FlightError {
    const first = index === 0;
    const limit = first ? Math.min(this.opts.maxFirstMessageBytes, this.opts.maxMessageBytes) : this.opts.maxMessageBytes;
    if (length > limit) {
      return resourceExhausted(
        `${first ? "first message" : "message"} of ${length} bytes is over the limit of ${limit} bytes${first && limit < this.opts.maxMessageBytes ? " (a call's first message is read before it is authorized)" : ""}`,
      );
    }
    const { inFlight, preAuth } = this.opts;
    if (first && !preAuth.tryReserve(length)) return resourceExhausted("the server is receiving too many new calls; retry later");
    if (!inFlight.tryReserve(length)) {
      if (first) preAuth.release(length);
      return resourceExhausted("the server is receiving too much data at once; retry later");
    }
    return () => {
      inFlight.release(length);
      if (first) preAuth.release(length);
    };
  }

  private error(err: FlightError): void {
    if (this.failure || this.closed) return;
    this.failure = err;
    this.wake();
    this.opts.fail(err);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
      this.armIdle();
    });
  }

  private armIdle(): void {
    const idle = this.opts.idleTimeoutMs;
    if (idle <= 0 || this.idleTimer) return;
    const check = (): void => {
      this.idleTimer = undefined;
      if (this.closed || !this.waiter) return;
      const quiet = performance.now() - this.lastDataAt;
      if (quiet >= idle) {
        this.error(new FlightError(StatusCode.DEADLINE_EXCEEDED, `no request data for ${Math.round(quiet)} ms (the idle limit is ${idle} ms)`));
        return;
      }
      this.idleTimer = setTimeout(check, idle - quiet);
      this.idleTimer.unref?.();
    };
    this.idleTimer = setTimeout(check, idle);
    this.idleTimer.unref?.();
  }

  /** Pauses the stream while the handler has enough to do (or has not accepted the first message yet). */
  private flow(): void {
    if (this.closed) return;
    const unadmitted = this.opts.clientStreaming && this.received >= 1 && this.pulls < 2;
    const enough = this.queue.length > 0 && this.queuedBytes >= this.opts.readAheadBytes;
    const pause = unadmitted || enough;
    if (pause && !this.paused) {
      this.paused = true;
      this.opts.pause();
    } else if (!pause && this.paused) {
      this.paused = false;
      this.opts.resume();
    }
  }
}
