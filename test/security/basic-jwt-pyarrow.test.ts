// basicTokenAuth({ jwt }) on a real server with pyarrow: the Basic handshake
// (authenticate_basic_token) issues a short-lived JWT signed with the server's Ed25519 key, the
// token works, an admin revokes it by jti, and it is then refused with UNAUTHENTICATED.
import { generateKeyPairSync } from "node:crypto";
import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { basicTokenAuth } from "@blackice/flight-security";
import { run, venvPython } from "../helpers/python";

describe("basic → JWT handshake with pyarrow, and revocation by jti", () => {
  let server: FlightServer;
  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const users: Record<string, { pass: string; roles?: string[] }> = { alice: { pass: "correct horse" }, root: { pass: "root-pass", roles: ["admin"] } };
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      basicTokenAuth({
        validate: async (user, pass) => (users[user]?.pass === pass ? { subject: user, ...(users[user]!.roles ? { roles: users[user]!.roles } : {}) } : undefined),
        tokenTtlMs: 300_000,
        jwt: { signingKey: { privateKey }, issuer: "https://flight.test/", audience: "blackice-flight", keyId: "hs-2026" },
      }),
    );
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });

  it("issues a JWT, accepts it, refuses it once revoked, and a new login works", async () => {
    const res = await run(venvPython(), [path.join(__dirname, "pyarrow_basic_jwt_client.py")], { env: { BLACKICE_FLIGHT_URI: `grpc+tcp://127.0.0.1:${server.port}` } });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out).toMatchObject({
      bad_password: "unauthenticated",
      header: { alg: "EdDSA", typ: "JWT", kid: "hs-2026" },
      claims: { iss: "https://flight.test/", aud: "blackice-flight", sub: "alice" },
      has_exp_jti: true,
      alice_before: "ok",
      alice_revokes: "unauthorized",
      root_revokes: "ok",
      alice_after: "unauthenticated",
      alice_new_token: "ok",
    });
    expect(out.stats).toMatchObject({ format: "jwt", issued: 3, revocations: 1, revokedHeld: 1, rejected: { revoked: 1, "bad-credentials": 1 } });
  });
});
