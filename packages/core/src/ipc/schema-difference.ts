import { EXTENSION_METADATA, describePath, type FieldInfo, type SchemaInfo } from "./arrow-schema";
import { formatField } from "./arrow-type-format";

// Structural comparison of schemas: whether batches of one can be read with the other.

/** The first difference between two fields (and their children), or undefined. */
export function describeFieldDifference(a: FieldInfo, b: FieldInfo, path: string, ignoreName: boolean): string | undefined {
  if (!ignoreName && a.name !== b.name) return `${describePath(path)}: name ${JSON.stringify(a.name)} vs ${JSON.stringify(b.name)}`;
  const at = formatField(a);
  const bt = formatField(b);
  if (at !== bt) return `${describePath(path)}: ${at} vs ${bt}`;
  if (a.nullable !== b.nullable) {
    return `${describePath(path)}: ${a.nullable ? "nullable" : "non-nullable"} vs ${b.nullable ? "nullable" : "non-nullable"}`;
  }
  if (a.metadata?.get(EXTENSION_METADATA) !== b.metadata?.get(EXTENSION_METADATA)) {
    return `${describePath(path)}: different extension type metadata`;
  }
  if (a.children.length !== b.children.length) {
    return `${describePath(path)}: ${a.children.length} vs ${b.children.length} child fields`;
  }
  for (let i = 0; i < a.children.length; i++) {
    const ac = a.children[i] as FieldInfo;
    const bc = b.children[i] as FieldInfo;
    const diff = describeFieldDifference(ac, bc, `${path}.${ac.name}`, false);
    if (diff !== undefined) return diff;
  }
  return undefined;
}

/**
 * Compares two schemas structurally and names the first difference, or returns undefined when
 * a batch of one could be read with the other. Compared, in field order and recursively:
 * field count, names, types with all their parameters, nullability, dictionary encoding
 * (id, index type, ordering — ids matter because stored batches refer to dictionaries by id)
 * and extension type (`ARROW:extension:name` and `ARROW:extension:metadata`) and endianness.
 * Ignored: other custom metadata at schema and field level, which carries no structure, and
 * the metadata version.
 *
 * @example
 * const diff = describeSchemaDifference(stored, incoming);
 * if (diff) throw invalidArgument(`schema does not match the stored flight: ${diff}`);
 */
export function describeSchemaDifference(a: SchemaInfo, b: SchemaInfo): string | undefined {
  if (a.endianness !== b.endianness) return `endianness ${a.endianness} vs ${b.endianness}`;
  if (a.fields.length !== b.fields.length) return `field count ${a.fields.length} vs ${b.fields.length}`;
  for (let i = 0; i < a.fields.length; i++) {
    const af = a.fields[i] as FieldInfo;
    const bf = b.fields[i] as FieldInfo;
    if (af.name !== bf.name) return `field ${i}: name ${JSON.stringify(af.name)} vs ${JSON.stringify(bf.name)}`;
    const diff = describeFieldDifference(af, bf, af.name, true);
    if (diff !== undefined) return diff;
  }
  return undefined;
}
