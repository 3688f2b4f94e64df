// The examples of docs/middleware.md, as they appear there, run in memory (and one on a real
// server) so the guide stays true to the API.
import { tableFromArrays } from "apache-arrow";
import {
  CallContext,
  FlightError,
  StatusCode,
  composeMiddleware,
  createContextKey,
  defineAction,
  resourceExhausted,
  serverConfig,
  serverParts,
  splitServerParts,
  statsSection,
  type ActionSetting,
  type FlightCall,
  type FlightData,
  type FlightHandler,
  type FlightMethod,
  type FlightMiddleware,
  type FlightRequests,
  type FlightResponse,
  type ServerParts,
} from "@blackice/flight-core";
import { FlightClient, createFlightServer, pathDescriptor } from "@blackice/flight";
import { tableMessages } from "./example-data";

// ---------------------------------------------------------------- the guide's examples

const log: string[] = [];

const timing: FlightMiddleware = (next) =>
  async function timing(call) {
    const started = Date.now();
    try {
      return await next(call);
    } finally {
      log.push(`${call.method} ${Date.now() - started} ms`);
    }
  };

const trace =
  (name: string): FlightMiddleware =>
  (next) =>
    async function traced(call) {
      log.push(`${name} before`);
      const res = await next(call);
      log.push(`${name} after`);
      return res;
    };

const readOnly: FlightMiddleware = (next) =>
  async function readOnly(call) {
    switch (call.method) {
      case "doPut":
      case "doExchange":
        throw new FlightError(StatusCode.PERMISSION_DENIED, "this server is read-only");
      case "doAction":
        // call.request is an Action here
        if (call.request.type === "delete") throw new FlightError(StatusCode.PERMISSION_DENIED, "this server is read-only");
        return next(call);
      default:
        return next(call);
    }
  };

const maxPutBytes =
  (limit: number): FlightMiddleware =>
  (next) =>
    async function maxPutBytes(call) {
      if (call.method !== "doPut") return next(call);
      const source = call.request; // AsyncIterable<FlightData>
      async function* counted(): AsyncGenerator<FlightData> {
        let bytes = 0;
        for await (const message of source) {
          bytes += message.dataHeader.length + message.dataBody.byteLength;
          if (bytes > limit) throw resourceExhausted(`DoPut over ${limit} bytes`);
          yield message;
        }
      }
      return next({ ...call, request: counted() });
    };

const countDoGet =
  (report: (messages: number) => void): FlightMiddleware =>
  (next) =>
    async function countDoGet(call) {
      if (call.method !== "doGet") return next(call);
      const messages = (await next(call)) as FlightResponse<"doGet">;
      return (async function* counted() {
        let n = 0;
        try {
          for await (const m of messages) {
            n++;
            yield m;
          }
        } finally {
          report(n); // at the end, after an error, or when the client cancels
        }
      })();
    };

/** The tenant of the call, published by {@link tenantHeader}. */
const kTenant = createContextKey<string | undefined>("example.tenant", undefined);

const tenantHeader: FlightMiddleware = (next) =>
  async function tenantHeader(call) {
    const values = call.headers.get("x-tenant") ?? [];
    const tenant = values.length === 1 ? values[0] : undefined;
    if (typeof tenant !== "string" || !/^[a-z0-9-]{1,64}$/.test(tenant)) {
      throw new FlightError(StatusCode.INVALID_ARGUMENT, "send one x-tenant header: 1-64 of a-z 0-9 -");
    }
    call.context.set(kTenant, tenant);
    call.responseHeaders.set("x-tenant", tenant); // sent with the first response
    return next(call);
  };

const whoami = defineAction("whoami", "the caller's tenant", async (_body, call) => ({
  body: Buffer.from(call.context.get(kTenant) ?? ""),
}));

const maintenance: FlightMiddleware = (next) =>
  async function maintenance(call) {
    if (call.method === "doPut") {
      throw new FlightError(StatusCode.UNAVAILABLE, "writes are paused for maintenance", { metadata: { "retry-after-ms": "60000" } });
    }
    return next(call);
  };

const reportBugs =
  (report: (err: unknown, method: FlightMethod) => void): FlightMiddleware =>
  (next) =>
    async function reportBugs(call) {
      const check = (err: unknown): never => {
        if (!(err instanceof FlightError)) report(err, call.method);
        throw err;
      };
      let res: FlightResponse;
      try {
        res = await next(call);
      } catch (err) {
        return check(err);
      }
      if (!(Symbol.asyncIterator in res)) return res; // a unary answer
      const stream = res as AsyncIterable<unknown>;
      return (async function* watched() {
        try {
          yield* stream;
        } catch (err) {
          check(err);
        }
      })() as FlightResponse;
    };

function callCounter(): ServerParts {
  const counts: Partial<Record<FlightMethod, number>> = {};
  const middleware: FlightMiddleware = (next) =>
    async function countCalls(call) {
      counts[call.method] = (counts[call.method] ?? 0) + 1;
      return next(call);
    };
  return serverParts(
    middleware,
    statsSection("callCounter", () => ({ ...counts })),
    defineAction("call-counts", "calls served per method", async () => ({ body: Buffer.from(JSON.stringify(counts)) })),
  );
}

/** A hand-made call for in-memory tests. */
function makeCall<M extends FlightMethod>(method: M, request: FlightRequests[M], headers: Record<string, string> = {}): FlightCall<M> {
  return {
    method,
    request,
    context: new CallContext(),
    headers: new Map(Object.entries(headers).map(([k, v]) => [k, [v]])),
    responseHeaders: new Map<string, string>(),
    signal: new AbortController().signal,
    peer: "127.0.0.1:50000",
    path: `/arrow.flight.protocol.FlightService/${method[0]!.toUpperCase()}${method.slice(1)}`,
    deadline: undefined,
    rawRequest: undefined,
  } as unknown as FlightCall<M>;
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

// ---------------------------------------------------------------- checks

const message = (bytes: number): FlightData => ({ flightDescriptor: undefined, dataHeader: new Uint8Array(8), dataBody: new Uint8Array(bytes), appMetadata: new Uint8Array(0) });

/** The terminal handler of these tests: DoPut reads everything, DoGet streams 3 messages, the rest answer empty. */
const fakeHandler: FlightHandler = async (call) => {
  switch (call.method) {
    case "doPut":
      return (async function* acks() {
        for await (const _m of call.request) yield { appMetadata: new Uint8Array(0) };
      })();
    case "doGet":
      return fromArray([message(1), message(2), message(3)]);
    default:
      return fromArray([]);
  }
};

beforeEach(() => (log.length = 0));

describe("docs/middleware.md", () => {
  it("the first middleware is the outermost", async () => {
    const h = composeMiddleware([trace("a"), trace("b")], async (call) => {
      log.push("handler");
      return fakeHandler(call);
    });
    await h(makeCall("listActions", {}));
    expect(log).toEqual(["a before", "b before", "handler", "b after", "a after"]);
  });

  it("timing logs after the handler has answered", async () => {
    await composeMiddleware([timing], fakeHandler)(makeCall("listActions", {}));
    expect(log).toEqual([expect.stringMatching(/^listActions \d+ ms$/)]);
  });

  it("readOnly tells methods apart with call.method", async () => {
    const h = composeMiddleware([readOnly], fakeHandler);
    await expect(h(makeCall("doPut", fromArray([message(1)])))).rejects.toMatchObject({ code: StatusCode.PERMISSION_DENIED });
    await expect(h(makeCall("doAction", { type: "delete", body: new Uint8Array(0) }))).rejects.toMatchObject({ code: StatusCode.PERMISSION_DENIED });
    await expect(h(makeCall("doAction", { type: "ping", body: new Uint8Array(0) }))).resolves.toBeDefined();
  });

  it("maxPutBytes wraps the request stream", async () => {
    const h = composeMiddleware([maxPutBytes(100)], fakeHandler);
    const ok = (await h(makeCall("doPut", fromArray([message(40), message(40)])))) as FlightResponse<"doPut">;
    expect(await collect(ok)).toHaveLength(2);
    const tooBig = (await h(makeCall("doPut", fromArray([message(40), message(40), message(40)])))) as FlightResponse<"doPut">;
    await expect(collect(tooBig)).rejects.toMatchObject({ code: StatusCode.RESOURCE_EXHAUSTED, message: "DoPut over 100 bytes" });
  });

  it("countDoGet wraps the response stream and reports at its end, or when the reader stops", async () => {
    const seen: number[] = [];
    const h = composeMiddleware([countDoGet((n) => seen.push(n))], fakeHandler);
    const all = (await h(makeCall("doGet", { ticket: new Uint8Array(0) }))) as FlightResponse<"doGet">;
    expect(seen).toEqual([]); // nothing streamed yet
    await collect(all);
    const some = (await h(makeCall("doGet", { ticket: new Uint8Array(0) }))) as FlightResponse<"doGet">;
    for await (const _m of some) break; // a client that cancels
    expect(seen).toEqual([3, 1]);
  });

  it("tenantHeader publishes under a typed key that a later action reads", async () => {
    const call = makeCall("doAction", { type: "whoami", body: new Uint8Array(0) }, { "x-tenant": "acme" });
    const h = composeMiddleware([tenantHeader], async (c) => {
      if (c.method !== "doAction") throw new Error("unexpected");
      const out = await whoami.handler(c.request.body, c);
      return fromArray(Array.isArray(out) ? out : [out as { body: Uint8Array }]);
    });
    const [result] = await collect((await h(call)) as FlightResponse<"doAction">);
    expect(Buffer.from(result!.body).toString()).toBe("acme");
    expect(call.responseHeaders.get("x-tenant")).toBe("acme");
    expect(call.context.get(kTenant)).toBe("acme");
    expect(new CallContext().get(kTenant)).toBeUndefined(); // the default
    await expect(h(makeCall("listActions", {}))).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
  });

  it("reportBugs reports errors that are not FlightErrors, from unary answers and from streams", async () => {
    const bugs: string[] = [];
    const broken: FlightHandler = async (call) => {
      if (call.method === "getFlightInfo") throw new TypeError("oops");
      if (call.method === "doGet")
        return (async function* () {
          yield message(1);
          throw new RangeError("stream bug");
        })();
      throw new FlightError(StatusCode.NOT_FOUND, "no such flight");
    };
    const h = composeMiddleware([reportBugs((err, method) => bugs.push(`${method}: ${(err as Error).message}`))], broken);
    await expect(h(makeCall("getFlightInfo", pathDescriptor("x")))).rejects.toThrow("oops");
    await expect(collect((await h(makeCall("doGet", { ticket: new Uint8Array(0) }))) as FlightResponse<"doGet">)).rejects.toThrow("stream bug");
    await expect(h(makeCall("getSchema", pathDescriptor("x")))).rejects.toMatchObject({ code: StatusCode.NOT_FOUND });
    expect(bugs).toEqual(["getFlightInfo: oops", "doGet: stream bug"]);
  });

  it("a factory returns [middleware, ...settings]; splitServerParts takes them apart for a test", async () => {
    const { middleware, settings } = splitServerParts(callCounter());
    expect(settings.map((s) => s.kind)).toEqual(["stats", "action"]);
    const h = composeMiddleware(middleware, fakeHandler);
    await h(makeCall("listActions", {}));
    await h(makeCall("listActions", {}));
    const action = settings.find((s): s is ActionSetting => s.kind === "action")!;
    const out = (await action.handler(new Uint8Array(0), makeCall("doAction", { type: "call-counts", body: new Uint8Array(0) }))) as { body: Uint8Array };
    expect(JSON.parse(Buffer.from(out.body).toString())).toEqual({ listActions: 2 });
  });

  it("on a real server: order, short-circuit with trailers, response headers, stats of a factory", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), callCounter(), tenantHeader, maintenance, whoami);
    await server.start();
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`, { metadata: { "x-tenant": "acme" } });
    try {
      const [r] = await client.doAction("whoami");
      expect(Buffer.from(r!.body).toString()).toBe("acme");
      const d = pathDescriptor("t");
      const err = await client
        .putTable(d, tableFromArrays({ v: Int32Array.from([1, 2, 3]) }))
        .then(() => undefined, (e: FlightError) => e);
      expect(err).toMatchObject({ code: StatusCode.UNAVAILABLE, message: "writes are paused for maintenance", metadata: { "retry-after-ms": "60000" } });
      await expect(collect(client.doPutRaw(d, tableMessages(d, 3), { metadata: { "x-tenant": "Not Valid" } }).results)).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
      // callCounter is outermost: it counted the calls tenantHeader refused too.
      expect((server.stats() as { callCounter: Record<string, number> }).callCounter).toMatchObject({ doAction: 1, doPut: 2 });
    } finally {
      client.close();
      await server.shutdown({ graceMs: 100 });
    }
  });
});
