// The built-in management actions (stats, gc, delete) with and without an identity on the call.
// A test middleware authenticates from headers (x-test-user, x-test-roles) and publishes the
// identity under core's kIdentity, and marks every call kAuthenticationConfigured, as hmacAuth
// and basicTokenAuth do.
import * as grpc from "@grpc/grpc-js";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import {
  FLIGHT_METHODS,
  FlightError,
  MemoryStore,
  StatusCode,
  defineAction,
  kAuthenticationConfigured,
  kIdentity,
  serverConfig,
  splitIpcStream,
  withStore,
  type FlightMiddleware,
  type FlightStore,
} from "@blackice/flight-core";
import * as pb from "../gen/Flight";
import { MAX_COUNTED_SUBJECTS, callCountsBySubject, createFlightServer, type FlightServer } from "./create-flight-server";
import { bidi, rawClient, serverStream, unary, type RawClient } from "../../../../test/helpers/raw-flight-client";

const path = (...segments: string[]) => ({ type: 1, cmd: new Uint8Array(0), path: segments });

/** Every method at zero, then the given counts: the exact shape of a caller's `calls`. */
const callsWith = (counts: Partial<Record<(typeof FLIGHT_METHODS)[number], { total: number; byCode: Record<string, number> }>>) => ({
  ...Object.fromEntries(FLIGHT_METHODS.map((m) => [m, { total: 0, byCode: {} }])),
  ...counts,
});

const headerAuth: FlightMiddleware = (next) =>
  async function headerAuthenticate(call) {
    call.context.set(kAuthenticationConfigured, true);
    const user = call.headers.get("x-test-user")?.[0];
    if (typeof user === "string") {
      const roles = call.headers.get("x-test-roles")?.[0];
      call.context.set(kIdentity, typeof roles === "string" ? { subject: user, method: "test", roles: roles.split(",") } : { subject: user, method: "test" });
    }
    return next(call);
  };

/** Refuses the `forbidden` action before the handler: such calls never reach the store handler. */
const refuseForbidden: FlightMiddleware = (next) =>
  async function refuse(call) {
    if (call.method === "doAction" && call.request.type === "forbidden") throw new FlightError(StatusCode.PERMISSION_DENIED, "forbidden");
    return next(call);
  };

function as(user: string, roles?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("x-test-user", user);
  if (roles !== undefined) md.set("x-test-roles", roles);
  return md;
}

function putRequests(...segments: string[]) {
  const table = tableFromArrays({ id: Int32Array.from({ length: 10 }, (_, i) => i) });
  return splitIpcStream(tableToIPC(table, "stream")).map((m, i) => ({
    flightDescriptor: i === 0 ? path(...segments) : undefined,
    dataHeader: m.header,
    dataBody: m.body,
    appMetadata: new Uint8Array(0),
  }));
}

async function action(client: RawClient, type: string, body: string, md?: grpc.Metadata): Promise<unknown> {
  const results = await serverStream<{ body: Uint8Array }>(client, "doAction", { type, body: Buffer.from(body) }, md);
  return JSON.parse(Buffer.from(results[0]!.body).toString("utf8"));
}

async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

describe("built-in actions when calls carry an identity", () => {
  let server: FlightServer;
  let client: RawClient;

  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      headerAuth,
      refuseForbidden,
      defineAction("forbidden", "refused by middleware", async () => ({ body: new Uint8Array(0) })),
    );
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("gc: PERMISSION_DENIED without the admin role, runs for an admin", async () => {
    const err = await failure(serverStream(client, "doAction", { type: "gc", body: new Uint8Array(0) }, as("carol")));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe("gc requires the admin role");
    const other = await failure(serverStream(client, "doAction", { type: "gc", body: new Uint8Array(0) }, as("carol", "reader,writer")));
    expect(other.code).toBe(grpc.status.PERMISSION_DENIED);
    const report = await action(client, "gc", "", as("root", "ops,admin"));
    expect(report).toEqual({ flightsRemoved: expect.any(Number), bytesFreed: expect.any(Number), durationMs: expect.any(Number) });
  });

  it("stats: a non-admin gets exactly its own calls, counted when they end, with their codes", async () => {
    // alice: a NOT_FOUND, a put, a get (two streams), a refused gc, and a call refused by
    // middleware (not counted: it never reached the handler). bob's calls are not hers.
    await expect(unary(client, "getFlightInfo", path("alice", "none"), as("alice"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await bidi(client, "doPut", putRequests("alice", "t"), as("alice"));
    const info = await unary<{ endpoint: Array<{ ticket: { ticket: Uint8Array } }> }>(client, "getFlightInfo", path("alice", "t"), as("alice"));
    await serverStream(client, "doGet", info.endpoint[0]!.ticket, as("alice"));
    await failure(serverStream(client, "doAction", { type: "gc", body: new Uint8Array(0) }, as("alice")));
    await failure(serverStream(client, "doAction", { type: "forbidden", body: new Uint8Array(0) }, as("alice")));
    await bidi(client, "doPut", putRequests("bob", "t"), as("bob"));
    await serverStream(client, "listFlights", { expression: new Uint8Array(0) }, as("bob"));

    const mine = await action(client, "stats", "", as("alice"));
    expect(mine).toEqual({
      identity: "alice",
      calls: callsWith({
        getFlightInfo: { total: 2, byCode: { NOT_FOUND: 1, OK: 1 } },
        doPut: { total: 1, byCode: { OK: 1 } },
        doGet: { total: 1, byCode: { OK: 1 } },
        doAction: { total: 1, byCode: { PERMISSION_DENIED: 1 } },
      }),
    });
    // The stats call itself is counted once it has ended.
    const again = (await action(client, "stats", "", as("alice"))) as { calls: Record<string, unknown> };
    expect(again.calls.doAction).toEqual({ total: 2, byCode: { PERMISSION_DENIED: 1, OK: 1 } });

    const bobs = await action(client, "stats", "", as("bob", "reader"));
    expect(bobs).toEqual({ identity: "bob", calls: callsWith({ doPut: { total: 1, byCode: { OK: 1 } }, listFlights: { total: 1, byCode: { OK: 1 } } }) });
    // A caller with no calls yet sees zeros, and nothing of the server.
    expect(await action(client, "stats", "", as("dave"))).toEqual({ identity: "dave", calls: callsWith({}) });
  });

  it("stats: an admin gets the full JSON, server-wide counts included", async () => {
    const full = (await action(client, "stats", "", as("root", "admin"))) as Record<string, unknown>;
    expect(full).toMatchObject({
      flights: expect.any(Number),
      memory: { used: expect.any(Number), limit: expect.any(Number), rss: expect.any(Number) },
      transport: expect.any(Object),
      uptimeMs: expect.any(Number),
    });
    const calls = full.calls as Record<string, { total: number; byCode: Record<string, number> }>;
    // Server-wide: the call refused by middleware is counted there.
    expect(calls.doAction.byCode.PERMISSION_DENIED).toBeGreaterThanOrEqual(3);
    expect(full).not.toHaveProperty("identity");
  });

  it("delete without authorize(): any authenticated caller may write, so may delete, any flight", async () => {
    await bidi(client, "doPut", putRequests("erin", "keep"), as("erin"));
    expect(await action(client, "delete", JSON.stringify({ path: ["erin", "keep"] }), as("frank"))).toEqual({ deleted: 1, missing: [] });
    await expect(unary(client, "getFlightInfo", path("erin", "keep"), as("erin"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("a call let through without identity (as allowUnsigned/publicMethods do) is anonymous: no gc, no figures", async () => {
    expect(await action(client, "stats", "")).toEqual({ identity: null, calls: {} });
    const err = await failure(action(client, "gc", ""));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toMatch(/admin role/);
  });
});

describe("built-in actions without authentication", () => {
  it("are open to every caller, as before: full stats, gc, delete", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    const client = rawClient(server.port);
    try {
      await bidi(client, "doPut", putRequests("open", "t"));
      const full = (await action(client, "stats", "")) as Record<string, unknown>;
      expect(full).toMatchObject({ flights: 1, memory: { rss: expect.any(Number) }, calls: { doPut: { total: 1, byCode: { OK: 1 } } } });
      expect(full).toEqual(expect.objectContaining({ transport: expect.any(Object), gc: expect.any(Object) }));
      expect(await action(client, "gc", "")).toHaveProperty("bytesFreed");
      expect(await action(client, "delete", JSON.stringify({ path: ["open", "t"] }))).toEqual({ deleted: 1, missing: [] });
      expect(server.store.stats().flights).toBe(0);
    } finally {
      client.close();
      await server.shutdown({ graceMs: 10 });
    }
  });
});

describe("built-in actions on a store without capabilities", () => {
  it("gc is UNIMPLEMENTED, RenewFlightEndpoint answers the endpoint unchanged, delete and stats work", async () => {
    const inner = new MemoryStore({ enableGC: false });
    // Only what every FlightStore has: no TTL, no GC, no memory limit.
    const bare: FlightStore = {
      beginPut: (d, schema, o) => inner.beginPut(d, schema, o),
      get: (d) => inner.get(d),
      getByTicket: (t) => inner.getByTicket(t),
      ticketFor: (f) => inner.ticketFor(f),
      list: (p) => inner.list(p),
      delete: (d) => inner.delete(d),
      stats: () => ({ flights: inner.stats().flights, rows: inner.stats().rows, bytes: inner.stats().bytes }),
      close: () => inner.close(),
    };
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), withStore(bare));
    await server.start();
    const client = rawClient(server.port);
    try {
      await bidi(client, "doPut", putRequests("bare", "t"));
      const err = await failure(action(client, "gc", ""));
      expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(err.details).toMatch(/no GC capability/);
      const info = await unary<{ endpoint: Array<{ ticket: { ticket: Uint8Array } }> }>(client, "getFlightInfo", path("bare", "t"));
      const ticket = info.endpoint[0]!.ticket;
      const renewBody = pb.RenewFlightEndpointRequest.encode({ endpoint: { ticket, location: [], expirationTime: undefined, appMetadata: new Uint8Array(0) } }).finish();
      const [renewed] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "RenewFlightEndpoint", body: renewBody });
      const endpoint = pb.FlightEndpoint.decode(renewed!.body);
      expect(Buffer.from(endpoint.ticket!.ticket).toString()).toBe("p:bare/t");
      expect(endpoint.expirationTime).toBeUndefined();
      const stats = (await action(client, "stats", "")) as Record<string, unknown>;
      expect(stats).toMatchObject({ flights: 1, rows: 10 });
      expect(stats).not.toHaveProperty("gc");
      expect(await action(client, "delete", JSON.stringify({ path: ["bare", "t"] }))).toEqual({ deleted: 1, missing: [] });
      expect(await inner.get(path("bare", "t"))).toBeUndefined();
    } finally {
      client.close();
      await server.shutdown({ graceMs: 10 });
      await inner.close();
    }
  });
});

describe("callCountsBySubject", () => {
  it("keeps at most max subjects, dropping the one counted least recently", () => {
    const c = callCountsBySubject(3);
    c.count("a", "doGet", StatusCode.OK);
    c.count("b", "doGet", StatusCode.OK);
    c.count("c", "doGet", StatusCode.NOT_FOUND);
    c.count("a", "doPut", StatusCode.OK); // a is now the most recent
    c.count("d", "doGet", StatusCode.OK); // drops b
    expect(c.size).toBe(3);
    expect(c.of("b").doGet).toEqual({ total: 0, byCode: {} });
    expect(c.of("a").doGet).toEqual({ total: 1, byCode: { OK: 1 } });
    expect(c.of("a").doPut).toEqual({ total: 1, byCode: { OK: 1 } });
    expect(c.of("c").doGet).toEqual({ total: 1, byCode: { NOT_FOUND: 1 } });
    expect(MAX_COUNTED_SUBJECTS).toBe(10_000);
  });
});
