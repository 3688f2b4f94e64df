import type { AccessPolicy, AccessRequest } from "./authorize";
import { isPathDescriptor } from "./authorize";
import { checkEnum, checkObject, checkOptions, checkStringArray } from "@blackice/flight-core";

/** Path prefixes per operation. A prefix is `/`-separated segments (`telemetry/host-1`), or `*` for every flight. */
export interface PathGrants {
  /** GetFlightInfo, PollFlightInfo, GetSchema, DoGet, ListFlights, `merkle-proof`. */
  readonly read?: readonly string[];
  /** DoPut (create, append), RenewFlightEndpoint, DoExchange. */
  readonly write?: readonly string[];
  /**
   * The `delete` action. authorize() also asks for `write` on the same flight, so a prefix
   * here deletes only where `write` covers it too: `{ delete: ["x"] }` alone allows no delete.
   */
  readonly delete?: readonly string[];
}

/** Options of {@link pathPrefixPolicy}. */
export interface PathPrefixPolicyOptions {
  /** Actions (other than delete, merkle-proof, RenewFlightEndpoint) every granted subject may call. Default `["ping"]`. */
  readonly actions?: readonly string[];
  /**
   * What the grants are keyed by: the identity's `subject` (default), or its OAuth2 `scopes`
   * (`jwtAuth`), in which case a call is allowed when any one of its scopes allows it.
   */
  readonly by?: "subject" | "scope";
}

type Prefix = "*" | readonly string[];

const WHERE = "pathPrefixPolicy";

function compile(subject: string, op: string, prefixes: unknown): Prefix[] {
  return checkStringArray(WHERE, `the ${op} grants of ${JSON.stringify(subject)}`, prefixes).map((p: string) => {
    if (p === "*") return "*";
    const segments = p.split("/").filter((s) => s.length > 0);
    if (segments.length === 0) throw new TypeError(`pathPrefixPolicy: empty prefix ${JSON.stringify(p)} for ${JSON.stringify(subject)}; use "*" to grant every flight`);
    return segments;
  });
}

function matches(prefixes: readonly Prefix[], path: readonly string[] | undefined): boolean {
  return prefixes.some((p) => p === "*" || (path !== undefined && p.length <= path.length && p.every((seg, i) => seg === path[i])));
}

/**
 * An example {@link AccessPolicy}: each subject (HMAC key id or user name) may touch the flights
 * whose PATH starts with one of its prefixes, segment by segment (`telemetry` covers
 * `telemetry/cpu`, not `telemetry2`). A list of prefixes grants read, list, write (overwrite,
 * append) and delete; an object grants them separately. A delete needs both the `write` and
 * the `delete` grant for the flight (authorize() asks for both), so an object with `delete`
 * but no matching `write` no longer allows it. Only `*` covers CMD descriptors.
 * ListActions is open to any granted subject, other actions only when listed in `actions`;
 * unknown subjects and unauthenticated calls get nothing. With `{ by: "scope" }` the grants
 * are keyed by OAuth2 scope instead (`jwtAuth` publishes a token's scopes), and a call is
 * allowed when one of its scopes allows it.
 *
 * @example
 * authorize(pathPrefixPolicy({
 *   "sensor-key-1": { read: ["telemetry"], write: ["telemetry/site-a"], delete: ["telemetry/site-a"] },
 *   alice: ["telemetry", "reports/alice"],
 *   admin: ["*"],
 * }, { actions: ["ping", "stats"] }));
 */
export function pathPrefixPolicy(grants: Readonly<Record<string, readonly string[] | PathGrants>>, options: PathPrefixPolicyOptions = {}): AccessPolicy {
  checkObject(WHERE, "grants", grants, "an object { subject: prefixes }");
  const table = new Map<string, { read: Prefix[]; write: Prefix[]; delete: Prefix[] }>();
  for (const [subject, g] of Object.entries(grants)) {
    if (Array.isArray(g)) {
      const all = compile(subject, "path", g);
      table.set(subject, { read: all, write: all, delete: all });
    } else {
      const of = `grants.${subject}`;
      checkObject(WHERE, of, g, "an array of prefixes or {read, write, delete}");
      const pg = checkOptions<PathGrants>(WHERE, g, ["read", "write", "delete"], true, of);
      table.set(subject, { read: compile(subject, "read", pg.read ?? []), write: compile(subject, "write", pg.write ?? []), delete: compile(subject, "delete", pg.delete ?? []) });
    }
  }
  checkObject(WHERE, "options", options);
  const openActions = new Set(options.actions === undefined ? ["ping"] : checkStringArray(WHERE, "actions", options.actions));
  const by = checkEnum(WHERE, "by", options.by, ["subject", "scope"] as const, "subject");

  const allows = (g: { read: Prefix[]; write: Prefix[]; delete: Prefix[] }, req: AccessRequest): boolean => {
    const path = isPathDescriptor(req.descriptor) ? req.descriptor.path : undefined;
    const cmd = req.descriptor !== undefined && path === undefined;
    const check = (prefixes: Prefix[]): boolean => req.descriptor !== undefined && (cmd ? prefixes.includes("*") : matches(prefixes, path));
    switch (req.operation) {
      case "meta":
        return true;
      case "action":
        return req.actionType !== undefined && openActions.has(req.actionType);
      case "read":
      case "list":
        return check(g.read);
      case "write":
      case "exchange":
        return check(g.write);
      case "delete":
        return check(g.delete);
      default:
        return false;
    }
  };

  return function pathPrefixAllows(req: AccessRequest): boolean {
    if (req.identity === undefined) return false;
    if (by === "subject") {
      const g = table.get(req.identity.subject);
      return g !== undefined && allows(g, req);
    }
    return (req.identity.scopes ?? []).some((scope) => {
      const g = table.get(scope);
      return g !== undefined && allows(g, req);
    });
  };
}
