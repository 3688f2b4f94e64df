// The model of an Arrow schema as the IPC reader sees it: type ids and parameters, fields,
// buffer roles and column layouts, dictionaries. Read by schema-info.ts, laid out by
// column-layout.ts, printed by arrow-type-format.ts, compared by schema-difference.ts.

/**
 * How deeply fields may nest (a list of structs of lists ... counts one level per field).
 * The same limit Arrow C++ applies, so whatever it can read, this can.
 */
export const MAX_NESTING_DEPTH = 64;

/** The tags of Arrow's `Type` union (Schema.fbs). */
export const ArrowTypeId = {
  Null: 1,
  Int: 2,
  FloatingPoint: 3,
  Binary: 4,
  Utf8: 5,
  Bool: 6,
  Decimal: 7,
  Date: 8,
  Time: 9,
  Timestamp: 10,
  Interval: 11,
  List: 12,
  Struct: 13,
  Union: 14,
  FixedSizeBinary: 15,
  FixedSizeList: 16,
  Map: 17,
  Duration: 18,
  LargeBinary: 19,
  LargeUtf8: 20,
  LargeList: 21,
  RunEndEncoded: 22,
  BinaryView: 23,
  Utf8View: 24,
  ListView: 25,
  LargeListView: 26,
} as const;
/** One of {@link ArrowTypeId}. */
export type ArrowTypeId = (typeof ArrowTypeId)[keyof typeof ArrowTypeId];

/** Unit of a Date, Time, Timestamp, Duration or Interval type. */
export type ArrowUnit =
  | "day"
  | "second"
  | "millisecond"
  | "microsecond"
  | "nanosecond"
  | "year_month"
  | "day_time"
  | "month_day_nano";

/**
 * An Arrow data type as declared in a schema: the `Type` union tag and the parameters that
 * type has (absent parameters do not apply to it). Children are on the {@link FieldInfo}.
 */
export interface ArrowTypeInfo {
  readonly typeId: ArrowTypeId;
  /** Int: 8/16/32/64; FloatingPoint: 16/32/64; Decimal: 32/64/128/256; Time: 32/64. */
  readonly bitWidth?: number;
  /** Int: whether signed. */
  readonly signed?: boolean;
  /** Decimal: digits. */
  readonly precision?: number;
  /** Decimal: digits after the point (may be negative). */
  readonly scale?: number;
  /** Date, Time, Timestamp, Duration, Interval. */
  readonly unit?: ArrowUnit;
  /** Timestamp: the time zone, absent for a naive timestamp. */
  readonly timezone?: string;
  /** FixedSizeList: values per list. */
  readonly listSize?: number;
  /** FixedSizeBinary: bytes per value. */
  readonly byteWidth?: number;
  /** Union. */
  readonly mode?: "sparse" | "dense";
  /** Union: the type code of each child, in child order. */
  readonly typeIds?: readonly number[];
  /** Map: whether keys are sorted. */
  readonly keysSorted?: boolean;
}

/** The dictionary encoding of a field: the field's own type is the dictionary's value type. */
export interface DictionaryEncodingInfo {
  readonly id: bigint;
  /** The integer type of the indices (signed int32 when the schema leaves it out). */
  readonly indexType: { readonly bitWidth: number; readonly signed: boolean };
  readonly isOrdered: boolean;
}

/** One field of a schema, with its children. */
export interface FieldInfo {
  readonly name: string;
  readonly nullable: boolean;
  /** The (value) type. */
  readonly type: ArrowTypeInfo;
  readonly dictionary?: DictionaryEncodingInfo;
  readonly children: readonly FieldInfo[];
  /** Custom metadata, when the field has any. */
  readonly metadata?: ReadonlyMap<string, string>;
  /** `ARROW:extension:name` from the metadata, for extension types. */
  readonly extensionName?: string;
}

/** What role a buffer plays in a column's physical layout. */
export const BufferRole = {
  /** Validity bitmap: one bit per value (may be empty when there are no nulls). */
  VALIDITY: 0,
  /** Fixed-width values (`bitWidth` bits each). */
  DATA: 1,
  /** Offsets (`offsetWidth` bytes each): length + 1 of them for lists and binaries, length for views. */
  OFFSETS: 2,
  /** Bytes of variable-size binary or UTF-8 values. */
  BYTES: 3,
  /** 16-byte views of Utf8View/BinaryView. */
  VIEWS: 4,
  /** Sizes of ListView/LargeListView (`offsetWidth` bytes each). */
  SIZES: 5,
  /** 8-bit union type codes. */
  TYPE_IDS: 6,
  /** 32-bit dense-union offsets. */
  UNION_OFFSETS: 7,
} as const;
/** One of {@link BufferRole}. */
export type BufferRole = (typeof BufferRole)[keyof typeof BufferRole];

/** The physical layout classes of the Arrow columnar format. */
export const LayoutKind = {
  NULL: 0,
  FIXED: 1,
  VAR_BINARY: 2,
  VIEW: 3,
  LIST: 4,
  LIST_VIEW: 5,
  FIXED_SIZE_LIST: 6,
  STRUCT: 7,
  SPARSE_UNION: 8,
  DENSE_UNION: 9,
  RUN_END_ENCODED: 10,
} as const;
/** One of {@link LayoutKind}. */
export type LayoutKind = (typeof LayoutKind)[keyof typeof LayoutKind];

/**
 * How one field appears in a record batch: one field node, the buffers listed in `buffers`
 * (plus variadic data buffers for views), then its children's nodes and buffers depth-first.
 * A dictionary-encoded field is a FIXED column of its indices with no children here; its
 * values travel in dictionary batches.
 */
export interface ColumnLayout {
  /** Dotted path of field names, for error messages. */
  readonly path: string;
  readonly kind: LayoutKind;
  readonly buffers: readonly BufferRole[];
  /** Bits per value of the DATA buffer (1 for Bool), 0 when there is none. */
  readonly bitWidth: number;
  /** Bytes per offset or size (4 or 8), 0 when there are none. */
  readonly offsetWidth: number;
  /** FixedSizeList: values per list. */
  readonly listSize: number;
  /** The dictionary this column's indices point into. */
  readonly dictionaryId?: bigint;
  readonly children: readonly ColumnLayout[];
}

/** A dictionary declared by the schema: its id, value field and the layout of its batches. */
export interface DictionaryInfo {
  readonly id: bigint;
  /** The dictionary's values, as a field of the value type (without the encoding). */
  readonly valueField: FieldInfo;
  readonly indexType: { readonly bitWidth: number; readonly signed: boolean };
  readonly isOrdered: boolean;
  /** Paths of the fields encoded with this dictionary (more than one when shared). */
  readonly usedBy: readonly string[];
  /** Layout of the single column of this dictionary's batches. */
  readonly layout: ColumnLayout;
  /** Field nodes, buffers (without variadic ones) and view columns of one dictionary batch. */
  readonly nodeCount: number;
  readonly bufferCount: number;
  readonly variadicColumns: number;
  /** Other dictionaries whose indices occur inside this dictionary's values. */
  readonly nestedDictionaryIds: readonly bigint[];
}

/**
 * A schema message read by {@link readSchema}: its fields, and what every record batch and
 * dictionary batch of a stream with this schema must look like.
 */
export interface SchemaInfo {
  /** Metadata version of the schema message (V4 = 3, V5 = 4). */
  readonly version: number;
  readonly endianness: "little" | "big";
  readonly fields: readonly FieldInfo[];
  /** Schema-level custom metadata, when there is any. */
  readonly metadata?: ReadonlyMap<string, string>;
  /** Field nodes a record batch carries: one per field, nested ones included, not below a dictionary. */
  readonly nodeCount: number;
  /** Buffers a record batch carries, not counting the variadic data buffers of view columns. */
  readonly bufferCount: number;
  /** View columns (Utf8View/BinaryView); each has an entry in `variadicBufferCounts`. */
  readonly variadicColumns: number;
  /** Physical layout of each top-level column of a record batch. */
  readonly columns: readonly ColumnLayout[];
  /** Dictionaries by id. */
  readonly dictionaries: ReadonlyMap<bigint, DictionaryInfo>;
  /** Dictionaries whose indices occur in record batches (directly, not inside other dictionaries). */
  readonly recordBatchDictionaryIds: readonly bigint[];
}

/** Custom metadata key naming a field's extension type. */
export const EXTENSION_NAME = "ARROW:extension:name";
/** Custom metadata key holding a field's extension type parameters. */
export const EXTENSION_METADATA = "ARROW:extension:metadata";

/** How messages name a field: `field "a.b"`, long paths shortened. */
export function describePath(path: string): string {
  const shown = path.length > 80 ? `${path.slice(0, 77)}...` : path;
  return `field ${JSON.stringify(shown)}`;
}
