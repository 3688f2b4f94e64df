import {
  MAX_TIMER_MS,
  checkArray,
  checkBoolean,
  checkByteArray,
  checkDuration,
  checkEnum,
  checkEnumArray,
  checkFunction,
  checkImplements,
  checkInt,
  checkIntArray,
  checkNumberIn,
  checkObject,
  checkOptions,
  checkPattern,
  checkString,
  checkStringArray,
  describeValue,
} from "./option-checks";

describe("option checks", () => {
  it("describeValue shows numbers, booleans and strings, and only the type of anything else", () => {
    expect(describeValue(1.5)).toBe("1.5");
    expect(describeValue(true)).toBe("true");
    expect(describeValue("x")).toBe('"x"');
    expect(describeValue(null)).toBe("null");
    expect(describeValue({ secret: 1 })).toBe("object");
  });

  it("checkOptions refuses non-objects and unknown keys", () => {
    expect(checkOptions("f", undefined, ["a"])).toEqual({});
    expect(() => checkOptions("f", undefined, ["a"], true)).toThrow("f: options must be an object; got undefined");
    expect(() => checkOptions("f", [], ["a"])).toThrow(TypeError);
    expect(() => checkOptions("f", { b: 1 }, ["a"])).toThrow('f: unknown option "b"; known options: a');
    expect(() => checkOptions("f", { b: 1 }, ["a"], true, "pool")).toThrow(new TypeError('f: unknown option "pool.b"; known options: a'));
    expect(() => checkOptions("f", 3, ["a"], true, "pool")).toThrow(new TypeError("f: pool must be an object; got 3"));
  });

  it("checkInt names the range", () => {
    expect(checkInt("f", "n", undefined, 1, 3, 2)).toBe(2);
    expect(() => checkInt("f", "n", 1.5, 1, 3)).toThrow("f: n must be an integer from 1 to 3; got 1.5");
  });

  it("checkNumberIn words the range as told and builds the error as told", () => {
    expect(checkNumberIn("f", "x", 0.5, 0, 1, "a fraction")).toBe(0.5);
    expect(checkNumberIn("f", "x", undefined, 0, 1, "a fraction", 1)).toBe(1);
    expect(() => checkNumberIn("f", "x", Number.NaN, 0, 1, "a fraction")).toThrow(new TypeError("f: x must be a fraction; got NaN"));
    expect(() => checkNumberIn("f", "x", 2, 0, 1, "a fraction", undefined, (m) => new RangeError(m))).toThrow(RangeError);
  });

  it("checkDuration takes milliseconds in range, fractions included", () => {
    expect(checkDuration("f", "ms", 1.5, 1, MAX_TIMER_MS)).toBe(1.5);
    expect(checkDuration("f", "ms", undefined, 1, MAX_TIMER_MS, 10)).toBe(10);
    expect(() => checkDuration("f", "ms", MAX_TIMER_MS + 1, 1, MAX_TIMER_MS)).toThrow(
      `f: ms must be a number of milliseconds from 1 to ${MAX_TIMER_MS}; got ${MAX_TIMER_MS + 1}`,
    );
    expect(() => checkDuration("f", "ms", "5", 1, 10)).toThrow('got "5"');
  });

  it("checkBoolean takes booleans only", () => {
    expect(() => checkBoolean("f", "b", undefined)).toThrow("f: b must be a boolean; got undefined");
    expect(checkBoolean("f", "b", undefined, true)).toBe(true);
    expect(checkBoolean("f", "b", false, true)).toBe(false);
    expect(() => checkBoolean("f", "b", 1)).toThrow("f: b must be a boolean; got 1");
  });

  it("checkEnum takes one of the listed strings", () => {
    const modes = ["a", "b"] as const;
    expect(checkEnum("f", "mode", undefined, modes)).toBeUndefined();
    expect(checkEnum("f", "mode", undefined, modes, "a")).toBe("a");
    expect(checkEnum("f", "mode", "b", modes)).toBe("b");
    expect(() => checkEnum("f", "mode", "c", modes)).toThrow('f: mode must be one of "a", "b"; got "c"');
  });

  it("checkString takes non-empty strings", () => {
    expect(checkString("f", "s", undefined)).toBeUndefined();
    expect(checkString("f", "s", "x")).toBe("x");
    expect(() => checkString("f", "s", "")).toThrow('f: s must be a non-empty string; got ""');
    expect(() => checkString("f", "dir", undefined, "a non-empty path", true)).toThrow("f: dir must be a non-empty path; got undefined");
  });

  it("checkFunction takes functions, and refuses undefined only when required", () => {
    const f = (): number => 1;
    expect(checkFunction("f", "cb", undefined)).toBeUndefined();
    expect(checkFunction("f", "cb", f, true)).toBe(f);
    expect(() => checkFunction("f", "cb", 1)).toThrow("f: cb must be a function; got 1");
    expect(() => checkFunction("f", "cb", undefined, true, "a function (x) => y")).toThrow(new TypeError("f: cb must be a function (x) => y; got undefined"));
  });

  it("checkObject takes objects with any keys, not null or arrays", () => {
    const o = { any: 1 };
    expect(checkObject("f", "options", o)).toBe(o);
    expect(() => checkObject("f", "options", null)).toThrow(new TypeError("f: options must be an object; got null"));
    expect(() => checkObject("f", "grants", [], "an object { subject: prefixes }")).toThrow("f: grants must be an object { subject: prefixes }; got object");
    expect(() => checkObject("f", "options", "x")).toThrow('got "x"');
  });

  it("checkPattern takes strings matching the pattern", () => {
    expect(checkPattern("f", "id", "ab", /^[a-z]{1,2}$/, "1 or 2 letters")).toBe("ab");
    expect(checkPattern("f", "id", undefined, /^[a-z]{1,2}$/, "1 or 2 letters", "z")).toBe("z");
    expect(() => checkPattern("f", "id", "abc", /^[a-z]{1,2}$/, "1 or 2 letters")).toThrow(new TypeError('f: id must be 1 or 2 letters; got "abc"'));
    expect(() => checkPattern("f", "id", 5, /^[a-z]{1,2}$/, "1 or 2 letters")).toThrow("got 5");
  });

  it("checkStringArray takes arrays of strings and never echoes their items", () => {
    expect(checkStringArray("f", "a", ["", "x"])).toEqual(["", "x"]);
    expect(() => checkStringArray("f", "roles", ["x", ""], true)).toThrow(new TypeError("f: roles must be an array of non-empty strings; got an array with other items"));
    expect(() => checkStringArray("f", "a", ["s3cret", 1])).toThrow(expect.objectContaining({ message: expect.not.stringContaining("s3cret") }));
    expect(() => checkStringArray("f", "a", "x", false, "a list of names")).toThrow('f: a must be a list of names; got "x"');
  });

  it("checkEnumArray takes arrays of the listed strings, empty ones included", () => {
    const methods = ["doGet", "doPut"] as const;
    expect(checkEnumArray("f", "methods", [], methods)).toEqual([]);
    expect(checkEnumArray("f", "methods", undefined, methods, ["doPut"])).toEqual(["doPut"]);
    expect(() => checkEnumArray("f", "methods", ["doGet", "x"], methods)).toThrow(new TypeError('f: methods must be an array of "doGet", "doPut"; got an array with other items'));
    expect(() => checkEnumArray("f", "methods", "doGet", methods)).toThrow('got "doGet"');
  });

  it("checkIntArray takes arrays of integers in range", () => {
    expect(checkIntArray("f", "codes", [0, 16], 0, 16)).toEqual([0, 16]);
    expect(checkIntArray("f", "codes", undefined, 0, 16, "codes", [1])).toEqual([1]);
    expect(() => checkIntArray("f", "codes", [17], 0, 16, "an array of gRPC status codes")).toThrow(
      new TypeError("f: codes must be an array of gRPC status codes (integers 0 to 16); got an array with other items"),
    );
    expect(() => checkIntArray("f", "codes", [1.5], 0, 16)).toThrow(TypeError);
  });

  it("checkImplements checks an object by the methods it has", () => {
    const tracer = { startSpan: (): void => undefined };
    expect(checkImplements("f", "tracer", undefined, ["startSpan"], "a Tracer")).toBeUndefined();
    expect(checkImplements("f", "tracer", tracer, ["startSpan"], "a Tracer")).toBe(tracer);
    expect(() => checkImplements("f", "tracer", {}, ["startSpan"], "a Tracer")).toThrow(new TypeError("f: tracer must be a Tracer (with startSpan); got object"));
    expect(() => checkImplements("f", "tracer", null, ["startSpan"], "a Tracer")).toThrow("got null");
    expect(() => checkImplements("f", "tracer", undefined, ["startSpan"], "a Tracer", true)).toThrow("got undefined");
  });

  it("checkByteArray takes Uint8Arrays of a least length and echoes only type and length", () => {
    const b = Buffer.from("0123");
    expect(checkByteArray("f", "key", undefined)).toBeUndefined();
    expect(checkByteArray("f", "key", b, 4)).toBe(b);
    expect(() => checkByteArray("f", "key", b, 5)).toThrow(new TypeError("f: key must be a Uint8Array of at least 5 bytes; got 4 bytes"));
    expect(() => checkByteArray("f", "cert", "-----BEGIN s3cret", 0, "a Buffer of PEM")).toThrow(new TypeError("f: cert must be a Buffer of PEM; got a string"));
    expect(() => checkByteArray("f", "key", undefined, 0, "a Uint8Array", true)).toThrow("got undefined");
  });

  it("checkArray takes arrays only", () => {
    expect(checkArray("f", "list", [1, "a"])).toEqual([1, "a"]);
    expect(() => checkArray("f", "list", {}, "an array of middleware")).toThrow(new TypeError("f: list must be an array of middleware; got object"));
    expect(() => checkArray("f", "list", undefined)).toThrow("f: list must be an array; got undefined");
  });
});
