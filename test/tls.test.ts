import * as fs from "node:fs";
import * as path from "node:path";
import { serverConfig, type TlsSetting } from "@blackice/flight-core";
import * as grpc from "@grpc/grpc-js";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { rawClient, serverStream } from "./helpers/raw-flight-client";
import { makeTestCerts, type TestCerts } from "./helpers/certs";
import { run, venvPython } from "./helpers/python";

const PROBE = path.join(__dirname, "python/tls_probe.py");

function tlsSetting(c: TestCerts, requireClientCert: boolean): TlsSetting {
  return {
    kind: "tls",
    requireClientCert,
    load: () => ({
      cert: fs.readFileSync(c.serverCert),
      key: fs.readFileSync(c.serverKey),
      clientCa: requireClientCert ? fs.readFileSync(c.caCert) : undefined,
    }),
  };
}

async function probe(server: FlightServer, ca: string, client?: [string, string]): Promise<string> {
  const args = [PROBE, `grpc+tls://localhost:${server.port}`, ca, ...(client ?? [])];
  const result = await run(venvPython(), args, { timeoutMs: 30_000 });
  return result.stdout.trim() || result.stderr.trim();
}

describe("TLS and mTLS with pyarrow's Flight client", () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = makeTestCerts();
  });
  afterAll(() => fs.rmSync(certs.dir, { recursive: true, force: true }));

  it("connects over grpc+tls with the CA, and advertises a grpc+tls location", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), tlsSetting(certs, false));
    await server.start();
    try {
      expect(server.location).toMatch(/^grpc\+tls:\/\//);
      expect(await probe(server, certs.caCert)).toBe("OK");
      expect(await probe(server, certs.rogueCaCert)).toMatch(/^FAIL/); // server cert not trusted
    } finally {
      await server.shutdown({ graceMs: 100 });
    }
  });

  it("with mTLS required: refuses no client cert and the rogue one, accepts the right one", async () => {
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), tlsSetting(certs, true));
    await server.start();
    try {
      expect(await probe(server, certs.caCert)).toMatch(/^FAIL/);
      expect(await probe(server, certs.caCert, [certs.rogueClientCert, certs.rogueClientKey])).toMatch(/^FAIL/);
      expect(await probe(server, certs.caCert, [certs.clientCert, certs.clientKey])).toBe("OK");
    } finally {
      await server.shutdown({ graceMs: 100 });
    }
  });
});

describe("certificate reload", () => {
  it("serves a new certificate after reload without dropping an open connection", async () => {
    const certs = makeTestCerts();
    const other = makeTestCerts(); // a second, independent CA and server certificate
    let reload: (() => void) | undefined;
    const setting: TlsSetting = {
      ...tlsSetting(certs, false),
      onReloadable: (r) => {
        reload = r;
        return () => (reload = undefined);
      },
    };
    const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), setting);
    await server.start();
    const open = rawClient(server.port, { host: "localhost", credentials: grpc.credentials.createSsl(fs.readFileSync(certs.caCert)) });
    try {
      expect((await serverStream<{ type: string }>(open, "listActions", {})).length).toBeGreaterThan(0);
      fs.copyFileSync(other.serverCert, certs.serverCert);
      fs.copyFileSync(other.serverKey, certs.serverKey);
      expect(reload).toBeDefined();
      reload!();
      await new Promise((r) => setTimeout(r, 50));
      expect(await probe(server, other.caCert)).toBe("OK"); // new handshakes get the new certificate
      expect(await probe(server, certs.caCert)).toMatch(/^FAIL/);
      // The connection opened before the reload still works.
      expect((await serverStream<{ type: string }>(open, "listActions", {})).length).toBeGreaterThan(0);
    } finally {
      open.close();
      await server.shutdown({ graceMs: 100 });
      expect(reload).toBeUndefined(); // shutdown stopped the watch
      fs.rmSync(certs.dir, { recursive: true, force: true });
      fs.rmSync(other.dir, { recursive: true, force: true });
    }
  });
});

describe("the client certificate reaches middleware (attestation by certificate)", () => {
  it("passes the mTLS client certificate to the verifier and refuses a certificate it does not trust", async () => {
    const { attestation } = await import("@blackice/flight-security");
    const { FlightClient } = await import("@blackice/flight");
    const { X509Certificate } = await import("node:crypto");
    const certs = makeTestCerts();
    const trusted = new X509Certificate(fs.readFileSync(certs.clientCert)).fingerprint256;
    const seen: string[] = [];
    const serve = async (allow: string[]) => {
      const server = createFlightServer(
        serverConfig({ addr: "127.0.0.1:0" }),
        tlsSetting(certs, true),
        attestation({
          source: "certificate",
          required: true,
          verify: async (evidence, call) => {
            seen.push(call.peerCertificate?.subjectCN ?? "");
            const fp = new X509Certificate(Buffer.from(evidence as Uint8Array)).fingerprint256;
            return allow.includes(fp) ? { ok: true, trustScore: 1 } : { ok: false, reason: "unknown device" };
          },
        }),
      );
      await server.start();
      return server;
    };
    const clientFor = (server: FlightServer) =>
      new FlightClient(`grpc+tls://localhost:${server.port}`, {
        tls: { rootCerts: fs.readFileSync(certs.caCert), cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) },
      });
    const open = await serve([trusted]);
    const closed = await serve(["00:11"]);
    const [a, b] = [clientFor(open), clientFor(closed)];
    try {
      expect((await a.doAction("ping")).map((r) => Buffer.from(r.body).toString())).toEqual(["pong"]);
      await expect(b.doAction("ping")).rejects.toMatchObject({ code: 7 }); // PERMISSION_DENIED
      expect(seen).toEqual(["telemetry-client", "telemetry-client"]);
    } finally {
      a.close();
      b.close();
      await open.shutdown({ graceMs: 10 });
      await closed.shutdown({ graceMs: 10 });
      fs.rmSync(certs.dir, { recursive: true, force: true });
    }
  });
});
