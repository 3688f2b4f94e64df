// HMAC v2 on a real server: a FlightClient signs DoPut with hmacSigner (the stream is sealed),
// and a man in the middle on the network (an HTTP/2 proxy, test/helpers/grpc-mitm.ts) rewrites,
// swaps, drops and adds messages of the signed put. Each is refused with UNAUTHENTICATED and
// nothing is stored; the honest put through the same proxy is stored; the server stays up.
import * as grpc from "@grpc/grpc-js";
import { tableFromArrays } from "apache-arrow";
import { serverConfig } from "@blackice/flight-core";
import { FlightClient, createFlightServer, pathDescriptor, type FlightServer } from "@blackice/flight";
import { hmacAuth, hmacSigner } from "@blackice/flight-security";
import { startGrpcMitm, type MessageTamper } from "../helpers/grpc-mitm";

const SECRET = "hmac-v2-real-server-secret-0123456789abcdef";
const OPS_SECRET = "hmac-v2-real-server-ops-secret-0123456789abcdef";

describe("HMAC v2 seals DoPut: a man in the middle is caught", () => {
  let server: FlightServer;
  let mitm: { port: number; close: () => Promise<void> };
  let tamper: MessageTamper = (s) => s;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), hmacAuth({ keys: [{ keyId: "ingest", secret: SECRET }, { keyId: "ops", secret: OPS_SECRET, roles: ["admin"] }] }));
    await server.start();
    mitm = await startGrpcMitm(server.port, (path) => (path.endsWith("/DoPut") ? tamper : undefined));
  });
  afterAll(async () => {
    await mitm?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  const table = tableFromArrays({ id: Int32Array.from({ length: 90 }, (_, i) => i), v: Float64Array.from({ length: 90 }, (_, i) => i / 4) });
  // The proxy sees serialized FlightData, body (field 1000) last: flipping the last byte changes the last value.
  const flip = (m: Buffer): Buffer => {
    const c = Buffer.from(m);
    c[c.length - 1] ^= 0x01;
    return c;
  };
  // Messages: [schema+descriptor, batch 1, batch 2, batch 3, seal].
  const cases: Array<[string, MessageTamper]> = [
    ["a value rewritten in a batch", (s) => s.map((m, i) => (i === 2 ? flip(m) : m))],
    ["two batches swapped", (s) => [s[0]!, s[2]!, s[1]!, ...s.slice(3)]],
    ["a batch dropped", (s) => [s[0]!, s[1]!, ...s.slice(3)]],
    ["a batch added (replayed)", (s) => [...s.slice(0, 4), s[3]!, s[4]!]],
    ["a batch added after the seal", (s) => [...s, s[1]!]],
    ["the seal dropped", (s) => s.slice(0, 4)],
  ];
  it.each(cases)("%s: UNAUTHENTICATED, nothing stored", async (name, t) => {
    let seen = 0;
    tamper = (s) => {
      seen = s.length;
      return t(s);
    };
    const d = pathDescriptor("mitm", name.replace(/\W+/g, "-"));
    const client = new FlightClient(`grpc://127.0.0.1:${mitm.port}`, { signer: hmacSigner({ keyId: "ingest", secret: SECRET }) });
    try {
      await expect(client.putTable(d, table, { maxBatchRows: 30 })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, message: "request authentication failed" });
    } finally {
      client.close();
    }
    expect(seen).toBe(5);
    expect(await server.store.get(d)).toBeUndefined();
  });

  it("the honest put through the same proxy is stored, and the refusals were counted", async () => {
    tamper = (s) => s;
    const d = pathDescriptor("mitm", "honest");
    const client = new FlightClient(`grpc://127.0.0.1:${mitm.port}`, { signer: hmacSigner({ keyId: "ingest", secret: SECRET }) });
    try {
      await client.putTable(d, table, { maxBatchRows: 30 });
    } finally {
      client.close();
    }
    const ops = new FlightClient(`grpc://127.0.0.1:${server.port}`, { signer: hmacSigner({ keyId: "ops", secret: OPS_SECRET }) });
    try {
      const back = await ops.getTable(d);
      expect(back.numRows).toBe(90);
      expect(back.batches).toHaveLength(3);
      expect(back.getChild("v")!.get(89)).toBe(89 / 4);
      const [stats] = await ops.doAction("stats");
      const hmac = JSON.parse(Buffer.from(stats!.body).toString()).hmac;
      expect(hmac.rejected).toMatchObject({ "bad-seal": 5, unsealed: 1 });
      expect(hmac.sealedStreams).toBe(1);
    } finally {
      ops.close();
    }
  });
});
