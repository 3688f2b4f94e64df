// The caller's identity lives in core, so that the binding's built-in actions can read it
// without depending on this package; it is re-exported here unchanged.
export { ADMIN_ROLE, hasRole, identityOf, isOperator, kAuthenticationConfigured, kIdentity } from "@blackice/flight-core";
export type { Identity, IdentityClaims } from "@blackice/flight-core";
