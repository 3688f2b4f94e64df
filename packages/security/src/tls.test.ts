import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { makeTestCerts, type TestCerts } from "./test-certs";
import { settingsOf, type TlsSetting } from "@blackice/flight-core";
import { tls } from "./tls";

let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => certs?.remove());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

/** The one TLS setting among the parts `tls()` returns. */
function tlsSettingOf(options: Parameters<typeof tls>[0]): TlsSetting {
  const parts = tls(options);
  expect(parts).toHaveLength(1);
  return settingsOf(parts, "tls")[0]!;
}

describe("tls: build-time checks", () => {
  it("describes TLS with the files' contents; mTLS is on when a client CA is given", () => {
    const s = tlsSettingOf({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert });
    expect(s.kind).toBe("tls");
    expect(s.requireClientCert).toBe(true);
    const loaded = s.load();
    expect(loaded.cert.equals(fs.readFileSync(certs.serverCert))).toBe(true);
    expect(loaded.key.equals(fs.readFileSync(certs.serverKey))).toBe(true);
    expect(loaded.clientCa!.equals(fs.readFileSync(certs.caCert))).toBe(true);
    expect(s.onReloadable).toBeUndefined(); // watch defaults to false
    const plain = tlsSettingOf({ certFile: certs.serverCert, keyFile: certs.serverKey });
    expect(plain.requireClientCert).toBe(false);
    expect(plain.load().clientCa).toBeUndefined();
    expect(tlsSettingOf({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert, requireClientCert: false }).requireClientCert).toBe(false);
  });

  it("requireClientCert without clientCaFile is a TypeError", () => {
    expect(() => tls({ certFile: certs.serverCert, keyFile: certs.serverKey, requireClientCert: true })).toThrow(/requireClientCert needs clientCaFile/);
  });

  it("a missing file is a TypeError naming it", () => {
    const missing = path.join(certs.dir, "missing.crt");
    const err = thrown(() => tls({ certFile: missing, keyFile: certs.serverKey }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain(missing);
    expect(err.message).toContain("ENOENT");
    expect(() => tls({ certFile: certs.serverCert, keyFile: certs.dir })).toThrow(/is not a file/);
  });

  it("a file that is not PEM of the right kind is a TypeError naming the file, never its contents", () => {
    const junk = path.join(certs.dir, "junk.pem");
    fs.writeFileSync(junk, "SUPER-SECRET-NOT-PEM-CONTENT\n");
    for (const options of [
      { certFile: junk, keyFile: certs.serverKey },
      { certFile: certs.serverCert, keyFile: junk },
      { certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: junk },
      { certFile: certs.serverKey, keyFile: certs.serverKey }, // a key given as the certificate
      { certFile: certs.serverCert, keyFile: certs.serverCert }, // a certificate given as the key
    ]) {
      const err = thrown(() => tls(options));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toMatch(/certFile|keyFile|clientCaFile/);
      expect(err.message).not.toContain("SUPER-SECRET");
      const bodyLines = [certs.serverKey, certs.serverCert].flatMap((f) => fs.readFileSync(f, "utf8").split("\n").filter((l) => l.length > 16 && !l.startsWith("-----")));
      expect(bodyLines.length).toBeGreaterThan(3);
      for (const line of bodyLines) expect(err.message).not.toContain(line);
    }
  });

  it("a key that does not belong to the certificate, or an encrypted key, is a TypeError", () => {
    expect(() => tls({ certFile: certs.serverCert, keyFile: certs.otherKey })).toThrow(/is not the key of the certificate/);
    const enc = path.join(certs.dir, "enc.key");
    execFileSync("/usr/bin/openssl", ["pkey", "-in", certs.serverKey, "-aes256", "-passout", "pass:x", "-out", enc]);
    expect(() => tls({ certFile: certs.serverCert, keyFile: enc })).toThrow(/encrypted/);
  });

  it("checks its other options", () => {
    expect(() => tls({ certFile: "", keyFile: certs.serverKey })).toThrow(/certFile/);
    expect(() => tls({ certFile: certs.serverCert, keyFile: certs.serverKey, pollIntervalMs: 1 })).toThrow(/pollIntervalMs/);
    expect(() => tls({ certFile: certs.serverCert, keyFile: certs.serverKey, watch: "yes" as never })).toThrow(/watch/);
  });
});

describe("tls: reloading", () => {
  function copySet(name: string) {
    const cert = path.join(certs.dir, `${name}.crt`);
    const key = path.join(certs.dir, `${name}.key`);
    fs.copyFileSync(certs.serverCert, cert);
    fs.copyFileSync(certs.serverKey, key);
    return { cert, key };
  }

  it("calls reload once a change has settled and the new files are valid; load() then returns them", async () => {
    const { cert, key } = copySet("rotating");
    const errors: Error[] = [];
    const s = tlsSettingOf({ certFile: cert, keyFile: key, watch: true, pollIntervalMs: 20, onReloadError: (e) => errors.push(e) });
    let reloads = 0;
    const stop = s.onReloadable!(() => reloads++);
    try {
      await sleep(60);
      expect(reloads).toBe(0); // nothing changed
      const before = s.load().cert;
      // replace with a new certificate + key (rename into place, as cert managers do)
      certs.issueServer(`${cert}.new`, `${key}.new`);
      fs.renameSync(`${key}.new`, key);
      fs.renameSync(`${cert}.new`, cert);
      await until(() => reloads === 1);
      expect(s.load().cert.equals(before)).toBe(false);
      await sleep(80);
      expect(reloads).toBe(1); // once per change
      expect(errors).toEqual([]);
    } finally {
      stop();
    }
  });

  it("skips a half-written set (reported once, no reload) and reloads when it becomes valid", async () => {
    const { cert, key } = copySet("half");
    const errors: Error[] = [];
    const s = tlsSettingOf({ certFile: cert, keyFile: key, watch: true, pollIntervalMs: 20, onReloadError: (e) => errors.push(e) });
    let reloads = 0;
    const stop = s.onReloadable!(() => reloads++);
    try {
      certs.issueServer(`${cert}.new`, `${key}.new`);
      fs.renameSync(`${cert}.new`, cert); // new certificate, old key: not a valid pair
      await until(() => errors.length === 1);
      await sleep(100);
      expect(reloads).toBe(0);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toContain(key);
      fs.renameSync(`${key}.new`, key);
      await until(() => reloads === 1);
    } finally {
      stop();
    }
  });

  it("SIGHUP forces a reload; stopping removes the timer and the SIGHUP listener", async () => {
    const { cert, key } = copySet("hup");
    const listenersBefore = process.listenerCount("SIGHUP");
    const s = tlsSettingOf({ certFile: cert, keyFile: key, watch: true, pollIntervalMs: 60_000 });
    let reloads = 0;
    const stop = s.onReloadable!(() => reloads++);
    expect(process.listenerCount("SIGHUP")).toBe(listenersBefore + 1);
    process.emit("SIGHUP", "SIGHUP");
    expect(reloads).toBe(1);
    stop();
    expect(process.listenerCount("SIGHUP")).toBe(listenersBefore);
    process.listeners("SIGHUP").forEach((l) => expect(l).not.toBeUndefined());
    expect(reloads).toBe(1);
  });
});
