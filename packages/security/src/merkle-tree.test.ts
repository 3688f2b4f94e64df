import { createHash } from "node:crypto";
import { MerkleBuilder } from "./merkle-builder";
import { MerkleTree, emptyTreeRoot, inclusionProof, leafHash, merkleRoot, nodeHash, verifyInclusion } from "./merkle-tree";

const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

// A naive, literal transcription of RFC 6962 section 2.1 (MTH and PATH), independent of the
// level-by-level tree under test.
function refRoot(d: Uint8Array[]): Buffer {
  if (d.length === 0) return sha(new Uint8Array(0));
  if (d.length === 1) return sha(Buffer.of(0), d[0]!);
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return sha(Buffer.of(1), refRoot(d.slice(0, k)), refRoot(d.slice(k)));
}
function refPath(m: number, d: Uint8Array[]): Buffer[] {
  if (d.length === 1) return [];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m < k ? [...refPath(m, d.slice(0, k)), refRoot(d.slice(k))] : [...refPath(m - k, d.slice(k)), refRoot(d.slice(0, k))];
}

// The Certificate Transparency / RFC 6962 test inputs and their published tree heads.
const CT_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map((h) => Buffer.from(h, "hex"));
const CT_ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
const CT_PROOFS = [
  { index: 0, size: 8, proof: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"] },
  { index: 5, size: 8, proof: ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"] },
  { index: 2, size: 3, proof: ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"] },
];

const data = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`leaf-${i}-${"x".repeat(i % 5)}`));
const flipBit = (b: Uint8Array, bit: number): Buffer => {
  const c = Buffer.from(b);
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
};

describe("RFC 6962 hashing", () => {
  it("the empty tree's root is SHA-256 of the empty string", () => {
    expect(merkleRoot([]).toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(emptyTreeRoot().equals(merkleRoot([]))).toBe(true);
    expect(new MerkleBuilder().root().toString("hex")).toBe(CT_ROOTS[0]);
  });

  it("leaf and node hashes use the 0x00 / 0x01 prefixes", () => {
    expect(leafHash(Buffer.from("abc")).equals(sha(Buffer.of(0), Buffer.from("abc")))).toBe(true);
    const a = leafHash(Buffer.from("a"));
    const b = leafHash(Buffer.from("b"));
    expect(nodeHash(a, b).equals(sha(Buffer.of(1), a, b))).toBe(true);
    expect(nodeHash(a, b).equals(nodeHash(b, a))).toBe(false);
  });

  it("matches the published RFC 6962 roots for 0..8 leaves", () => {
    for (let n = 0; n <= 8; n++) {
      expect(merkleRoot(CT_INPUTS.slice(0, n)).toString("hex")).toBe(CT_ROOTS[n]);
      expect(refRoot(CT_INPUTS.slice(0, n)).toString("hex")).toBe(CT_ROOTS[n]); // the reference is right too
    }
  });

  it("matches the naive recursive reference for 1..8 leaves and beyond (up to 70)", () => {
    for (let n = 0; n <= 70; n++) {
      const leaves = data(n);
      const expected = refRoot(leaves).toString("hex");
      expect(merkleRoot(leaves).toString("hex")).toBe(expected);
      const b = new MerkleBuilder();
      leaves.forEach((l) => b.append(l));
      expect(b.size).toBe(n);
      expect(b.root().toString("hex")).toBe(expected);
    }
  });

  it("splits at the largest power of two strictly below n (not the midpoint) and duplicates no leaf", () => {
    const [a, b, c, d, e, f] = data(6).map(leafHash);
    // n = 6: k = 4, so the root is H(1 ‖ MTH(a..d) ‖ MTH(e,f)); a midpoint split would be MTH(a,b,c) ‖ MTH(d,e,f).
    expect(merkleRoot(data(6)).equals(nodeHash(nodeHash(nodeHash(a!, b!), nodeHash(c!, d!)), nodeHash(e!, f!)))).toBe(true);
    // n = 3: the odd leaf is carried up, never paired with itself (CVE-2012-2459): [a,b,c] ≠ [a,b,c,c].
    expect(merkleRoot(data(3)).equals(nodeHash(nodeHash(a!, b!), c!))).toBe(true);
    const three = data(3);
    expect(merkleRoot(three).equals(merkleRoot([...three, three[2]!]))).toBe(false);
  });

  it("gives the published inclusion proofs", () => {
    for (const v of CT_PROOFS) {
      const leaves = CT_INPUTS.slice(0, v.size);
      expect(inclusionProof(leaves, v.index).map((h) => h.toString("hex"))).toEqual(v.proof);
      const proof = v.proof.map((h) => Buffer.from(h, "hex"));
      expect(verifyInclusion(leafHash(leaves[v.index]!), v.index, v.size, proof, Buffer.from(CT_ROOTS[v.size]!, "hex"))).toBe(true);
    }
  });
});

describe("inclusion proofs", () => {
  it("for every index of sizes 1..17: equal the RFC PATH, verify, and fail when tampered", () => {
    let checked = 0;
    for (let size = 1; size <= 17; size++) {
      const leaves = data(size);
      const root = merkleRoot(leaves);
      const tree = MerkleTree.fromLeafHashes(leaves.map(leafHash));
      for (let index = 0; index < size; index++) {
        const lh = leafHash(leaves[index]!);
        const proof = inclusionProof(leaves, index);
        expect(proof.map((h) => h.toString("hex"))).toEqual(refPath(index, leaves).map((h) => h.toString("hex")));
        expect(tree.proof(index).map((h) => h.toString("hex"))).toEqual(proof.map((h) => h.toString("hex")));
        expect(verifyInclusion(lh, index, size, proof, root)).toBe(true);

        // each proof element with one bit flipped
        proof.forEach((_, j) => {
          const bad = proof.slice();
          bad[j] = flipBit(bad[j]!, (j * 37 + index) % 256);
          expect(verifyInclusion(lh, index, size, bad, root)).toBe(false);
        });
        // the leaf, the root, the index, the size, the proof's length
        expect(verifyInclusion(flipBit(lh, index % 256), index, size, proof, root)).toBe(false);
        expect(verifyInclusion(lh, index, size, proof, flipBit(root, 3))).toBe(false);
        if (size > 1) expect(verifyInclusion(lh, (index + 1) % size, size, proof, root)).toBe(false);
        // A wrong size whose audit path is longer. (A size with the same path shape, e.g. 3 vs 4,
        // can verify: the size is only bound by the trusted (root, size) pair, as in RFC 9162.)
        expect(verifyInclusion(lh, index, size * 4, proof, root)).toBe(false);
        expect(verifyInclusion(lh, index, size, [...proof, root], root)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(lh, index, size, proof.slice(0, -1), root)).toBe(false);
        expect(verifyInclusion(leafHash(Buffer.from("intruder")), index, size, proof, root)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBe((17 * 18) / 2);
  });

  it("refuses out-of-range indexes and malformed inputs", () => {
    const leaves = data(4);
    const root = merkleRoot(leaves);
    const lh = leafHash(leaves[0]!);
    expect(verifyInclusion(lh, 4, 4, [], root)).toBe(false);
    expect(verifyInclusion(lh, -1, 4, [], root)).toBe(false);
    expect(verifyInclusion(lh, 0, 0, [], root)).toBe(false);
    expect(verifyInclusion(lh.subarray(0, 31), 0, 4, inclusionProof(leaves, 0), root)).toBe(false);
    expect(verifyInclusion(lh, 0, 4, [Buffer.alloc(31), ...inclusionProof(leaves, 0).slice(1)], root)).toBe(false);
    expect(() => inclusionProof(leaves, 4)).toThrow(RangeError);
    expect(() => MerkleTree.fromLeafHashes(Buffer.alloc(33))).toThrow(TypeError);
    expect(() => new MerkleBuilder().appendLeafHash(Buffer.alloc(31))).toThrow(TypeError);
  });

  it("builds large trees asynchronously to the same root", async () => {
    const hashes = Buffer.concat(data(40_000).map(leafHash));
    const tree = await MerkleTree.fromLeafHashesAsync(hashes);
    expect(tree.size).toBe(40_000);
    expect(tree.root().equals(MerkleTree.fromLeafHashes(hashes).root())).toBe(true);
    expect(tree.byteSize).toBeGreaterThanOrEqual(2 * 40_000 * 32 - 64);
    const p = tree.proof(39_999);
    expect(verifyInclusion(tree.leafHash(39_999), 39_999, 40_000, p, tree.root())).toBe(true);
  });
});
