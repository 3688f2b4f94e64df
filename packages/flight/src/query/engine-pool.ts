import { fork, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import {
  FlightError,
  checkInt,
  checkOptions,
  IpcStreamValidator,
  StatusCode,
  chunksOf,
  invalidArgument,
  ipcEndOfStream,
  ipcMessagePrefix,
  notFound,
  readSchema,
  resourceExhausted,
  splitIpcStream,
  sqlTables,
  type FlightData,
  type SqlTableRef,
} from "@blackice/flight-core";
import { decapsulateMessage, encapsulateMessage } from "../server/ipc-encapsulate";
import type { EngineProcessReply } from "./engine-process";
import type { EngineRequest, EngineResult, EngineTable, EngineTableSchema, QueryEngine, QueryEngineStats } from "./query-engine";
import { unreadableColumn } from "./engine-types";

/** Options of {@link createQueryEngine}. */
export interface QueryEngineOptions {
  /** Most engine processes alive at once: 1 to `os.availableParallelism()`. Default 1. */
  readonly processes?: number;
  /** Most queries waiting for a process: 0 to 1024; the next gets RESOURCE_EXHAUSTED. Default 16. */
  readonly maxQueue?: number;
  /** Most IPC bytes one query may load (the sum of its tables' declared bytes): 1 to 2^53-1. Default 1 GiB. */
  readonly maxInputBytes?: number;
  /** Largest result, bytes of IPC: 1 to 2^31-1. Default 256 MiB. */
  readonly maxResultBytes?: number;
  /** Longest time a query may take, ms, queueing included: 1 to 3 600 000. Default 30 000. */
  readonly timeoutMs?: number;
  /**
   * Address-space limit of each engine process (RLIMIT_AS, set with util-linux `prlimit`),
   * bytes: 0 for none, or 2 GiB (what Node itself needs to start) to 2^53-1. This is what
   * bounds polars' own allocations: past it an allocation fails, the process dies, and the
   * query gets RESOURCE_EXHAUSTED. Default 4 GiB where `prlimit` exists, else none.
   */
  readonly memoryLimitBytes?: number;
}

const GiB = 1024 ** 3;
const MIN_MEMORY_LIMIT = 2 * GiB;
const PRLIMIT = ["/usr/bin/prlimit", "/bin/prlimit"].find((p) => fs.existsSync(p));
/** A process that does not post `ready` within this many ms is killed. */
const START_TIMEOUT_MS = 30_000;
const STDERR_TAIL = 4096;

const WHERE = "createQueryEngine";
function intOption(name: string, value: unknown, min: number, max: number, fallback: number): number {
  return checkInt(WHERE, name, value, min, max, fallback);
}

/** Where the engine process's compiled JavaScript is (tests run the sources; the child needs dist). */
function engineScript(): string {
  const beside = path.join(__dirname, "engine-process.js");
  if (fs.existsSync(beside)) return beside;
  const built = path.resolve(__dirname, "../../dist/query/engine-process.js");
  if (fs.existsSync(built)) return built;
  throw new Error(`the query engine's process script is missing (${beside}); run npm run build`);
}

interface Proc {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  state: "starting" | "idle" | "busy" | "dead";
  stderr: string;
  /** The answer the current request waits for. */
  onReply?: (r: EngineProcessReply) => void;
  /** Why it died, for the current request. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  killedFor?: FlightError;
}

interface Waiter {
  resolve(p: Proc): void;
  reject(err: FlightError): void;
}

let nextId = 1;

/**
 * The embedded SQL engine (docs/query.md): nodejs-polars in a bounded pool of child
 * processes, each running one statement at a time. A query's tables are resolved and checked
 * (names, column types, declared sizes against `maxInputBytes`) before a process is taken;
 * their IPC messages are then written to the process's stdin (no copy here: framing prefixes
 * and the stored body chunks), where they are copied into one buffer per table, the copy
 * polars needs. The result comes back as an IPC stream, is split and validated with
 * `IpcStreamValidator`, and served as FlightData.
 *
 * A query that passes its deadline or whose signal aborts has its process killed (SIGKILL);
 * the process is replaced when next needed.
 *
 * @example
 * const engine = createQueryEngine({ processes: 2, maxInputBytes: 512 << 20, timeoutMs: 10_000 });
 * const result = await engine.run({ sql: 'SELECT host, avg(cpu) FROM "telemetry/host-1" GROUP BY host', table: (ref) => tableOf(ref), signal });
 * for await (const m of result.messages) send(m);
 * await engine.close();
 */
export function createQueryEngine(options: QueryEngineOptions = {}): QueryEngine {
  checkOptions(WHERE, options, ["processes", "maxQueue", "maxInputBytes", "maxResultBytes", "timeoutMs", "memoryLimitBytes"], true);
  const processes = intOption("processes", options.processes, 1, os.availableParallelism(), 1);
  const maxQueue = intOption("maxQueue", options.maxQueue, 0, 1024, 16);
  const maxInputBytes = intOption("maxInputBytes", options.maxInputBytes, 1, Number.MAX_SAFE_INTEGER, GiB);
  const maxResultBytes = intOption("maxResultBytes", options.maxResultBytes, 1, 2 ** 31 - 1, 256 * 1024 ** 2);
  const timeoutMs = intOption("timeoutMs", options.timeoutMs, 1, 3_600_000, 30_000);
  let memoryLimit = PRLIMIT === undefined ? 0 : 4 * GiB;
  if (options.memoryLimitBytes !== undefined) {
    if (options.memoryLimitBytes !== 0) intOption("memoryLimitBytes", options.memoryLimitBytes, MIN_MEMORY_LIMIT, Number.MAX_SAFE_INTEGER, 0);
    else intOption("memoryLimitBytes", options.memoryLimitBytes, 0, 0, 0);
    if (options.memoryLimitBytes !== 0 && PRLIMIT === undefined) throw new TypeError("createQueryEngine: memoryLimitBytes needs util-linux prlimit, which this machine does not have; give 0 for no limit");
    memoryLimit = options.memoryLimitBytes;
  }
  // Found when the first process starts, so that query() can be made before a build exists.
  let scriptPath: string | undefined;

  const procs = new Set<Proc>();
  const waiters: Waiter[] = [];
  let closed = false;
  const counters = { completed: 0, refused: 0, killed: 0, running: 0 };

  function start(): Proc {
    const script = (scriptPath ??= engineScript());
    const args = memoryLimit > 0 ? [`--as=${memoryLimit}`, "--", process.execPath, script] : [script];
    const command = memoryLimit > 0 ? (PRLIMIT as string) : process.execPath;
    // fork() runs node itself; with prlimit in front, the IPC channel is set up the same way
    // (fork's execPath is the program run, its first argument the script).
    const child = fork(memoryLimit > 0 ? args[args.length - 1] : script, [], {
      execPath: command,
      execArgv: memoryLimit > 0 ? args.slice(0, -1) : [],
      stdio: ["pipe", "ignore", "pipe", "ipc", "pipe"],
      serialization: "json",
      env: { ...process.env, RUST_BACKTRACE: "0", POLARS_MAX_THREADS: process.env.POLARS_MAX_THREADS ?? String(os.availableParallelism()) },
    });
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    ready.catch(() => undefined);
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const p: Proc = { child, ready, exited, state: "starting", stderr: "" };
    const startTimer = setTimeout(() => {
      failReady(new FlightError(StatusCode.UNAVAILABLE, "the query engine process did not start in time"));
      child.kill("SIGKILL");
    }, START_TIMEOUT_MS);
    startTimer.unref();
    child.stderr?.on("data", (d: Buffer) => {
      p.stderr = (p.stderr + d.toString("utf8")).slice(-STDERR_TAIL);
    });
    child.on("message", (m: EngineProcessReply) => {
      if ("ready" in m) {
        clearTimeout(startTimer);
        markReady();
        return;
      }
      const h = p.onReply;
      p.onReply = undefined;
      h?.(m);
    });
    child.on("error", () => undefined);
    (child.stdin as Writable | null)?.on("error", () => undefined);
    child.on("exit", (code, signal) => {
      clearTimeout(startTimer);
      p.state = "dead";
      procs.delete(p);
      failReady(new FlightError(StatusCode.UNAVAILABLE, "the query engine process exited while starting"));
      const h = p.onExit;
      p.onExit = undefined;
      h?.(code, signal);
      markExited();
      pump();
    });
    hold(p, false);
    procs.add(p);
    return p;
  }

  /**
   * An idle process does not keep the server's process alive (unref); one running a query
   * does (ref), so that a caller awaiting a result outside a server is not left with an event
   * loop that has nothing to wait for.
   */
  function hold(p: Proc, on: boolean): void {
    const handles = [p.child, p.child.channel, p.child.stdin, p.child.stderr, p.child.stdio[4]] as unknown as Array<{ ref?: () => void; unref?: () => void } | null | undefined>;
    for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
  }

  function kill(p: Proc, why: FlightError): void {
    if (p.state === "dead" || p.killedFor !== undefined) return;
    p.killedFor = why;
    counters.killed++;
    p.child.kill("SIGKILL");
  }

  /** Hands idle or new processes to waiters. */
  function pump(): void {
    while (waiters.length > 0) {
      let p = [...procs].find((x) => x.state === "idle");
      if (p === undefined && procs.size < processes) {
        try {
          p = start();
        } catch (err) {
          (waiters.shift() as Waiter).reject(new FlightError(StatusCode.UNAVAILABLE, `query: the query engine cannot start: ${err instanceof Error ? err.message : String(err)}`));
          continue;
        }
      }
      if (p === undefined) return;
      const w = waiters.shift() as Waiter;
      // Held from now on, also while it starts (its `ready` message must not make it idle).
      p.state = "busy";
      w.resolve(p);
    }
  }

  function acquire(): Promise<Proc> {
    if (closed) return Promise.reject(new FlightError(StatusCode.UNAVAILABLE, "the query engine is closed"));
    const busy = [...procs].filter((p) => p.state === "busy").length;
    const free = [...procs].some((p) => p.state === "idle") || procs.size < processes;
    if (!free || busy >= processes) {
      if (waiters.length >= maxQueue) {
        counters.refused++;
        return Promise.reject(resourceExhausted(`the query engine is busy: ${processes} queries running and ${waiters.length} waiting (the limit); try again later`));
      }
    }
    return new Promise<Proc>((resolve, reject) => {
      waiters.push({ resolve, reject });
      pump();
    });
  }

  function release(p: Proc): void {
    hold(p, false);
    if (p.state === "busy") p.state = "idle";
    pump();
  }

  /** Resolves tables and checks them before any process is taken. */
  async function resolveTables<T extends EngineTableSchema>(request: EngineRequest<T>, deadline: number): Promise<Array<{ ref: SqlTableRef; table: T }>> {
    let refs: readonly SqlTableRef[];
    try {
      refs = sqlTables(request.sql);
    } catch (err) {
      // The table list comes from node-sql-parser; when it cannot read the statement, the
      // engine's own parser is asked too (on no tables), so the client gets polars' message.
      if (!(err instanceof FlightError) || !err.message.includes("does not parse")) throw err;
      const engineError = await execute(request.sql, [], request.signal, deadline).then(
        () => undefined,
        (e: unknown) => (e instanceof FlightError && e.code === StatusCode.INVALID_ARGUMENT ? e.message : undefined),
      );
      if (engineError !== undefined && !/relation .* was not found/.test(engineError)) throw invalidArgument(`query: the SQL statement does not parse: ${engineError.replace(/^query: /, "")}`);
      throw err;
    }
    const out: Array<{ ref: SqlTableRef; table: T }> = [];
    for (const ref of refs) {
      const table = await request.table(ref);
      if (table === undefined) throw notFound(`query: no flight named ${JSON.stringify(ref.name)} (path ${JSON.stringify(ref.path)})`);
      const bad = unreadableColumn(readSchema(decapsulateMessage(table.schema, "a flight's schema")));
      if (bad !== undefined) {
        throw invalidArgument(`query: column ${JSON.stringify(bad.column)} of ${JSON.stringify(ref.name)} has type ${bad.type}${bad.nested === undefined ? "" : ` (${bad.nested})`}, which the query engine (polars) cannot read; select other columns`);
      }
      out.push({ ref, table });
    }
    return out;
  }

  /**
   * Runs one statement in a process: writes the tables, waits for the answer, reads the
   * result. `write` writes one table's frames. Kills the process on deadline or abort.
   */
  async function execute(
    sql: string,
    tables: ReadonlyArray<{ name: string; size: number; write: (out: (chunk: Uint8Array) => Promise<void>) => Promise<void> }>,
    signal: AbortSignal | undefined,
    deadlineMs: number,
  ): Promise<{ bytes: Uint8Array; rows: number; timings: EngineResult["timings"] }> {
    if (signal?.aborted) throw new FlightError(StatusCode.CANCELLED, "query cancelled");
    let proc: Proc | undefined;
    let released = false;
    const giveBack = (p: Proc): void => {
      released = true;
      release(p);
    };
    let settle: ((err: FlightError) => void) | undefined;
    const failure = new Promise<never>((_, reject) => (settle = reject));
    failure.catch(() => undefined);
    const fail = (err: FlightError): void => {
      settle?.(err);
      if (proc !== undefined) kill(proc, err);
    };
    const timer = setTimeout(() => fail(new FlightError(StatusCode.DEADLINE_EXCEEDED, `query: the query took longer than ${deadlineMs} ms and was stopped`)), deadlineMs);
    timer.unref();
    const onAbort = (): void => fail(new FlightError(StatusCode.CANCELLED, "query cancelled: the client went away"));
    signal?.addEventListener("abort", onAbort, { once: true });
    counters.running++;
    try {
      const acquired = acquire();
      acquired.then((p) => {
        // Taken after the deadline or abort: give it straight back.
        if (proc === undefined && settled) release(p);
      }, () => undefined);
      let settled = false;
      failure.catch(() => (settled = true));
      proc = await Promise.race([acquired, failure]);
      hold(proc, true);
      await Promise.race([proc.ready, failure]);
      const p = proc;
      const reply = new Promise<EngineProcessReply>((resolve, reject) => {
        p.onReply = resolve;
        p.onExit = (code, sig) => reject(p.killedFor ?? died(p, code, sig));
      });
      reply.catch(() => undefined);
      const id = nextId++;
      p.child.send({ id, sql, tables: tables.map((t) => t.name), sizes: tables.map((t) => t.size), maxResultBytes });
      const stdin = p.child.stdin as Writable;
      const write = (chunk: Uint8Array): Promise<void> => {
        if (chunk.byteLength === 0) return Promise.resolve();
        return stdin.write(chunk) ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => stdin.once("drain", resolve)), failure, reply.then(() => undefined)]);
      };
      const frame = async (chunk: Uint8Array): Promise<void> => {
        const len = Buffer.alloc(4);
        len.writeUInt32LE(chunk.byteLength);
        await write(len);
        await write(chunk);
      };
      const sendStart = performance.now();
      let sendMs = 0;
      const writing = (async () => {
        for (const t of tables) {
          await t.write(frame);
          await write(new Uint8Array(4)); // end of table
        }
        sendMs = performance.now() - sendStart;
      })();
      writing.catch((err) => fail(FlightError.from(err)));
      const answer = await Promise.race([reply, failure]);
      if ("ready" in answer) throw new FlightError(StatusCode.INTERNAL, "query engine protocol error");
      if (!answer.ok) {
        await Promise.race([writing, failure]).catch(() => undefined);
        giveBack(p);
        if (answer.kind === "read") throw invalidArgument(`query: the query engine (polars) cannot read ${JSON.stringify(answer.table)}: ${answer.error}`);
        if (answer.kind === "result") throw resourceExhausted(`query: ${answer.error}`);
        throw invalidArgument(`query: ${answer.error}`);
      }
      await Promise.race([writing, failure]);
      if (answer.bytes > maxResultBytes) {
        const err = resourceExhausted(`query: the result is ${answer.bytes} bytes of IPC, over the limit of ${maxResultBytes}`);
        kill(p, err);
        throw err;
      }
      const bytes = await Promise.race([readExactly(p.child.stdio[4] as Readable, answer.bytes), failure]);
      giveBack(p);
      counters.completed++;
      return { bytes, rows: answer.rows, timings: { sendMs, ...answer.timings } };
    } finally {
      // A process not given back (a protocol error, a failed write) is in an unknown state: killed.
      if (proc !== undefined && !released) kill(proc, new FlightError(StatusCode.INTERNAL, "query: the query engine process was stopped"));
      if (proc !== undefined && proc.state === "dead") hold(proc, false);
      counters.running--;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  function died(p: Proc, code: number | null, signal: NodeJS.Signals | null): FlightError {
    const tail = p.stderr;
    if (memoryLimit > 0 && /memory allocation|allocation failed|out of memory|Cannot allocate/i.test(tail)) {
      return resourceExhausted(`query: the query engine process ran out of memory (its limit is ${memoryLimit} bytes)`);
    }
    if (signal === "SIGABRT" || signal === "SIGSEGV" || signal === "SIGBUS") {
      return resourceExhausted(`query: the query engine process was stopped by ${signal} (its memory limit is ${memoryLimit === 0 ? "not set" : `${memoryLimit} bytes`})`);
    }
    return new FlightError(StatusCode.UNAVAILABLE, `query: the query engine process exited (${signal ?? `code ${code}`}) during the query`);
  }

  function tableWriter(ref: SqlTableRef, table: EngineTable) {
    return async (frame: (chunk: Uint8Array) => Promise<void>): Promise<void> => {
      let seen = 0;
      for await (const m of table.messages()) {
        if (m.dataHeader.byteLength === 0) continue; // app_metadata only
        seen += m.dataHeader.byteLength + m.dataBody.byteLength;
        if (seen > table.bytes) {
          throw resourceExhausted(`query: flight ${JSON.stringify(ref.name)} holds more than the ${table.bytes} bytes it declared; it changed during the query, try again`);
        }
        await frame(ipcMessagePrefix(m.dataHeader));
        for (const c of chunksOf(m.dataBody)) await frame(c);
      }
      await frame(ipcEndOfStream());
    };
  }

  function toResult(bytes: Uint8Array, rows: number, timings: EngineResult["timings"]): EngineResult {
    const messages = splitIpcStream(bytes);
    const validator = new IpcStreamValidator();
    const out: FlightData[] = [];
    for (const m of messages) {
      try {
        validator.accept(m.header, m.body);
      } catch (err) {
        throw new FlightError(StatusCode.INTERNAL, `query: the query engine's result is not a valid IPC stream (${err instanceof Error ? err.message : String(err)})`);
      }
      out.push({ flightDescriptor: undefined, dataHeader: m.header, dataBody: m.body, appMetadata: new Uint8Array(0) });
    }
    if (out.length === 0) throw new FlightError(StatusCode.INTERNAL, "query: the query engine's result has no schema");
    return {
      schema: encapsulateMessage(out[0].dataHeader),
      rows,
      bytes: bytes.byteLength,
      timings,
      messages: (async function* resultMessages() {
        yield* out;
      })(),
    };
  }

  const deadlineOf = (request: EngineRequest<EngineTableSchema>): number => {
    if (request.timeoutMs === undefined) return timeoutMs;
    if (!(request.timeoutMs > 0)) throw new FlightError(StatusCode.DEADLINE_EXCEEDED, "query: no time left for the query");
    return Math.min(timeoutMs, request.timeoutMs);
  };

  return {
    async run(request) {
      const deadline = deadlineOf(request);
      const tables = await resolveTables(request, deadline);
      let total = 0;
      for (const { ref, table } of tables) {
        if (!Number.isSafeInteger(table.bytes) || table.bytes < 0) throw resourceExhausted(`query: the size of flight ${JSON.stringify(ref.name)} is unknown, and a query loads only what it can count first`);
        total += table.bytes;
      }
      if (total > maxInputBytes) {
        throw resourceExhausted(`query: the query would load ${total} bytes of IPC (${tables.map((t) => `${JSON.stringify(t.ref.name)}: ${t.table.bytes}`).join(", ")}), over the limit of ${maxInputBytes} bytes`);
      }
      const { bytes, rows, timings } = await execute(
        request.sql,
        tables.map(({ ref, table }) => ({ name: ref.name, size: table.bytes + 64 * 1024, write: tableWriter(ref, table) })),
        request.signal,
        deadline,
      );
      return toResult(bytes, rows, timings);
    },

    async resultSchema(request) {
      const deadline = deadlineOf(request);
      const tables = await resolveTables(request, deadline);
      const { bytes } = await execute(
        request.sql,
        tables.map(({ ref, table }) => ({
          name: ref.name,
          size: table.schema.byteLength + 8,
          write: async (frame: (chunk: Uint8Array) => Promise<void>) => {
            await frame(table.schema);
            await frame(ipcEndOfStream());
          },
        })),
        request.signal,
        deadline,
      );
      return toResult(bytes, 0, { sendMs: 0, receiveMs: 0, loadMs: 0, runMs: 0, encodeMs: 0 }).schema;
    },

    stats(): QueryEngineStats {
      return {
        processes,
        alive: procs.size,
        running: counters.running,
        queued: waiters.length,
        completed: counters.completed,
        refused: counters.refused,
        killed: counters.killed,
      };
    },

    async close() {
      closed = true;
      for (const w of waiters.splice(0)) w.reject(new FlightError(StatusCode.UNAVAILABLE, "the query engine is closed"));
      const all = [...procs];
      for (const p of all) kill(p, new FlightError(StatusCode.UNAVAILABLE, "the query engine is closed"));
      await Promise.all(all.map((p) => p.exited));
    },
  };
}

/** Reads exactly `n` bytes from a stream into one buffer (n was checked against the cap before). */
function readExactly(stream: Readable, n: number): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  if (n === 0) return Promise.resolve(out);
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      const k = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, k);
      at += k;
      if (at === n) {
        stream.off("data", onData);
        stream.off("close", onClose);
        stream.pause();
        if (k < chunk.length) stream.unshift(chunk.subarray(k));
        resolve(out);
      }
    };
    const onClose = (): void => {
      stream.off("data", onData);
      reject(new FlightError(StatusCode.UNAVAILABLE, "query: the query engine process closed its result pipe"));
    };
    stream.on("data", onData);
    stream.once("close", onClose);
    stream.resume();
  });
}
