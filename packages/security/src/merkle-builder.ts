import { emptyTreeRoot, HASH_BYTES, leafHash, nodeHash } from "./merkle-tree";

/**
 * Computes an RFC 6962 root while leaves arrive one by one, keeping only O(log n) hashes:
 * one per complete subtree (a binary counter of perfect subtrees), combined right to left
 * at the end. A client uses it to check a streaming DoGet without holding the stream.
 *
 * @example
 * const b = new MerkleBuilder();
 * for await (const m of stream) b.appendLeafHash(flightDataLeafHash(m));
 * b.root().equals(expectedRoot);
 */
export class MerkleBuilder {
  /** Roots of perfect subtrees, largest first; `sizes[i]` leaves under `hashes[i]`. */
  readonly #hashes: Buffer[] = [];
  readonly #sizes: number[] = [];
  #count = 0;

  /** Leaves appended so far. */
  get size(): number {
    return this.#count;
  }

  /** Appends a leaf given as its data (hashed with `leafHash`). */
  append(data: Uint8Array): this {
    return this.appendLeafHash(leafHash(data));
  }

  /** Appends a leaf given as its 32-byte leaf hash. */
  appendLeafHash(hash: Uint8Array): this {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) throw new TypeError(`MerkleBuilder: a leaf hash must be ${HASH_BYTES} bytes`);
    let h: Buffer = Buffer.from(hash);
    let size = 1;
    while (this.#sizes.length > 0 && this.#sizes[this.#sizes.length - 1] === size) {
      h = nodeHash(this.#hashes.pop()!, h);
      this.#sizes.pop();
      size *= 2;
    }
    this.#hashes.push(h);
    this.#sizes.push(size);
    this.#count++;
    return this;
  }

  /** The root of the leaves so far (the builder stays usable). */
  root(): Buffer {
    const n = this.#hashes.length;
    if (n === 0) return emptyTreeRoot();
    let acc = this.#hashes[n - 1]!;
    for (let i = n - 2; i >= 0; i--) acc = nodeHash(this.#hashes[i]!, acc);
    return Buffer.from(acc);
  }
}
