import { Parser } from "node-sql-parser/build/postgresql";
import { invalidArgument } from "../flight-error";
import { DescriptorType, type FlightDescriptor } from "../flight-types";

// Which stored flights a SQL statement reads (docs/query.md, "Table naming"). It lives in core
// because two packages need it: the query engine registers exactly these flights, and
// `authorize` (security) asks its policy about each of them. The statement is parsed with
// node-sql-parser (its PostgreSQL grammar, pure JS) rather than by hand: a quoted identifier,
// a CTE or a sub-query in FROM are easy to get wrong with a regular expression, and a table
// missed here would be a flight read without an access check.

/** Longest SQL statement a query may carry, in UTF-16 code units. */
export const MAX_SQL_LENGTH = 16 * 1024;
/** Most tables (flights) one SQL statement may read. */
export const MAX_SQL_TABLES = 64;

/** A table a SQL statement reads: its name in the SQL, and the path of the flight it is. */
export interface SqlTableRef {
  /** The table's name: the flight's path segments joined by "/" (`telemetry/host-1`). */
  readonly name: string;
  /** The flight's path (`["telemetry", "host-1"]`). */
  readonly path: readonly string[];
}

let parser: Parser | undefined;

/**
 * The SQL table name of a flight path: its segments joined by "/". In SQL it is a quoted
 * identifier, `"telemetry/host-1"`. A path with a segment that is empty or contains "/" has
 * no table name (undefined): its name would read back as another path.
 *
 * @example
 * sqlTableName(["telemetry", "host-1"]); // "telemetry/host-1"
 */
export function sqlTableName(path: readonly string[]): string | undefined {
  if (path.length === 0 || path.some((s) => s.length === 0 || s.includes("/"))) return undefined;
  return path.join("/");
}

/** The flight path of a SQL table name (the inverse of {@link sqlTableName}). */
export function sqlTablePath(name: string): readonly string[] {
  return name.split("/");
}

/** The PATH descriptor of a table a SQL statement reads. */
export function sqlTableDescriptor(ref: SqlTableRef): FlightDescriptor {
  return { type: DescriptorType.PATH, cmd: new Uint8Array(0), path: [...ref.path] };
}

function cteNames(ast: unknown, out: Set<string>): void {
  // Names a WITH clause defines are not flights. node-sql-parser lists them among the tables.
  if (Array.isArray(ast)) {
    for (const a of ast) cteNames(a, out);
    return;
  }
  if (ast === null || typeof ast !== "object") return;
  const node = ast as Record<string, unknown>;
  if (Array.isArray(node.with)) {
    for (const w of node.with as Array<{ name?: { value?: unknown } | string }>) {
      const n = typeof w.name === "string" ? w.name : w.name?.value;
      if (typeof n === "string") out.add(n);
    }
  }
  for (const v of Object.values(node)) if (v !== null && typeof v === "object") cteNames(v, out);
}

/**
 * The stored flights a SQL statement reads, in the order first named, without repeats. The
 * statement must be one SELECT (a WITH ... SELECT included); table names are flight paths
 * joined by "/" (`SELECT cpu FROM "telemetry/host-1"`), names defined by WITH are left out.
 *
 * @throws FlightError INVALID_ARGUMENT when the statement is longer than {@link MAX_SQL_LENGTH},
 * does not parse (with the parser's message), is not a single SELECT, names a table with a
 * schema or database qualifier, names no table, or more than {@link MAX_SQL_TABLES}.
 *
 * @example
 * sqlTables('SELECT host, avg(cpu) FROM "telemetry/host-1" GROUP BY host');
 * // [{ name: "telemetry/host-1", path: ["telemetry", "host-1"] }]
 */
export function sqlTables(sql: string): readonly SqlTableRef[] {
  if (typeof sql !== "string" || sql.trim().length === 0) throw invalidArgument("query: \"sql\" must be a non-empty string");
  if (sql.length > MAX_SQL_LENGTH) throw invalidArgument(`query: the SQL statement is longer than ${MAX_SQL_LENGTH} characters`);
  parser ??= new Parser();
  let ast: unknown;
  let tables: string[];
  try {
    ast = parser.astify(sql, { database: "PostgresQL" });
    tables = parser.tableList(sql, { database: "PostgresQL" });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw invalidArgument(`query: the SQL statement does not parse: ${msg.length > 512 ? `${msg.slice(0, 509)}...` : msg}`);
  }
  const statements = Array.isArray(ast) ? ast : [ast];
  if (statements.length !== 1 || (statements[0] as { type?: unknown }).type !== "select") {
    throw invalidArgument("query: the SQL must be exactly one SELECT statement");
  }
  const ctes = new Set<string>();
  cteNames(ast, ctes);
  const out: SqlTableRef[] = [];
  const seen = new Set<string>();
  for (const entry of tables) {
    // Each entry is "operation::database::table"; the table part may itself hold "::".
    const [op, db, ...rest] = entry.split("::");
    const name = rest.join("::");
    if (op !== "select") throw invalidArgument("query: the SQL must only read tables");
    if (db !== "null") throw invalidArgument(`query: table ${JSON.stringify(`${db}.${name}`.slice(0, 200))} has a qualifier; name a flight by its path joined with "/", as one quoted identifier`);
    if (ctes.has(name) || seen.has(name)) continue;
    seen.add(name);
    const path = sqlTablePath(name);
    if (path.some((s) => s.length === 0)) throw invalidArgument(`query: table ${JSON.stringify(name.slice(0, 200))} is not a flight path (an empty segment)`);
    out.push({ name, path });
  }
  if (out.length === 0) throw invalidArgument("query: the SQL statement reads no stored flight");
  if (out.length > MAX_SQL_TABLES) throw invalidArgument(`query: the SQL statement reads ${out.length} tables; at most ${MAX_SQL_TABLES}`);
  return out;
}

/** A SQL identifier in double quotes, inner quotes doubled: `cpu` → `"cpu"`. */
export function quoteSqlIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Checks that `where` is one SQL boolean expression over `table` alone: the statement
 * `SELECT * FROM "<table>" WHERE <where>` parses, reads only that table, and has no clause
 * the expression added (GROUP BY, HAVING, ORDER BY, LIMIT, UNION, WITH).
 *
 * @throws FlightError INVALID_ARGUMENT otherwise, with the parser's message when it does not parse.
 */
export function checkWhereExpression(table: string, where: string): void {
  const sql = `SELECT * FROM ${quoteSqlIdentifier(table)}\nWHERE ${where}`;
  const refs = sqlTables(sql);
  if (refs.length !== 1 || refs[0].name !== table) throw invalidArgument('query: "where" may only use the columns of the flight queried');
  parser ??= new Parser();
  const ast = parser.astify(sql, { database: "PostgresQL" }) as unknown as Record<string, unknown>;
  const limit = ast.limit as { value?: unknown[] } | null | undefined;
  const extra =
    ast.groupby != null ||
    ast.having != null ||
    ast.orderby != null ||
    ast.with != null ||
    ast._next != null ||
    (ast.distinct as { type?: unknown } | null)?.type != null ||
    ast.window != null ||
    (Array.isArray(ast.from) && ast.from.length !== 1) ||
    (limit != null && Array.isArray(limit.value) && limit.value.length > 0);
  if (extra) throw invalidArgument('query: "where" must be one boolean expression, with no other clause (use "sql" for more)');
}
