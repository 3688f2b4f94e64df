import { FlightError, StatusCode, checkInt, checkOptions } from "@blackice/flight-core";
import { parseLocation } from "./location";

/** Limits of the channels a `FlightClient` opens to the locations of FlightInfo endpoints. */
export interface ChannelPoolOptions {
  /**
   * Calls at once through the pool to one location; more wait their turn, first come first
   * served. Default 64: below a BlackIce server's default of 100 concurrent streams per
   * connection, so a pooled channel never has calls queued inside HTTP/2 instead of here.
   */
  maxCallsPerLocation?: number;
  /** A channel with no call for this long is closed, ms. Default 60 000. */
  idleTimeoutMs?: number;
  /** Channels kept open while they have no call; the least recently used beyond it are closed. Default 8. */
  maxIdleChannels?: number;
}

/** What a client's pool of channels to endpoint locations holds, for tests and diagnostics. */
export interface ChannelPoolStats {
  /** Open channels by location (the client's own location included), with their calls. */
  channels: Array<{ location: string; active: number; waiting: number }>;
  /** Channels opened since the pool was made. */
  opened: number;
}

/** One pooled connection: anything with a `close()` (a `FlightClient`). */
export interface PooledChannel {
  close(): void;
}

interface Entry<C extends PooledChannel> {
  readonly location: string;
  readonly channel: C;
  /** The client's own channel: never closed by the pool. */
  readonly own: boolean;
  active: number;
  readonly waiting: Array<() => void>;
  lastUsed: number;
  idleTimer: NodeJS.Timeout | undefined;
}

const DEFAULTS = { maxCallsPerLocation: 64, idleTimeoutMs: 60_000, maxIdleChannels: 8 };

/** Checks pool options up front (TypeError naming the valid range) and fills in the defaults. */
export function channelPoolOptions(options: ChannelPoolOptions | undefined, where = "FlightClient"): Required<ChannelPoolOptions> {
  if (options === undefined) return { ...DEFAULTS };
  checkOptions(where, options, Object.keys(DEFAULTS), true, "pool");
  const int = (name: keyof ChannelPoolOptions, min: number, max: number): number => checkInt(where, `pool.${name}`, options[name], min, max, DEFAULTS[name]);
  return {
    maxCallsPerLocation: int("maxCallsPerLocation", 1, 1_000_000),
    idleTimeoutMs: int("idleTimeoutMs", 1, 2 ** 31 - 1),
    maxIdleChannels: int("maxIdleChannels", 0, 10_000),
  };
}

/**
 * One channel per location, opened on first use and shared by every call to it (HTTP/2
 * multiplexes calls on one connection, so a second connection to the same server buys
 * nothing on a LAN: flow control is per stream, and the client's window is large). Calls
 * through the pool are limited per location; channels without calls are closed after
 * `idleTimeoutMs`, and beyond `maxIdleChannels` the least recently used idle ones at once.
 *
 * Locations are compared by their grpc-js target (`host:port`) and scheme's TLS, so
 * `grpc://h:1` and `grpc+tcp://h:1` share a channel.
 */
export class ChannelPool<C extends PooledChannel> {
  private readonly entries = new Map<string, Entry<C>>();
  private readonly options: Required<ChannelPoolOptions>;
  private opened = 0;
  private closed = false;

  /**
   * @param open makes the channel of a location (a FlightClient with the owner's options).
   * @param own the owner's own location and channel: used for endpoints at that location, never closed here.
   */
  constructor(
    private readonly open: (location: string) => C,
    own: { location: string; channel: C },
    options?: ChannelPoolOptions,
  ) {
    this.options = channelPoolOptions(options);
    const key = keyOf(own.location);
    this.entries.set(key, { location: own.location, channel: own.channel, own: true, active: 0, waiting: [], lastUsed: Date.now(), idleTimer: undefined });
  }

  /**
   * The channel of `location`, once fewer than `maxCallsPerLocation` calls to it are running.
   * The slot is held until `release()` (idempotent) is called.
   *
   * @throws TypeError when `location` is not a Flight location this client can reach.
   */
  async acquire(location: string): Promise<{ channel: C; release: () => void }> {
    const entry = this.acquireEntry(location);
    if (entry.active >= this.options.maxCallsPerLocation) await new Promise<void>((resolve) => entry.waiting.push(resolve));
    else entry.active++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.releaseSlot(entry);
    };
    if (this.closed) {
      release();
      throw new FlightError(StatusCode.FAILED_PRECONDITION, "FlightClient is closed");
    }
    return { channel: entry.channel, release };
  }

  /** Open channels and their calls. */
  stats(): ChannelPoolStats {
    return {
      channels: [...this.entries.values()].map((e) => ({ location: e.location, active: e.active, waiting: e.waiting.length })),
      opened: this.opened,
    };
  }

  /** Closes every channel the pool opened (not the owner's). Waiting calls fail with FAILED_PRECONDITION when they start. */
  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      if (e.idleTimer) clearTimeout(e.idleTimer);
      if (!e.own) e.channel.close();
      // Let the waiting ones run into the closed check.
      for (const w of e.waiting.splice(0)) w();
    }
    this.entries.clear();
  }

  private acquireEntry(location: string): Entry<C> {
    if (this.closed) throw new FlightError(StatusCode.FAILED_PRECONDITION, "FlightClient is closed");
    const key = keyOf(location);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { location, channel: this.open(location), own: false, active: 0, waiting: [], lastUsed: Date.now(), idleTimer: undefined };
      this.opened++;
      this.entries.set(key, entry);
    }
    if (entry.idleTimer) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = undefined;
    }
    entry.lastUsed = Date.now();
    return entry;
  }

  private releaseSlot(entry: Entry<C>): void {
    const next = entry.waiting.shift();
    // The slot passes straight to the next waiting call.
    if (next !== undefined) return next();
    entry.active--;
    entry.lastUsed = Date.now();
    if (entry.active > 0 || entry.own || this.closed) return;
    entry.idleTimer = setTimeout(() => this.drop(entry), this.options.idleTimeoutMs);
    entry.idleTimer.unref();
    this.trimIdle();
  }

  /** Closes the least recently used idle channels beyond `maxIdleChannels`. */
  private trimIdle(): void {
    const idle = [...this.entries.values()].filter((e) => !e.own && e.active === 0 && e.waiting.length === 0);
    if (idle.length <= this.options.maxIdleChannels) return;
    idle.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of idle.slice(0, idle.length - this.options.maxIdleChannels)) this.drop(e);
  }

  private drop(entry: Entry<C>): void {
    if (entry.active > 0 || entry.own) return;
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    const key = keyOf(entry.location);
    if (this.entries.get(key) === entry) this.entries.delete(key);
    entry.channel.close();
  }
}

function keyOf(location: string): string {
  const p = parseLocation(location);
  return `${p.tls ? "tls" : "tcp"}:${p.target}`;
}
