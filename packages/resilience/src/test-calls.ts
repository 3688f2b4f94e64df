/** Test helpers: hand-built FlightCalls, fake stores and loggers. Not part of the build. */
import pino, { type Logger } from "pino";
import {
  CallContext,
  FlightError,
  MemoryStore,
  type CallInfo,
  type FlightCall,
  type FlightData,
  type FlightMethod,
  type FlightRequests,
  type FlightStore,
  type FlightDescriptor,
  type GcReport,
  type PutOptions,
  type StoredMessage,
  type PutTransaction,
  type StoreStats,
  type StoredFlight,
} from "@blackice/flight-core";

/** A store for calls that need none in particular (no background GC, so nothing to close). */
const idleStore = new MemoryStore({ enableGC: false });

export function makeCall<M extends FlightMethod>(method: M, request: FlightRequests[M], over: Partial<CallInfo> = {}): FlightCall<M> {
  return {
    store: idleStore,
    method,
    request,
    context: new CallContext(),
    headers: new Map(),
    responseHeaders: new Map<string, string>(),
    signal: new AbortController().signal,
    peer: "127.0.0.1:50000",
    path: `/arrow.flight.protocol.FlightService/${method[0].toUpperCase()}${method.slice(1)}`,
    deadline: undefined,
    rawRequest: undefined,
    ...over,
  } as unknown as FlightCall<M>;
}

export function flightData(headerBytes: number, bodyBytes: number, fill = 0): FlightData {
  return {
    flightDescriptor: undefined,
    dataHeader: new Uint8Array(headerBytes).fill(fill),
    dataBody: new Uint8Array(bodyBytes).fill(fill),
    appMetadata: new Uint8Array(0),
  };
}

export async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** An async iterable that yields `items` and then waits until `release()` (or forever). */
export function gatedStream<T>(items: readonly T[]): { iterable: AsyncIterable<T>; release: () => void; returned: () => boolean } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let returned = false;
  const iterable: AsyncIterable<T> = {
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        async next() {
          if (i < items.length) return { done: false, value: items[i++] };
          await gate;
          return { done: true, value: undefined };
        },
        async return() {
          returned = true;
          release();
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { iterable, release, returned: () => returned };
}

export async function drain<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Lets pending promise callbacks run (opossum counts outcomes a few microtasks after a call). */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Polls `cond` every few ms until it holds; fails after `limitMs` (a safety net, not a timing assertion). */
export async function waitFor(cond: () => boolean, limitMs = 5000): Promise<void> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > limitMs) throw new Error("condition not reached");
    await sleep(5);
  }
}

/** Expects `fn` to throw (or reject with) a FlightError of `code`; returns it. */
export async function expectFlightError(fn: () => unknown, code: number): Promise<FlightError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof FlightError)) throw new Error(`expected a FlightError ${code}, got ${String(caught)}`);
  if (caught.code !== code) throw new Error(`expected code ${code}, got ${caught.toString()}`);
  return caught;
}

/** A FlightStore whose every operation rejects with `failure` while it is set. */
export class FakeStore implements FlightStore {
  failure: unknown;
  readonly ops: string[] = [];
  readonly flight = { key: "p:a", totalRecords: 1 } as unknown as StoredFlight;
  aborted = 0;

  private op(name: string): void {
    this.ops.push(name);
    if (this.failure !== undefined) throw this.failure;
  }

  async beginPut(_d: FlightDescriptor, _schema: StoredMessage, _options?: PutOptions): Promise<PutTransaction> {
    this.op("beginPut");
    return {
      append: async (_m: StoredMessage) => this.op("append"),
      commit: async () => {
        this.op("commit");
        return this.flight;
      },
      abort: async () => {
        this.aborted++;
      },
    };
  }
  async get(_d: FlightDescriptor): Promise<StoredFlight | undefined> {
    this.op("get");
    return this.flight;
  }
  async getByTicket(_ticket: Uint8Array): Promise<StoredFlight | undefined> {
    this.op("getByTicket");
    return this.flight;
  }
  ticketFor(_flight: StoredFlight): Uint8Array {
    return new Uint8Array([1]);
  }
  list(_prefix?: readonly string[]): AsyncIterable<StoredFlight> {
    const self = this;
    return (async function* () {
      self.op("list.next");
      yield self.flight;
      self.op("list.next");
      yield self.flight;
    })();
  }
  async delete(_d: FlightDescriptor): Promise<boolean> {
    this.op("delete");
    return true;
  }
  async renew(_d: FlightDescriptor, _ttlMs?: number): Promise<StoredFlight | undefined> {
    this.op("renew");
    return this.flight;
  }
  async gc(): Promise<GcReport> {
    this.op("gc");
    return { flightsRemoved: 0, bytesFreed: 0, durationMs: 0 };
  }
  stats(): StoreStats {
    return {
      flights: 3,
      rows: 300,
      bytes: 4096,
      memory: { memoryBytes: 5000, reservedBytes: 100, maxMemoryBytes: 1 << 20 },
      ttl: { defaultTtlMs: 0 },
      gc: { gcEnabled: true, gcIntervalMs: 30_000, gcRuns: 2, gcFlightsRemoved: 4, gcBytesFreed: 777 },
    };
  }
  async close(): Promise<void> {}
}

/** A pino logger writing JSON lines into memory. */
export function captureLogger(level = "trace"): { logger: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const logger = pino({ level }, { write: (s: string) => void chunks.push(s) });
  return {
    logger,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => chunks.join(""),
  };
}
