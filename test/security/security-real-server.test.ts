// The security middleware on a real server (grpc-js), against a grpc-js client and pyarrow.
import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { MemoryStore, serverConfig, splitIpcStream, withStore, type FlightData, type FlightDescriptor, type FlightInfo } from "@blackice/flight-core";
import { createFlightServer, proto, type FlightServer } from "@blackice/flight";
import {
  HMAC_HEADERS,
  authorize,
  basicTokenAuth,
  canonicalizeFlightDescriptor,
  encodeFlightDescriptor,
  hmacAuth,
  hmacSigner,
  merkleIntegrity,
  pathPrefixPolicy,
  readMerkleMetadata,
  tls,
  verifyBatchProof,
  verifyFlightStream,
} from "@blackice/flight-security";
import { makeTestCerts, type TestCerts } from "../../packages/security/src/test-certs";
import { run, venvPython } from "../helpers/python";
import { bidi, bidiWithHeaders, metadata, rawClient, serverStream, serverStreamCall, unary, type RawClient } from "../helpers/raw-flight-client";

const PATHS = {
  handshake: "/arrow.flight.protocol.FlightService/Handshake",
  getFlightInfo: "/arrow.flight.protocol.FlightService/GetFlightInfo",
  doGet: "/arrow.flight.protocol.FlightService/DoGet",
  doPut: "/arrow.flight.protocol.FlightService/DoPut",
  doAction: "/arrow.flight.protocol.FlightService/DoAction",
  listActions: "/arrow.flight.protocol.FlightService/ListActions",
};
const pathD = (...p: string[]): FlightDescriptor => ({ type: 1, cmd: new Uint8Array(0), path: p });

function ipcRequests(d: FlightDescriptor, rows: number): FlightData[] {
  const table = tableFromArrays({ id: Int32Array.from({ length: rows }, (_, i) => i), v: Float64Array.from({ length: rows }, (_, i) => i / 3) });
  const messages = splitIpcStream(tableToIPC(table, "stream"));
  return messages.map((m, i) => ({ flightDescriptor: i === 0 ? d : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: i === 0 ? new Uint8Array(0) : Buffer.from(`batch-${i}`) }));
}

describe("hmacAuth on a real server", () => {
  const SECRET = "real-server-hmac-secret-0123456789abcdef";
  let server: FlightServer;
  let client: RawClient;
  const OPS_SECRET = "real-server-hmac-ops-secret-0123456789abcdef";
  const sign = hmacSigner({ keyId: "ci", secret: SECRET });
  const signOps = hmacSigner({ keyId: "ops", secret: OPS_SECRET });
  const signed = async (p: string, body: { message?: Uint8Array; descriptor?: Uint8Array }) => metadata(await sign({ path: p, ...body }));

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), hmacAuth({ keys: [{ keyId: "ci", secret: SECRET }, { keyId: "ops", secret: OPS_SECRET, roles: ["admin"] }] }));
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("accepts signed calls of every kind and refuses unsigned ones", async () => {
    const actions = await serverStream<{ type: string }>(client, "listActions", {}, await signed(PATHS.listActions, { message: proto.Empty.encode({}).finish() }));
    expect(actions.map((a) => a.type)).toContain("ping");
    await expect(serverStream(client, "listActions", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: "request authentication failed" });

    const d = pathD("hmac", "flight");
    // v2: the messages are sealed by a trailing metadata-only message.
    const { headers: putHeaders, sealer } = await sign.signStream!({ path: PATHS.doPut, descriptor: proto.FlightDescriptor.encode(d).finish() });
    const requests = ipcRequests(d, 50);
    for (const r of requests) sealer.update(r);
    const seal = { flightDescriptor: undefined, dataHeader: new Uint8Array(0), dataBody: new Uint8Array(0), appMetadata: sealer.seal() };
    await bidi(client, "doPut", [...requests, seal], metadata(putHeaders));
    const info = await unary<FlightInfo>(client, "getFlightInfo", d, await signed(PATHS.getFlightInfo, { message: proto.FlightDescriptor.encode(d).finish() }));
    expect(info.totalRecords).toBe(50);
    const ticket = info.endpoint[0]!.ticket!;
    const got = await serverStream(client, "doGet", ticket, await signed(PATHS.doGet, { message: proto.Ticket.encode(ticket).finish() }));
    expect(got.length).toBeGreaterThan(1);
    const hs = await bidiWithHeaders(client, "handshake", [{ protocolVersion: 0, payload: new Uint8Array(0) }], await signed(PATHS.handshake, {}));
    expect(hs.messages).toHaveLength(1);
  });

  it("refuses a replay, a call signed for another method, a DoPut whose descriptor differs from the signed one", async () => {
    const md = await signed(PATHS.listActions, { message: new Uint8Array(0) });
    await serverStream(client, "listActions", {}, md);
    await expect(serverStream(client, "listActions", {}, md)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const d = pathD("x");
    await expect(unary(client, "getFlightInfo", d, await signed(PATHS.getFlightInfo.replace("GetFlightInfo", "GetSchema"), { message: proto.FlightDescriptor.encode(d).finish() }))).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    const md2 = await signed(PATHS.doPut, { descriptor: proto.FlightDescriptor.encode(pathD("signed")).finish() });
    await expect(bidi(client, "doPut", ipcRequests(pathD("other"), 5), md2)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect((await server.store.get(pathD("other")))).toBeUndefined();
    // The full stats (with the hmac section) are for the admin role; "ci" sees only its own calls.
    const statsAction = { type: "stats", body: new Uint8Array(0) };
    const statsMessage = proto.Action.encode(statsAction).finish();
    const [own] = await serverStream<{ body: Uint8Array }>(client, "doAction", statsAction, await signed(PATHS.doAction, { message: statsMessage }));
    const ownStats = JSON.parse(Buffer.from(own!.body).toString());
    expect(Object.keys(ownStats).sort()).toEqual(["calls", "identity"]);
    expect(ownStats.identity).toBe("ci");
    const opsMd = metadata(await signOps({ path: PATHS.doAction, message: statsMessage }));
    const [stats] = await serverStream<{ body: Uint8Array }>(client, "doAction", statsAction, opsMd);
    const hmac = JSON.parse(Buffer.from(stats!.body).toString()).hmac;
    expect(hmac.keys).toEqual(["ci", "ops"]);
    expect(hmac.rejected.replayed).toBeGreaterThanOrEqual(1);
    expect(hmac.rejected["bad-mac"]).toBeGreaterThanOrEqual(2);
    expect(hmac.rejected.missing).toBeGreaterThanOrEqual(1);
  });

  it("the signed header names are the documented ones", async () => {
    expect(Object.keys(await sign({ path: PATHS.handshake })).sort()).toEqual(Object.values(HMAC_HEADERS).sort());
  });
});

describe("hmacAuth with allowUnsigned on a real server", () => {
  const SECRET = "real-server-hmac-secret-0123456789abcdef";
  let server: FlightServer;
  let client: RawClient;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), hmacAuth({ keys: [{ keyId: "ops", secret: SECRET, roles: ["admin"] }], allowUnsigned: true }));
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("an unsigned call is anonymous: no gc, no server figures; the admin key still gets both", async () => {
    const stats = { type: "stats", body: new Uint8Array(0) };
    const [anon] = await serverStream<{ body: Uint8Array }>(client, "doAction", stats);
    expect(JSON.parse(Buffer.from(anon!.body).toString())).toEqual({ identity: null, calls: {} });
    await expect(serverStream(client, "doAction", { type: "gc", body: new Uint8Array(0) })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const sign = hmacSigner({ keyId: "ops", secret: SECRET });
    const md = metadata(await sign({ path: PATHS.doAction, message: proto.Action.encode(stats).finish() }));
    const [full] = await serverStream<{ body: Uint8Array }>(client, "doAction", stats, md);
    expect(JSON.parse(Buffer.from(full!.body).toString())).toHaveProperty("memory.rss");
  });
});

describe("the canonical descriptor encoding equals the binding's ts-proto encoding", () => {
  it("for many descriptors", () => {
    const samples: FlightDescriptor[] = [
      pathD("a"),
      pathD("telemetry", "host 1", "cpu/%", "é", ""),
      { type: 2, cmd: Buffer.from("SELECT * FROM t"), path: [] },
      { type: 2, cmd: new Uint8Array(300).fill(7), path: [] },
      { type: 0, cmd: new Uint8Array(0), path: [] },
      { type: 1, cmd: Buffer.from("ignored"), path: ["both"] },
      { type: -1, cmd: new Uint8Array(0), path: [] },
      { type: 1, cmd: new Uint8Array(0), path: Array.from({ length: 50 }, (_, i) => "seg".repeat(i)) },
    ];
    for (const d of samples) {
      const tsProto = Buffer.from(proto.FlightDescriptor.encode(d).finish());
      expect(Buffer.from(encodeFlightDescriptor(d)).toString("hex")).toBe(tsProto.toString("hex"));
      expect(Buffer.from(canonicalizeFlightDescriptor(tsProto)).toString("hex")).toBe(tsProto.toString("hex"));
      // and what the server decodes from those bytes encodes back to them
      expect(Buffer.from(encodeFlightDescriptor(proto.FlightDescriptor.decode(tsProto))).equals(tsProto)).toBe(true);
    }
  });
});

describe("merkleIntegrity on a real server", () => {
  let server: FlightServer;
  let client: RawClient;
  const store = new MemoryStore({ enableGC: false });

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), withStore(store), merkleIntegrity());
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
    store.close();
  });

  it("a DoGet verifies against the FlightInfo's root, and each batch against its proof", async () => {
    const d = pathD("merkle", "real");
    const sent = ipcRequests(d, 5000);
    await bidi(client, "doPut", sent);
    const info = await unary<FlightInfo>(client, "getFlightInfo", d);
    const expected = readMerkleMetadata(info)!;
    expect(expected).toMatchObject({ alg: "sha256-rfc6962", leaves: sent.length });
    const received: FlightData[] = [];
    for await (const m of verifyFlightStream(serverStreamCall<FlightData>(client, "doGet", info.endpoint[0]!.ticket), expected)) received.push(m);
    expect(received).toHaveLength(sent.length);
    const [res] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "merkle-proof", body: Buffer.from(JSON.stringify({ path: d.path, index: 1 })) });
    expect(verifyBatchProof(received[1]!, res!.body, expected).index).toBe(1);
    expect(() => verifyBatchProof(received[0]!, res!.body, expected)).toThrow(/does not match/);
  });
});

describe("basicTokenAuth + authorize with pyarrow's authenticate_basic_token", () => {
  let server: FlightServer;
  const store = new MemoryStore({ enableGC: false });

  beforeAll(async () => {
    const users: Record<string, string> = { alice: "correct horse", root: "root-pass" };
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      withStore(store),
      basicTokenAuth({ validate: async (u, p) => (users[u] !== undefined && users[u] === p ? { subject: u } : undefined), tokenTtlMs: 60_000 }),
      authorize(pathPrefixPolicy({ alice: ["telemetry"], root: ["*"] })),
      merkleIntegrity(),
    );
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
    store.close();
  });

  it("logs in with the Basic header, uses the Bearer token, and is held to its prefixes", async () => {
    const result = await run(venvPython(), [path.join(__dirname, "pyarrow_auth_client.py")], { env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${server.port}` } });
    if (result.code !== 0) throw new Error(`python failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    const out = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(out).toMatchObject({
      bad_password: "unauthenticated",
      no_token: "unauthenticated",
      header_name: "authorization",
      header_scheme: "Bearer",
      alice_put_own: "ok",
      alice_put_other: "unauthorized",
      root_put_other: "ok",
      alice_get_rows: 100,
      alice_read_other: "unauthorized",
      alice_list: ["telemetry/cpu"],
      root_list: ["secret/x", "telemetry/cpu"],
      bad_token: "unauthenticated",
    });
    expect(out.alice_merkle).toMatchObject({ alg: "sha256-rfc6962", leaves: expect.any(Number) });
  });
});

describe("tls() on a real server", () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = makeTestCerts();
  });
  afterAll(() => certs?.remove());

  it("serves TLS, and with a client CA requires a client certificate (mTLS)", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), tls({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }));
    await server.start();
    const ca = fs.readFileSync(certs.caCert);
    const withCert = rawClient(server.port, { credentials: grpc.credentials.createSsl(ca, fs.readFileSync(certs.clientKey), fs.readFileSync(certs.clientCert)), host: "localhost" });
    const withoutCert = rawClient(server.port, { credentials: grpc.credentials.createSsl(ca), host: "localhost" });
    try {
      expect(server.location).toMatch(/^grpc\+tls:/);
      const actions = await serverStream<{ type: string }>(withCert, "listActions", {});
      expect(actions.length).toBeGreaterThan(0);
      await expect(serverStream(withoutCert, "listActions", {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      withCert.close();
      withoutCert.close();
      await server.shutdown({ graceMs: 100 });
    }
  });

  it("pyarrow connects over TLS with the CA as its root", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), tls({ certFile: certs.serverCert, keyFile: certs.serverKey }));
    await server.start();
    try {
      const script = [
        "import os, pyarrow.flight as f",
        "c = f.FlightClient('grpc+tls://localhost:' + os.environ['PORT'], tls_root_certs=open(os.environ['CA'], 'rb').read())",
        "print(sorted(a.type for a in c.list_actions())[0])",
      ].join("\n");
      const result = await run(venvPython(), ["-c", script], { env: { PORT: String(server.port), CA: certs.caCert } });
      if (result.code !== 0) throw new Error(`python failed:\n${result.stderr}`);
      expect(result.stdout.trim()).toBe("CancelFlightInfo");
    } finally {
      await server.shutdown({ graceMs: 100 });
    }
  });
});
