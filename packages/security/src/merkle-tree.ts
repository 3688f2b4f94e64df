// Merkle trees as RFC 6962 / RFC 9162 (section 2.1) define them, with SHA-256.
import { createHash } from "node:crypto";

/** The algorithm name used in metadata and proofs. */
export const MERKLE_ALGORITHM = "sha256-rfc6962";
/** Bytes of one hash. */
export const HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/**
 * The hash of a leaf: SHA-256(0x00 ‖ data). The prefix keeps a leaf from ever equalling an
 * inner node (second-preimage protection).
 *
 * @example
 * leafHash(Buffer.from("a")).toString("hex");
 */
export function leafHash(data: Uint8Array): Buffer {
  return createHash("sha256").update(LEAF_PREFIX).update(data).digest();
}

/**
 * The hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
 *
 * @example
 * nodeHash(leafHash(a), leafHash(b)); // the root of the tree [a, b]
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest();
}

/**
 * The root of the empty tree: SHA-256 of the empty string.
 *
 * @example
 * emptyTreeRoot().toString("hex"); // "e3b0c442...b855"
 */
export function emptyTreeRoot(): Buffer {
  return createHash("sha256").digest();
}

function checkHash(what: string, h: unknown): Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES) throw new TypeError(`${what} must be ${HASH_BYTES} bytes`);
  return h;
}

/** Hashes done between two yields of an incremental tree build. */
const NODES_PER_SLICE = 16_384;

/**
 * A tree over a list of leaf hashes, kept level by level (each level one buffer of 32-byte
 * hashes; about 64 bytes per leaf in all) so that any inclusion proof costs O(log n).
 *
 * Level j+1 pairs the hashes of level j; an odd hash at the end of a level is carried up
 * unchanged, never paired with itself. This gives exactly the RFC 6962 tree, whose split is at
 * the largest power of two strictly below n, and duplicates no leaf (so the CVE-2012-2459
 * ambiguity of Bitcoin's tree cannot arise).
 *
 * @example
 * const tree = MerkleTree.fromLeafHashes(messages.map(flightDataLeafHash));
 * tree.root(); tree.proof(3);
 */
export class MerkleTree {
  readonly #levels: Buffer[];
  /** Number of leaves. */
  readonly size: number;

  private constructor(levels: Buffer[], size: number) {
    this.#levels = levels;
    this.size = size;
  }

  /** Builds the tree of leaf hashes (an array of 32-byte hashes, or one buffer of n × 32 bytes). */
  static fromLeafHashes(hashes: readonly Uint8Array[] | Uint8Array): MerkleTree {
    const build = MerkleTree.#build(MerkleTree.#level0(hashes));
    let step = build.next();
    while (!step.done) step = build.next();
    return step.value;
  }

  /**
   * As {@link fromLeafHashes} for one buffer of n × 32 bytes, giving the event loop a turn
   * every few thousand hashes, for large trees built on a server.
   */
  static async fromLeafHashesAsync(hashes: Uint8Array): Promise<MerkleTree> {
    const build = MerkleTree.#build(MerkleTree.#level0(hashes));
    let step = build.next();
    while (!step.done) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      step = build.next();
    }
    return step.value;
  }

  static #level0(hashes: readonly Uint8Array[] | Uint8Array): Buffer {
    if (hashes instanceof Uint8Array) {
      if (hashes.length % HASH_BYTES !== 0) throw new TypeError(`MerkleTree: a buffer of leaf hashes must be a multiple of ${HASH_BYTES} bytes`);
      return Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength);
    }
    const out = Buffer.allocUnsafe(hashes.length * HASH_BYTES);
    hashes.forEach((h, i) => out.set(checkHash(`MerkleTree: leaf hash ${i}`, h), i * HASH_BYTES));
    return out;
  }

  static *#build(level0: Buffer): Generator<void, MerkleTree> {
    const size = level0.length / HASH_BYTES;
    const levels = [level0];
    let level = level0;
    let done = 0;
    for (let count = size; count > 1; ) {
      const upper = Math.ceil(count / 2);
      const next = Buffer.allocUnsafe(upper * HASH_BYTES);
      for (let i = 0; i < upper; i++) {
        const l = 2 * i * HASH_BYTES;
        if (2 * i + 1 < count) {
          next.set(nodeHash(level.subarray(l, l + HASH_BYTES), level.subarray(l + HASH_BYTES, l + 2 * HASH_BYTES)), i * HASH_BYTES);
          if (++done % NODES_PER_SLICE === 0) yield;
        } else {
          level.copy(next, i * HASH_BYTES, l, l + HASH_BYTES); // carried up, not duplicated
        }
      }
      levels.push(next);
      level = next;
      count = upper;
    }
    return new MerkleTree(levels, size);
  }

  /** Memory held by the tree's hashes, in bytes. */
  get byteSize(): number {
    return this.#levels.reduce((n, l) => n + l.length, 0);
  }

  /** The root hash (SHA-256 of the empty string for an empty tree). */
  root(): Buffer {
    if (this.size === 0) return emptyTreeRoot();
    return Buffer.from(this.#levels[this.#levels.length - 1]!.subarray(0, HASH_BYTES));
  }

  /** The hash of leaf `index`. */
  leafHash(index: number): Buffer {
    this.#checkIndex(index);
    return Buffer.from(this.#levels[0]!.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES));
  }

  /** The RFC 9162 inclusion proof (audit path) of leaf `index`, from the leaf's sibling up. */
  proof(index: number): Buffer[] {
    this.#checkIndex(index);
    const path: Buffer[] = [];
    let i = index;
    for (let lv = 0, count = this.size; count > 1; lv++, count = Math.ceil(count / 2)) {
      const sibling = i % 2 === 1 ? i - 1 : i + 1;
      if (sibling < count) path.push(Buffer.from(this.#levels[lv]!.subarray(sibling * HASH_BYTES, (sibling + 1) * HASH_BYTES)));
      i = Math.floor(i / 2);
    }
    return path;
  }

  #checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) throw new RangeError(`leaf index ${index} is out of range for a tree of ${this.size} leaves`);
  }
}

/**
 * The RFC 6962 Merkle Tree Hash of `leaves` (raw leaf data; each is hashed with
 * {@link leafHash}). The empty list gives SHA-256("").
 *
 * @example
 * merkleRoot([Buffer.from("a"), Buffer.from("b"), Buffer.from("c")]).toString("hex");
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Buffer {
  return MerkleTree.fromLeafHashes(leaves.map(leafHash)).root();
}

/**
 * The RFC 9162 inclusion proof of `leaves[index]`: the sibling hashes from the leaf up to the root.
 *
 * @example
 * const proof = inclusionProof(leaves, 2);
 * verifyInclusion(leafHash(leaves[2]), 2, leaves.length, proof, merkleRoot(leaves)); // true
 */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Buffer[] {
  return MerkleTree.fromLeafHashes(leaves.map(leafHash)).proof(index);
}

/**
 * Verifies an inclusion proof (RFC 9162 section 2.1.3.2): that the leaf with hash `leafHashBytes`
 * is leaf `index` of the tree of `size` leaves whose root is `root`. Returns false for any
 * mismatch, including an index out of range or a proof of the wrong length.
 *
 * @example
 * verifyInclusion(leafHash(data), 5, 17, proof, root);
 */
export function verifyInclusion(leafHashBytes: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (!(leafHashBytes instanceof Uint8Array) || leafHashBytes.length !== HASH_BYTES) return false;
  if (!(root instanceof Uint8Array) || root.length !== HASH_BYTES || !Array.isArray(proof)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leafHashBytes;
  for (const p of proof) {
    if (!(p instanceof Uint8Array) || p.length !== HASH_BYTES) return false;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(r).equals(Buffer.from(root.buffer, root.byteOffset, root.byteLength));
}
