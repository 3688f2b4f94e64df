import { ArrowTypeId, type ArrowTypeInfo, type FieldInfo } from "./arrow-schema";

// Short, unambiguous names of Arrow types and fields, for messages and schema comparison.

const UNIT_ABBREVIATION: Readonly<Record<string, string>> = {
  second: "s",
  millisecond: "ms",
  microsecond: "us",
  nanosecond: "ns",
  day: "day",
};

/**
 * A short, unambiguous name for a type without its children, such as `int32`, `uint8`,
 * `float64`, `decimal128(10, 2)`, `timestamp[us, tz=UTC]` or `union[dense; 0,1]`. Two
 * types have the same name exactly when they have the same tag and parameters.
 *
 * @example
 * formatArrowType({ typeId: ArrowTypeId.Int, bitWidth: 16, signed: false }); // "uint16"
 */
export function formatArrowType(type: ArrowTypeInfo): string {
  const unit = type.unit === undefined ? "" : (UNIT_ABBREVIATION[type.unit] ?? type.unit);
  switch (type.typeId) {
    case ArrowTypeId.Null:
      return "null";
    case ArrowTypeId.Int:
      return `${type.signed ? "int" : "uint"}${type.bitWidth}`;
    case ArrowTypeId.FloatingPoint:
      return `float${type.bitWidth}`;
    case ArrowTypeId.Binary:
      return "binary";
    case ArrowTypeId.Utf8:
      return "utf8";
    case ArrowTypeId.Bool:
      return "bool";
    case ArrowTypeId.Decimal:
      return `decimal${type.bitWidth}(${type.precision}, ${type.scale})`;
    case ArrowTypeId.Date:
      return type.unit === "day" ? "date32[day]" : "date64[ms]";
    case ArrowTypeId.Time:
      return `time${type.bitWidth}[${unit}]`;
    case ArrowTypeId.Timestamp:
      return type.timezone === undefined ? `timestamp[${unit}]` : `timestamp[${unit}, tz=${type.timezone}]`;
    case ArrowTypeId.Interval:
      return `interval[${type.unit}]`;
    case ArrowTypeId.List:
      return "list";
    case ArrowTypeId.Struct:
      return "struct";
    case ArrowTypeId.Union:
      return `union[${type.mode}${type.typeIds === undefined ? "" : `; ${type.typeIds.join(",")}`}]`;
    case ArrowTypeId.FixedSizeBinary:
      return `fixed_size_binary[${type.byteWidth}]`;
    case ArrowTypeId.FixedSizeList:
      return `fixed_size_list[${type.listSize}]`;
    case ArrowTypeId.Map:
      return type.keysSorted ? "map[keys_sorted]" : "map";
    case ArrowTypeId.Duration:
      return `duration[${unit}]`;
    case ArrowTypeId.LargeBinary:
      return "large_binary";
    case ArrowTypeId.LargeUtf8:
      return "large_utf8";
    case ArrowTypeId.LargeList:
      return "large_list";
    case ArrowTypeId.RunEndEncoded:
      return "run_end_encoded";
    case ArrowTypeId.BinaryView:
      return "binary_view";
    case ArrowTypeId.Utf8View:
      return "utf8_view";
    case ArrowTypeId.ListView:
      return "list_view";
    case ArrowTypeId.LargeListView:
      return "large_list_view";
    default:
      return `type ${String(type.typeId)}`;
  }
}

/** A field's type with its extension type and dictionary encoding, without its name. */
export function formatField(field: FieldInfo): string {
  let s = formatArrowType(field.type);
  if (field.extensionName !== undefined) s = `extension<${field.extensionName}>(${s})`;
  if (field.dictionary !== undefined) {
    const d = field.dictionary;
    s = `dictionary<id=${d.id}, ${d.indexType.signed ? "int" : "uint"}${d.indexType.bitWidth}${d.isOrdered ? ", ordered" : ""}>(${s})`;
  }
  return s;
}
