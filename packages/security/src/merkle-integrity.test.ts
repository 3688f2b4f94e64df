import {
  contiguous,
  FlightError,
  MemoryStore,
  MessageKind,
  StatusCode,
  splitServerParts,
  type ActionSetting,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type PollInfo,
  type StatsSetting,
  type StoredFlight,
  type StoredMessage,
} from "@blackice/flight-core";
import { flightDataLeaf, flightDataLeafHash } from "./flight-data-leaf";
import { merkleIntegrity } from "./merkle-integrity";
import { leafHash, merkleRoot } from "./merkle-tree";
import { readMerkleMetadata, type MerkleProof } from "./read-merkle-metadata";
import { collect, compose, fakeTerminal, flightInfo, fromArray, makeCall as makeBareCall } from "./test-call";
import { verifyBatchProof, verifyFlightStream } from "./verify-flight-stream";

const pathD = (...path: string[]): FlightDescriptor => ({ type: 1, cmd: new Uint8Array(0), path });

function msg(kind: number, header: string, body: number, meta = ""): StoredMessage {
  const b = Buffer.alloc(body);
  for (let i = 0; i < body; i++) b[i] = (i * 31 + header.length) & 0xff;
  return {
    header: Buffer.from(header),
    body: b,
    appMetadata: Buffer.from(meta),
    info: { kind: kind as 1 | 2 | 3, version: 4, bodyLength: body, rows: kind === MessageKind.RECORD_BATCH ? 10 : 0 },
    byteSize: header.length + body + meta.length,
  };
}

const toFlightData = (m: StoredMessage): FlightData => ({ flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: m.appMetadata });
/** A flight's messages in DoGet order (schema first), read through the store's stream. */
async function messagesOf(f: StoredFlight): Promise<StoredMessage[]> {
  const out = [f.schema];
  for await (const m of f.messages()) out.push(m);
  return out;
}

let clock = 1_000_000;
let store: MemoryStore;
beforeEach(() => {
  store = new MemoryStore({ enableGC: false, now: () => clock });
});
afterEach(() => store.close());

/** Calls carry the server's store: here the test's store. */
const makeCall: typeof makeBareCall = (method, request, options = {}) => makeBareCall(method, request, { store, ...options });

async function put(d: FlightDescriptor, batches: StoredMessage[], schema = msg(MessageKind.SCHEMA, "schema-header-bytes", 0, "schema-meta")): Promise<StoredFlight> {
  const tx = await store.beginPut(d, schema);
  for (const b of batches) await tx.append(b);
  return tx.commit();
}

const batches = (n: number, tag = "b") => Array.from({ length: n }, (_, i) => msg(MessageKind.RECORD_BATCH, `${tag}-header-${i}`, 64 + i * 7, i % 2 ? `meta-${i}` : ""));

function setup(info?: FlightInfo) {
  const parts = merkleIntegrity();
  const { settings } = splitServerParts(parts);
  const action = settings.find((s): s is ActionSetting => s.kind === "action")!;
  const stats = settings.find((s): s is StatsSetting => s.kind === "stats")!;
  const terminal = fakeTerminal({ info });
  return { handler: compose(parts, terminal.handler), action, stats: () => stats.collect() as Record<string, number> };
}

async function proofOf(action: ActionSetting, body: unknown): Promise<MerkleProof> {
  const out = await action.handler(Buffer.from(JSON.stringify(body)), makeCall("doAction", { type: "merkle-proof", body: new Uint8Array(0) }));
  const r = Array.isArray(out) ? out[0] : out;
  return JSON.parse(Buffer.from((r as { body: Uint8Array }).body).toString());
}

async function errorOf(p: Promise<unknown>): Promise<FlightError> {
  return p.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: FlightError) => e,
  );
}

describe("flightDataLeaf", () => {
  it("is u32be(len header) ‖ header ‖ u64be(len body) ‖ body ‖ u32be(len meta) ‖ meta, for both shapes", () => {
    const m = { dataHeader: Buffer.from("HH"), dataBody: Buffer.from("BBB"), appMetadata: Buffer.from("M"), flightDescriptor: undefined };
    expect(flightDataLeaf(m).toString("hex")).toBe("00000002" + "4848" + "0000000000000003" + "424242" + "00000001" + "4d");
    expect(flightDataLeaf({ header: m.dataHeader, body: m.dataBody, appMetadata: m.appMetadata }).equals(flightDataLeaf(m))).toBe(true);
    expect(flightDataLeafHash(m).equals(leafHash(flightDataLeaf(m)))).toBe(true);
  });

  it("tells apart messages whose parts concatenate to the same bytes", () => {
    const a = { dataHeader: Buffer.from("ab"), dataBody: Buffer.from("c"), appMetadata: Buffer.alloc(0) };
    const b = { dataHeader: Buffer.from("a"), dataBody: Buffer.from("bc"), appMetadata: Buffer.alloc(0) };
    const c = { dataHeader: Buffer.from("a"), dataBody: Buffer.from("b"), appMetadata: Buffer.from("c") };
    expect(new Set([a, b, c].map((m) => flightDataLeafHash(m).toString("hex"))).size).toBe(3);
  });
});

describe("merkleIntegrity", () => {
  it("adds the root and leaf count of schema + messages to GetFlightInfo's app_metadata", async () => {
    const f = await put(pathD("telemetry", "cpu"), batches(5));
    const t = setup();
    const info = (await t.handler(makeCall("getFlightInfo", pathD("telemetry", "cpu")))) as FlightInfo;
    const json = JSON.parse(Buffer.from(info.appMetadata).toString());
    const expectedRoot = merkleRoot((await messagesOf(f)).map(flightDataLeaf)).toString("hex");
    expect(json).toEqual({ merkle: { alg: "sha256-rfc6962", root: expectedRoot, leaves: 6 } });
    expect(readMerkleMetadata(info)).toEqual({ alg: "sha256-rfc6962", root: expectedRoot, leaves: 6 });
  });

  it("annotates PollFlightInfo's info too", async () => {
    await put(pathD("p"), batches(2));
    const t = setup();
    const poll = (await t.handler(makeCall("pollFlightInfo", pathD("p")))) as PollInfo;
    expect(readMerkleMetadata(poll.info!)?.leaves).toBe(3);
  });

  it("merges into existing JSON-object metadata and leaves other metadata alone", async () => {
    await put(pathD("t"), batches(1));
    const merged = (await setup(flightInfo(["t"], Buffer.from('{"owner":"ops"}'))).handler(makeCall("getFlightInfo", pathD("t")))) as FlightInfo;
    expect(JSON.parse(Buffer.from(merged.appMetadata).toString())).toMatchObject({ owner: "ops", merkle: { leaves: 2 } });
    const t = setup(flightInfo(["t"], Buffer.from([0xde, 0xad])));
    const untouched = (await t.handler(makeCall("getFlightInfo", pathD("t")))) as FlightInfo;
    expect(Buffer.from(untouched.appMetadata).toString("hex")).toBe("dead");
    expect(t.stats().skipped).toBe(1);
  });

  it("caches roots per flight version: a repeat is a hit, an append is a miss with a new root", async () => {
    await put(pathD("c"), batches(3));
    const t = setup();
    const get = async () => readMerkleMetadata((await t.handler(makeCall("getFlightInfo", pathD("c")))) as FlightInfo)!;
    const first = await get();
    const again = await get();
    expect(again).toEqual(first);
    expect(t.stats()).toMatchObject({ hits: 1, misses: 1, cachedFlights: 1 });
    clock += 10;
    await put(pathD("c"), batches(2, "more"));
    const after = await get();
    expect(after.leaves).toBe(6);
    expect(after.root).not.toBe(first.root);
    expect(t.stats()).toMatchObject({ hits: 1, misses: 2, cachedFlights: 1 }); // the old version was dropped
  });

  it("leaves the info as it is when the flight is gone", async () => {
    const t = setup();
    const info = (await t.handler(makeCall("getFlightInfo", pathD("none")))) as FlightInfo;
    expect(info.appMetadata.length).toBe(0);
  });

  it("merkle-proof: every message's proof verifies against the FlightInfo's root (path and ticket forms)", async () => {
    const f = await put(pathD("proofs"), batches(6));
    const t = setup();
    const expected = readMerkleMetadata((await t.handler(makeCall("getFlightInfo", pathD("proofs")))) as FlightInfo)!;
    const all = await messagesOf(f);
    for (let i = 0; i < all.length; i++) {
      const body = i % 2 === 0 ? { path: ["proofs"], index: i } : { ticket: Buffer.from(store.ticketFor(f)).toString(), index: i };
      const proof = await proofOf(t.action, body);
      expect(proof).toMatchObject({ alg: "sha256-rfc6962", root: expected.root, leaves: 7, index: i });
      expect(verifyBatchProof(toFlightData(all[i]!), proof, expected).index).toBe(i);
      // the proof of one message does not vouch for another
      expect(() => verifyBatchProof(toFlightData(all[(i + 1) % all.length]!), proof, expected)).toThrow(FlightError);
    }
  });

  it("merkle-proof refuses a bad body, an unknown flight, an index past the end", async () => {
    await put(pathD("r"), batches(1));
    const t = setup();
    expect((await errorOf(t.action.handler(Buffer.from("{nope"), makeCall("doAction", { type: "x", body: new Uint8Array(0) })) as Promise<unknown>)).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await errorOf(proofOf(t.action, { path: ["r"], index: -1 }))).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((await errorOf(proofOf(t.action, { path: ["missing"], index: 0 }))).code).toBe(StatusCode.NOT_FOUND);
    expect((await errorOf(proofOf(t.action, { path: ["r"], index: 2 }))).code).toBe(StatusCode.OUT_OF_RANGE);
  });
});

describe("verifyFlightStream", () => {
  async function fixture(n = 5) {
    const f = await put(pathD("s"), batches(n));
    const t = setup();
    const expected = readMerkleMetadata((await t.handler(makeCall("getFlightInfo", pathD("s")))) as FlightInfo)!;
    return { data: (await messagesOf(f)).map(toFlightData), expected };
  }
  const dataLoss = async (p: Promise<unknown>) => {
    const err = await errorOf(p);
    expect(err).toBeInstanceOf(FlightError);
    expect(err.code).toBe(StatusCode.DATA_LOSS);
  };

  it("passes an intact stream through, message for message", async () => {
    const { data, expected } = await fixture();
    const out = await collect(verifyFlightStream(fromArray(data), expected));
    expect(out).toEqual(data);
  });

  it("fails with DATA_LOSS when one bit flips anywhere in header, body or app_metadata of any message", async () => {
    const { data, expected } = await fixture(3);
    let trials = 0;
    for (let m = 0; m < data.length; m++) {
      for (const part of ["dataHeader", "dataBody", "appMetadata"] as const) {
        const len = data[m]![part].byteLength;
        for (let pos = 0; pos < len; pos += Math.max(1, Math.floor(len / 9))) {
          const tampered = data.map((d) => ({ ...d }));
          const bytes = Buffer.from(contiguous(data[m]![part]));
          bytes[pos]! ^= 1 << (pos % 8);
          tampered[m] = { ...tampered[m]!, [part]: bytes };
          await dataLoss(collect(verifyFlightStream(fromArray(tampered), expected)));
          trials++;
        }
      }
    }
    expect(trials).toBeGreaterThan(60);
  });

  it("fails on a missing, extra, reordered or moved-between-parts message", async () => {
    const { data, expected } = await fixture();
    await dataLoss(collect(verifyFlightStream(fromArray(data.slice(0, -1)), expected)));
    await dataLoss(collect(verifyFlightStream(fromArray([...data, data[1]!]), expected)));
    await dataLoss(collect(verifyFlightStream(fromArray([data[0]!, data[2]!, data[1]!, ...data.slice(3)]), expected)));
    const moved = data.map((d) => ({ ...d }));
    moved[1] = { ...moved[1]!, dataHeader: Buffer.concat([moved[1]!.dataHeader, contiguous(moved[1]!.dataBody).subarray(0, 1)]), dataBody: contiguous(moved[1]!.dataBody).subarray(1) };
    await dataLoss(collect(verifyFlightStream(fromArray(moved), expected)));
  });

  it("never hands on the last covered message when the root does not match", async () => {
    const { data, expected } = await fixture(2);
    const tampered = data.map((d) => ({ ...d }));
    tampered[0] = { ...tampered[0]!, appMetadata: Buffer.from("forged") };
    const seen: FlightData[] = [];
    await dataLoss(
      (async () => {
        for await (const m of verifyFlightStream(fromArray(tampered), expected)) seen.push(m);
      })(),
    );
    expect(seen).toHaveLength(data.length - 1);
  });

  it("with allowAppended, checks the covered messages and stops before the appended ones", async () => {
    const { data, expected } = await fixture();
    const extra = { ...data[1]!, appMetadata: Buffer.from("appended later") };
    const out = await collect(verifyFlightStream(fromArray([...data, extra]), expected, { allowAppended: true }));
    expect(out).toHaveLength(data.length);
  });

  it("refuses a malformed expectation at once (TypeError)", () => {
    expect(() => verifyFlightStream(fromArray([]), { root: "abc", leaves: 1 })).toThrow(TypeError);
    expect(() => verifyFlightStream(fromArray([]), { root: "00".repeat(32), leaves: -1 })).toThrow(
      "verifyFlightStream: expected.leaves must be an integer from 0 to 9007199254740991; got -1",
    );
    expect(() => verifyFlightStream(fromArray([]), { root: "00".repeat(32), leaves: 1 }, { allowAppended: "yes" as never })).toThrow(
      new TypeError('verifyFlightStream: allowAppended must be a boolean; got "yes"'),
    );
  });

  it("verifyBatchProof refuses a malformed proof, a proof for another root, a tampered proof", async () => {
    const { data, expected } = await fixture();
    const t = setup();
    const proof = await proofOf(t.action, { path: ["s"], index: 2 });
    expect(() => verifyBatchProof(data[2]!, "not json")).toThrow(/not valid JSON/);
    expect(() => verifyBatchProof(data[2]!, { ...proof, proof: ["xyz"] })).toThrow(/malformed/);
    expect(() => verifyBatchProof(data[2]!, proof, { root: "00".repeat(32), leaves: expected.leaves })).toThrow(/different root/);
    const bad = { ...proof, proof: proof.proof.map((h, i) => (i === 0 ? (h[0] === "0" ? "1" : "0") + h.slice(1) : h)) };
    expect(() => verifyBatchProof(data[2]!, bad, expected)).toThrow(/does not lead to the root/);
    expect(() => verifyBatchProof(data[2]!, Buffer.from(JSON.stringify(proof)), expected)).not.toThrow();
  });
});

describe("merkleIntegrity reads the call's store", () => {
  it("takes no store: it refuses the old option and serves from whichever store the call carries", async () => {
    expect(() => merkleIntegrity({ store } as never)).toThrow(/the store option is gone/);
    const other = new MemoryStore({ enableGC: false });
    const tx = await other.beginPut(pathD("elsewhere"), msg(MessageKind.SCHEMA, "s", 0));
    await tx.append(msg(MessageKind.RECORD_BATCH, "b", 8));
    await tx.commit();
    const t = setup();
    const onOther = (await t.handler(makeBareCall("getFlightInfo", pathD("elsewhere"), { store: other }))) as FlightInfo;
    expect(readMerkleMetadata(onOther)?.leaves).toBe(2);
    // The test's own store has no such flight: nothing to annotate.
    const onStore = (await t.handler(makeCall("getFlightInfo", pathD("elsewhere")))) as FlightInfo;
    expect(onStore.appMetadata.length).toBe(0);
    await other.close();
  });
});
