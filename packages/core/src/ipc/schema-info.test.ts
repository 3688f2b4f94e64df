import * as fs from "fs";
import * as path from "path";
import { tableFromIPC, type Field as ArrowField } from "apache-arrow";
import { StatusCode } from "../status-code";
import { splitIpcStream } from "./ipc-stream";
import { ArrowTypeId, BufferRole, LayoutKind, MAX_NESTING_DEPTH, type FieldInfo, type SchemaInfo } from "./arrow-schema";
import { formatArrowType } from "./arrow-type-format";
import { describeSchemaDifference } from "./schema-difference";
import { readSchema } from "./schema-info";
import {
  T,
  V4,
  V5,
  batchMessage,
  bool,
  field,
  i16,
  i32,
  i32s,
  i64,
  int32Field,
  recordBatch,
  schemaMessage,
  str,
  table,
  utf8Field,
  type Fb,
} from "./test-flatbuffer-builder";
import { flightErrorOf, listFiles, requireConformance } from "./test-helpers";

const corpus = requireConformance();
const schemaOf = (rel: string): SchemaInfo =>
  readSchema((splitIpcStream(fs.readFileSync(path.join(corpus, "ipc", rel)), { maxMessages: 1 })[0] as { header: Uint8Array }).header);

function refused(fields: Array<Array<Fb | undefined>>, pattern: RegExp, version = V5): void {
  const e = flightErrorOf(() => readSchema(schemaMessage(fields, version)));
  expect(e.code).toBe(StatusCode.INVALID_ARGUMENT);
  expect(e.message).toMatch(pattern);
}

describe("readSchema on the conformance corpus", () => {
  it("counts nodes and buffers per the columnar format", () => {
    const primitive = schemaOf("cpp-21.0.0/generated_primitive.stream");
    expect(primitive.fields).toHaveLength(22);
    expect([primitive.nodeCount, primitive.bufferCount, primitive.variadicColumns]).toEqual([22, 44, 0]);

    const union = schemaOf("cpp-21.0.0/generated_union.stream");
    expect(union.fields.map((f) => formatArrowType(f.type))).toEqual([
      "union[sparse; 5,7]",
      "union[dense; 10,20]",
      "union[sparse; 5,7]",
      "union[dense; 42,43,44]",
    ]);
    expect([union.nodeCount, union.bufferCount]).toEqual([13, 24]);

    const views = schemaOf("cpp-21.0.0/generated_binary_view.stream");
    expect([views.nodeCount, views.bufferCount, views.variadicColumns]).toEqual([2, 4, 2]);

    const ree = schemaOf("cpp-21.0.0/generated_run_end_encoded.stream");
    const reeField = ree.fields[0] as FieldInfo;
    expect(reeField.type.typeId).toBe(ArrowTypeId.RunEndEncoded);
    expect(ree.columns[0]?.kind).toBe(LayoutKind.RUN_END_ENCODED);
    expect(ree.columns[0]?.buffers).toEqual([]);

    const listView = schemaOf("cpp-21.0.0/generated_list_view.stream");
    expect(listView.columns[0]?.buffers).toEqual([BufferRole.VALIDITY, BufferRole.OFFSETS, BufferRole.SIZES]);

    const nulls = schemaOf("cpp-21.0.0/generated_null.stream");
    expect(nulls.columns.map((c) => c.buffers.length)).toContain(0);
  });

  it("reads type parameters", () => {
    const dt = schemaOf("cpp-21.0.0/generated_datetime.stream");
    const names = dt.fields.map((f) => formatArrowType(f.type));
    expect(names).toEqual(expect.arrayContaining(["date32[day]", "date64[ms]", "time32[s]", "time64[ns]", "timestamp[ms, tz=US/Eastern]"]));
    const dec = schemaOf("cpp-21.0.0/generated_decimal256.stream");
    expect(dec.fields[0]?.type).toMatchObject({ typeId: ArrowTypeId.Decimal, bitWidth: 256 });
    const ext = schemaOf("cpp-21.0.0/generated_extension.stream");
    expect(ext.fields.some((f) => f.extensionName !== undefined)).toBe(true);
    const meta = schemaOf("cpp-21.0.0/generated_custom_metadata.stream");
    expect(meta.metadata?.size ?? 0).toBeGreaterThan(0);
  });

  it("collects dictionaries with their value fields, nested and shared", () => {
    const dict = schemaOf("cpp-21.0.0/generated_dictionary.stream");
    expect([...dict.dictionaries.keys()].sort()).toEqual([0n, 1n, 2n]);
    expect(dict.dictionaries.get(0n)?.valueField.type.typeId).toBe(ArrowTypeId.Utf8);
    expect(dict.dictionaries.get(0n)?.indexType).toEqual({ bitWidth: 8, signed: true });
    expect([dict.nodeCount, dict.bufferCount]).toEqual([3, 6]);
    expect(dict.dictionaries.get(2n)?.bufferCount).toBe(2);

    const nested = schemaOf("cpp-21.0.0/generated_nested_dictionary.stream");
    expect(nested.dictionaries.size).toBe(5);
    expect(nested.recordBatchDictionaryIds.length).toBe(2);
    const withNested = [...nested.dictionaries.values()].filter((d) => d.nestedDictionaryIds.length > 0);
    expect(withNested.length).toBeGreaterThan(0);

    const shared = schemaOf("4.0.0-shareddict/generated_shared_dict.stream");
    expect([...shared.dictionaries.values()].some((d) => d.usedBy.length === 2)).toBe(true);
  });

  it("agrees with apache-arrow on names, nullability, types and dictionary ids", () => {
    for (const file of listFiles(path.join(corpus, "ipc")).filter((f) => f.endsWith(".stream"))) {
      const bytes = fs.readFileSync(file);
      let arrowFields: ArrowField[];
      try {
        arrowFields = tableFromIPC(bytes).schema.fields;
      } catch {
        continue; // types apache-arrow cannot decode (compression, list views, run-end encoding)
      }
      const ours = readSchemaFromBytes(bytes).fields;
      compareFields(ours, arrowFields, path.basename(file));
    }
  });

  it("is identical to itself and differs between datasets", () => {
    const a = schemaOf("cpp-21.0.0/generated_primitive.stream");
    expect(describeSchemaDifference(a, schemaOf("cpp-21.0.0/generated_primitive.stream"))).toBeUndefined();
    expect(describeSchemaDifference(a, schemaOf("cpp-21.0.0/generated_primitive_zerolength.stream"))).toBeUndefined();
    expect(describeSchemaDifference(a, schemaOf("cpp-21.0.0/generated_binary.stream"))).toMatch(/^field count 22 vs 8$/);
  });
});

function readSchemaFromBytes(bytes: Uint8Array): SchemaInfo {
  return readSchema((splitIpcStream(bytes, { maxMessages: 1 })[0] as { header: Uint8Array }).header);
}

function compareFields(ours: readonly FieldInfo[], theirs: readonly ArrowField[], where: string): void {
  expect(ours.length).toBe(theirs.length);
  ours.forEach((f, i) => {
    const t = theirs[i] as ArrowField;
    const context = `${where}: ${f.name}`;
    expect(`${context} ${f.name} ${f.nullable}`).toBe(`${context} ${t.name} ${t.nullable}`);
    const type = t.type as { typeId: number; id?: number; dictionary?: { typeId: number; children?: ArrowField[] } };
    if (f.dictionary !== undefined) {
      expect(`${context} dictionary ${f.dictionary.id}`).toBe(`${context} dictionary ${type.id}`);
      expect(f.type.typeId).toBe(type.dictionary?.typeId);
      compareFields(f.children, type.dictionary?.children ?? [], where);
    } else {
      expect(`${context} type ${f.type.typeId}`).toBe(`${context} type ${type.typeId}`);
      compareFields(f.children, t.type.children ?? [], where);
    }
  });
}

describe("readSchema layouts", () => {
  const unionField = (mode: number) =>
    field("u", T.Union, [i16(mode), i32s([0, 1])], { children: [int32Field("a"), utf8Field("b")] });

  it("lays out V5 unions without and V4 unions with a validity bitmap", () => {
    const v5 = readSchema(schemaMessage([unionField(0), unionField(1)], V5));
    expect(v5.columns.map((c) => c.buffers)).toEqual([
      [BufferRole.TYPE_IDS],
      [BufferRole.TYPE_IDS, BufferRole.UNION_OFFSETS],
    ]);
    // Sparse: 1 + (2 + 3); dense: 2 + (2 + 3).
    expect([v5.nodeCount, v5.bufferCount]).toEqual([6, 13]);
    const v4 = readSchema(schemaMessage([unionField(0), unionField(1)], V4));
    expect(v4.columns.map((c) => c.buffers.length)).toEqual([2, 3]);
    expect(v4.bufferCount).toBe(15);
  });

  it("lays out null, dictionary-encoded and run-end encoded fields", () => {
    const schema = readSchema(
      schemaMessage([
        field("n", T.Null),
        field("d", T.List, [], {
          children: [utf8Field("item")],
          dictionary: [i64(5), table(i32(16), bool(false))],
        }),
        field("r", T.RunEndEncoded, [], {
          children: [field("run_ends", T.Int, [i32(32), bool(true)], { nullable: false }), utf8Field("values")],
        }),
      ]),
    );
    expect(schema.columns.map((c) => c.buffers.length)).toEqual([0, 2, 0]);
    expect(schema.columns[1]).toMatchObject({ kind: LayoutKind.FIXED, bitWidth: 16, dictionaryId: 5n, children: [] });
    // null: 1 node; dictionary: 1 node (its list values travel in dictionary batches); ree: 3 nodes.
    expect([schema.nodeCount, schema.bufferCount]).toEqual([5, 2 + 2 + 3]);
    const dict = schema.dictionaries.get(5n);
    expect(dict?.indexType).toEqual({ bitWidth: 16, signed: false });
    expect([dict?.nodeCount, dict?.bufferCount]).toEqual([2, 5]);
    expect(dict?.valueField.dictionary).toBeUndefined();
  });

  it("defaults dictionary indices to int32", () => {
    const schema = readSchema(schemaMessage([field("d", T.Utf8, [], { dictionary: [i64(1)] })]));
    expect(schema.fields[0]?.dictionary?.indexType).toEqual({ bitWidth: 32, signed: true });
  });
});

describe("readSchema refuses", () => {
  it("bad type parameters", () => {
    refused([field("x", T.Int, [i32(7), bool(true)])], /field "x": invalid integer bit width 7/);
    refused([field("x", T.FloatingPoint, [i16(3)])], /floating point precision 3/);
    refused([field("x", T.Decimal, [i32(40), i32(2), i32(128)])], /decimal128 precision 40 is outside 1..38/);
    refused([field("x", T.Decimal, [i32(4), i32(2), i32(100)])], /decimal bit width 100/);
    refused([field("x", T.Time, [i16(3), i32(32)])], /time in nanoseconds must be 64 bits/);
    refused([field("x", 99)], /unknown type 99/);
    refused([[str("x"), bool(true)]], /field "x" has no type/);
    refused([field("x", T.Utf8, [], { dictionary: [i64(1), table(i32(12), bool(true))] })], /dictionary index bit width 12/);
  });

  it("wrong child counts", () => {
    refused([field("l", T.List)], /list must have exactly 1 child field, not 0/);
    refused([field("i", T.Int, [i32(32), bool(true)], { children: [utf8Field("c")] })], /int32 must have no child fields, not 1/);
    refused([field("m", T.Map, [], { children: [int32Field("e")] })], /map entries must be a struct of key and value/);
    refused(
      [field("m", T.Map, [], { children: [field("entries", T.Struct, [], { nullable: false, children: [int32Field("k", true), int32Field("v")] })] })],
      /map keys must not be nullable/,
    );
    refused([field("r", T.RunEndEncoded, [], { children: [utf8Field("a"), utf8Field("b")] })], /run ends must be int16, int32 or int64/);
    refused([field("u", T.Union, [i16(0), i32s([1])], { children: [int32Field("a"), int32Field("b")] })], /1 type codes for 2 children/);
    refused([field("u", T.Union, [i16(0), i32s([1, 1])], { children: [int32Field("a"), int32Field("b")] })], /type code 1 appears twice/);
    refused([field("u", T.Union, [i16(0), i32s([200])], { children: [int32Field("a")] })], /type code 200 is outside 0..127/);
  });

  it("nesting deeper than the limit", () => {
    let f = int32Field("leaf");
    for (let i = 0; i < MAX_NESTING_DEPTH; i++) f = field(`s${i}`, T.Struct, [], { children: [f] });
    refused([f], /nested more than 64 levels deep/);
  });

  it("a dictionary nested inside its own values", () => {
    const inner = field("inner", T.Utf8, [], { dictionary: [i64(1)] });
    refused([field("outer", T.List, [], { children: [inner], dictionary: [i64(1)] })], /dictionary id 1 is nested inside its own values/);
  });

  it("a shared dictionary id with different value types", () => {
    refused(
      [field("a", T.Utf8, [], { dictionary: [i64(3)] }), field("b", T.Binary, [], { dictionary: [i64(3)] })],
      /dictionary id 3 is shared by fields with different value types \(field "b": utf8 vs binary\)/,
    );
  });

  it("a message that is not a schema", () => {
    const e = flightErrorOf(() => readSchema(batchMessage(recordBatch({ length: 0, nodes: [], buffers: [] }), 0)));
    expect(e.message).toBe("expected a schema message");
  });
});

describe("describeSchemaDifference", () => {
  const schema = (...fields: Array<Array<Fb | undefined>>) => readSchema(schemaMessage(fields));

  it("names the first difference", () => {
    const base = schema(int32Field("x"), utf8Field("y"));
    expect(describeSchemaDifference(base, schema(int32Field("x"), utf8Field("y")))).toBeUndefined();
    expect(describeSchemaDifference(base, schema(int32Field("x")))).toBe("field count 2 vs 1");
    expect(describeSchemaDifference(base, schema(int32Field("x"), utf8Field("z")))).toBe('field 1: name "y" vs "z"');
    expect(describeSchemaDifference(base, schema(field("x", T.FloatingPoint, [i16(2)]), utf8Field("y")))).toBe(
      'field "x": int32 vs float64',
    );
    expect(describeSchemaDifference(base, schema(int32Field("x", false), utf8Field("y")))).toBe('field "x": nullable vs non-nullable');
  });

  it("looks into children, dictionaries and extension types", () => {
    const list = (item: Array<Fb | undefined>) => schema(field("l", T.List, [], { children: [item] }));
    expect(describeSchemaDifference(list(int32Field("item")), list(utf8Field("item")))).toBe('field "l.item": int32 vs utf8');
    const dict = (id: number) => schema(field("d", T.Utf8, [], { dictionary: [i64(id)] }));
    expect(describeSchemaDifference(dict(1), dict(2))).toBe('field "d": dictionary<id=1, int32>(utf8) vs dictionary<id=2, int32>(utf8)');
    const withMeta = (name: string) => {
      const f = int32Field("e");
      f[6] = { t: "tables", v: [[str("ARROW:extension:name"), str(name)], [str("other"), str(name)]] };
      return schema(f);
    };
    expect(describeSchemaDifference(withMeta("uuid"), withMeta("uuid"))).toBeUndefined();
    expect(describeSchemaDifference(withMeta("uuid"), withMeta("json"))).toBe('field "e": extension<uuid>(int32) vs extension<json>(int32)');
  });

  it("ignores custom metadata that is not about extension types", () => {
    const a = int32Field("x");
    a[6] = { t: "tables", v: [[str("comment"), str("a")]] };
    const b = int32Field("x");
    b[6] = { t: "tables", v: [[str("comment"), str("b")]] };
    expect(describeSchemaDifference(schema(a), schema(b))).toBeUndefined();
  });
});

describe("formatArrowType", () => {
  it("gives short names", () => {
    expect(formatArrowType({ typeId: ArrowTypeId.Int, bitWidth: 16, signed: false })).toBe("uint16");
    expect(formatArrowType({ typeId: ArrowTypeId.Decimal, precision: 10, scale: 2, bitWidth: 128 })).toBe("decimal128(10, 2)");
    expect(formatArrowType({ typeId: ArrowTypeId.Timestamp, unit: "millisecond" })).toBe("timestamp[ms]");
    expect(formatArrowType({ typeId: ArrowTypeId.FixedSizeList, listSize: 3 })).toBe("fixed_size_list[3]");
  });
});
