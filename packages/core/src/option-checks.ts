/**
 * Up-front validation of factory options, the one helper every package uses: each check
 * throws a TypeError that names the factory, the option and its valid range, so a mistake
 * surfaces when the server is built, never inside a call.
 */

/** Node fires timers longer than 2^31-1 ms immediately, so longer durations are refused. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A value as an error message shows it (never a secret: only numbers, booleans and strings given as options). */
export function describeValue(v: unknown): string {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  return v === null ? "null" : typeof v;
}

/**
 * `options` must be undefined or a plain object without unknown keys. `name` is the option
 * that holds a nested options object (e.g. "pool" for FlightClient's `pool`): an unknown key
 * is then reported as `pool.key`, under the one factory prefix.
 */
export function checkOptions<T extends object>(where: string, options: unknown, known: readonly string[], required = false, name = "options"): T {
  if (options === undefined && !required) return {} as T;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${where}: ${name} must be an object; got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const path = name === "options" ? key : `${name}.${key}`;
      throw new TypeError(`${where}: unknown option ${JSON.stringify(path)}; known options: ${known.join(", ")}`);
    }
  }
  return options as T;
}

/** An integer option in [min, max]; `fallback` when undefined. */
export function checkInt(where: string, name: string, v: unknown, min: number, max: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(`${where}: ${name} must be an integer from ${min} to ${max}; got ${describeValue(v)}`);
  }
  return v;
}

/** An integer option in [min, max], or undefined when not given. */
export function checkOptionalInt(where: string, name: string, v: unknown, min: number, max: number): number | undefined {
  return v === undefined ? undefined : checkInt(where, name, v, min, max);
}

/** A number option in [min, max]; `fallback` when undefined. */
export function checkNumber(where: string, name: string, v: unknown, min: number, max: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw new TypeError(`${where}: ${name} must be a number from ${min} to ${max}; got ${describeValue(v)}`);
  }
  return v;
}

/**
 * A function option, or undefined unless `required`; `what` describes it (e.g. "a function
 * (request) => boolean").
 */
export function checkFunction<F>(where: string, name: string, v: unknown, required?: false, what?: string): F | undefined;
export function checkFunction<F>(where: string, name: string, v: unknown, required: true, what?: string): F;
export function checkFunction<F>(where: string, name: string, v: unknown, required = false, what = "a function"): F | undefined {
  if ((v !== undefined || required) && typeof v !== "function") {
    throw new TypeError(`${where}: ${name} must be ${what}; got ${describeValue(v)}`);
  }
  return v as F | undefined;
}

/**
 * An object option (not null, not an array), whatever its keys; `what` describes its shape
 * (e.g. "an object { subject: prefixes }"). Options objects whose keys are all known use
 * checkOptions instead, which also refuses unknown keys.
 */
export function checkObject<T extends object>(where: string, name: string, v: unknown, what = "an object"): T {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new TypeError(`${where}: ${name} must be ${what}; got ${describeValue(v)}`);
  return v as T;
}

/**
 * A string option matching `pattern` (`what` words it, e.g. "1 to 128 characters of A-Z a-z
 * 0-9 . _ -"); `fallback` when undefined. Not for secrets: the value is echoed.
 */
export function checkPattern(where: string, name: string, v: unknown, pattern: RegExp, what: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "string" || !pattern.test(v)) throw new TypeError(`${where}: ${name} must be ${what}; got ${describeValue(v)}`);
  return v;
}

/**
 * An array of strings (non-empty ones when `nonEmpty`); `what` words it for the message. Only
 * the array's type is echoed, never its items.
 */
export function checkStringArray(where: string, name: string, v: unknown, nonEmpty = false, what = nonEmpty ? "an array of non-empty strings" : "an array of strings"): readonly string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string" && (!nonEmpty || s.length > 0))) {
    throw new TypeError(`${where}: ${name} must be ${what}; got ${Array.isArray(v) ? "an array with other items" : describeValue(v)}`);
  }
  return v as readonly string[];
}

/** A name usable as a metric label and stats key: 1–64 of `A-Z a-z 0-9 _ . : -`. */
export function checkName(where: string, name: string, v: unknown, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "string" || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) {
    throw new TypeError(`${where}: ${name} must be 1 to 64 characters of A-Z, a-z, 0-9, "_", ".", ":" or "-"; got ${describeValue(v)}`);
  }
  return v;
}

/**
 * A number option in [min, max] whose valid range reads better in words (`range`, e.g. "a
 * number of milliseconds from 0 (never expire) to ..."); `fallback` when undefined. `makeError`
 * builds the error (a TypeError unless given: a call argument may want a FlightError).
 */
export function checkNumberIn(
  where: string,
  name: string,
  v: unknown,
  min: number,
  max: number,
  range: string,
  fallback?: number,
  makeError: (message: string) => Error = (message) => new TypeError(message),
): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw makeError(`${where}: ${name} must be ${range}; got ${describeValue(v)}`);
  }
  return v;
}

/** A duration in milliseconds in [min, max] (at most MAX_TIMER_MS when it arms a timer); `fallback` when undefined. */
export function checkDuration(where: string, name: string, v: unknown, min: number, max: number, fallback?: number): number {
  return checkNumberIn(where, name, v, min, max, `a number of milliseconds from ${min} to ${max}`, fallback);
}

/** A boolean option; `fallback` when undefined (undefined is refused when no fallback is given, as in checkInt). */
export function checkBoolean(where: string, name: string, v: unknown, fallback?: boolean): boolean {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "boolean") throw new TypeError(`${where}: ${name} must be a boolean; got ${describeValue(v)}`);
  return v;
}

/** One of the strings in `allowed`; `fallback` when undefined (undefined when no fallback is given). */
export function checkEnum<T extends string>(where: string, name: string, v: unknown, allowed: readonly T[]): T | undefined;
export function checkEnum<T extends string>(where: string, name: string, v: unknown, allowed: readonly T[], fallback: T): T;
export function checkEnum<T extends string>(where: string, name: string, v: unknown, allowed: readonly T[], fallback?: T): T | undefined {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    throw new TypeError(`${where}: ${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}; got ${describeValue(v)}`);
  }
  return v as T;
}

/** A non-empty string option (`what` describes it, e.g. "a non-empty path"); undefined stays undefined unless `required`. */
export function checkString(where: string, name: string, v: unknown, what = "a non-empty string", required = false): string | undefined {
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string" || v.length === 0) throw new TypeError(`${where}: ${name} must be ${what}; got ${describeValue(v)}`);
  return v;
}

/**
 * An array whose items are all in `allowed` (empty allowed); `fallback` when undefined. Only
 * the array's type is echoed, never its items.
 */
export function checkEnumArray<T extends string>(where: string, name: string, v: unknown, allowed: readonly T[], fallback?: readonly T[]): readonly T[] {
  if (v === undefined && fallback !== undefined) return fallback;
  if (!Array.isArray(v) || !v.every((x) => (allowed as readonly unknown[]).includes(x))) {
    throw new TypeError(
      `${where}: ${name} must be an array of ${allowed.map((a) => JSON.stringify(a)).join(", ")}; got ${Array.isArray(v) ? "an array with other items" : describeValue(v)}`,
    );
  }
  return v as readonly T[];
}

/** An array of integers in [min, max] (`what` words it, e.g. "an array of gRPC status codes"); `fallback` when undefined. */
export function checkIntArray(where: string, name: string, v: unknown, min: number, max: number, what = "an array of integers", fallback?: readonly number[]): readonly number[] {
  if (v === undefined && fallback !== undefined) return fallback;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isInteger(x) && x >= min && x <= max)) {
    throw new TypeError(`${where}: ${name} must be ${what} (integers ${min} to ${max}); got ${Array.isArray(v) ? "an array with other items" : describeValue(v)}`);
  }
  return v as readonly number[];
}

/**
 * An object that has every method in `methods` (a logger, a tracer: checked by shape, since
 * the package that defines its type is not core's dependency), or undefined when not given
 * unless `required`. `what` names it, e.g. "a pino Logger".
 */
export function checkImplements<T>(where: string, name: string, v: unknown, methods: readonly string[], what: string, required?: false): T | undefined;
export function checkImplements<T>(where: string, name: string, v: unknown, methods: readonly string[], what: string, required: true): T;
export function checkImplements<T>(where: string, name: string, v: unknown, methods: readonly string[], what: string, required = false): T | undefined {
  if (v === undefined && !required) return undefined;
  const o = v as Record<string, unknown> | null;
  if (o === null || typeof o !== "object" || !methods.every((m) => typeof o[m] === "function")) {
    throw new TypeError(`${where}: ${name} must be ${what} (with ${methods.join(", ")}); got ${describeValue(v)}`);
  }
  return v as T;
}

/**
 * A Uint8Array (a Buffer included) of at least `minBytes` bytes, or undefined when not given
 * unless `required`; `what` words it (e.g. "a Buffer of PEM"). Only the type and length are
 * echoed, never the bytes, so it serves keys and certificates.
 */
export function checkByteArray(where: string, name: string, v: unknown, minBytes?: number, what?: string, required?: false): Uint8Array | undefined;
export function checkByteArray(where: string, name: string, v: unknown, minBytes: number, what: string, required: true): Uint8Array;
export function checkByteArray(where: string, name: string, v: unknown, minBytes = 0, what = minBytes > 0 ? `a Uint8Array of at least ${minBytes} bytes` : "a Uint8Array", required = false): Uint8Array | undefined {
  if (v === undefined && !required) return undefined;
  if (!(v instanceof Uint8Array) || v.length < minBytes) {
    const got = v instanceof Uint8Array ? `${v.length} bytes` : typeof v === "string" ? "a string" : describeValue(v);
    throw new TypeError(`${where}: ${name} must be ${what}; got ${got}`);
  }
  return v;
}

/** An array option (its items checked by the caller); `what` words it, e.g. "an array of ClientMiddleware". */
export function checkArray(where: string, name: string, v: unknown, what = "an array"): readonly unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`${where}: ${name} must be ${what}; got ${describeValue(v)}`);
  return v;
}
