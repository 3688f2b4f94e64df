import { createContextKey, type CallContext } from "@blackice/flight-core";

/** Extra facts about an identity (roles, tenant...), as the host app's `validate` returned them. */
export type IdentityClaims = Readonly<Record<string, string | number | boolean>>;

/** Who made a call, as established by an authentication middleware. */
export interface Identity {
  /** The HMAC key id, or the user name for basic/bearer authentication. */
  readonly subject: string;
  /** How the identity was established: `"hmac"`, `"basic"` (handshake or its bearer token), or a host app's own. */
  readonly method: "hmac" | "basic" | (string & {});
  readonly claims?: IdentityClaims;
}

/**
 * The caller's identity, published by whichever middleware authenticated the call
 * (`hmacAuth` publishes `{ subject: keyId, method: "hmac" }`, `basicTokenAuth`
 * `{ subject: user, method: "basic", claims }`). Undefined for an unauthenticated call.
 *
 * @example
 * const who = call.context.get(kIdentity)?.subject;
 */
export const kIdentity = createContextKey<Identity | undefined>("blackice.identity", undefined);

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
