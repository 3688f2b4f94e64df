import { CallContext, FlightError, StatusCode, encodeQueryTicket, type FlightData, type FlightDescriptor, type FlightInfo } from "@blackice/flight-core";
import { authorize, type AccessRequest } from "./authorize";
import { kIdentity, type Identity } from "./identity-of";
import { pathPrefixPolicy } from "./path-prefix-policy";
import { collect, compose, fakeTerminal, flightInfo, fromArray, makeCall } from "./test-call";

const pathD = (...path: string[]): FlightDescriptor => ({ type: 1, cmd: new Uint8Array(0), path });
const cmdD = (text: string): FlightDescriptor => ({ type: 2, cmd: Buffer.from(text), path: [] });
const as = (subject: string | undefined) => (subject === undefined ? new CallContext() : new CallContext().set(kIdentity, { subject, method: "basic" } as Identity));
const data = (d?: FlightDescriptor): FlightData => ({ flightDescriptor: d, dataHeader: Buffer.from("h"), dataBody: new Uint8Array(0), appMetadata: new Uint8Array(0) });
const action = (type: string, body: string | Uint8Array) => ({ type, body: typeof body === "string" ? Buffer.from(body) : body });

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    const r = await p;
    if (r && typeof r === "object" && Symbol.asyncIterator in r) await collect(r as AsyncIterable<unknown>);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(FlightError);
    return (e as FlightError).code;
  }
}

describe("authorize: what the policy is asked", () => {
  const asked: AccessRequest[] = [];
  const terminal = fakeTerminal();
  const handler = compose(
    authorize((r) => {
      asked.push(r);
      return true;
    }),
    terminal.handler,
  );
  beforeEach(() => (asked.length = 0));
  const last = () => ({ op: asked.at(-1)!.operation, d: asked.at(-1)!.descriptor, type: asked.at(-1)!.actionType });

  it("asks about the flight a query reads, for query descriptors and query tickets", async () => {
    const ctx = as("alice");
    const q = cmdD('{"flight":["secret","t"],"columns":["a"]}');
    for (const method of ["getFlightInfo", "pollFlightInfo", "getSchema"] as const) {
      await handler(makeCall(method, q, { context: ctx }));
      expect(last()).toMatchObject({ op: "read", d: pathD("secret", "t") });
    }
    const ticket = encodeQueryTicket({ ticket: Buffer.from("p:secret/t"), columns: ["a"] });
    await handler(makeCall("doGet", { ticket }, { context: ctx }));
    expect(last()).toMatchObject({ op: "read", d: { type: 1, path: ["secret", "t"] } });
    // Malformed queries name no flight, which a policy refuses.
    await handler(makeCall("getFlightInfo", cmdD('{"flight":"secret"}'), { context: ctx }));
    expect(last().d).toBeUndefined();
    await handler(makeCall("doGet", { ticket: Buffer.from('blackice.query.v1:{"ticket":"!"}') }, { context: ctx }));
    expect(last().d).toBeUndefined();
  });

  it("maps each method to an operation and a descriptor", async () => {
    const ctx = as("alice");
    await handler(makeCall("getFlightInfo", pathD("a", "b"), { context: ctx }));
    expect(last()).toMatchObject({ op: "read", d: pathD("a", "b") });
    await handler(makeCall("pollFlightInfo", pathD("p"), { context: ctx }));
    expect(last()).toMatchObject({ op: "read", d: pathD("p") });
    await handler(makeCall("getSchema", pathD("s"), { context: ctx }));
    expect(last().op).toBe("read");
    await handler(makeCall("doGet", { ticket: Buffer.from("p:telemetry/host%201") }, { context: ctx }));
    expect(last()).toMatchObject({ op: "read", d: { type: 1, path: ["telemetry", "host 1"] } });
    await handler(makeCall("doGet", { ticket: Buffer.from("\u0001garbage") }, { context: ctx }));
    expect(last().d).toBeUndefined();
    await handler(makeCall("doPut", fromArray([data(pathD("w"))]), { context: ctx }));
    expect(last()).toMatchObject({ op: "write", d: pathD("w") });
    await handler(makeCall("doExchange", fromArray([data(cmdD("echo"))]), { context: ctx }));
    expect(last()).toMatchObject({ op: "exchange", d: cmdD("echo") });
    await handler(makeCall("listActions", {}, { context: ctx }));
    expect(last().op).toBe("meta");
    await handler(makeCall("doAction", action("ping", ""), { context: ctx }));
    expect(last()).toMatchObject({ op: "action", d: undefined, type: "ping" });
    await handler(makeCall("doAction", action("merkle-proof", '{"path":["m"],"index":0}'), { context: ctx }));
    expect(last()).toMatchObject({ op: "read", d: pathD("m"), type: "merkle-proof" });
    expect(asked.every((r) => r.identity?.subject === "alice")).toBe(true);
  });

  it("asks about every flight a delete names, as a write and as a delete: path, cmd, ticket, raw ticket, batch", async () => {
    const ctx = as("alice");
    await handler(makeCall("doAction", action("delete", '{"path":["x","y"]}'), { context: ctx }));
    await handler(makeCall("doAction", action("delete", `{"cmd":"${Buffer.from("Q").toString("base64")}"}`), { context: ctx }));
    await handler(makeCall("doAction", action("delete", '{"ticket":"p:t"}'), { context: ctx }));
    await handler(makeCall("doAction", action("delete", "p:raw"), { context: ctx }));
    await handler(makeCall("doAction", action("delete", '{"flights":[{"path":["a"]},{"path":["b"]}]}'), { context: ctx }));
    expect(asked.map((r) => [r.operation, r.descriptor?.path.join("/") || Buffer.from(r.descriptor?.cmd ?? []).toString(), r.actionType])).toEqual(
      ["x/y", "Q", "t", "raw", "a", "b"].flatMap((f) => [
        ["write", f, "delete"],
        ["delete", f, "delete"],
      ]),
    );
  });

  it("reads the ticket inside a RenewFlightEndpoint request", async () => {
    const ticket = Buffer.from("p:renew/me");
    const t = Buffer.concat([Buffer.of(0x0a, ticket.length), ticket]);
    const endpoint = Buffer.concat([Buffer.of(0x0a, t.length), t]);
    const body = Buffer.concat([Buffer.of(0x0a, endpoint.length), endpoint]);
    await handler(makeCall("doAction", action("RenewFlightEndpoint", body), { context: as("a") }));
    expect(last()).toMatchObject({ op: "write", d: pathD("renew", "me") });
  });

  it("uses a custom resolveTicket", async () => {
    const h = compose(
      authorize((r) => (asked.push(r), true), { resolveTicket: (t) => (Buffer.from(t).toString() === "T1" ? pathD("custom") : undefined) }),
      fakeTerminal().handler,
    );
    await h(makeCall("doGet", { ticket: Buffer.from("T1") }, { context: as("a") }));
    expect(last().d).toEqual(pathD("custom"));
  });
});

describe("authorize with pathPrefixPolicy", () => {
  const policy = pathPrefixPolicy(
    {
      alice: ["telemetry", "reports/alice"],
      sensor: { write: ["telemetry/site-a"] },
      janitor: { delete: ["telemetry"] },
      owner: { write: ["telemetry/site-a"], delete: ["telemetry"] },
      admin: ["*"],
    },
    { actions: ["ping"] },
  );

  function run(subject: string | undefined) {
    const terminal = fakeTerminal({ listed: [flightInfo(["telemetry", "cpu"]), flightInfo(["secret", "x"]), flightInfo(["reports", "alice", "q1"]), flightInfo(["telemetry2"])] });
    return { handler: compose(authorize(policy), terminal.handler), state: terminal.state, context: as(subject) };
  }

  it("allows reads under a granted prefix, segment by segment", async () => {
    const t = run("alice");
    expect(await codeOf(t.handler(makeCall("getFlightInfo", pathD("telemetry", "cpu"), { context: t.context })))).toBeUndefined();
    expect(await codeOf(t.handler(makeCall("doGet", { ticket: Buffer.from("p:reports/alice/q1") }, { context: t.context })))).toBeUndefined();
    expect(t.state.handlerExecuted).toBe(true);
  });

  it("refuses reads outside (PERMISSION_DENIED) without running the handler, including a look-alike prefix and a CMD", async () => {
    const t = run("alice");
    for (const d of [pathD("secret", "x"), pathD("telemetry2"), pathD("reports", "bob"), cmdD("SELECT 1")]) {
      expect(await codeOf(t.handler(makeCall("getFlightInfo", d, { context: t.context })))).toBe(StatusCode.PERMISSION_DENIED);
    }
    expect(await codeOf(t.handler(makeCall("doGet", { ticket: Buffer.from("p:secret/x") }, { context: t.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(t.state.handlerExecuted).toBe(false);
  });

  it("filters ListFlights to the allowed flights", async () => {
    const t = run("alice");
    const out = (await collect((await t.handler(makeCall("listFlights", { expression: new Uint8Array(0) }, { context: t.context }))) as AsyncIterable<FlightInfo>)).map((i) =>
      i.flightDescriptor!.path.join("/"),
    );
    expect(out).toEqual(["telemetry/cpu", "reports/alice/q1"]);
    const none = run("nobody-granted");
    expect(await collect((await none.handler(makeCall("listFlights", { expression: new Uint8Array(0) }, { context: none.context }))) as AsyncIterable<FlightInfo>)).toEqual([]);
  });

  it("separates write from read: the sensor may put under its prefix but not read or overwrite elsewhere", async () => {
    const t = run("sensor");
    expect(await codeOf(t.handler(makeCall("doPut", fromArray([data(pathD("telemetry", "site-a", "cpu")), data()]), { context: t.context })))).toBeUndefined();
    expect(t.state.received).toHaveLength(2);
    const denied = run("sensor");
    let pulled = 0;
    const stream = (async function* () {
      for (const m of [data(pathD("telemetry", "site-b")), data(), data()]) {
        pulled++;
        yield m;
      }
    })();
    expect(await codeOf(denied.handler(makeCall("doPut", stream, { context: denied.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(pulled).toBe(1);
    expect(denied.state.handlerExecuted).toBe(false);
    expect(await codeOf(denied.handler(makeCall("getFlightInfo", pathD("telemetry", "site-a"), { context: denied.context })))).toBe(StatusCode.PERMISSION_DENIED);
  });

  it("delete: every named flight must be granted", async () => {
    const t = run("alice");
    expect(await codeOf(t.handler(makeCall("doAction", action("delete", '{"path":["telemetry","old"]}'), { context: t.context })))).toBeUndefined();
    t.state.handlerExecuted = false;
    expect(await codeOf(t.handler(makeCall("doAction", action("delete", '{"flights":[{"path":["telemetry","a"]},{"path":["secret"]}]}'), { context: t.context })))).toBe(
      StatusCode.PERMISSION_DENIED,
    );
    expect(await codeOf(t.handler(makeCall("doAction", action("delete", "not json {"), { context: t.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(t.state.handlerExecuted).toBe(false);
  });

  it("delete is a write: a policy must grant both for the flight, or nothing is deleted", async () => {
    const deleteOf = (path: string[]) => action("delete", JSON.stringify({ path }));
    // A delete grant without the matching write grant no longer deletes.
    const janitor = run("janitor");
    expect(await codeOf(janitor.handler(makeCall("doAction", deleteOf(["telemetry", "old"]), { context: janitor.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(janitor.state.handlerExecuted).toBe(false);
    // A write grant alone does not delete either.
    const sensor = run("sensor");
    expect(await codeOf(sensor.handler(makeCall("doAction", deleteOf(["telemetry", "site-a", "cpu"]), { context: sensor.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(sensor.state.handlerExecuted).toBe(false);
    // Both: allowed where both cover the flight, refused where only delete does.
    const owner = run("owner");
    expect(await codeOf(owner.handler(makeCall("doAction", deleteOf(["telemetry", "site-b"]), { context: owner.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(owner.state.handlerExecuted).toBe(false);
    expect(await codeOf(owner.handler(makeCall("doAction", deleteOf(["telemetry", "site-a", "cpu"]), { context: owner.context })))).toBeUndefined();
    expect(owner.state.handlerExecuted).toBe(true);
  });

  it("delete is a write for any policy: one that allows delete but refuses write stops the handler", async () => {
    const terminal = fakeTerminal();
    const h = compose(
      authorize((r) => r.operation !== "write"),
      terminal.handler,
    );
    expect(await codeOf(h(makeCall("doAction", action("delete", '{"path":["x"]}'), { context: as("alice") })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(terminal.state.handlerExecuted).toBe(false);
  });

  it("actions: only the listed ones; ListActions for any granted subject; admin's * covers CMD", async () => {
    const t = run("alice");
    expect(await codeOf(t.handler(makeCall("doAction", action("ping", ""), { context: t.context })))).toBeUndefined();
    expect(await codeOf(t.handler(makeCall("doAction", action("gc", ""), { context: t.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(await codeOf(t.handler(makeCall("listActions", {}, { context: t.context })))).toBeUndefined();
    const admin = run("admin");
    expect(await codeOf(admin.handler(makeCall("getFlightInfo", cmdD("SELECT 1"), { context: admin.context })))).toBeUndefined();
  });

  it("a call with no identity is UNAUTHENTICATED, an unknown subject PERMISSION_DENIED", async () => {
    const anon = run(undefined);
    expect(await codeOf(anon.handler(makeCall("getFlightInfo", pathD("telemetry"), { context: anon.context })))).toBe(StatusCode.UNAUTHENTICATED);
    const stranger = run("mallory");
    expect(await codeOf(stranger.handler(makeCall("listActions", {}, { context: stranger.context })))).toBe(StatusCode.PERMISSION_DENIED);
    expect(anon.state.handlerExecuted || stranger.state.handlerExecuted).toBe(false);
  });

  it("checks its grants at build time", () => {
    expect(() => pathPrefixPolicy({ a: [""] })).toThrow(/use "\*"/);
    expect(() => pathPrefixPolicy({ a: "telemetry" as never })).toThrow(TypeError);
    expect(() => pathPrefixPolicy({ a: { raed: ["x"] } as never })).toThrow('pathPrefixPolicy: unknown option "grants.a.raed"; known options: read, write, delete');
    expect(() => pathPrefixPolicy({ a: [1 as never] })).toThrow(TypeError);
    expect(() => authorize("allow-all" as never)).toThrow(TypeError);
    expect(() => authorize(() => true, { resolveTicket: 1 as never })).toThrow(TypeError);
  });
});
