import { createHash } from "node:crypto";

/**
 * Rendezvous (highest random weight) hashing: the nodes ordered by the weight of
 * `hash(key, node)`, highest first. Every node computes the same order from the same live set,
 * and when a node joins or leaves only the flights it ranks first for move. Hand-written: it is
 * ten lines, and no package we found does only this.
 */
export function rendezvousOrder(key: string, nodeIds: readonly string[]): string[] {
  const weighted = nodeIds.map((id) => ({ id, w: createHash("sha1").update(key).update("\0").update(id).digest().readBigUInt64BE(0) }));
  weighted.sort((a, b) => (a.w > b.w ? -1 : a.w < b.w ? 1 : a.id < b.id ? -1 : 1));
  return weighted.map((x) => x.id);
}
