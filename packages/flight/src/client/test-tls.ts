// Test helper: a throwaway self-signed certificate for "flight.test" and 127.0.0.1, made with
// openssl in a temporary directory, so that the TLS test needs no checked-in key.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface TestCert {
  cert: Buffer;
  key: Buffer;
}

const OPENSSL = fs.existsSync("/usr/bin/openssl") ? "/usr/bin/openssl" : "openssl";

/** A self-signed certificate, or undefined when openssl is not available. */
export function selfSignedCert(): TestCert | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flight-client-tls-"));
  try {
    execFileSync(
      OPENSSL,
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=flight.test",
        "-addext", "subjectAltName=DNS:flight.test,IP:127.0.0.1",
      ],
      { cwd: dir, stdio: "pipe" },
    );
    return { cert: fs.readFileSync(path.join(dir, "cert.pem")), key: fs.readFileSync(path.join(dir, "key.pem")) };
  } catch {
    return undefined;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
