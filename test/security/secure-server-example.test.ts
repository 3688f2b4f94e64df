// examples/secure-server with everything on, over real sockets: TLS with client certificates,
// HMAC-signed service calls (FlightClient + hmacSigner), basic → bearer users (pyarrow),
// attestation whose verdict authorization uses, and Merkle roots checked on DoGet.
import * as grpc from "@grpc/grpc-js";
import { healthClient } from "../helpers/raw-flight-client";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StatusCode, type FlightData, type FlightDescriptor, contiguous } from "@blackice/flight-core";
import { FlightClient, pathDescriptor, type FlightClientOptions, type FlightServer } from "@blackice/flight";
import { MerkleBuilder, flightDataLeafHash, hmacSigner, readMerkleMetadata, verifyFlightStream } from "@blackice/flight-security";
import { signEvidence, type DeviceClaim } from "../../examples/secure-server/evidence";
import { hashPassword } from "../../examples/secure-server/passwords";
import { main } from "../../examples/secure-server/server";
import { makeTestCerts, type TestCerts } from "../helpers/certs";
import { run, venvPython } from "../helpers/python";
import { startTsProcess, tableMessages } from "./example-data";

const PASSWORD = "correct horse battery staple";
const ATTESTATION_HEADER = "x-blackice-attestation";

interface Setup {
  dir: string;
  certs: TestCerts;
  config: string;
  hmacSecret: string;
  tokenSecret: string;
  attestationSecret: Buffer;
  attestationSecretFile: string;
}

async function setup(): Promise<Setup> {
  const certs = makeTestCerts();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "secure-server-"));
  const secretFile = (name: string, bytes: Buffer): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes.toString("hex") + "\n", { mode: 0o600 }); // as `openssl rand -hex 32 > file` writes it
    return file;
  };
  const attestationSecret = randomBytes(32);
  const attestationSecretFile = secretFile("attestation.secret", attestationSecret);
  const config = path.join(dir, "secure-server.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      users: { alice: { passwordHash: await hashPassword(PASSWORD) } },
      grants: { alice: ["telemetry"], ingest: ["telemetry"] },
      minWriteTrust: 0.5,
    }),
  );
  return {
    dir,
    certs,
    config,
    hmacSecret: secretFile("hmac-ingest.secret", randomBytes(32)),
    tokenSecret: secretFile("token.secret", randomBytes(32)),
    attestationSecret: Buffer.from(attestationSecret.toString("hex")), // the file's text is the secret
    attestationSecretFile,
  };
}

function flags(s: Setup, extra: string[] = []): string[] {
  return [
    "--config", s.config,
    "--port", "0",
    "--tls-cert", s.certs.serverCert,
    "--tls-key", s.certs.serverKey,
    "--hmac-secret-file", `ingest:${s.hmacSecret}`,
    "--token-secret-file", s.tokenSecret,
    "--attestation-secret-file", s.attestationSecretFile,
    ...extra,
  ];
}

const tlsOf = (c: TestCerts, withClientCert = true): FlightClientOptions["tls"] => ({
  rootCerts: fs.readFileSync(c.caCert),
  ...(withClientCert ? { cert: fs.readFileSync(c.clientCert), key: fs.readFileSync(c.clientKey) } : {}),
});

async function drain<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

/** What a promise failed with (a FlightError from FlightClient), or a failure if it succeeded. */
async function failure(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: number }).code, message: (err as Error).message };
  }
  throw new Error("expected the call to fail");
}

describe("examples/secure-server: TLS + mTLS, HMAC, bearer tokens, attestation, authorization, Merkle", () => {
  let s: Setup;
  let server: FlightServer;
  let uri: string;
  const clients: FlightClient[] = [];
  const client = (options: FlightClientOptions = {}): FlightClient => {
    const c = new FlightClient(uri, { tls: tlsOf(s.certs), ...options });
    clients.push(c);
    return c;
  };
  const ingest = (now?: () => number) => client({ signer: hmacSigner({ keyId: "ingest", secretPath: s.hmacSecret, ...(now ? { now } : {}) }) });
  const evidence = (claim: Partial<DeviceClaim> = {}, secret: Buffer = s.attestationSecret): Record<string, string> => ({
    [ATTESTATION_HEADER]: signEvidence(secret, { sub: "ingest", device: "edge-7", posture: "measured-boot", iat: Date.now(), ...claim }),
  });
  const put = (c: FlightClient, d: FlightDescriptor, messages: FlightData[], metadata: Record<string, string> = {}) => drain(c.doPutRaw(d, messages, { metadata }).results);

  beforeAll(async () => {
    s = await setup();
    server = await main(flags(s, ["--tls-client-ca", s.certs.caCert]), {});
    uri = `grpc+tls://localhost:${server.port}`;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.shutdown({ graceMs: 100 });
    fs.rmSync(s.dir, { recursive: true, force: true });
    fs.rmSync(s.certs.dir, { recursive: true, force: true });
  });

  it("pyarrow: authenticate_basic_token, then put and get over grpc+tls with a client certificate", async () => {
    const env = {
      URI: uri,
      CA: s.certs.caCert,
      CLIENT_CERT: s.certs.clientCert,
      CLIENT_KEY: s.certs.clientKey,
      USER_NAME: "alice",
      USER_PASSWORD: PASSWORD,
      EVIDENCE: evidence({ sub: "alice", posture: "patched" })[ATTESTATION_HEADER]!,
      LOW_EVIDENCE: evidence({ sub: "alice", posture: "unknown" })[ATTESTATION_HEADER]!,
    };
    const result = await run(venvPython(), [path.join(__dirname, "secure_server_client.py")], { env });
    if (result.code !== 0) throw new Error(`python failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
    const out = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(out).toEqual({
      bad_password: "unauthenticated",
      no_token: "unauthenticated",
      token_header: "authorization",
      put_without_evidence: "unauthorized",
      put_low_trust: "unauthorized",
      put_attested: "ok",
      put_other_prefix: "unauthorized",
      location: `grpc+tls://127.0.0.1:${server.port}`,
      rows: 150,
      same_table: true,
      merkle: { alg: "sha256-rfc6962", root: expect.stringMatching(/^[0-9a-f]{64}$/), leaves: 1 + 4 },
      read_other: "unauthorized",
    });
  });

  it("FlightClient with hmacSigner over TLS: put, get, and a DoGet verified against the Merkle root", async () => {
    const c = ingest();
    const d = pathDescriptor("telemetry", "edge-7", "cpu");
    const sent = tableMessages(d, 500, 100);
    const acks = await put(c, d, sent, evidence());
    expect(acks.map((a) => Buffer.from(a.appMetadata).toString())).toEqual(sent.slice(1).map((m) => Buffer.from(m.appMetadata).toString()));

    // The client's own root of what it sent: what it keeps to check this flight later.
    const mine = new MerkleBuilder();
    for (const m of sent) mine.appendLeafHash(flightDataLeafHash(m));

    const info = await c.getFlightInfo(d);
    expect(info.totalRecords).toBe(500);
    const served = readMerkleMetadata(info)!;
    expect(served).toEqual({ alg: "sha256-rfc6962", root: mine.root().toString("hex"), leaves: sent.length });

    const received = await drain(verifyFlightStream(c.doGetRaw(info.endpoint[0]!), served));
    expect(received).toHaveLength(sent.length);
    received.forEach((m, i) => expect(Buffer.from(contiguous(m.dataBody)).equals(Buffer.from(contiguous(sent[i]!.dataBody)))).toBe(true));
    // The same stream against the root the client kept from its own put.
    expect(await drain(verifyFlightStream(c.doGetRaw(info.endpoint[0]!), { root: mine.root(), leaves: mine.size }))).toHaveLength(sent.length);
    // And the decoded table.
    expect((await c.getTable(d)).numRows).toBe(500);

    // A stream that does not match the root it is checked against is DATA_LOSS.
    const other = pathDescriptor("telemetry", "edge-7", "mem");
    await put(c, other, tableMessages(other, 500, 100).map((m, i) => (i === 2 ? { ...m, appMetadata: Buffer.from("changed") } : m)), evidence());
    const otherTicket = (await c.getFlightInfo(other)).endpoint[0]!;
    expect(await failure(drain(verifyFlightStream(c.doGetRaw(otherTicket), served)))).toMatchObject({ code: StatusCode.DATA_LOSS, message: expect.stringMatching(/Merkle root mismatch/) });

    // The merkle-proof action is a read: the signed client may ask for one of its messages.
    const [proof] = await c.doAction("merkle-proof", JSON.stringify({ path: d.path, index: 2 }));
    expect(JSON.parse(Buffer.from(proof!.body).toString())).toMatchObject({ root: served.root, index: 2 });
  });

  it("forged signatures and expired or forged tokens get UNAUTHENTICATED with the generic message; the server stays up", async () => {
    const rejected = () => {
      const stats = server.stats() as Record<string, { rejected: Record<string, number> }>;
      return { hmac: { ...stats.hmac!.rejected }, token: { ...stats.basicTokenAuth!.rejected } };
    };
    const before = rejected();
    const hmacFailed = { code: StatusCode.UNAUTHENTICATED, message: "request authentication failed" };
    const tokenFailed = { code: StatusCode.UNAUTHENTICATED, message: "authentication failed" };

    // HMAC: the right key id with a wrong secret, an unknown key id, a signature 10 minutes old.
    const forged = client({ signer: hmacSigner({ keyId: "ingest", secret: randomBytes(32) }) });
    expect(await failure(forged.listActions())).toEqual(hmacFailed);
    expect(await failure(put(forged, pathDescriptor("telemetry", "forged"), tableMessages(pathDescriptor("telemetry", "forged"), 10), evidence()))).toEqual(hmacFailed);
    const unknownKey = client({ signer: hmacSigner({ keyId: "mallory", secret: randomBytes(32) }) });
    expect(await failure(unknownKey.getFlightInfo(pathDescriptor("telemetry", "edge-7", "cpu")))).toEqual(hmacFailed);
    expect(await failure(ingest(() => Date.now() - 600_000).listActions())).toEqual(hmacFailed);
    expect((await server.store.get(pathDescriptor("telemetry", "forged")))).toBeUndefined();

    // Bearer tokens. An expired one: a replica with the same token secret issues tokens that live 1 ms.
    const replica = await main(flags(s, ["--tls-client-ca", s.certs.caCert, "--token-ttl", "1ms"]), {});
    let expired: string;
    try {
      const login = new FlightClient(`grpc+tls://localhost:${replica.port}`, { tls: tlsOf(s.certs) });
      clients.push(login);
      const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}`;
      const [reply] = await login.handshake([{ payload: new Uint8Array(0) }], { metadata: { authorization: basic } });
      expired = Buffer.from(reply!.payload).toString();
    } finally {
      await replica.shutdown({ graceMs: 100 });
    }
    await new Promise((r) => setTimeout(r, 20));
    const bearer = (token: string) => ({ metadata: { authorization: `Bearer ${token}` } });
    const user = client();
    expect(await failure(drain(user.listFlights(undefined, bearer(expired))))).toEqual(tokenFailed);

    // A forged one: a real token whose claims were edited (sub → root), the MAC left as it was.
    const [reply] = await user.handshake([{ payload: new Uint8Array(0) }], { metadata: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}` } });
    const token = Buffer.from(reply!.payload).toString();
    expect((await drain(user.listFlights(undefined, bearer(token)))).length).toBeGreaterThan(0);
    const [v, payload, mac] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
    const edited = `${v}.${Buffer.from(JSON.stringify({ ...claims, sub: "root" })).toString("base64url")}.${mac}`;
    expect(await failure(drain(user.listFlights(undefined, bearer(edited))))).toEqual(tokenFailed);
    const flipped = token.slice(0, -10) + (token.at(-10) === "A" ? "B" : "A") + token.slice(-9); // one character of the MAC
    expect(await failure(drain(user.listFlights(undefined, bearer(flipped))))).toEqual(tokenFailed);
    expect(await failure(user.listActions())).toEqual(tokenFailed); // no credentials at all

    // Each refusal was counted with its reason; the stats name no secret.
    const after = rejected();
    const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k]! - b[k]!]).filter(([, n]) => n !== 0));
    expect(delta(after.hmac, before.hmac)).toEqual({ "bad-mac": 2, "unknown-key": 1, expired: 1 });
    expect(delta(after.token, before.token)).toEqual({ expired: 1, "bad-token": 2, missing: 1 });
    const text = JSON.stringify(server.stats());
    for (const f of [s.hmacSecret, s.tokenSecret, s.attestationSecretFile]) expect(text).not.toContain(fs.readFileSync(f, "utf8").trim());

    // Still serving: health says so, and a good call goes through.
    expect(server.serving).toBe(true);
    const health = healthClient(server.port, {
      host: "localhost",
      credentials: grpc.credentials.createSsl(fs.readFileSync(s.certs.caCert), fs.readFileSync(s.certs.clientKey), fs.readFileSync(s.certs.clientCert)),
    });
    try {
      const status = await new Promise<string>((resolve, reject) =>
        health.check({ service: "" }, (e, r) => (e ? reject(e) : resolve(r.status))),
      );
      expect(status).toBe("SERVING");
    } finally {
      health.close();
    }
    expect((await ingest().listActions()).map((a) => a.type)).toContain("merkle-proof");
  });

  it("writes need attestation evidence of a trusted device; reads do not", async () => {
    const c = ingest();
    const d = pathDescriptor("telemetry", "edge-9", "disk");
    const messages = tableMessages(d, 50, 25);
    const denied = { code: StatusCode.PERMISSION_DENIED, message: "permission denied for doPut" };
    const refusals: Array<[string, Record<string, string>]> = [
      ["no evidence", {}],
      ["a posture scoring below 0.5", evidence({ posture: "unknown" })],
      ["a posture the verifier does not know", evidence({ posture: "rooted" })],
      ["evidence about another subject", evidence({ sub: "alice" })],
      ["evidence signed with another secret", evidence({}, randomBytes(32))],
      ["evidence an hour old", evidence({ iat: Date.now() - 3_600_000 })],
      ["garbage", { [ATTESTATION_HEADER]: "ev1.e30.not-a-mac" }],
    ];
    for (const [what, md] of refusals) {
      expect({ what, ...(await failure(put(c, d, messages, md))) }).toEqual({ what, ...denied });
    }
    expect((await server.store.get(d))).toBeUndefined();
    expect((server.stats() as { attestation: { verdicts: Record<string, number> } }).attestation.verdicts).toMatchObject({
      "other-subject": 1,
      "bad-signature": 1,
      stale: 1,
      malformed: 1,
    });

    await put(c, d, messages, evidence({ posture: "patched" }));
    expect((await c.getFlightInfo(d)).totalRecords).toBe(50); // a read with no evidence
    expect(await failure(c.doAction("delete", JSON.stringify({ path: d.path })))).toMatchObject({ code: StatusCode.PERMISSION_DENIED });
    expect((await server.store.get(d))).toBeDefined();
    await c.doAction("delete", JSON.stringify({ path: d.path }), { metadata: evidence() });
    expect((await server.store.get(d))).toBeUndefined();
    // Evidence does not widen the path grants.
    expect(await failure(put(c, pathDescriptor("secret", "x"), tableMessages(pathDescriptor("secret", "x"), 5), evidence()))).toEqual(denied);
  });

  it("with a client CA, a client without a certificate, or with one from another CA, cannot connect", async () => {
    const noCert = client({ tls: tlsOf(s.certs, false), signer: hmacSigner({ keyId: "ingest", secretPath: s.hmacSecret }) });
    expect((await failure(noCert.listActions({ deadline: 10_000 }))).code).toBe(StatusCode.UNAVAILABLE);
    const rogue = client({
      tls: { rootCerts: fs.readFileSync(s.certs.caCert), cert: fs.readFileSync(s.certs.rogueClientCert), key: fs.readFileSync(s.certs.rogueClientKey) },
      signer: hmacSigner({ keyId: "ingest", secretPath: s.hmacSecret }),
    });
    expect((await failure(rogue.listActions({ deadline: 10_000 }))).code).toBe(StatusCode.UNAVAILABLE);
  });
});

describe("examples/secure-server as a process", () => {
  it("starts with ts-node from environment variables (TLS without client certificates), serves a signed call, stops on SIGTERM", async () => {
    const s = await setup();
    const env = {
      SECURE_SERVER_CONFIG: s.config,
      BLACKICE_PORT: "0",
      BLACKICE_TLS_CERT: s.certs.serverCert,
      BLACKICE_TLS_KEY: s.certs.serverKey,
      BLACKICE_HMAC_SECRET_FILE: `ingest:${s.hmacSecret}`,
      BLACKICE_ATTESTATION_SECRET_FILE: s.attestationSecretFile,
    };
    const proc = await startTsProcess("examples/secure-server/server.ts", [], /listening on grpc\+tls:\/\/127\.0\.0\.1:(\d+)/, env);
    const location = `grpc+tls://localhost:${proc.match[1]}`;
    const c = new FlightClient(location, { tls: tlsOf(s.certs, false), signer: hmacSigner({ keyId: "ingest", secretPath: s.hmacSecret }) });
    const unsigned = new FlightClient(location, { tls: tlsOf(s.certs, false) });
    try {
      expect((await c.listActions()).map((a) => a.type)).toContain("ping");
      expect((await failure(unsigned.listActions())).code).toBe(StatusCode.UNAUTHENTICATED);
      for (const f of [s.hmacSecret, s.attestationSecretFile]) expect(proc.output()).not.toContain(fs.readFileSync(f, "utf8").trim());
    } finally {
      c.close();
      unsigned.close();
      expect(await proc.stop()).toBe(0);
      fs.rmSync(s.dir, { recursive: true, force: true });
      fs.rmSync(s.certs.dir, { recursive: true, force: true });
    }
  });

  it("refuses to start without its required settings, naming the flag", async () => {
    await expect(main([], {})).rejects.toThrow(/--config is required/);
    const s = await setup();
    try {
      await expect(main(["--config", s.config, "--port", "0"], {})).rejects.toThrow(/--tls-cert is required/);
      const short = path.join(s.dir, "short.secret");
      fs.writeFileSync(short, "too short\n");
      await expect(main(flags(s, ["--attestation-secret-file", short]), {})).rejects.toThrow(/at least 32 are needed/);
      await expect(main(flags(s, ["--hmac-secret-file", s.hmacSecret]), {})).rejects.toThrow(/KEYID:PATH/);
    } finally {
      fs.rmSync(s.dir, { recursive: true, force: true });
      fs.rmSync(s.certs.dir, { recursive: true, force: true });
    }
  });
});
