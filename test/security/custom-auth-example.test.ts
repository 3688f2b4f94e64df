// examples/custom-auth on real sockets, through FlightClient: the host app's own API-key
// middleware publishes the identity under kIdentity, and authorize(pathPrefixPolicy(...))
// keeps callers out of each other's flights.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CallContext,
  MemoryStore,
  StatusCode,
  composeMiddleware,
  splitServerParts,
  type FlightCall,
  type FlightDescriptor,
  type FlightInfo,
  type FlightResponse,
} from "@blackice/flight-core";
import { FlightClient, cmdDescriptor, pathDescriptor, type CallOptions, type FlightServer } from "@blackice/flight";
import { identityOf } from "@blackice/flight-security";
import { apiKeyAuth } from "../../examples/custom-auth/api-key-auth";
import { main, type CustomAuthConfig } from "../../examples/custom-auth/server";
import { startTsProcess, tableMessages } from "./example-data";

const key = (): string => randomBytes(24).toString("base64url"); // 32 characters
const KEYS = { alice: key(), bob: key(), auditor: key() };
const CONFIG: CustomAuthConfig = {
  callers: {
    alice: { apiKey: KEYS.alice, grants: ["tenants/alice"] },
    bob: { apiKey: KEYS.bob, grants: ["tenants/bob"] },
    auditor: { apiKey: KEYS.auditor, grants: { read: ["tenants"] } },
  },
};
type Who = keyof typeof KEYS;

const ALICE_CPU = pathDescriptor("tenants", "alice", "cpu");
const BOB_SECRETS = pathDescriptor("tenants", "bob", "secrets");
const DENIED = { code: StatusCode.PERMISSION_DENIED };
const UNAUTHENTICATED = { code: StatusCode.UNAUTHENTICATED, message: "authentication failed" };

const as = (who: Who): CallOptions => ({ metadata: { "x-api-key": KEYS[who] } });
const pathsOf = (infos: FlightInfo[]) => infos.map((i) => i.flightDescriptor!.path.join("/")).sort();
const json = (body: unknown) => JSON.stringify(body);

async function drain<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

describe("examples/custom-auth: API keys + authorize(pathPrefixPolicy), through FlightClient", () => {
  let server: FlightServer;
  let client: FlightClient;
  const put = (who: Who, d: FlightDescriptor, rows: number) => drain(client.doPutRaw(d, tableMessages(d, rows, 25), as(who)).results);
  const info = (who: Who, d: FlightDescriptor) => client.getFlightInfo(d, as(who));
  const list = async (who: Who, prefix?: string) => pathsOf(await drain(client.listFlights(prefix, as(who))));

  beforeAll(async () => {
    server = await main(["--port", "0"], { CUSTOM_AUTH_CONFIG: writeConfig(CONFIG) });
    client = new FlightClient(server.location);
    await put("alice", ALICE_CPU, 60);
    await put("bob", BOB_SECRETS, 80);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("serves nothing without a valid key, with one generic message", async () => {
    const cases: Array<[string, CallOptions]> = [
      ["no key", {}],
      ["a wrong key of the right length", { metadata: { "x-api-key": key() } }],
      ["a wrong key of another length", { metadata: { "x-api-key": "x".repeat(40) } }],
      ["another caller's key with a character changed", { metadata: { "x-api-key": KEYS.bob.slice(0, -1) + (KEYS.bob.endsWith("A") ? "B" : "A") } }],
      ["the key as a prefix", { metadata: { "x-api-key": KEYS.alice + "suffix" } }],
      ["two keys", { metadata: { "x-api-key": [KEYS.alice, KEYS.bob] } }],
    ];
    for (const [what, options] of cases) {
      await expect(client.listActions(options)).rejects.toMatchObject(UNAUTHENTICATED);
      await expect(client.getFlightInfo(ALICE_CPU, options)).rejects.toMatchObject(UNAUTHENTICATED);
      const err = await drain(client.listFlights(undefined, options)).catch((e: Error) => e);
      expect({ what, err }).toEqual({ what, err: expect.objectContaining(UNAUTHENTICATED) });
      for (const k of Object.values(KEYS)) expect((err as Error).message).not.toContain(k);
    }
    // Handshake is not exempt, and a refused DoPut stores nothing.
    await expect(client.handshake([{ payload: new Uint8Array(0) }])).rejects.toMatchObject(UNAUTHENTICATED);
    const anon = pathDescriptor("tenants", "anon");
    await expect(drain(client.doPutRaw(anon, tableMessages(anon, 5)).results)).rejects.toMatchObject(UNAUTHENTICATED);
    expect((await server.store.get(anon))).toBeUndefined();
    // The refusals are counted by reason, and the stats never show a key.
    const stats = JSON.stringify(server.stats());
    // The server keeps each value of a repeated header apart, so the "two keys" case (once per
    // listed call) is seen as two values and counted as malformed.
    expect(JSON.parse(stats).apiKeyAuth.rejected).toEqual({ missing: 5, malformed: 3, unknown: 12 });
    for (const k of Object.values(KEYS)) expect(stats).not.toContain(k);
  });

  it("a caller reads its own flights, and cannot read another's by descriptor or by ticket", async () => {
    expect((await info("alice", ALICE_CPU)).totalRecords).toBe(60);
    const bobInfo = await info("bob", BOB_SECRETS);
    expect(bobInfo.totalRecords).toBe(80);
    const bobTicket = bobInfo.endpoint[0]!.ticket!;
    expect((await drain(client.doGetRaw(bobTicket, as("bob")))).length).toBeGreaterThan(1);

    await expect(info("alice", BOB_SECRETS)).rejects.toMatchObject(DENIED);
    await expect(client.getSchema(BOB_SECRETS, as("alice"))).rejects.toMatchObject(DENIED);
    await expect(client.pollFlightInfo(BOB_SECRETS, as("alice"))).rejects.toMatchObject(DENIED);
    // Bob's real ticket, and the same ticket guessed (BlackIce tickets are the flight's key, not secrets).
    await expect(drain(client.doGetRaw(bobTicket, as("alice")))).rejects.toMatchObject(DENIED);
    await expect(drain(client.doGetRaw("p:tenants/bob/secrets", as("alice")))).rejects.toMatchObject(DENIED);
    await expect(client.getTable(BOB_SECRETS, as("alice"))).rejects.toMatchObject(DENIED);
    // A flight that does not exist is refused the same way: no probing for names.
    await expect(info("alice", pathDescriptor("tenants", "bob", "nothing-here"))).rejects.toMatchObject(DENIED);
    await expect(info("alice", pathDescriptor("tenants", "alice", "nothing-here"))).rejects.toMatchObject({ code: StatusCode.NOT_FOUND });
    await expect(info("alice", BOB_SECRETS)).rejects.toMatchObject({ message: "permission denied for getFlightInfo" });
    // Her own, decoded.
    expect((await client.getTable(ALICE_CPU, as("alice"))).numRows).toBe(60);
  });

  it("ListFlights leaves out the flights of other callers", async () => {
    expect(await list("alice")).toEqual(["tenants/alice/cpu"]);
    expect(await list("bob")).toEqual(["tenants/bob/secrets"]);
    expect(await list("alice", "tenants/bob")).toEqual([]);
    expect(await list("auditor")).toEqual(["tenants/alice/cpu", "tenants/bob/secrets"]);
  });

  it("a caller cannot delete another's flight, alone or in a batch with its own", async () => {
    await expect(client.doAction("delete", json({ path: BOB_SECRETS.path }), as("alice"))).rejects.toMatchObject(DENIED);
    await expect(client.doAction("delete", "p:tenants/bob/secrets", as("alice"))).rejects.toMatchObject(DENIED);
    await expect(client.doAction("delete", json({ flights: [{ path: ALICE_CPU.path }, { path: BOB_SECRETS.path }] }), as("alice"))).rejects.toMatchObject(DENIED);
    expect((await server.store.get(BOB_SECRETS))).toBeDefined();
    expect((await server.store.get(ALICE_CPU))).toBeDefined(); // the whole batch was refused
    // Its own: allowed.
    const scratch = pathDescriptor("tenants", "alice", "scratch");
    await put("alice", scratch, 5);
    const [res] = await client.doAction("delete", json({ path: scratch.path }), as("alice"));
    expect(JSON.parse(Buffer.from(res!.body).toString())).toMatchObject({ deleted: 1 });
    expect((await server.store.get(scratch))).toBeUndefined();
  });

  it("a caller cannot overwrite or append to another's flight, nor write beside its prefix", async () => {
    const before = (await server.store.get(BOB_SECRETS))!;
    const messagesBefore = before.messageCount;
    await expect(put("alice", BOB_SECRETS, 10)).rejects.toMatchObject(DENIED);
    await expect(put("alice", pathDescriptor("tenants", "bob"), 10)).rejects.toMatchObject(DENIED);
    // Prefixes match whole segments: tenants/alice does not cover tenants/alice2.
    await expect(put("alice", pathDescriptor("tenants", "alice2", "x"), 10)).rejects.toMatchObject(DENIED);
    // A CMD descriptor is covered by no path prefix.
    await expect(put("alice", cmdDescriptor("SELECT 1"), 5)).rejects.toMatchObject(DENIED);
    expect((await server.store.get(pathDescriptor("tenants", "alice2", "x")))).toBeUndefined();
    const after = (await server.store.get(BOB_SECRETS))!;
    expect(after.messageCount).toBe(messagesBefore);
    expect(after.updatedAt).toBe(before.updatedAt);
    expect((await info("bob", BOB_SECRETS)).totalRecords).toBe(80);
  });

  it("grants can be per operation: the auditor reads everything and writes nothing", async () => {
    expect((await info("auditor", BOB_SECRETS)).totalRecords).toBe(80);
    expect((await client.getTable(ALICE_CPU, as("auditor"))).numRows).toBe(60);
    await expect(put("auditor", pathDescriptor("tenants", "auditor", "x"), 5)).rejects.toMatchObject(DENIED);
    await expect(client.doAction("delete", json({ path: ALICE_CPU.path }), as("auditor"))).rejects.toMatchObject(DENIED);
    // Actions other than ping are closed to everyone (pathPrefixPolicy's default).
    expect(await client.doAction("ping", undefined, as("auditor"))).toHaveLength(1);
    await expect(client.doAction("gc", undefined, as("auditor"))).rejects.toMatchObject(DENIED);
  });
});

describe("apiKeyAuth in memory", () => {
  const call = (headers: Record<string, string[]>): FlightCall =>
    ({ method: "listActions", request: {}, headers: new Map(Object.entries(headers)), context: new CallContext(), responseHeaders: new Map(), signal: new AbortController().signal, peer: "test", path: "/arrow.flight.protocol.FlightService/ListActions", deadline: undefined, rawRequest: undefined, store: new MemoryStore({ enableGC: false }) }) as FlightCall;

  it("publishes the identity under kIdentity for the handler", async () => {
    const { middleware, settings } = splitServerParts(apiKeyAuth({ keys: new Map([["svc", KEYS.alice]]) }));
    expect(settings.map((s) => s.kind)).toEqual(["stats"]);
    let seen: string | undefined;
    const handler = composeMiddleware(middleware, async (c) => {
      seen = identityOf(c)?.subject;
      return (async function* () {})() as FlightResponse;
    });
    await handler(call({ "x-api-key": [KEYS.alice] }));
    expect(seen).toBe("svc");
  });

  it("accepts several keys per subject, for rotation", async () => {
    const { middleware } = splitServerParts(apiKeyAuth({ keys: { svc: [KEYS.alice, KEYS.bob] } }));
    const seen: string[] = [];
    const handler = composeMiddleware(middleware, async (c) => {
      seen.push(identityOf(c)!.subject);
      return (async function* () {})() as FlightResponse;
    });
    await handler(call({ "x-api-key": [KEYS.alice] }));
    await handler(call({ "x-api-key": [KEYS.bob] }));
    await expect(handler(call({ "x-api-key": [KEYS.auditor] }))).rejects.toMatchObject({ code: 16, message: "authentication failed" });
    expect(seen).toEqual(["svc", "svc"]);
  });

  it("refuses bad options at build time without showing a key", () => {
    expect(() => apiKeyAuth({ keys: {} })).toThrow(/at least one subject/);
    expect(() => apiKeyAuth({ keys: { a: "short" } })).toThrow(/shorter than 16 bytes/);
    expect(() => apiKeyAuth({ keys: { a: [] } })).toThrow(/has no key/);
    expect(() => apiKeyAuth({ keys: { a: [KEYS.bob, KEYS.bob] } })).toThrow(/the same key twice/);
    expect(() => apiKeyAuth({ keys: { a: KEYS.alice, b: KEYS.alice } })).toThrow(/same key/);
    try {
      apiKeyAuth({ keys: { a: KEYS.alice, b: KEYS.alice } });
    } catch (err) {
      expect((err as Error).message).not.toContain(KEYS.alice);
    }
    expect(() => apiKeyAuth({ keys: { a: KEYS.alice }, header: "X-Api-Key" })).toThrow(/lower-case/);
  });
});

describe("examples/custom-auth as a process", () => {
  it("starts with ts-node on port 0, serves a caller with a key, refuses one without, stops on SIGTERM", async () => {
    const config = writeConfig(CONFIG);
    const proc = await startTsProcess("examples/custom-auth/server.ts", ["--config", config, "--port", "0"], /listening on (grpc\+tcp:\/\/127\.0\.0\.1:\d+)/);
    const client = new FlightClient(proc.match[1]!);
    try {
      expect((await client.listActions(as("bob"))).map((a) => a.type)).toContain("ping");
      await expect(client.listActions()).rejects.toMatchObject(UNAUTHENTICATED);
      for (const k of Object.values(KEYS)) expect(proc.output()).not.toContain(k);
    } finally {
      client.close();
      expect(await proc.stop()).toBe(0);
    }
  });

  it("refuses to start without a config, naming the problem", async () => {
    await expect(main(["--port", "0"], {})).rejects.toThrow(/--config is required/);
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "custom-auth-")), "callers.json");
    fs.writeFileSync(bad, JSON.stringify({ callers: { eve: { apiKey: "too-short", grants: ["x"] } } }));
    await expect(main(["--config", bad, "--port", "0"], {})).rejects.toThrow(/a key of "eve" is shorter than 16 bytes/);
  });
});

/** Writes a config file (mode 600) in a fresh temporary folder. */
function writeConfig(config: CustomAuthConfig): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "custom-auth-")), "callers.json");
  fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}
