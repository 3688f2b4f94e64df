// Test helper (excluded from the build): a CA, a server certificate for localhost/127.0.0.1
// and a client certificate, made with /usr/bin/openssl in a temporary directory.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface TestCerts {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second, unrelated key. */
  otherKey: string;
  /** Makes a new server certificate+key pair (same CA) at the given paths. */
  issueServer(certPath: string, keyPath: string, cn?: string): void;
  /** Makes a client certificate+key pair (same CA) with a CN and optional subjectAltName text (e.g. "URI:spiffe://corp/ingest"). */
  issueClient(certPath: string, keyPath: string, cn: string, san?: string): void;
  remove(): void;
}

const OPENSSL = fs.existsSync("/usr/bin/openssl") ? "/usr/bin/openssl" : "openssl";

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function newKey(file: string, cwd: string): void {
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", file], cwd);
}

export function makeTestCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-tls-"));
  const p = (f: string) => path.join(dir, f);
  newKey("ca.key", dir);
  openssl(["req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=BlackIce Test CA"], dir);
  fs.writeFileSync(p("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  fs.writeFileSync(p("client.ext"), "extendedKeyUsage=clientAuth\n");
  const issue = (name: string, cn: string, ext: string, certPath = p(`${name}.crt`), keyPath = p(`${name}.key`)): void => {
    newKey(keyPath, dir);
    openssl(["req", "-new", "-key", keyPath, "-out", p(`${name}.csr`), "-subj", `/CN=${cn}`], dir);
    openssl(["x509", "-req", "-in", p(`${name}.csr`), "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", certPath, "-days", "2", "-extfile", ext], dir);
  };
  issue("server", "localhost", "server.ext");
  issue("client", "test-client", "client.ext");
  newKey("other.key", dir);
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherKey: p("other.key"),
    issueServer: (certPath, keyPath, cn = "localhost") => issue(`server-${Math.random().toString(36).slice(2)}`, cn, "server.ext", certPath, keyPath),
    issueClient: (certPath, keyPath, cn, san) => {
      const name = `client-${Math.random().toString(36).slice(2)}`;
      fs.writeFileSync(p(`${name}.ext`), `extendedKeyUsage=clientAuth\n${san ? `subjectAltName=${san}\n` : ""}`);
      issue(name, cn, `${name}.ext`, certPath, keyPath);
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
