import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FlightError, StatusCode, splitServerParts, type FlightData, type FlightDescriptor, type StatsSetting } from "@blackice/flight-core";
import { encodeFlightDescriptor } from "./encode-flight-descriptor";
import { hmacAuth, HMAC_FAILURE_REASONS, type HmacAuthOptions } from "./hmac-auth";
import { EMPTY_BODY_SHA256, HMAC_HEADERS, hmacCanonicalString, sha256Hex } from "./hmac-canonical-string";
import { hmacSigner } from "./hmac-signer";
import { kIdentity } from "./identity-of";
import { collect, compose, fakeTerminal, fromArray, makeCall, METHOD_PATHS } from "./test-call";

const SECRET = "0123456789abcdef0123456789abcdef-primary";
const OTHER = "fedcba9876543210fedcba9876543210-rotated";
const T0 = 1_767_225_600_000; // 2026-01-01

function setup(options: Partial<HmacAuthOptions> = {}) {
  let clock = T0;
  const parts = hmacAuth({ keys: [{ keyId: "k1", secret: SECRET }, { keyId: "k2", secret: OTHER }], now: () => clock, ...options });
  const { settings } = splitServerParts(parts);
  const stats = settings.find((s): s is StatsSetting => s.kind === "stats")!;
  const terminal = fakeTerminal();
  const handler = compose(parts, terminal.handler);
  return {
    handler,
    state: terminal.state,
    stats: () => stats.collect() as { accepted: number; rejected: Record<string, number>; nonceCache: { size: number; capacity: number }; keys: string[] },
    setClock: (t: number) => (clock = t),
    signer: (keyId = "k1", secret = keyId === "k2" ? OTHER : SECRET) => hmacSigner({ keyId, secret, now: () => clock }),
  };
}

/** Signs by hand, choosing every field (for nonce and timestamp control). */
function handSigned(fields: { path: string; timestamp: number; nonce: string; keyId: string; body: Uint8Array | string; version?: "v1" | "v2" }, secret = SECRET): Record<string, string> {
  const bodySha256 = typeof fields.body === "string" ? fields.body : sha256Hex(fields.body);
  const version = fields.version ?? "v2";
  const canonical = hmacCanonicalString({ version, path: fields.path, timestamp: String(fields.timestamp), nonce: fields.nonce, keyId: fields.keyId, bodySha256 });
  return {
    [HMAC_HEADERS.version]: version,
    [HMAC_HEADERS.keyId]: fields.keyId,
    [HMAC_HEADERS.timestamp]: String(fields.timestamp),
    [HMAC_HEADERS.nonce]: fields.nonce,
    [HMAC_HEADERS.signature]: createHmac("sha256", secret).update(canonical).digest("hex"),
  };
}

const TICKET = Buffer.from("p:telemetry/cpu");
const RAW_TICKET = Buffer.concat([Buffer.of(0x0a, TICKET.length), TICKET]); // Ticket{ticket} as protobuf
const pathDescriptor = (...path: string[]): FlightDescriptor => ({ type: 1, cmd: new Uint8Array(0), path });
const data = (d?: FlightDescriptor, tag = "m"): FlightData => ({ flightDescriptor: d, dataHeader: Buffer.from(tag), dataBody: Buffer.from(`${tag}-body`), appMetadata: new Uint8Array(0) });

const EMPTY = new Uint8Array(0);

/** Signs a v2 stream call: its headers, and the messages followed by their seal message. */
async function sealedCall(signer: ReturnType<typeof hmacSigner>, path: string, d: FlightDescriptor, msgs: FlightData[]): Promise<{ headers: Record<string, string>; stream: FlightData[] }> {
  const { headers, sealer } = await signer.signStream!({ path, descriptor: encodeFlightDescriptor(d) });
  for (const m of msgs) sealer.update(m);
  return { headers, stream: [...msgs, { flightDescriptor: undefined, dataHeader: EMPTY, dataBody: EMPTY, appMetadata: sealer.seal() }] };
}

async function expectUnauthenticated(p: Promise<unknown>): Promise<FlightError> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as FlightError;
  expect(err).toBeInstanceOf(FlightError);
  expect(err.code).toBe(StatusCode.UNAUTHENTICATED);
  expect(err.message).toBe("request authentication failed");
  return err;
}

describe("hmacAuth: accepted calls", () => {
  it("accepts a signed unary call, publishes the key id as identity, and runs the handler", async () => {
    const t = setup();
    const headers = await t.signer()({ path: METHOD_PATHS.getFlightInfo, message: RAW_TICKET });
    const call = makeCall("getFlightInfo", pathDescriptor("x"), { headers, rawRequest: RAW_TICKET });
    await t.handler(call);
    expect(t.state.handlerExecuted).toBe(true);
    expect(call.context.get(kIdentity)).toEqual({ subject: "k1", method: "hmac" });
    expect(t.stats().accepted).toBe(1);
  });

  it("publishes a key's roles with its identity, and none for a key without roles", async () => {
    const t = setup({ keys: [{ keyId: "ops", secret: SECRET, roles: ["admin", "ops", "admin"] }, { keyId: "k2", secret: OTHER }] });
    const signedBy = async (keyId: string, secret: string) => {
      const headers = await hmacSigner({ keyId, secret, now: () => T0 })({ path: METHOD_PATHS.getFlightInfo, message: RAW_TICKET });
      const call = makeCall("getFlightInfo", pathDescriptor("x"), { headers, rawRequest: RAW_TICKET });
      await t.handler(call);
      return call.context.get(kIdentity);
    };
    const ops = await signedBy("ops", SECRET);
    expect(ops).toEqual({ subject: "ops", method: "hmac", roles: ["admin", "ops"] });
    expect(Object.isFrozen(ops!.roles)).toBe(true);
    expect(await signedBy("k2", OTHER)).toEqual({ subject: "k2", method: "hmac" });
  });

  it("accepts DoGet, DoAction, ListFlights, ListActions with their raw request hashed", async () => {
    const t = setup();
    const cases = [
      ["doGet", { ticket: TICKET }, RAW_TICKET],
      ["doAction", { type: "ping", body: new Uint8Array(0) }, Buffer.from("0a0470696e67", "hex")],
      ["listFlights", { expression: new Uint8Array(0) }, new Uint8Array(0)],
      ["listActions", {}, new Uint8Array(0)],
    ] as const;
    for (const [method, request, raw] of cases) {
      const headers = await t.signer()({ path: METHOD_PATHS[method], message: raw });
      const res = await t.handler(makeCall(method, request as never, { headers, rawRequest: raw }));
      await collect(res as AsyncIterable<unknown>);
    }
    expect(t.stats().accepted).toBe(4);
    expect(Object.values(t.stats().rejected).every((n) => n === 0)).toBe(true);
  });

  it("accepts a Handshake signed over the empty body", async () => {
    const t = setup();
    const headers = await t.signer("k2")({ path: METHOD_PATHS.handshake });
    const call = makeCall("handshake", fromArray([{ protocolVersion: 0, payload: new Uint8Array(0) }]), { headers });
    const out = await collect((await t.handler(call)) as AsyncIterable<unknown>);
    expect(out).toHaveLength(1);
    expect(call.context.get(kIdentity)?.subject).toBe("k2");
  });

  it("accepts DoPut signed over its first descriptor and hands the handler every message, the first included", async () => {
    const t = setup();
    const d = pathDescriptor("telemetry", "cpu");
    const msgs = [data(d, "schema"), data(undefined, "b1"), data(undefined, "b2")];
    const { headers, stream } = await sealedCall(t.signer(), METHOD_PATHS.doPut, d, msgs);
    await collect((await t.handler(makeCall("doPut", fromArray(stream), { headers }))) as AsyncIterable<unknown>);
    // The seal message is checked and kept from the handler.
    expect(t.state.received.map((m) => Buffer.from(m.dataHeader).toString())).toEqual(["schema", "b1", "b2"]);
    expect(t.stats()).toMatchObject({ accepted: 1, sealedStreams: 1 });
  });

  it("accepts DoExchange whose client encoded the descriptor non-canonically (the signer canonicalizes)", async () => {
    const t = setup();
    // path first, then type: valid protobuf, different bytes from the canonical encoding
    const odd = Buffer.from([0x1a, 0x04, ...Buffer.from("echo"), 0x08, 0x01]);
    expect(odd.equals(Buffer.from(encodeFlightDescriptor(pathDescriptor("echo"))))).toBe(false);
    const headers = await hmacSigner({ keyId: "k1", secret: SECRET, now: () => T0, version: "v1" })({ path: METHOD_PATHS.doExchange, descriptor: odd });
    await collect((await setup({ acceptV1: true }).handler(makeCall("doExchange", fromArray([data(pathDescriptor("echo"))]), { headers }))) as AsyncIterable<unknown>);
    const signed = await t.signer().signStream!({ path: METHOD_PATHS.doExchange, descriptor: odd });
    const msg = data(pathDescriptor("echo"));
    signed.sealer.update(msg);
    const seal = { flightDescriptor: undefined, dataHeader: new Uint8Array(0), dataBody: new Uint8Array(0), appMetadata: signed.sealer.seal() };
    await collect((await t.handler(makeCall("doExchange", fromArray([msg, seal]), { headers: signed.headers }))) as AsyncIterable<unknown>);
    expect(t.state.handlerExecuted).toBe(true);
  });

  it("accepts every active key (rotation)", async () => {
    const t = setup();
    for (const k of ["k1", "k2"]) {
      const headers = await t.signer(k)({ path: METHOD_PATHS.doGet, message: RAW_TICKET });
      await t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET }));
    }
    expect(t.stats().accepted).toBe(2);
    expect(t.stats().keys).toEqual(["k1", "k2"]);
  });

  it("accepts a timestamp exactly at the window's edge, both ways", async () => {
    const t = setup({ windowMs: 1000 });
    for (const [i, ts] of [T0 - 1000, T0 + 1000].entries()) {
      const headers = handSigned({ path: METHOD_PATHS.doGet, timestamp: ts, nonce: `edge-nonce-${i}-aaaaaaaaaaaaa`, keyId: "k1", body: RAW_TICKET });
      await t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET }));
    }
    expect(t.stats().accepted).toBe(2);
  });
});

describe("hmacAuth: refused calls (UNAUTHENTICATED, one message, reason counted, handler not run)", () => {
  const base = { path: METHOD_PATHS.doGet, timestamp: T0, keyId: "k1", body: RAW_TICKET as Uint8Array | string };
  let n = 0;
  const nonce = () => `nonce-${String(++n).padStart(4, "0")}-abcdefghijklmnop`;

  const cases: Array<[string, (h: Record<string, string>) => Record<string, string | string[]>, string, Partial<HmacAuthOptions>?]> = [
    ["no headers", () => ({}), "missing"],
    ["no signature", (h) => ({ ...h, [HMAC_HEADERS.signature]: undefined as never }), "missing"],
    ["a header twice", (h) => ({ ...h, [HMAC_HEADERS.nonce]: [h[HMAC_HEADERS.nonce]!, h[HMAC_HEADERS.nonce]!] }), "malformed"],
    ["a short nonce", (h) => ({ ...h, [HMAC_HEADERS.nonce]: "short" }), "malformed"],
    ["a nonce with a newline", (h) => ({ ...h, [HMAC_HEADERS.nonce]: "abcdefghijklmnopqrstuvw\nx" }), "malformed"],
    ["an upper-case signature", (h) => ({ ...h, [HMAC_HEADERS.signature]: h[HMAC_HEADERS.signature]!.toUpperCase() }), "malformed"],
    ["a non-numeric timestamp", (h) => ({ ...h, [HMAC_HEADERS.timestamp]: "17e11" }), "malformed"],
    ["version v3", (h) => ({ ...h, [HMAC_HEADERS.version]: "v3" }), "unsupported-version"],
    ["version v1 (not accepted by default)", (h) => ({ ...h, [HMAC_HEADERS.version]: "v1" }), "unsupported-version"],
    ["an unknown key", (h) => ({ ...h, [HMAC_HEADERS.keyId]: "k9" }), "unknown-key"],
  ];
  for (const [name, mutate, reason] of cases) {
    it(`${name} → ${reason}`, async () => {
      const t = setup();
      const headers = Object.fromEntries(Object.entries(mutate(handSigned({ ...base, nonce: nonce() }))).filter(([, v]) => v !== undefined));
      await expectUnauthenticated(t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET })));
      expect(t.state.handlerExecuted).toBe(false);
      expect(t.stats().rejected[reason]).toBe(1);
      expect(Object.values(t.stats().rejected).reduce((a, b) => a + b, 0)).toBe(1);
    });
  }

  it("a timestamp outside the window, past or future → expired", async () => {
    const t = setup({ windowMs: 1000 });
    for (const ts of [T0 - 1001, T0 + 1001, 0]) {
      const headers = handSigned({ ...base, timestamp: ts, nonce: nonce() });
      await expectUnauthenticated(t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET })));
    }
    expect(t.stats().rejected.expired).toBe(3);
    expect(t.state.handlerExecuted).toBe(false);
  });

  it("a tampered request, another method's path, a wrong secret or a wrong key id → bad-mac", async () => {
    const t = setup();
    const doGet = (headers: Record<string, string>, raw: Uint8Array = RAW_TICKET) => t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: raw }));
    await expectUnauthenticated(doGet(handSigned({ ...base, nonce: nonce() }), Buffer.concat([RAW_TICKET, Buffer.of(0)])));
    await expectUnauthenticated(doGet(handSigned({ ...base, path: METHOD_PATHS.getSchema, nonce: nonce() })));
    await expectUnauthenticated(doGet(handSigned({ ...base, nonce: nonce() }, OTHER)));
    await expectUnauthenticated(doGet(handSigned({ ...base, keyId: "k2", nonce: nonce() }))); // k2's id, k1's secret
    // a valid signature with one bit flipped
    const h = handSigned({ ...base, nonce: nonce() });
    const sig = h[HMAC_HEADERS.signature]!;
    await expectUnauthenticated(doGet({ ...h, [HMAC_HEADERS.signature]: (sig[0] === "0" ? "1" : "0") + sig.slice(1) }));
    expect(t.stats().rejected["bad-mac"]).toBe(5);
    expect(t.state.handlerExecuted).toBe(false);
  });

  it("DoPut whose first descriptor differs from the signed one → bad-mac, and the handler never reads the stream", async () => {
    const t = setup();
    const headers = await t.signer()({ path: METHOD_PATHS.doPut, descriptor: encodeFlightDescriptor(pathDescriptor("allowed")) });
    let pulled = 0;
    const stream = (async function* () {
      for (const m of [data(pathDescriptor("other")), data(), data()]) {
        pulled++;
        yield m;
      }
    })();
    await expectUnauthenticated(t.handler(makeCall("doPut", stream, { headers })));
    expect(t.state.handlerExecuted).toBe(false);
    expect(pulled).toBe(1);
    expect(t.stats().rejected["bad-mac"]).toBe(1);
  });

  it("DoPut signed with a body instead of the descriptor → bad-mac", async () => {
    const t = setup();
    const d = pathDescriptor("a");
    const headers = await t.signer()({ path: METHOD_PATHS.doPut, message: encodeFlightDescriptor({ ...d, path: ["b"] }) });
    await expectUnauthenticated(t.handler(makeCall("doPut", fromArray([data(d)]), { headers })));
    expect(t.stats().rejected["bad-mac"]).toBe(1);
  });

  it("a unary call without its raw request → unverifiable", async () => {
    const t = setup();
    const headers = handSigned({ ...base, nonce: nonce() });
    await expectUnauthenticated(t.handler(makeCall("doGet", { ticket: TICKET }, { headers })));
    expect(t.stats().rejected.unverifiable).toBe(1);
  });

  it("the same signed call twice → replayed", async () => {
    const t = setup();
    const headers = await t.signer()({ path: METHOD_PATHS.doGet, message: RAW_TICKET });
    await t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET }));
    t.state.handlerExecuted = false;
    await expectUnauthenticated(t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET })));
    expect(t.state.handlerExecuted).toBe(false);
    expect(t.stats().rejected.replayed).toBe(1);
  });

  it("remembers a nonce only after a valid MAC: a forged call cannot burn a nonce", async () => {
    const t = setup();
    const good = handSigned({ ...base, nonce: "shared-nonce-0123456789abc" });
    const forged = { ...good, [HMAC_HEADERS.signature]: "0".repeat(64) };
    await expectUnauthenticated(t.handler(makeCall("doGet", { ticket: TICKET }, { headers: forged, rawRequest: RAW_TICKET })));
    await t.handler(makeCall("doGet", { ticket: TICKET }, { headers: good, rawRequest: RAW_TICKET }));
    expect(t.state.handlerExecuted).toBe(true);
    expect(t.stats().nonceCache.size).toBe(1);
  });

  it("a full nonce cache refuses new calls (nonce-cache-full) until nonces expire, and never forgets one early", async () => {
    const t = setup({ maxNonces: 2, windowMs: 1000 });
    const call = (nonceValue: string, ts = T0) =>
      t.handler(makeCall("doGet", { ticket: TICKET }, { headers: handSigned({ ...base, timestamp: ts, nonce: nonceValue }), rawRequest: RAW_TICKET }));
    await call("first-nonce-abcdefghijklmnop");
    await call("second-nonce-abcdefghijklmno");
    await expectUnauthenticated(call("third-nonce-abcdefghijklmnop"));
    expect(t.stats().rejected["nonce-cache-full"]).toBe(1);
    // the first is still remembered: a replay of it is still refused as a replay
    await expectUnauthenticated(call("first-nonce-abcdefghijklmnop"));
    expect(t.stats().rejected.replayed).toBe(1);
    // after 2 × window the old nonces are gone and there is room again
    t.setClock(T0 + 2001);
    await call("third-nonce-abcdefghijklmnop", T0 + 2001);
    expect(t.stats().accepted).toBe(3);
    expect(t.stats().nonceCache).toEqual({ size: 1, capacity: 2 });
  });

  it("counts every reason under the stats section, starting at zero", () => {
    const t = setup();
    expect(Object.keys(t.stats().rejected).sort()).toEqual([...HMAC_FAILURE_REASONS].sort());
    expect(Object.values(t.stats().rejected).every((v) => v === 0)).toBe(true);
  });
});

describe("hmacAuth: build-time checks", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hmac-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads hmacSecretPath (trailing newline stripped) and accepts calls signed with the same secret", async () => {
    const file = path.join(dir, "secret");
    fs.writeFileSync(file, `${SECRET}\n`);
    const parts = hmacAuth({ hmacSecretPath: file, now: () => T0 });
    const terminal = fakeTerminal();
    const handler = compose(parts, terminal.handler);
    const headers = await hmacSigner({ keyId: "default", secretPath: file, now: () => T0 })({ path: METHOD_PATHS.doGet, message: RAW_TICKET });
    await handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET }));
    expect(terminal.state.handlerExecuted).toBe(true);
    // and the stripped secret is the value without the newline
    const viaValue = await hmacSigner({ keyId: "default", secret: SECRET, now: () => T0 })({ path: METHOD_PATHS.handshake });
    const call = makeCall("handshake", fromArray([]), { headers: viaValue });
    await handler(call);
    expect(call.context.get(kIdentity)?.subject).toBe("default");
  });

  it("refuses a secret shorter than 32 bytes, as a value or in a file, without showing it", () => {
    const short = "only-thirty-one-bytes-long-1234"; // 31 bytes
    expect(Buffer.byteLength(short)).toBe(31);
    const file = path.join(dir, "short");
    fs.writeFileSync(file, `${short}\n`);
    for (const options of [{ hmacSecret: short }, { hmacSecretPath: file }, { keys: [{ keyId: "a", secret: Buffer.from(short) }] }]) {
      let err: unknown;
      try {
        hmacAuth(options);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/31 bytes long; at least 32/);
      expect((err as Error).message).not.toContain(short);
    }
    expect(() => hmacAuth({ hmacSecretPath: file })).toThrow(file);
  });

  it("refuses a missing file (naming it), no key, duplicate or bad key ids, both secret forms, bad numbers", () => {
    expect(() => hmacAuth({ hmacSecretPath: path.join(dir, "nope") })).toThrow(/cannot read the secret file .*nope.* \(ENOENT\)/);
    expect(() => hmacAuth({})).toThrow(TypeError);
    expect(() => hmacAuth({ keys: [{ keyId: "a", secret: SECRET }, { keyId: "a", secret: OTHER }] })).toThrow(/more than once/);
    expect(() => hmacAuth({ keys: [{ keyId: "bad id", secret: SECRET }] })).toThrow(/key id/);
    expect(() => hmacAuth({ keys: [{ keyId: "a", secret: SECRET, secretPath: "/x" } as never] })).toThrow(/exactly one/);
    expect(() => hmacAuth({ hmacSecret: SECRET, hmacSecretPath: "/x" })).toThrow(/not both/);
    expect(() => hmacAuth({ hmacSecret: SECRET, windowMs: 0 })).toThrow(/windowMs/);
    expect(() => hmacAuth({ hmacSecret: SECRET, maxNonces: 1.5 })).toThrow(/maxNonces/);
    expect(() => hmacAuth({ enableHMAC: "no" as never })).toThrow(/enableHMAC/);
  });

  it("refuses roles that are not an array of non-empty strings, naming the key", () => {
    for (const roles of ["admin", [""], [1], [null], {}] as never[]) {
      expect(() => hmacAuth({ keys: [{ keyId: "ops", secret: SECRET, roles }] })).toThrow(/hmacAuth: key "ops": roles must be an array of non-empty strings/);
    }
    expect(() => hmacAuth({ keys: [{ keyId: "ops", secret: SECRET, roles: [] }] })).not.toThrow();
  });

  it("enableHMAC: false is a pass-through that needs no key", async () => {
    const parts = hmacAuth({ enableHMAC: false });
    const terminal = fakeTerminal();
    const { middleware } = splitServerParts(parts);
    expect(middleware[0]!(terminal.handler)).toBe(terminal.handler);
    const call = makeCall("doGet", { ticket: TICKET }, { rawRequest: RAW_TICKET });
    await compose(parts, terminal.handler)(call);
    expect(terminal.state.handlerExecuted).toBe(true);
    expect(call.context.get(kIdentity)).toBeUndefined();
  });
});

describe("hmacSigner", () => {
  it("returns the five headers, a fresh base64url nonce each time, and a signature over the documented string", async () => {
    const sign = hmacSigner({ keyId: "k1", secret: SECRET, now: () => T0 });
    const a = await sign({ path: METHOD_PATHS.doGet, message: RAW_TICKET });
    const b = await sign({ path: METHOD_PATHS.doGet, message: RAW_TICKET });
    expect(Object.keys(a).sort()).toEqual(Object.values(HMAC_HEADERS).sort());
    expect(a[HMAC_HEADERS.version]).toBe("v2");
    expect(a[HMAC_HEADERS.timestamp]).toBe(String(T0));
    expect(a[HMAC_HEADERS.nonce]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a[HMAC_HEADERS.nonce]).not.toBe(b[HMAC_HEADERS.nonce]);
    const canonical = `v2\n${METHOD_PATHS.doGet}\n${T0}\n${a[HMAC_HEADERS.nonce]}\nk1\n${sha256Hex(RAW_TICKET)}`;
    expect(a[HMAC_HEADERS.signature]).toBe(createHmac("sha256", SECRET).update(canonical).digest("hex"));
    const hs = await sign({ path: METHOD_PATHS.handshake });
    expect(hs[HMAC_HEADERS.signature]).toBe(
      createHmac("sha256", SECRET).update(`v2\n${METHOD_PATHS.handshake}\n${T0}\n${hs[HMAC_HEADERS.nonce]}\nk1\n${EMPTY_BODY_SHA256}`).digest("hex"),
    );
  });

  it("refuses bad options and calls", () => {
    expect(() => hmacSigner({ keyId: "k1", secret: "short" })).toThrow(TypeError);
    expect(() => hmacSigner({ keyId: "k 1", secret: SECRET })).toThrow(/key id/);
    const sign = hmacSigner({ keyId: "k1", secret: SECRET });
    expect(() => sign({ path: "no-slash" })).toThrow(TypeError);
    expect(() => sign({ path: METHOD_PATHS.doPut, message: new Uint8Array(1), descriptor: new Uint8Array(1) })).toThrow(/not both/);
  });
});

describe("hmacAuth: allowUnsigned", () => {
  it("lets a call with no signature header through without an identity, for a later middleware", async () => {
    const t = setup({ allowUnsigned: true });
    const call = makeCall("doGet", { ticket: TICKET }, { rawRequest: RAW_TICKET });
    await t.handler(call);
    expect(t.state.handlerExecuted).toBe(true);
    expect(call.context.get(kIdentity)).toBeUndefined();
    expect((t.stats() as unknown as { unsigned: number }).unsigned).toBe(1);
  });

  it("still refuses a call with a bad signature", async () => {
    const t = setup({ allowUnsigned: true });
    const headers = handSigned({ path: METHOD_PATHS.doGet, timestamp: T0, nonce: "n".repeat(24), keyId: "k1", body: RAW_TICKET }, OTHER);
    await expectUnauthenticated(t.handler(makeCall("doGet", { ticket: TICKET }, { headers, rawRequest: RAW_TICKET })));
    expect(t.state.handlerExecuted).toBe(false);
    expect(t.stats().rejected["bad-mac"]).toBe(1);
  });

  it("refuses a non-boolean when built", () => {
    expect(() => hmacAuth({ keys: [{ keyId: "k1", secret: SECRET }], allowUnsigned: "yes" as never })).toThrow(TypeError);
  });
});

describe("hmacAuth v2: the seal covers every message of DoPut and DoExchange", () => {
  const d = pathDescriptor("telemetry", "cpu");
  const msgs = () => [data(d, "schema"), data(undefined, "b1"), data(undefined, "b2"), data(undefined, "b3")];
  const tampered: Array<[string, (s: FlightData[]) => FlightData[], string]> = [
    ["a rewritten batch body", (s) => s.map((m, i) => (i === 2 ? { ...m, dataBody: Buffer.from("b2-BODY") } : m)), "bad-seal"],
    ["a rewritten app_metadata", (s) => s.map((m, i) => (i === 1 ? { ...m, appMetadata: Buffer.from("x") } : m)), "bad-seal"],
    ["two batches swapped", (s) => [s[0]!, s[2]!, s[1]!, ...s.slice(3)], "bad-seal"],
    ["a batch dropped", (s) => [s[0]!, s[1]!, ...s.slice(3)], "bad-seal"],
    ["a batch added", (s) => [...s.slice(0, 4), data(undefined, "evil"), s[4]!], "bad-seal"],
    ["a batch added after the seal", (s) => [...s, data(undefined, "evil")], "bad-seal"],
    ["the seal dropped", (s) => s.slice(0, 4), "unsealed"],
    ["the seal of another call", (s) => s, "bad-seal"],
  ];
  for (const [name, tamper, reason] of tampered) {
    it(`${name} → ${reason}; the handler never sees the stream end`, async () => {
      const t = setup();
      const { headers, stream } = await sealedCall(t.signer(), METHOD_PATHS.doPut, d, msgs());
      let sent = tamper(stream);
      if (name === "the seal of another call") {
        const other = await sealedCall(t.signer(), METHOD_PATHS.doPut, d, msgs());
        sent = [...stream.slice(0, 4), other.stream[4]!];
      }
      let ended = false;
      const handler = compose(hmacAuth({ keys: [{ keyId: "k1", secret: SECRET }], now: () => T0 }), async (call) => {
        for await (const _ of call.request as AsyncIterable<FlightData>) void _;
        ended = true;
        return fromArray([]);
      });
      await expectUnauthenticated(handler(makeCall("doPut", fromArray(sent), { headers })));
      expect(ended).toBe(false);
    });
  }

  it("counts bad-seal and unsealed in stats", async () => {
    const t = setup();
    const a = await sealedCall(t.signer(), METHOD_PATHS.doPut, d, msgs());
    await expectUnauthenticated(t.handler(makeCall("doPut", fromArray(a.stream.slice(0, 4)), { headers: a.headers })));
    const b = await sealedCall(t.signer(), METHOD_PATHS.doPut, d, msgs());
    await expectUnauthenticated(t.handler(makeCall("doPut", fromArray([b.stream[0]!, b.stream[2]!, b.stream[1]!, b.stream[3]!, b.stream[4]!]), { headers: b.headers })));
    expect(t.stats().rejected).toMatchObject({ unsealed: 1, "bad-seal": 1 });
  });

  it("a v1 DoPut (descriptor only) passes only with acceptV1", async () => {
    const v1 = hmacSigner({ keyId: "k1", secret: SECRET, now: () => T0, version: "v1" });
    expect(v1.signStream).toBeUndefined();
    const call = async (t: ReturnType<typeof setup>) =>
      t.handler(makeCall("doPut", fromArray(msgs()), { headers: await v1({ path: METHOD_PATHS.doPut, descriptor: encodeFlightDescriptor(d) }) }));
    await expectUnauthenticated(call(setup()));
    const lenient = setup({ acceptV1: true });
    await collect((await call(lenient)) as AsyncIterable<unknown>);
    expect(lenient.state.received).toHaveLength(4);
    expect(() => hmacAuth({ keys: [{ keyId: "k1", secret: SECRET }], acceptV1: "yes" as never })).toThrow(/acceptV1 must be a boolean/);
  });
});
