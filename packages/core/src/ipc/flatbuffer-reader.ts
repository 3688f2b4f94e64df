import { invalidArgument, type FlightError } from "../flight-error";

/**
 * How many tables deep a {@link FlatBufferReader} follows references before it gives up.
 * Arrow metadata is shallow (a schema nested 64 fields deep is already absurd), so anything
 * deeper is treated as hostile input rather than data.
 */
export const MAX_FLATBUFFER_DEPTH = 128;

// Flatbuffers offsets are 32-bit; a uoffset of 0 would point at itself, which no builder writes.
const U32 = 4;

/**
 * A bounds-checked, allocation-light reader of one flatbuffer (little-endian, as the format
 * requires). It never trusts an offset: every table, vtable, field, vector and string is checked
 * against the bytes it was given before it is read, and any violation throws a
 * {@link FlightError} with code INVALID_ARGUMENT whose message names the problem and the byte
 * position (never the payload).
 *
 * Two guards keep hostile input from making it work hard: references may be followed at most
 * {@link MAX_FLATBUFFER_DEPTH} tables deep, and a work budget proportional to the buffer's size
 * is charged for every object dereferenced and every vector element visited. A well-formed
 * (tree-shaped) flatbuffer can never exhaust the budget, because every object it references
 * occupies bytes of its own; only offsets that point many times at the same bytes can. Cycles
 * are impossible by construction, since a uoffset is unsigned and always points forward.
 *
 * @example
 * const fb = new FlatBufferReader(headerBytes, "IPC message header");
 * const message = fb.root();
 * const version = message.int16(0, 0);
 * const header = message.union(1, "header");
 */
export class FlatBufferReader {
  /** The bytes being read (not copied). */
  readonly bytes: Uint8Array;
  /** What the bytes are, used as the prefix of every error message. */
  readonly label: string;
  /** `bytes.byteLength`, kept as a plain field for the hot bounds checks. */
  readonly byteLength: number;
  /**
   * A DataView over `bytes`, for callers that read many elements of a vector they have
   * already validated (see {@link FbVector}) and want to skip the per-read checks.
   */
  readonly view: DataView;
  private budget: number;
  private static decoder: InstanceType<typeof TextDecoder> | undefined;

  constructor(bytes: Uint8Array, label = "flatbuffer") {
    this.bytes = bytes;
    this.label = label;
    this.byteLength = bytes.byteLength;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Twice the size leaves room for callers that read an object more than once.
    this.budget = 2 * bytes.byteLength + 256;
  }

  /** Throws INVALID_ARGUMENT, prefixed with the reader's label. */
  fail(message: string): never {
    throw invalidArgument(`${this.label}: ${message}`);
  }

  /**
   * Spends `units` of the work budget. Exposed so that callers iterating over data they found
   * through the reader can be held to the same bound.
   */
  charge(units: number): void {
    this.budget -= units;
    if (this.budget < 0) this.fail("offsets reference the same bytes too many times (shared or overlapping objects)");
  }

  /** Checks that `size` bytes at `pos` are inside the buffer and aligned to `align`. */
  check(pos: number, size: number, align: number, what: string): void {
    if (!(pos >= 0 && pos + size <= this.byteLength)) {
      this.fail(`${what} at byte ${pos} (${size} bytes) is outside the ${this.byteLength}-byte buffer`);
    }
    if (align > 1 && pos % align !== 0) this.fail(`${what} at byte ${pos} is not ${align}-byte aligned`);
  }

  /** Unsigned byte at `pos`. */
  uint8(pos: number, what = "uint8"): number {
    this.check(pos, 1, 1, what);
    return this.view.getUint8(pos);
  }
  /** Signed byte at `pos`. */
  int8(pos: number, what = "int8"): number {
    this.check(pos, 1, 1, what);
    return this.view.getInt8(pos);
  }
  /** Unsigned 16-bit integer at `pos`. */
  uint16(pos: number, what = "uint16"): number {
    this.check(pos, 2, 2, what);
    return this.view.getUint16(pos, true);
  }
  /** Signed 16-bit integer at `pos`. */
  int16(pos: number, what = "int16"): number {
    this.check(pos, 2, 2, what);
    return this.view.getInt16(pos, true);
  }
  /** Signed 32-bit integer at `pos`. */
  int32(pos: number, what = "int32"): number {
    this.check(pos, 4, 4, what);
    return this.view.getInt32(pos, true);
  }
  /** Unsigned 32-bit integer at `pos`. */
  uint32(pos: number, what = "uint32"): number {
    this.check(pos, 4, 4, what);
    return this.view.getUint32(pos, true);
  }
  /** Signed 64-bit integer at `pos`, as a bigint (for ids, which may use the full range). */
  int64(pos: number, what = "int64"): bigint {
    this.check(pos, 8, 8, what);
    return this.view.getBigInt64(pos, true);
  }
  /**
   * Signed 64-bit integer at `pos` as a number; throws unless it is a safe integer. Sizes and
   * counts are read this way because it avoids a bigint per value on the hot path, and a
   * length beyond 2^53 is malformed for any buffer that can exist.
   */
  int64Number(pos: number, what = "int64"): number {
    this.check(pos, 8, 8, what);
    const value = this.view.getInt32(pos + 4, true) * 4294967296 + this.view.getUint32(pos, true);
    if (!Number.isSafeInteger(value)) this.fail(`${what} at byte ${pos} is out of the safe integer range`);
    return value;
  }

  /**
   * Follows the uoffset stored at `pos` and returns the position it points to.
   * The target is checked to lie inside the buffer (its own size is checked by the caller).
   */
  deref(pos: number, what: string): number {
    const off = this.uint32(pos, `offset to ${what}`);
    if (off === 0) this.fail(`offset to ${what} at byte ${pos} is zero`);
    const target = pos + off;
    if (target >= this.byteLength) this.fail(`offset to ${what} at byte ${pos} points past the end of the buffer`);
    this.charge(1);
    return target;
  }

  /** The root table, whose uoffset is the first four bytes of the buffer. */
  root(what = "root table"): FbTable {
    if (this.byteLength < 8) this.fail(`too short (${this.byteLength} bytes) to hold a flatbuffer`);
    return this.tableAt(this.deref(0, what), 0, what);
  }

  /**
   * The table starting at `pos`, validated: its vtable must lie inside the buffer, have a sane
   * size and describe an inline table that also lies inside the buffer.
   */
  tableAt(pos: number, depth: number, what: string): FbTable {
    if (depth > MAX_FLATBUFFER_DEPTH) this.fail(`${what} is nested more than ${MAX_FLATBUFFER_DEPTH} tables deep`);
    this.check(pos, U32, 4, what);
    const vtable = pos - this.view.getInt32(pos, true);
    this.check(vtable, 4, 2, `vtable of ${what}`);
    const vtableSize = this.view.getUint16(vtable, true);
    const tableSize = this.view.getUint16(vtable + 2, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0) this.fail(`vtable of ${what} at byte ${vtable} has invalid size ${vtableSize}`);
    this.check(vtable, vtableSize, 2, `vtable of ${what}`);
    if (tableSize < U32) this.fail(`${what} at byte ${pos} has invalid inline size ${tableSize}`);
    this.check(pos, tableSize, 4, what);
    return new FbTable(this, pos, depth, vtable, vtableSize, tableSize, what);
  }

  /**
   * Validates the vector whose uoffset is stored at `pos`: length prefix and `elementSize`-byte
   * elements must fit in the buffer. Charges one unit per element so that iterating it is paid
   * for in advance.
   */
  vectorAt(pos: number, elementSize: number, depth: number, what: string): FbVector {
    const start = this.deref(pos, what);
    const length = this.uint32(start, `length of ${what}`);
    const first = start + U32;
    // Multiplication cannot lose precision: length < 2^32 and elementSize is small.
    if (length * elementSize > this.byteLength - first) {
      this.fail(`${what} at byte ${start} declares ${length} elements, more than the buffer holds`);
    }
    this.charge(length);
    return new FbVector(this, first, length, elementSize, depth, what);
  }

  /** Decodes the string whose uoffset is stored at `pos` (length, bytes, NUL terminator). */
  stringAt(pos: number, what: string): string {
    const start = this.deref(pos, what);
    const length = this.uint32(start, `length of ${what}`);
    const first = start + U32;
    if (length >= this.byteLength - first) this.fail(`${what} at byte ${start} is longer than the buffer`);
    if (this.bytes[first + length] !== 0) this.fail(`${what} at byte ${start} is not NUL-terminated`);
    this.charge(length);
    FlatBufferReader.decoder ??= new TextDecoder("utf-8");
    return FlatBufferReader.decoder.decode(this.bytes.subarray(first, first + length));
  }
}

/**
 * One validated table of a {@link FlatBufferReader}. Fields are addressed by their slot (the
 * field's index in the schema, counting a union as two slots: its type, then its value).
 * Absent fields read as the default the caller passes, as flatbuffers specifies.
 */
export class FbTable {
  constructor(
    /** The reader this table belongs to. */
    readonly reader: FlatBufferReader,
    /** Byte position of the table (its soffset to the vtable). */
    readonly pos: number,
    /** How many tables were followed to get here (the root is 0). */
    readonly depth: number,
    private readonly vtable: number,
    private readonly vtableSize: number,
    private readonly tableSize: number,
    /** What this table is, for error messages. */
    readonly what: string,
  ) {}

  /**
   * Byte position of field `slot`, or 0 when the field is absent. Checks that a field of
   * `size` bytes fits in the table's inline part and is aligned to `size`.
   */
  fieldPos(slot: number, size: number): number {
    const entry = 4 + 2 * slot;
    if (entry >= this.vtableSize) return 0;
    const rel = this.reader.uint16(this.vtable + entry);
    if (rel === 0) return 0;
    if (rel < U32 || rel + size > this.tableSize) {
      this.reader.fail(`field ${slot} of ${this.what} at byte ${this.pos} lies outside the table`);
    }
    const pos = this.pos + rel;
    if (size > 1 && pos % size !== 0) this.reader.fail(`field ${slot} of ${this.what} at byte ${pos} is misaligned`);
    return pos;
  }

  /** Whether field `slot` is present. */
  has(slot: number): boolean {
    const entry = 4 + 2 * slot;
    return entry < this.vtableSize && this.reader.uint16(this.vtable + entry) !== 0;
  }

  /** A `bool` field (a byte; any non-zero value is true). */
  bool(slot: number, fallback = false): boolean {
    const p = this.fieldPos(slot, 1);
    return p === 0 ? fallback : this.reader.uint8(p) !== 0;
  }
  /** A `ubyte` field. */
  uint8(slot: number, fallback = 0): number {
    const p = this.fieldPos(slot, 1);
    return p === 0 ? fallback : this.reader.uint8(p);
  }
  /** A `byte` field. */
  int8(slot: number, fallback = 0): number {
    const p = this.fieldPos(slot, 1);
    return p === 0 ? fallback : this.reader.int8(p);
  }
  /** A `short` field. */
  int16(slot: number, fallback = 0): number {
    const p = this.fieldPos(slot, 2);
    return p === 0 ? fallback : this.reader.int16(p);
  }
  /** An `int` field. */
  int32(slot: number, fallback = 0): number {
    const p = this.fieldPos(slot, 4);
    return p === 0 ? fallback : this.reader.int32(p);
  }
  /** A `long` field as a bigint. */
  int64(slot: number, fallback = 0n): bigint {
    const p = this.fieldPos(slot, 8);
    return p === 0 ? fallback : this.reader.int64(p);
  }
  /** A `long` field as a number; throws unless it is a safe integer. */
  int64Number(slot: number, fallback: number, what: string): number {
    const p = this.fieldPos(slot, 8);
    return p === 0 ? fallback : this.reader.int64Number(p, what);
  }

  /** The sub-table referenced by field `slot`, or null when absent. */
  table(slot: number, what: string): FbTable | null {
    const p = this.fieldPos(slot, U32);
    return p === 0 ? null : this.reader.tableAt(this.reader.deref(p, what), this.depth + 1, what);
  }

  /** The string in field `slot`, or null when absent. */
  string(slot: number, what: string): string | null {
    const p = this.fieldPos(slot, U32);
    return p === 0 ? null : this.reader.stringAt(p, what);
  }

  /**
   * The vector in field `slot` whose elements are `elementSize` bytes each (scalars, structs,
   * or 4-byte offsets for a vector of tables or strings), or null when absent.
   */
  vector(slot: number, elementSize: number, what: string): FbVector | null {
    const p = this.fieldPos(slot, U32);
    return p === 0 ? null : this.reader.vectorAt(p, elementSize, this.depth, what);
  }

  /**
   * A union: its type tag is in `typeSlot`, its value (a table) in `typeSlot + 1`. A tag of 0
   * (NONE) has no table; a non-zero tag without a table is malformed and refused.
   */
  union(typeSlot: number, what: string): { type: number; table: FbTable | null } {
    const type = this.uint8(typeSlot, 0);
    const table = this.table(typeSlot + 1, what);
    if (type === 0 && table !== null) this.reader.fail(`${what} has a value but no type`);
    if (type !== 0 && table === null) this.reader.fail(`${what} has type ${type} but no value`);
    return { type, table };
  }
}

/**
 * A validated vector of a {@link FlatBufferReader}: `length` elements of `elementSize` bytes
 * starting at byte `start`. Element accessors check the index.
 */
export class FbVector {
  constructor(
    /** The reader this vector belongs to. */
    readonly reader: FlatBufferReader,
    /** Byte position of the first element. */
    readonly start: number,
    /** Number of elements. */
    readonly length: number,
    /** Size of one element in bytes. */
    readonly elementSize: number,
    private readonly depth: number,
    /** What this vector is, for error messages. */
    readonly what: string,
  ) {}

  private at(index: number): number {
    if (!(index >= 0 && index < this.length)) this.reader.fail(`index ${index} out of range for ${this.what}`);
    return this.start + index * this.elementSize;
  }

  /** Element `index` of a vector of tables. */
  table(index: number, what: string): FbTable {
    return this.reader.tableAt(this.reader.deref(this.at(index), what), this.depth + 1, what);
  }
  /** Element `index` of a vector of strings. */
  string(index: number, what: string): string {
    return this.reader.stringAt(this.at(index), what);
  }
  /** Element `index` of a vector of `int`. */
  int32(index: number): number {
    return this.reader.int32(this.at(index), this.what);
  }
  /** Element `index` of a vector of `long`, as a bigint. */
  int64(index: number): bigint {
    return this.reader.int64(this.at(index), this.what);
  }
  /** Element `index` of a vector of `long`, as a safe-integer number. */
  int64Number(index: number): number {
    return this.reader.int64Number(this.at(index), this.what);
  }
  /**
   * A `long` member at byte `memberOffset` of struct element `index`, as a safe-integer
   * number. Structs are inline, so this is how vectors of structs such as Arrow's `Buffer`
   * and `FieldNode` are read.
   */
  structInt64Number(index: number, memberOffset: number, what: string): number {
    return this.reader.int64Number(this.at(index) + memberOffset, what);
  }
}
