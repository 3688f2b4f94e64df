import { FlightError, StatusCode, type FlightData, type FlightDescriptor, checkBoolean, checkInt, checkObject } from "@blackice/flight-core";
import { loadTrustedKeys, verifyMerkleSignature, type MerkleTrustedKeys } from "./merkle-root-signature";
import { flightDataLeafHash, type LeafMessage } from "./flight-data-leaf";
import { MerkleBuilder } from "./merkle-builder";
import { MERKLE_ALGORITHM, verifyInclusion } from "./merkle-tree";
import { hashBytes, isLeafCount, type MerkleProof } from "./read-merkle-metadata";

/** What a stream or proof is checked against: a root and leaf count from a trusted FlightInfo. */
export interface MerkleExpectation {
  /** The root, as hex or 32 bytes. */
  readonly root: string | Uint8Array;
  /** The number of messages the root covers. */
  readonly leaves: number;
  /** The root's signature (base64url), checked when `trustedKeys` are given. */
  readonly signature?: string;
  /** Id of the key that signed the root. */
  readonly keyId?: string;
}

/** Options of {@link verifyFlightStream}. */
export interface VerifyFlightStreamOptions {
  /**
   * The flight may have been appended to since the FlightInfo: after the `leaves` messages the
   * root covers (checked), stop reading instead of failing. Default false: more messages is DATA_LOSS.
   */
  readonly allowAppended?: boolean;
  /**
   * Public keys (Ed25519, by key id) of the servers whose signed roots you trust. With them,
   * `expected` must be a signed summary (`readMerkleMetadata` of a server with
   * `merkleIntegrity({ signingKey })`) whose signature, by one of these keys, covers
   * `descriptor`, the leaves and the root; otherwise the stream fails with DATA_LOSS before any
   * message is handed on. Without them, the root is only as trustworthy as the FlightInfo it
   * came in (a man in the middle can recompute it).
   */
  readonly trustedKeys?: MerkleTrustedKeys;
  /** The flight the client asked for; required with `trustedKeys`. */
  readonly descriptor?: FlightDescriptor;
}

const dataLoss = (message: string): FlightError => new FlightError(StatusCode.DATA_LOSS, message);

function expectation(what: string, expected: MerkleExpectation): { root: Buffer; leaves: number } {
  checkObject(what, "expected", expected, "{root, leaves}");
  const root = hashBytes(expected.root);
  if (!root) throw new TypeError(`${what}: expected.root must be 64 hex characters or 32 bytes`);
  return { root, leaves: checkInt(what, "expected.leaves", expected.leaves, 0, Number.MAX_SAFE_INTEGER) };
}

/**
 * Checks a DoGet stream against the Merkle summary of its FlightInfo while passing the messages
 * on. It recomputes the root with O(log n) memory and throws FlightError DATA_LOSS when the
 * stream has fewer or more messages than `expected.leaves` or a different root. The root is
 * checked before the last covered message is handed on, so a consumer that reads to the end
 * without an error has received exactly the data the root covers; messages handed on earlier
 * are tentative until then.
 *
 * With `trustedKeys` (and `descriptor`), the root's signature is checked first: a root that a
 * man in the middle recomputed after changing the data is refused with DATA_LOSS.
 *
 * @example
 * const expected = readMerkleMetadata(info)!;
 * for await (const msg of verifyFlightStream(client.doGet(ticket), expected)) batches.push(msg);
 * // signed roots: verifyFlightStream(client.doGetRaw(ticket), expected, { trustedKeys: { [kid]: serverPublicPem }, descriptor })
 */
export function verifyFlightStream(
  messages: AsyncIterable<FlightData>,
  expected: MerkleExpectation,
  options: VerifyFlightStreamOptions = {},
): AsyncGenerator<FlightData> {
  if (!messages || typeof (messages as AsyncIterable<FlightData>)[Symbol.asyncIterator] !== "function") {
    throw new TypeError("verifyFlightStream: messages must be an AsyncIterable of FlightData");
  }
  const { root, leaves } = expectation("verifyFlightStream", expected);
  checkObject("verifyFlightStream", "options", options);
  const allowAppended = checkBoolean("verifyFlightStream", "allowAppended", options.allowAppended, false);
  const trusted = options.trustedKeys === undefined ? undefined : loadTrustedKeys("verifyFlightStream", options.trustedKeys);
  if (trusted) checkObject("verifyFlightStream", "descriptor", options.descriptor, "an object: trustedKeys needs the descriptor of the flight asked for");
  return (async function* verifyingStream() {
    if (trusted) verifyMerkleSignature({ signature: expected.signature, keyId: expected.keyId, root: root.toString("hex"), leaves, alg: MERKLE_ALGORITHM }, options.descriptor!, trusted);
    const builder = new MerkleBuilder();
    const checkRoot = (): void => {
      if (!builder.root().equals(root)) throw dataLoss(`Merkle root mismatch: the ${leaves} messages received do not match the flight's root`);
    };
    if (leaves === 0) checkRoot();
    for await (const msg of messages) {
      if (builder.size === leaves) {
        if (allowAppended) return; // the covered prefix was checked; the rest is not vouched for
        throw dataLoss(`the stream has more messages than the ${leaves} the Merkle root covers`);
      }
      builder.appendLeafHash(flightDataLeafHash(msg));
      if (builder.size === leaves) checkRoot();
      yield msg;
    }
    if (builder.size < leaves) throw dataLoss(`the stream ended after ${builder.size} of the ${leaves} messages the Merkle root covers`);
  })();
}

function parseProof(proof: MerkleProof | Uint8Array | string): MerkleProof {
  let p: unknown = proof;
  if (typeof proof === "string" || proof instanceof Uint8Array) {
    try {
      p = JSON.parse(typeof proof === "string" ? proof : Buffer.from(proof).toString("utf8"));
    } catch {
      throw dataLoss("the Merkle proof is not valid JSON");
    }
  }
  const q = p as Partial<Record<keyof MerkleProof, unknown>> | null;
  if (
    !q ||
    typeof q !== "object" ||
    q.alg !== MERKLE_ALGORITHM ||
    !hashBytes(q.root) ||
    !hashBytes(q.leafHash) ||
    !isLeafCount(q.leaves) ||
    !isLeafCount(q.index) ||
    !Array.isArray(q.proof) ||
    !q.proof.every((h) => hashBytes(h) !== undefined)
  ) {
    throw dataLoss("the Merkle proof is malformed");
  }
  return q as unknown as MerkleProof;
}

/**
 * Checks that one message (a record batch fetched by any means) is message `proof.index` of
 * a flight: its leaf hash matches the proof's, and the proof leads to the root. Pass `expected`
 * (from a FlightInfo you trust) to also require the proof's root and size to be that flight's;
 * without it, the proof's own root is only self-consistent. Returns the parsed proof; throws
 * FlightError DATA_LOSS on any mismatch or malformed proof.
 *
 * @example
 * const [res] = await collect(client.doAction({ type: "merkle-proof", body: Buffer.from(JSON.stringify({ path: ["t"], index: 3 })) }));
 * verifyBatchProof(message3, res.body, readMerkleMetadata(info));
 */
export function verifyBatchProof(message: LeafMessage, proof: MerkleProof | Uint8Array | string, expected?: MerkleExpectation): MerkleProof {
  const p = parseProof(proof);
  const root = hashBytes(p.root)!;
  if (expected !== undefined) {
    const e = expectation("verifyBatchProof", expected);
    if (!e.root.equals(root) || e.leaves !== p.leaves) throw dataLoss("the Merkle proof is for a different root than expected");
  }
  const leaf = flightDataLeafHash(message);
  if (!leaf.equals(hashBytes(p.leafHash)!)) throw dataLoss(`message ${p.index} does not match the proof's leaf hash`);
  const path = p.proof.map((h) => hashBytes(h)!);
  if (!verifyInclusion(leaf, p.index, p.leaves, path, root)) throw dataLoss(`the inclusion proof of message ${p.index} does not lead to the root`);
  return p;
}
