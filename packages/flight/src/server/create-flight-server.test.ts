import * as grpc from "@grpc/grpc-js";
import { tableToIPC, tableFromArrays } from "apache-arrow";
import { FlightError, StatusCode, defineAction, serverConfig, splitIpcStream, type FlightMiddleware } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { bidi, rawClient, serverStream, unary, type RawClient } from "./test-raw-client";

const path = (...segments: string[]) => ({ type: 1, cmd: new Uint8Array(0), path: segments });

function ipcMessages(rows: number) {
  const table = tableFromArrays({ id: Int32Array.from({ length: rows }, (_, i) => i), v: Float64Array.from({ length: rows }, (_, i) => i / 2) });
  return splitIpcStream(tableToIPC(table, "stream"));
}

describe("createFlightServer", () => {
  const log: string[] = [];
  const tag =
    (name: string): FlightMiddleware =>
    (next) =>
      async function tagged(call) {
        log.push(`${name}>${call.method}`);
        const res = await next(call);
        log.push(`${name}<${call.method}`);
        return res;
      };
  let server: FlightServer;
  let client: RawClient;

  beforeAll(async () => {
    server = createFlightServer(
      tag("a"),
      serverConfig({ addr: "127.0.0.1:0" }),
      [tag("b"), tag("c")],
      defineAction("fail", "always fails", async () => {
        throw new FlightError(StatusCode.FAILED_PRECONDITION, "as designed");
      }),
    );
    await server.start();
    client = rawClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("runs middleware in the order given, the first outermost", async () => {
    log.length = 0;
    await serverStream(client, "listActions", {});
    expect(log).toEqual(["a>listActions", "b>listActions", "c>listActions", "c<listActions", "b<listActions", "a<listActions"]);
  });

  it("serves a unary call (GetFlightInfo) and maps a missing flight to NOT_FOUND", async () => {
    await expect(unary(client, "getFlightInfo", path("nope"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("serves client streaming (DoPut) then server streaming (DoGet) with the same bytes and metadata", async () => {
    const messages = ipcMessages(1000);
    const requests = messages.map((m, i) => ({
      flightDescriptor: i === 0 ? path("raw", "put") : undefined,
      dataHeader: m.header,
      dataBody: m.body,
      appMetadata: i === 0 ? new Uint8Array(0) : Buffer.from(`m${i}`),
    }));
    const acks = await bidi<{ appMetadata: Uint8Array }>(client, "doPut", requests);
    expect(acks.map((a) => Buffer.from(a.appMetadata).toString())).toEqual(requests.slice(1).map((_, i) => `m${i + 1}`));
    const info = await unary<{ totalRecords: number; endpoint: Array<{ ticket: { ticket: Uint8Array }; location: Array<{ uri: string }> }> }>(
      client,
      "getFlightInfo",
      path("raw", "put"),
    );
    expect(info.totalRecords).toBe(1000);
    expect(info.endpoint[0].location[0].uri).toBe(`grpc+tcp://127.0.0.1:${server.port}`);
    const got = await serverStream<{ dataHeader: Uint8Array; dataBody: Uint8Array; appMetadata: Uint8Array }>(client, "doGet", info.endpoint[0].ticket);
    expect(got).toHaveLength(messages.length);
    got.forEach((m, i) => {
      expect(Buffer.compare(m.dataHeader, messages[i].header)).toBe(0);
      expect(Buffer.compare(m.dataBody, messages[i].body)).toBe(0);
      expect(Buffer.from(m.appMetadata).toString()).toBe(i === 0 ? "" : `m${i}`);
    });
  });

  it("serves bidi streaming (DoExchange echo)", async () => {
    const messages = ipcMessages(10);
    const requests = messages.map((m, i) => ({ flightDescriptor: i === 0 ? path("echo") : undefined, dataHeader: m.header, dataBody: m.body, appMetadata: new Uint8Array(0) }));
    const echoed = await bidi<{ dataHeader: Uint8Array }>(client, "doExchange", requests);
    expect(echoed.map((m) => Buffer.from(m.dataHeader).toString("hex"))).toEqual(messages.map((m) => Buffer.from(m.header).toString("hex")));
  });

  it("gives a FlightError's code on the streaming path too", async () => {
    await expect(serverStream(client, "doAction", { type: "fail", body: new Uint8Array(0) })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: "as designed",
    });
  });

  it("refuses a record batch before the schema with INVALID_ARGUMENT and stores nothing", async () => {
    const messages = ipcMessages(5);
    const requests = [{ flightDescriptor: path("bad", "order"), dataHeader: messages[1].header, dataBody: messages[1].body, appMetadata: new Uint8Array(0) }];
    await expect(bidi(client, "doPut", requests)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(unary(client, "getFlightInfo", path("bad", "order"))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("turns an unexpected error into INTERNAL with a generic message, and reports it to onError", async () => {
    const seen: Array<[unknown, { method?: string }]> = [];
    const s = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0", onError: (err, ctx) => seen.push([err, ctx]) }),
      defineAction("boom", "a bug", async () => {
        throw new Error("secret internal detail");
      }),
    );
    await s.start();
    const c = rawClient(s.port);
    try {
      const err = await serverStream(c, "doAction", { type: "boom", body: new Uint8Array(0) }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.INTERNAL);
      expect(err?.details).toBe("internal error");
      expect(seen).toHaveLength(1);
      expect((seen[0][0] as Error).message).toBe("secret internal detail");
      expect(seen[0][1].method).toBe("doAction");
    } finally {
      c.close();
      await s.shutdown({ graceMs: 10 });
    }
  });

  it("refuses bad options when built, not on the first request", () => {
    expect(() => createFlightServer(serverConfig({ maxMessageBytes: 512 * 1024 * 1024 }))).toThrow(/maxMessageBytes/);
    expect(() => createFlightServer(serverConfig({ addr: "nope" }))).toThrow(/host:port/);
    expect(() => createFlightServer(42 as never)).toThrow(TypeError);
  });

  it("rejects start() clearly when the port is taken", async () => {
    const other = createFlightServer(serverConfig({ addr: `127.0.0.1:${server.port}` }));
    await expect(other.start()).rejects.toThrow(/cannot listen on 127\.0\.0\.1/);
    await other.shutdown({ graceMs: 0 });
  });
});
