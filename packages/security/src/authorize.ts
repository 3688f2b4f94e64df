import {
  DescriptorType,
  FlightError,
  StatusCode,
  descriptorFromKey,
  readTargets,
  readTicketTargets,
  ticketToKey,
  type CallInfo,
  type FlightCall,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type FlightMethod,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkFunction,
  checkObject,
} from "@blackice/flight-core";
import { parseFlightRef, type FlightRef } from "./flight-ref";
import { identityOf, type Identity } from "./identity-of";
import { MERKLE_PROOF_ACTION } from "./merkle-integrity";
import { peekFirst } from "./peek-first";
import { lastBytesField, readProtobufFields } from "./read-protobuf-fields";

/**
 * What a call does to a flight:
 * - `read`: GetFlightInfo, PollFlightInfo, GetSchema, DoGet, the `merkle-proof` action; for a
 *   query descriptor or query ticket (docs/query.md), each flight the query reads (once per
 *   table of a SQL statement; all must be allowed);
 * - `list`: one flight of a ListFlights answer (flights the policy refuses are left out);
 * - `write`: DoPut (create, append: overwrite), the `RenewFlightEndpoint` action;
 * - `delete`: the `delete` action, once per flight it names; each of those flights must also be
 *   allowed as `write` (a delete is a write), so a policy must grant both;
 * - `exchange`: DoExchange, with the first message's descriptor;
 * - `action`: any other action (`actionType` says which), with no descriptor;
 * - `meta`: ListActions.
 */
export type AccessOperation = "read" | "list" | "write" | "delete" | "exchange" | "action" | "meta";

/** One access decision to make. */
export interface AccessRequest {
  /** Who asks (from `kIdentity`), undefined when no middleware authenticated the call. */
  readonly identity: Identity | undefined;
  readonly method: FlightMethod;
  readonly operation: AccessOperation;
  /** The flight concerned, when the call names one and it could be resolved. */
  readonly descriptor: FlightDescriptor | undefined;
  /** The action type, for DoAction. */
  readonly actionType?: string;
  /** The call, for policies that look at more (e.g. `kAttestation`). */
  readonly call: CallInfo;
}

/** Allows (true) or refuses (false) one access. */
export type AccessPolicy = (request: AccessRequest) => boolean | Promise<boolean>;

/** Options of {@link authorize}. */
export interface AuthorizeOptions {
  /**
   * The descriptor of the flight a ticket names (for DoGet, and tickets in action bodies), or
   * undefined. Default: read the ticket as a BlackIce store ticket (the flight key), which is
   * what `MemoryStore` issues; give your own for other stores.
   */
  resolveTicket?: (ticket: Uint8Array) => FlightDescriptor | undefined;
}

/** The default ticket reader: a BlackIce ticket is its flight's key. */
function storeTicketDescriptor(ticket: Uint8Array): FlightDescriptor | undefined {
  try {
    return descriptorFromKey(ticketToKey(ticket));
  } catch {
    return undefined;
  }
}

/** The flights a `delete` body names (as the built-in action reads it); undefined entries could not be resolved. */
function deleteTargets(body: Uint8Array, resolve: (ref: FlightRef) => FlightDescriptor | undefined, resolveTicket: (t: Uint8Array) => FlightDescriptor | undefined): Array<FlightDescriptor | undefined> {
  const text = Buffer.from(body).toString("utf8").trim();
  if (!text.startsWith("{")) return [resolveTicket(body)];
  let parsed: { flights?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    return [undefined];
  }
  const refs = Array.isArray(parsed.flights) ? parsed.flights : [parsed];
  if (refs.length === 0) return [undefined];
  return refs.map((r) => {
    try {
      return resolve(parseFlightRef(r, "delete"));
    } catch {
      return undefined;
    }
  });
}

/** The ticket inside a RenewFlightEndpointRequest (endpoint = 1 → ticket = 1 → bytes = 1). */
function renewTicket(body: Uint8Array): Uint8Array | undefined {
  try {
    const endpoint = lastBytesField(readProtobufFields(body), 1);
    const ticket = endpoint && lastBytesField(readProtobufFields(endpoint), 1);
    return ticket && lastBytesField(readProtobufFields(ticket), 1);
  } catch {
    return undefined;
  }
}

/**
 * Authorization: asks `policy` about every call, after authentication (put it after the auth
 * middleware). A refusal is PERMISSION_DENIED, or UNAUTHENTICATED when the call has no
 * identity; the handler does not run. ListFlights answers are filtered flight by flight
 * (`list`); a `delete` action must be allowed as `write` and as `delete` for every flight it
 * names. Handshake is never
 * checked. See {@link AccessOperation} for what each method maps to; a flight that cannot be
 * resolved is passed as `descriptor: undefined`, which a policy should refuse.
 *
 * @example
 * createFlightServer(
 *   basicTokenAuth({ validate }),
 *   authorize(pathPrefixPolicy({ alice: ["telemetry"], ingest: { write: ["telemetry"], read: [] } })),
 * );
 */
export function authorize(policy: AccessPolicy, options: AuthorizeOptions = {}): ServerParts {
  checkFunction("authorize", "policy", policy, true, "a function (request) => boolean | Promise<boolean>");
  checkObject("authorize", "options", options);
  const resolveTicket = checkFunction<NonNullable<AuthorizeOptions["resolveTicket"]>>("authorize", "resolveTicket", options.resolveTicket) ?? storeTicketDescriptor;
  const safeResolveTicket = (t: Uint8Array): FlightDescriptor | undefined => {
    try {
      return resolveTicket(t);
    } catch {
      return undefined;
    }
  };
  const resolveRef = (ref: FlightRef): FlightDescriptor | undefined => (ref.descriptor ? ref.descriptor : safeResolveTicket(ref.ticket));

  const allowed = async (call: FlightCall, operation: AccessOperation, descriptor: FlightDescriptor | undefined, actionType?: string): Promise<boolean> =>
    (await policy({ identity: identityOf(call), method: call.method, operation, descriptor, actionType, call })) === true;

  const require = async (call: FlightCall, operation: AccessOperation, descriptor: FlightDescriptor | undefined, actionType?: string): Promise<void> => {
    if (await allowed(call, operation, descriptor, actionType)) return;
    if (identityOf(call) === undefined) throw new FlightError(StatusCode.UNAUTHENTICATED, "authentication required");
    throw new FlightError(StatusCode.PERMISSION_DENIED, `permission denied for ${call.method}`);
  };

  const middleware: FlightMiddleware = (next) =>
    async function authorizeCall(call) {
      switch (call.method) {
        case "handshake":
          return next(call);
        case "listActions":
          await require(call, "meta", undefined);
          return next(call);
        // A query (docs/query.md) is a read of every flight it names (a SQL statement may read
        // several): the policy is asked about each, whether `query()` comes before or after
        // this middleware, and one refusal refuses the call.
        case "getFlightInfo":
        case "pollFlightInfo":
        case "getSchema":
          for (const d of readTargets(call.request) ?? [undefined]) await require(call, "read", d);
          return next(call);
        case "doGet": {
          const targets = readTicketTargets(call.request.ticket);
          for (const t of targets ?? [undefined]) await require(call, "read", t === undefined ? undefined : "ticket" in t ? safeResolveTicket(t.ticket) : t.descriptor);
          return next(call);
        }
        case "doPut":
        case "doExchange": {
          const { first, stream } = await peekFirst<FlightData>(call.request);
          await require(call, call.method === "doPut" ? "write" : "exchange", first?.flightDescriptor);
          return next({ ...call, request: stream } as FlightCall);
        }
        case "doAction": {
          const { type, body } = call.request;
          if (type === "delete") {
            const targets = deleteTargets(body, resolveRef, safeResolveTicket);
            // A delete is a write: a key that may not overwrite a flight may not remove it either.
            for (const d of targets) {
              await require(call, "write", d, type);
              await require(call, "delete", d, type);
            }
          } else if (type === MERKLE_PROOF_ACTION) {
            let d: FlightDescriptor | undefined;
            try {
              d = resolveRef(parseFlightRef(JSON.parse(Buffer.from(body).toString("utf8")), type));
            } catch {
              d = undefined;
            }
            await require(call, "read", d, type);
          } else if (type === "RenewFlightEndpoint") {
            const t = renewTicket(body);
            await require(call, "write", t && safeResolveTicket(t), type);
          } else {
            await require(call, "action", undefined, type);
          }
          return next(call);
        }
        case "listFlights": {
          const infos = (await next(call)) as AsyncIterable<FlightInfo>;
          return (async function* allowedFlights() {
            for await (const info of infos) if (await allowed(call, "list", info.flightDescriptor)) yield info;
          })();
        }
        default:
          throw new FlightError(StatusCode.PERMISSION_DENIED, "permission denied");
      }
    };
  return serverParts(middleware);
}

/**
 * Whether a descriptor is a PATH descriptor with at least one segment (the only kind path
 * prefixes can match). For policies.
 *
 * @example
 * const policy: AccessPolicy = (r) => isPathDescriptor(r.descriptor) && r.descriptor.path[0] === "public";
 */
export function isPathDescriptor(d: FlightDescriptor | undefined): d is FlightDescriptor {
  return d !== undefined && d.type === DescriptorType.PATH && Array.isArray(d.path) && d.path.length > 0;
}
