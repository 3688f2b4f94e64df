import { createHmac } from "node:crypto";
import { CallContext, FlightError, StatusCode, splitServerParts, type ActionSetting, type CallInfo, type HandshakeResponse, type StatsSetting } from "@blackice/flight-core";
import { generateKeyPairSync } from "node:crypto";
import { basicTokenAuth, REVOKE_TOKEN_ACTION, type BasicTokenAuthOptions } from "./basic-token-auth";
import { kIdentity } from "./identity-of";
import { collect, compose, fakeTerminal, fromArray, makeCall } from "./test-call";

const SECRET = "a-token-signing-secret-of-32-bytes-or-more";
const T0 = 1_767_225_600_000;

function basicHeader(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}

/** An Arrow BasicAuth message: field 2 username, field 3 password. */
function basicAuthPayload(user: string, pass: string): Uint8Array {
  const u = Buffer.from(user);
  const p = Buffer.from(pass);
  return Buffer.concat([Buffer.of(0x12, u.length), u, Buffer.of(0x1a, p.length), p]);
}

function setup(options: Partial<BasicTokenAuthOptions> = {}) {
  let clock = T0;
  const seen: Array<[string, string]> = [];
  const parts = basicTokenAuth({
    validate: async (user, pass) => {
      seen.push([user, pass]);
      return user === "alice" && pass === "correct horse" ? { subject: "alice", claims: { role: "reader" } } : undefined;
    },
    tokenTtlMs: 60_000,
    secret: SECRET,
    now: () => clock,
    ...options,
  });
  const { settings } = splitServerParts(parts);
  const stats = settings.find((s): s is StatsSetting => s.kind === "stats")!;
  const revoke = settings.find((s): s is ActionSetting => s.kind === "action" && s.type === REVOKE_TOKEN_ACTION)!;
  const terminal = fakeTerminal();
  return {
    revoke: (jti: string, roles: string[] = ["admin"]) => {
      const context = new CallContext();
      context.set(kIdentity, { subject: "root", method: "basic", roles });
      return Promise.resolve(revoke.handler(Buffer.from(JSON.stringify({ jti })), makeCall("doAction", { type: REVOKE_TOKEN_ACTION, body: new Uint8Array(0) }, { context }) as never));
    },
    handler: compose(parts, terminal.handler),
    state: terminal.state,
    seen,
    stats: () => stats.collect() as { issued: number; accepted: number; rejected: Record<string, number> },
    advance: (ms: number) => (clock += ms),
  };
}

async function login(t: ReturnType<typeof setup>): Promise<string> {
  const call = makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("alice", "correct horse") } });
  await collect((await t.handler(call)) as AsyncIterable<HandshakeResponse>);
  return call.responseHeaders.get("authorization")!.replace(/^Bearer /, "");
}

async function refused(p: Promise<unknown>): Promise<FlightError> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as FlightError;
  expect(err).toBeInstanceOf(FlightError);
  expect(err.code).toBe(StatusCode.UNAUTHENTICATED);
  expect(err.message).toBe("authentication failed");
  return err;
}

describe("basicTokenAuth: handshake", () => {
  it("header form: answers `authorization: Bearer <token>` and no message when the client sent none (pyarrow)", async () => {
    const t = setup();
    const call = makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("alice", "correct horse") } });
    const out = await collect((await t.handler(call)) as AsyncIterable<HandshakeResponse>);
    expect(out).toEqual([]);
    expect(call.responseHeaders.get("authorization")).toMatch(/^Bearer bi1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(call.context.get(kIdentity)).toEqual({ subject: "alice", method: "basic", claims: { role: "reader" } });
    expect(t.seen).toEqual([["alice", "correct horse"]]);
    expect(t.state.handlerExecuted).toBe(false); // the handshake is answered here
  });

  it("header form: answers each HandshakeRequest with the token as payload", async () => {
    const t = setup();
    const call = makeCall("handshake", fromArray([{ protocolVersion: 3, payload: new Uint8Array(0) }]), { headers: { authorization: basicHeader("alice", "correct horse") } });
    const out = await collect((await t.handler(call)) as AsyncIterable<HandshakeResponse>);
    expect(out).toHaveLength(1);
    expect(out[0]!.protocolVersion).toBe(3);
    expect(`Bearer ${Buffer.from(out[0]!.payload).toString()}`).toBe(call.responseHeaders.get("authorization"));
  });

  it("payload form: a BasicAuth message gets one response carrying the token, and the header", async () => {
    const t = setup();
    const call = makeCall("handshake", fromArray([{ protocolVersion: 0, payload: basicAuthPayload("alice", "correct horse") }]));
    const out = await collect((await t.handler(call)) as AsyncIterable<HandshakeResponse>);
    expect(out).toHaveLength(1);
    const token = Buffer.from(out[0]!.payload).toString();
    expect(call.responseHeaders.get("authorization")).toBe(`Bearer ${token}`);
    // the token works
    const next = makeCall("listActions", {}, { headers: { authorization: `Bearer ${token}` } });
    await t.handler(next);
    expect(next.context.get(kIdentity)?.subject).toBe("alice");
  });

  it("refuses a wrong password (both forms), without the password in the error, and runs no handler", async () => {
    const t = setup();
    const e1 = await refused(t.handler(makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("alice", "wrong-pass-xyz") } })));
    await refused(t.handler(makeCall("handshake", fromArray([{ protocolVersion: 0, payload: basicAuthPayload("alice", "wrong-pass-xyz") }]))));
    expect(e1.message).not.toContain("wrong-pass-xyz");
    expect(t.stats().rejected["bad-credentials"]).toBe(2);
    expect(t.state.handlerExecuted).toBe(false);
  });

  it("accepts the unpadded base64 of arrow-go's AuthenticateBasicToken (ADBC's username/password login), refuses a length no base64 has", async () => {
    const t = setup();
    // "alice:correct horse" is 19 bytes: padded base64 ends with "=", arrow-go's RawStdEncoding drops it.
    const raw = Buffer.from("alice:correct horse").toString("base64").replace(/=+$/, "");
    expect(raw.length % 4).not.toBe(0);
    const ok = makeCall("handshake", fromArray([]), { headers: { authorization: `Basic ${raw}` } });
    await collect((await t.handler(ok)) as AsyncIterable<HandshakeResponse>);
    expect(ok.responseHeaders.get("authorization")).toMatch(/^Bearer /);
    const tooLong = raw + "A".repeat((5 - (raw.length % 4)) % 4);
    expect(tooLong.length % 4).toBe(1);
    await refused(t.handler(makeCall("handshake", fromArray([]), { headers: { authorization: `Basic ${tooLong}` } })));
    expect(t.stats().rejected).toMatchObject({ malformed: 1 });
  });

  it("refuses no credentials, a payload that is not BasicAuth, a malformed Basic header", async () => {
    const t = setup();
    await refused(t.handler(makeCall("handshake", fromArray([]))));
    await refused(t.handler(makeCall("handshake", fromArray([{ protocolVersion: 0, payload: Buffer.from([0xff, 0xff]) }]))));
    await refused(t.handler(makeCall("handshake", fromArray([]), { headers: { authorization: "Basic !!!not-base64" } })));
    await refused(t.handler(makeCall("handshake", fromArray([]), { headers: { authorization: `Basic ${Buffer.from("no-colon").toString("base64")}` } })));
    expect(t.stats().rejected).toMatchObject({ missing: 1, malformed: 3 });
    expect(t.seen).toEqual([]); // validate never saw malformed input
  });

  it("passes a handshake without credentials on when an earlier middleware authenticated the call", async () => {
    const t = setup();
    const context = new CallContext().set(kIdentity, { subject: "k1", method: "hmac" });
    const call = makeCall("handshake", fromArray([{ protocolVersion: 0, payload: new Uint8Array(0) }]), { context });
    const out = await collect((await t.handler(call)) as AsyncIterable<HandshakeResponse>);
    expect(t.state.handlerExecuted).toBe(true);
    expect(Buffer.from(out[0]!.payload).toString()).toBe("next"); // the first message reached the handler
  });
});

describe("basicTokenAuth: bearer calls", () => {
  it("accepts the token, publishes the identity, runs the handler", async () => {
    const t = setup();
    const token = await login(t);
    const call = makeCall("getSchema", { type: 1, cmd: new Uint8Array(0), path: ["x"] }, { headers: { authorization: `bearer ${token}` } });
    await t.handler(call);
    expect(t.state.handlerExecuted).toBe(true);
    expect(call.context.get(kIdentity)).toEqual({ subject: "alice", method: "basic", claims: { role: "reader" } });
  });

  it("refuses a missing header, a Basic header, a tampered token, another server's token, an expired token", async () => {
    const t = setup();
    const token = await login(t);
    const call = (authorization?: string) => t.handler(makeCall("listActions", {}, { headers: authorization ? { authorization } : {} }));
    await refused(call());
    await refused(call(basicHeader("alice", "correct horse")));
    const [v, payload, mac] = token.split(".");
    const flipped = (s: string) => (s[5] === "A" ? s.slice(0, 5) + "B" + s.slice(6) : s.slice(0, 5) + "A" + s.slice(6));
    await refused(call(`Bearer ${v}.${flipped(payload!)}.${mac}`));
    await refused(call(`Bearer ${v}.${payload}.${flipped(mac!)}`));
    const other = setup({ secret: "another-secret-another-secret-another" });
    await refused(other.handler(makeCall("listActions", {}, { headers: { authorization: `Bearer ${token}` } })));
    t.advance(60_000);
    await refused(call(`Bearer ${token}`));
    expect(t.stats().rejected).toMatchObject({ missing: 1, malformed: 1, "bad-token": 2, expired: 1 });
    expect(t.state.handlerExecuted).toBe(false);
  });

  it(`publishes method "basic" even when validate returns a whole Identity`, async () => {
    const t = setup({ validate: async (user) => ({ subject: user, method: "hmac" }) });
    const call = makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("bob", "x") } });
    await t.handler(call);
    expect(call.context.get(kIdentity)).toEqual({ subject: "bob", method: "basic" });
  });

  it("carries validate's roles inside the signed token and publishes them, on the handshake and on every bearer call", async () => {
    const t = setup({ validate: async (user) => ({ subject: user, roles: ["admin", "ops"] }) });
    const hs = makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("root", "x") } });
    await collect((await t.handler(hs)) as AsyncIterable<HandshakeResponse>);
    expect(hs.context.get(kIdentity)).toEqual({ subject: "root", method: "basic", roles: ["admin", "ops"] });
    const token = hs.responseHeaders.get("authorization")!.replace(/^Bearer /, "");
    expect(JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"))).toMatchObject({ sub: "root", roles: ["admin", "ops"] });
    const call = makeCall("listActions", {}, { headers: { authorization: `Bearer ${token}` } });
    await t.handler(call);
    expect(call.context.get(kIdentity)).toEqual({ subject: "root", method: "basic", roles: ["admin", "ops"] });
    // A user without roles gets none (and no roles field in its token).
    const plain = setup();
    const plainToken = await login(plain);
    expect(JSON.parse(Buffer.from(plainToken.split(".")[1]!, "base64url").toString("utf8"))).not.toHaveProperty("roles");
  });

  it("refuses (bad-token) a correctly signed token whose roles are not strings", async () => {
    const t = setup();
    const key = createHmac("sha256", SECRET).update("blackice-bearer-token-v1").digest();
    const forge = (payload: object): string => {
      const signed = `bi1.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
      return `${signed}.${createHmac("sha256", key).update(signed).digest("base64url")}`;
    };
    const base = { v: 1, sub: "mallory", iat: T0, exp: T0 + 60_000, jti: "x" };
    await t.handler(makeCall("listActions", {}, { headers: { authorization: `Bearer ${forge({ ...base, roles: ["reader"] })}` } }));
    expect(t.state.handlerExecuted).toBe(true);
    t.state.handlerExecuted = false;
    for (const roles of ["admin", [1], [""], {}]) {
      await refused(t.handler(makeCall("listActions", {}, { headers: { authorization: `Bearer ${forge({ ...base, roles })}` } })));
    }
    expect(t.stats().rejected["bad-token"]).toBe(4);
    expect(t.state.handlerExecuted).toBe(false);
  });

  it("accepts a token from another instance with the same secret (replicas)", async () => {
    const a = setup();
    const b = setup();
    const token = await login(a);
    await b.handler(makeCall("listActions", {}, { headers: { authorization: `Bearer ${token}` } }));
    expect(b.state.handlerExecuted).toBe(true);
  });

  it("serves public methods and calls an earlier middleware authenticated without a token", async () => {
    const t = setup({ publicMethods: ["listActions"] });
    await t.handler(makeCall("listActions", {}));
    expect(t.state.handlerExecuted).toBe(true);
    await refused(t.handler(makeCall("doAction", { type: "ping", body: new Uint8Array(0) })));
    const context = new CallContext().set(kIdentity, { subject: "k1", method: "hmac" });
    const call = makeCall("doAction", { type: "ping", body: new Uint8Array(0) }, { context });
    await t.handler(call);
    expect(call.context.get(kIdentity)?.method).toBe("hmac");
  });
});

describe("basicTokenAuth: build time", () => {
  it("checks its options up front", () => {
    expect(() => basicTokenAuth({} as never)).toThrow(/validate/);
    expect(() => basicTokenAuth({ validate: async () => undefined, secret: "short" })).toThrow(/at least 32/);
    expect(() => basicTokenAuth({ validate: async () => undefined, tokenTtlMs: 0 })).toThrow(/tokenTtlMs/);
    expect(() => basicTokenAuth({ validate: async () => undefined, now: 5 as never })).toThrow(/now/);
  });

  it("refuses (TypeError, not a token) a validate that returns something that is not a user", async () => {
    const t = setup({ validate: async () => ({ subject: "" }) });
    await expect(t.handler(makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("a", "b") } }))).rejects.toThrow(TypeError);
    const bad = setup({ validate: async () => ({ subject: "x", claims: { nested: {} as never } }) });
    await expect(bad.handler(makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("a", "b") } }))).rejects.toThrow(/claim/);
    for (const roles of ["admin", [""], [7]] as never[]) {
      const badRoles = setup({ validate: async () => ({ subject: "x", roles }) });
      await expect(badRoles.handler(makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("a", "b") } }))).rejects.toThrow(
        /basicTokenAuth: validate: roles must be an array of non-empty strings/,
      );
      expect(badRoles.stats().issued).toBe(0);
    }
    const info: CallInfo[] = [];
    const seesCall = setup({ validate: async (_u, _p, call) => (info.push(call), undefined) });
    await refused(seesCall.handler(makeCall("handshake", fromArray([]), { headers: { authorization: basicHeader("a", "b") } })));
    expect(info[0]?.peer).toBe("127.0.0.1:50000");
  });
});

describe("basicTokenAuth: revocation and JWT tokens", () => {
  const jtiOf = (token: string): string =>
    JSON.parse(Buffer.from(token.startsWith("bi1.") ? token.split(".")[1]! : token.split(".")[1]!, "base64url").toString()).jti;
  const listActions = (token: string) => makeCall("listActions", {}, { headers: { authorization: `Bearer ${token}` } });

  it("revokes a bi1 token by jti until it expires; only the admin role may revoke", async () => {
    const t = setup();
    const a = await login(t);
    const b = await login(t);
    await expect(t.revoke(jtiOf(a), [])).rejects.toMatchObject({ code: StatusCode.PERMISSION_DENIED });
    await t.revoke(jtiOf(a));
    await refused(t.handler(listActions(a)));
    await t.handler(listActions(b));
    expect(t.stats().rejected.revoked).toBe(1);
    await expect(t.revoke("not a jti!")).rejects.toMatchObject({ code: StatusCode.INVALID_ARGUMENT });
  });

  it("with jwt, issues EdDSA JWTs that verify, expire and can be revoked", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const t = setup({ jwt: { signingKey: { privateKey }, issuer: "iss", audience: "aud" } });
    const token = await login(t);
    expect(JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString())).toEqual({ alg: "EdDSA", typ: "JWT" });
    const c = listActions(token);
    await t.handler(c);
    expect(c.context.get(kIdentity)).toMatchObject({ subject: "alice", method: "basic", claims: { role: "reader" } });
    // A token from another key with the same claims is refused.
    const other = setup({ jwt: { signingKey: { privateKey: generateKeyPairSync("ed25519").privateKey }, issuer: "iss", audience: "aud" } });
    await refused(t.handler(listActions(await login(other))));
    t.advance(60_000);
    await refused(t.handler(listActions(token)));
    expect(t.stats().rejected.expired).toBe(1);
    const fresh = await login(t);
    await t.revoke(jtiOf(fresh));
    await refused(t.handler(listActions(fresh)));
    expect(t.stats().rejected).toMatchObject({ revoked: 1, "bad-token": 1 });
  });

  it("refuses a JWT key that is not Ed25519 or P-256, and bad jwt options, when built", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
    expect(() => setup({ jwt: { signingKey: { privateKey: rsa }, issuer: "i", audience: "a" } })).toThrow(/Ed25519 or EC P-256/);
    expect(() => setup({ jwt: { signingKey: { privateKeyPath: "/nonexistent.pem" }, issuer: "i", audience: "a" } })).toThrow(/cannot read the key file "\/nonexistent.pem"/);
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
    expect(() => setup({ jwt: { signingKey: { privateKey: ec }, issuer: "", audience: "a" } })).toThrow(/issuer/);
    expect(() => setup({ jwt: { signingKey: { privateKey: ec }, issuer: "i", audience: "a" } })).not.toThrow();
  });
});
