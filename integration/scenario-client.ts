// The client the client-side scenarios drive: the library's FlightClient, from the public
// @blackice/flight barrel, with the few conveniences the scenarios share: streams collected
// into arrays, per-call headers, a DoPut written one message at a time with each
// acknowledgement awaited, and clients for other endpoint locations with the same middleware.

import { FlightClient, type CallOptions, type ClientMiddleware } from "@blackice/flight";
import type { Action, ActionType, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, PollInfo, PutResult, Result, Ticket } from "@blackice/flight-core";

/** An open DoPut: write messages, read acknowledgements as they come. */
export interface PutStream {
  write(message: FlightData): Promise<void>;
  /** The next PutResult; undefined once the server ended the call. */
  nextAck(): Promise<PutResult | undefined>;
  /** Half-closes the request side. */
  end(): void;
}

/** Extra request headers of one call. */
export type Headers = Record<string, string | Uint8Array>;

/** What the integration scenarios need from a Flight client. */
export interface ScenarioClient {
  handshake(requests: HandshakeRequest[], headers?: Headers): Promise<HandshakeResponse[]>;
  getFlightInfo(descriptor: FlightDescriptor, headers?: Headers): Promise<FlightInfo>;
  pollFlightInfo(descriptor: FlightDescriptor, headers?: Headers): Promise<PollInfo>;
  doGet(ticket: Ticket, headers?: Headers): Promise<FlightData[]>;
  /** DoPut of `descriptor` (it goes on the first message). */
  doPut(descriptor: FlightDescriptor, headers?: Headers): PutStream;
  /** DoExchange: the first message carries the descriptor naming the exchange. */
  doExchange(descriptor: FlightDescriptor, messages: FlightData[], headers?: Headers): Promise<FlightData[]>;
  doAction(action: Action, headers?: Headers): Promise<Result[]>;
  listActions(headers?: Headers): Promise<ActionType[]>;
  /** A client for another endpoint location (`grpc+tcp://host:port`), with the same middleware. */
  forLocation(uri: string): ScenarioClient;
  close(): void;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Connects a FlightClient to `host:port` with the given client middleware. */
export function connect(address: string, middleware: ClientMiddleware[] = []): ScenarioClient {
  return wrap(`grpc+tcp://${address}`, middleware);
}

function wrap(location: string, middleware: ClientMiddleware[]): ScenarioClient {
  const client = new FlightClient(location, { middleware });
  const o = (headers?: Headers): CallOptions | undefined => (headers ? { metadata: headers } : undefined);
  return {
    handshake: (requests, h) => client.handshake(requests, o(h)),
    getFlightInfo: (d, h) => client.getFlightInfo(d, o(h)),
    pollFlightInfo: (d, h) => client.pollFlightInfo(d, o(h)),
    doGet: (t, h) => collect(client.doGetRaw(t, o(h))),
    doExchange: (d, messages, h) => collect(client.doExchangeRaw(d, messages, o(h))),
    doAction: (a, h) => client.doAction(a.type, a.body, o(h)),
    listActions: (h) => client.listActions(o(h)),
    doPut(descriptor, h) {
      // Messages are handed to FlightClient through a queue, so that the scenario can wait for
      // each acknowledgement before it writes the next batch.
      const queue: FlightData[] = [];
      let closed = false;
      let wake: (() => void) | undefined;
      async function* source(): AsyncGenerator<FlightData> {
        for (;;) {
          if (queue.length > 0) yield queue.shift()!;
          else if (closed) return;
          else await new Promise<void>((r) => (wake = r));
        }
      }
      const results = client.doPutRaw(descriptor, source(), o(h)).results[Symbol.asyncIterator]();
      const poke = (): void => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      return {
        write: async (m) => {
          queue.push(m);
          poke();
        },
        nextAck: async () => {
          const r = await results.next();
          return r.done ? undefined : r.value;
        },
        end: () => {
          closed = true;
          poke();
        },
      };
    },
    forLocation: (uri) => wrap(uri, middleware),
    close: () => client.close(),
  };
}
