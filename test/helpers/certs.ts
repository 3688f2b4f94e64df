import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Paths of the certificates made for one test run (generated, never committed). */
export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  rogueCaCert: string;
  rogueClientCert: string;
  rogueClientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "pipe" });
}

function issue(cwd: string, name: string, subject: string, ca: string, extFile?: string): void {
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], cwd);
  const args = ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2"];
  if (extFile) args.push("-extfile", extFile);
  openssl(args, cwd);
}

/**
 * Makes a CA, a server certificate for localhost/127.0.0.1, a client certificate, and a
 * rogue CA with its own client certificate, with Debian's openssl, in a fresh temp folder.
 */
export function makeTestCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-certs-"));
  for (const ca of ["ca", "rogue-ca"]) {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${ca}.key`, "-out", `${ca}.crt`, "-days", "2", "-subj", `/CN=BlackIce test ${ca}`], dir);
  }
  fs.writeFileSync(path.join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  fs.writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  issue(dir, "server", "/CN=localhost", "ca", "server.ext");
  issue(dir, "client", "/CN=telemetry-client", "ca", "client.ext");
  issue(dir, "rogue-client", "/CN=rogue-client", "rogue-ca", "client.ext");
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCert: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    rogueCaCert: p("rogue-ca.crt"),
    rogueClientCert: p("rogue-client.crt"),
    rogueClientKey: p("rogue-client.key"),
  };
}
