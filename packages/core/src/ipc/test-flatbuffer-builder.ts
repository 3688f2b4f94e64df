// Test-only: a tiny flatbuffer writer for crafting Arrow IPC headers, good and bad, that no
// Arrow writer would produce. Excluded from the build (tsconfig excludes src/**/test-*.ts).
//
// It lays objects out front to back (a parent before the objects it references), which keeps
// every uoffset pointing forward as the format requires, and aligns every scalar to its size
// relative to the start of the buffer.

/** A field value of a table being built; `undefined` leaves the field out. */
export type Fb =
  | { readonly t: "u8" | "i8" | "bool"; readonly v: number | boolean }
  | { readonly t: "i16" | "i32"; readonly v: number }
  | { readonly t: "i64"; readonly v: bigint | number }
  | { readonly t: "table"; readonly v: ReadonlyArray<Fb | undefined> }
  | { readonly t: "string"; readonly v: string }
  | { readonly t: "tables"; readonly v: ReadonlyArray<ReadonlyArray<Fb | undefined>> }
  | { readonly t: "i32s"; readonly v: readonly number[] }
  | { readonly t: "i64s"; readonly v: ReadonlyArray<bigint | number> }
  /** A vector of structs of two int64s (Arrow's Buffer and FieldNode). */
  | { readonly t: "pairs"; readonly v: ReadonlyArray<readonly [bigint | number, bigint | number]> };

export const u8 = (v: number): Fb => ({ t: "u8", v });
export const i8 = (v: number): Fb => ({ t: "i8", v });
export const bool = (v: boolean): Fb => ({ t: "bool", v });
export const i16 = (v: number): Fb => ({ t: "i16", v });
export const i32 = (v: number): Fb => ({ t: "i32", v });
export const i64 = (v: bigint | number): Fb => ({ t: "i64", v });
export const table = (...v: Array<Fb | undefined>): Fb => ({ t: "table", v });
export const str = (v: string): Fb => ({ t: "string", v });
export const tables = (...v: Array<Array<Fb | undefined>>): Fb => ({ t: "tables", v });
export const i32s = (v: number[]): Fb => ({ t: "i32s", v });
export const i64s = (v: Array<bigint | number>): Fb => ({ t: "i64s", v });
export const pairs = (v: Array<[bigint | number, bigint | number]>): Fb => ({ t: "pairs", v });

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  reserve(n: number): number {
    while (this.pos + n > this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }
  align(n: number, rest = 0): void {
    while (this.pos % n !== rest) this.reserve(1);
  }
  setOffset(at: number, target: number): void {
    this.view.setUint32(at, target - at, true);
  }

  table(fields: ReadonlyArray<Fb | undefined>): number {
    this.align(2);
    const vt = this.reserve(4 + 2 * fields.length);
    this.align(8);
    const start = this.reserve(4);
    this.view.setInt32(start, start - vt, true);
    // Inline layout: each field aligned to its size, relative to the (8-aligned) table start.
    const rel: number[] = [];
    let cursor = 4;
    fields.forEach((f, i) => {
      if (f === undefined) return;
      const size = inlineSize(f);
      while (cursor % size !== 0) cursor++;
      rel[i] = cursor;
      cursor += size;
    });
    this.reserve(cursor - 4);
    this.view.setUint16(vt, 4 + 2 * fields.length, true);
    this.view.setUint16(vt + 2, cursor, true);
    fields.forEach((_, i) => this.view.setUint16(vt + 4 + 2 * i, rel[i] ?? 0, true));
    fields.forEach((f, i) => {
      if (f === undefined) return;
      const at = start + (rel[i] as number);
      switch (f.t) {
        case "u8":
        case "i8":
        case "bool":
          this.view.setUint8(at, Number(f.v) & 0xff);
          break;
        case "i16":
          this.view.setInt16(at, f.v, true);
          break;
        case "i32":
          this.view.setInt32(at, f.v, true);
          break;
        case "i64":
          this.view.setBigInt64(at, BigInt(f.v), true);
          break;
        default:
          this.setOffset(at, this.object(f));
      }
    });
    return start;
  }

  object(f: Fb): number {
    switch (f.t) {
      case "table":
        return this.table(f.v);
      case "string": {
        const bytes = new TextEncoder().encode(f.v);
        this.align(4);
        const at = this.reserve(4 + bytes.length + 1);
        this.view.setUint32(at, bytes.length, true);
        this.buf.set(bytes, at + 4);
        return at;
      }
      case "tables": {
        this.align(4);
        const at = this.reserve(4 + 4 * f.v.length);
        this.view.setUint32(at, f.v.length, true);
        f.v.forEach((t, i) => this.setOffset(at + 4 + 4 * i, this.table(t)));
        return at;
      }
      case "i32s": {
        this.align(4);
        const at = this.reserve(4 + 4 * f.v.length);
        this.view.setUint32(at, f.v.length, true);
        f.v.forEach((x, i) => this.view.setInt32(at + 4 + 4 * i, x, true));
        return at;
      }
      case "i64s": {
        this.align(8, 4);
        const at = this.reserve(4 + 8 * f.v.length);
        this.view.setUint32(at, f.v.length, true);
        f.v.forEach((x, i) => this.view.setBigInt64(at + 4 + 8 * i, BigInt(x), true));
        return at;
      }
      case "pairs": {
        this.align(8, 4);
        const at = this.reserve(4 + 16 * f.v.length);
        this.view.setUint32(at, f.v.length, true);
        f.v.forEach(([a, b], i) => {
          this.view.setBigInt64(at + 4 + 16 * i, BigInt(a), true);
          this.view.setBigInt64(at + 12 + 16 * i, BigInt(b), true);
        });
        return at;
      }
      default:
        throw new Error(`not an object: ${f.t}`);
    }
  }
}

function inlineSize(f: Fb): number {
  switch (f.t) {
    case "u8":
    case "i8":
    case "bool":
      return 1;
    case "i16":
      return 2;
    case "i32":
      return 4;
    case "i64":
      return 8;
    default:
      return 4;
  }
}

/** Builds a flatbuffer whose root table has `fields`; the result's length is a multiple of 8. */
export function buildFlatbuffer(fields: ReadonlyArray<Fb | undefined>): Uint8Array {
  const w = new Writer();
  w.reserve(4);
  w.setOffset(0, w.table(fields));
  w.align(8);
  return w.buf.slice(0, w.pos);
}

// ---- Arrow messages ----

export const V4 = 3;
export const V5 = 4;
export const HEADER_SCHEMA = 1;
export const HEADER_DICTIONARY = 2;
export const HEADER_RECORD_BATCH = 3;

/** A `Message` header. */
export function message(opts: {
  version?: number;
  headerType: number;
  header: Fb;
  bodyLength?: number | bigint;
}): Uint8Array {
  return buildFlatbuffer([
    opts.version === undefined ? i16(V5) : i16(opts.version),
    u8(opts.headerType),
    opts.header,
    opts.bodyLength === undefined ? undefined : i64(opts.bodyLength),
  ]);
}

/** A `Field` table's fields. */
export function field(
  name: string,
  typeTag: number,
  typeFields: Array<Fb | undefined> = [],
  opts: { nullable?: boolean; children?: Array<Array<Fb | undefined>>; dictionary?: Array<Fb | undefined> } = {},
): Array<Fb | undefined> {
  return [
    str(name),
    bool(opts.nullable ?? true),
    u8(typeTag),
    table(...typeFields),
    opts.dictionary === undefined ? undefined : table(...opts.dictionary),
    opts.children === undefined ? undefined : tables(...opts.children),
  ];
}

/** A schema message with `fields`. */
export function schemaMessage(fields: Array<Array<Fb | undefined>>, version = V5): Uint8Array {
  return message({ version, headerType: HEADER_SCHEMA, header: table(i16(0), tables(...fields)) });
}

/** A `RecordBatch` table. */
export function recordBatch(opts: {
  length: number | bigint;
  nodes: Array<[number | bigint, number | bigint]>;
  buffers: Array<[number | bigint, number | bigint]>;
  codec?: number;
  variadic?: number[];
}): Fb {
  return table(
    i64(opts.length),
    pairs(opts.nodes),
    pairs(opts.buffers),
    opts.codec === undefined ? undefined : table(i8(opts.codec)),
    opts.variadic === undefined ? undefined : i64s(opts.variadic),
  );
}

/** A record batch message. */
export function batchMessage(batch: Fb, bodyLength: number, version = V5): Uint8Array {
  return message({ version, headerType: HEADER_RECORD_BATCH, header: batch, bodyLength });
}

/** A dictionary batch message. */
export function dictionaryMessage(id: number | bigint, batch: Fb, bodyLength: number, isDelta = false, version = V5): Uint8Array {
  return message({ version, headerType: HEADER_DICTIONARY, header: table(i64(id), batch, bool(isDelta)), bodyLength });
}

/** Type tags used by the tests. */
export const T = {
  Null: 1,
  Int: 2,
  FloatingPoint: 3,
  Binary: 4,
  Utf8: 5,
  Bool: 6,
  Decimal: 7,
  Time: 9,
  List: 12,
  Struct: 13,
  Union: 14,
  FixedSizeList: 16,
  Map: 17,
  RunEndEncoded: 22,
  Utf8View: 24,
  ListView: 25,
} as const;

/** An int32 field. */
export const int32Field = (name: string, nullable = true): Array<Fb | undefined> => field(name, T.Int, [i32(32), bool(true)], { nullable });
/** A utf8 field. */
export const utf8Field = (name: string): Array<Fb | undefined> => field(name, T.Utf8);
