import { FlightError } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { StatusCode } from "../status-code";
import { descriptorFromKey, descriptorKey, ticketFromKey, ticketToKey } from "./descriptor-key";

const enc = new TextEncoder();
const pathD = (...path: string[]): FlightDescriptor => ({ type: DescriptorType.PATH, path, cmd: new Uint8Array() });
const cmdD = (cmd: Uint8Array | string): FlightDescriptor => ({
  type: DescriptorType.CMD,
  path: [],
  cmd: typeof cmd === "string" ? enc.encode(cmd) : cmd,
});

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlightError) return err.code;
    throw err;
  }
  return undefined;
}

function errorOf(fn: () => unknown): FlightError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlightError) return err;
    throw err;
  }
  throw new Error("expected a FlightError");
}

describe("descriptorKey", () => {
  it("writes plain paths and commands readably", () => {
    expect(descriptorKey(pathD("sales", "2024"))).toBe("p:sales/2024");
    expect(descriptorKey(cmdD("SELECT 1"))).toBe("c:SELECT%201");
  });

  it("keeps segments containing '/' or '%' apart from split segments", () => {
    const keys = [
      descriptorKey(pathD("a/b")),
      descriptorKey(pathD("a", "b")),
      descriptorKey(pathD("a%2Fb")),
      descriptorKey(pathD("a", "")),
      descriptorKey(pathD("a")),
      descriptorKey(pathD("")),
      descriptorKey(pathD("", "")),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(descriptorKey(pathD("a/b"))).toBe("p:a%2Fb");
  });

  it("does not let a PATH and a CMD with the same text collide", () => {
    expect(descriptorKey(pathD("x"))).not.toBe(descriptorKey(cmdD("x")));
  });

  it("ignores cmd of a PATH descriptor and path of a CMD descriptor", () => {
    expect(descriptorKey({ type: DescriptorType.PATH, path: ["a"], cmd: enc.encode("zzz") })).toBe("p:a");
    expect(descriptorKey({ type: DescriptorType.CMD, path: ["a"], cmd: enc.encode("q") })).toBe("c:q");
  });

  it("round-trips any path through descriptorFromKey", () => {
    const paths = [
      ["a"],
      [""],
      ["", "x", ""],
      ["with space", "ünïcödé", "日本", "emoji 😀"],
      ["\uFEFFbom-first"],
      ["%", "%%", "%41", "/", "//", ":", "p:", "\u0000", "~._-"],
    ];
    for (const path of paths) {
      const key = descriptorKey(pathD(...path));
      expect(key).toMatch(/^[\x21-\x7e]+$/);
      const back = descriptorFromKey(key);
      expect(back.type).toBe(DescriptorType.PATH);
      expect(back.path).toEqual(path);
      expect(back.cmd.length).toBe(0);
    }
  });

  it("round-trips arbitrary command bytes", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    const key = descriptorKey(cmdD(all));
    const back = descriptorFromKey(key);
    expect(back.type).toBe(DescriptorType.CMD);
    expect(Array.from(back.cmd)).toEqual(Array.from(all));
    expect(back.path).toEqual([]);
  });

  it("maps random distinct paths to distinct keys and back", () => {
    const alphabet = ["a", "/", "%", "2", "F", "", "é", "😀", ":"];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 16) % n;
    };
    const seen = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const path = Array.from({ length: 1 + rand(3) }, () =>
        Array.from({ length: rand(4) }, () => alphabet[rand(alphabet.length)]).join(""),
      );
      const key = descriptorKey(pathD(...path));
      const id = JSON.stringify(path);
      const prior = seen.get(key);
      if (prior !== undefined) expect(prior).toBe(id);
      seen.set(key, id);
      expect(descriptorFromKey(key).path).toEqual(path);
    }
    expect(seen.size).toBeGreaterThan(100);
  });

  it("refuses UNKNOWN and unsupported types with INVALID_ARGUMENT", () => {
    const unknown = errorOf(() => descriptorKey({ type: DescriptorType.UNKNOWN, path: ["a"], cmd: new Uint8Array() }));
    expect(unknown.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(unknown.message).toMatch(/UNKNOWN/);
    expect(codeOf(() => descriptorKey({ type: 7, path: ["a"], cmd: new Uint8Array() }))).toBe(StatusCode.INVALID_ARGUMENT);
    expect(codeOf(() => descriptorKey(undefined as unknown as FlightDescriptor))).toBe(StatusCode.INVALID_ARGUMENT);
  });

  it("refuses empty descriptors with a clear message", () => {
    const emptyPath = errorOf(() => descriptorKey(pathD()));
    expect(emptyPath.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(emptyPath.message).toMatch(/empty PATH descriptor/);
    const emptyCmd = errorOf(() => descriptorKey(cmdD(new Uint8Array())));
    expect(emptyCmd.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(emptyCmd.message).toMatch(/empty CMD descriptor/);
  });

  it("refuses non-string segments and lone surrogates", () => {
    expect(codeOf(() => descriptorKey(pathD("a", 3 as unknown as string)))).toBe(StatusCode.INVALID_ARGUMENT);
    expect(codeOf(() => descriptorKey(pathD("bad\uD800")))).toBe(StatusCode.INVALID_ARGUMENT);
    expect(codeOf(() => descriptorKey(pathD("\uDC00bad")))).toBe(StatusCode.INVALID_ARGUMENT);
  });
});

describe("descriptorFromKey", () => {
  it.each([
    ["", "no prefix"],
    ["x:abc", "unknown prefix"],
    ["c:", "empty cmd"],
    ["p:%zz", "bad escape"],
    ["p:%2f", "lowercase hex"],
    ["p:%41", "escaped unreserved byte"],
    ["p:a b", "raw space"],
    ["p:%FF", "invalid UTF-8"],
    ["p:%", "truncated escape"],
  ])("refuses %j (%s)", (key) => {
    expect(codeOf(() => descriptorFromKey(key))).toBe(StatusCode.INVALID_ARGUMENT);
  });
});

describe("tickets", () => {
  it("are the printable bytes of the key and round-trip", () => {
    const key = descriptorKey(pathD("sales", "a/b", "ü"));
    const ticket = ticketFromKey(key);
    expect(Buffer.from(ticket).toString("latin1")).toBe(key);
    expect(Array.from(ticket).every((b) => b >= 0x21 && b <= 0x7e)).toBe(true);
    expect(ticketToKey(ticket)).toBe(key);
    const ck = descriptorKey(cmdD(new Uint8Array([0, 255, 10])));
    expect(ticketToKey(ticketFromKey(ck))).toBe(ck);
  });

  it.each<[string, Uint8Array]>([
    ["empty", new Uint8Array()],
    ["no prefix", enc.encode("hello")],
    ["non-ASCII byte", enc.encode("p:ü")],
    ["NUL byte", new Uint8Array([0x70, 0x3a, 0x00])],
    ["non-canonical escape", enc.encode("p:%2f")],
    ["empty cmd", enc.encode("c:")],
    ["truncated UTF-8", enc.encode("p:%C3")],
  ])("refuse garbage (%s) with INVALID_ARGUMENT", (_label, bytes) => {
    const err = errorOf(() => ticketToKey(bytes));
    expect(err.code).toBe(StatusCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/ticket/);
  });

  it("refuses a non-bytes ticket", () => {
    expect(codeOf(() => ticketToKey("p:a" as unknown as Uint8Array))).toBe(StatusCode.INVALID_ARGUMENT);
  });
});
