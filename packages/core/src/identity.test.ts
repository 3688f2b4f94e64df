import { CallContext } from "./context";
import { ADMIN_ROLE, hasRole, identityOf, kIdentity } from "./identity";

describe("identity", () => {
  it("identityOf reads kIdentity from a context or a call; undefined when unauthenticated", () => {
    const context = new CallContext();
    expect(identityOf(context)).toBeUndefined();
    context.set(kIdentity, { subject: "alice", method: "basic" });
    expect(identityOf(context)?.subject).toBe("alice");
    expect(identityOf({ context })?.subject).toBe("alice");
  });

  it("hasRole: only a listed role; false without roles or without an identity", () => {
    expect(ADMIN_ROLE).toBe("admin");
    expect(hasRole({ subject: "a", method: "hmac", roles: ["ops", "admin"] }, ADMIN_ROLE)).toBe(true);
    expect(hasRole({ subject: "a", method: "hmac", roles: ["administrator"] }, ADMIN_ROLE)).toBe(false);
    expect(hasRole({ subject: "admin", method: "hmac" }, ADMIN_ROLE)).toBe(false);
    expect(hasRole({ subject: "a", method: "x", claims: { role: "admin" } }, ADMIN_ROLE)).toBe(false);
    expect(hasRole(undefined, ADMIN_ROLE)).toBe(false);
  });
});
