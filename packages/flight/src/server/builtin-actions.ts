import {
  ADMIN_ROLE,
  DescriptorType,
  FlightError,
  StatusCode,
  defineAction,
  identityOf,
  isOperator,
  invalidArgument,
  notFound,
  type ActionSetting,
  type FlightDescriptor,
  type FlightStore,
  type Result,
  offersGc,
  offersTtl,
} from "@blackice/flight-core";
import * as pb from "../gen/Flight";
import { flightInfoOf } from "./store-handler";

const json = (value: unknown): Result => ({ body: Buffer.from(JSON.stringify(value)) });

/** A reference to one flight in a `delete` body. */
type FlightRef = { path?: unknown; cmd?: unknown; ticket?: unknown };

async function resolveRef(store: FlightStore, ref: FlightRef): Promise<FlightDescriptor | undefined> {
  if (Array.isArray(ref.path)) {
    if (!ref.path.every((s) => typeof s === "string")) throw invalidArgument("delete: path must be an array of strings");
    return { type: DescriptorType.PATH, cmd: new Uint8Array(0), path: ref.path as string[] };
  }
  if (typeof ref.cmd === "string") return { type: DescriptorType.CMD, cmd: Buffer.from(ref.cmd, "base64"), path: [] };
  if (typeof ref.ticket === "string") return (await store.getByTicket(Buffer.from(ref.ticket, "utf8")))?.descriptor;
  throw invalidArgument('delete: each flight must be {"path": [...]}, {"cmd": "<base64>"} or {"ticket": "<ticket text>"}');
}

/** Reads a delete body: a JSON reference, a JSON `{"flights": [...]}` batch, or a raw ticket. */
async function parseDeleteBody(store: FlightStore, body: Uint8Array): Promise<{ refs: Array<FlightDescriptor | undefined>; batch: boolean }> {
  const text = Buffer.from(body).toString("utf8").trim();
  if (!text.startsWith("{")) {
    if (text === "") throw invalidArgument("delete: the body must name a flight (JSON {\"path\": [...]} or a ticket)");
    return { refs: [(await store.getByTicket(body))?.descriptor], batch: false };
  }
  let parsed: FlightRef & { flights?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidArgument("delete: the body is not valid JSON");
  }
  if (Array.isArray(parsed.flights)) {
    const refs: Array<FlightDescriptor | undefined> = [];
    for (const r of parsed.flights) refs.push(await resolveRef(store, r as FlightRef));
    return { refs, batch: true };
  }
  return { refs: [await resolveRef(store, parsed)], batch: false };
}

/** What the built-in actions need from the server besides the call (whose `call.store` they use). */
export interface BuiltinActionDeps {
  location: () => string;
  /** The full `stats` JSON. */
  stats: () => Record<string, unknown>;
  /** The calls one subject made, per method (`{ total, byCode }`): what a non-admin's `stats` shows. */
  callsOf: (subject: string) => Record<string, unknown>;
}

/**
 * The standard actions every BlackIce Flight server offers: `ping`, `stats`, `gc`, `delete`,
 * and Arrow's `RenewFlightEndpoint` and `CancelFlightInfo`.
 *
 * Access, decided by the identity an authentication middleware published (`kIdentity`):
 * - no authentication configured (no middleware set `kAuthenticationConfigured`): everything
 *   is open;
 * - a call without identity on a server with authentication (let through by `allowUnsigned`
 *   or `publicMethods`): `gc` is UNAUTHENTICATED and `stats` answers `{ identity: null, calls: {} }`;
 * - `gc` requires {@link ADMIN_ROLE} (PERMISSION_DENIED otherwise);
 * - `stats` answers the full JSON to admins, and `{ identity, calls }` (the caller's own calls)
 *   to anyone else, so key ids of others, RSS and the like stay with operators;
 * - `delete` is a write: `authorize()` asks its policy for `write` and `delete` on every flight
 *   named. Without `authorize()` there is no policy to ask, so every authenticated caller may
 *   write, and therefore delete, every flight.
 *
 * Every action works on `call.store`. `gc` needs the store's GC capability (UNIMPLEMENTED
 * otherwise); `RenewFlightEndpoint` on a store without TTL answers the endpoint as it is
 * (such flights never expire).
 */
export function builtinActions(deps: BuiltinActionDeps): ActionSetting[] {
  return [
    defineAction("ping", "Liveness check. Returns \"pong\".", async () => ({ body: Buffer.from("pong") })),
    defineAction(
      "stats",
      "Server statistics as JSON: flights, rows, bytes, memory use and limit, uptime, calls per method, and sections added by middleware. With authentication, only admins get all of it; others get {identity, calls}: their own calls.",
      async (_body, call) => {
        if (isOperator(call)) return json(deps.stats());
        const who = identityOf(call);
        // An anonymous call on a server with authentication (let through by allowUnsigned or
        // publicMethods) has no figures of its own.
        return json({ identity: who?.subject ?? null, calls: who ? deps.callsOf(who.subject) : {} });
      },
    ),
    defineAction(
      "gc",
      "Runs garbage collection now. Returns JSON {flightsRemoved, bytesFreed, durationMs}. With authentication, admins only.",
      async (_body, call) => {
        if (!isOperator(call)) {
          if (identityOf(call) === undefined) throw new FlightError(StatusCode.UNAUTHENTICATED, `gc requires an authenticated caller with the ${ADMIN_ROLE} role`);
          throw new FlightError(StatusCode.PERMISSION_DENIED, `gc requires the ${ADMIN_ROLE} role`);
        }
        const { store } = call;
        if (!offersGc(store)) throw new FlightError(StatusCode.UNIMPLEMENTED, "gc: the server's store does not collect expired flights (it has no GC capability)");
        return json(await store.gc());
      },
    ),
    defineAction(
      "delete",
      'Deletes flights. Body: JSON {"path": [...]}, {"cmd": "<base64>"}, {"ticket": "<ticket>"}, a raw ticket, or {"flights": [ ...those ]} for many. NOT_FOUND if none exists. Returns JSON {deleted, missing}. A delete is a write: authorize() checks it as one.',
      // No check here: with authorize() the policy has allowed `write` and `delete` for every
      // flight named; without it, any caller that passed authentication may write, so delete.
      async (body, call) => {
        const { store } = call;
        const { refs, batch } = await parseDeleteBody(store, body);
        let deleted = 0;
        const missing: number[] = [];
        for (let i = 0; i < refs.length; i++) {
          const d = refs[i];
          if (d && (await store.delete(d))) deleted++;
          else missing.push(i);
        }
        if (deleted === 0 || (!batch && missing.length > 0)) throw notFound(batch ? "delete: none of the flights exists" : "delete: no such flight");
        return json({ deleted, missing });
      },
    ),
    defineAction(
      "RenewFlightEndpoint",
      "Extends the expiration time of a FlightEndpoint by the flight's TTL. Body: RenewFlightEndpointRequest. Returns the renewed FlightEndpoint.",
      async (body, call) => {
        const { store } = call;
        let request: pb.RenewFlightEndpointRequest;
        try {
          request = pb.RenewFlightEndpointRequest.decode(body);
        } catch {
          throw invalidArgument("RenewFlightEndpoint: the body is not a RenewFlightEndpointRequest");
        }
        const ticket = request.endpoint?.ticket?.ticket;
        if (!ticket) throw invalidArgument("RenewFlightEndpoint: the endpoint has no ticket");
        const f = await store.getByTicket(ticket);
        if (!f) throw notFound("RenewFlightEndpoint: no flight for this ticket");
        const renewed = offersTtl(store) ? await store.renew(f.descriptor) : f;
        if (!renewed) throw notFound("RenewFlightEndpoint: no flight for this ticket");
        const endpoint = flightInfoOf(store, renewed, deps.location()).endpoint[0];
        return { body: pb.FlightEndpoint.encode({ ...endpoint, appMetadata: request.endpoint?.appMetadata ?? endpoint.appMetadata }).finish() };
      },
    ),
    defineAction(
      "CancelFlightInfo",
      "Cancels a FlightInfo. Stored flights are complete, so they are NOT_CANCELLABLE. Body: CancelFlightInfoRequest. Returns CancelFlightInfoResult.",
      async (body) => {
        try {
          pb.CancelFlightInfoRequest.decode(body);
        } catch {
          throw invalidArgument("CancelFlightInfo: the body is not a CancelFlightInfoRequest");
        }
        return { body: pb.CancelFlightInfoResult.encode({ status: pb.CancelStatus.CANCEL_STATUS_NOT_CANCELLABLE }).finish() };
      },
    ),
  ];
}
