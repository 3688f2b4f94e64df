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

  it("answers where, limit and sql with UNIMPLEMENTED naming what is supported", () => {
    for (const text of ['{"flight":["a"],"where":"x > 1"}', '{"flight":["a"],"limit":10}', '{"sql":"select 1"}']) {
      const e = codeOf(() => parseQueryCommand(cmd(text)));
      expect(e.code).toBe(StatusCode.UNIMPLEMENTED);
      expect(e.message).toContain('"flight" and "columns"');
    }
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
    expect(Buffer.from(back.ticket).toString()).toBe("p:telemetry/host-1");
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
