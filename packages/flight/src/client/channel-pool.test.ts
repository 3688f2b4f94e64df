import * as net from "node:net";
import * as arrow from "apache-arrow";
import { FlightError, StatusCode, serverConfig, type FlightInfo, type FlightMiddleware } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import { ChannelPool, channelPoolOptions } from "./channel-pool";
import { FlightClient } from "./flight-client";

describe("ChannelPool", () => {
  class FakeChannel {
    closed = false;
    constructor(readonly location: string) {}
    close(): void {
      this.closed = true;
    }
  }
  const own = new FakeChannel("grpc+tcp://own:1");
  const made: FakeChannel[] = [];
  const pool = (options?: Parameters<typeof channelPoolOptions>[0]) =>
    new ChannelPool<FakeChannel>((l) => (made.push(new FakeChannel(l)), made[made.length - 1]!), { location: own.location, channel: own }, options);

  beforeEach(() => (made.length = 0));

  it("opens one channel per location and shares it; grpc:// and grpc+tcp:// are one location", async () => {
    const p = pool();
    const a = await p.acquire("grpc+tcp://h:1");
    const b = await p.acquire("grpc://h:1");
    const c = await p.acquire("h:2");
    expect(a.channel).toBe(b.channel);
    expect(c.channel).not.toBe(a.channel);
    expect((await p.acquire("own:1")).channel).toBe(own);
    expect(p.stats().opened).toBe(2);
    p.close();
    expect(made.every((m) => m.closed)).toBe(true);
    expect(own.closed).toBe(false);
  });

  it("holds calls beyond maxCallsPerLocation until a slot is released, first come first served", async () => {
    const p = pool({ maxCallsPerLocation: 2 });
    const first = await p.acquire("h:1");
    await p.acquire("h:1");
    const order: number[] = [];
    const third = p.acquire("h:1").then((l) => (order.push(3), l));
    const fourth = p.acquire("h:1").then((l) => (order.push(4), l));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    expect(p.stats().channels.find((c) => c.location === "h:1")).toMatchObject({ active: 2, waiting: 2 });
    first.release();
    first.release(); // idempotent: frees one slot, not two
    await third;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([3]);
    (await third).release();
    await fourth;
    expect(order).toEqual([3, 4]);
    p.close();
  });

  it("closes a channel idle for idleTimeoutMs, and idle ones beyond maxIdleChannels at once", async () => {
    const p = pool({ idleTimeoutMs: 30, maxIdleChannels: 1 });
    const a = await p.acquire("h:1");
    const b = await p.acquire("h:2");
    a.release();
    b.release(); // two idle, one allowed: h:1, the least recently used, goes now
    expect(made.map((m) => m.closed)).toEqual([true, false]);
    await new Promise((r) => setTimeout(r, 80));
    expect(made.map((m) => m.closed)).toEqual([true, true]);
    expect(p.stats().channels.map((c) => c.location)).toEqual([own.location]);
    // A location used again gets a new channel.
    (await p.acquire("h:1")).release();
    expect(p.stats().opened).toBe(3);
    p.close();
  });

  it("validates its options and locations up front", async () => {
    expect(() => channelPoolOptions({ maxCallsPerLocation: 0 })).toThrow(/^FlightClient: pool.maxCallsPerLocation must be an integer from 1 to 1000000; got 0$/);
    expect(() => channelPoolOptions({ idleTimeoutMs: 1.5 })).toThrow(TypeError);
    expect(() => channelPoolOptions({ maxIdle: 3 } as never)).toThrow('FlightClient: unknown option "pool.maxIdle"; known options: maxCallsPerLocation, idleTimeoutMs, maxIdleChannels');
    expect(() => new FlightClient("127.0.0.1:1", { pool: { maxIdleChannels: -1 } })).toThrow(/maxIdleChannels/);
    await expect(pool().acquire("ftp://h:1")).rejects.toThrow(TypeError);
  });
});

describe("FlightClient reading a FlightInfo across locations", () => {
  const servers: FlightServer[] = [];
  const clients: FlightClient[] = [];
  /** The most DoGets at once each server saw. */
  const concurrency = new Map<string, { now: number; most: number }>();

  const table = (from: number) => arrow.tableFromArrays({ id: Int32Array.from({ length: 1000 }, (_, i) => from + i) });
  const ids = (t: arrow.Table) => Array.from(t.getChild("id")!.toArray() as Int32Array);

  async function server(name: string): Promise<{ server: FlightServer; uri: string }> {
    const counter = { now: 0, most: 0 };
    concurrency.set(name, counter);
    const count: FlightMiddleware = (next) => async (call) => {
      const res = await next(call);
      if (call.method !== "doGet") return res;
      return (async function* () {
        counter.now++;
        counter.most = Math.max(counter.most, counter.now);
        try {
          for await (const m of res as AsyncIterable<unknown>) {
            await new Promise((r) => setTimeout(r, 5));
            yield m;
          }
        } finally {
          counter.now--;
        }
      })() as never;
    };
    const s = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), count);
    await s.start();
    servers.push(s);
    return { server: s, uri: `grpc+tcp://127.0.0.1:${s.port}` };
  }

  function client(uri: string, options?: ConstructorParameters<typeof FlightClient>[1]): FlightClient {
    const c = new FlightClient(uri, options);
    clients.push(c);
    return c;
  }

  /** A port nothing listens on. */
  async function deadUri(): Promise<string> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    return `grpc+tcp://127.0.0.1:${port}`;
  }

  const withLocations = (info: FlightInfo, ...uris: string[]): FlightInfo => ({
    ...info,
    endpoint: [{ ...info.endpoint[0]!, location: uris.map((uri) => ({ uri })) }],
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const s of servers.splice(0)) await s.shutdown({ graceMs: 0 });
  });

  it("reads an endpoint from the first location that answers, failing over past a dead one and one without the flight", async () => {
    const a = await server("a");
    const b = await server("b");
    const c = client(a.uri);
    await c.putTable({ path: ["t"] }, table(0));
    await client(b.uri).putTable({ path: ["t"] }, table(0));
    await client(b.uri).putTable({ path: ["only-b"] }, table(5000));
    const info = await c.getFlightInfo({ path: ["t"] });

    // Its own location: read on its own channel, nothing opened.
    expect(ids(await c.getTable(withLocations(info, a.uri, b.uri)))).toEqual(ids(table(0)));
    expect(c.poolStats().opened).toBe(0);
    // A dead location first: the next one serves.
    expect(ids(await c.getTable(withLocations(info, await deadUri(), b.uri)))).toEqual(ids(table(0)));
    // A holds no "only-b": NOT_FOUND there, B serves.
    const onlyB = await client(b.uri).getFlightInfo({ path: ["only-b"] });
    expect(ids(await c.getTable(withLocations(onlyB, a.uri, b.uri)))).toEqual(ids(table(5000)));
    // The pooled channel to B was opened once and reused.
    expect(c.poolStats().channels.map((x) => x.location).sort()).toEqual(expect.arrayContaining([a.uri, b.uri]));
  });

  it("keeps reading through the replica when the server it was made for dies", async () => {
    const a = await server("a");
    const b = await server("b");
    const c = client(a.uri);
    await c.putTable({ path: ["t"] }, table(0));
    await client(b.uri).putTable({ path: ["t"] }, table(0));
    const info = withLocations(await c.getFlightInfo({ path: ["t"] }), a.uri, b.uri);
    await servers.shift()!.shutdown({ graceMs: 0 });
    expect(ids(await c.getTable(info))).toEqual(ids(table(0)));
    let messages = 0;
    for await (const _ of c.doGetRaw(info)) messages++;
    expect(messages).toBe(2); // schema + one batch
  });

  it("reads every endpoint in order, each from its own location", async () => {
    const a = await server("a");
    const b = await server("b");
    const c = client(a.uri);
    await c.putTable({ path: ["part1"] }, table(0));
    await client(b.uri).putTable({ path: ["part2"] }, table(1000));
    const e1 = (await c.getFlightInfo({ path: ["part1"] })).endpoint[0]!;
    const e2 = (await client(b.uri).getFlightInfo({ path: ["part2"] })).endpoint[0]!;
    const info: FlightInfo = { ...(await c.getFlightInfo({ path: ["part1"] })), endpoint: [e1, { ...e2, location: [{ uri: b.uri }] }] };
    const got = await c.getTable(info);
    expect(ids(got)).toEqual([...ids(table(0)), ...ids(table(1000))]);
    let batches = 0;
    for await (const batch of c.doGet(info)) batches += batch.numRows > 0 ? 1 : 0;
    expect(batches).toBe(2);
  });

  it("names every location tried when none can serve an endpoint", async () => {
    const a = await server("a");
    const c = client(a.uri);
    await c.putTable({ path: ["t"] }, table(0));
    const [d1, d2] = [await deadUri(), await deadUri()];
    const err = await c.getTable(withLocations(await c.getFlightInfo({ path: ["t"] }), d1, d2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlightError);
    expect((err as FlightError).code).toBe(StatusCode.UNAVAILABLE);
    expect((err as FlightError).message).toContain("endpoint 1 of 1: no location could serve it");
    expect((err as FlightError).message).toContain(d1);
    expect((err as FlightError).message).toContain(d2);
  });

  it("does not fail over on other errors: a bad ticket is INVALID_ARGUMENT at once", async () => {
    const a = await server("a");
    const b = await server("b");
    const c = client(a.uri);
    await c.putTable({ path: ["t"] }, table(0));
    const info = await c.getFlightInfo({ path: ["t"] });
    const bad: FlightInfo = { ...info, endpoint: [{ ...info.endpoint[0]!, ticket: { ticket: Buffer.from("\u0001bad") }, location: [{ uri: a.uri }, { uri: b.uri }] }] };
    const err = (await c.getTable(bad).catch((e: unknown) => e)) as FlightError;
    expect(err).toBeInstanceOf(FlightError);
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("runs at most maxCallsPerLocation reads at once per location", async () => {
    await server("a");
    const b = await server("b");
    const a = servers[0]!;
    const c = client(`grpc+tcp://127.0.0.1:${a.port}`, { pool: { maxCallsPerLocation: 1 } });
    const writer = client(b.uri);
    for (let i = 0; i < 3; i++) await writer.putTable({ path: [`f${i}`] }, arrow.tableFromArrays({ id: Int32Array.from({ length: 10 }, (_, k) => k) }));
    const infos = await Promise.all([0, 1, 2].map(async (i) => withLocations(await writer.getFlightInfo({ path: [`f${i}`] }), b.uri)));
    const tables = await Promise.all(infos.map((info) => c.getTable(info)));
    expect(tables.map((t) => t.numRows)).toEqual([10, 10, 10]);
    expect(concurrency.get("b")!.most).toBe(1);
    // Without the limit the same reads overlap.
    const free = client(`grpc+tcp://127.0.0.1:${a.port}`);
    concurrency.get("b")!.most = 0;
    await Promise.all(infos.map((info) => free.getTable(info)));
    expect(concurrency.get("b")!.most).toBeGreaterThan(1);
  });
});
