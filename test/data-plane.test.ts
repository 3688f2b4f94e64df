// The data plane's defects as an attacker found them (issue 9), each reproduced against a
// real server: the right code, the server up, stored flights byte-identical.
import { makeData, makeVector, Null, tableFromArrays, tableToIPC, Table } from "apache-arrow";
import {
  DescriptorType,
  StatusCode,
  contiguous,
  serverConfig,
  splitIpcStream,
  type FlightDescriptor,
  type FlightMiddleware,
  type StoredFlight,
  type StoredMessage,
} from "@blackice/flight-core";
import { FlightClient, createFlightServer, type FlightServer } from "@blackice/flight";
import { flightDataPieces } from "@blackice/flight/internal";
import { hmacAuth } from "@blackice/flight-security";
import { randomBytes } from "node:crypto";
import { connect, grpcFrame, rawGrpcCall } from "../packages/flight/src/transport/test-h2-client";
import { batchMessage, recordBatch } from "../packages/core/src/ipc/test-flatbuffer-builder";
import { lz4Stored, prefixed, zstdFrame } from "../packages/core/src/ipc/test-compressed-frames";
import { run, venvPython } from "./helpers/python";

/** A stored flight's messages, read through the store's stream. */
async function drainMessages(flight: StoredFlight): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const m of flight.messages()) out.push(m);
  return out;
}

const DO_PUT = "/arrow.flight.protocol.FlightService/DoPut";
const pathOf = (...p: string[]): FlightDescriptor => ({ type: DescriptorType.PATH, cmd: new Uint8Array(0), path: p });
const EMPTY = new Uint8Array(0);

function ipcOf(values: number[]) {
  return splitIpcStream(tableToIPC(tableFromArrays({ v: Int32Array.from(values) }), "stream"));
}

/** One FlightData's protobuf bytes, plus raw bytes appended after its fields. */
function flightData(parts: { descriptor?: FlightDescriptor; header: Uint8Array; body?: Uint8Array; meta?: Uint8Array }, extra: number[] = []): Buffer {
  const pieces = flightDataPieces({ flightDescriptor: parts.descriptor, dataHeader: parts.header, dataBody: parts.body ?? EMPTY, appMetadata: parts.meta ?? EMPTY }, false);
  return Buffer.concat([...pieces, Buffer.from(extra)]);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A raw DoPut of the given FlightData messages. */
const rawPut = (port: number, messages: Buffer[]) => rawGrpcCall(port, DO_PUT, { writes: messages.map((m) => grpcFrame(m)) });

describe("data plane: every byte counted, only validated bytes served", () => {
  let server: FlightServer;
  let client: FlightClient;
  const good = pathOf("good");
  let goodBytes: Buffer[];

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMemoryBytes: 64 * 2 ** 20 }));
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    const [schema, batch] = ipcOf([1, 2, 3]);
    const out = await rawPut(server.port, [flightData({ descriptor: good, header: schema!.header }), flightData({ header: batch!.header, body: batch!.body })]);
    expect(out.status).toBe(StatusCode.OK);
    goodBytes = await read(good);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 0 });
  });

  async function read(d: FlightDescriptor): Promise<Buffer[]> {
    const info = await client.getFlightInfo(d);
    const out: Buffer[] = [];
    for await (const m of client.doGetRaw(info.endpoint[0]!.ticket!)) out.push(Buffer.concat([m.dataHeader, contiguous(m.dataBody), m.appMetadata]));
    return out;
  }

  async function expectUnchanged(): Promise<void> {
    expect(await read(good)).toEqual(goodBytes);
    expect(server.serving).toBe(true);
  }

  const [schema, batch] = ipcOf([1, 2, 3]);
  const [, other] = ipcOf([666, 777, 888]);
  const tricks: Array<[string, number[]]> = [
    // The differential: a varint field 3 followed by an unknown field 15 carrying another batch.
    ["an app_metadata field sent as a varint, hiding an unknown field", [0x18, 0x05, ...varint((15 << 3) | 2), ...varint(other!.body.length), ...other!.body]],
    ["an unknown field", [...varint((15 << 3) | 2), 3, 1, 2, 3]],
    ["field number 0", [0x02, 1, 0]],
    ["a second data_header", [0x12, 1, 0]],
    ["a known field with the fixed64 wire type", [0x11, 0, 0, 0, 0, 0, 0, 0, 0]],
    ["a 2 MiB unknown field (the memory-limit bypass)", [...varint((15 << 3) | 2), ...varint(2 * 2 ** 20), ...new Uint8Array(2 * 2 ** 20)]],
  ];

  it.each(tricks)("refuses a batch with %s: INVALID_ARGUMENT, nothing stored", async (_what, extra) => {
    const d = pathOf("tricky", _what);
    const out = await rawPut(server.port, [flightData({ descriptor: d, header: schema!.header }), flightData({ header: batch!.header, body: batch!.body }, extra)]);
    expect(out.status).toBe(StatusCode.INVALID_ARGUMENT);
    await expect(client.getFlightInfo(d)).rejects.toMatchObject({ code: StatusCode.NOT_FOUND });
    await expectUnchanged();
  });

  it("refuses a DoPut whose descriptor is a 60 MiB path segment at its length prefix (RESOURCE_EXHAUSTED), and counts nothing", async () => {
    const before = server.stats() as { memory: { used: number; reserved: number } };
    const huge = flightData({ descriptor: pathOf("x".repeat(60 * 2 ** 20)), header: schema!.header });
    const out = await rawPut(server.port, [huge]);
    expect(out.status).toBe(StatusCode.RESOURCE_EXHAUSTED);
    const after = server.stats() as { memory: { used: number; reserved: number }; transport: { inFlightBytes: number } };
    expect(after.memory).toMatchObject({ used: before.memory.used, reserved: 0 });
    expect(after.transport.inFlightBytes).toBe(0);
    await expectUnchanged();
  });

  it("refuses a descriptor over maxDescriptorBytes inside a small first message", async () => {
    const out = await rawPut(server.port, [flightData({ descriptor: pathOf("y".repeat(100 * 1024)), header: schema!.header })]);
    expect(out.status).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(out.message).toMatch(/FlightDescriptor of \d+ bytes is over the limit of 65536 bytes/);
    await expectUnchanged();
  });

  it("refuses a GetFlightInfo with a 16 MiB command at once, without blocking the event loop", async () => {
    const started = performance.now();
    await expect(client.getFlightInfo({ type: DescriptorType.CMD, cmd: new Uint8Array(16 * 2 ** 20), path: [] })).rejects.toMatchObject({
      code: StatusCode.RESOURCE_EXHAUSTED,
    });
    expect(performance.now() - started).toBeLessThan(2000);
    await expectUnchanged();
  });

  it("refuses a put whose row count would pass 2^53 - 1, and ListFlights keeps working for everyone", async () => {
    // A null-type batch of 2^52 rows holds no buffers; Arrow JS cannot write one that long, so
    // the row count of a 5-row batch is patched in its header (batch length, node length and
    // node null count, all 5).
    const [nullSchema, fiveRows] = splitIpcStream(tableToIPC(new Table({ n: makeVector(makeData({ type: new Null(), length: 5 })) }), "stream"));
    const header = Buffer.from(fiveRows!.header);
    const five = Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]);
    const huge = Buffer.alloc(8);
    huge.writeBigInt64LE(2n ** 52n);
    let patched = 0;
    for (let at = header.indexOf(five); at >= 0; at = header.indexOf(five, at + 8)) {
      huge.copy(header, at);
      patched++;
    }
    expect(patched).toBe(3);
    const messages = [nullSchema!, ...Array.from({ length: 3 }, () => ({ header, body: fiveRows!.body }))];
    const d = pathOf("many-rows");
    const out = await rawPut(
      server.port,
      messages.map((m, i) => flightData({ descriptor: i === 0 ? d : undefined, header: m.header, body: m.body })),
    );
    expect(out.status).toBe(StatusCode.INVALID_ARGUMENT);
    expect(out.message).toMatch(/more than 9007199254740991 rows/);
    const listed: string[] = [];
    for await (const info of client.listFlights()) listed.push(info.flightDescriptor!.path.join("/"));
    expect(listed).toContain("good");
    await expectUnchanged();
  });

  describe("compressed bodies are checked at put time (defect 10)", () => {
    const values = new Uint8Array(Int32Array.from([1, 2, 3]).buffer);
    /** A 3-row batch of the `v: int32` schema whose values buffer is `buffer`, under `codec` (0 LZ4_FRAME, 1 ZSTD). */
    function compressedBatch(codec: number, buffer: Uint8Array) {
      const body = new Uint8Array(Math.ceil(buffer.length / 8) * 8);
      body.set(buffer);
      const header = batchMessage(recordBatch({ length: 3, nodes: [[3, 0]], buffers: [[0, 0], [0, buffer.length]], codec }), body.length);
      return { header, body };
    }
    const put = (d: FlightDescriptor, b: { header: Uint8Array; body: Uint8Array }) =>
      rawPut(server.port, [flightData({ descriptor: d, header: schema!.header }), flightData(b)]);

    const garbage = Uint8Array.from({ length: 40 }, (_, i) => (i * 73 + 5) & 0xff);
    it.each([
      ["a garbage LZ4-flagged body", 0, prefixed(12, garbage), /compressed buffer 1 does not start with an LZ4 frame/],
      ["a garbage ZSTD-flagged body", 1, prefixed(12, garbage), /compressed buffer 1 does not start with a Zstandard frame/],
      ["a ZSTD frame whose content size is not the declared length", 1, prefixed(12, zstdFrame([{ type: "raw", bytes: values }], { contentSize: 13 })), /declares 13 content bytes/],
      ["an LZ4 frame cut short", 0, prefixed(12, lz4Stored(values).subarray(0, 20)), /ends inside an LZ4 block/],
    ])("refuses %s: INVALID_ARGUMENT, nothing stored", async (what, codec, buffer, message) => {
      const d = pathOf("compressed", what);
      const out = await put(d, compressedBatch(codec, buffer));
      expect({ status: out.status, message: out.message }).toEqual({ status: StatusCode.INVALID_ARGUMENT, message: expect.stringMatching(message) });
      await expect(client.getFlightInfo(d)).rejects.toMatchObject({ code: StatusCode.NOT_FOUND });
      await expectUnchanged();
    });

    it.each([
      ["LZ4", 0, prefixed(12, lz4Stored(values))],
      ["ZSTD", 1, prefixed(12, zstdFrame([{ type: "raw", bytes: values }], { contentSize: 12 }))],
    ])("stores a well-formed %s body as sent, and a client decodes it", async (what, codec, buffer) => {
      const d = pathOf("compressed", "good", what);
      const batch = compressedBatch(codec, buffer);
      expect((await put(d, batch)).status).toBe(StatusCode.OK);
      expect((await read(d))[1]).toEqual(Buffer.concat([batch.header, batch.body]));
      const table = await client.getTable(d);
      expect(Array.from(table.getChild("v")!.toArray() as Int32Array)).toEqual([1, 2, 3]);
    });
  });
});

describe("work before authentication (defect 7)", () => {
  it("ends forged-signature DoPuts at their first message and silent ones at the idle limit; nothing stays held", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", callIdleTimeoutMs: 500 }), hmacAuth({ keyId: "k", hmacSecret: randomBytes(32) }));
    await server.start();
    const session = connect(server.port);
    try {
      const [schema] = ipcOf([1]);
      const signed = () => ({
        "x-blackice-key-id": "k",
        "x-blackice-signature": "0".repeat(64),
        "x-blackice-timestamp": String(Date.now()),
        "x-blackice-nonce": randomBytes(16).toString("hex"),
        "x-blackice-signature-version": "v2",
      });
      // Each sends its first message and then holds the stream open, as the attack did.
      const forged = Array.from({ length: 200 }, (_, i) =>
        rawGrpcCall(server.port, DO_PUT, { session, headers: signed(), writes: [grpcFrame(flightData({ descriptor: pathOf("forged", String(i)), header: schema!.header }))], end: false }),
      );
      // These send nothing at all after their headers.
      const silent = Array.from({ length: 20 }, () => rawGrpcCall(server.port, DO_PUT, { session, headers: signed(), writes: [], end: false }));
      const f = await Promise.all(forged);
      const q = await Promise.all(silent);
      expect(new Set(f.map((o) => o.status))).toEqual(new Set([StatusCode.UNAUTHENTICATED]));
      expect(new Set(q.map((o) => o.status))).toEqual(new Set([StatusCode.DEADLINE_EXCEEDED]));
      expect(q.every((o) => /no request data/.test(o.message ?? ""))).toBe(true);
      const transport = server.stats().transport as { openCalls: number; inFlightBytes: number; preAuthBytes: number };
      expect(transport).toMatchObject({ openCalls: 0, inFlightBytes: 0, preAuthBytes: 0 });
      expect(server.stats()).toMatchObject({ flights: 0, memory: { used: 0, reserved: 0 } });
      expect(server.serving).toBe(true);
    } finally {
      session.close();
      await server.shutdown({ graceMs: 0 });
    }
  });
});

describe("middleware sees plain messages, and its edits go out on the wire", () => {
  const tag = Buffer.from("edited by middleware");
  // DoGet: replace every message's app_metadata; DoPut: stamp each incoming batch.
  const edit: FlightMiddleware = (next) =>
    async function edit(call) {
      if (call.method === "doPut") {
        const source = call.request;
        const request = (async function* () {
          for await (const m of source) yield m.dataHeader.length > 0 && m.flightDescriptor === undefined ? { ...m, appMetadata: Buffer.from("stamped on put") } : m;
        })();
        return next({ ...call, request });
      }
      const res = await next(call);
      if (call.method !== "doGet") return res;
      const source = res as AsyncIterable<{ appMetadata: Uint8Array }>;
      return (async function* () {
        for await (const m of source) yield { ...m, appMetadata: tag };
      })() as never;
    };
  let server: FlightServer;
  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), edit);
    await server.start();
  });
  afterAll(() => server?.shutdown({ graceMs: 0 }));

  it("FlightClient reads the edited app_metadata, and the store kept the DoPut edit", async () => {
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
    try {
      const d = pathOf("edited");
      await client.putTable(d, tableFromArrays({ v: Int32Array.from([1, 2, 3]) }));
      const stored = (await server.store.get(d))!;
      const [first] = await drainMessages(stored);
      expect(Buffer.from(first!.appMetadata).toString()).toBe("stamped on put");
      const info = await client.getFlightInfo(d);
      const metas: string[] = [];
      for await (const m of client.doGetRaw(info.endpoint[0]!.ticket!)) metas.push(Buffer.from(m.appMetadata).toString());
      expect(metas).toEqual([tag.toString(), tag.toString()]);
    } finally {
      client.close();
    }
  });

  it("pyarrow (Arrow C++) reads the edited app_metadata", async () => {
    const script = [
      "import sys, pyarrow as pa, pyarrow.flight as fl",
      "c = fl.connect(sys.argv[1])",
      "d = fl.FlightDescriptor.for_path('from-pyarrow')",
      "t = pa.table({'v': pa.array([1, 2, 3], pa.int32())})",
      "w, _ = c.do_put(d, t.schema)",
      "w.write_batch(t.to_batches()[0]); w.close()",
      "r = c.do_get(c.get_flight_info(d).endpoints[0].ticket)",
      "metas = []",
      "while True:",
      "    try: chunk = r.read_chunk()",
      "    except StopIteration: break",
      "    metas.append(chunk.app_metadata.to_pybytes().decode() if chunk.app_metadata else '')",
      "print(metas)",
    ].join("\n");
    const result = await run(venvPython(), ["-c", script, `grpc+tcp://127.0.0.1:${server.port}`], { timeoutMs: 60_000 });
    if (result.code !== 0) throw new Error(`python failed: ${result.stderr}`);
    // read_chunk returns batches only; the schema's metadata is not surfaced by pyarrow.
    expect(result.stdout.trim()).toBe(`['${tag.toString()}']`);
  });
});
