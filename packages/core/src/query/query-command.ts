import { FlightError, invalidArgument, resourceExhausted } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { MAX_PROJECTED_COLUMNS } from "../ipc/ipc-projection";
import { StatusCode } from "../status-code";

// The query command descriptor and the query ticket (docs/query.md). Both live in core, with
// no gRPC, because two packages read them: the flight package serves them (`query()`), and
// the security package's `authorize` resolves them to the flight they read.

/** The keys a query command may have today. */
export const QUERY_KEYS: readonly string[] = ["flight", "columns"];
/** Keys reserved for filters and SQL, answered with UNIMPLEMENTED until they are built. */
export const RESERVED_QUERY_KEYS: readonly string[] = ["where", "limit", "sql"];
/** Longest column name a query may name, in UTF-16 code units. */
export const MAX_QUERY_COLUMN_NAME = 1024;
/** Largest query ticket this server issues or redeems, bytes. */
export const MAX_QUERY_TICKET_BYTES = 32 * 1024;
/** What every query ticket starts with: no store ticket does (store keys start with `p:` or `c:`). */
export const QUERY_TICKET_PREFIX = "blackice.query.v1:";

const PREFIX_BYTES = Buffer.from(QUERY_TICKET_PREFIX, "latin1");
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A query command read from a descriptor by {@link parseQueryCommand}. */
export interface QueryCommand {
  /** The flight read: a PATH descriptor. */
  readonly flight: FlightDescriptor;
  /** The top-level columns selected, in order; absent for all of them. */
  readonly columns?: readonly string[];
}

/** What a query ticket carries (see {@link encodeQueryTicket}). */
export interface QueryTicket {
  /** The store's ticket of the flight read (for the built-in stores, the flight key's bytes). */
  readonly ticket: Uint8Array;
  /** The columns selected, in order; absent for all of them. */
  readonly columns?: readonly string[];
}

const unimplemented = (msg: string): FlightError => new FlightError(StatusCode.UNIMPLEMENTED, msg);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Reads a query command from a descriptor: a CMD descriptor whose bytes are a UTF-8 JSON
 * object with a `flight` (or `sql`) key, e.g. `{"flight":["telemetry","host-1"],"columns":["ts","cpu"]}`.
 * Returns undefined for any other descriptor (a PATH descriptor, or a command that is not
 * such an object), which names a stored flight as before.
 *
 * @throws FlightError INVALID_ARGUMENT for an unknown key or a bad value (naming it),
 * UNIMPLEMENTED for `where`, `limit` and `sql`, which are reserved for filters and SQL.
 *
 * @example
 * const q = parseQueryCommand(cmdDescriptor('{"flight":["telemetry"],"columns":["ts"]}'));
 * q?.flight.path; // ["telemetry"]
 */
export function parseQueryCommand(descriptor: FlightDescriptor): QueryCommand | undefined {
  if (descriptor === undefined || descriptor === null || descriptor.type !== DescriptorType.CMD) return undefined;
  const cmd = descriptor.cmd;
  if (!(cmd instanceof Uint8Array) || cmd.length === 0) return undefined;
  let i = 0;
  while (i < cmd.length && (cmd[i] === 0x20 || cmd[i] === 0x09 || cmd[i] === 0x0a || cmd[i] === 0x0d)) i++;
  if (cmd[i] !== 0x7b /* { */) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cmd.buffer, cmd.byteOffset, cmd.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isPlainObject(parsed) || !(Object.hasOwn(parsed, "flight") || Object.hasOwn(parsed, "sql"))) return undefined;

  for (const key of Object.keys(parsed)) {
    if (!QUERY_KEYS.includes(key) && !RESERVED_QUERY_KEYS.includes(key)) {
      throw invalidArgument(`query: unknown key ${JSON.stringify(key.slice(0, 64))}; a query has ${QUERY_KEYS.join(" and ")} (${RESERVED_QUERY_KEYS.join(", ")} are reserved)`);
    }
  }
  for (const key of RESERVED_QUERY_KEYS) {
    if (Object.hasOwn(parsed, key)) {
      throw unimplemented(`query: ${JSON.stringify(key)} is not implemented yet; this server supports ${QUERY_KEYS.map((k) => JSON.stringify(k)).join(" and ")} (projection of whole columns)`);
    }
  }
  const flight = parsed.flight;
  if (!Array.isArray(flight) || flight.length === 0 || !flight.every((s) => typeof s === "string")) {
    throw invalidArgument('query: "flight" must be the flight\'s path, a non-empty array of strings such as ["telemetry","host-1"]');
  }
  const out: { flight: FlightDescriptor; columns?: readonly string[] } = {
    flight: { type: DescriptorType.PATH, cmd: new Uint8Array(0), path: flight as string[] },
  };
  if (Object.hasOwn(parsed, "columns")) out.columns = checkColumns(parsed.columns, "query");
  return out;
}

function checkColumns(columns: unknown, what: string): string[] {
  if (!Array.isArray(columns) || columns.length === 0) throw invalidArgument(`${what}: "columns" must be a non-empty array of column names`);
  if (columns.length > MAX_PROJECTED_COLUMNS) throw invalidArgument(`${what}: at most ${MAX_PROJECTED_COLUMNS} columns may be selected, not ${columns.length}`);
  const seen = new Set<string>();
  for (const c of columns) {
    if (typeof c !== "string" || c.length === 0) throw invalidArgument(`${what}: every column name must be a non-empty string`);
    if (c.length > MAX_QUERY_COLUMN_NAME) throw invalidArgument(`${what}: a column name is longer than ${MAX_QUERY_COLUMN_NAME} characters`);
    if (seen.has(c)) throw invalidArgument(`${what}: column ${JSON.stringify(c.length > 128 ? `${c.slice(0, 125)}...` : c)} is selected twice`);
    seen.add(c);
  }
  return columns as string[];
}

/**
 * The ticket of a query: {@link QUERY_TICKET_PREFIX} then JSON
 * `{"ticket":"<base64 of the store's ticket>","columns":[...]}`. Self-contained: redeeming it
 * needs nothing the server remembers.
 *
 * @throws FlightError RESOURCE_EXHAUSTED when it would be longer than {@link MAX_QUERY_TICKET_BYTES}.
 *
 * @example
 * const ticket = encodeQueryTicket({ ticket: store.ticketFor(flight), columns: ["ts", "cpu"] });
 */
export function encodeQueryTicket(t: QueryTicket): Uint8Array {
  const body: { ticket: string; columns?: readonly string[] } = { ticket: Buffer.from(t.ticket.buffer, t.ticket.byteOffset, t.ticket.byteLength).toString("base64") };
  if (t.columns !== undefined) body.columns = t.columns;
  const bytes = Buffer.from(QUERY_TICKET_PREFIX + JSON.stringify(body), "utf8");
  if (bytes.length > MAX_QUERY_TICKET_BYTES) {
    throw resourceExhausted(`the query's ticket (${bytes.length} bytes) would be over the limit of ${MAX_QUERY_TICKET_BYTES} bytes: select fewer or shorter columns`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Whether a ticket is a query ticket (starts with {@link QUERY_TICKET_PREFIX}); says nothing of its validity. */
export function isQueryTicket(ticket: Uint8Array): boolean {
  if (!(ticket instanceof Uint8Array) || ticket.length < PREFIX_BYTES.length) return false;
  for (let i = 0; i < PREFIX_BYTES.length; i++) if (ticket[i] !== PREFIX_BYTES[i]) return false;
  return true;
}

/**
 * Reads a query ticket strictly: the prefix, then a JSON object with exactly `ticket` (strict
 * base64 of a non-empty store ticket) and optionally `columns` (as a query command has them).
 * Error messages never echo the ticket.
 *
 * @throws FlightError INVALID_ARGUMENT for anything else, including a ticket longer than
 * {@link MAX_QUERY_TICKET_BYTES} (no such ticket is ever issued).
 */
export function parseQueryTicket(ticket: Uint8Array): QueryTicket {
  if (!isQueryTicket(ticket)) throw invalidArgument("malformed query ticket: it does not start with the query ticket prefix");
  if (ticket.length > MAX_QUERY_TICKET_BYTES) throw invalidArgument(`malformed query ticket: longer than ${MAX_QUERY_TICKET_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(ticket.subarray(PREFIX_BYTES.length)));
  } catch {
    throw invalidArgument("malformed query ticket: not UTF-8 JSON after the prefix");
  }
  if (!isPlainObject(parsed)) throw invalidArgument("malformed query ticket: not a JSON object");
  for (const key of Object.keys(parsed)) {
    if (key !== "ticket" && key !== "columns") throw invalidArgument("malformed query ticket: unknown key");
  }
  const inner = parsed.ticket;
  if (typeof inner !== "string" || inner.length === 0 || !BASE64.test(inner)) {
    throw invalidArgument('malformed query ticket: "ticket" must be non-empty base64');
  }
  const out: { ticket: Uint8Array; columns?: readonly string[] } = { ticket: new Uint8Array(Buffer.from(inner, "base64")) };
  if (Object.hasOwn(parsed, "columns")) out.columns = checkColumns(parsed.columns, "malformed query ticket");
  return out;
}

/**
 * The flight a read names, for access checks: the query's `flight` for a query command, the
 * descriptor itself for any other, undefined for a malformed query (which a policy refuses).
 *
 * @example
 * policy({ operation: "read", descriptor: readTarget(call.request) });
 */
export function readTarget(descriptor: FlightDescriptor): FlightDescriptor | undefined {
  try {
    return parseQueryCommand(descriptor)?.flight ?? descriptor;
  } catch {
    return undefined;
  }
}

/**
 * The store ticket a DoGet ticket reads, for access checks: the inner ticket of a query
 * ticket, the ticket itself for any other, undefined for a malformed query ticket.
 */
export function readTicketTarget(ticket: Uint8Array): Uint8Array | undefined {
  if (!isQueryTicket(ticket)) return ticket;
  try {
    return parseQueryTicket(ticket).ticket;
  } catch {
    return undefined;
  }
}
