import * as core from "@blackice/flight-core";
import * as security from "./index";

describe("identity exports", () => {
  it("the security package re-exports core's identity key and helpers, so both read the same value", () => {
    expect(security.kIdentity).toBe(core.kIdentity);
    expect(security.identityOf).toBe(core.identityOf);
    expect(security.hasRole).toBe(core.hasRole);
    expect(security.ADMIN_ROLE).toBe(core.ADMIN_ROLE);
    const context = new core.CallContext().set(security.kIdentity, { subject: "k1", method: "hmac", roles: ["admin"] });
    expect(core.hasRole(core.identityOf(context), core.ADMIN_ROLE)).toBe(true);
  });
});
