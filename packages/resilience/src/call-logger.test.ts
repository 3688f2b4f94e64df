import { CallContext, FlightError, StatusCode, composeMiddleware, type FlightData, type FlightHandler } from "@blackice/flight-core";
import { callLogger, kCallId, kLogger, loggerOf } from "./call-logger";
import { REDACTED, redactHeaders } from "./redact-headers";
import { captureLogger, drain, expectFlightError, fromArray, makeCall } from "./test-calls";

const descriptor = { type: 1, path: ["a"], cmd: new Uint8Array() };

test("each call gets a child logger in its context and its end is logged with code and duration", async () => {
  const { logger, lines } = captureLogger("info");
  const handler: FlightHandler = async (call) => {
    loggerOf(call.context).info({ step: "lookup" }, "handler says hi");
    if (call.method === "getSchema") throw new FlightError(StatusCode.NOT_FOUND, "no flight a");
    return fromArray([{ body: new Uint8Array([1]) }]) as never;
  };
  const chain = composeMiddleware([callLogger({ logger })], handler);
  const call = makeCall("doAction", { type: "ping", body: new Uint8Array() }, { peer: "10.1.2.3:4444" });
  await drain((await chain(call)) as AsyncIterable<unknown>);
  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.NOT_FOUND);

  const callId = call.context.get(kCallId);
  expect(callId).toMatch(/^[0-9a-f-]{36}$/);
  expect(call.context.get(kLogger)).toBeDefined();
  expect(call.responseHeaders.get("x-request-id")).toBe(callId);

  const [hi, end, , failed] = lines();
  expect(hi).toMatchObject({ msg: "handler says hi", step: "lookup", callId, method: "doAction", peer: "10.1.2.3:4444" });
  expect(end).toMatchObject({ msg: "call finished", level: 30, code: "OK", callId, method: "doAction" });
  expect(typeof end.durationMs).toBe("number");
  expect(failed).toMatchObject({ msg: "call finished", level: 30, code: "NOT_FOUND", error: "no flight a", method: "getSchema" });
});

test("server faults log at error, overload at warn; abandoned streams say so", async () => {
  const { logger, lines } = captureLogger("info");
  const handler: FlightHandler = async (call) => {
    if (call.method === "getSchema") throw new FlightError(StatusCode.UNAVAILABLE, "store breaker open");
    if (call.method === "getFlightInfo") throw new Error("kaboom");
    return fromArray([{ body: new Uint8Array([1]) }, { body: new Uint8Array([2]) }]) as never;
  };
  const chain = composeMiddleware([callLogger({ logger })], handler);
  await expectFlightError(() => chain(makeCall("getSchema", descriptor)), StatusCode.UNAVAILABLE);
  await expect(chain(makeCall("getFlightInfo", descriptor))).rejects.toThrow("kaboom");
  const stream = (await chain(makeCall("doAction", { type: "x", body: new Uint8Array() }))) as AsyncIterable<unknown>;
  for await (const r of stream) {
    void r;
    break;
  }
  const [unavailable, internal, abandoned] = lines();
  expect(unavailable).toMatchObject({ level: 40, code: "UNAVAILABLE" });
  expect(internal).toMatchObject({ level: 50, code: "INTERNAL", error: "Error" }); // the name, never a foreign message
  expect(abandoned).toMatchObject({ level: 30, code: "CANCELLED", abandoned: true });
});

test("a valid client request id is reused; an invalid one is replaced", async () => {
  const chain = composeMiddleware([callLogger()], async () => fromArray([]) as never);
  const good = makeCall("listActions", {}, { headers: new Map([["x-request-id", ["req-42.a"]]]) });
  await chain(good);
  expect(good.context.get(kCallId)).toBe("req-42.a");
  const bad = makeCall("listActions", {}, { headers: new Map([["x-request-id", ["<script>\n"]]]) });
  await chain(bad);
  expect(bad.context.get(kCallId)).not.toContain("<");
  expect(bad.responseHeaders.get("x-request-id")).toBe(bad.context.get(kCallId));
});

test("never logs credentials, signatures, tokens or payload bytes", async () => {
  const { logger, text, lines } = captureLogger("trace");
  const secrets = {
    authorization: "Bearer s3cr3t-bearer-token",
    "x-blackice-signature": "sig-0123456789abcdef",
    "x-api-key": "key-abcdef",
    cookie: "session=cookie-value-xyz",
    "x-custom": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
    "x-opaque": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=",
  };
  const headers = new Map<string, Array<string | Uint8Array>>(Object.entries(secrets).map(([k, v]) => [k, [v]]));
  headers.set("x-trace-bin", [Buffer.from("binary-secret-bytes")]);
  headers.set("user-agent", ["grpc-python/1.66"]);
  const payload = Buffer.from("PAYLOAD-BYTES-NEVER-LOGGED");
  const handler: FlightHandler = async (call) => {
    if (call.method !== "doPut") throw new Error("unexpected");
    for await (const m of call.request) void m;
    // A foreign error whose message quotes a credential.
    throw new Error(`upstream rejected token ${secrets.authorization}`);
  };
  const chain = composeMiddleware([callLogger({ logger, logHeaders: true })], handler);
  const data: FlightData = { flightDescriptor: descriptor, dataHeader: payload, dataBody: payload, appMetadata: payload };
  await expect(chain(makeCall("doPut", fromArray([data]), { headers }))).rejects.toThrow();

  const out = text();
  for (const secret of [...Object.values(secrets), "s3cr3t", "binary-secret-bytes", "PAYLOAD-BYTES", "cookie-value"]) {
    expect(out).not.toContain(secret);
  }
  // What is logged instead: the header names, redaction markers, the harmless values, sizes of binary values.
  const started = lines().find((l) => l.msg === "call started") as { headers: Record<string, string> };
  expect(started.headers.authorization).toBe(REDACTED);
  expect(started.headers["x-custom"]).toBe(REDACTED);
  expect(started.headers["x-opaque"]).toBe(REDACTED);
  expect(started.headers["x-trace-bin"]).toBe("[19 bytes]");
  expect(started.headers["user-agent"]).toBe("grpc-python/1.66");
  expect(lines().find((l) => l.msg === "call finished")).toMatchObject({ code: "INTERNAL", error: "Error" });
});

test("headers are not logged at all unless asked", async () => {
  const { logger, text } = captureLogger("trace");
  const chain = composeMiddleware([callLogger({ logger })], async () => fromArray([]) as never);
  await chain(makeCall("listActions", {}, { headers: new Map([["user-agent", ["ua-visible-only-with-logHeaders"]]]) }));
  expect(text()).toContain("call started");
  expect(text()).not.toContain("ua-visible-only-with-logHeaders");
});

test("redactHeaders cuts long values", () => {
  const long = "a b ".repeat(100);
  expect(redactHeaders(new Map([["x-note", [long]]]))["x-note"]).toHaveLength(201);
});

test("without callLogger, loggerOf gives a silent logger; options are validated", () => {
  const log = loggerOf(new CallContext());
  expect(log.level).toBe("silent");
  expect(() => log.info("nothing happens")).not.toThrow();
  expect(() => callLogger({ logger: {} as never })).toThrow(/callLogger: logger must be a pino Logger/);
  expect(() => callLogger({ requestIdHeader: "X-Bad Header" })).toThrow(/requestIdHeader must be a lower-case ASCII header name/);
  expect(() => callLogger({ logHeaders: "yes" as never })).toThrow(/logHeaders must be a boolean/);
});
