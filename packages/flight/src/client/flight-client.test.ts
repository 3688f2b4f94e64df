import * as arrow from "apache-arrow";
import {
  DescriptorType,
  FlightError,
  MessageKind,
  StatusCode,
  defineAction,
  readMessageHeader,
  serverConfig,
  splitIpcStream,
  type FlightData,
  type FlightMiddleware,
  type SignableCall,
  type TlsSetting, contiguous } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import * as pb from "../gen/Flight";
import { FlightClient } from "./flight-client";
import { cmdDescriptor, pathDescriptor } from "./descriptors";
import { decodeRecordBatches, encodeTable, readArrowSchema } from "./arrow-interop";
import { selfSignedCert } from "./test-tls";

type ArrowModule = typeof arrow;

/** Waits `ms`, or less if `signal` aborts (so that no timer outlives a cancelled call). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
const text = (u: Uint8Array) => Buffer.from(u).toString("utf8");

/**
 * A table with ints, floats, utf8, a dictionary-encoded column whose dictionary grows from
 * batch to batch (so the stream carries delta dictionaries), timestamps with a time zone, a
 * struct holding a list, and a list; nulls everywhere. Built with the given copy of
 * apache-arrow, so that the same data can come from a foreign copy.
 */
function makeTable(A: ArrowModule, sizes: number[]): arrow.Table {
  const dictType = new A.Dictionary(new A.Utf8(), new A.Int32(), 7);
  const pointType = new A.Struct([
    new A.Field("x", new A.Float64(), true),
    new A.Field("tags", new A.List(new A.Field("item", new A.Utf8(), true)), true),
  ]);
  const scoresType = new A.List(new A.Field("item", new A.Int32(), true));
  const tsType = new A.TimestampMillisecond("Europe/Paris");
  const categories = A.makeBuilder({ type: dictType, nullValues: [null] });
  const batches: arrow.RecordBatch[] = [];
  let row = 0;
  sizes.forEach((n, b) => {
    const ids = Array.from({ length: n }, (_, i) => row + i);
    for (const i of ids) categories.append(i % 13 === 0 ? null : `cat-${i % (4 + 3 * b)}`);
    const columns: Record<string, arrow.Data> = {
      id: A.vectorFromArray(ids, new A.Int32()).data[0],
      big: A.vectorFromArray(ids.map((i) => BigInt(i) * 1_000_000_007n), new A.Int64()).data[0],
      f32: A.vectorFromArray(ids.map((i) => i / 4), new A.Float32()).data[0],
      f64: A.vectorFromArray(ids.map((i) => (i % 7 === 0 ? null : i * 1.5)), new A.Float64()).data[0],
      name: A.vectorFromArray(ids.map((i) => (i % 11 === 0 ? null : `name-${i}`)), new A.Utf8()).data[0],
      category: categories.flush(),
      ts: A.vectorFromArray(ids.map((i) => 1_700_000_000_000 + i * 1000), tsType).data[0],
      point: A.vectorFromArray(ids.map((i) => (i % 9 === 0 ? null : { x: i / 3, tags: i % 2 ? [`t${i}`, "u"] : [] })), pointType).data[0],
      scores: A.vectorFromArray(ids.map((i) => (i % 5 === 0 ? null : [i, i + 1, i + 2].slice(0, i % 4))), scoresType).data[0],
    };
    batches.push(new A.RecordBatch(columns));
    row += n;
  });
  return new A.Table(batches);
}

/** Rows as plain JSON (bigints as text), comparable across copies of apache-arrow. */
const rowsOf = (x: { toArray(): unknown[] }): unknown => JSON.parse(JSON.stringify(x.toArray(), (_k, v) => (typeof v === "bigint" ? `${v}n` : v)));
const fieldsOf = (s: { fields: Array<{ name: string; type: unknown; nullable: boolean }> }): string[] => s.fields.map((f) => `${f.name}: ${String(f.type)}${f.nullable ? "?" : ""}`);

/** Positions of the record batch messages among `messages`. */
const recordBatchIndexes = (messages: FlightData[]): number[] =>
  messages.flatMap((m, i) => (readMessageHeader(m.dataHeader, m.dataBody).kind === MessageKind.RECORD_BATCH ? [i] : []));

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

describe("FlightClient against a server", () => {
  const SIZES = [700, 1, 1300, 50];
  const seen: Array<{ method: string; headers: Map<string, unknown> }> = [];
  const recordHeaders: FlightMiddleware = (next) =>
    async function recordHeaders(call) {
      seen.push({ method: call.method, headers: new Map(call.headers) });
      if (call.method === "getFlightInfo" && call.request.path[0] === "slow") await sleep(5_000, call.signal);
      return next(call);
    };
  let server: FlightServer;
  let client: FlightClient;
  let table: arrow.Table;

  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      recordHeaders,
      defineAction("slow", "waits for a while", async (_body, call) => {
        await sleep(5_000, call.signal);
        return { body: Buffer.from("late") };
      }),
    );
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`, { metadata: { "x-client": "unit-test" } });
    table = makeTable(arrow, SIZES);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("puts a table in several batches and gets an ack per batch with its app_metadata", async () => {
    const sent = SIZES.map((_, i) => `batch-${i}`);
    const { acks } = await client.putTable(pathDescriptor("client-test", "main"), table, { appMetadata: (i) => Buffer.from(sent[i]) });
    expect(acks.map((a) => text(a.appMetadata))).toEqual(sent);
  });

  it("gives the FlightInfo: total records, a ticket and the server's location", async () => {
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    expect(info.totalRecords).toBe(SIZES.reduce((a, b) => a + b));
    expect(info.totalBytes).toBeGreaterThan(0);
    expect(info.flightDescriptor?.path).toEqual(["client-test", "main"]);
    expect(info.endpoint).toHaveLength(1);
    expect(info.endpoint[0].ticket?.ticket.length).toBeGreaterThan(0);
    expect(info.endpoint[0].location.map((l) => l.uri)).toEqual([`grpc+tcp://127.0.0.1:${server.port}`]);
    expect(fieldsOf(readArrowSchema(info.schema))).toEqual(fieldsOf(table.schema));
  });

  it("polls a stored flight: the info is final", async () => {
    const poll = await client.pollFlightInfo(pathDescriptor("client-test", "main"));
    expect(poll.info?.totalRecords).toBe(SIZES.reduce((a, b) => a + b));
    expect(poll.flightDescriptor).toBeUndefined();
  });

  it("gets the schema, time zone and dictionary included", async () => {
    const schema = readArrowSchema(await client.getSchema(pathDescriptor("client-test", "main")));
    expect(fieldsOf(schema)).toEqual(fieldsOf(table.schema));
    expect(String(schema.fields.find((f) => f.name === "ts")?.type)).toBe("Timestamp<MILLISECOND, Europe/Paris>");
    expect(arrow.DataType.isDictionary(schema.fields.find((f) => f.name === "category")?.type)).toBe(true);
  });

  it("reads the flight back batch by batch, with the same boundaries and values", async () => {
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    const batches = await collect(client.doGet(info.endpoint[0].ticket!));
    expect(batches.map((b) => b.numRows)).toEqual(SIZES);
    batches.forEach((b, i) => {
      expect(fieldsOf(b.schema)).toEqual(fieldsOf(table.schema));
      expect(rowsOf(b)).toEqual(rowsOf(table.batches[i]));
    });
  });

  it("reads the raw messages: schema, dictionaries (with deltas), batches carrying their app_metadata", async () => {
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    const messages = await collect(client.doGetRaw(info.endpoint[0].ticket!));
    // apache-arrow's own writer makes the same sequence of messages for the same table.
    expect(messages).toHaveLength(splitIpcStream(arrow.tableToIPC(table, "stream")).length);
    const kinds = messages.map((m) => readMessageHeader(m.dataHeader, m.dataBody));
    expect(kinds[0].kind).toBe(MessageKind.SCHEMA);
    expect(kinds.filter((k) => k.kind === MessageKind.RECORD_BATCH)).toHaveLength(SIZES.length);
    expect(kinds.some((k) => k.kind === MessageKind.DICTIONARY_BATCH && k.isDelta)).toBe(true);
    const metadata = messages.filter((_, i) => kinds[i].kind === MessageKind.RECORD_BATCH).map((m) => text(m.appMetadata));
    expect(metadata).toEqual(SIZES.map((_, i) => `batch-${i}`));
  });

  it("reads a whole Table by descriptor, by ticket and by endpoint", async () => {
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    for (const target of [pathDescriptor("client-test", "main"), info.endpoint[0].ticket!, info.endpoint[0]]) {
      const got = await client.getTable(target);
      expect(got.batches.map((b) => b.numRows)).toEqual(SIZES);
      expect(rowsOf(got)).toEqual(rowsOf(table));
    }
  });

  it("splits long batches with maxBatchRows", async () => {
    const { acks } = await client.putTable(pathDescriptor("client-test", "split"), table, { maxBatchRows: 500, appMetadata: (i) => `${i}` });
    const expected = SIZES.flatMap((n) => (n <= 500 ? [n] : Array.from({ length: Math.ceil(n / 500) }, (_, k) => Math.min(500, n - k * 500))));
    expect(acks.map((a) => text(a.appMetadata))).toEqual(expected.map((_, i) => `${i}`));
    const got = await client.getTable(pathDescriptor("client-test", "split"));
    expect(got.batches.map((b) => b.numRows)).toEqual(expected);
    expect(rowsOf(got)).toEqual(rowsOf(table));
  });

  it("lists flights under a prefix", async () => {
    await client.putTable(pathDescriptor("client-test-other", "x"), makeTable(arrow, [3]));
    const byArray = await collect(client.listFlights(["client-test"]));
    expect(byArray.map((f) => f.flightDescriptor?.path).sort()).toEqual([
      ["client-test", "main"],
      ["client-test", "split"],
    ]);
    const byText = await collect(client.listFlights("client-test-other"));
    expect(byText.map((f) => f.flightDescriptor?.path)).toEqual([["client-test-other", "x"]]);
    const all = await collect(client.listFlights());
    expect(all.length).toBeGreaterThanOrEqual(3);
  });

  it("puts a Table made by another copy of apache-arrow", async () => {
    let foreign!: ArrowModule;
    jest.isolateModules(() => {
      foreign = require("apache-arrow") as ArrowModule;
    });
    expect(foreign.Table).not.toBe(arrow.Table);
    const foreignTable = makeTable(foreign, [20, 5, 40]);
    expect(Object.getPrototypeOf(foreignTable)).not.toBe(arrow.Table.prototype);
    const { acks } = await client.putTable(pathDescriptor("client-test-foreign"), foreignTable, { appMetadata: (i) => `f${i}` });
    expect(acks.map((a) => text(a.appMetadata))).toEqual(["f0", "f1", "f2"]);
    const got = await client.getTable(pathDescriptor("client-test-foreign"));
    expect(got.batches.map((b) => b.numRows)).toEqual([20, 5, 40]);
    expect(fieldsOf(got.schema)).toEqual(fieldsOf(foreignTable.schema));
    expect(rowsOf(got)).toEqual(rowsOf(foreignTable));
    // A single foreign RecordBatch is accepted too.
    await client.putTable(pathDescriptor("client-test-foreign", "one"), foreignTable.batches[2]);
    expect(rowsOf(await client.getTable(pathDescriptor("client-test-foreign", "one")))).toEqual(rowsOf(foreignTable.batches[2]));
  });

  it("puts raw messages and echoes them through DoExchange", async () => {
    const messages = [...encodeTable(arrow, makeTable(arrow, [10, 10]))];
    const { results } = client.doPutRaw(pathDescriptor("client-test-raw"), messages.map((m, i) => ({ ...m, appMetadata: Buffer.from(`r${i}`) })));
    // The server acknowledges record batches (not the schema or dictionary batches).
    expect((await collect(results)).map((r) => text(r.appMetadata))).toEqual(recordBatchIndexes(messages).map((i) => `r${i}`));
    const echoed = await collect(client.doExchangeRaw(cmdDescriptor("echo"), messages));
    expect(echoed).toHaveLength(messages.length);
    echoed.forEach((m, i) => {
      expect(Buffer.compare(m.dataHeader, messages[i].dataHeader)).toBe(0);
      expect(Buffer.compare(contiguous(m.dataBody), contiguous(messages[i].dataBody))).toBe(0);
    });
  });

  it("decodes what DoExchange sends back", async () => {
    const small = makeTable(arrow, [30, 0, 12]);
    const state: { schema?: arrow.Schema } = {};
    const batches = await collect(decodeRecordBatches(client.doExchangeRaw(cmdDescriptor("echo"), encodeTable(arrow, small)), state));
    expect(batches.map((b) => b.numRows)).toEqual([30, 0, 12]);
    expect(rowsOf(new arrow.Table(batches))).toEqual(rowsOf(small));
    expect(fieldsOf(state.schema!)).toEqual(fieldsOf(small.schema));
  });

  it("relays received messages with new app_metadata (the received wire bytes are not reused)", async () => {
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    const received = await collect(client.doGetRaw(info.endpoint[0].ticket!));
    const relayed = received.map((m, i) => ({ ...m, appMetadata: Buffer.from(`relay-${i}`) }));
    const acks = await collect(client.doPutRaw(pathDescriptor("client-test-relay"), relayed).results);
    expect(acks.map((a) => text(a.appMetadata))).toEqual(recordBatchIndexes(received).map((i) => `relay-${i}`));
    expect(rowsOf(await client.getTable(pathDescriptor("client-test-relay")))).toEqual(rowsOf(table));
  });

  it("puts and gets a table with no batches: the schema only", async () => {
    const empty = new arrow.Table(table.schema);
    const { acks } = await client.putTable(pathDescriptor("client-test-empty"), empty, { appMetadata: () => "never" });
    expect(acks).toEqual([]);
    const info = await client.getFlightInfo(pathDescriptor("client-test-empty"));
    expect(info.totalRecords).toBe(0);
    expect(await collect(client.doGet(info.endpoint[0].ticket!))).toEqual([]);
    expect(await collect(client.doGetRaw(info.endpoint[0].ticket!))).toHaveLength(1);
    const got = await client.getTable(pathDescriptor("client-test-empty"));
    expect(got.numRows).toBe(0);
    expect(fieldsOf(got.schema)).toEqual(fieldsOf(table.schema));
  });

  it("runs actions: ping, stats, delete; lists them", async () => {
    const [pong] = await client.doAction("ping");
    expect(text(pong.body)).toBe("pong");
    const stats = JSON.parse(text((await client.doAction("stats"))[0].body)) as Record<string, unknown>;
    expect(typeof stats).toBe("object");
    expect(JSON.stringify(stats)).toMatch(/flights/i);
    await client.putTable(pathDescriptor("client-test-delete"), makeTable(arrow, [2]));
    const deleted = JSON.parse(text((await client.doAction("delete", JSON.stringify({ path: ["client-test-delete"] })))[0].body));
    expect(deleted).toMatchObject({ deleted: 1 });
    expect((await failure(client.getFlightInfo(pathDescriptor("client-test-delete")))).code).toBe(StatusCode.NOT_FOUND);
    const actions = await client.listActions();
    expect(actions.map((a) => a.type)).toEqual(expect.arrayContaining(["ping", "stats", "gc", "delete", "slow"]));
    expect(actions.every((a) => a.description.length > 0)).toBe(true);
  });

  it("answers a handshake", async () => {
    const replies = await client.handshake([{ protocolVersion: 1, payload: Buffer.from("hi") }, { protocolVersion: 2 }]);
    expect(replies.map((r) => r.protocolVersion)).toEqual([1, 2]);
  });

  it("fails with NOT_FOUND for an unknown ticket or descriptor", async () => {
    await client.putTable(pathDescriptor("client-test-gone"), makeTable(arrow, [2]));
    const info = await client.getFlightInfo(pathDescriptor("client-test-gone"));
    await client.doAction("delete", JSON.stringify({ path: ["client-test-gone"] }));
    const ticket = info.endpoint[0].ticket!;
    expect((await failure(client.doGet(ticket))).code).toBe(StatusCode.NOT_FOUND);
    expect((await failure(client.doGetRaw(ticket))).code).toBe(StatusCode.NOT_FOUND);
    expect((await failure(client.getTable(ticket))).code).toBe(StatusCode.NOT_FOUND);
    // Bytes that cannot be a ticket of this server at all.
    expect((await failure(client.doGet(Buffer.from("no such ticket")))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await failure(client.getTable(pathDescriptor("no", "such")))).code).toBe(StatusCode.NOT_FOUND);
    expect((await failure(client.getSchema(pathDescriptor("no", "such")))).code).toBe(StatusCode.NOT_FOUND);
  });

  it("fails with DEADLINE_EXCEEDED when the deadline has already passed", async () => {
    const past = new Date(Date.now() - 1000);
    expect((await failure(client.getFlightInfo(pathDescriptor("client-test", "main"), { deadline: past }))).code).toBe(StatusCode.DEADLINE_EXCEEDED);
    expect((await failure(client.doAction("ping", undefined, { deadline: 0 }))).code).toBe(StatusCode.DEADLINE_EXCEEDED);
    expect((await failure(client.getTable(pathDescriptor("client-test", "main"), { deadline: -1 }))).code).toBe(StatusCode.DEADLINE_EXCEEDED);
    // A deadline that passes while the server is still working.
    expect((await failure(client.getFlightInfo(pathDescriptor("slow"), { deadline: 200 }))).code).toBe(StatusCode.DEADLINE_EXCEEDED);
  });

  it("cancels a call when its AbortSignal aborts", async () => {
    // Before the call: it never starts.
    const aborted = new AbortController();
    aborted.abort();
    expect((await failure(client.doAction("ping", undefined, { signal: aborted.signal }))).code).toBe(StatusCode.CANCELLED);
    // A unary call in flight.
    const unary = new AbortController();
    const started = Date.now();
    const pending = failure(client.getFlightInfo(pathDescriptor("slow"), { signal: unary.signal }));
    setTimeout(() => unary.abort(), 100);
    expect((await pending).code).toBe(StatusCode.CANCELLED);
    expect(Date.now() - started).toBeLessThan(3_000);
    // A server-streaming call in flight.
    const streaming = new AbortController();
    const slow = failure(client.doAction("slow", undefined, { signal: streaming.signal }));
    setTimeout(() => streaming.abort(), 100);
    expect((await slow).code).toBe(StatusCode.CANCELLED);
    // A DoGet between two batches.
    const reading = new AbortController();
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    const err = await failure(
      (async function* () {
        for await (const batch of client.doGet(info.endpoint[0].ticket!, { signal: reading.signal })) {
          reading.abort();
          yield batch;
        }
      })(),
    );
    expect(err.code).toBe(StatusCode.CANCELLED);
  });

  it("stops the DoGet call when the consumer breaks out early, and the channel stays usable", async () => {
    const info = await client.getFlightInfo(pathDescriptor("client-test", "main"));
    for await (const batch of client.doGet(info.endpoint[0].ticket!)) {
      expect(batch.numRows).toBe(SIZES[0]);
      break;
    }
    expect(text((await client.doAction("ping"))[0].body)).toBe("pong");
  });

  it("reports a failing source of a DoPut as the source's error", async () => {
    const messages = [...encodeTable(arrow, makeTable(arrow, [5]))];
    async function* broken() {
      yield messages[0];
      throw new Error("source broke");
    }
    await expect(collect(client.doPutRaw(pathDescriptor("client-test-broken"), broken()).results)).rejects.toThrow("source broke");
    expect((await failure(client.getFlightInfo(pathDescriptor("client-test-broken")))).code).toBe(StatusCode.NOT_FOUND);
  });

  it("sends the client's metadata, the call's metadata and the signer's headers", async () => {
    const signed: SignableCall[] = [];
    const signing = new FlightClient(`127.0.0.1:${server.port}`, {
      metadata: { "x-client": "signing" },
      signer: async (call) => {
        signed.push(call);
        return { "x-signature": `sig-${signed.length}` };
      },
    });
    try {
      seen.length = 0;
      const descriptor = pathDescriptor("client-test", "main");
      await signing.getFlightInfo(descriptor, { metadata: { "x-call": ["a", "b"], "x-token-bin": Buffer.from([1, 2, 3]) } });
      await signing.putTable(pathDescriptor("client-test-signed"), makeTable(arrow, [3]));
      await signing.handshake([{ protocolVersion: 1 }]);
      await signing.doAction("ping");
      expect(signed.map((s) => s.path.split("/").pop())).toEqual(["GetFlightInfo", "DoPut", "Handshake", "DoAction"]);
      expect(Buffer.compare(signed[0].message!, pb.FlightDescriptor.encode(descriptor).finish())).toBe(0);
      expect(signed[0].descriptor).toBeUndefined();
      expect(Buffer.compare(signed[1].descriptor!, pb.FlightDescriptor.encode(pathDescriptor("client-test-signed")).finish())).toBe(0);
      expect(signed[1].message).toBeUndefined();
      expect(signed[2]).toEqual({ path: "/arrow.flight.protocol.FlightService/Handshake" });
      expect(Buffer.compare(signed[3].message!, pb.Action.encode({ type: "ping", body: new Uint8Array(0) }).finish())).toBe(0);
      const info = seen.find((s) => s.method === "getFlightInfo")!;
      expect(info.headers.get("x-client")).toEqual(["signing"]);
      // Each value of a repeated key arrives as its own header field, and stays one value.
      expect(info.headers.get("x-call")).toEqual(["a", "b"]);
      expect(Buffer.from((info.headers.get("x-token-bin") as Uint8Array[])[0])).toEqual(Buffer.from([1, 2, 3]));
      expect(info.headers.get("x-signature")).toEqual(["sig-1"]);
      expect(seen.find((s) => s.method === "doPut")!.headers.get("x-signature")).toEqual(["sig-2"]);
    } finally {
      signing.close();
    }
  });

  it("refuses calls after close()", async () => {
    const c = new FlightClient(`grpc://127.0.0.1:${server.port}`);
    expect(text((await c.doAction("ping"))[0].body)).toBe("pong");
    c.close();
    c.close();
    expect((await failure(c.doAction("ping"))).code).toBe(StatusCode.FAILED_PRECONDITION);
  });

  it("fails with UNAVAILABLE when nothing listens", async () => {
    const probe = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    const { port } = await probe.start();
    await probe.shutdown({ graceMs: 0 });
    const c = new FlightClient(`127.0.0.1:${port}`);
    try {
      expect((await failure(c.doAction("ping", undefined, { deadline: 5_000 }))).code).toBe(StatusCode.UNAVAILABLE);
    } finally {
      c.close();
    }
  });

  it("validates call options and inputs up front", async () => {
    await expect(client.getFlightInfo(pathDescriptor("x"), { deadline: Number.NaN })).rejects.toThrow(/deadline/);
    await expect(client.getFlightInfo(pathDescriptor("x"), { metadata: { "x-n": 1 as unknown as string } })).rejects.toThrow(/x-n/);
    expect(() => client.doGetRaw(42 as unknown as string)).toThrow(TypeError);
    expect(() => client.doActionStream(7 as unknown as string)).toThrow(/action type/);
    expect((await failure(client.doAction(""))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(() => client.listFlights(7 as unknown as string)).toThrow(/criteria/);
    await expect(client.putTable(pathDescriptor("x"), { rows: [] } as never)).rejects.toThrow(/Table or RecordBatch/);
    await expect(client.putTable(pathDescriptor("x"), table, { maxBatchRows: 0 })).rejects.toThrow(/maxBatchRows/);
    await expect(client.getFlightInfo({ path: "a" as unknown as string[] })).rejects.toThrow(/path/);
    expect(pathDescriptor("a", "b")).toEqual({ type: DescriptorType.PATH, cmd: new Uint8Array(0), path: ["a", "b"] });
    expect(cmdDescriptor("echo")).toEqual({ type: DescriptorType.CMD, cmd: new Uint8Array(Buffer.from("echo")), path: [] });
  });
});

describe("FlightClient DoPut backpressure", () => {
  let server: FlightServer;
  let client: FlightClient;

  beforeAll(async () => {
    // A small server window, so that the client's sends are bounded by the network side.
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", flowControlWindow: 65_535 }));
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("takes messages from the source only as fast as the server reads them", async () => {
    const MESSAGES = 120;
    const oneMiB = arrow.tableFromArrays({ v: Float64Array.from({ length: 131072 }, (_, i) => i) });
    const [schema, batch] = [...encodeTable(arrow, oneMiB)];
    let pulled = 0;
    let acked = 0;
    let maxAhead = 0;
    function* source(): Generator<FlightData> {
      yield schema;
      for (let i = 0; i < MESSAGES; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - acked);
        yield { ...batch, appMetadata: Buffer.from(String(i)) };
      }
    }
    for await (const ack of client.doPutRaw(pathDescriptor("big"), source()).results) {
      expect(text(ack.appMetadata)).toBe(String(acked));
      acked++;
    }
    expect(acked).toBe(MESSAGES);
    // Without waiting for 'drain' the whole source would be pulled at once (ahead = 120).
    expect(maxAhead).toBeLessThan(60);
  });
});

describe("FlightClient over TLS", () => {
  const cert = selfSignedCert();
  const maybe = cert ? it : it.skip;
  let server: FlightServer | undefined;

  beforeAll(async () => {
    if (!cert) return;
    const tls: TlsSetting = { kind: "tls", load: () => ({ cert: cert.cert, key: cert.key }), requireClientCert: false };
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), tls);
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown({ graceMs: 100 });
  });

  maybe("connects with grpc+tls:// and the server's CA", async () => {
    const client = new FlightClient(`grpc+tls://127.0.0.1:${server!.port}`, { tls: { rootCerts: cert!.cert, serverNameOverride: "flight.test" } });
    try {
      expect(client.secure).toBe(true);
      expect(text((await client.doAction("ping"))[0].body)).toBe("pong");
    } finally {
      client.close();
    }
  });

  maybe("fails with UNAVAILABLE when the server's certificate is not trusted", async () => {
    const client = new FlightClient(`grpc+tls://127.0.0.1:${server!.port}`, { tls: { serverNameOverride: "flight.test" } });
    try {
      expect((await failure(client.doAction("ping", undefined, { deadline: 5_000 }))).code).toBe(StatusCode.UNAVAILABLE);
    } finally {
      client.close();
    }
  });
});

describe("FlightClient options", () => {
  it("refuses bad options with a TypeError naming the option", () => {
    expect(() => new FlightClient("127.0.0.1:1", { maxMessageBytes: 0 })).toThrow(/maxMessageBytes/);
    expect(() => new FlightClient("127.0.0.1:1", { maxMessageBytes: 2 ** 31 })).toThrow(/maxMessageBytes/);
    expect(() => new FlightClient("127.0.0.1:1", { flowControlWindow: 1000 })).toThrow(/flowControlWindow/);
    expect(() => new FlightClient("127.0.0.1:1", { signer: "x" as never })).toThrow(/signer/);
    expect(() => new FlightClient("127.0.0.1:1", { maxMessageSize: 5 } as never)).toThrow(/unknown option "maxMessageSize"/);
    expect(() => new FlightClient("127.0.0.1:1", { metadata: { "bad key": "v" } })).toThrow(TypeError);
    expect(() => new FlightClient("127.0.0.1:1", { metadata: { "x-a": "line\nbreak" } })).toThrow(/metadata/);
    expect(() => new FlightClient("127.0.0.1:1", { tls: { cert: Buffer.from("c") } })).toThrow(/tls.cert and tls.key/);
    expect(() => new FlightClient("127.0.0.1:1", { tls: { rootCerts: "pem" as never } })).toThrow(/tls.rootCerts/);
    expect(() => new FlightClient("grpc+tcp://127.0.0.1:1", { tls: {} })).toThrow(/plaintext/);
    expect(() => new FlightClient("127.0.0.1:1", { channelOptions: 3 as never })).toThrow(/channelOptions/);
    expect(() => new FlightClient("http://127.0.0.1:1")).toThrow(/unsupported scheme "http"/);
  });

  it("accepts good options; host:port with tls means TLS", () => {
    const c = new FlightClient("localhost:8815", {
      tls: {},
      maxMessageBytes: 1 << 20,
      flowControlWindow: 1 << 20,
      metadata: { "x-a": "b" },
      channelOptions: { "grpc.keepalive_time_ms": 10_000 },
    });
    expect(c.secure).toBe(true);
    expect(c.target).toBe("localhost:8815");
    c.close();
    const plain = new FlightClient("grpc://[::1]:8815");
    expect(plain.secure).toBe(false);
    expect(plain.target).toBe("[::1]:8815");
    plain.close();
  });
});
