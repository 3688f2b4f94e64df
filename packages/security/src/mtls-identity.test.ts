import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { FlightError, StatusCode } from "@blackice/flight-core";
import { kIdentity } from "./identity-of";
import { mtlsIdentity } from "./mtls-identity";
import { compose, fakeTerminal, makeCall } from "./test-call";
import { makeTestCerts, type TestCerts } from "./test-certs";

describe("mtlsIdentity", () => {
  let certs: TestCerts;
  let spiffe: X509Certificate;
  let plain: X509Certificate;
  beforeAll(() => {
    certs = makeTestCerts();
    certs.issueClient(path.join(certs.dir, "s.crt"), path.join(certs.dir, "s.key"), "host-1", "URI:spiffe://corp/ingest, DNS:ingest.corp, email:ops@corp.test");
    spiffe = new X509Certificate(fs.readFileSync(path.join(certs.dir, "s.crt")));
    plain = new X509Certificate(fs.readFileSync(certs.clientCert));
  });
  afterAll(() => certs.remove());

  const peer = (c: X509Certificate) => ({ subjectCN: /CN=([^\n]*)/.exec(c.subject)?.[1] ?? "", fingerprint256: c.fingerprint256, raw: new Uint8Array(c.raw) });
  const callWith = (c?: X509Certificate) => ({ ...makeCall("listActions", {}), ...(c ? { peerCertificate: peer(c) } : {}) }) as ReturnType<typeof makeCall<"listActions">>;

  it.each([
    ["cn", "host-1"],
    ["san-uri", "spiffe://corp/ingest"],
    ["san-dns", "ingest.corp"],
    ["san-email", "ops@corp.test"],
  ] as const)("from %s names the caller %s, with its roles", async (from, subject) => {
    const t = fakeTerminal();
    const handler = compose(mtlsIdentity({ from, roles: { [subject]: ["admin"] } }), t.handler);
    const call = callWith(spiffe);
    await handler(call);
    expect(call.context.get(kIdentity)).toEqual({ subject, method: "mtls", roles: ["admin"] });
  });

  it("without a certificate or the chosen name: passes on, or UNAUTHENTICATED when required", async () => {
    const t = fakeTerminal();
    const lenient = compose(mtlsIdentity({ from: "san-uri" }), t.handler);
    const c = callWith(plain);
    await lenient(c);
    expect(c.context.get(kIdentity)).toBeUndefined();
    expect(t.state.handlerExecuted).toBe(true);
    const strict = fakeTerminal();
    const handler = compose(mtlsIdentity({ from: "san-uri", required: true }), strict.handler);
    for (const cert of [plain, undefined]) {
      const err = await handler(callWith(cert)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FlightError);
      expect(err).toMatchObject({ code: StatusCode.UNAUTHENTICATED });
    }
    expect(strict.state.handlerExecuted).toBe(false);
    // A custom function of the parsed certificate.
    const custom = compose(mtlsIdentity({ from: (x) => x.serialNumber }), t.handler);
    const d = callWith(plain);
    await custom(d);
    expect(d.context.get(kIdentity)?.subject).toBe(plain.serialNumber);
  });

  it("validates its options", () => {
    expect(() => mtlsIdentity({ from: "ou" as never })).toThrow('mtlsIdentity: from must be "cn", "san-uri", "san-dns", "san-email" or a function; got "ou"');
    expect(() => mtlsIdentity({ roles: { a: [""] } })).toThrow(/roles/);
    expect(() => mtlsIdentity({ required: "yes" as never })).toThrow(/required must be a boolean/);
  });
});
