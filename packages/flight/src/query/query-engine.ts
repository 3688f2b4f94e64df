import type { FlightData, SqlTableRef } from "@blackice/flight-core";

// The embedded SQL engine's interface (docs/query.md, "The engine"). The engine itself
// (nodejs-polars, in child processes) is built in engine-pool.ts; callers see only this.

/**
 * One table a SQL statement reads, as the caller supplies it: the flight's schema, the bytes
 * it would load, and its IPC messages. This is the seam where the caller decides what the
 * engine reads: batch pruning hands in fewer record batches.
 */
export interface EngineTable {
  /** The flight's schema: an encapsulated IPC schema message, as in `FlightInfo.schema`. */
  readonly schema: Uint8Array;
  /**
   * The bytes of IPC the engine will load for this table (headers and bodies of every message
   * {@link messages} yields), declared before anything is loaded: for a whole flight its
   * `totalBytes`. The engine refuses the query with RESOURCE_EXHAUSTED when the sum over its
   * tables is over `maxInputBytes`, and stops reading a table that yields more than it
   * declared (RESOURCE_EXHAUSTED too). -1 (unknown) is refused.
   */
  readonly bytes: number;
  /**
   * The table's messages, in IPC stream order, as a DoGet serves them: the schema message
   * first, then dictionary batches and record batches. A caller may leave record batches out
   * (pruning); it must keep the schema and every dictionary batch. Called at most once, and
   * only by {@link QueryEngine.run}.
   */
  readonly messages: () => AsyncIterable<FlightData>;
}

/** The schema of one table, all {@link QueryEngine.resultSchema} needs. */
export type EngineTableSchema = Pick<EngineTable, "schema">;

/** One SQL statement to run, with how to find its tables. */
export interface EngineRequest<T extends EngineTableSchema = EngineTable> {
  /** One SELECT statement (polars' SQL dialect); tables are flight paths joined by "/", quoted: `"telemetry/host-1"`. */
  readonly sql: string;
  /**
   * Supplies each table the statement reads (from `sqlTables(sql)`, core), once per table.
   * Undefined means no such flight: the query fails with NOT_FOUND naming it.
   */
  readonly table: (ref: SqlTableRef) => Promise<T | undefined>;
  /** Ends the query when aborted (the client went away): its engine process is killed. */
  readonly signal?: AbortSignal;
  /** Longest time the query may take, ms, from the call; the engine's own default applies when shorter or absent. */
  readonly timeoutMs?: number;
}

/** The answer of {@link QueryEngine.run}. */
export interface EngineResult {
  /** The result's schema: an encapsulated IPC schema message (for FlightInfo.schema). */
  readonly schema: Uint8Array;
  /** Rows in the result. */
  readonly rows: number;
  /** Bytes of IPC in {@link messages} (headers and bodies). */
  readonly bytes: number;
  /**
   * The result as FlightData, ready for a DoGet: the schema message, then dictionary and
   * record batches. Every message has been through `IpcStreamValidator` before it is yielded.
   */
  readonly messages: AsyncIterable<FlightData>;
}

/** Counters and gauges of a {@link QueryEngine}, for the `stats` action. */
export interface QueryEngineStats {
  /** Most engine processes alive at once (the option). */
  readonly processes: number;
  /** Engine processes alive now. */
  readonly alive: number;
  /** Queries running now. */
  readonly running: number;
  /** Queries waiting for a process. */
  readonly queued: number;
  /** Queries finished with a result. */
  readonly completed: number;
  /** Queries refused because the queue was full. */
  readonly refused: number;
  /** Queries whose process was killed: deadline, cancellation, or a crash (memory cap). */
  readonly killed: number;
}

/**
 * An embedded SQL engine over stored flights. `createQueryEngine(options)` makes one;
 * `query()` makes its own unless given one.
 *
 * Errors (all FlightError): INVALID_ARGUMENT for SQL that does not parse or run (carrying the
 * engine's message) and for a column type the engine cannot read (naming the column and its
 * type); NOT_FOUND for a table that is not a stored flight; RESOURCE_EXHAUSTED when the input
 * or the result is over its cap, the engine process ran out of memory, or the queue is full;
 * DEADLINE_EXCEEDED past the timeout; CANCELLED when the signal aborts.
 */
export interface QueryEngine {
  /**
   * Runs a statement and returns its result. The input is read and checked before the engine
   * starts; the result is validated before it is returned.
   */
  run(request: EngineRequest): Promise<EngineResult>;
  /**
   * The result's schema (encapsulated IPC schema message) without reading any data: the
   * statement is run on empty tables with the flights' schemas. For GetFlightInfo, GetSchema
   * and the dataset schema of a prepared statement.
   */
  resultSchema(request: EngineRequest<EngineTableSchema>): Promise<Uint8Array>;
  /** Counters and gauges. */
  stats(): QueryEngineStats;
  /** Kills every engine process and refuses later queries (UNAVAILABLE). Idempotent. */
  close(): Promise<void>;
}
