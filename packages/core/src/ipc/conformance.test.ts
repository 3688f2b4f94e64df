// The shared conformance corpus: real streams from Arrow C++ must pass, OSS-Fuzz crashers
// must be refused with INVALID_ARGUMENT or RESOURCE_EXHAUSTED, quickly.
import * as fs from "fs";
import * as path from "path";
import { tableFromIPC, tableToIPC } from "apache-arrow";
import { FlightError } from "../flight-error";
import { StatusCode } from "../status-code";
import { joinIpcStream, splitIpcStream } from "./ipc-stream";
import { IpcStreamValidator } from "./stream-validator";
import { listFiles, requireConformance } from "./test-helpers";

const corpus = requireConformance();
const streams = listFiles(path.join(corpus, "ipc")).filter((f) => f.endsWith(".stream"));
const fuzzFiles = listFiles(path.join(corpus, "fuzz"));
const rel = (f: string) => path.relative(corpus, f);

function validateAll(bytes: Uint8Array): number {
  const validator = new IpcStreamValidator();
  const messages = splitIpcStream(bytes);
  for (const m of messages) validator.accept(m.header, m.body);
  return messages.length;
}

describe("conformance streams", () => {
  it("has the whole corpus", () => {
    expect(streams).toHaveLength(37);
    expect(fuzzFiles).toHaveLength(69);
  });

  it.each(streams.map((f) => [rel(f), f]))("%s splits and validates", (_name, file) => {
    const bytes = fs.readFileSync(file);
    expect(validateAll(bytes)).toBeGreaterThan(0);
  });

  it.each(streams.map((f) => [rel(f), f]))("%s round-trips through joinIpcStream", (_name, file) => {
    const bytes = fs.readFileSync(file);
    const messages = splitIpcStream(bytes);
    const again = splitIpcStream(joinIpcStream(messages));
    expect(again).toHaveLength(messages.length);
    again.forEach((m, i) => {
      expect(Buffer.compare(m.header, messages[i]!.header)).toBe(0);
      expect(Buffer.compare(m.body, messages[i]!.body)).toBe(0);
    });
  });

  it("decodes to equal tables with apache-arrow wherever apache-arrow can decode the original", () => {
    const undecodable: string[] = [];
    for (const file of streams) {
      const bytes = fs.readFileSync(file);
      let original;
      try {
        original = tableFromIPC(bytes);
      } catch {
        undecodable.push(path.basename(file, ".stream"));
        continue;
      }
      const rejoined = tableFromIPC(joinIpcStream(splitIpcStream(bytes)));
      expect(rejoined.numRows).toBe(original.numRows);
      expect(rejoined.schema.toString()).toBe(original.schema.toString());
      // Re-encoding is deterministic, so equal bytes mean equal tables, value for value.
      expect(Buffer.compare(tableToIPC(rejoined), tableToIPC(original))).toBe(0);
    }
    // apache-arrow 21 has no codecs, list views or run-end encoding; the rest must decode.
    expect(undecodable.sort()).toEqual([
      "generated_list_view",
      "generated_lz4",
      "generated_run_end_encoded",
      "generated_uncompressible_lz4",
      "generated_uncompressible_zstd",
      "generated_zstd",
    ]);
  });

  it("accepts what the apache-arrow writer produces for the same datasets", () => {
    for (const file of streams) {
      let table;
      try {
        table = tableFromIPC(fs.readFileSync(file));
      } catch {
        continue;
      }
      expect(validateAll(tableToIPC(table, "stream"))).toBeGreaterThan(0);
    }
  });
});

/** What a refusal was about, by its message, to show which checks catch the fuzz corpus. */
function category(e: FlightError): string {
  const m = e.message;
  if (m.startsWith("IPC stream")) return "stream framing";
  if (m.startsWith("invalid IPC message header")) return "flatbuffer bounds";
  if (/metadata version/.test(m)) return "metadata version";
  if (/field node/.test(m)) return "field node length/null count";
  if (/^buffer \d+/.test(m)) return "buffer offset/length vs body";
  return "schema and batch layout";
}

describe("fuzz corpus (OSS-Fuzz crashers)", () => {
  const seen = new Map<string, number>();

  it.each(fuzzFiles.map((f) => [path.basename(f), f]))("%s is refused", (_name, file) => {
    const bytes = fs.readFileSync(file);
    const started = process.hrtime.bigint();
    let error: unknown;
    try {
      validateAll(bytes);
    } catch (e) {
      error = e;
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeLessThan(1000);
    expect(error).toBeInstanceOf(FlightError);
    const code = (error as FlightError).code;
    expect([StatusCode.INVALID_ARGUMENT, StatusCode.RESOURCE_EXHAUSTED]).toContain(code);
    // Messages say what is wrong, briefly, without echoing payload.
    expect((error as FlightError).message.length).toBeLessThan(300);
    const c = category(error as FlightError);
    seen.set(c, (seen.get(c) ?? 0) + 1);
  });

  it("were all refused by an identified check", () => {
    let total = 0;
    for (const n of seen.values()) total += n;
    expect(total).toBe(fuzzFiles.length);
  });
});

describe("mutated conformance streams", () => {
  it("either pass or are refused with INVALID_ARGUMENT / RESOURCE_EXHAUSTED, never another error", () => {
    // Deterministic pseudo-random byte mutations, biased towards the headers where parsing happens.
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    const outcomes = { accepted: 0, refused: 0 };
    for (const file of streams) {
      const original = fs.readFileSync(file);
      const messages = splitIpcStream(original);
      for (let k = 0; k < 150; k++) {
        const bytes = Uint8Array.from(original);
        for (let j = 0, flips = 1 + random(4); j < flips; j++) {
          const m = messages[random(messages.length)]!;
          const pos = random(4) === 0 ? random(bytes.length) : m.header.byteOffset - original.byteOffset + random(m.header.length);
          bytes[pos] = [0x00, 0xff, random(256), bytes[pos]! ^ (1 << random(8))][random(4)]!;
        }
        try {
          validateAll(bytes);
          outcomes.accepted++;
        } catch (e) {
          if (!(e instanceof FlightError)) throw e;
          expect([StatusCode.INVALID_ARGUMENT, StatusCode.RESOURCE_EXHAUSTED]).toContain(e.code);
          outcomes.refused++;
        }
      }
    }
    expect(outcomes.refused).toBeGreaterThan(outcomes.accepted);
  });
});
