import { FlightError, StatusCode } from "@blackice/flight-core";
import { attestation, attestationOf, kAttestation, type AttestationOptions } from "./attestation";
import { compose, fakeTerminal, makeCall } from "./test-call";

function setup(options: Partial<AttestationOptions> = {}) {
  const seen: Array<string | Uint8Array> = [];
  const terminal = fakeTerminal();
  const handler = compose(
    attestation({
      verify: async (evidence) => {
        seen.push(evidence);
        const text = typeof evidence === "string" ? evidence : Buffer.from(evidence).toString();
        if (text === "throw") throw new Error("verifier exploded with secret details");
        return text.startsWith("good") ? { ok: true, trustScore: Number(text.slice(5) || "1") } : { ok: false, reason: "unknown device" };
      },
      ...options,
    }),
    terminal.handler,
  );
  return { handler, state: terminal.state, seen };
}

describe("attestation", () => {
  it("publishes the verifier's verdict under kAttestation and runs the handler", async () => {
    const t = setup();
    const call = makeCall("listActions", {}, { headers: { "x-blackice-attestation": "good:0.9" } });
    await t.handler(call);
    expect(call.context.get(kAttestation)).toEqual({ ok: true, trustScore: 0.9, evidencePresent: true });
    expect(attestationOf(call)).toBe(call.context.get(kAttestation));
    expect(t.state.handlerExecuted).toBe(true);
  });

  it("without evidence publishes ok:false/missing (not required: the call goes on)", async () => {
    const t = setup();
    const call = makeCall("listActions", {});
    await t.handler(call);
    expect(call.context.get(kAttestation)).toEqual({ ok: false, reason: "missing", evidencePresent: false });
    expect(t.seen).toEqual([]);
    expect(t.state.handlerExecuted).toBe(true);
  });

  it("a verifier that throws gives ok:false/verifier-error, never its message", async () => {
    const t = setup({ required: true });
    const call = makeCall("listActions", {}, { headers: { "x-blackice-attestation": "throw" } });
    const err = await t.handler(call).catch((e: FlightError) => e);
    expect(call.context.get(kAttestation)).toEqual({ ok: false, reason: "verifier-error", evidencePresent: true });
    expect((err as FlightError).message).not.toMatch(/exploded/);
  });

  it("required: refuses a missing or failing verdict, or one below minTrustScore, with PERMISSION_DENIED before the handler", async () => {
    for (const headers of [{}, { "x-blackice-attestation": "bad" }, { "x-blackice-attestation": "good:0.5" }] as Array<Record<string, string>>) {
      const t = setup({ required: true, minTrustScore: 0.8 });
      const err = (await t.handler(makeCall("listActions", {}, { headers })).catch((e: unknown) => e)) as FlightError;
      expect(err).toBeInstanceOf(FlightError);
      expect(err.code).toBe(StatusCode.PERMISSION_DENIED);
      expect(t.state.handlerExecuted).toBe(false);
    }
    const ok = setup({ required: true, minTrustScore: 0.8 });
    await ok.handler(makeCall("listActions", {}, { headers: { "x-blackice-attestation": "good:0.8" } }));
    expect(ok.state.handlerExecuted).toBe(true);
  });

  it("reads a custom header; a -bin header gives the verifier bytes", async () => {
    const t = setup({ header: "x-device-proof-bin" });
    await t.handler(makeCall("listActions", {}, { headers: { "x-device-proof-bin": Buffer.from("good:1") } }));
    expect(t.seen[0]).toBeInstanceOf(Uint8Array);
  });

  it("checks its options up front", () => {
    expect(() => attestation({} as never)).toThrow(/verify/);
    expect(() => attestation({ verify: async () => ({ ok: true }), header: "X-Upper" })).toThrow(/lower-case/);
    expect(() => attestation({ verify: async () => ({ ok: true }), minTrustScore: Number.NaN })).toThrow(/minTrustScore/);
  });
});
