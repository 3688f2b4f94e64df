import { ArrowTypeId, formatArrowType, type FieldInfo, type SchemaInfo } from "@blackice/flight-core";

// Which Arrow types the engine (nodejs-polars 0.24.1) cannot read from an IPC stream. Found by
// trying: pyarrow 26 wrote a stream of each type and polars' readIPCStream was asked to read
// it (engine-types.slow.test.ts repeats the experiment against the real engine, so a polars
// upgrade that reads more, or less, fails that test). Checking the schema first lets a query
// be refused with the column's name and type before any data is loaded; polars' own errors
// for these types ("not yet implemented", a panic message) name neither.

/** Why the engine cannot read a type, or undefined when it can. */
function unreadable(field: FieldInfo): string | undefined {
  const t = field.type;
  switch (t.typeId) {
    case ArrowTypeId.Union:
    case ArrowTypeId.RunEndEncoded:
    case ArrowTypeId.ListView:
    case ArrowTypeId.LargeListView:
    case ArrowTypeId.FixedSizeBinary:
    case ArrowTypeId.Interval:
      return formatArrowType(t);
    case ArrowTypeId.FloatingPoint:
      return t.bitWidth === 16 ? formatArrowType(t) : undefined;
    case ArrowTypeId.Decimal:
      return t.bitWidth === 256 ? formatArrowType(t) : undefined;
    default:
      return undefined;
  }
}

/** A column the engine cannot read: its top-level name, and the type (possibly nested inside it) at fault. */
export interface UnreadableColumn {
  readonly column: string;
  /** The column's own type when it is the one at fault, else `<path>: <type>` of the nested field. */
  readonly type: string;
}

/** The first column of a schema whose type (or a nested field's) the engine cannot read. */
export function unreadableColumn(schema: SchemaInfo): UnreadableColumn | undefined {
  for (const field of schema.fields) {
    const found = walk(field, []);
    if (found !== undefined) return { column: field.name, type: found };
  }
  return undefined;
}

function walk(field: FieldInfo, path: readonly string[]): string | undefined {
  const own = unreadable(field);
  if (own !== undefined) return path.length === 0 ? own : `${path.join(".")}: ${own}`;
  for (const child of field.children) {
    const found = walk(child, [...path, child.name]);
    if (found !== undefined) return found;
  }
  return undefined;
}
