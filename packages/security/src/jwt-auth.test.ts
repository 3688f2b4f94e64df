import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createPublicKey, type KeyObject } from "node:crypto";
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";
import { FlightError, StatusCode, splitServerParts, type StatsSetting } from "@blackice/flight-core";
import { jwtAuth, type JwtAuthOptions } from "./jwt-auth";
import { kIdentity } from "./identity-of";
import { authorize } from "./authorize";
import { pathPrefixPolicy } from "./path-prefix-policy";
import { collect, compose, fakeTerminal, makeCall } from "./test-call";
import { makeTestCerts, type TestCerts } from "./test-certs";

const ISS = "https://issuer.test/";
const AUD = "blackice-flight";
const T0 = 1_767_225_600_000;

interface Signer {
  kid: string;
  privateKey: KeyObject;
  jwk: JWK;
}

async function newSigner(kid: string, alg: "ES256" | "RS256" = "ES256"): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, privateKey: privateKey as KeyObject, jwk };
}

function token(s: Signer, claims: Record<string, unknown> = {}, opts: { iss?: string; aud?: string; exp?: number; nbf?: number; alg?: string; kid?: string; nowMs?: number } = {}): Promise<string> {
  const iat = Math.floor((opts.nowMs ?? T0) / 1000);
  let jwt = new SignJWT({ scope: "telemetry:read", ...claims })
    .setProtectedHeader({ alg: opts.alg ?? (s.jwk.alg as string), kid: opts.kid ?? s.kid })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? AUD)
    .setSubject("alice")
    .setIssuedAt(iat)
    .setExpirationTime(opts.exp ?? iat + 300);
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  return jwt.sign(s.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

function setup(jwks: JwtAuthOptions["jwks"], extra: Partial<JwtAuthOptions> = {}) {
  const parts = jwtAuth({ jwks, issuer: ISS, audience: AUD, now: () => T0, ...extra });
  const stats = splitServerParts(parts).settings.find((s): s is StatsSetting => s.kind === "stats")!;
  const terminal = fakeTerminal();
  const handler = compose(parts, terminal.handler);
  const call = (auth?: string) => makeCall("listActions", {}, auth === undefined ? {} : { headers: { authorization: auth } });
  return { handler, state: terminal.state, call, stats: () => stats.collect() as { accepted: number; rejected: Record<string, number> } };
}

describe("jwtAuth", () => {
  let a: Signer;
  let b: Signer;
  beforeAll(async () => {
    a = await newSigner("key-a");
    b = await newSigner("key-b", "RS256");
  });

  it("a good token gives the call sub, claims, roles and scopes", async () => {
    const s = setup({ keys: [a.jwk, b.jwk] });
    const c = s.call(`Bearer ${await token(b, { roles: ["admin"], scope: "telemetry:read reports:write", tenant: "t1" })}`);
    await collect((await s.handler(c)) as AsyncIterable<unknown>);
    expect(s.state.handlerExecuted).toBe(true);
    const who = c.context.get(kIdentity)!;
    expect(who).toMatchObject({ subject: "alice", method: "jwt", roles: ["admin"], scopes: ["telemetry:read", "reports:write"] });
    expect(who.claims).toMatchObject({ iss: ISS, aud: AUD, tenant: "t1" });
    expect(s.stats().accepted).toBe(1);
  });

  it("refuses each bad token with UNAUTHENTICATED and one message, counting the reason", async () => {
    const s = setup({ keys: [a.jwk] });
    const stranger = await newSigner("key-a"); // same kid, another key
    const pem = createPublicKey({ key: a.jwk as import("node:crypto").JsonWebKey, format: "jwk" }).export({ type: "spki", format: "pem" }) as string;
    const iat = Math.floor(T0 / 1000);
    const payload = { iss: ISS, aud: AUD, sub: "alice", iat, exp: iat + 300 };
    const hmacWithPublicKey = await new SignJWT(payload).setProtectedHeader({ alg: "HS256", kid: "key-a" }).sign(new TextEncoder().encode(pem));
    const cases: Array<[string, string | undefined]> = [
      ["missing", undefined],
      ["malformed", "Bearer not-a-jwt"],
      ["malformed", "Basic YTpi"],
      ["wrong-audience", `Bearer ${await token(a, {}, { aud: "someone-else" })}`],
      ["wrong-issuer", `Bearer ${await token(a, {}, { iss: "https://evil.test/" })}`],
      ["expired", `Bearer ${await token(a, {}, { exp: iat - 31 })}`],
      ["not-yet-valid", `Bearer ${await token(a, {}, { nbf: iat + 31 })}`],
      ["algorithm", `Bearer ${b64({ alg: "none", kid: "key-a" })}.${b64(payload)}.`],
      ["algorithm", `Bearer ${hmacWithPublicKey}`],
      ["unknown-key", `Bearer ${await token(b)}`],
      ["bad-signature", `Bearer ${await token(stranger)}`],
      ["bad-claims", `Bearer ${await new SignJWT({ iss: ISS, aud: AUD, exp: iat + 60 }).setProtectedHeader({ alg: "ES256", kid: "key-a" }).sign(a.privateKey)}`],
    ];
    for (const [reason, header] of cases) {
      const before = s.stats().rejected[reason];
      const err = await s.handler(s.call(header)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FlightError);
      expect(err).toMatchObject({ code: StatusCode.UNAUTHENTICATED, message: "authentication failed" });
      expect([reason, s.stats().rejected[reason]]).toEqual([reason, before! + 1]);
    }
    expect(s.state.handlerExecuted).toBe(false);
    // Within the clock tolerance (30 s) an expired token still passes.
    await s.handler(s.call(`Bearer ${await token(a, {}, { exp: Math.floor(T0 / 1000) - 20 })}`));
    expect(s.state.handlerExecuted).toBe(true);
  });

  it("revocation by jti, public methods, and calls authenticated before", async () => {
    const revoked = new Set(["j-1"]);
    const s = setup({ keys: [a.jwk] }, { isRevoked: (jti) => revoked.has(jti), publicMethods: ["listActions"] });
    await expect(s.handler(s.call(`Bearer ${await token(a, { jti: "j-1" })}`))).rejects.toMatchObject({ code: StatusCode.UNAUTHENTICATED });
    expect(s.stats().rejected.revoked).toBe(1);
    await s.handler(s.call(`Bearer ${await token(a, { jti: "j-2" })}`));
    await s.handler(s.call()); // public, no header
    expect(s.stats().accepted).toBe(1);
  });

  it("scopes drive pathPrefixPolicy({ by: 'scope' })", async () => {
    const parts = [...jwtAuth({ jwks: { keys: [a.jwk] }, issuer: ISS, audience: AUD, now: () => T0 }), authorize(pathPrefixPolicy({ "telemetry:read": { read: ["telemetry"] } }, { by: "scope" }))];
    const terminal = fakeTerminal();
    const handler = compose(parts, terminal.handler);
    const ask = async (scope: string, p: string[]) =>
      handler(makeCall("getFlightInfo", { type: 1, cmd: new Uint8Array(0), path: p }, { headers: { authorization: `Bearer ${await token(a, { scope })}` } })).then(
        () => "ok",
        (e: FlightError) => e.code,
      );
    expect(await ask("telemetry:read", ["telemetry", "cpu"])).toBe("ok");
    expect(await ask("telemetry:read", ["secret"])).toBe(StatusCode.PERMISSION_DENIED);
    expect(await ask("other", ["telemetry", "cpu"])).toBe(StatusCode.PERMISSION_DENIED);
  });

  it("validates its options when built", async () => {
    const ok = { jwks: { keys: [a.jwk] }, issuer: ISS, audience: AUD };
    expect(() => jwtAuth({ ...ok, issuer: "" })).toThrow(/issuer must be a non-empty string/);
    expect(() => jwtAuth({ ...ok, audience: [] })).toThrow(/audience/);
    expect(() => jwtAuth({ ...ok, algorithms: ["HS256" as never] })).toThrow(/subset of RS256/);
    expect(() => jwtAuth({ ...ok, algorithms: ["none" as never] })).toThrow(/subset/);
    expect(() => jwtAuth({ ...ok, clockToleranceSec: 3600 })).toThrow(/0 to 300/);
    expect(() => jwtAuth({ ...ok, jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } })).toThrow(/key type "oct"/);
    const priv = await exportJWK(a.privateKey);
    expect(() => jwtAuth({ ...ok, jwks: { keys: [priv] } })).toThrow(/private key/);
    expect(() => jwtAuth({ ...ok, jwks: "http://login.test/jwks.json" })).toThrow(/must be https:/);
    expect(() => jwtAuth({ ...ok, jwks: "/nonexistent/jwks.json" })).toThrow(/cannot read the JWKS file/);
  });

  it("reads a JWKS file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jwks-"));
    try {
      fs.writeFileSync(path.join(dir, "jwks.json"), JSON.stringify({ keys: [a.jwk] }));
      const s = setup(path.join(dir, "jwks.json"));
      await s.handler(s.call(`Bearer ${await token(a)}`));
      expect(s.state.handlerExecuted).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("with an https: JWKS", () => {
    let certs: TestCerts;
    let server: https.Server;
    let served: JWK[] = [];
    let fetches = 0;
    beforeAll(async () => {
      certs = makeTestCerts();
      server = https.createServer({ cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) }, (req, res) => {
        fetches++;
        if (req.url === "/down") return void res.writeHead(503).end();
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: served }));
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    });
    afterAll(async () => {
      await new Promise((r) => server.close(r));
      certs.remove();
    });

    it("fetches the keys, and fetches again for a new key id (rotation)", async () => {
      served = [a.jwk];
      const url = `https://localhost:${(server.address() as AddressInfo).port}/jwks.json`;
      const s = setup(url, { jwksCa: fs.readFileSync(certs.caCert), jwksCooldownMs: 1 });
      await s.handler(s.call(`Bearer ${await token(a)}`));
      expect(fetches).toBe(1);
      await s.handler(s.call(`Bearer ${await token(a)}`));
      expect(fetches).toBe(1); // cached
      served = [a.jwk, b.jwk]; // the issuer rotates in key-b
      await new Promise((r) => setTimeout(r, 5));
      const c = s.call(`Bearer ${await token(b)}`);
      await s.handler(c);
      expect(c.context.get(kIdentity)?.subject).toBe("alice");
      expect(fetches).toBe(2);
      expect(s.stats().accepted).toBe(3);
    });

    it("a JWKS that cannot be fetched gives UNAVAILABLE, or an untrusted server certificate", async () => {
      const port = (server.address() as AddressInfo).port;
      const down = setup(`https://localhost:${port}/down`, { jwksCa: fs.readFileSync(certs.caCert) });
      await expect(down.handler(down.call(`Bearer ${await token(a)}`))).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
      const untrusted = setup(`https://localhost:${port}/jwks.json`);
      await expect(untrusted.handler(untrusted.call(`Bearer ${await token(a)}`))).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
      expect(untrusted.stats().rejected["jwks-unavailable"]).toBe(1);
    });
  });
});
