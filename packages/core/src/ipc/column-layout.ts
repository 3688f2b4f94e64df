import { ArrowTypeId, BufferRole, LayoutKind, type ArrowTypeInfo, type ColumnLayout, type FieldInfo } from "./arrow-schema";
import { MetadataVersion } from "./message-header";

// The physical layout of a column per the Arrow columnar format: how many field nodes and
// buffers (and which) a record batch carries for a field, nested ones included.


/** Bits per value of a fixed-width type, or 0 when the type is not fixed-width. */
function fixedBitWidth(type: ArrowTypeInfo): number {
  switch (type.typeId) {
    case ArrowTypeId.Bool:
      return 1;
    case ArrowTypeId.Int:
    case ArrowTypeId.FloatingPoint:
    case ArrowTypeId.Decimal:
    case ArrowTypeId.Time:
      return type.bitWidth as number;
    case ArrowTypeId.Date:
      return type.unit === "day" ? 32 : 64;
    case ArrowTypeId.Timestamp:
    case ArrowTypeId.Duration:
      return 64;
    case ArrowTypeId.Interval:
      return type.unit === "year_month" ? 32 : type.unit === "day_time" ? 64 : 128;
    case ArrowTypeId.FixedSizeBinary:
      return 8 * (type.byteWidth as number);
    default:
      return 0;
  }
}

const R = BufferRole;
const ROLES_FIXED = [R.VALIDITY, R.DATA] as const;
const ROLES_VAR_BINARY = [R.VALIDITY, R.OFFSETS, R.BYTES] as const;
const ROLES_VIEW = [R.VALIDITY, R.VIEWS] as const;
const ROLES_LIST = [R.VALIDITY, R.OFFSETS] as const;
const ROLES_LIST_VIEW = [R.VALIDITY, R.OFFSETS, R.SIZES] as const;
const ROLES_VALIDITY = [R.VALIDITY] as const;
const ROLES_NONE = [] as const;
const ROLES_SPARSE_V5 = [R.TYPE_IDS] as const;
const ROLES_DENSE_V5 = [R.TYPE_IDS, R.UNION_OFFSETS] as const;
const ROLES_SPARSE_V4 = [R.VALIDITY, R.TYPE_IDS] as const;
const ROLES_DENSE_V4 = [R.VALIDITY, R.TYPE_IDS, R.UNION_OFFSETS] as const;

/** Running counts of a schema's layout. */
export interface LayoutCounts {
  nodes: number;
  buffers: number;
  variadic: number;
}

/**
 * The physical layout of `field` in a batch, adding its nodes, buffers and view columns to
 * `counts` and the dictionaries it references to `dictionaryIds`.
 */
export function layoutOf(field: FieldInfo, parentPath: string, version: number, counts: LayoutCounts, dictionaryIds: Set<bigint>): ColumnLayout {
  const path = parentPath === "" ? field.name : `${parentPath}.${field.name}`;
  counts.nodes++;
  if (field.dictionary !== undefined) {
    counts.buffers += 2;
    dictionaryIds.add(field.dictionary.id);
    return {
      path,
      kind: LayoutKind.FIXED,
      buffers: ROLES_FIXED,
      bitWidth: field.dictionary.indexType.bitWidth,
      offsetWidth: 0,
      listSize: 0,
      dictionaryId: field.dictionary.id,
      children: [],
    };
  }
  const type = field.type;
  let kind: LayoutKind;
  let buffers: readonly BufferRole[];
  let offsetWidth = 0;
  switch (type.typeId) {
    case ArrowTypeId.Null:
      kind = LayoutKind.NULL;
      buffers = ROLES_NONE;
      break;
    case ArrowTypeId.Binary:
    case ArrowTypeId.Utf8:
    case ArrowTypeId.LargeBinary:
    case ArrowTypeId.LargeUtf8:
      kind = LayoutKind.VAR_BINARY;
      buffers = ROLES_VAR_BINARY;
      offsetWidth = type.typeId === ArrowTypeId.Binary || type.typeId === ArrowTypeId.Utf8 ? 4 : 8;
      break;
    case ArrowTypeId.BinaryView:
    case ArrowTypeId.Utf8View:
      kind = LayoutKind.VIEW;
      buffers = ROLES_VIEW;
      counts.variadic++;
      break;
    case ArrowTypeId.List:
    case ArrowTypeId.Map:
    case ArrowTypeId.LargeList:
      kind = LayoutKind.LIST;
      buffers = ROLES_LIST;
      offsetWidth = type.typeId === ArrowTypeId.LargeList ? 8 : 4;
      break;
    case ArrowTypeId.ListView:
    case ArrowTypeId.LargeListView:
      kind = LayoutKind.LIST_VIEW;
      buffers = ROLES_LIST_VIEW;
      offsetWidth = type.typeId === ArrowTypeId.LargeListView ? 8 : 4;
      break;
    case ArrowTypeId.FixedSizeList:
      kind = LayoutKind.FIXED_SIZE_LIST;
      buffers = ROLES_VALIDITY;
      break;
    case ArrowTypeId.Struct:
      kind = LayoutKind.STRUCT;
      buffers = ROLES_VALIDITY;
      break;
    case ArrowTypeId.Union: {
      const v4 = version < MetadataVersion.V5;
      if (type.mode === "dense") {
        kind = LayoutKind.DENSE_UNION;
        buffers = v4 ? ROLES_DENSE_V4 : ROLES_DENSE_V5;
      } else {
        kind = LayoutKind.SPARSE_UNION;
        buffers = v4 ? ROLES_SPARSE_V4 : ROLES_SPARSE_V5;
      }
      break;
    }
    case ArrowTypeId.RunEndEncoded:
      kind = LayoutKind.RUN_END_ENCODED;
      buffers = ROLES_NONE;
      break;
    default:
      kind = LayoutKind.FIXED;
      buffers = ROLES_FIXED;
  }
  counts.buffers += buffers.length;
  const children = field.children.map((child) => layoutOf(child, path, version, counts, dictionaryIds));
  return {
    path,
    kind,
    buffers,
    bitWidth: fixedBitWidth(type),
    offsetWidth,
    listSize: type.listSize ?? 0,
    children,
  };
}
