// The worker thread of the `project` DoExchange (see project-exchange.ts): decodes one record
// batch at a time with apache-arrow and encodes the chosen columns. It runs only inside a
// WorkerPool thread, which sends it one request at a time and `{ reset }` between exchanges.
import { parentPort } from "node:worker_threads";
import { tableFromIPC, tableToIPC } from "apache-arrow";
import type { WorkerPoolMessage, WorkerPoolReply } from "./worker-pool";

/**
 * One request to the project worker. `prefix`: a schema or dictionary message, kept for the
 * exchange and answered with null. `batch`: a record batch, answered with the projected IPC
 * stream. `bytes` is one framed IPC message without the end-of-stream marker.
 */
export type ProjectWorkerRequest =
  | { readonly kind: "prefix"; readonly bytes: Uint8Array }
  | { readonly kind: "batch"; readonly bytes: Uint8Array; readonly columns: readonly string[] };

/** The answer to a {@link ProjectWorkerRequest}: the projected stream (schema, dictionaries, batch), or null for `prefix`. */
export type ProjectWorkerAnswer = Uint8Array | null;

const port = parentPort;
if (port === null) throw new Error("project-worker.js runs in a worker thread started by projectExchange, not on its own");

const EOS = new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0]);

// The schema and every dictionary message of the exchange so far: replayed before each batch,
// so each batch decodes on its own (dictionaries are small next to the batches they serve).
let prefix: Uint8Array[] = [];

function answer(request: ProjectWorkerRequest): ProjectWorkerAnswer {
  if (request.kind === "prefix") {
    prefix.push(request.bytes);
    return null;
  }
  const table = tableFromIPC(Buffer.concat([...prefix, request.bytes, EOS]));
  const names = table.schema.fields.map((f) => f.name);
  const missing = request.columns.filter((c) => !names.includes(c));
  if (missing.length > 0) throw new Error(`no such column: ${missing.join(", ")}; the columns are ${names.join(", ")}`);
  return tableToIPC(table.select(request.columns as string[]), "stream");
}

port.on("message", (m: WorkerPoolMessage<ProjectWorkerRequest>) => {
  if ("reset" in m) {
    prefix = [];
    return;
  }
  let reply: WorkerPoolReply<ProjectWorkerAnswer>;
  try {
    reply = { ok: true, value: answer(m.request) };
  } catch (err) {
    reply = { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  // A batch's answer is moved, not copied, when it owns its whole buffer (a view into a
  // shared pool buffer must be copied: moving it would take the pool away from this thread).
  const out = "value" in reply ? reply.value : null;
  const owned = out !== null && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength && out.buffer instanceof ArrayBuffer;
  port.postMessage(reply, owned ? [out.buffer as ArrayBuffer] : []);
});

port.postMessage({ ready: true } satisfies WorkerPoolReply<ProjectWorkerAnswer>);
