// Compares apache-arrow JS record batches type for type and value for value, and names the
// first difference (batch, column, row) so that a failing cell says what went wrong.

import * as arrow from "apache-arrow";

/** A readable, complete description of a field: name, type parameters, nullability, metadata. */
export function fieldSignature(f: arrow.Field): string {
  // Metadata is a map: order does not matter. A missing name and "" are the same on the wire.
  const meta = f.metadata.size > 0 ? ` {${[...f.metadata].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join(", ")}}` : "";
  return `${f.name ?? ""}: ${typeSignature(f.type)}${f.nullable ? "" : " not null"}${meta}`;
}

/** A description of a type including every parameter and child. */
export function typeSignature(t: arrow.DataType): string {
  const children = (): string => (t.children ?? []).map(fieldSignature).join(", ");
  if (arrow.DataType.isDictionary(t)) {
    return `dictionary<${typeSignature(t.dictionary)}, ${typeSignature(t.indices)}${t.isOrdered ? ", ordered" : ""}>`;
  }
  switch (t.typeId) {
    case arrow.Type.Int: {
      const i = t as arrow.Int;
      return `${i.isSigned ? "int" : "uint"}${i.bitWidth}`;
    }
    case arrow.Type.Float:
      return ["float16", "float32", "float64"][(t as arrow.Float).precision];
    case arrow.Type.Decimal: {
      const d = t as arrow.Decimal;
      return `decimal${d.bitWidth}(${d.precision}, ${d.scale})`;
    }
    case arrow.Type.Date:
      return `date[${arrow.DateUnit[(t as arrow.Date_).unit]}]`;
    case arrow.Type.Time: {
      const x = t as arrow.Time;
      return `time${x.bitWidth}[${arrow.TimeUnit[x.unit]}]`;
    }
    case arrow.Type.Timestamp: {
      const x = t as arrow.Timestamp;
      return `timestamp[${arrow.TimeUnit[x.unit]}${x.timezone ? `, ${x.timezone}` : ""}]`;
    }
    case arrow.Type.Duration:
      return `duration[${arrow.TimeUnit[(t as arrow.Duration).unit]}]`;
    case arrow.Type.Interval:
      return `interval[${arrow.IntervalUnit[(t as arrow.Interval).unit]}]`;
    case arrow.Type.FixedSizeBinary:
      return `fixed_size_binary[${(t as arrow.FixedSizeBinary).byteWidth}]`;
    case arrow.Type.FixedSizeList:
      return `fixed_size_list[${(t as arrow.FixedSizeList).listSize}]<${children()}>`;
    case arrow.Type.Map:
      return `map${(t as arrow.Map_).keysSorted ? "[sorted]" : ""}<${children()}>`;
    case arrow.Type.Union: {
      const u = t as arrow.Union;
      return `${u.mode === arrow.UnionMode.Dense ? "dense" : "sparse"}_union[${Array.from(u.typeIds).join(",")}]<${children()}>`;
    }
    case arrow.Type.List:
    case arrow.Type.LargeList:
    case arrow.Type.Struct:
      return `${arrow.Type[t.typeId].toLowerCase()}<${children()}>`;
    default:
      return arrow.Type[t.typeId].toLowerCase();
  }
}

/** Turns a value from `Vector.get` into plain JSON-comparable data. */
export function plain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v;
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString("hex")}`;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, plain);
  if (v instanceof arrow.Vector) return Array.from({ length: v.length }, (_, i) => plain(v.get(i)));
  if (v instanceof Map) return [...v].map(([k, x]) => [plain(k), plain(x)]);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "object") {
    const o = v as { toJSON?: () => unknown; [Symbol.iterator]?: unknown };
    // A struct value by position: field names may repeat (or be empty), so toJSON would merge them.
    if (o instanceof arrow.StructRow) return (o as arrow.StructRow).toArray().map(plain);
    if (o instanceof arrow.MapRow) return [...(o as unknown as Iterable<[unknown, unknown]>)].map(([k, x]) => [plain(k), plain(x)]);
    if (typeof o.toJSON === "function") return plain(o.toJSON());
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o)) out[k] = plain((o as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

/**
 * Compares a received stream with the expected one. Returns undefined when they are equal,
 * otherwise the first difference in words.
 */
export function diffBatches(
  expected: { schema: arrow.Schema; batches: arrow.RecordBatch[] },
  actual: { schema: arrow.Schema; batches: arrow.RecordBatch[] },
): string | undefined {
  const ef = expected.schema.fields;
  const af = actual.schema.fields;
  if (ef.length !== af.length) return `schema has ${af.length} fields, expected ${ef.length}`;
  for (let i = 0; i < ef.length; i++) {
    const e = fieldSignature(ef[i]);
    const a = fieldSignature(af[i]);
    if (e !== a) return `field ${i} is ${a}, expected ${e}`;
  }
  const sorted = (m: Map<string, string>): string => JSON.stringify([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const em = sorted(expected.schema.metadata);
  const am = sorted(actual.schema.metadata);
  if (em !== am) return `schema metadata is ${am}, expected ${em}`;
  if (expected.batches.length !== actual.batches.length) return `got ${actual.batches.length} record batches, expected ${expected.batches.length}`;
  for (let b = 0; b < expected.batches.length; b++) {
    const E = expected.batches[b];
    const A = actual.batches[b];
    if (E.numRows !== A.numRows) return `batch ${b} has ${A.numRows} rows, expected ${E.numRows}`;
    for (let c = 0; c < ef.length; c++) {
      const ev = E.getChildAt(c)!;
      const av = A.getChildAt(c)!;
      if (ev.nullCount !== av.nullCount) return `batch ${b} column ${ef[c].name}: ${av.nullCount} nulls, expected ${ev.nullCount}`;
      for (let r = 0; r < E.numRows; r++) {
        const x = JSON.stringify(plain(ev.get(r)));
        const y = JSON.stringify(plain(av.get(r)));
        if (x !== y) return `batch ${b} column ${ef[c].name} row ${r}: got ${show(JSON.parse(y))}, expected ${show(JSON.parse(x))}`;
      }
    }
  }
  return undefined;
}
