import { ArrowTypeId, formatArrowType, type FieldInfo, type SchemaInfo } from "@blackice/flight-core";

// Which Arrow types the engine (nodejs-polars 0.24.1) cannot read from an IPC stream. Found by
// trying (docs/query.md lists the results): pyarrow 26 wrote a stream of each type and
// polars' readIPCStream was asked to read it. test/python/test_query_engine.py puts a flight
// of each and checks the refusal. Checking the schema first lets a query be refused with the
// column's name and type before any data is loaded; polars' own errors for these types ("not
// yet implemented", a panic message) name neither. A type polars fails on that is not listed
// here still fails cleanly: INVALID_ARGUMENT with polars' message and the table's name.

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

/** A column the engine cannot read: its top-level name and type, and the nested field at fault if it is not the column itself. */
export interface UnreadableColumn {
  readonly column: string;
  /** The column's type (`float16`, `list`, ...). */
  readonly type: string;
  /** The nested field whose type the engine cannot read, as `its field "a.b" is <type>`; absent when it is the column's own type. */
  readonly nested?: string;
}

/** The first column of a schema whose type (or a nested field's) the engine cannot read. */
export function unreadableColumn(schema: SchemaInfo): UnreadableColumn | undefined {
  for (const field of schema.fields) {
    const own = unreadable(field);
    if (own !== undefined) return { column: field.name, type: own };
    for (const child of field.children) {
      const found = walk(child, [child.name]);
      if (found !== undefined) return { column: field.name, type: formatArrowType(field.type), nested: found };
    }
  }
  return undefined;
}

function walk(field: FieldInfo, path: readonly string[]): string | undefined {
  const own = unreadable(field);
  if (own !== undefined) return `its field ${JSON.stringify(path.join("."))} is ${own}`;
  for (const child of field.children) {
    const found = walk(child, [...path, child.name]);
    if (found !== undefined) return found;
  }
  return undefined;
}
