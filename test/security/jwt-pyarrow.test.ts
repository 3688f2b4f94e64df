// JWT bearer authentication on the built CLI (--jwt-jwks FILE --jwt-issuer --jwt-audience),
// with pyarrow clients carrying the tokens: good ones work, forged ones are UNAUTHENTICATED
// and the server stays up.
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { startCli } from "../helpers/cli";
import { generateKeyPairSync, type JsonWebKey } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SignJWT } from "jose";
import { StatusCode } from "@blackice/flight-core";
import { FlightClient } from "@blackice/flight";
import { hmacSigner } from "@blackice/flight-security";
import { run, venvPython } from "../helpers/python";

const ISS = "https://idp.test/";
const AUD = "blackice-flight";
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");


describe("jwtAuth through the CLI, with pyarrow clients", () => {
  let dir: string;
  let cli: { child: ChildProcessWithoutNullStreams; port: number } | undefined;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "jwt-cli-"));
  });
  afterAll(() => {
    cli?.child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a good token works; wrong audience or issuer, expired, alg none, unknown kid and HMAC-with-the-public-key are UNAUTHENTICATED", async () => {
    const signing = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = { ...(signing.publicKey.export({ format: "jwk" }) as JsonWebKey), kid: "idp-2026", alg: "RS256", use: "sig" };
    fs.writeFileSync(path.join(dir, "jwks.json"), JSON.stringify({ keys: [jwk] }));
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>, o: { iss?: string; aud?: string; exp?: number; kid?: string; key?: typeof signing.privateKey } = {}) =>
      new SignJWT({ scope: "flights", ...claims })
        .setProtectedHeader({ alg: "RS256", kid: o.kid ?? "idp-2026" })
        .setIssuer(o.iss ?? ISS)
        .setAudience(o.aud ?? AUD)
        .setSubject("alice")
        .setIssuedAt(now)
        .setExpirationTime(o.exp ?? now + 600)
        .sign(o.key ?? signing.privateKey);
    const pem = signing.publicKey.export({ type: "spki", format: "pem" }) as string;
    const payload = { iss: ISS, aud: AUD, sub: "alice", iat: now, exp: now + 600 };
    const tokens = {
      good: await sign({}),
      admin: await sign({ roles: ["admin"] }),
      wrong_audience: await sign({}, { aud: "another-service" }),
      wrong_issuer: await sign({}, { iss: "https://evil.test/" }),
      expired: await sign({}, { exp: now - 120 }),
      alg_none: `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`,
      unknown_kid: await sign({}, { kid: "not-in-jwks", key: stranger.privateKey }),
      hmac_public_key: await new SignJWT(payload).setProtectedHeader({ alg: "HS256", kid: "idp-2026" }).sign(new TextEncoder().encode(pem)),
      garbage: "not.a.jwt",
    };
    cli = await startCli(["--jwt-jwks", path.join(dir, "jwks.json"), "--jwt-issuer", ISS, "--jwt-audience", AUD]);
    const res = await run(venvPython(), [path.join(__dirname, "pyarrow_jwt_client.py")], {
      env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${cli.port}`, BLACKICE_TOKENS: JSON.stringify(tokens) },
    });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.good).toEqual({ put: "ok", get: "ok", list: "ok" });
    for (const name of ["wrong_audience", "wrong_issuer", "expired", "alg_none", "unknown_kid", "hmac_public_key", "garbage"]) {
      expect([name, out[name]]).toEqual([name, { put: "unauthenticated", get: "unauthenticated", list: "unauthenticated" }]);
    }
    expect(out.stored).toEqual(["telemetry/good"]);
    expect(out.stats.rejected).toMatchObject({ "wrong-audience": 3, "wrong-issuer": 3, expired: 3, algorithm: 6, "unknown-key": 3, malformed: 3 });
    expect(out.stats.accepted).toBeGreaterThanOrEqual(5);
    expect(cli.child.exitCode).toBeNull(); // still up
  });

  it("with --hmac-secret-file too, a call may be HMAC-signed or carry a JWT; one with neither is refused", async () => {
    const signing = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    fs.writeFileSync(path.join(dir, "jwks2.json"), JSON.stringify({ keys: [{ ...(signing.publicKey.export({ format: "jwk" }) as JsonWebKey), kid: "k2", alg: "ES256" }] }));
    fs.writeFileSync(path.join(dir, "hmac.secret"), "combined-cli-hmac-secret-0123456789abcdef\n", { mode: 0o600 });
    const both = await startCli(["--jwt-jwks", path.join(dir, "jwks2.json"), "--jwt-issuer", ISS, "--jwt-audience", AUD, "--hmac-secret-file", `ingest:${path.join(dir, "hmac.secret")}`]);
    const uri = `grpc://127.0.0.1:${both.port}`;
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k2" }).setIssuer(ISS).setAudience(AUD).setSubject("bob").setIssuedAt(now).setExpirationTime(now + 60).sign(signing.privateKey);
    const signed = new FlightClient(uri, { signer: hmacSigner({ keyId: "ingest", secretPath: path.join(dir, "hmac.secret") }) });
    const bearer = new FlightClient(uri, { metadata: { authorization: `Bearer ${jwt}` } });
    const anonymous = new FlightClient(uri);
    try {
      expect((await signed.listActions()).length).toBeGreaterThan(0);
      expect((await bearer.listActions()).length).toBeGreaterThan(0);
      await expect(anonymous.listActions()).rejects.toMatchObject({ code: StatusCode.UNAUTHENTICATED });
    } finally {
      signed.close();
      bearer.close();
      anonymous.close();
      both.child.kill("SIGKILL");
    }
  });
});
