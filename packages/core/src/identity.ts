import { createContextKey, type CallContext } from "./context";

/** Extra facts about an identity (tenant, plan...), as the host app's `validate` returned them. */
export type IdentityClaims = Readonly<Record<string, string | number | boolean>>;

/** Who made a call, as established by an authentication middleware. */
export interface Identity {
  /** The HMAC key id, or the user name for basic/bearer authentication. */
  readonly subject: string;
  /** How the identity was established: `"hmac"`, `"basic"` (handshake or its bearer token), or a host app's own. */
  readonly method: "hmac" | "basic" | (string & {});
  readonly claims?: IdentityClaims;
  /**
   * Roles granted to the caller (`hmacAuth` key `roles`, `basicTokenAuth` `validate`'s `roles`).
   * {@link ADMIN_ROLE} opens the management actions (`gc`, the full `stats`).
   */
  readonly roles?: readonly string[];
  /**
   * OAuth2 scopes granted to the caller (`jwtAuth`: the token's `scope` or `scp` claim).
   * Policies can key grants on them (`pathPrefixPolicy(grants, { by: "scope" })`).
   */
  readonly scopes?: readonly string[];
}

/** The role that the built-in `gc` action and the full `stats` answer require once calls carry an identity. */
export const ADMIN_ROLE = "admin";

/**
 * The caller's identity, published by whichever middleware authenticated the call
 * (`hmacAuth` publishes `{ subject: keyId, method: "hmac", roles? }`, `basicTokenAuth`
 * `{ subject: user, method: "basic", claims?, roles? }`). Undefined for an unauthenticated call.
 *
 * @example
 * const who = call.context.get(kIdentity)?.subject;
 */
export const kIdentity = createContextKey<Identity | undefined>("blackice.identity", undefined);

/**
 * Set to true on every call by each authentication middleware (`hmacAuth`, `basicTokenAuth`,
 * or a host app's own), also on calls it lets through without an identity (`allowUnsigned`,
 * `publicMethods`). The built-in management actions read it: on a server with authentication,
 * a call without identity is anonymous, not an operator, and gets neither `gc` nor the full `stats`.
 *
 * @example
 * call.context.set(kAuthenticationConfigured, true); // first thing in a custom auth middleware
 */
export const kAuthenticationConfigured = createContextKey<boolean>("blackice.authentication-configured", false);

/**
 * Whether a call may use the management actions (`gc`, the full `stats`): it carries
 * {@link ADMIN_ROLE}, or the server runs without authentication (no middleware set
 * {@link kAuthenticationConfigured} and no identity was published).
 */
export function isOperator(ctx: CallContext | { readonly context: CallContext }): boolean {
  const context = "context" in ctx ? ctx.context : ctx;
  const who = context.get(kIdentity);
  if (who === undefined) return !context.get(kAuthenticationConfigured);
  return hasRole(who, ADMIN_ROLE);
}

/**
 * The identity of a call: pass its context (or the call itself).
 *
 * @example
 * defineAction("whoami", "returns the caller", async (_body, call) => ({ body: Buffer.from(identityOf(call)?.subject ?? "nobody") }));
 */
export function identityOf(ctx: CallContext | { readonly context: CallContext }): Identity | undefined {
  const context = "context" in ctx ? ctx.context : ctx;
  return context.get(kIdentity);
}

/**
 * Whether an identity has a role. False for no identity.
 *
 * @example
 * adminActions({ store, isAdmin: (call) => hasRole(identityOf(call), ADMIN_ROLE) });
 */
export function hasRole(identity: Identity | undefined, role: string): boolean {
  return identity !== undefined && Array.isArray(identity.roles) && identity.roles.includes(role);
}
