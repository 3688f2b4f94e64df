import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as arrow from "apache-arrow";
import { FlightError, MessageKind, StatusCode, readMessageHeader, serverConfig, splitIpcStream, type FlightData, contiguous } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "../server/create-flight-server";
import { FlightClient } from "./flight-client";
import { pathDescriptor } from "./descriptors";
import { decodeRecordBatches, registerArrowCompressionCodecs } from "./arrow-interop";
import { CompressionCodecId, decodeZstdBuffer, type CodecLike } from "./compression";

type ArrowModule = typeof arrow;

const CORPUS = path.resolve(__dirname, "../../../../test/fixtures/conformance/ipc/2.0.0-compression");
const DATASETS = ["generated_lz4", "generated_uncompressible_lz4", "generated_zstd", "generated_uncompressible_zstd"];
const EMPTY = new Uint8Array(0);

// ---- the Arrow integration JSON format (the datasets' expected values) ----

interface JsonField {
  name: string;
  nullable: boolean;
  type: { name: string; bitWidth?: number; isSigned?: boolean; precision?: string };
  children: JsonField[];
}
interface JsonColumn {
  name: string;
  count: number;
  VALIDITY?: number[];
  DATA?: unknown[];
  OFFSET?: unknown[];
  children?: JsonColumn[];
}
interface JsonDataset {
  schema: { fields: JsonField[] };
  batches: Array<{ count: number; columns: JsonColumn[] }>;
}

/** A column's values as apache-arrow's `Vector.get` gives them, nulls included. */
function expectedValues(field: JsonField, column: JsonColumn): unknown[] {
  const convert = (v: unknown): unknown => {
    switch (field.type.name) {
      case "int":
        return (field.type.bitWidth ?? 32) === 64 ? BigInt(v as string) : Number(v);
      case "floatingpoint":
      case "bool":
      case "utf8":
        return v;
      default:
        throw new Error(`the test does not know the JSON type ${JSON.stringify(field.type)} of field ${field.name}; teach expectedValues about it`);
    }
  };
  const data = column.DATA ?? [];
  expect(data).toHaveLength(column.count);
  return data.map((v, i) => (column.VALIDITY && column.VALIDITY[i] === 0 ? null : convert(v)));
}

const arrowTypeName = (t: JsonField["type"]): string => {
  switch (t.name) {
    case "int":
      return `${t.isSigned ? "Int" : "Uint"}${t.bitWidth}`;
    case "utf8":
      return "Utf8";
    default:
      return t.name;
  }
};

function loadDataset(name: string): { messages: FlightData[]; json: JsonDataset } {
  const stream = path.join(CORPUS, `${name}.stream`);
  const jsonFile = path.join(CORPUS, `${name}.json.gz`);
  for (const f of [stream, jsonFile]) {
    if (!fs.existsSync(f)) throw new Error(`conformance file ${f} is missing: the compression conformance corpus must be at ${CORPUS}`);
  }
  const messages = splitIpcStream(fs.readFileSync(stream)).map((m): FlightData => ({ flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: EMPTY }));
  const json = JSON.parse(zlib.gunzipSync(fs.readFileSync(jsonFile)).toString("utf8")) as JsonDataset;
  return { messages, json };
}

/** Checks a decoded table (or its batches) against the dataset's JSON, batch by batch, column by column. */
function expectDataset(schema: arrow.Schema, batches: arrow.RecordBatch[], json: JsonDataset): void {
  expect(schema.fields.map((f) => `${f.name}: ${String(f.type)}`)).toEqual(json.schema.fields.map((f) => `${f.name}: ${arrowTypeName(f.type)}`));
  expect(batches.map((b) => b.numRows)).toEqual(json.batches.map((b) => b.count));
  json.batches.forEach((jb, b) => {
    json.schema.fields.forEach((field, c) => {
      const column = jb.columns.find((col) => col.name === field.name)!;
      const vector = batches[b].getChildAt(c)!;
      const actual = Array.from({ length: vector.length }, (_, i) => vector.get(i));
      expect({ batch: b, column: field.name, values: actual }).toEqual({ batch: b, column: field.name, values: expectedValues(field, column) });
    });
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* from<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

describe("compressed record batches (conformance corpus 2.0.0-compression)", () => {
  let server: FlightServer;
  let client: FlightClient;

  beforeAll(async () => {
    if (!fs.existsSync(CORPUS)) throw new Error(`the compression conformance corpus is missing: expected it at ${CORPUS}`);
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("registers nothing before the client decodes, and the host's apache-arrow cannot read the streams alone", () => {
    expect(arrow.compressionRegistry.get(arrow.CompressionType.LZ4_FRAME)).toBeNull();
    expect(arrow.compressionRegistry.get(arrow.CompressionType.ZSTD)).toBeNull();
    expect(() => arrow.tableFromIPC(fs.readFileSync(path.join(CORPUS, "generated_lz4.stream")))).toThrow(/compressed but codec not found/);
  });

  it.each(DATASETS)("%s: put raw, then getTable gives the JSON's values", async (name) => {
    const { messages, json } = loadDataset(name);
    // The stream really is compressed, with the codec its name says.
    const compressions = messages.map((m) => readMessageHeader(m.dataHeader, m.dataBody)).filter((i) => i.kind === MessageKind.RECORD_BATCH).map((i) => i.compression);
    expect(compressions).toEqual(json.batches.map(() => (name.endsWith("lz4") ? "lz4_frame" : "zstd")));

    const descriptor = pathDescriptor("conformance", "compression", name);
    await collect(client.doPutRaw(descriptor, messages).results);
    const table = await client.getTable(descriptor);
    expectDataset(table.schema, table.batches, json);

    // doGet gives the same batches.
    const info = await client.getFlightInfo(descriptor);
    const batches = await collect(client.doGet(info.endpoint[0].ticket!));
    expectDataset(table.schema, batches, json);
  });

  it("getTable and doGet decompressed in the decoding worker: the main thread's apache-arrow registered nothing", () => {
    expect(arrow.compressionRegistry.get(arrow.CompressionType.LZ4_FRAME)).toBeNull();
    expect(arrow.compressionRegistry.get(arrow.CompressionType.ZSTD)).toBeNull();
  });

  it.each(DATASETS)("%s: decodeRecordBatches decodes the messages", async (name) => {
    const { messages, json } = loadDataset(name);
    // Bodies at odd byte offsets, as they may arrive from the network.
    const shifted = messages.map((m) => {
      const body = Buffer.alloc(m.dataBody.byteLength + 1);
      body.set(contiguous(m.dataBody), 1);
      return { ...m, dataBody: body.subarray(1) };
    });
    const state: { schema?: arrow.Schema } = {};
    const batches = await collect(decodeRecordBatches(from(shifted), state));
    expectDataset(state.schema!, batches, json);
  });

  it("decodeRecordBatches registered the decoders in the host's apache-arrow on first use, which then reads the streams by itself", () => {
    expect(typeof arrow.compressionRegistry.get(arrow.CompressionType.LZ4_FRAME)?.decode).toBe("function");
    expect(typeof arrow.compressionRegistry.get(arrow.CompressionType.ZSTD)?.decode).toBe("function");
    for (const name of DATASETS) {
      const { json } = loadDataset(name);
      const table = arrow.tableFromIPC(fs.readFileSync(path.join(CORPUS, `${name}.stream`)));
      expectDataset(table.schema, table.batches, json);
    }
  });

  it("a corrupt LZ4 frame is DATA_LOSS", async () => {
    const { messages } = loadDataset("generated_lz4");
    const index = messages.findIndex((m) => readMessageHeader(m.dataHeader, m.dataBody).kind === MessageKind.RECORD_BATCH);
    const body = Uint8Array.from(contiguous(messages[index].dataBody));
    const magic = Buffer.from(body).indexOf(Buffer.from([0x04, 0x22, 0x4d, 0x18]));
    // The first frame's first block size (the 4 bytes after the 7-byte frame header) made larger than its maximum.
    body[magic + 9] ^= 0x01;
    const corrupt = messages.map((m, i) => (i === index ? { ...m, dataBody: body } : m));
    const err = await collect(decodeRecordBatches(from(corrupt))).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FlightError);
    expect(err).toMatchObject({ code: StatusCode.DATA_LOSS });
    expect((err as Error).message).toMatch(/could not decode the Arrow stream: LZ4 frame: block of 65\d+ bytes exceeds/);
  });
});

describe("registerArrowCompressionCodecs", () => {
  /** A fresh apache-arrow, with its own (empty) compression registry. */
  function freshArrow(): ArrowModule {
    let fresh!: ArrowModule;
    jest.isolateModules(() => {
      fresh = require("apache-arrow") as ArrowModule;
    });
    expect(fresh.compressionRegistry).not.toBe(arrow.compressionRegistry);
    return fresh;
  }

  it("registers decoders in the given apache-arrow, which then reads compressed IPC", () => {
    const A = freshArrow();
    expect(registerArrowCompressionCodecs(A)).toEqual({ lz4Frame: "registered", zstd: "registered" });
    const { json } = loadDataset("generated_zstd");
    const table = A.tableFromIPC(fs.readFileSync(path.join(CORPUS, "generated_zstd.stream")));
    expect(table.getChild("ints")!.get(0)).toBe(42n);
    expect(table.numRows).toBe(json.batches.reduce((n, b) => n + b.count, 0));
    // Once registered, the decoders are the registry's own: kept from then on.
    expect(registerArrowCompressionCodecs(A)).toEqual({ lz4Frame: "kept", zstd: "kept" });
  });

  it("keeps a decoder the app registered, and adds decoding to an app's encoder-only codec", () => {
    const A = freshArrow();
    const appDecode = jest.fn((data: Uint8Array) => decodeZstdBuffer(data));
    A.compressionRegistry.set(A.CompressionType.ZSTD, { decode: appDecode });
    // An encoder that makes a valid-looking LZ4 frame header (apache-arrow checks the magic number and version).
    const appEncode = jest.fn(() => Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0, 0, 0, 0));
    A.compressionRegistry.set(A.CompressionType.LZ4_FRAME, { encode: appEncode });

    expect(registerArrowCompressionCodecs(A)).toEqual({ lz4Frame: "registered", zstd: "kept" });
    expect(A.compressionRegistry.get(A.CompressionType.ZSTD)!.decode).toBe(appDecode);
    const lz4 = A.compressionRegistry.get(A.CompressionType.LZ4_FRAME)!;
    appEncode.mockClear();
    lz4.encode!(Uint8Array.of(1, 2, 3));
    expect(appEncode).toHaveBeenCalledTimes(1);

    A.tableFromIPC(fs.readFileSync(path.join(CORPUS, "generated_zstd.stream")));
    expect(appDecode).toHaveBeenCalled();
    expect(A.tableFromIPC(fs.readFileSync(path.join(CORPUS, "generated_lz4.stream"))).getChild("strs")!.get(0)).toBe("foo");
  });

  it("reports an apache-arrow without a compression registry", () => {
    const registry = { get: jest.fn(), set: jest.fn() };
    expect(registerArrowCompressionCodecs({})).toEqual({ lz4Frame: "unavailable", zstd: "unavailable" });
    expect(registerArrowCompressionCodecs({ compressionRegistry: registry })).toEqual({ lz4Frame: "registered", zstd: "registered" });
    expect(registry.set.mock.calls.map(([type, codec]: [number, CodecLike]) => [type, Object.keys(codec)])).toEqual([
      [CompressionCodecId.LZ4_FRAME, ["decode"]],
      [CompressionCodecId.ZSTD, ["decode"]],
    ]);
  });

  it("the client uses the app's decoder, and says so when the host's apache-arrow cannot decode compressed batches", async () => {
    const { messages, json } = loadDataset("generated_zstd");

    // A host apache-arrow whose app registered its own ZSTD decoder.
    let decode!: typeof decodeRecordBatches;
    let A!: ArrowModule;
    jest.isolateModules(() => {
      A = require("apache-arrow") as ArrowModule;
      const interop = require("./arrow-interop") as typeof import("./arrow-interop");
      expect(interop.loadArrow()).toBe(A);
      decode = interop.decodeRecordBatches;
    });
    const appDecode = jest.fn((data: Uint8Array) => decodeZstdBuffer(data));
    A.compressionRegistry.set(A.CompressionType.ZSTD, { decode: appDecode });
    const state: { schema?: arrow.Schema } = {};
    const batches = await collect(decode(from(messages), state));
    expectDataset(state.schema!, batches, json);
    expect(appDecode).toHaveBeenCalled();
    expect(A.compressionRegistry.get(A.CompressionType.ZSTD)!.decode).toBe(appDecode);

    // A host apache-arrow from before compression (no compressionRegistry).
    let decodeOld!: typeof decodeRecordBatches;
    jest.isolateModules(() => {
      jest.doMock("apache-arrow", () => ({ ...jest.requireActual<object>("apache-arrow"), compressionRegistry: undefined }));
      const interop = require("./arrow-interop") as typeof import("./arrow-interop");
      interop.loadArrow();
      decodeOld = interop.decodeRecordBatches;
    });
    jest.dontMock("apache-arrow");
    const err = await collect(decodeOld(from(messages))).then(
      () => undefined,
      (e: unknown) => e,
    );
    // (FlightError of the isolated modules: another class than this file's.)
    expect(err).toMatchObject({ name: "FlightError", code: StatusCode.UNIMPLEMENTED });
    expect((err as Error).message).toMatch(/record batch compressed with ZSTD.*upgrade apache-arrow to >= 21/);
  });
});
