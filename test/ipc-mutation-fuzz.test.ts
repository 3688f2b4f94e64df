import * as fs from "node:fs";
import fc from "fast-check";
import { FlightError, IpcStreamValidator, StatusCode, serverConfig, splitIpcStream, type FlightData } from "@blackice/flight-core";
import { FlightClient, createFlightServer, type FlightServer } from "@blackice/flight";
import { decodeFlightData, encodeFlightData } from "@blackice/flight/internal";
import { ipcStreams } from "./helpers/corpus";

// A mutation fuzzer (fast-check) over valid Arrow IPC streams: the conformance corpus
// (test/fixtures/conformance/ipc, every type Arrow's integration suite has, compressed and
// dictionary streams included). Each run takes a stream, mutates some of its messages
// (bit flips, overwritten bytes and int32 fields, truncation, insertion, swapped or dropped
// messages) and checks that:
// - the validator accepts a message or refuses it with a FlightError (INVALID_ARGUMENT or
//   RESOURCE_EXHAUSTED), never another exception, and quickly;
// - the FlightData decoder of the transport does the same for mutated wire bytes;
// - a server given the mutated stream as a DoPut answers OK or INVALID_ARGUMENT /
//   RESOURCE_EXHAUSTED, stays up, leaves other flights as they were, and serves a flight it
//   accepted exactly as it was sent.
// Seeds are random each run (so every run tries new input); a failure prints the seed and the
// shrunk counterexample. FUZZ_SEED and FUZZ_RUNS (a multiplier) replay or lengthen a run.

type Message = { header: Uint8Array; body: Uint8Array };

const seedStreams: Array<{ name: string; messages: Message[] }> = ipcStreams()
  .map(([name, file]) => ({ name, messages: splitIpcStream(new Uint8Array(fs.readFileSync(file))).map((m) => ({ header: m.header, body: m.body })) }))
  .filter((s) => s.messages.length > 0);

const scale = Number(process.env.FUZZ_RUNS ?? 1);
const params = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns: Math.max(1, Math.round(numRuns * scale)),
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
});

/** One change to a byte array, at a position taken modulo its length. */
const byteMutation = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    op: fc.constant("int32" as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(0, -1, 1, 0x7fffffff, -0x80000000, 1 << 30, 0xffff), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);
type ByteMutation = typeof byteMutation extends fc.Arbitrary<infer T> ? T : never;

function mutateBytes(input: Uint8Array, m: ByteMutation): Uint8Array {
  const n = input.byteLength;
  if (m.op === "insert") {
    const at = n === 0 ? 0 : m.at % (n + 1);
    const out = new Uint8Array(n + m.bytes.byteLength);
    out.set(input.subarray(0, at));
    out.set(m.bytes, at);
    out.set(input.subarray(at), at + m.bytes.byteLength);
    return out;
  }
  if (n === 0) return input;
  const at = m.at % n;
  if (m.op === "truncate") return input.slice(0, at);
  const out = input.slice();
  if (m.op === "flip") out[at]! ^= 1 << m.bit;
  else if (m.op === "set") out[at] = m.value;
  else if (at + 4 <= n) new DataView(out.buffer).setInt32(at, m.value, true);
  return out;
}

/** A change to a stream: a byte mutation of one message's header or body, or a message moved or dropped. */
const streamMutation = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("header" as const), index: fc.nat(), change: byteMutation }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("body" as const), index: fc.nat(), change: byteMutation }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("swap" as const), index: fc.nat(), other: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("drop" as const), index: fc.nat() }) },
);
type StreamMutation = typeof streamMutation extends fc.Arbitrary<infer T> ? T : never;

function mutateStream(input: readonly Message[], mutations: readonly StreamMutation[]): Message[] {
  const out = input.map((m) => ({ ...m }));
  for (const m of mutations) {
    if (out.length === 0) break;
    const i = m.index % out.length;
    if (m.op === "header") out[i] = { ...out[i]!, header: mutateBytes(out[i]!.header, m.change) };
    else if (m.op === "body") out[i] = { ...out[i]!, body: mutateBytes(out[i]!.body, m.change) };
    else if (m.op === "swap") {
      const j = m.other % out.length;
      [out[i], out[j]] = [out[j]!, out[i]!];
    } else out.splice(i, 1);
  }
  return out;
}

const mutatedStream = fc
  .record({ seed: fc.nat({ max: seedStreams.length - 1 }), mutations: fc.array(streamMutation, { minLength: 1, maxLength: 4 }) })
  .map(({ seed, mutations }) => ({ name: seedStreams[seed]!.name, mutations, messages: mutateStream(seedStreams[seed]!.messages, mutations) }));

const REFUSALS: ReadonlySet<number> = new Set([StatusCode.INVALID_ARGUMENT, StatusCode.RESOURCE_EXHAUSTED]);

/** Runs `fn`; true if it returned, false if it threw a FlightError with a refusal code; anything else fails the property. */
function acceptsOrRefuses(fn: () => unknown, what: string): boolean {
  const t0 = performance.now();
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof FlightError)) throw new Error(`${what} threw a ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    if (!REFUSALS.has(err.code)) throw new Error(`${what} refused with code ${err.code}: ${err.message}`);
    return false;
  } finally {
    const ms = performance.now() - t0;
    if (ms > 1000) throw new Error(`${what} took ${ms.toFixed(0)} ms`);
  }
}

describe("mutation fuzzing of Arrow IPC input (fast-check)", () => {
  it(`has seed streams from the conformance corpus`, () => {
    expect(seedStreams.length).toBeGreaterThanOrEqual(30);
  });

  it("the validator accepts or refuses each mutated message with a FlightError, never crashes", () => {
    let refused = 0;
    let accepted = 0;
    fc.assert(
      fc.property(mutatedStream, ({ messages }) => {
        const validator = new IpcStreamValidator({ maxMessageBytes: 64 << 20 });
        for (const [i, m] of messages.entries()) {
          // The validator refuses without changing its state: carry on as a server that refuses a put would not, to reach deeper states too.
          if (acceptsOrRefuses(() => validator.accept(m.header, m.body), `accept(message ${i})`)) accepted++;
          else refused++;
        }
      }),
      params(3000),
    );
    // The mutations reach both outcomes (a fuzzer whose input is always refused tests nothing).
    expect(refused).toBeGreaterThan(100);
    expect(accepted).toBeGreaterThan(100);
  });

  it("the FlightData decoder accepts or refuses mutated wire bytes with a FlightError, never crashes", () => {
    const wire = fc
      .record({
        seed: fc.nat({ max: seedStreams.length - 1 }),
        index: fc.nat(),
        appMetadata: fc.uint8Array({ maxLength: 32 }),
        withDescriptor: fc.boolean(),
        changes: fc.array(byteMutation, { minLength: 1, maxLength: 4 }),
      })
      .map(({ seed, index, appMetadata, withDescriptor, changes }) => {
        const messages = seedStreams[seed]!.messages;
        const m = messages[index % messages.length]!;
        const data: FlightData = {
          flightDescriptor: withDescriptor ? { type: 1, path: ["fuzz", "x"], cmd: new Uint8Array(0) } : undefined,
          dataHeader: m.header,
          dataBody: m.body,
          appMetadata,
        };
        return changes.reduce<Uint8Array>((bytes, c) => mutateBytes(bytes, c), new Uint8Array(encodeFlightData(data)));
      });
    fc.assert(
      fc.property(wire, (bytes) => {
        acceptsOrRefuses(() => decodeFlightData(bytes, { maxDescriptorBytes: 4096 }), "decodeFlightData");
      }),
      params(3000),
    );
  });

  describe("against a server", () => {
    let server: FlightServer;
    let client: FlightClient;
    const keeper = seedStreams.find((s) => s.name.includes("primitive"))! ?? seedStreams[0]!;
    let keeperBytes: Buffer;

    const bytesOf = (messages: Array<{ dataHeader: Uint8Array; dataBody: unknown }>) =>
      Buffer.concat(messages.flatMap((m) => [Buffer.from(m.dataHeader), Buffer.from(m.dataBody as Uint8Array)]));

    async function read(path: string[]): Promise<FlightData[]> {
      const info = await client.getFlightInfo({ path });
      const out: FlightData[] = [];
      for await (const m of client.doGetRaw(info.endpoint[0]!.ticket!)) out.push(m);
      return out;
    }

    beforeAll(async () => {
      server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMessageBytes: 16 << 20 }));
      await server.start();
      client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
      for await (const _ of client.doPutRaw({ path: ["keeper"] }, keeper.messages.map((m) => ({ dataHeader: m.header, dataBody: m.body }))).results) void _;
      keeperBytes = bytesOf(await read(["keeper"]));
    });
    afterAll(async () => {
      client.close();
      await server.shutdown({ graceMs: 0 });
    });

    it("answers each mutated DoPut with OK or a refusal, stays up, and serves what it accepted exactly", async () => {
      let n = 0;
      const outcomes = { ok: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(mutatedStream, async ({ messages }) => {
          const path = ["fuzz", String(n++)];
          let code: StatusCode = StatusCode.OK;
          try {
            for await (const _ of client.doPutRaw({ path }, messages.map((m) => ({ dataHeader: m.header, dataBody: m.body }))).results) void _;
          } catch (err) {
            if (!(err instanceof FlightError)) throw err;
            code = err.code;
          }
          if (code === StatusCode.OK) {
            outcomes.ok++;
            // What is served is exactly what was sent (the schema first, then the rest in order).
            const sent = messages.filter((m) => m.header.byteLength > 0);
            expect(bytesOf(await read(path)).equals(bytesOf(sent.map((m) => ({ dataHeader: m.header, dataBody: m.body }))))).toBe(true);
          } else {
            outcomes.refused++;
            expect(REFUSALS.has(code)).toBe(true);
            // Nothing of a refused put is stored.
            await expect(client.getFlightInfo({ path })).rejects.toMatchObject({ code: StatusCode.NOT_FOUND });
          }
        }),
        params(150),
      );
      expect(outcomes.refused).toBeGreaterThan(10);
      // The server is up, and the flight stored before the fuzzing is as it was.
      expect(bytesOf(await read(["keeper"])).equals(keeperBytes)).toBe(true);
    });
  });
});
