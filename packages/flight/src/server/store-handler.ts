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
  bytesFromChunks,
  chunksOf,
  retainedBytes,
  ReadLease,
  kBatchPruning,
  selectBatches,
} from "@blackice/flight-core";
import { onResponseWritten } from "../transport/transport";
import { encapsulateMessage } from "./ipc-encapsulate";
import { parseListCriteria } from "./list-criteria";

/** The metadata header a DoPut may carry to set the flight's time to live (`30s`, `1h`, `0` = never). */
export const TTL_HEADER = "x-blackice-ttl";

/**
 * Bytes counted for every stored message besides the buffers it keeps alive: the message
 * object, its header facts, the typed-array views and ArrayBuffer bookkeeping, and the
 * store's entry. Measured on Node 20 at about 850 B per message (heap and external memory
 * after a full GC, 100k messages of a few hundred bytes); rounded up. Documented in
 * docs/operations.md.
 */
export const MESSAGE_OVERHEAD_BYTES = 1024;

// Messages up to this size are copied into one buffer of their own: they would otherwise
// keep whole receive buffers (64 KiB socket reads, 8 KiB pool slabs) alive for a few bytes.
const SMALL_MESSAGE = 64 * 1024;

const EMPTY = new Uint8Array(0);

/** Everything the terminal handler serves from. The store is each call's `call.store`. */
export interface StoreHandlerOptions {
  /** The location URI put in every endpoint (`grpc+tcp://host:port`). */
  location: () => string;
  maxMessageBytes: number;
  actions: ReadonlyMap<string, ActionSetting>;
  exchanges: ReadonlyMap<string, ExchangeHandler>;
}

/** Copies pieces into one new buffer and returns a view of each. */
function copyTogether(pieces: readonly Uint8Array[]): Uint8Array[] {
  let total = 0;
  for (const p of pieces) total += p.byteLength;
  const own = new Uint8Array(total);
  const out: Uint8Array[] = [];
  let pos = 0;
  for (const p of pieces) {
    own.set(p, pos);
    out.push(own.subarray(pos, pos + p.byteLength));
    pos += p.byteLength;
  }
  return out;
}

/**
 * Turns a received FlightData into the message the store keeps, and counts what it retains.
 * Large bodies stay in the chunks they arrived in; a piece is copied only when the message
 * uses less than half of the buffer it is a view into (the tail of one message and the head
 * of the next share a socket read), so no stored message pins mostly foreign bytes. Its
 * `byteSize` counts every buffer it keeps alive, whole, plus {@link MESSAGE_OVERHEAD_BYTES} (and, for a
 * schema, the encapsulated copy of its header that FlightInfo and GetSchema are built from).
 */
export function toStoredMessage(data: FlightData, info: MessageHeaderInfo): StoredMessage {
  const stored = keptMessage(data, info);
  // A schema's encapsulated form is built once and cached for FlightInfo and GetSchema
  // (encapsulatedSchema below): a second copy of its header, counted here.
  return info.kind === MessageKind.SCHEMA ? { ...stored, byteSize: stored.byteSize + stored.header.byteLength + 16 } : stored;
}

function keptMessage(data: FlightData, info: MessageHeaderInfo): StoredMessage {
  const header = data.dataHeader ?? EMPTY;
  const meta = data.appMetadata ?? EMPTY;
  const bodyChunks = chunksOf(data.dataBody ?? EMPTY);
  const total = header.byteLength + meta.byteLength + (data.dataBody?.byteLength ?? 0);
  if (total <= SMALL_MESSAGE) {
    const [h, m, ...b] = copyTogether([header, meta, ...bodyChunks]);
    return { header: h!, appMetadata: m!, body: bytesFromChunks(b), info, byteSize: total + MESSAGE_OVERHEAD_BYTES };
  }
  const used = new Map<ArrayBufferLike, number>();
  for (const p of [header, meta, ...bodyChunks]) used.set(p.buffer, (used.get(p.buffer) ?? 0) + p.byteLength);
  const mostlyForeign = (p: Uint8Array): boolean => p.byteLength > 0 && used.get(p.buffer)! * 2 < p.buffer.byteLength;
  const keptHeader = mostlyForeign(header) ? new Uint8Array(header) : header;
  const keptMeta = mostlyForeign(meta) ? new Uint8Array(meta) : meta;
  const kept: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  const flush = (): void => {
    if (run.length > 0) kept.push(...copyTogether(run));
    run = [];
  };
  for (const c of bodyChunks) {
    if (mostlyForeign(c)) run.push(c);
    else {
      flush();
      kept.push(c);
    }
  }
  flush();
  const byteSize = retainedBytes([keptHeader, keptMeta, ...kept]) + MESSAGE_OVERHEAD_BYTES;
  return { header: keptHeader, appMetadata: keptMeta, body: bytesFromChunks(kept), info, byteSize };
}

function toFlightData(m: StoredMessage): FlightData {
  return { flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: m.appMetadata };
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

/**
 * Builds the FlightInfo of a stored flight (as `get` or `list` gave it): one endpoint, whose
 * locations are the flight's own (`StoredFlight.locations`, every node holding a copy) or
 * else the server's own location. Synchronous: everything it needs is in the flight's summary.
 */
export function flightInfoOf(store: FlightStore, f: StoredFlight, location: string): FlightInfo {
  return {
    schema: encapsulatedSchema(f.schema),
    flightDescriptor: f.descriptor,
    endpoint: [
      {
        ticket: { ticket: store.ticketFor(f) },
        location: f.locations && f.locations.length > 0 ? f.locations.map((uri) => ({ uri })) : [{ uri: location }],
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
  const lookup = async (store: FlightStore, d: FlightDescriptor | undefined): Promise<StoredFlight> => {
    if (!d) throw invalidArgument("a FlightDescriptor is required");
    const f = await store.get(d);
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
    const { store } = call;
    for await (const f of store.list(prefix)) {
      if (call.signal.aborted) return;
      yield flightInfoOf(store, f, location);
    }
  }

  /**
   * DoGet's response. It asks the transport to report each message written (see
   * `onResponseWritten`) and hands the store a `ReadLease` it releases as those reports come,
   * in order: a store reading from disk then reuses its read buffers. If middleware wraps the
   * response, the transport reports nothing and the store never reuses a buffer.
   */
  function doGet(call: FlightCall<"doGet">): AsyncGenerator<FlightData> {
    const lease = new ReadLease();
    /** Index of each message sent (schema 0, then the flight's messages 1, 2, ...). */
    const sentIndex = new WeakMap<object, number>();
    let written = 0;
    const response = doGetMessages(call, lease, sentIndex);
    onResponseWritten(response, (message) => {
      // Only a run of written messages with no gap is released: a message some other code
      // took from the response (and may hold) stops the releases for good.
      if (sentIndex.get(message as object) !== written) return false;
      written++;
      lease.release(written - 1);
      return true;
    });
    return response;
  }

  async function* doGetMessages(call: FlightCall<"doGet">, lease: ReadLease, sentIndex: WeakMap<object, number>): AsyncGenerator<FlightData> {
    const f = await call.store.getByTicket(call.request.ticket);
    if (!f) throw notFound("no flight for this ticket (it may have expired or been deleted)");
    const schema = toFlightData(f.schema);
    sentIndex.set(schema, 0);
    yield schema;
    // Batch pruning asked by query() (kBatchPruning): selected on this very snapshot, so the
    // statistics and the messages read are the same flight's; the others are not read.
    const pruning = call.context.get(kBatchPruning)?.get(Buffer.from(call.request.ticket).toString("base64"));
    let only: readonly number[] | undefined;
    if (pruning !== undefined) {
      const selection = await selectBatches(f, pruning.predicates);
      pruning.onSelection?.(selection);
      if (selection.batchesSkipped > 0) only = selection.indices;
    }
    const messages = f.messages({ lease, only });
    // A store holding the flight in memory (MemoryStore) hands out an iterable that is also
    // synchronously iterable: walk it without awaiting each message (nor tracking what is
    // written: such a store never reuses memory), which keeps DoGet as fast as before.
    if (Symbol.iterator in messages) {
      for (const m of messages as unknown as Iterable<StoredMessage>) yield toFlightData(m);
    } else {
      let i = 0;
      for await (const m of messages) {
        const d = toFlightData(m);
        sentIndex.set(d, ++i);
        yield d;
      }
    }
  }

  async function* doPut(call: FlightCall<"doPut">): AsyncGenerator<PutResult> {
    const iterator = call.request[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw invalidArgument("DoPut received no message: the first must carry a FlightDescriptor and the schema");
    const head = first.value as FlightData;
    if (!head.flightDescriptor) throw invalidArgument("the first DoPut message must carry a FlightDescriptor");
    const validator = new IpcStreamValidator({ maxMessageBytes: opts.maxMessageBytes });
    if (head.dataHeader.length === 0) throw invalidArgument("the first DoPut message must carry the schema");
    const schemaInfo = validator.accept(head.dataHeader, head.dataBody);
    // A flight's row count must stay a safe integer: FlightInfo.total_records of every caller's
    // ListFlights is built from it.
    const { store } = call;
    const ttlMs = ttlFromHeaders(call);
    let rows = (await store.get(head.flightDescriptor))?.totalRecords ?? 0;
    const tx = await store.beginPut(head.flightDescriptor, toStoredMessage(head, schemaInfo), { ttlMs });
    let committed = false;
    try {
      // Like the reference servers, acknowledge record batches and metadata-only messages,
      // not the schema or dictionary batches (some writers copy a batch's metadata onto them).
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        const m = next.value as FlightData;
        if (m.dataHeader.length === 0) {
          // A metadata-only message (e.g. a writer's WriteMetadata): acknowledged, not stored.
          if (m.appMetadata.length > 0) yield { appMetadata: m.appMetadata };
          continue;
        }
        const info = validator.accept(m.dataHeader, m.dataBody);
        if (info.kind === MessageKind.RECORD_BATCH) {
          rows += info.rows;
          if (rows > Number.MAX_SAFE_INTEGER) throw invalidArgument(`the flight would hold more than ${Number.MAX_SAFE_INTEGER} rows (2^53 - 1)`);
        }
        await tx.append(toStoredMessage(m, info));
        if (m.appMetadata.length > 0 && info.kind === MessageKind.RECORD_BATCH) yield { appMetadata: m.appMetadata };
      }
      if (call.signal.aborted) throw call.signal.reason;
      await tx.commit();
      committed = true;
    } finally {
      if (!committed) await tx.abort();
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
        return flightInfoOf(call.store, await lookup(call.store, call.request), opts.location());
      case "pollFlightInfo": {
        // Stored flights are complete: the info is final, so no descriptor to poll again.
        const info = flightInfoOf(call.store, await lookup(call.store, call.request), opts.location());
        return { info, flightDescriptor: undefined, progress: 1, expirationTime: undefined };
      }
      case "getSchema":
        return { schema: encapsulatedSchema((await lookup(call.store, call.request)).schema) };
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
