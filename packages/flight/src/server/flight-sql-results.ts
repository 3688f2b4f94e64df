// The Arrow tables that answer Flight SQL metadata commands, built with apache-arrow (the
// package's peer dependency, loaded by `loadArrow`). They are a few rows each: building them
// with the library meant for it is simpler and safer than hand-writing IPC flatbuffers, and
// the hot path (DoGet of stored flights) never goes through here.
import type * as Arrow from "apache-arrow";
import type { FlightData } from "@blackice/flight-core";
import { encodeTable, type ArrowModule } from "../client/arrow-interop";
import { encapsulateMessage } from "./ipc-encapsulate";

/** A metadata result: the IPC-encapsulated schema (for FlightInfo and GetSchema) and, lazily, the messages of its DoGet. */
export interface MetadataResult {
  readonly schema: Uint8Array;
  messages(): Iterable<FlightData>;
}

function result(arrow: ArrowModule, table: Arrow.Table): MetadataResult {
  const first = encodeTable(arrow, table).next();
  if (first.done) throw new Error("encodeTable yielded no schema message");
  return { schema: encapsulateMessage(first.value.dataHeader), messages: () => encodeTable(arrow, table) };
}

/** A table of the given fields and columns (arrays of JS values, one per field). */
function tableOf(arrow: ArrowModule, fields: Arrow.Field[], columns: Arrow.Data[], length: number): Arrow.Table {
  const schema = new arrow.Schema(fields);
  const data = arrow.makeData({ type: new arrow.Struct(fields), length, nullCount: 0, children: columns });
  return new arrow.Table([new arrow.RecordBatch(schema, data)]);
}

const utf8 = (arrow: ArrowModule, name: string, nullable: boolean): Arrow.Field => new arrow.Field(name, new arrow.Utf8(), nullable);
const strings = (arrow: ArrowModule, values: readonly (string | null)[]): Arrow.Data => arrow.vectorFromArray(values as (string | null)[], new arrow.Utf8()).data[0]!;

/** CommandGetCatalogs: `catalog_name utf8 not null`. */
export function catalogsResult(arrow: ArrowModule, catalogs: readonly string[]): MetadataResult {
  return result(arrow, tableOf(arrow, [utf8(arrow, "catalog_name", false)], [strings(arrow, catalogs)], catalogs.length));
}

/** CommandGetDbSchemas: `catalog_name utf8, db_schema_name utf8 not null`. */
export function dbSchemasResult(arrow: ArrowModule, rows: readonly { catalog: string | null; dbSchema: string }[]): MetadataResult {
  return result(
    arrow,
    tableOf(
      arrow,
      [utf8(arrow, "catalog_name", true), utf8(arrow, "db_schema_name", false)],
      [strings(arrow, rows.map((r) => r.catalog)), strings(arrow, rows.map((r) => r.dbSchema))],
      rows.length,
    ),
  );
}

/** One row of CommandGetTables. `schema` is the table's encapsulated IPC schema (with include_schema). */
export interface TableRow {
  catalog: string | null;
  dbSchema: string | null;
  table: string;
  tableType: string;
  schema?: Uint8Array;
}

/**
 * CommandGetTables: `catalog_name utf8, db_schema_name utf8, table_name utf8 not null,
 * table_type utf8 not null`, and with `includeSchema` `table_schema binary not null`.
 */
export function tablesResult(arrow: ArrowModule, rows: readonly TableRow[], includeSchema: boolean): MetadataResult {
  const fields = [utf8(arrow, "catalog_name", true), utf8(arrow, "db_schema_name", true), utf8(arrow, "table_name", false), utf8(arrow, "table_type", false)];
  if (includeSchema) fields.push(new arrow.Field("table_schema", new arrow.Binary(), false));
  const schema = new arrow.Schema(fields);
  const batches: Arrow.RecordBatch[] = [];
  // One record batch per run of rows holding at most TABLES_BATCH_BYTES of names and schemas
  // (and TABLES_BATCH_ROWS rows), so that a store of many flights with large schemas is
  // answered in messages well under the server's message limit.
  for (let start = 0; start < rows.length || (start === 0 && batches.length === 0); ) {
    let end = start;
    let bytes = 0;
    while (end < rows.length && end - start < TABLES_BATCH_ROWS) {
      const r = rows[end]!;
      const size = r.table.length * 3 + (includeSchema ? (r.schema?.byteLength ?? 0) : 0);
      if (end > start && bytes + size > TABLES_BATCH_BYTES) break;
      bytes += size;
      end++;
    }
    const part = rows.slice(start, end);
    const columns = [
      strings(arrow, part.map((r) => r.catalog)),
      strings(arrow, part.map((r) => r.dbSchema)),
      strings(arrow, part.map((r) => r.table)),
      strings(arrow, part.map((r) => r.tableType)),
    ];
    if (includeSchema) columns.push(arrow.vectorFromArray(part.map((r) => r.schema ?? new Uint8Array(0)), new arrow.Binary()).data[0]!);
    batches.push(new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(fields), length: part.length, nullCount: 0, children: columns })));
    if (end === rows.length) break;
    start = end;
  }
  return result(arrow, new arrow.Table(batches));
}

/** Most bytes of table names and schemas in one record batch of CommandGetTables. */
export const TABLES_BATCH_BYTES = 4 * 1024 * 1024;
/** Most rows in one record batch of CommandGetTables. */
export const TABLES_BATCH_ROWS = 10_000;

/** CommandGetTableTypes: `table_type utf8 not null`. */
export function tableTypesResult(arrow: ArrowModule, types: readonly string[]): MetadataResult {
  return result(arrow, tableOf(arrow, [utf8(arrow, "table_type", false)], [strings(arrow, types)], types.length));
}

/** A value of CommandGetSqlInfo, one member of its dense union. */
export type SqlInfoValue =
  | { readonly string: string }
  | { readonly bool: boolean }
  | { readonly bigint: number }
  | { readonly int32Bitmask: number }
  | { readonly stringList: readonly string[] };

/**
 * CommandGetSqlInfo: `info_name uint32 not null, value dense_union<string_value: utf8,
 * bool_value: bool, bigint_value: int64, int32_bitmask: int32, string_list: list<utf8>,
 * int32_to_int32_list_map: map<int32, list<int32>>> not null` (type ids 0 to 5, in that
 * order; the members themselves not null).
 */
export function sqlInfoResult(arrow: ArrowModule, rows: readonly { id: number; value: SqlInfoValue }[]): MetadataResult {
  const listOfUtf8 = new arrow.List(new arrow.Field("item", new arrow.Utf8(), true));
  const entries = new arrow.Struct([new arrow.Field("key", new arrow.Int32(), false), new arrow.Field("value", new arrow.List(new arrow.Field("item", new arrow.Int32(), true)), true)]);
  const mapType = new arrow.Map_(new arrow.Field("entries", entries, false), false);
  // Members not nullable, as arrow-go's reference schema (flightsql/schema_ref.SqlInfo) has
  // them: its clients compare the schema for equality (the arrow-go flight_sql:extension
  // integration scenario does).
  const members = [
    new arrow.Field("string_value", new arrow.Utf8(), false),
    new arrow.Field("bool_value", new arrow.Bool(), false),
    new arrow.Field("bigint_value", new arrow.Int64(), false),
    new arrow.Field("int32_bitmask", new arrow.Int32(), false),
    new arrow.Field("string_list", listOfUtf8, false),
    new arrow.Field("int32_to_int32_list_map", mapType, false),
  ];
  const unionType = new arrow.DenseUnion([0, 1, 2, 3, 4, 5], members);
  const byMember: unknown[][] = [[], [], [], [], [], []];
  const typeIds = new Int8Array(rows.length);
  const offsets = new Int32Array(rows.length);
  rows.forEach(({ value }, i) => {
    const [member, v] =
      "string" in value ? [0, value.string] : "bool" in value ? [1, value.bool] : "bigint" in value ? [2, BigInt(value.bigint)] : "int32Bitmask" in value ? [3, value.int32Bitmask] : [4, [...value.stringList]];
    typeIds[i] = member;
    offsets[i] = byMember[member]!.length;
    byMember[member]!.push(v);
  });
  const emptyMap = arrow.makeData({
    type: mapType,
    length: 0,
    nullCount: 0,
    valueOffsets: new Int32Array([0]),
    child: arrow.makeData({ type: entries, length: 0, nullCount: 0, children: entries.children.map((f) => arrow.vectorFromArray([], f.type).data[0]!) }),
  });
  const children = [
    arrow.vectorFromArray(byMember[0] as string[], new arrow.Utf8()).data[0]!,
    arrow.vectorFromArray(byMember[1] as boolean[], new arrow.Bool()).data[0]!,
    arrow.vectorFromArray(byMember[2] as bigint[], new arrow.Int64()).data[0]!,
    arrow.vectorFromArray(byMember[3] as number[], new arrow.Int32()).data[0]!,
    arrow.vectorFromArray(byMember[4] as string[][], listOfUtf8).data[0]!,
    emptyMap,
  ];
  const values = arrow.makeData({ type: unionType, length: rows.length, nullCount: 0, typeIds, valueOffsets: offsets, children });
  return result(
    arrow,
    tableOf(arrow, [new arrow.Field("info_name", new arrow.Uint32(), false), new arrow.Field("value", unionType, false)], [arrow.vectorFromArray(rows.map((r) => r.id), new arrow.Uint32()).data[0]!, values], rows.length),
  );
}
