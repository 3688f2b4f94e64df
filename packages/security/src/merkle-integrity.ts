import {
  FlightError,
  StatusCode,
  defineAction,
  invalidArgument,
  notFound,
  statsSection,
  type FlightDescriptor,
  type FlightInfo,
  type FlightMiddleware,
  type FlightStore,
  type PollInfo,
  type StoredFlight,
  type StoredMessage,
  serverParts,
  type ServerParts,
  checkInt,
  checkObject,
} from "@blackice/flight-core";
import { flightDataLeafHash } from "./flight-data-leaf";
import { parseFlightRef, parseJsonBody } from "./flight-ref";
import { HASH_BYTES, MERKLE_ALGORITHM, MerkleTree } from "./merkle-tree";
import type { MerkleMetadata, MerkleProof } from "./read-merkle-metadata";
import { loadMerkleSigningKey, merkleRootStatement, type MerkleSigningKey } from "./merkle-root-signature";

/** The action that returns one message's inclusion proof. */
export const MERKLE_PROOF_ACTION = "merkle-proof";

/** Options of {@link merkleIntegrity}. Flights are read from the server's store (`call.store`). */
export interface MerkleIntegrityOptions {
  /** Most flights whose trees are kept. Default 256. */
  maxCachedFlights?: number;
  /** Most bytes of hashes kept (about 64 bytes per message). Default 64 MiB. */
  maxCacheBytes?: number;
  /**
   * Sign each published root with this Ed25519 key (PEM PKCS#8, a file or a value; CLI
   * `--merkle-signing-key`), so that a client holding the public key can tell the server's
   * root from one recomputed by whoever changed the data. `keyId` defaults to a fingerprint of
   * the public key. Default: roots are not signed.
   */
  signingKey?: MerkleSigningKey;
}

/** Bytes of message data hashed between two turns of the event loop. */
const BYTES_PER_SLICE = 8 * 1024 * 1024;

interface CacheEntry {
  readonly flightKey: string;
  readonly tree: Promise<MerkleTree>;
  bytes: number;
}

async function computeTree(flight: StoredFlight): Promise<MerkleTree> {
  const n = 1 + flight.messageCount;
  const hashes = Buffer.allocUnsafe(n * HASH_BYTES);
  let sinceYield = 0;
  let i = 0;
  const leaf = async (m: StoredMessage): Promise<void> => {
    if (i >= n) throw new Error(`flight ${flight.key} streamed more than its ${flight.messageCount} messages`);
    flightDataLeafHash(m).copy(hashes, i++ * HASH_BYTES);
    sinceYield += m.header.length + m.body.byteLength + m.appMetadata.length;
    if (sinceYield >= BYTES_PER_SLICE) {
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  await leaf(flight.schema);
  for await (const m of flight.messages()) await leaf(m);
  if (i !== n) throw new Error(`flight ${flight.key} streamed ${i - 1} of its ${flight.messageCount} messages`);
  return MerkleTree.fromLeafHashesAsync(hashes);
}

/** Adds `merkle` to JSON app_metadata; undefined when the metadata is not ours to change (not a JSON object). */
function withMerkleMetadata(existing: Uint8Array, m: MerkleMetadata): Uint8Array | undefined {
  const merkle = { alg: m.alg, root: m.root, leaves: m.leaves, ...(m.signature !== undefined ? { sig: m.signature, kid: m.keyId } : {}) };
  if (existing.length === 0) return Buffer.from(JSON.stringify({ merkle }));
  try {
    const parsed: unknown = JSON.parse(Buffer.from(existing).toString("utf8"));
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return Buffer.from(JSON.stringify({ ...parsed, merkle }));
  } catch {
    // not JSON: left as it is
  }
  return undefined;
}

/**
 * Merkle-tree integrity (RFC 6962, SHA-256) for stored flights. A flight's leaves are its
 * messages in DoGet order (schema first, then the stored messages), each leaf being
 * `flightDataLeaf(message)`.
 *
 * - GetFlightInfo and PollFlightInfo answers get `{"merkle":{"alg":"sha256-rfc6962","root":"<hex>","leaves":<n>}}`
 *   (with `signingKey`, also `"sig"`: the base64url Ed25519 signature of `merkleRootStatement`
 *   over the descriptor, leaves, root and alg, and `"kid"`: the key id; a client checks it
 *   with `verifyFlightStream`'s `trustedKeys`)
 *   in FlightInfo.app_metadata (merged into existing JSON-object metadata; other metadata is
 *   left untouched and no summary is added). A client checks a DoGet with `verifyFlightStream`.
 *   `leaves` says how many messages the root covers: a flight appended to after the
 *   FlightInfo streams more (see `verifyFlightStream`'s `allowAppended`).
 * - The action `merkle-proof`, body JSON `{"path": [...], "index": i}` (or `"cmd": "<base64>"`,
 *   or `"ticket": "<ticket text>"` instead of `path`), answers one Result with the JSON
 *   {@link MerkleProof} of message `i` (0 = schema); check it with `verifyBatchProof`.
 *
 * Trees are computed from the server's store, `call.store` (streaming the flight's messages,
 * yielding to the event loop every 8 MiB), and cached per flight version (key, createdAt,
 * updatedAt, message count), so repeated calls cost nothing.
 *
 * @example
 * createFlightServer(merkleIntegrity());
 */
export function merkleIntegrity(options: MerkleIntegrityOptions = {}): ServerParts {
  checkObject("merkleIntegrity", "options", options);
  if ("store" in options) throw new TypeError("merkleIntegrity: the store option is gone; flights are read from the server's store (call.store)");
  const maxFlights = checkInt("merkleIntegrity", "maxCachedFlights", options.maxCachedFlights, 1, Number.MAX_SAFE_INTEGER, 256);
  const maxBytes = checkInt("merkleIntegrity", "maxCacheBytes", options.maxCacheBytes, 1, Number.MAX_SAFE_INTEGER, 64 * 1024 * 1024);
  const signer = options.signingKey === undefined ? undefined : loadMerkleSigningKey(options.signingKey);

  const cache = new Map<string, CacheEntry>();
  const latestByFlight = new Map<string, string>();
  let cachedBytes = 0;
  const counters = { hits: 0, misses: 0, annotated: 0, skipped: 0, proofs: 0, signed: 0 };

  const drop = (id: string): void => {
    const e = cache.get(id);
    if (!e) return;
    cache.delete(id);
    cachedBytes -= e.bytes;
    if (latestByFlight.get(e.flightKey) === id) latestByFlight.delete(e.flightKey);
  };
  const evict = (): void => {
    for (const id of cache.keys()) {
      if (cache.size <= maxFlights && cachedBytes <= maxBytes) break;
      drop(id);
    }
  };

  const treeOf = (flight: StoredFlight): Promise<MerkleTree> => {
    const id = `${flight.key}\n${flight.createdAt}\n${flight.updatedAt}\n${flight.messageCount}`;
    const hit = cache.get(id);
    if (hit) {
      counters.hits++;
      cache.delete(id); // most recently used goes last
      cache.set(id, hit);
      return hit.tree;
    }
    counters.misses++;
    const older = latestByFlight.get(flight.key);
    if (older !== undefined) drop(older); // an older version of the same flight is never asked for again
    const entry: CacheEntry = { flightKey: flight.key, tree: computeTree(flight), bytes: 0 };
    cache.set(id, entry);
    latestByFlight.set(flight.key, id);
    entry.tree.then(
      (tree) => {
        if (cache.get(id) !== entry) return;
        entry.bytes = tree.byteSize;
        cachedBytes += entry.bytes;
        evict();
      },
      () => drop(id),
    );
    return entry.tree;
  };

  const summaryOf = async (flight: StoredFlight, descriptor: FlightDescriptor): Promise<MerkleMetadata> => {
    const tree = await treeOf(flight);
    const summary: MerkleMetadata = { alg: MERKLE_ALGORITHM, root: tree.root().toString("hex"), leaves: tree.size };
    if (!signer) return summary;
    counters.signed++;
    return { ...summary, signature: signer.sign(merkleRootStatement(descriptor, summary)), keyId: signer.keyId };
  };

  const annotate = async (store: FlightStore, info: FlightInfo, descriptor: FlightDescriptor): Promise<FlightInfo> => {
    const flight = await store.get(descriptor);
    if (!flight) return info; // removed since the handler answered
    const appMetadata = withMerkleMetadata(info.appMetadata ?? new Uint8Array(0), await summaryOf(flight, flight.descriptor));
    if (!appMetadata) {
      counters.skipped++;
      return info;
    }
    counters.annotated++;
    return { ...info, appMetadata };
  };

  const middleware: FlightMiddleware = (next) =>
    async function merkleAnnotate(call) {
      const res = await next(call);
      if (call.method === "getFlightInfo") return annotate(call.store, res as FlightInfo, call.request);
      if (call.method === "pollFlightInfo") {
        const poll = res as PollInfo;
        if (!poll.info) return poll;
        return { ...poll, info: await annotate(call.store, poll.info, poll.info.flightDescriptor ?? call.request) };
      }
      return res;
    };

  const proofAction = defineAction(
    MERKLE_PROOF_ACTION,
    'Merkle inclusion proof of one message of a flight (0 = schema). Body: JSON {"path": [...] | "cmd": "<base64>" | "ticket": "<ticket>", "index": n}. Returns JSON {alg, root, leaves, index, leafHash, proof}.',
    async (body, call) => {
      const { store } = call;
      const parsed = parseJsonBody(body, MERKLE_PROOF_ACTION) as { index?: unknown } | null;
      const ref = parseFlightRef(parsed, MERKLE_PROOF_ACTION);
      const index = parsed?.index;
      if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) throw invalidArgument(`${MERKLE_PROOF_ACTION}: index must be a non-negative integer`);
      const flight = ref.descriptor ? await store.get(ref.descriptor) : await store.getByTicket(ref.ticket);
      if (!flight) throw notFound(`${MERKLE_PROOF_ACTION}: no such flight`);
      const tree = await treeOf(flight);
      if (index >= tree.size) throw new FlightError(StatusCode.OUT_OF_RANGE, `${MERKLE_PROOF_ACTION}: index ${index} is past the flight's ${tree.size} messages`);
      counters.proofs++;
      const proof: MerkleProof = {
        alg: MERKLE_ALGORITHM,
        root: tree.root().toString("hex"),
        leaves: tree.size,
        index,
        leafHash: tree.leafHash(index).toString("hex"),
        proof: tree.proof(index).map((h) => h.toString("hex")),
      };
      return { body: Buffer.from(JSON.stringify(proof)) };
    },
  );

  const stats = statsSection("merkle", () => ({ ...counters, signingKeyId: signer?.keyId ?? null, cachedFlights: cache.size, cachedBytes }));
  return serverParts(middleware, proofAction, stats);
}
