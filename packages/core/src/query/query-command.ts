import { FlightError, invalidArgument, resourceExhausted } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";
import { MAX_PROJECTED_COLUMNS } from "../ipc/ipc-projection";
import { StatusCode } from "../status-code";
import { checkWhereExpression, quoteSqlIdentifier, sqlTableDescriptor, sqlTableName, sqlTables } from "./sql-tables";

// The query command descriptor and the query ticket (docs/query.md). Both live in core, with
// no gRPC, because two packages read them: the flight package serves them (`query()`), and
// the security package's `authorize` resolves them to the flight they read.

/** The keys a query command may have: `flight` with `columns`, `where`, `limit`; or `sql` alone. */
export const QUERY_KEYS: readonly string[] = ["flight", "columns", "where", "limit", "sql"];
/** Keys reserved for later versions, answered with UNIMPLEMENTED: none today. */
export const RESERVED_QUERY_KEYS: readonly string[] = [];
/** Longest `where` expression, in UTF-16 code units. */
export const MAX_QUERY_WHERE_LENGTH = 8 * 1024;
/** Largest `limit`. */
export const MAX_QUERY_LIMIT = 2 ** 31 - 1;
/** Longest column name a query may name, in UTF-16 code units. */
export const MAX_QUERY_COLUMN_NAME = 1024;
/** Largest query ticket this server issues or redeems, bytes. */
export const MAX_QUERY_TICKET_BYTES = 32 * 1024;
/** What every query ticket starts with: no store ticket does (store keys start with `p:` or `c:`). */
export const QUERY_TICKET_PREFIX = "blackice.query.v1:";

const PREFIX_BYTES = Buffer.from(QUERY_TICKET_PREFIX, "latin1");
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A query command read from a descriptor by {@link parseQueryCommand}: a projection (`flight`,
 * optionally `columns`), served without the engine, or a statement for the engine (`sql`: the
 * one given, or the one `flight`, `columns`, `where` and `limit` compile to).
 */
export interface QueryCommand {
  /** The flight read: a PATH descriptor. Absent for a `{"sql": ...}` query. */
  readonly flight?: FlightDescriptor;
  /** The top-level columns selected, in order; absent for all of them. */
  readonly columns?: readonly string[];
  /** A SQL boolean expression rows must satisfy. */
  readonly where?: string;
  /** Most rows returned. */
  readonly limit?: number;
  /**
   * The statement the engine runs, when the query needs the engine (`sql` given, or `where`
   * or `limit`); absent for a projection, which is served at the IPC level.
   */
  readonly sql?: string;
}

/**
 * What a query ticket carries (see {@link encodeQueryTicket}): either a projection (`ticket`
 * and `columns`) or a statement (`sql`).
 */
export interface QueryTicket {
  /** The store's ticket of the flight read (for the built-in stores, the flight key's bytes). Absent for `sql`. */
  readonly ticket?: Uint8Array;
  /** The columns selected, in order; absent for all of them. */
  readonly columns?: readonly string[];
  /** The statement the engine runs (tables are flight paths joined by "/"). */
  readonly sql?: string;
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
    if (!QUERY_KEYS.includes(key)) {
      throw invalidArgument(`query: unknown key ${JSON.stringify(key.slice(0, 64))}; a query has ${QUERY_KEYS.join(", ")}`);
    }
  }
  for (const key of RESERVED_QUERY_KEYS) {
    if (Object.hasOwn(parsed, key)) throw unimplemented(`query: ${JSON.stringify(key)} is not implemented yet`);
  }
  if (Object.hasOwn(parsed, "sql")) {
    const others = Object.keys(parsed).filter((k) => k !== "sql");
    if (others.length > 0) throw invalidArgument(`query: "sql" comes alone; ${others.map((k) => JSON.stringify(k)).join(", ")} belong in the statement`);
    if (typeof parsed.sql !== "string") throw invalidArgument('query: "sql" must be a string, one SELECT statement');
    sqlTables(parsed.sql); // INVALID_ARGUMENT when it does not parse
    return { sql: parsed.sql };
  }
  const flight = parsed.flight;
  if (!Array.isArray(flight) || flight.length === 0 || !flight.every((s) => typeof s === "string")) {
    throw invalidArgument('query: "flight" must be the flight\'s path, a non-empty array of strings such as ["telemetry","host-1"]');
  }
  const out: { flight: FlightDescriptor; columns?: readonly string[]; where?: string; limit?: number; sql?: string } = {
    flight: { type: DescriptorType.PATH, cmd: new Uint8Array(0), path: flight as string[] },
  };
  if (Object.hasOwn(parsed, "columns")) out.columns = checkColumns(parsed.columns, "query");
  if (Object.hasOwn(parsed, "where")) {
    const where = parsed.where;
    if (typeof where !== "string" || where.trim().length === 0) throw invalidArgument('query: "where" must be a non-empty SQL boolean expression, such as "cpu > 0.9"');
    if (where.length > MAX_QUERY_WHERE_LENGTH) throw invalidArgument(`query: "where" is longer than ${MAX_QUERY_WHERE_LENGTH} characters`);
    out.where = where;
  }
  if (Object.hasOwn(parsed, "limit")) {
    const limit = parsed.limit;
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0 || limit > MAX_QUERY_LIMIT) {
      throw invalidArgument(`query: "limit" must be an integer from 0 to ${MAX_QUERY_LIMIT}`);
    }
    out.limit = limit;
  }
  if (out.where !== undefined || out.limit !== undefined) out.sql = compileQuery(out.flight.path, out.columns, out.where, out.limit);
  return out;
}

/**
 * The statement a `flight` query with `where` or `limit` runs:
 * `SELECT "ts", "cpu" FROM "telemetry/host-1" WHERE <where> LIMIT <limit>`. The `where`
 * text must be one expression over that flight alone (checked on the parsed statement), so
 * it cannot add clauses, read another flight or comment out the LIMIT.
 */
function compileQuery(path: readonly string[], columns: readonly string[] | undefined, where: string | undefined, limit: number | undefined): string {
  const table = sqlTableName(path);
  if (table === undefined) throw invalidArgument('query: a flight whose path has an empty segment or one containing "/" cannot be filtered (it has no SQL table name)');
  if (where !== undefined) checkWhereExpression(table, where);
  const select = columns === undefined ? "*" : columns.map(quoteSqlIdentifier).join(", ");
  // Clauses on their own lines: a trailing "--" comment in `where` cannot swallow the LIMIT.
  return `SELECT ${select} FROM ${quoteSqlIdentifier(table)}${where === undefined ? "" : `\nWHERE ${where}`}${limit === undefined ? "" : `\nLIMIT ${limit}`}`;
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
  const body: { ticket?: string; columns?: readonly string[]; sql?: string } = {};
  if (t.sql !== undefined) body.sql = t.sql;
  else if (t.ticket !== undefined) body.ticket = Buffer.from(t.ticket.buffer, t.ticket.byteOffset, t.ticket.byteLength).toString("base64");
  else throw new TypeError("encodeQueryTicket: a query ticket has a store ticket or a SQL statement");
  if (t.columns !== undefined && t.sql === undefined) body.columns = t.columns;
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
  if (Object.hasOwn(parsed, "sql")) {
    if (Object.keys(parsed).length !== 1 || typeof parsed.sql !== "string") throw invalidArgument('malformed query ticket: "sql" comes alone, as a string');
    sqlTables(parsed.sql);
    return { sql: parsed.sql };
  }
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

/** One flight a read names, for access checks: by descriptor, or by store ticket. */
export type QueryReadTarget = { readonly descriptor: FlightDescriptor } | { readonly ticket: Uint8Array };

/**
 * Every flight a read names, for access checks: the flights a query reads (its `flight`, or
 * each table of its SQL) for a query command, the descriptor itself for any other, undefined
 * for a malformed query (which a policy refuses).
 *
 * @example
 * for (const d of readTargets(call.request) ?? [undefined]) await check({ operation: "read", descriptor: d });
 */
export function readTargets(descriptor: FlightDescriptor): readonly FlightDescriptor[] | undefined {
  try {
    const q = parseQueryCommand(descriptor);
    if (q === undefined) return [descriptor];
    if (q.flight !== undefined) return [q.flight];
    return sqlTables(q.sql as string).map(sqlTableDescriptor);
  } catch {
    return undefined;
  }
}

/**
 * Every flight a DoGet ticket reads, for access checks: the store ticket inside a projection
 * ticket, the tables of a statement ticket (as descriptors), the ticket itself for any other;
 * undefined for a malformed query ticket.
 */
export function readTicketTargets(ticket: Uint8Array): readonly QueryReadTarget[] | undefined {
  if (!isQueryTicket(ticket)) return [{ ticket }];
  try {
    const t = parseQueryTicket(ticket);
    if (t.sql !== undefined) return sqlTables(t.sql).map((ref) => ({ descriptor: sqlTableDescriptor(ref) }));
    return [{ ticket: t.ticket as Uint8Array }];
  } catch {
    return undefined;
  }
}

/**
 * The flight a read names when it names exactly one (see {@link readTargets}, which
 * `authorize` uses): undefined for a malformed query or one whose SQL reads several flights.
 *
 * @example
 * policy({ operation: "read", descriptor: readTarget(call.request) });
 */
export function readTarget(descriptor: FlightDescriptor): FlightDescriptor | undefined {
  const all = readTargets(descriptor);
  return all !== undefined && all.length === 1 ? all[0] : undefined;
}

/**
 * The store ticket a DoGet ticket reads, for access checks: the inner ticket of a projection
 * ticket, the ticket itself for any other, undefined for a malformed query ticket or a
 * statement ticket (see {@link readTicketTargets}).
 */
export function readTicketTarget(ticket: Uint8Array): Uint8Array | undefined {
  const all = readTicketTargets(ticket);
  return all !== undefined && all.length === 1 && "ticket" in all[0] ? all[0].ticket : undefined;
}
