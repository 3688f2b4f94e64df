// mtlsIdentity on a real mTLS server: the client certificate alone names the caller (CN or a
// SAN URI), and authorize() works with it. pyarrow is the client.
import * as path from "node:path";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { authorize, mtlsIdentity, pathPrefixPolicy, tls, type MtlsIdentityOptions } from "@blackice/flight-security";
import { makeTestCerts, type TestCerts } from "../../packages/security/src/test-certs";
import { run, venvPython } from "../helpers/python";

describe("mtlsIdentity with pyarrow over mutual TLS", () => {
  let certs: TestCerts;
  const servers: FlightServer[] = [];
  beforeAll(() => {
    certs = makeTestCerts();
    certs.issueClient(path.join(certs.dir, "spiffe.crt"), path.join(certs.dir, "spiffe.key"), "some-host", "URI:spiffe://corp/ingest, DNS:ingest.corp");
  });
  afterAll(async () => {
    for (const s of servers) await s.shutdown({ graceMs: 100 });
    certs.remove();
  });

  async function serve(options: MtlsIdentityOptions, grants: Record<string, string[]>): Promise<FlightServer> {
    const server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0" }),
      tls({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }),
      mtlsIdentity(options),
      authorize(pathPrefixPolicy(grants, { actions: ["stats"] })),
    );
    servers.push(server);
    await server.start();
    return server;
  }

  const client = async (server: FlightServer, cert: string, key: string) => {
    const res = await run(venvPython(), [path.join(__dirname, "pyarrow_mtls_client.py")], {
      env: { URI: `grpc+tls://localhost:${server.port}`, CA: certs.caCert, CLIENT_CERT: cert, CLIENT_KEY: key },
    });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    return JSON.parse(res.stdout);
  };

  it("the subject CN is the identity; authorize grants by it", async () => {
    const server = await serve({ required: true }, { "test-client": ["telemetry"] });
    expect(await client(server, certs.clientCert, certs.clientKey)).toEqual({ put_own: "ok", put_other: "unauthorized", read_own: "ok", whoami: "test-client" });
    expect(await server.store.get({ type: 1, cmd: new Uint8Array(0), path: ["secret", "a"] })).toBeUndefined();
  });

  it("a SAN URI (SPIFFE id) is the identity with from: 'san-uri'", async () => {
    const server = await serve({ from: "san-uri" }, { "spiffe://corp/ingest": ["telemetry"] });
    expect(await client(server, path.join(certs.dir, "spiffe.crt"), path.join(certs.dir, "spiffe.key"))).toEqual({
      put_own: "ok",
      put_other: "unauthorized",
      read_own: "ok",
      whoami: "spiffe://corp/ingest",
    });
    // The CN-only client certificate has no SAN URI: no identity, so authorize refuses it.
    expect(await client(server, certs.clientCert, certs.clientKey)).toEqual({ put_own: "unauthenticated", put_other: "unauthenticated", read_own: "unauthenticated", whoami: "unauthenticated" });
  });
});
