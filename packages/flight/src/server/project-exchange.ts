import * as fs from "node:fs";
import * as path from "node:path";
import type { ResourceLimits } from "node:worker_threads";
import {
  MessageKind,
  defineExchange,
  invalidArgument,
  joinIpcStream,
  onLifecycle,
  readMessageHeader,
  splitIpcStream,
  statsSection,
  type ExchangeHandler,
  type FlightData,
  serverParts,
  type ServerParts,
  checkOptions,
  checkString,
} from "@blackice/flight-core";
import type { ProjectWorkerAnswer, ProjectWorkerRequest } from "./project-worker";
import { WorkerPool } from "./worker-pool";

// The projection decodes Arrow data, and apache-arrow can hang, throw or allocate without end
// deep inside on corrupt input. So it never runs on the server's main thread: it runs in a
// bounded pool of worker threads, each with a heap limit, and a message that takes longer
// than `timeoutMs` terminates its worker (see worker-pool.ts).

/** Options of {@link projectExchange}. */
export interface ProjectExchangeOptions {
  /** The descriptor command (or path[0]) that selects the exchange. Default `"project"`. */
  command?: string;
  /** Longest time one message may take to project before the exchange fails with INVALID_ARGUMENT, ms. Default 5000. */
  timeoutMs?: number;
  /** Worker threads at most, 1 to `os.availableParallelism()`. Default min(2, that). */
  size?: number;
  /** Exchanges that may wait for a worker; the next one gets RESOURCE_EXHAUSTED. Default 16. */
  maxQueue?: number;
  /**
   * V8 limits of each worker. An exchange whose input needs more fails with RESOURCE_EXHAUSTED,
   * and the worker is replaced. Default `{ maxOldGenerationSizeMb: 256 }`.
   */
  resourceLimits?: ResourceLimits;
}

/**
 * Where the worker's compiled JavaScript is. From dist, tsc wrote `project-worker.js` beside
 * this file. Under ts-jest or ts-node this module runs from `src`, where only
 * `project-worker.ts` exists, and a worker thread cannot load TypeScript; there the package's
 * own build output (`dist/server/project-worker.js`, written by `tsc -b`, which `npm test`
 * runs first) is used. Compiling the worker in the thread instead (ts-node in `execArgv`)
 * would take seconds per worker start and make ts-node a run-time dependency.
 */
function projectWorkerScript(): string {
  const beside = path.join(__dirname, "project-worker.js");
  if (fs.existsSync(beside)) return beside;
  const built = path.resolve(__dirname, "../../dist/server/project-worker.js");
  if (fs.existsSync(path.join(__dirname, "project-worker.ts")) && fs.existsSync(built)) return built;
  throw new TypeError(`projectExchange: the worker script ${beside} is missing; build the package (tsc -b)`);
}

function columnsOf(cmd: Uint8Array, segments: string[]): string[] {
  if (segments.length > 1) return segments.slice(1);
  const text = Buffer.from(cmd).toString("utf8");
  let parsed: { columns?: unknown } | undefined;
  try {
    parsed = text.startsWith("{") ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const columns = parsed?.columns ?? (text.includes(":") ? text.slice(text.indexOf(":") + 1).split(",") : undefined);
  if (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === "string" && c.length > 0)) {
    throw invalidArgument('project: name the columns: cmd {"command":"project","columns":["a","b"]}, cmd "project:a,b", or path ["project","a","b"]');
  }
  return columns as string[];
}

/**
 * The `project` DoExchange, which servers do not have unless they add it: projects record
 * batches onto some columns. The client sends an IPC stream and gets back one projected batch
 * per batch sent. Columns come from the descriptor: cmd `{"command":"project","columns":["a","b"]}`,
 * cmd `project:a,b`, or path `["project","a","b"]`.
 *
 * Decoding runs in a bounded pool of worker threads (`size`, default min(2, cores)), started
 * when first needed. An exchange holds one worker from its first message to its end; up to
 * `maxQueue` exchanges wait for one, in order, and the next gets RESOURCE_EXHAUSTED. A message
 * that takes over `timeoutMs` fails the exchange with INVALID_ARGUMENT, one that needs more
 * than the worker's `resourceLimits` with RESOURCE_EXHAUSTED; either way the worker is
 * replaced. Returns the exchange, a `stats` section (`exchange:project`) and a shutdown hook
 * that terminates the workers. Options are checked here (TypeError), and apache-arrow must be
 * installed.
 *
 * @example
 * createFlightServer(serverConfig({ addr: "127.0.0.1:8815" }), projectExchange({ size: 2, maxQueue: 16 }));
 */
export function projectExchange(options: ProjectExchangeOptions = {}): ServerParts {
  checkOptions("projectExchange", options, ["command", "timeoutMs", "size", "maxQueue", "resourceLimits"], true);
  const command = checkString("projectExchange", "command", options.command) ?? "project";
  try {
    require.resolve("apache-arrow");
  } catch {
    throw new TypeError("projectExchange needs apache-arrow (a peer dependency of @blackice/flight): npm install apache-arrow");
  }
  const pool = new WorkerPool({
    script: projectWorkerScript(),
    name: command,
    size: options.size,
    maxQueue: options.maxQueue,
    timeoutMs: options.timeoutMs,
    resourceLimits: options.resourceLimits,
  });
  const project: ExchangeHandler = async function* project(input, first, call) {
    const columns = columnsOf(call.descriptor.cmd, call.descriptor.path);
    const lease = await pool.acquire(call.signal);
    try {
      let sentSchema = false;
      const handle = async function* (m: FlightData): AsyncGenerator<FlightData> {
        if (m.dataHeader.length === 0) return;
        const isBatch = readMessageHeader(m.dataHeader, m.dataBody).kind === MessageKind.RECORD_BATCH;
        // joinIpcStream writes into a new buffer of its own, so it can be moved to the worker.
        const framed = joinIpcStream([{ header: m.dataHeader, body: m.dataBody }]);
        const bytes = framed.subarray(0, framed.length - 8);
        const request: ProjectWorkerRequest = isBatch ? { kind: "batch", bytes, columns } : { kind: "prefix", bytes };
        const out = (await lease.request(request, [framed.buffer as ArrayBuffer])) as ProjectWorkerAnswer;
        if (!out) return;
        // tableToIPC writes schema, dictionaries and the batch: the schema goes out once;
        // dictionaries go out each time as replacements, which the stream format allows.
        for (const msg of splitIpcStream(out)) {
          const kind = readMessageHeader(msg.header, msg.body).kind;
          if (kind === MessageKind.SCHEMA) {
            if (sentSchema) continue;
            sentSchema = true;
          }
          const appMetadata = kind === MessageKind.RECORD_BATCH ? m.appMetadata : new Uint8Array(0);
          yield { flightDescriptor: undefined, dataHeader: msg.header, dataBody: msg.body, appMetadata };
        }
      };
      yield* handle(first);
      for await (const m of input) yield* handle(m);
    } finally {
      lease.release();
    }
  };
  return serverParts(
    defineExchange(command, project),
    statsSection(`exchange:${command}`, function collectProjectWorkerStats() {
      return pool.stats();
    }),
    onLifecycle({
      onShutdown: function closeProjectWorkers() {
        return pool.close();
      },
    }),
  );
}
