// Projection over the conformance corpus (real Arrow C++ streams of every type, compressed
// ones included): every projected stream must validate against its projected schema, be
// made of views of the original bodies, and, where apache-arrow can decode it, equal the
// original table's columns. The pyarrow peer test (test/query-projection.test.ts) checks
// the same against pyarrow's own projection, byte for byte.
import * as fs from "fs";
import * as path from "path";
import { tableFromIPC, tableToIPC } from "apache-arrow";
import { ByteChunks, contiguous } from "../byte-chunks";
import { StatusCode } from "../status-code";
import { joinIpcStream, splitIpcStream, type IpcMessageBytes } from "./ipc-stream";
import { isSlicedFrom, projectIpcSchema } from "./ipc-projection";
import { MessageKind } from "./ipc-message";
import { readMessageHeader } from "./message-header";
import { readSchema } from "./schema-info";
import { IpcStreamValidator } from "./stream-validator";
import { flightErrorOf, listFiles, requireConformance } from "./test-helpers";

const corpus = requireConformance();
const streams = listFiles(path.join(corpus, "ipc")).filter((f) => f.endsWith(".stream"));

function project(messages: readonly IpcMessageBytes[], columns: string[]): IpcMessageBytes[] {
  const p = projectIpcSchema(messages[0]!.header, columns);
  const out: IpcMessageBytes[] = [{ header: p.schemaHeader, body: new Uint8Array(0) }];
  for (const m of messages.slice(1)) {
    const projected = p.project(m);
    if (projected === null) continue;
    expect(isSlicedFrom(projected.body, m.body)).toBe(true);
    out.push({ header: projected.header, body: contiguous(projected.body) });
  }
  return out;
}

function validate(messages: readonly IpcMessageBytes[]): void {
  const v = new IpcStreamValidator();
  for (const m of messages) v.accept(m.header, m.body);
}

/** Subsets to try: each column alone, the columns reversed, and every other column. */
function subsets(names: string[]): string[][] {
  const out = names.map((n) => [n]);
  if (names.length > 1) out.push([...names].reverse(), names.filter((_, i) => i % 2 === 0));
  return out;
}

describe("projectIpcSchema over the conformance corpus", () => {
  it.each(streams.map((f) => [path.basename(f), f]))("%s: every subset validates and decodes to the selected columns", (_name, file) => {
    const bytes = fs.readFileSync(file);
    const messages = splitIpcStream(bytes);
    const names = readSchema(messages[0]!.header).fields.map((f) => f.name);
    if (new Set(names).size !== names.length) {
      // Duplicate names: the ambiguous one is refused, a unique one still works.
      const dup = names.find((n, i) => names.indexOf(n) !== i)!;
      expect(flightErrorOf(() => projectIpcSchema(messages[0]!.header, [dup])).message).toContain("ambiguous");
      const unique = names.filter((n) => names.indexOf(n) === names.lastIndexOf(n));
      if (unique.length > 0) validate(project(messages, unique));
      return;
    }
    let original;
    try {
      original = tableFromIPC(bytes);
    } catch {
      original = undefined; // codecs, list views, run-end encoding: validated only (pyarrow checks values)
    }
    for (const columns of subsets(names)) {
      const out = project(messages, columns);
      validate(out);
      const schema = readSchema(out[0]!.header);
      expect(schema.fields.map((f) => f.name)).toEqual(columns);
      const rows = (ms: readonly IpcMessageBytes[]) =>
        ms.slice(1).reduce((n, m) => {
          const info = readMessageHeader(m.header, m.body);
          return n + (info.kind === MessageKind.RECORD_BATCH ? info.rows : 0);
        }, 0);
      expect(rows(out)).toBe(rows(messages));
      if (original !== undefined) {
        const projected = tableFromIPC(joinIpcStream(out));
        const expected = original.select(columns);
        expect(projected.schema.toString()).toBe(expected.schema.toString());
        expect(projected.numRows).toBe(expected.numRows);
        // apache-arrow's select on a table with no batches makes one empty batch, which
        // changes the bytes it writes; values are compared wherever there are rows.
        if (expected.numRows > 0) expect(Buffer.compare(tableToIPC(projected), tableToIPC(expected))).toBe(0);
      }
    }
  });

  it("drops the dictionary batches of columns left out and keeps the others unchanged", () => {
    const file = streams.find((f) => path.basename(f) === "generated_dictionary.stream")!;
    const messages = splitIpcStream(fs.readFileSync(file));
    const schema = readSchema(messages[0]!.header);
    const encoded = schema.fields.filter((f) => f.dictionary !== undefined);
    expect(encoded.length).toBeGreaterThan(1);
    const keep = encoded[0]!;
    const p = projectIpcSchema(messages[0]!.header, [keep.name]);
    const dictMessages = messages.filter((m) => readMessageHeader(m.header, m.body).kind === MessageKind.DICTIONARY_BATCH);
    const kept = dictMessages.map((m) => p.project(m)).filter((m) => m !== null);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(dictMessages.length);
    for (const m of kept) expect(readMessageHeader(m!.header, m!.body).dictionaryId).toBe(keep.dictionary!.id);
    // A kept dictionary batch is the very message it was.
    const same = dictMessages.find((m) => readMessageHeader(m.header, m.body).dictionaryId === keep.dictionary!.id)!;
    expect(p.project(same)).toBe(same);
  });

  it("slices bodies held as many chunks (as large received bodies are stored) to the same bytes", () => {
    for (const name of ["generated_primitive.stream", "generated_binary_view.stream", "generated_nested.stream", "generated_zstd.stream"]) {
      const messages = splitIpcStream(fs.readFileSync(streams.find((f) => path.basename(f) === name)!));
      const names = readSchema(messages[0]!.header).fields.map((f) => f.name);
      const columns = names.filter((_, i) => i % 2 === 1);
      const p = projectIpcSchema(messages[0]!.header, columns);
      for (const m of messages.slice(1)) {
        const whole = p.project(m);
        // Cut the body at every 7th byte: buffers then start and end inside chunks and span several.
        const pieces: Uint8Array[] = [];
        for (let i = 0; i < m.body.byteLength; i += 7) pieces.push(m.body.subarray(i, Math.min(i + 7, m.body.byteLength)));
        const chunked = p.project({ header: m.header, body: new ByteChunks(pieces) });
        expect(chunked === null).toBe(whole === null);
        if (whole === null || chunked === null) continue;
        expect(Buffer.compare(chunked.header, whole.header)).toBe(0);
        expect(Buffer.compare(contiguous(chunked.body), contiguous(whole.body))).toBe(0);
        expect(isSlicedFrom(chunked.body, new ByteChunks(pieces))).toBe(true);
      }
    }
  });

  it("keeps the compression field of compressed batches", () => {
    const file = streams.find((f) => path.basename(f) === "generated_zstd.stream")!;
    const messages = splitIpcStream(fs.readFileSync(file));
    const names = readSchema(messages[0]!.header).fields.map((f) => f.name);
    const out = project(messages, [names[names.length - 1]!]);
    const batches = out.slice(1).map((m) => readMessageHeader(m.header, m.body));
    expect(batches.length).toBeGreaterThan(0);
    for (const b of batches) expect(b.compression).toBe("zstd");
  });

  it("aligns every buffer of the new body to 8 bytes", () => {
    const file = streams.find((f) => path.basename(f) === "generated_primitive.stream")!;
    const messages = splitIpcStream(fs.readFileSync(file));
    const names = readSchema(messages[0]!.header).fields.map((f) => f.name);
    const out = project(messages, names.slice(0, 5));
    for (const m of out.slice(1)) {
      expect(m.body.byteLength % 8).toBe(0);
    }
    validate(out);
  });

  it("refuses unknown, repeated and missing columns with INVALID_ARGUMENT naming them", () => {
    const file = streams.find((f) => path.basename(f) === "generated_primitive.stream")!;
    const header = splitIpcStream(fs.readFileSync(file))[0]!.header;
    const names = readSchema(header).fields.map((f) => f.name);
    const unknown = flightErrorOf(() => projectIpcSchema(header, ["no_such_column"]));
    expect(unknown.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(unknown.message).toContain('"no_such_column"');
    const twice = flightErrorOf(() => projectIpcSchema(header, [names[0]!, names[0]!]));
    expect(twice.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(twice.message).toContain("twice");
    expect(flightErrorOf(() => projectIpcSchema(header, [])).code).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("refuses a batch that does not match the schema with DATA_LOSS", () => {
    const primitive = splitIpcStream(fs.readFileSync(streams.find((f) => path.basename(f) === "generated_primitive.stream")!));
    const nested = splitIpcStream(fs.readFileSync(streams.find((f) => path.basename(f) === "generated_nested.stream")!));
    const p = projectIpcSchema(primitive[0]!.header, [readSchema(primitive[0]!.header).fields[0]!.name]);
    const batch = nested.find((m) => readMessageHeader(m.header, m.body).kind === MessageKind.RECORD_BATCH)!;
    expect(flightErrorOf(() => p.project(batch)).code).toBe(StatusCode.DATA_LOSS);
  });
});
