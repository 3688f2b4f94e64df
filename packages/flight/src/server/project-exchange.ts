import { Worker } from "node:worker_threads";
import {
  FlightError,
  MessageKind,
  StatusCode,
  invalidArgument,
  joinIpcStream,
  readMessageHeader,
  splitIpcStream,
  type ExchangeHandler,
  type FlightData,
} from "@blackice/flight-core";

// The projection decodes Arrow data, and apache-arrow can hang or throw deep inside on
// corrupt input. So it never runs on the server's main thread: each exchange gets a worker,
// and a message that takes longer than `timeoutMs` terminates it.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const arrow = require(workerData.arrowPath);
const columns = workerData.columns;
const EOS = Buffer.from([255, 255, 255, 255, 0, 0, 0, 0]);
// The schema and every dictionary message so far: replayed before each batch, so each batch
// decodes on its own (dictionaries are small next to the batches they serve).
const prefix = [];
parentPort.on("message", ({ bytes, expect }) => {
  try {
    if (!expect) { prefix.push(Buffer.from(bytes)); parentPort.postMessage({ ok: true, bytes: null }); return; }
    const table = arrow.tableFromIPC(Buffer.concat([...prefix, Buffer.from(bytes), EOS]));
    const missing = columns.filter((c) => !table.schema.fields.some((f) => f.name === c));
    if (missing.length) throw new Error("no such column: " + missing.join(", ") + "; the columns are " + table.schema.fields.map((f) => f.name).join(", "));
    parentPort.postMessage({ ok: true, bytes: arrow.tableToIPC(table.select(columns), "stream") });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String((err && err.message) || err) });
  }
});
`;

/** Options of {@link projectExchange}. */
export interface ProjectExchangeOptions {
  /** Longest time one message may take to project before the exchange fails. Default 5000 ms. */
  timeoutMs?: number;
}

function columnsOf(cmd: Uint8Array, path: string[]): string[] {
  if (path.length > 1) return path.slice(1);
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
 * A DoExchange handler that projects record batches onto some columns: the client sends an
 * IPC stream and gets back one projected batch per batch sent. Columns come from the
 * descriptor: cmd `{"command":"project","columns":["a","b"]}`, cmd `project:a,b`, or path
 * `["project","a","b"]`. Decoding runs in a worker thread with a timeout (see above).
 *
 * @example
 * createFlightServer(defineExchange("project", projectExchange()));
 */
export function projectExchange(options: ProjectExchangeOptions = {}): ExchangeHandler {
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new TypeError(`projectExchange: timeoutMs must be a positive integer, got ${timeoutMs}`);
  const arrowPath = require.resolve("apache-arrow");
  return async function* project(input, first, call) {
    const columns = columnsOf(call.descriptor.cmd, call.descriptor.path);
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { arrowPath, columns } });
    worker.unref();
    const ask = (bytes: Uint8Array, expect: boolean): Promise<Uint8Array | null> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(invalidArgument(`project: a message took over ${timeoutMs} ms to decode; refused`)), timeoutMs);
        worker.once("message", (m: { ok: boolean; bytes?: Uint8Array | null; error?: string }) => {
          clearTimeout(timer);
          if (m.ok) resolve(m.bytes ?? null);
          else reject(invalidArgument(`project: ${m.error}`));
        });
        worker.once("error", (e) => {
          clearTimeout(timer);
          reject(new FlightError(StatusCode.INVALID_ARGUMENT, `project: cannot decode the input (${e.message})`));
        });
        worker.postMessage({ bytes, expect });
      });
    let sentSchema = false;
    const handle = async function* (m: FlightData) {
      if (m.dataHeader.length === 0) return;
      const kind = readMessageHeader(m.dataHeader, m.dataBody).kind;
      const framed = joinIpcStream([{ header: m.dataHeader, body: m.dataBody }]);
      const out = await ask(framed.subarray(0, framed.length - 8), kind === MessageKind.RECORD_BATCH);
      if (!out) return;
      // tableToIPC writes schema, dictionaries and the batch: the schema goes out once;
      // dictionaries go out each time as replacements, which the stream format allows.
      for (const msg of splitIpcStream(out)) {
        if (readMessageHeader(msg.header, msg.body).kind === MessageKind.SCHEMA) {
          if (sentSchema) continue;
          sentSchema = true;
        }
        const isBatch = readMessageHeader(msg.header, msg.body).kind === MessageKind.RECORD_BATCH;
        yield { flightDescriptor: undefined, dataHeader: msg.header, dataBody: msg.body, appMetadata: isBatch ? m.appMetadata : new Uint8Array(0) } as FlightData;
      }
    };
    try {
      yield* handle(first);
      for await (const m of input) yield* handle(m);
    } finally {
      await worker.terminate();
    }
  };
}
