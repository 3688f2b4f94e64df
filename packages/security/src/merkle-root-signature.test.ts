import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StatusCode, type FlightDescriptor } from "@blackice/flight-core";
import { loadMerkleSigningKey, merkleKeyId, merkleRootStatement, verifyMerkleSignature } from "./merkle-root-signature";
import { merkleIntegrity } from "./merkle-integrity";

const d: FlightDescriptor = { type: 1, cmd: new Uint8Array(0), path: ["a", "b"] };
const summary = { alg: "sha256-rfc6962" as const, root: "ab".repeat(32), leaves: 4 };

describe("Merkle root signatures", () => {
  const ed = generateKeyPairSync("ed25519");

  it("signs the documented statement; the signature verifies with the public key by key id", () => {
    expect(merkleRootStatement(d, summary).toString()).toMatch(/^blackice-merkle-root-v1\nsha256-rfc6962\n[0-9a-f]{64}\n4\n(ab){32}$/);
    const s = loadMerkleSigningKey({ privateKey: ed.privateKey, keyId: "2026-01" });
    const m = { ...summary, signature: s.sign(merkleRootStatement(d, summary)), keyId: s.keyId };
    expect(() => verifyMerkleSignature(m, d, { "2026-01": ed.publicKey })).not.toThrow();
    for (const changed of [{ ...m, leaves: 5 }, { ...m, root: "cd".repeat(32) }]) {
      expect(() => verifyMerkleSignature(changed, d, { "2026-01": ed.publicKey })).toThrow(expect.objectContaining({ code: StatusCode.DATA_LOSS }));
    }
    expect(() => verifyMerkleSignature(m, { ...d, path: ["a", "c"] }, { "2026-01": ed.publicKey })).toThrow(expect.objectContaining({ code: StatusCode.DATA_LOSS }));
    expect(loadMerkleSigningKey({ privateKey: ed.privateKey }).keyId).toBe(merkleKeyId(ed.publicKey));
  });

  it("refuses keys that are not Ed25519, unreadable files and bad key ids when built, without showing key bytes", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(() => merkleIntegrity({ signingKey: { privateKey: rsa.privateKey } })).toThrow(/must be an Ed25519 private key/);
    expect(() => merkleIntegrity({ signingKey: { privateKeyPath: "/nonexistent/k.pem" } })).toThrow(/cannot read the key file "\/nonexistent\/k.pem" as a PEM private key \(ENOENT\)/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mk-"));
    try {
      fs.writeFileSync(path.join(dir, "k.pem"), "not a key SECRET-BYTES");
      expect(() => merkleIntegrity({ signingKey: { privateKeyPath: path.join(dir, "k.pem") } })).toThrow(/^(?!.*SECRET-BYTES).*cannot read/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(() => merkleIntegrity({ signingKey: { privateKey: ed.privateKey, keyId: "bad id" } })).toThrow(/keyId/);
    expect(() => verifyMerkleSignature({ ...summary }, d, { k: rsa.publicKey })).toThrow(/must be an Ed25519 public key/);
  });
});
