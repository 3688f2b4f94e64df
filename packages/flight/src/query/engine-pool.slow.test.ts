import { tableFromArrays, tableFromIPC, tableToIPC, type Table } from "apache-arrow";
import { FlightError, StatusCode, splitIpcStream, type FlightData, type SqlTableRef } from "@blackice/flight-core";
import { encapsulateMessage } from "../server/ipc-encapsulate";
import { createQueryEngine } from "./engine-pool";
import type { EngineTable, QueryEngine } from "./query-engine";

// The engine with real nodejs-polars processes (slow tier: it starts child processes).

function engineTable(table: Table, declared?: number): EngineTable {
  const messages = splitIpcStream(tableToIPC(table, "stream"));
  const bytes = messages.reduce((n, m) => n + m.header.byteLength + m.body.byteLength, 0);
  return {
    schema: encapsulateMessage(messages[0].header),
    bytes: declared ?? bytes,
    messages: async function* () {
      for (const m of messages) yield { flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: new Uint8Array(0) } satisfies FlightData;
    },
  };
}

async function collect(messages: AsyncIterable<FlightData>): Promise<Table> {
  const parts: Uint8Array[] = [];
  for await (const m of messages) {
    const len = Buffer.alloc(8);
    const padded = Math.ceil(m.dataHeader.byteLength / 8) * 8;
    len.writeUInt32LE(0xffffffff, 0);
    len.writeInt32LE(padded, 4);
    parts.push(len, m.dataHeader, new Uint8Array(padded - m.dataHeader.byteLength), m.dataBody as Uint8Array);
  }
  return tableFromIPC(Buffer.concat(parts));
}

const codeOf = async (p: Promise<unknown>): Promise<FlightError> => {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof FlightError)) throw new Error(`expected a FlightError, got ${String(e)}`);
  return e;
};

const n = 10_000;
const telemetry = tableFromArrays({
  host: Array.from({ length: n }, (_, i) => `host-${i % 4}`),
  cpu: Float64Array.from({ length: n }, (_, i) => (i % 100) / 100),
  id: Int32Array.from({ length: n }, (_, i) => i),
});
const tables = new Map<string, Table>([["telemetry/host-1", telemetry]]);
const lookup = async (ref: SqlTableRef) => {
  const t = tables.get(ref.name);
  return t === undefined ? undefined : engineTable(t);
};

describe("createQueryEngine", () => {
  let engine: QueryEngine;
  beforeAll(() => {
    engine = createQueryEngine({ processes: 1, maxQueue: 1, timeoutMs: 20_000 });
  });
  afterAll(async () => {
    await engine.close();
  });

  it("runs a statement over the tables it names and returns validated IPC", async () => {
    const result = await engine.run({ sql: 'SELECT host, count(*) AS n, max(cpu) AS top FROM "telemetry/host-1" WHERE cpu >= 0.5 GROUP BY host ORDER BY host', table: lookup });
    const t = await collect(result.messages);
    expect(result.rows).toBe(4);
    for (const k of ["sendMs", "receiveMs", "loadMs", "runMs", "encodeMs"] as const) expect(result.timings[k]).toBeGreaterThanOrEqual(0);
    expect(t.numRows).toBe(4);
    const expected = [0, 1, 2, 3].map((h) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 4 === h && (i % 100) / 100 >= 0.5));
    expect([...t.getChild("host")!]).toEqual(["host-0", "host-1", "host-2", "host-3"]);
    expect([...t.getChild("n")!].map(Number)).toEqual(expected.map((rows) => rows.length));
    expect([...t.getChild("top")!]).toEqual(expected.map((rows) => Math.max(...rows.map((i) => (i % 100) / 100))));
    const schema = await engine.resultSchema({ sql: 'SELECT host, count(*) AS n, max(cpu) AS top FROM "telemetry/host-1" WHERE cpu >= 0.5 GROUP BY host ORDER BY host', table: lookup });
    expect(Buffer.from(schema)).toEqual(Buffer.from(result.schema));
  });

  it("gives the engine's message for SQL that does not parse or does not plan", async () => {
    const bad = await codeOf(engine.run({ sql: "SELEC x FROM y", table: lookup }));
    expect(bad.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(bad.message).toMatch(/sql parser error/); // polars' own parser's words
    const column = await codeOf(engine.run({ sql: 'SELECT nope FROM "telemetry/host-1"', table: lookup }));
    expect(column.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(column.message).toContain('unable to find column "nope"');
    const missing = await codeOf(engine.run({ sql: 'SELECT * FROM "no/such"', table: lookup }));
    expect(missing.code).toBe(StatusCode.NOT_FOUND);
    expect(missing.message).toContain('"no/such"');
  });

  it("refuses a query whose declared input is over the cap before loading anything", async () => {
    const small = createQueryEngine({ maxInputBytes: 1000 });
    let read = false;
    const e = await codeOf(
      small.run({
        sql: 'SELECT * FROM "telemetry/host-1"',
        table: async () => ({ ...engineTable(telemetry), messages: () => ((read = true), engineTable(telemetry).messages()) }),
      }),
    );
    expect(e.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(e.message).toContain("over the limit of 1000 bytes");
    expect(read).toBe(false);
    expect(small.stats().alive).toBe(0); // no process was started
    await small.close();
  });

  it("stops a table that yields more than it declared", async () => {
    const e = await codeOf(engine.run({ sql: 'SELECT * FROM "telemetry/host-1"', table: async () => engineTable(telemetry, 100) }));
    expect(e.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(e.message).toContain("more than the 100 bytes it declared");
    expect((await engine.run({ sql: 'SELECT count(*) AS n FROM "telemetry/host-1"', table: lookup })).rows).toBe(1); // the next query runs
  });

  it("refuses a result over the cap", async () => {
    const small = createQueryEngine({ maxResultBytes: 1024 });
    const e = await codeOf(small.run({ sql: 'SELECT * FROM "telemetry/host-1"', table: lookup }));
    expect(e.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(e.message).toContain("over the limit of 1024");
    await small.close();
  });

  // A cross join of 10 000 x 10 000 rows keeps polars busy in native code for seconds.
  const slow = 'SELECT count(*) AS n FROM "telemetry/host-1" a CROSS JOIN "telemetry/host-1" b WHERE a.cpu + b.cpu > a.id';

  it("kills the process at the deadline, and the next query gets a new one", async () => {
    const before = engine.stats().killed;
    const started = Date.now();
    const e = await codeOf(engine.run({ sql: slow, table: lookup, timeoutMs: 300 }));
    expect(e.code).toBe(StatusCode.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(engine.stats().killed).toBe(before + 1);
    expect((await engine.run({ sql: 'SELECT count(*) AS n FROM "telemetry/host-1"', table: lookup })).rows).toBe(1);
  });

  it("kills the process when the caller aborts, freeing the engine for the next query", async () => {
    const ac = new AbortController();
    const running = engine.run({ sql: slow, table: lookup, signal: ac.signal });
    setTimeout(() => ac.abort(), 300);
    const e = await codeOf(running);
    expect(e.code).toBe(StatusCode.CANCELLED);
    expect((await engine.run({ sql: 'SELECT count(*) AS n FROM "telemetry/host-1"', table: lookup })).rows).toBe(1);
    expect(engine.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it("refuses a query when the queue is full", async () => {
    const ac = new AbortController();
    const first = engine.run({ sql: slow, table: lookup, signal: ac.signal }); // running
    const second = engine.run({ sql: slow, table: lookup, signal: ac.signal }); // queued (maxQueue 1)
    await new Promise((r) => setTimeout(r, 100));
    const third = await codeOf(engine.run({ sql: slow, table: lookup }));
    expect(third.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(third.message).toContain("busy");
    ac.abort();
    expect((await codeOf(first)).code).toBe(StatusCode.CANCELLED);
    expect((await codeOf(second)).code).toBe(StatusCode.CANCELLED);
    expect(engine.stats().refused).toBeGreaterThanOrEqual(1);
  });

  it("runs concurrent queries on separate processes, each getting its own answer", async () => {
    const two = createQueryEngine({ processes: 2, maxQueue: 8 });
    try {
      const limits = [1, 2, 3, 4, 5, 6];
      const results = await Promise.all(limits.map((k) => two.run({ sql: `SELECT id FROM "telemetry/host-1" WHERE id < ${k * 10}`, table: lookup })));
      expect(results.map((r) => r.rows)).toEqual(limits.map((k) => k * 10));
      expect(two.stats()).toMatchObject({ alive: 2, running: 0, completed: 6, killed: 0 });
    } finally {
      await two.close();
    }
  });

  it("validates its options up front", () => {
    expect(() => createQueryEngine({ processes: 0 })).toThrow(/processes must be an integer from 1/);
    expect(() => createQueryEngine({ timeoutMs: -1 })).toThrow(TypeError);
    expect(() => createQueryEngine({ memoryLimitBytes: 1024 })).toThrow(/memoryLimitBytes/);
    expect(() => createQueryEngine({ nope: 1 } as never)).toThrow(/unknown option "nope"/);
  });
});

describe("the engine's memory cap", () => {
  it("ends a query that allocates past the process's address-space limit with RESOURCE_EXHAUSTED", async () => {
    const engine = createQueryEngine({ memoryLimitBytes: 2 * 1024 ** 3, timeoutMs: 60_000 });
    try {
      // 10 000 x 10 000 rows materialized (two float64 and two int32 columns): far over 2 GiB.
      const e = await codeOf(engine.run({ sql: 'SELECT a.cpu, b.cpu AS c2, a.id, b.id AS i2 FROM "telemetry/host-1" a CROSS JOIN "telemetry/host-1" b', table: lookup }));
      expect(e.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
      expect(e.message).toMatch(/ran out of memory|stopped by SIG/);
      expect((await engine.run({ sql: 'SELECT count(*) AS n FROM "telemetry/host-1"', table: lookup })).rows).toBe(1);
    } finally {
      await engine.close();
    }
  }, 120_000);
});
