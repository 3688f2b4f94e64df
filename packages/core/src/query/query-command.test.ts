import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { StatusCode } from "../status-code";
import {
  MAX_QUERY_TICKET_BYTES,
  QUERY_TICKET_PREFIX,
  encodeQueryTicket,
  isQueryTicket,
  parseQueryCommand,
  parseQueryTicket,
  readTarget,
  readTicketTarget,
  readTargets,
  readTicketTargets,
} from "./query-command";

const cmd = (text: string): FlightDescriptor => ({ type: DescriptorType.CMD, cmd: Buffer.from(text), path: [] });

function codeOf(fn: () => unknown): { code: StatusCode; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof FlightError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected a FlightError");
}

describe("parseQueryCommand", () => {
  it("reads flight and columns", () => {
    expect(parseQueryCommand(cmd('{"flight":["telemetry","host-1"],"columns":["ts","cpu"]}'))).toEqual({
      flight: { type: DescriptorType.PATH, cmd: new Uint8Array(0), path: ["telemetry", "host-1"] },
      columns: ["ts", "cpu"],
    });
    expect(parseQueryCommand(cmd(' {"flight":["a"]}'))?.columns).toBeUndefined();
  });

  it("leaves other descriptors alone", () => {
    expect(parseQueryCommand({ type: DescriptorType.PATH, cmd: new Uint8Array(0), path: ["a"] })).toBeUndefined();
    expect(parseQueryCommand(cmd("select 1"))).toBeUndefined();
    expect(parseQueryCommand(cmd('{"command":"project"}'))).toBeUndefined();
    expect(parseQueryCommand(cmd("{not json"))).toBeUndefined();
  });

  it("compiles where and limit into one statement over the flight, and keeps sql as given", () => {
    expect(parseQueryCommand(cmd('{"flight":["t","h-1"],"columns":["ts","c\\"x"],"where":"cpu > 0.9 --","limit":10}'))?.sql).toBe('SELECT "ts", "c""x" FROM "t/h-1"\nWHERE cpu > 0.9 --\nLIMIT 10');
    expect(parseQueryCommand(cmd('{"flight":["a"],"limit":0}'))?.sql).toBe('SELECT * FROM "a"\nLIMIT 0');
    expect(parseQueryCommand(cmd('{"flight":["a"],"columns":["x"]}'))?.sql).toBeUndefined(); // projection: no engine
    expect(parseQueryCommand(cmd('{"sql":"SELECT x FROM \\"a/b\\""}'))).toEqual({ sql: 'SELECT x FROM "a/b"' });
  });

  it.each([
    ['{"flight":["a"],"where":"x > 1 GROUP BY x"}', "no other clause"],
    ['{"flight":["a"],"where":"x > 1 LIMIT 5"}', "no other clause"],
    ['{"flight":["a"],"where":"x IN (SELECT y FROM \\"secret\\")"}', "only use the columns"],
    ['{"flight":["a"],"where":"x > 1 UNION SELECT * FROM \\"a\\""}', "no other clause"],
    ['{"flight":["a"],"where":""}', "non-empty"],
    ['{"flight":["a"],"where":7}', "non-empty"],
    ['{"flight":["a"],"limit":-1}', "limit"],
    ['{"flight":["a"],"limit":1.5}', "limit"],
    ['{"flight":["a/b"],"limit":1}', "no SQL table name"],
    ['{"sql":"SELECT 1","flight":["a"]}', "comes alone"],
    ['{"sql":5}', "must be a string"],
    ['{"sql":"SELEC x"}', "does not parse"],
  ])("refuses %s with INVALID_ARGUMENT (%s)", (text, message) => {
    const e = codeOf(() => parseQueryCommand(cmd(text)));
    expect(e.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(e.message).toContain(message);
  });

  it("names every flight a statement reads as a read target, in tickets too", () => {
    const sql = 'SELECT * FROM "a/b" JOIN "c" ON "a/b".k = c.k';
    expect(readTargets(cmd(JSON.stringify({ sql })))?.map((d) => d.path)).toEqual([["a", "b"], ["c"]]);
    expect(readTarget(cmd(JSON.stringify({ sql })))).toBeUndefined(); // several: the plural form says which
    const t = encodeQueryTicket({ sql });
    expect(parseQueryTicket(t)).toEqual({ sql });
    expect(readTicketTargets(t)?.map((x) => ("descriptor" in x ? x.descriptor.path : null))).toEqual([["a", "b"], ["c"]]);
    expect(readTicketTarget(t)).toBeUndefined();
    expect(readTicketTargets(Buffer.from(`${QUERY_TICKET_PREFIX}{"sql":"SELEC"}`))).toBeUndefined();
    expect(readTargets(cmd('{"sql":"SELEC"}'))).toBeUndefined();
  });

  it("refuses unknown keys and bad values with INVALID_ARGUMENT", () => {
    const unknown = codeOf(() => parseQueryCommand(cmd('{"flight":["a"],"colums":["x"]}')));
    expect(unknown).toEqual({ code: StatusCode.INVALID_ARGUMENT, message: expect.stringContaining('"colums"') });
    for (const text of [
      '{"flight":"a"}',
      '{"flight":[]}',
      '{"flight":[1]}',
      '{"flight":["a"],"columns":[]}',
      '{"flight":["a"],"columns":"x"}',
      '{"flight":["a"],"columns":["x","x"]}',
      '{"flight":["a"],"columns":[""]}',
    ]) {
      expect(codeOf(() => parseQueryCommand(cmd(text))).code).toBe(StatusCode.INVALID_ARGUMENT);
    }
  });
});

describe("query tickets", () => {
  it("round-trip and start with the prefix", () => {
    const t = encodeQueryTicket({ ticket: Buffer.from("p:telemetry/host-1"), columns: ["ts", "cpu"] });
    expect(isQueryTicket(t)).toBe(true);
    expect(Buffer.from(t).toString("utf8").startsWith(QUERY_TICKET_PREFIX)).toBe(true);
    const back = parseQueryTicket(t);
    expect(Buffer.from(back.ticket!).toString()).toBe("p:telemetry/host-1");
    expect(back.columns).toEqual(["ts", "cpu"]);
    expect(parseQueryTicket(encodeQueryTicket({ ticket: Buffer.from("x") })).columns).toBeUndefined();
  });

  it("are refused strictly when malformed, without echoing them", () => {
    const bad = [
      QUERY_TICKET_PREFIX,
      QUERY_TICKET_PREFIX + "[]",
      QUERY_TICKET_PREFIX + '{"ticket":"!!"}',
      QUERY_TICKET_PREFIX + '{"ticket":""}',
      QUERY_TICKET_PREFIX + '{"ticket":"cDph","extra":1}',
      QUERY_TICKET_PREFIX + '{"ticket":"cDph","columns":[]}',
      QUERY_TICKET_PREFIX + '{"ticket":"cDph","columns":["a","a"]}',
      QUERY_TICKET_PREFIX + '{"ticket":"cDph"',
      "p:a",
    ];
    for (const text of bad) {
      const e = codeOf(() => parseQueryTicket(Buffer.from(text)));
      expect(e.code).toBe(StatusCode.INVALID_ARGUMENT);
      expect(e.message).not.toContain("cDph");
    }
    const invalidUtf8 = Buffer.concat([Buffer.from(QUERY_TICKET_PREFIX), Buffer.from([0xff, 0xfe])]);
    expect(codeOf(() => parseQueryTicket(invalidUtf8)).code).toBe(StatusCode.INVALID_ARGUMENT);
    const long = Buffer.from(QUERY_TICKET_PREFIX + " ".repeat(MAX_QUERY_TICKET_BYTES));
    expect(codeOf(() => parseQueryTicket(long)).code).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("are bounded when issued", () => {
    const columns = Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(1000, "x"));
    expect(codeOf(() => encodeQueryTicket({ ticket: Buffer.from("p:a"), columns })).code).toBe(StatusCode.RESOURCE_EXHAUSTED);
  });
});

describe("read targets (for access checks)", () => {
  it("name the queried flight, the descriptor itself, or nothing for a malformed query", () => {
    expect(readTarget(cmd('{"flight":["secret","x"]}'))?.path).toEqual(["secret", "x"]);
    const plain = cmd("plain");
    expect(readTarget(plain)).toBe(plain);
    expect(readTarget(cmd('{"flight":"x"}'))).toBeUndefined();
    const inner = Buffer.from("p:secret/x");
    expect(Buffer.from(readTicketTarget(encodeQueryTicket({ ticket: inner, columns: ["a"] }))!).toString()).toBe("p:secret/x");
    expect(readTicketTarget(inner)).toBe(inner);
    expect(readTicketTarget(Buffer.from(QUERY_TICKET_PREFIX + "{}"))).toBeUndefined();
  });
});
