import * as arrow from "apache-arrow";
import * as grpc from "@grpc/grpc-js";
import { FlightError, StatusCode, defineAction, serverConfig, type FlightMiddleware } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import { SESSION_COOKIE, sessionOptions } from "../server/session-options";
import * as pb from "../gen/Flight";
import { FlightClient } from "./flight-client";
import { cmdDescriptor, pathDescriptor } from "./descriptors";
import { cookieMiddleware, parseSetCookie, type ClientCallStatus, type ClientMiddleware, type ReceivedMetadata } from "./client-middleware";

const text = (v: string | Uint8Array | undefined): string | undefined => (v === undefined ? undefined : typeof v === "string" ? v : Buffer.from(v).toString("utf8"));
const first = (md: ReceivedMetadata | undefined, name: string): string | undefined => text(md?.get(name)?.[0]);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function failure(p: Promise<unknown> | AsyncIterable<unknown>): Promise<FlightError> {
  try {
    if (Symbol.asyncIterator in (p as object)) await collect(p as AsyncIterable<unknown>);
    else await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FlightError);
    return err as FlightError;
  }
  throw new Error("expected the call to fail");
}

/** One call as a recording middleware saw it. */
interface Seen {
  method: string;
  path: string;
  headers?: ReceivedMetadata;
  status?: ClientCallStatus;
  /** Hooks in the order they ran. */
  hooks: string[];
}

/** A middleware that sends `x-mw: <name>` and records each call. */
function recorder(name: string, log: string[] = []): ClientMiddleware & { calls: Seen[] } {
  const calls: Seen[] = [];
  return {
    calls,
    startCall({ method, path }) {
      const seen: Seen = { method, path, hooks: [] };
      calls.push(seen);
      const note = (hook: string): void => {
        seen.hooks.push(hook);
        log.push(`${name}.${hook}`);
      };
      note("start");
      return {
        sendingHeaders() {
          note("send");
          return { "x-mw": name };
        },
        receivedHeaders(headers) {
          note("headers");
          seen.headers = headers;
        },
        callCompleted(status) {
          note("done");
          seen.status = status;
        },
      };
    },
  };
}

describe("parseSetCookie", () => {
  const now = Date.parse("2024-05-01T00:00:00Z");
  it("reads name=value and ignores the attributes it does not need", () => {
    expect(parseSetCookie("a=1; Path=/; HttpOnly; Secure", now)).toEqual({ name: "a", value: "1", expires: Infinity });
    expect(parseSetCookie(" token = x=y ", now)).toEqual({ name: "token", value: "x=y", expires: Infinity });
    expect(parseSetCookie("empty=", now)).toEqual({ name: "empty", value: "", expires: Infinity });
  });
  it("expires with Max-Age (which wins over Expires) or Expires", () => {
    expect(parseSetCookie("a=1; Max-Age=60", now)?.expires).toBe(now + 60_000);
    expect(parseSetCookie("a=1; max-age=0", now)?.expires).toBe(-Infinity);
    expect(parseSetCookie("a=1; Max-Age=-1", now)?.expires).toBe(-Infinity);
    expect(parseSetCookie("a=1; Expires=Wed, 01 May 2024 01:00:00 GMT; Max-Age=0", now)?.expires).toBe(-Infinity);
    expect(parseSetCookie("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", now)?.expires).toBe(0);
    expect(parseSetCookie("a=1; Expires=Wed, 01 May 2024 01:00:00 GMT", now)?.expires).toBe(now + 3_600_000);
    expect(parseSetCookie("a=1; Expires=someday; Max-Age=soon", now)?.expires).toBe(Infinity);
  });
  it("ignores values without a cookie", () => {
    expect(parseSetCookie("novalue", now)).toBeUndefined();
    expect(parseSetCookie("=1", now)).toBeUndefined();
    expect(parseSetCookie("", now)).toBeUndefined();
  });
});

describe("cookieMiddleware's jar", () => {
  const md = (...setCookie: string[]): ReceivedMetadata => new Map([["set-cookie", setCookie]]);
  it("keeps cookies from headers and trailers, sends them as one cookie header, deletes expired ones", () => {
    const jar = cookieMiddleware();
    const call = () => jar.startCall({ method: "doAction", path: "/x" })!;
    expect(call().sendingHeaders?.()).toBeUndefined();
    call().receivedHeaders?.(md("a=1", "b=2; Max-Age=3600"));
    call().callCompleted?.({ code: StatusCode.OK, details: "", trailers: md("c=3; Path=/") });
    expect(call().sendingHeaders?.()).toEqual({ cookie: "a=1; b=2; c=3" });
    call().receivedHeaders?.(md("a=10", "b=; Max-Age=0", `c=3; Expires=${new Date(Date.now() - 1000).toUTCString()}`));
    expect(jar.cookies()).toEqual(new Map([["a", "10"]]));
    call().receivedHeaders?.(md("gone=1; Max-Age=1"));
    jest.spyOn(Date, "now").mockReturnValue(Date.now() + 2_000);
    try {
      expect(call().sendingHeaders?.()).toEqual({ cookie: "a=10" });
    } finally {
      jest.restoreAllMocks();
    }
    jar.clear();
    expect(jar.cookies().size).toBe(0);
  });
  it("makes a new jar per call", () => {
    const a = cookieMiddleware();
    a.startCall({ method: "doAction", path: "/x" })!.receivedHeaders?.(md("a=1"));
    expect(cookieMiddleware().cookies().size).toBe(0);
  });
});

describe("FlightClient middleware against a server", () => {
  /** What the server saw: the x-mw headers and the cookie of each call. */
  const atServer: Array<{ method: string; mw: string[] }> = [];
  const echoHeaders: FlightMiddleware = (next) =>
    async function echoHeaders(call) {
      // HTTP/2 joins repeated headers with ", ".
      const mw = (call.headers.get("x-mw") ?? []).flatMap((v) => text(v)!.split(", "));
      atServer.push({ method: call.method, mw });
      if (call.method === "getFlightInfo" && call.request.path[0] === "fail-at-once") {
        // No response headers: a trailers-only answer, carrying these.
        throw new FlightError(StatusCode.PERMISSION_DENIED, "not you", { metadata: { "x-why": "trailers only", "set-cookie": "from-trailers=1" } });
      }
      call.responseHeaders.set("x-seen", mw.join(","));
      if (call.method === "getFlightInfo" && call.request.path[0] === "fail") {
        throw new FlightError(StatusCode.FAILED_PRECONDITION, "failing on purpose", { metadata: { "x-why": "after headers" } });
      }
      return next(call);
    };
  let server: FlightServer;
  let address: string;

  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      echoHeaders,
      ...sessionOptions(),
      defineAction("stream", "three results", async function* () {
        for (const s of ["a", "b", "c"]) yield { body: Buffer.from(s) };
      }),
      defineAction("slow", "waits until cancelled", async (_body, call) => {
        await new Promise((resolve) => call.signal.addEventListener("abort", resolve, { once: true }));
        return { body: new Uint8Array(0) };
      }),
    );
    await server.start();
    address = `grpc+tcp://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });
  beforeEach(() => (atServer.length = 0));

  it("runs the first middleware outermost: start/send in order, headers/completion in reverse; headers reach the server in order", async () => {
    const log: string[] = [];
    const a = recorder("a", log);
    const b = recorder("b", log);
    const client = new FlightClient(address, { middleware: [a, b], metadata: { "x-mw": "client" } });
    try {
      await client.doAction("ping", undefined, { metadata: { "x-mw": "call" } });
    } finally {
      client.close();
    }
    expect(log).toEqual(["a.start", "a.send", "b.start", "b.send", "b.headers", "a.headers", "b.done", "a.done"]);
    expect(atServer).toEqual([{ method: "doAction", mw: ["client", "call", "a", "b"] }]);
    expect(a.calls[0]).toMatchObject({ method: "doAction", path: "/arrow.flight.protocol.FlightService/DoAction" });
    expect(first(a.calls[0].headers, "x-seen")).toBe("client,call,a,b");
    expect(a.calls[0].status?.code).toBe(StatusCode.OK);
  });

  it("sees headers and the OK status of every kind of call", async () => {
    const mw = recorder("m");
    const client = new FlightClient(address, { middleware: [mw] });
    try {
      await client.putTable(pathDescriptor("mw", "t"), arrow.tableFromArrays({ x: Int32Array.from([1, 2, 3]) })); // bidi, client first
      const info = await client.getFlightInfo(pathDescriptor("mw", "t")); // unary
      expect((await client.getTable(info.endpoint[0])).numRows).toBe(3); // server streaming
      await collect(client.doActionStream("stream"));
      await client.listActions();
      await client.handshake([{ payload: Buffer.from("x") }]);
      await collect(client.doExchangeRaw(cmdDescriptor("echo"), [{ appMetadata: Buffer.from("hi") }]));
    } finally {
      client.close();
    }
    expect(mw.calls.map((c) => c.method)).toEqual(["doPut", "getFlightInfo", "doGet", "doAction", "listActions", "handshake", "doExchange"]);
    for (const c of mw.calls) {
      expect(c.status?.code).toBe(StatusCode.OK);
      expect(first(c.headers, "x-seen")).toBe("m");
      expect(c.hooks).toEqual(["start", "send", "headers", "done"]);
    }
  });

  it("sees the headers and the status of a failed call (unary and streaming), with its trailers", async () => {
    const mw = recorder("m");
    const client = new FlightClient(address, { middleware: [mw] });
    try {
      const unary = await failure(client.getFlightInfo(pathDescriptor("fail")));
      expect(unary.code).toBe(StatusCode.FAILED_PRECONDITION);
      const streaming = await failure(client.doAction("no-such-action"));
      expect(mw.calls).toHaveLength(2);
      const [g, d] = mw.calls;
      expect(first(g.headers, "x-seen")).toBe("m");
      expect(g.status?.code).toBe(StatusCode.FAILED_PRECONDITION);
      expect(g.status?.details).toBe("failing on purpose");
      expect(first(g.status?.trailers, "x-why")).toBe("after headers");
      expect(first(d.headers, "x-seen")).toBe("m");
      expect(d.status?.code).toBe(streaming.code);
      expect(d.status?.code).not.toBe(StatusCode.OK);
    } finally {
      client.close();
    }
  });

  it("passes the trailers as the headers of a trailers-only answer", async () => {
    const mw = recorder("m");
    const jar = cookieMiddleware();
    const client = new FlightClient(address, { middleware: [jar, mw] });
    try {
      expect((await failure(client.getFlightInfo(pathDescriptor("fail-at-once")))).code).toBe(StatusCode.PERMISSION_DENIED);
    } finally {
      client.close();
    }
    expect(mw.calls[0].hooks).toEqual(["start", "send", "headers", "done"]);
    expect(first(mw.calls[0].headers, "x-why")).toBe("trailers only");
    expect(first(mw.calls[0].status?.trailers, "x-why")).toBe("trailers only");
    expect(jar.cookies().get("from-trailers")).toBe("1");
  });

  it("completes cancelled calls and calls stopped early with CANCELLED", async () => {
    const mw = recorder("m");
    const client = new FlightClient(address, { middleware: [mw] });
    try {
      const controller = new AbortController();
      const slow = client.doAction("slow", undefined, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      expect((await failure(slow)).code).toBe(StatusCode.CANCELLED);
      for await (const _ of client.doActionStream("stream")) break;
      await client.doAction("ping"); // still usable
    } finally {
      client.close();
    }
    expect(mw.calls.map((c) => [c.method, c.status?.code])).toEqual([
      ["doAction", StatusCode.CANCELLED],
      ["doAction", StatusCode.CANCELLED],
      ["doAction", StatusCode.OK],
    ]);
    for (const c of mw.calls) expect(c.hooks.filter((h) => h === "headers" || h === "done")).toEqual(["headers", "done"]);
  });

  it("keeps a session: options set in one call are read back in the next; a closed session is replaced", async () => {
    const jar = cookieMiddleware();
    const client = new FlightClient(address, { middleware: [jar] });
    const get = async (c: FlightClient) => {
      const [r] = await c.doAction("GetSessionOptions", pb.GetSessionOptionsRequest.encode({}).finish());
      return pb.GetSessionOptionsResult.decode(r.body).sessionOptions;
    };
    try {
      const [set] = await client.doAction(
        "SetSessionOptions",
        pb.SetSessionOptionsRequest.encode({ sessionOptions: { catalog: { stringValue: "main" }, limit: { int64Value: 10 } } }).finish(),
      );
      expect(pb.SetSessionOptionsResult.decode(set.body).errors).toEqual({});
      const id = jar.cookies().get(SESSION_COOKIE);
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(await get(client)).toEqual({ catalog: { stringValue: "main" }, limit: { int64Value: 10 } });
      expect(jar.cookies().get(SESSION_COOKIE)).toBe(id);

      // Without the cookie the server sees a new, empty session each time.
      const plain = new FlightClient(address);
      try {
        expect(await get(plain)).toEqual({});
      } finally {
        plain.close();
      }

      const [closed] = await client.doAction("CloseSession", pb.CloseSessionRequest.encode({}).finish());
      expect(pb.CloseSessionResult.decode(closed.body).status).toBe(pb.CloseSessionResult_Status.CLOSED);
      expect(await get(client)).toEqual({});
      const next = jar.cookies().get(SESSION_COOKIE);
      expect(next).toMatch(/^[0-9a-f]{32}$/);
      expect(next).not.toBe(id);
    } finally {
      client.close();
    }
  });

  it("deletes a cookie the server expires, and sends the live ones as one cookie header", async () => {
    const seen: string[] = [];
    const probe = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      createCookieProbe(seen),
      defineAction("set-cookie", "answers with the body as set-cookie", async (body, call) => {
        call.responseHeaders.set("set-cookie", Buffer.from(body).toString("utf8"));
        return { body: new Uint8Array(0) };
      }),
    );
    await probe.start();
    const jar = cookieMiddleware();
    // A middleware that stays out of every call does not disturb the others.
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${probe.port}`, { middleware: [jar, { startCall: () => undefined }] });
    try {
      await client.doAction("set-cookie", "a=1; Path=/");
      await client.doAction("set-cookie", "b=2; Max-Age=3600");
      await client.doAction("ping");
      await client.doAction("set-cookie", "a=; Max-Age=0");
      await client.doAction("ping");
      await client.doAction("set-cookie", `b=2; Expires=${new Date(Date.now() - 60_000).toUTCString()}`);
      await client.doAction("ping");
    } finally {
      client.close();
      await probe.shutdown({ graceMs: 100 });
    }
    expect(seen).toEqual(["", "a=1", "a=1; b=2", "a=1; b=2", "b=2", "b=2", ""]);
  });

  it("gives a call's response headers to onResponseHeaders, on success and on failure", async () => {
    const client = new FlightClient(address);
    try {
      const got: ReceivedMetadata[] = [];
      await client.doAction("ping", undefined, { onResponseHeaders: (h) => got.push(h), metadata: { "x-mw": "one" } });
      await failure(client.getFlightInfo(pathDescriptor("fail-at-once"), { onResponseHeaders: (h) => got.push(h) }));
      expect(got.map((h) => first(h, "x-seen") ?? first(h, "x-why"))).toEqual(["one", "trailers only"]);
      await expect(client.doAction("ping", undefined, { onResponseHeaders: 1 as never })).rejects.toThrow(/onResponseHeaders must be a function/);
    } finally {
      client.close();
    }
  });

  it("fails the call with INTERNAL when a hook throws; the other middleware still see it through", async () => {
    const log: string[] = [];
    const outer = recorder("outer", log);
    const throwing = (stage: "startCall" | "sendingHeaders" | "receivedHeaders" | "callCompleted"): ClientMiddleware => ({
      startCall() {
        if (stage === "startCall") throw new Error("no start");
        const boom = (): never => {
          throw new Error(`no ${stage}`);
        };
        return { [stage]: boom };
      },
    });
    for (const stage of ["startCall", "sendingHeaders", "receivedHeaders", "callCompleted"] as const) {
      log.length = 0;
      atServer.length = 0;
      const client = new FlightClient(address, { middleware: [outer, throwing(stage)] });
      try {
        const err = await failure(client.doAction("ping"));
        expect(err.code).toBe(StatusCode.INTERNAL);
        expect(err.message).toMatch(stage === "startCall" ? /client middleware failed to start the call: no start/ : new RegExp(`client middleware failed.*no ${stage}`));
        const reachedServer = stage === "receivedHeaders" || stage === "callCompleted";
        expect(atServer.length).toBe(reachedServer ? 1 : 0);
        expect(log).toEqual(["outer.start", "outer.send", "outer.headers", "outer.done"]);
        // What the outer middleware saw is what happened on the wire.
        expect(outer.calls.at(-1)?.status?.code).toBe(reachedServer ? StatusCode.OK : StatusCode.INTERNAL);
      } finally {
        client.close();
      }
    }
  });

  it("reaches no middleware for a call that fails before it starts", async () => {
    const mw = recorder("m");
    const client = new FlightClient(address, { middleware: [mw] });
    const aborted = new AbortController();
    aborted.abort();
    expect((await failure(client.doAction("ping", undefined, { signal: aborted.signal }))).code).toBe(StatusCode.CANCELLED);
    client.close();
    expect((await failure(client.doAction("ping"))).code).toBe(StatusCode.FAILED_PRECONDITION);
    expect(mw.calls).toHaveLength(0);
  });

  it("keeps grpc-js interceptors given in channelOptions", async () => {
    const intercepted: string[] = [];
    const interceptor: grpc.Interceptor = (options, nextCall) => {
      intercepted.push(String(options.method_definition.path));
      return new grpc.InterceptingCall(nextCall(options));
    };
    const mw = recorder("m");
    const client = new FlightClient(address, { middleware: [mw], channelOptions: { interceptors: [interceptor] } as grpc.ChannelOptions });
    try {
      await client.doAction("ping");
    } finally {
      client.close();
    }
    expect(intercepted).toEqual(["/arrow.flight.protocol.FlightService/DoAction"]);
    expect(mw.calls[0].status?.code).toBe(StatusCode.OK);
  });

  it("refuses a bad middleware option", () => {
    expect(() => new FlightClient(address, { middleware: {} as never })).toThrow(/middleware must be an array/);
    expect(() => new FlightClient(address, { middleware: [{}] as never })).toThrow(/middleware\[0\] must be a ClientMiddleware/);
    expect(() => new FlightClient(address, { middleware: [{ outgoing: () => ({}) }] as never })).toThrow(
      new TypeError("FlightClient: middleware[0] must be a ClientMiddleware (with startCall); got object"),
    );
    new FlightClient(address, { middleware: [] }).close();
  });

  it("sessionOptions and a call's options are checked up front, naming the option and its range", async () => {
    expect(() => sessionOptions({ maxSessions: 0 })).toThrow(new TypeError("sessionOptions: maxSessions must be an integer from 1 to 9007199254740991; got 0"));
    expect(() => sessionOptions({ idleTimeoutMs: 1.5 })).toThrow(/^sessionOptions: idleTimeoutMs must be an integer from 1 /);
    expect(() => sessionOptions({ validate: "x" as never })).toThrow('sessionOptions: validate must be a function; got "x"');
    const client = new FlightClient(address);
    try {
      await expect(client.doAction("ping", undefined, { signal: {} as never })).rejects.toThrow(
        new TypeError("FlightClient: options.signal must be an AbortSignal (with addEventListener, removeEventListener); got object"),
      );
      await expect(client.doAction("ping", undefined, { metadata: 5 as never })).rejects.toThrow("FlightClient: options.metadata must be an object of header values; got 5");
    } finally {
      client.close();
    }
  });
});

/** A server middleware that records the cookie header of every call. */
function createCookieProbe(out: string[]): FlightMiddleware {
  return (next) =>
    async function cookieProbe(call) {
      const cookies = call.headers.get("cookie") ?? [];
      out.push(cookies.map((c) => text(c)).join(" | "));
      return next(call);
    };
}
