import {
  FlightError,
  IpcStreamValidator,
  MessageKind,
  StatusCode,
  invalidArgument,
  notFound,
  parseDuration,
  type ActionSetting,
  type ActionType,
  type CallInfo,
  type ExchangeHandler,
  type FlightCall,
  type FlightData,
  type FlightDescriptor,
  type FlightHandler,
  type FlightInfo,
  type FlightResponse,
  type FlightStore,
  type HandshakeRequest,
  type HandshakeResponse,
  type PutResult,
  type StoredFlight,
  type StoredMessage,
  type MessageHeaderInfo,
} from "@blackice/flight-core";
import { decodeFlightData, type WireFlightData } from "../codec/flight-data-codec";
import { encapsulateMessage } from "./ipc-encapsulate";
import { PREFRAMED, type PreframedFlightData } from "./preframed-responses";
import { parseListCriteria } from "./list-criteria";

/** The metadata header a DoPut may carry to set the flight's time to live (`30s`, `1h`, `0` = never). */
export const TTL_HEADER = "x-blackice-ttl";

// Messages under this size are copied out of the receive buffer: grpc-js builds small
// messages in shared 8 KiB pool slabs, and keeping a view would pin the whole slab.
const SMALL_MESSAGE = 4096;

const EMPTY = new Uint8Array(0);

/** Everything the terminal handler serves from. */
export interface StoreHandlerOptions {
  store: FlightStore;
  /** The location URI put in every endpoint (`grpc+tcp://host:port`). */
  location: () => string;
  maxMessageBytes: number;
  actions: ReadonlyMap<string, ActionSetting>;
  exchanges: ReadonlyMap<string, ExchangeHandler>;
}

/** Turns a received FlightData into a message the store keeps, without copying large bodies. */
export function toStoredMessage(data: WireFlightData, info: MessageHeaderInfo): StoredMessage {
  let wire = data.wire;
  let { dataHeader: header, dataBody: body, appMetadata } = data;
  if (wire && wire.byteLength < SMALL_MESSAGE) {
    wire = new Uint8Array(wire); // own the bytes; see SMALL_MESSAGE
    const again = decodeFlightData(wire);
    header = again.dataHeader;
    body = again.dataBody;
    appMetadata = again.appMetadata;
  }
  const byteSize = wire ? wire.byteLength : header.byteLength + body.byteLength + appMetadata.byteLength;
  return { header, body, appMetadata, info, wire, byteSize };
}

function toFlightData(m: StoredMessage): PreframedFlightData {
  return { flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: m.appMetadata, wire: m.wire, [PREFRAMED]: true };
}

function ttlFromHeaders(call: CallInfo): number | undefined {
  const v = call.headers.get(TTL_HEADER)?.[0];
  if (v === undefined) return undefined;
  try {
    return parseDuration(typeof v === "string" ? v : Buffer.from(v).toString("utf8"), TTL_HEADER);
  } catch (err) {
    throw invalidArgument((err as Error).message);
  }
}

function describe(d: FlightDescriptor): string {
  return d.path.length > 0 ? `path ${JSON.stringify(d.path)}` : `command of ${d.cmd.length} bytes`;
}

// The encapsulated schema of each stored schema message, built once: ListFlights over many
// flights would otherwise allocate and copy every schema on every call.
const encapsulatedSchemas = new WeakMap<StoredMessage, Uint8Array>();

function encapsulatedSchema(schema: StoredMessage): Uint8Array {
  let bytes = encapsulatedSchemas.get(schema);
  if (!bytes) encapsulatedSchemas.set(schema, (bytes = encapsulateMessage(schema.header)));
  return bytes;
}

/** Builds the FlightInfo of a stored flight, with one endpoint at the server's own location. */
export function flightInfoOf(store: FlightStore, f: StoredFlight, location: string): FlightInfo {
  return {
    schema: encapsulatedSchema(f.schema),
    flightDescriptor: f.descriptor,
    endpoint: [
      {
        ticket: { ticket: store.ticketFor(f) },
        location: [{ uri: location }],
        expirationTime: f.expiresAt === undefined ? undefined : new Date(f.expiresAt),
        appMetadata: EMPTY,
      },
    ],
    totalRecords: f.totalRecords,
    totalBytes: f.totalBytes,
    ordered: false,
    appMetadata: EMPTY,
  };
}

/** The exchange command named by a descriptor: path[0], or the command's UTF-8 text up to the first ':' or JSON `command`. */
export function exchangeCommand(d: FlightDescriptor): string {
  if (d.path.length > 0) return d.path[0];
  const text = Buffer.from(d.cmd).toString("utf8");
  if (text.startsWith("{")) {
    try {
      const parsed = JSON.parse(text) as { command?: unknown };
      if (typeof parsed.command === "string") return parsed.command;
    } catch {
      // not JSON: fall through to the plain form
    }
  }
  const colon = text.indexOf(":");
  return colon < 0 ? text : text.slice(0, colon);
}

/**
 * The terminal handler of the middleware chain: serves every Flight method from the store.
 * It reads only the flatbuffer headers of what it is given (through IpcStreamValidator) and
 * never decodes Arrow data.
 */
export function createStoreHandler(opts: StoreHandlerOptions): FlightHandler {
  const { store } = opts;

  const lookup = (d: FlightDescriptor | undefined): StoredFlight => {
    if (!d) throw invalidArgument("a FlightDescriptor is required");
    const f = store.get(d);
    if (!f) throw notFound(`no flight at ${describe(d)}`);
    return f;
  };

  async function* handshake(requests: AsyncIterable<HandshakeRequest>): AsyncGenerator<HandshakeResponse> {
    // Without an auth middleware there is nothing to negotiate: answer each request.
    for await (const r of requests) yield { protocolVersion: r.protocolVersion, payload: EMPTY };
  }

  async function* listFlights(call: FlightCall<"listFlights">): AsyncGenerator<FlightInfo> {
    const prefix = parseListCriteria(call.request.expression);
    const location = opts.location();
    for (const f of store.list(prefix)) {
      if (call.signal.aborted) return;
      yield flightInfoOf(store, f, location);
    }
  }

  async function* doGet(call: FlightCall<"doGet">): AsyncGenerator<WireFlightData> {
    const f = store.getByTicket(call.request.ticket);
    if (!f) throw notFound("no flight for this ticket (it may have expired or been deleted)");
    yield toFlightData(f.schema);
    for (const m of f.messages) yield toFlightData(m);
  }

  async function* doPut(call: FlightCall<"doPut">): AsyncGenerator<PutResult> {
    const iterator = call.request[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw invalidArgument("DoPut received no message: the first must carry a FlightDescriptor and the schema");
    const head = first.value as WireFlightData;
    if (!head.flightDescriptor) throw invalidArgument("the first DoPut message must carry a FlightDescriptor");
    const validator = new IpcStreamValidator({ maxMessageBytes: opts.maxMessageBytes });
    if (head.dataHeader.length === 0) throw invalidArgument("the first DoPut message must carry the schema");
    const schemaInfo = validator.accept(head.dataHeader, head.dataBody);
    const tx = store.beginPut(head.flightDescriptor, toStoredMessage(head, schemaInfo), { ttlMs: ttlFromHeaders(call) });
    let committed = false;
    try {
      // Like the reference servers, acknowledge record batches and metadata-only messages,
      // not the schema or dictionary batches (some writers copy a batch's metadata onto them).
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        const m = next.value as WireFlightData;
        if (m.dataHeader.length === 0) {
          // A metadata-only message (e.g. a writer's WriteMetadata): acknowledged, not stored.
          if (m.appMetadata.length > 0) yield { appMetadata: m.appMetadata };
          continue;
        }
        const info = validator.accept(m.dataHeader, m.dataBody);
        tx.append(toStoredMessage(m, info));
        if (m.appMetadata.length > 0 && info.kind === MessageKind.RECORD_BATCH) yield { appMetadata: m.appMetadata };
      }
      if (call.signal.aborted) throw call.signal.reason;
      tx.commit();
      committed = true;
    } finally {
      if (!committed) tx.abort();
    }
  }

  async function* doExchange(call: FlightCall<"doExchange">): AsyncGenerator<FlightData> {
    const iterator = call.request[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw invalidArgument("DoExchange received no message: the first must carry a FlightDescriptor");
    const descriptor = first.value.flightDescriptor;
    if (!descriptor) throw invalidArgument("the first DoExchange message must carry a FlightDescriptor naming the exchange");
    const command = exchangeCommand(descriptor);
    const handler = opts.exchanges.get(command);
    if (!handler) {
      throw invalidArgument(`no DoExchange handler for ${JSON.stringify(command)}; registered: ${[...opts.exchanges.keys()].join(", ") || "none"}`);
    }
    const rest: AsyncIterable<FlightData> = { [Symbol.asyncIterator]: () => iterator };
    yield* handler(rest, first.value, { ...call, descriptor });
  }

  async function* listActions(): AsyncGenerator<ActionType> {
    for (const a of opts.actions.values()) yield { type: a.type, description: a.description };
  }

  async function* doAction(call: FlightCall<"doAction">) {
    const action = opts.actions.get(call.request.type);
    if (!action) {
      throw invalidArgument(`unknown action ${JSON.stringify(call.request.type)}; available: ${[...opts.actions.keys()].join(", ")}`);
    }
    const out = await action.handler(call.request.body, call);
    if (Symbol.asyncIterator in (out as object)) yield* out as AsyncIterable<{ body: Uint8Array }>;
    else if (Array.isArray(out)) yield* out;
    else yield out as { body: Uint8Array };
  }

  return async function storeHandler(call: FlightCall): Promise<FlightResponse> {
    switch (call.method) {
      case "handshake":
        return handshake(call.request);
      case "listFlights":
        return listFlights(call);
      case "getFlightInfo":
        return flightInfoOf(store, lookup(call.request), opts.location());
      case "pollFlightInfo": {
        // Stored flights are complete: the info is final, so no descriptor to poll again.
        const info = flightInfoOf(store, lookup(call.request), opts.location());
        return { info, flightDescriptor: undefined, progress: 1, expirationTime: undefined };
      }
      case "getSchema":
        return { schema: encapsulatedSchema(lookup(call.request).schema) };
      case "doGet":
        return doGet(call);
      case "doPut":
        return doPut(call);
      case "doExchange":
        return doExchange(call);
      case "doAction":
        return doAction(call);
      case "listActions":
        return listActions();
      default:
        throw new FlightError(StatusCode.UNIMPLEMENTED, `method ${(call as { method: string }).method} is not implemented`);
    }
  };
}
