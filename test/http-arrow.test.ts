// Arrow over plain HTTP and gRPC-Web on the gRPC port, against real peers: flights are put
// with pyarrow's Flight client (Arrow C++) and read back with pyarrow.ipc.open_stream over
// HTTP/1.1, with fetch() and apache-arrow's RecordBatchReader, and over HTTP/2.
import * as fs from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as os from "node:os";
import * as https from "node:https";
import * as path from "node:path";
import { RecordBatchReader, tableFromArrays, tableFromIPC, type Table } from "apache-arrow";
import { ReadLease, StatusCode, diskStore, joinIpcStream, serverConfig, withStore, wrapStore, type FlightMiddleware, type FlightStore, type StoredMessage } from "@blackice/flight-core";
import { FlightClient, createFlightServer, proto, query, type FlightServer } from "@blackice/flight";
import { decodeFlightData } from "@blackice/flight/internal";
import { basicTokenAuth, hmacAuth, hmacSigner, tls } from "@blackice/flight-security";
import { callLogger, metrics } from "@blackice/flight-resilience";
import pino from "pino";
import { Registry } from "prom-client";
import { makeTestCerts, type TestCerts } from "./helpers/certs";
import { run, venvPython } from "./helpers/python";

const PEER = path.join(__dirname, "python/browser_peer.py");
const ROWS = 200_000;
const FLIGHT = "/arrow.flight.protocol.FlightService";

interface Summary {
  rows: number;
  sumV?: number;
  sumCpu?: number;
  contentType?: string;
  status?: number;
  body?: string;
}

async function python(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await run(venvPython(), [PEER, ...args], { env, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`browser_peer.py ${args[0]} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** GET over HTTP/2 (prior knowledge): status, headers and the whole body. */
async function h2Get(port: number, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ":method": "GET", ":path": target, ...headers });
      let h: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on("response", (r) => (h = r));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ status: Number(h[":status"]), headers: h, body: Buffer.concat(chunks) }));
      req.on("error", reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

/** One gRPC-Web call with fetch (HTTP/1.1): the data frames' payloads and the trailers. */
async function grpcWeb(port: number, method: string, request: Uint8Array, headers: Record<string, string> = {}, text = false): Promise<{ status: number; messages: Buffer[]; trailers: Record<string, string> }> {
  const framed = Buffer.alloc(5 + request.byteLength);
  framed.writeUInt32BE(request.byteLength, 1);
  Buffer.from(request).copy(framed, 5);
  const res = await fetch(`http://127.0.0.1:${port}${FLIGHT}/${method}`, {
    method: "POST",
    headers: { "content-type": text ? "application/grpc-web-text" : "application/grpc-web+proto", "x-grpc-web": "1", ...headers },
    body: text ? framed.toString("base64") : framed,
  });
  let body = Buffer.from(await res.arrayBuffer());
  if (text) body = Buffer.from(body.toString("latin1").replace(/[^A-Za-z0-9+/=]/g, "").match(/.{1,4}/g)!.map((g) => Buffer.from(g, "base64").toString("latin1")).join(""), "latin1");
  return { status: res.status, ...parseGrpcWebBody(body) };
}

function parseGrpcWebBody(body: Buffer): { messages: Buffer[]; trailers: Record<string, string> } {
  const messages: Buffer[] = [];
  const trailers: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length) {
    const flag = body[pos]!;
    const length = body.readUInt32BE(pos + 1);
    const payload = body.subarray(pos + 5, pos + 5 + length);
    pos += 5 + length;
    if (flag & 0x80) {
      for (const line of payload.toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) trailers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
    } else {
      messages.push(payload);
    }
  }
  return { messages, trailers };
}

const sumV = (table: Table): number => {
  let s = 0;
  for (const batch of table.batches) for (const v of batch.getChild("v")!.toArray() as BigInt64Array) s += Number(v);
  return s;
};

describe("Arrow over plain HTTP and gRPC-Web (open server)", () => {
  let server: FlightServer;
  let put: Record<string, Summary>;

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000 }));
    await server.start();
    put = JSON.parse(await python(["put", `grpc+tcp://127.0.0.1:${server.port}`, String(ROWS)]));
  }, 120_000);
  afterAll(() => server?.shutdown({ graceMs: 100 }));

  const storedBytes = async (p: string[]): Promise<number> => {
    const flight = (await server.store.get({ type: 1, path: p, cmd: new Uint8Array(0) }))!;
    const messages: StoredMessage[] = [flight.schema];
    for await (const m of flight.messages()) messages.push(m);
    return joinIpcStream(messages).byteLength;
  };

  it("pyarrow.ipc.open_stream reads /flight/<path> over HTTP/1.1: rows and value checksum equal to what was put", async () => {
    const got: Summary = JSON.parse(await python(["read", `http://127.0.0.1:${server.port}/flight/big/values`]));
    expect(got.contentType).toBe("application/vnd.apache.arrow.stream");
    expect(got.rows).toBe(ROWS);
    expect(got.sumV).toBe(put["big/values"]!.sumV);
  });

  it("fetch + apache-arrow RecordBatchReader read /ticket/<ticket> from the JSON listing", async () => {
    const list = (await (await fetch(`http://127.0.0.1:${server.port}/flights?prefix=big`)).json()) as Array<{ descriptor: { path: string[] }; totalRecords: number; href: string }>;
    expect(list).toHaveLength(1);
    expect(list[0]!.descriptor.path).toEqual(["big", "values"]);
    expect(list[0]!.totalRecords).toBe(ROWS);
    const res = await fetch(`http://127.0.0.1:${server.port}${list[0]!.href}`);
    expect(res.headers.get("content-type")).toBe("application/vnd.apache.arrow.stream");
    const reader = await RecordBatchReader.from(res.body as unknown as AsyncIterable<Uint8Array>);
    let rows = 0;
    let s = 0;
    for await (const batch of reader) {
      rows += batch.numRows;
      for (const v of batch.getChild("v")!.toArray() as BigInt64Array) s += Number(v);
    }
    expect(rows).toBe(ROWS);
    expect(s).toBe(put["big/values"]!.sumV);
  });

  it("serves the same stream over HTTP/2, byte for byte the stored messages framed as an IPC stream", async () => {
    const res = await h2Get(server.port, "/flight/big/values");
    expect(res.status).toBe(200);
    expect(res.body.byteLength).toBe(await storedBytes(["big", "values"]));
    const table = tableFromIPC(res.body);
    expect(table.numRows).toBe(ROWS);
    expect(sumV(table)).toBe(put["big/values"]!.sumV);
    const all = JSON.parse((await h2Get(server.port, "/flights")).body.toString()) as unknown[];
    expect(all).toHaveLength(2);
  });

  it("answers bad requests with the HTTP status of their Flight code and a JSON error", async () => {
    const notFound = await fetch(`http://127.0.0.1:${server.port}/flight/no/such`);
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ code: "NOT_FOUND", message: expect.any(String) });
    expect((await fetch(`http://127.0.0.1:${server.port}/ticket/not!base64`)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${server.port}/flight/big/values?columns=v`)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${server.port}/flight/%E0%A4%A/x`)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${server.port}/flights`, { method: "DELETE" })).status).toBe(501);
    expect((await fetch(`http://127.0.0.1:${server.port}/nothing`)).status).toBe(404);
    // The page is off unless webPage is set.
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
  });

  it("sends no CORS headers by default, and answers a preflight without them", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/flights`, { headers: { origin: "http://elsewhere.test" } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await fetch(`http://127.0.0.1:${server.port}/flights`, { method: "OPTIONS", headers: { origin: "http://elsewhere.test", "access-control-request-method": "GET" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("serves gRPC-Web DoGet over HTTP/1.1: FlightData frames, then the status in a 0x80 trailer frame", async () => {
    const list = (await (await fetch(`http://127.0.0.1:${server.port}/flights?prefix=big`)).json()) as Array<{ ticket: string }>;
    const ticket = Buffer.from(list[0]!.ticket, "base64url");
    const out = await grpcWeb(server.port, "DoGet", proto.Ticket.encode({ ticket }).finish());
    expect(out.status).toBe(200);
    expect(out.trailers["grpc-status"]).toBe("0");
    const messages = out.messages.map((m) => decodeFlightData(m));
    const table = tableFromIPC(joinIpcStream(messages.map((m) => ({ header: m.dataHeader, body: m.dataBody }))));
    expect(table.numRows).toBe(ROWS);
    expect(sumV(table)).toBe(put["big/values"]!.sumV);
  });

  it("serves the unary and streaming methods over gRPC-Web, binary and text", async () => {
    const actions = await grpcWeb(server.port, "ListActions", new Uint8Array(0));
    expect(actions.trailers["grpc-status"]).toBe("0");
    expect(actions.messages.map((m) => proto.ActionType.decode(m).type)).toContain("stats");
    const text = await grpcWeb(server.port, "ListActions", new Uint8Array(0), {}, true);
    expect(text.messages.length).toBe(actions.messages.length);
    const descriptor = proto.FlightDescriptor.encode({ type: 1, path: ["telemetry", "host-1"], cmd: new Uint8Array(0) }).finish();
    const info = await grpcWeb(server.port, "GetFlightInfo", descriptor);
    expect(proto.FlightInfo.decode(info.messages[0]!).totalRecords).toBe(600);
    const schema = await grpcWeb(server.port, "GetSchema", descriptor);
    expect(proto.SchemaResult.decode(schema.messages[0]!).schema.byteLength).toBeGreaterThan(0);
    const poll = await grpcWeb(server.port, "PollFlightInfo", descriptor);
    expect(proto.PollInfo.decode(poll.messages[0]!).info?.totalRecords).toBe(600);
    const flights = await grpcWeb(server.port, "ListFlights", new Uint8Array(0));
    expect(flights.messages).toHaveLength(2);
    const ping = await grpcWeb(server.port, "DoAction", proto.Action.encode({ type: "ping", body: new Uint8Array(0) }).finish());
    expect(ping.trailers["grpc-status"]).toBe("0");
    const missing = await grpcWeb(server.port, "GetFlightInfo", proto.FlightDescriptor.encode({ type: 1, path: ["nope"], cmd: new Uint8Array(0) }).finish());
    expect(missing.status).toBe(200);
    expect(missing.trailers["grpc-status"]).toBe(String(StatusCode.NOT_FOUND));
    // A client-streaming method cannot ride gRPC-Web.
    const put = await grpcWeb(server.port, "DoPut", new Uint8Array(0));
    expect(put.trailers["grpc-status"]).toBe(String(StatusCode.UNIMPLEMENTED));
  });

  it("serves gRPC-Web over HTTP/2 on the same port", async () => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": `${FLIGHT}/ListActions`, "content-type": "application/grpc-web+proto" });
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => resolve(Buffer.concat(chunks)));
        req.on("error", reject);
        req.end(Buffer.alloc(5));
      });
      const out = parseGrpcWebBody(body);
      expect(out.trailers["grpc-status"]).toBe("0");
      expect(out.messages.length).toBeGreaterThan(3);
    } finally {
      session.close();
    }
  });

  it("checks a gRPC-Web request's declared length against the method's limit before buffering it", async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(server.config.maxTicketBytes + 1, 1);
    const res = await fetch(`http://127.0.0.1:${server.port}${FLIGHT}/DoGet`, { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: prefix });
    const out = parseGrpcWebBody(Buffer.from(await res.arrayBuffer()));
    expect(out.trailers["grpc-status"]).toBe(String(StatusCode.RESOURCE_EXHAUSTED));
    expect(server.stats().transport).toMatchObject({ inFlightBytes: 0, preAuthBytes: 0 });
  });
});

describe("the same checks as gRPC (server with basic→bearer auth)", () => {
  let server: FlightServer;
  let token: string;
  const SECRET_PASSWORD = "s3cret-Pa55";

  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0", gcInterval: 60_000, corsOrigins: ["http://page.test"] }),
      basicTokenAuth({ validate: async (u, p) => (u === "alice" && p === SECRET_PASSWORD ? { subject: u } : undefined) }),
    );
    await server.start();
    const out = JSON.parse(await python(["put", `grpc+tcp://127.0.0.1:${server.port}`, "1000"], { BLACKICE_TEST_USER: "alice", BLACKICE_TEST_PASSWORD: SECRET_PASSWORD }));
    token = out.authorization;
    expect(token).toMatch(/^Bearer /);
  }, 120_000);
  afterAll(() => server?.shutdown({ graceMs: 100 }));

  it("refuses an unauthenticated HTTP request with 401 and a JSON body that echoes nothing sent", async () => {
    for (const headers of [{} as Record<string, string>, { authorization: "Bearer bi1.forged.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }]) {
      const res = await fetch(`http://127.0.0.1:${server.port}/flight/big/values`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      const text = await res.text();
      expect(JSON.parse(text).code).toBe("UNAUTHENTICATED");
      expect(text).not.toContain("forged");
    }
    // Not even whether the flight exists.
    expect((await fetch(`http://127.0.0.1:${server.port}/flight/no/such`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${server.port}/flights`)).status).toBe(401);
  });

  it("serves the flight to the bearer of a token, over HTTP and to pyarrow", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/flight/big/values`, { headers: { authorization: token } });
    expect(res.status).toBe(200);
    expect(tableFromIPC(new Uint8Array(await res.arrayBuffer())).numRows).toBe(1000);
    const got: Summary = JSON.parse(await python(["read", `http://127.0.0.1:${server.port}/flight/big/values`, `authorization: ${token}`]));
    expect(got.rows).toBe(1000);
    const refused: Summary = JSON.parse(await python(["read", `http://127.0.0.1:${server.port}/flight/big/values`]));
    expect(refused.status).toBe(401);
    expect((await h2Get(server.port, "/flight/big/values")).status).toBe(401);
  });

  it("refuses unauthenticated gRPC-Web calls with UNAUTHENTICATED", async () => {
    const out = await grpcWeb(server.port, "ListFlights", new Uint8Array(0));
    expect(out.status).toBe(200);
    expect(out.trailers["grpc-status"]).toBe(String(StatusCode.UNAUTHENTICATED));
    expect(out.messages).toHaveLength(0);
    const ok = await grpcWeb(server.port, "ListFlights", new Uint8Array(0), { authorization: token });
    expect(ok.trailers["grpc-status"]).toBe("0");
    expect(ok.messages.length).toBe(2);
  });

  it("counts HTTP and gRPC-Web calls with the gRPC ones", () => {
    const calls = server.stats().calls as Record<string, { byCode: Record<string, number> }>;
    expect(calls.doGet!.byCode.UNAUTHENTICATED).toBeGreaterThanOrEqual(3);
    expect(calls.listFlights!.byCode.OK).toBeGreaterThanOrEqual(1);
  });

  it("sends CORS headers to a configured origin only, and answers its preflight", async () => {
    const mine = await fetch(`http://127.0.0.1:${server.port}/flights`, { headers: { origin: "http://page.test", authorization: token } });
    expect(mine.headers.get("access-control-allow-origin")).toBe("http://page.test");
    const other = await fetch(`http://127.0.0.1:${server.port}/flights`, { headers: { origin: "http://evil.test", authorization: token } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await fetch(`http://127.0.0.1:${server.port}${FLIGHT}/DoGet`, {
      method: "OPTIONS",
      headers: { origin: "http://page.test", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, x-grpc-web" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("http://page.test");
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    // A refusal carries the CORS headers too, so that the page can read why.
    const refused = await fetch(`http://127.0.0.1:${server.port}/flights`, { headers: { origin: "http://page.test" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("http://page.test");
  });

  it("refuses bad CORS origins when the server is built", () => {
    expect(() => createFlightServer(serverConfig({ corsOrigins: ["http://page.test/"] }))).toThrow(TypeError);
  });
});

describe("HMAC headers and mutual TLS over plain HTTP", () => {
  const SECRET = "an-hmac-secret-of-32-bytes-or-more!!";
  let certs: TestCerts;
  let hmacServer: FlightServer;
  let tlsServer: FlightServer;
  const seenCN: string[] = [];

  beforeAll(async () => {
    certs = makeTestCerts();
    hmacServer = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), hmacAuth({ keys: [{ keyId: "web", secret: SECRET }] }));
    await hmacServer.start();
    const recordCert: FlightMiddleware = (next) =>
      async function recordCert(call) {
        seenCN.push(call.peerCertificate?.subjectCN ?? "(none)");
        return next(call);
      };
    tlsServer = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      tls({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }),
      recordCert,
    );
    await tlsServer.start();
  });
  afterAll(async () => {
    await hmacServer?.shutdown({ graceMs: 100 });
    await tlsServer?.shutdown({ graceMs: 100 });
  });

  it("accepts a GET /ticket/<ticket> signed as the DoGet it stands for, and refuses it unsigned or replayed", async () => {
    const ticket = Buffer.from("p:no%2Fsuch");
    const signer = hmacSigner({ keyId: "web", secret: SECRET });
    const headers = await signer({ path: `${FLIGHT}/DoGet`, message: proto.Ticket.encode({ ticket }).finish() });
    const url = `http://127.0.0.1:${hmacServer.port}/ticket/${ticket.toString("base64url")}`;
    // Signed: authentication passes, and only then the store says there is no such flight.
    expect((await fetch(url, { headers })).status).toBe(404);
    expect((await fetch(url, { headers })).status).toBe(401); // the nonce was used
    const unsigned = await fetch(url);
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).not.toContain(SECRET);
  });

  it("serves HTTP/1.1 over TLS (ALPN http/1.1) with the client certificate on the call, and no connection without one", async () => {
    const get = (withCert: boolean) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(
          {
            host: "127.0.0.1",
            port: tlsServer.port,
            path: "/flights",
            ca: fs.readFileSync(certs.caCert),
            ...(withCert ? { cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) } : {}),
            agent: false,
          },
          (res) => {
            let body = "";
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on("error", reject);
        req.end();
      });
    const ok = await get(true);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual([]);
    expect(seenCN).toEqual(["telemetry-client"]);
    await expect(get(false)).rejects.toThrow();
  });
});

describe("plain HTTP from the disk store, and shutdown", () => {
  it("streams a flight from diskStore over HTTP/1.1 and HTTP/2, twice, with pyarrow's checksum, the HTTP writer releasing every message of the store's read lease", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "http-disk-"));
    const store = diskStore({ dir, fsync: "never" });
    // Keeps each DoGet's ReadLease and message count, to see what the HTTP writer released.
    const passes: Array<{ lease: ReadLease | undefined; messages: number }> = [];
    const watchLeases = (inner: FlightStore): FlightStore =>
      new Proxy(inner, {
        get(target, prop) {
          if (prop === "getByTicket") {
            return async (ticket: Uint8Array) => {
              const flight = await target.getByTicket(ticket);
              if (!flight) return flight;
              return new Proxy(flight, {
                get(f, p) {
                  if (p === "messages") return (options?: { lease?: ReadLease }) => (passes.push({ lease: options?.lease, messages: f.messageCount }), f.messages(options));
                  return Reflect.get(f, p, f);
                },
              });
            };
          }
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), withStore(store), wrapStore("watch-leases", watchLeases));
    try {
      await server.start();
      const put = JSON.parse(await python(["put", `grpc+tcp://127.0.0.1:${server.port}`, String(ROWS)])) as Record<string, Summary>;
      for (let i = 0; i < 2; i++) {
        const got: Summary = JSON.parse(await python(["read", `http://127.0.0.1:${server.port}/flight/big/values`]));
        expect(got).toMatchObject({ rows: ROWS, sumV: put["big/values"]!.sumV });
        const h2 = await h2Get(server.port, "/flight/big/values");
        expect(sumV(tableFromIPC(h2.body))).toBe(put["big/values"]!.sumV);
      }
      // Every pass handed the store a lease, and the HTTP writer released all its messages.
      expect(passes).toHaveLength(4);
      for (const p of passes) expect(p.lease?.released).toBe(p.messages);
    } finally {
      await server.shutdown({ graceMs: 100 });
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("closes an idle HTTP/1.1 keep-alive connection at shutdown without waiting for the grace period", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    const agent = new http.Agent({ keepAlive: true });
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: "127.0.0.1", port: server.port, path: "/flights", agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      }).on("error", reject);
    });
    expect(status).toBe(200);
    const t0 = Date.now();
    await server.shutdown({ graceMs: 10_000 });
    expect(Date.now() - t0).toBeLessThan(5000);
    agent.destroy();
  });
});

describe("metrics, call logs and response headers cover plain-HTTP and gRPC-Web calls", () => {
  it("counts them by Flight method and code, logs them without the credentials sent, and echoes x-request-id", async () => {
    const registry = new Registry();
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(s) });
    const server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      metrics({ registry }),
      callLogger({ logger, logHeaders: true }),
      basicTokenAuth({ validate: async () => undefined }),
    );
    await server.start();
    try {
      const forged = "Bearer bi1.c2VjcmV0LXRva2VuLXZhbHVl.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
      const res = await fetch(`http://127.0.0.1:${server.port}/flight/some/flight`, { headers: { authorization: forged, "x-request-id": "req-42" } });
      expect(res.status).toBe(401);
      expect(res.headers.get("x-request-id")).toBe("req-42");
      const web = await grpcWeb(server.port, "ListFlights", new Uint8Array(0), { authorization: forged });
      expect(web.trailers["grpc-status"]).toBe(String(StatusCode.UNAUTHENTICATED));
      const text = await registry.metrics();
      expect(text).toMatch(/calls_total\{[^}]*method="doGet"[^}]*code="UNAUTHENTICATED"[^}]*\} 1/);
      expect(text).toMatch(/calls_total\{[^}]*method="listFlights"[^}]*code="UNAUTHENTICATED"[^}]*\} 1/);
      const logs = lines.join("");
      expect(logs).toContain('"method":"doGet"');
      expect(logs).toContain('"method":"listFlights"');
      expect(logs).not.toContain("c2VjcmV0LXRva2VuLXZhbHVl");
    } finally {
      await server.shutdown({ graceMs: 100 });
    }
  });
});

describe("?columns= on /flight/<path>, served by query() (docs/query.md)", () => {
  let server: FlightServer;
  let client: FlightClient;
  const n = 5000;

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), query());
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    await client.putTable(
      { path: ["telemetry", "h1"] },
      tableFromArrays({ a: Int32Array.from({ length: n }, (_, i) => i), b: Array.from({ length: n }, (_, i) => `host-${i % 7}`), c: Float64Array.from({ length: n }, (_, i) => i / 4) }),
    );
  });
  afterAll(async () => {
    client.close();
    await server.shutdown({ graceMs: 100 });
  });

  it("streams only the selected columns, in the order asked, with the values stored", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/flight/telemetry/h1?columns=c,a`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.apache.arrow.stream");
    const reader = await RecordBatchReader.from(res.body as unknown as AsyncIterable<Uint8Array>);
    let rows = 0;
    let sumA = 0;
    let sumC = 0;
    let names: string[] = [];
    for await (const batch of reader) {
      names = batch.schema.fields.map((f) => f.name);
      rows += batch.numRows;
      for (const v of batch.getChild("a")!.toArray() as Int32Array) sumA += v;
      for (const v of batch.getChild("c")!.toArray() as Float64Array) sumC += v;
    }
    expect(names).toEqual(["c", "a"]);
    expect(rows).toBe(n);
    expect(sumA).toBe((n * (n - 1)) / 2);
    expect(sumC).toBe((n * (n - 1)) / 8);
  });

  it("answers an unknown column with 400 naming it, and the server goes on", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/flight/telemetry/h1?columns=a,nope`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("nope");
    const ok = await fetch(`http://127.0.0.1:${server.port}/flight/telemetry/h1?columns=b`);
    expect(ok.status).toBe(200);
    const reader = await RecordBatchReader.from(ok.body as unknown as AsyncIterable<Uint8Array>);
    const first = (await reader.next()).value!;
    expect(first.schema.fields.map((f: { name: string }) => f.name)).toEqual(["b"]);
  });
});
