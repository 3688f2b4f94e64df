import * as grpc from "@grpc/grpc-js";
import { tableToIPC, tableFromArrays } from "apache-arrow";
import {
  FlightError,
  MemoryStore,
  StatusCode,
  defineAction,
  onLifecycle,
  serverConfig,
  splitIpcStream,
  withStore,
  wrapStore,
  type FlightMiddleware,
  type FlightStore,
} from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { bidi, rawClient, serverStream, unary, type RawClient } from "../../../../test/helpers/raw-flight-client";

const path = (...segments: string[]) => ({ type: 1, cmd: new Uint8Array(0), path: segments });

function ipcMessages(rows: number) {
  const table = tableFromArrays({ id: Int32Array.from({ length: rows }, (_, i) => i), v: Float64Array.from({ length: rows }, (_, i) => i / 2) });
  return splitIpcStream(tableToIPC(table, "stream"));
}

describe("createFlightServer", () => {
  const log: string[] = [];
  const tag =
    (name: string): FlightMiddleware =>
    (next) =>
      async function tagged(call) {
        log.push(`${name}>${call.method}`);
        const res = await next(call);
        log.push(`${name}<${call.method}`);
        return res;
      };
  let server: FlightServer;
  let client: RawClient;

  beforeAll(async () => {
    server = createFlightServer(
      tag("a"),
      serverConfig({ addr: "127.0.0.1:0" }),
      [tag("b"), tag("c")],
      defineAction("fail", "always fails", async () => {
        throw new FlightError(StatusCode.FAILED_PRECONDITION, "as designed");
      }),
    );
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("runs middleware in the order given, the first outermost", async () => {
    log.length = 0;
    await serverStream(client, "listActions", {});
    expect(log).toEqual(["a>listActions", "b>listActions", "c>listActions", "c<listActions", "b<listActions", "a<listActions"]);
  });

  it("serves a unary call (GetFlightInfo) and maps a missing flight to NOT_FOUND", async () => {
    await expect(unary(client, "getFlightInfo", path("nope"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("serves client streaming (DoPut) then server streaming (DoGet) with the same bytes and metadata", async () => {
    const messages = ipcMessages(1000);
    const requests = messages.map((m, i) => ({
      flightDescriptor: i === 0 ? path("raw", "put") : undefined,
      dataHeader: m.header,
      dataBody: m.body,
      appMetadata: i === 0 ? new Uint8Array(0) : Buffer.from(`m${i}`),
    }));
    const acks = await bidi<{ appMetadata: Uint8Array }>(client, "doPut", requests);
    expect(acks.map((a) => Buffer.from(a.appMetadata).toString())).toEqual(requests.slice(1).map((_, i) => `m${i + 1}`));
    const info = await unary<{ totalRecords: number; endpoint: Array<{ ticket: { ticket: Uint8Array }; location: Array<{ uri: string }> }> }>(
      client,
      "getFlightInfo",
      path("raw", "put"),
    );
    expect(info.totalRecords).toBe(1000);
    expect(info.endpoint[0].location[0].uri).toBe(`grpc+tcp://127.0.0.1:${server.port}`);
    const got = await serverStream<{ dataHeader: Uint8Array; dataBody: Uint8Array; appMetadata: Uint8Array }>(client, "doGet", info.endpoint[0].ticket);
    expect(got).toHaveLength(messages.length);
    got.forEach((m, i) => {
      expect(Buffer.compare(m.dataHeader, messages[i].header)).toBe(0);
      expect(Buffer.compare(m.dataBody, messages[i].body)).toBe(0);
      expect(Buffer.from(m.appMetadata).toString()).toBe(i === 0 ? "" : `m${i}`);
    });
  });

  it("serves bidi streaming (DoExchange echo)", async () => {
    const messages = ipcMessages(10);
    const requests = messages.map((m, i) => ({ flightDescriptor: i === 0 ? path("echo") : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: new Uint8Array(0) }));
    const echoed = await bidi<{ dataHeader: Uint8Array }>(client, "doExchange", requests);
    expect(echoed.map((m) => Buffer.from(m.dataHeader).toString("hex"))).toEqual(messages.map((m) => Buffer.from(m.header).toString("hex")));
  });

  it("gives a FlightError's code on the streaming path too", async () => {
    await expect(serverStream(client, "doAction", { type: "fail", body: new Uint8Array(0) })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: "as designed",
    });
  });

  it("refuses a record batch before the schema with INVALID_ARGUMENT and stores nothing", async () => {
    const messages = ipcMessages(5);
    const requests = [{ flightDescriptor: path("bad", "order"), dataHeader: messages[1].header, dataBody: messages[1].body, appMetadata: new Uint8Array(0) }];
    await expect(bidi(client, "doPut", requests)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(unary(client, "getFlightInfo", path("bad", "order"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("turns an unexpected error into INTERNAL with a generic message, and reports it to onError", async () => {
    const seen: Array<[unknown, { method?: string }]> = [];
    const s = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0", onError: (err, ctx) => seen.push([err, ctx]) }),
      defineAction("boom", "a bug", async () => {
        throw new Error("secret internal detail");
      }),
    );
    await s.start();
    const c = rawClient(s.port);
    try {
      const err = await serverStream(c, "doAction", { type: "boom", body: new Uint8Array(0) }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.INTERNAL);
      expect(err?.details).toBe("internal error");
      expect(seen).toHaveLength(1);
      expect((seen[0][0] as Error).message).toBe("secret internal detail");
      expect(seen[0][1].method).toBe("doAction");
    } finally {
      c.close();
      await s.shutdown({ graceMs: 10 });
    }
  });

  it("refuses bad options when built, not on the first request", () => {
    expect(() => createFlightServer(serverConfig({ maxMessageBytes: 512 * 1024 * 1024 }))).toThrow(/maxMessageBytes/);
    expect(() => createFlightServer(serverConfig({ addr: "nope" }))).toThrow(/host:port/);
    expect(() => createFlightServer(42 as never)).toThrow(TypeError);
  });

  it("rejects start() clearly when the port is taken", async () => {
    const other = createFlightServer(serverConfig({ addr: `127.0.0.1:${server.port}` }));
    await expect(other.start()).rejects.toThrow(/cannot listen on 127\.0\.0\.1/);
    await other.shutdown({ graceMs: 0 });
  });
});

describe("createFlightServer and its store", () => {
  /** A store with every member a FlightStore must have and no capability. */
  const bareStore = (inner: MemoryStore): FlightStore => ({
    beginPut: (d, schema, o) => inner.beginPut(d, schema, o),
    get: (d) => inner.get(d),
    getByTicket: (t) => inner.getByTicket(t),
    ticketFor: (f) => inner.ticketFor(f),
    list: (p) => inner.list(p),
    delete: (d) => inner.delete(d),
    stats: () => ({ flights: inner.stats().flights, rows: inner.stats().rows, bytes: inner.stats().bytes }),
    close: () => inner.close(),
  });

  it("applies serverConfig's store settings to a store given by withStore", async () => {
    const store = new MemoryStore({ enableGC: false, maxMemoryBytes: 1000, defaultTtlMs: 5 });
    const server = createFlightServer(withStore(store), serverConfig({ ttl: 60_000, maxMemoryBytes: 4096, gcInterval: 1234, enableGC: true }));
    expect(server.store).toBe(store);
    expect(store.stats()).toMatchObject({ memory: { maxMemoryBytes: 4096 }, ttl: { defaultTtlMs: 60_000 }, gc: { gcEnabled: true, gcIntervalMs: 1234 } });
    expect(server.stats()).toMatchObject({ defaultTtlMs: 60_000, memory: { limit: 4096 } });
    await store.close();
  });

  it("leaves a withStore store's own settings alone when serverConfig does not give them", async () => {
    const store = new MemoryStore({ enableGC: false, maxMemoryBytes: 1000, defaultTtlMs: 5 });
    createFlightServer(withStore(store), serverConfig({ addr: "127.0.0.1:0" }));
    expect(store.stats()).toMatchObject({ memory: { maxMemoryBytes: 1000 }, ttl: { defaultTtlMs: 5 }, gc: { gcEnabled: false } });
    await store.close();
  });

  it("refuses at build a store setting the store cannot honour, naming it", async () => {
    const inner = new MemoryStore({ enableGC: false });
    const bare = bareStore(inner);
    expect(() => createFlightServer(withStore(bare), serverConfig({ ttl: 1000 }))).toThrow(/serverConfig ttl: the store given by withStore has no TTL capability/);
    expect(() => createFlightServer(withStore(bare), serverConfig({ maxMemoryBytes: 1000 }))).toThrow(/maxMemoryBytes: .* no memory-limit capability/);
    expect(() => createFlightServer(withStore(bare), serverConfig({ enableGC: false }))).toThrow(/enableGC: .* no GC capability/);
    expect(() => createFlightServer(withStore(bare), serverConfig({ gcInterval: 10 }))).toThrow(/gcInterval: .* no GC capability/);
    // Without those settings it serves, and stats leave out the sections it does not have.
    const server = createFlightServer(withStore(bare), serverConfig({ addr: "127.0.0.1:0" }));
    const stats = server.stats();
    expect(stats).toMatchObject({ flights: 0, rows: 0, bytes: 0, memory: { rss: expect.any(Number) } });
    expect(stats).not.toHaveProperty("defaultTtlMs");
    expect(stats).not.toHaveProperty("gc");
    expect(stats.memory).not.toHaveProperty("limit");
    expect(() => withStore({ get: async () => undefined } as never)).toThrow(/withStore: expected a FlightStore/);
    await inner.close();
  });

  it("gives middleware and actions the server's store as call.store, wrapped in wrapStore's order; onCreate sees the same store", async () => {
    const seen: { middleware?: FlightStore; action?: FlightStore; created?: FlightStore } = {};
    const order: string[] = [];
    const tagged = (name: string) =>
      wrapStore(name, (store) => {
        order.push(name);
        return { ...bareStore(store as MemoryStore), label: name } as FlightStore;
      });
    const inner = new MemoryStore({ enableGC: false });
    const server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      withStore(inner),
      tagged("outer"),
      (next) =>
        async function readStore(call) {
          seen.middleware = call.store;
          return next(call);
        },
      defineAction("flights", "counts the flights of call.store", async (_body, call) => {
        seen.action = call.store;
        let n = 0;
        for await (const _ of call.store.list()) n++;
        return { body: Buffer.from(String(n)) };
      }),
      onLifecycle({ onCreate: ({ store }) => (seen.created = store) }),
    );
    // One wrapper here: it wraps the store given by withStore.
    expect(order).toEqual(["outer"]);
    expect((server.store as unknown as { label: string }).label).toBe("outer");
    await server.start();
    const client = rawClient(server.port);
    try {
      const messages = ipcMessages(10);
      await bidi(
        client,
        "doPut",
        messages.map((m, i) => ({ flightDescriptor: i === 0 ? path("via", "call-store") : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: Buffer.alloc(0) })),
      );
      const [result] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "flights", body: Buffer.alloc(0) });
      expect(Buffer.from(result!.body).toString()).toBe("1");
      expect(seen.middleware).toBe(server.store);
      expect(seen.action).toBe(server.store);
      expect(seen.created).toBe(server.store);
      // The put went through the wrapper into the store given by withStore.
      expect((await inner.get(path("via", "call-store")))?.totalRecords).toBe(10);
    } finally {
      client.close();
      await server.shutdown({ graceMs: 100 });
      await inner.close();
    }
  });

  it("applies several wrappers with the first outermost", async () => {
    const order: string[] = [];
    const wrap = (name: string) =>
      wrapStore(name, (store) => {
        order.push(name);
        return Object.assign(Object.create(store) as FlightStore, { label: name });
      });
    const server = createFlightServer(wrap("a"), wrap("b"), wrap("c"));
    expect(order).toEqual(["c", "b", "a"]);
    expect((server.store as unknown as { label: string }).label).toBe("a");
    expect(() => createFlightServer(wrapStore("broken", () => ({}) as FlightStore))).toThrow(/wrapStore\(broken\): wrap must return a FlightStore/);
    await server.shutdown({ graceMs: 0 });
  });
});
