// Signed Merkle roots through the built CLI (--merkle-signing-key): a man in the middle that
// rewrites a value of a DoGet and recomputes the root it publishes is caught by a client that
// holds the server's public key, with DATA_LOSS; without the key the same forgery passes. The
// forgery is made both in the test and by a real HTTP/2 proxy between client and server.
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { startCli } from "../helpers/cli";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { tableFromArrays } from "apache-arrow";
import { StatusCode, type FlightData, type FlightInfo } from "@blackice/flight-core";
import { FlightClient, pathDescriptor, proto } from "@blackice/flight";
import { decodeFlightData, encodeFlightData } from "@blackice/flight/internal";
import { startGrpcMitm } from "../helpers/grpc-mitm";
import { MerkleBuilder, flightDataLeafHash, merkleKeyId, readMerkleMetadata, verifyFlightStream } from "@blackice/flight-security";



async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* replay<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

describe("signed Merkle roots (--merkle-signing-key)", () => {
  const server = generateKeyPairSync("ed25519");
  const stranger = generateKeyPairSync("ed25519");
  const serverPem = server.publicKey.export({ type: "spki", format: "pem" }) as string;
  const kid = merkleKeyId(server.publicKey);
  let dir: string;
  let cli: { child: ChildProcessWithoutNullStreams; port: number };
  let client: FlightClient;
  const d = pathDescriptor("ledger", "2026");
  let info: FlightInfo;
  let honest: FlightData[];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "merkle-key-"));
    fs.writeFileSync(path.join(dir, "merkle.pem"), server.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    cli = await startCli(["--merkle-signing-key", path.join(dir, "merkle.pem")]);
    client = new FlightClient(`grpc://127.0.0.1:${cli.port}`);
    const table = tableFromArrays({ account: Int32Array.from({ length: 60 }, (_, i) => i), amount: Float64Array.from({ length: 60 }, (_, i) => i * 10) });
    await client.putTable(d, table, { maxBatchRows: 20 });
    info = await client.getFlightInfo(d);
    honest = await collect(client.doGetRaw(info.endpoint[0]!.ticket!));
  });
  afterAll(() => {
    client?.close();
    cli?.child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What the man in the middle serves: one value changed, and a FlightInfo whose root he recomputed over it. */
  function forged(): { info: FlightInfo; messages: FlightData[] } {
    const messages = honest.map((m, i) => {
      if (i !== 2) return m;
      const body = Buffer.from(m.dataBody as Uint8Array);
      body[body.length - 1] ^= 0x40; // the last amount of the second batch
      return { ...m, dataBody: body };
    });
    const builder = new MerkleBuilder();
    for (const m of messages) builder.appendLeafHash(flightDataLeafHash(m));
    const meta = JSON.parse(Buffer.from(info.appMetadata).toString());
    meta.merkle.root = builder.root().toString("hex");
    return { info: { ...info, appMetadata: Buffer.from(JSON.stringify(meta)) }, messages };
  }

  it("the server publishes the root with its signature and key id", () => {
    const m = readMerkleMetadata(info)!;
    expect(m).toMatchObject({ alg: "sha256-rfc6962", leaves: honest.length, keyId: kid });
    expect(m.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
  });

  it("an honest stream passes with the trusted key, also among rotated keys", async () => {
    const trustedKeys = { "old-key": stranger.publicKey, [kid]: serverPem };
    const got = await collect(verifyFlightStream(replay(honest), readMerkleMetadata(info)!, { trustedKeys, descriptor: d }));
    expect(got).toHaveLength(honest.length);
  });

  it("a rewritten value with a recomputed root: VERIFIED without the key (the old hole), DATA_LOSS with it", async () => {
    const f = forged();
    expect(await collect(verifyFlightStream(replay(f.messages), readMerkleMetadata(f.info)!))).toHaveLength(honest.length);
    await expect(collect(verifyFlightStream(replay(f.messages), readMerkleMetadata(f.info)!, { trustedKeys: { [kid]: serverPem }, descriptor: d }))).rejects.toMatchObject({
      code: StatusCode.DATA_LOSS,
      message: "the Merkle root signature does not verify",
    });
  });

  it("through a real proxy that rewrites the DoGet and republishes the recomputed root: VERIFIED without the key, DATA_LOSS with it", async () => {
    const f = forged();
    // The proxy swaps GetFlightInfo's app_metadata for the forged one and each DoGet message
    // for its forged counterpart, on the wire (protobuf decoded and encoded again).
    let sent = 0;
    const mitm = await startGrpcMitm(
      cli.port,
      () => undefined,
      (p) => {
        if (p.endsWith("/GetFlightInfo")) {
          return (frames) => frames.map((b) => Buffer.from(proto.FlightInfo.encode({ ...proto.FlightInfo.decode(b), appMetadata: f.info.appMetadata }).finish()));
        }
        if (p.endsWith("/DoGet")) {
          return (frames) =>
            frames.map((b, i) => {
              const wire = decodeFlightData(b);
              const forgedBody = (f.messages[i]!.dataBody as Uint8Array);
              if (Buffer.compare(Buffer.from(wire.dataBody as Uint8Array), Buffer.from(forgedBody)) !== 0) sent++;
              return encodeFlightData({ ...wire, dataBody: forgedBody });
            });
        }
        return undefined;
      },
    );
    const victim = new FlightClient(`grpc://127.0.0.1:${mitm.port}`);
    try {
      const seen = await victim.getFlightInfo(d);
      expect(readMerkleMetadata(seen)!.root).toBe(readMerkleMetadata(f.info)!.root);
      const ticket = seen.endpoint[0]!.ticket!;
      // Without the key: the forged data matches the forged root.
      expect(await collect(verifyFlightStream(victim.doGetRaw(ticket), readMerkleMetadata(seen)!))).toHaveLength(honest.length);
      expect(sent).toBe(1); // the proxy did change one message
      // With the server's key: refused.
      await expect(collect(verifyFlightStream(victim.doGetRaw(ticket), readMerkleMetadata(seen)!, { trustedKeys: { [kid]: serverPem }, descriptor: d }))).rejects.toMatchObject({
        code: StatusCode.DATA_LOSS,
        message: "the Merkle root signature does not verify",
      });
    } finally {
      victim.close();
      await mitm.close();
    }
  });

  it("a root with the signature stripped, re-signed by another key, or of another flight: DATA_LOSS", async () => {
    const f = forged();
    const m = readMerkleMetadata(f.info)!;
    const trustedKeys = { [kid]: serverPem };
    const unsigned = { alg: m.alg, root: m.root, leaves: m.leaves };
    await expect(collect(verifyFlightStream(replay(f.messages), unsigned, { trustedKeys, descriptor: d }))).rejects.toMatchObject({ code: StatusCode.DATA_LOSS, message: "the Merkle root is not signed" });
    await expect(collect(verifyFlightStream(replay(f.messages), { ...m, keyId: "mallory" }, { trustedKeys, descriptor: d }))).rejects.toMatchObject({ code: StatusCode.DATA_LOSS });
    // The honest root and signature, presented for another flight.
    await expect(collect(verifyFlightStream(replay(honest), readMerkleMetadata(info)!, { trustedKeys, descriptor: pathDescriptor("ledger", "2025") }))).rejects.toMatchObject({
      code: StatusCode.DATA_LOSS,
    });
    expect(() => verifyFlightStream(replay(honest), readMerkleMetadata(info)!, { trustedKeys })).toThrow(/needs the descriptor/);
  });
});
