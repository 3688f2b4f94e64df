// The engine process of the query engine (engine-pool.ts): a child process that runs one SQL
// statement at a time on nodejs-polars. It is a process, not a worker thread, because a
// polars computation is native code that a worker's terminate() does not interrupt (measured:
// terminate() of a worker inside a long polars collect() had not returned after 60 s), while
// a process can be killed at once. It runs only as a child started by EnginePool.
//
// Protocol. Control messages go over the IPC channel (JSON):
//   parent → child  { id, sql, tables: [names], sizes: [expected bytes], maxResultBytes }
//   child → parent  { ready: true } once; then per request
//                   { id, ok: true, bytes, rows }, followed by `bytes` bytes on fd 4, or
//                   { id, ok: false, kind: "sql" | "read" | "result", error, table? }
// Table data goes over stdin, after the control message, table by table in the order named:
// frames of [uint32 LE length][bytes], a zero length ending a table. The bytes of a table are
// an IPC stream (schema, dictionaries, batches, end-of-stream marker).
import * as net from "node:net";
import * as pl from "nodejs-polars";

interface EngineProcessRequest {
  readonly id: number;
  readonly sql: string;
  readonly tables: readonly string[];
  /** Expected IPC bytes of each table, to size its buffer. */
  readonly sizes: readonly number[];
  readonly maxResultBytes: number;
}

/** What the child answers to a request (see the protocol above). */
export type EngineProcessReply =
  | { readonly ready: true }
  | { readonly id: number; readonly ok: true; readonly bytes: number; readonly rows: number }
  | { readonly id: number; readonly ok: false; readonly kind: "sql" | "read" | "result"; readonly error: string; readonly table?: string };

// fd 4 (fd 3 is the IPC channel): the results, a pipe the parent reads (see engine-pool.ts).
const result = new net.Socket({ fd: 4, readable: false, writable: true });

const send = (m: EngineProcessReply): void => {
  process.send?.(m);
};
if (process.send === undefined) throw new Error("engine-process.js runs as a child process started by the query engine, not on its own");

// stdin, read frame by frame. A table's frames are copied into one buffer: polars reads an
// IPC stream from one contiguous buffer, so this is the one copy of the input (the pipe's
// chunks are the kernel's copy).
const chunks: Buffer[] = [];
let head = 0; // read position in chunks[0]
let available = 0;
let waiter: (() => void) | undefined;
process.stdin.on("data", (chunk: Buffer) => {
  chunks.push(chunk);
  available += chunk.length;
  const w = waiter;
  waiter = undefined;
  w?.();
});
process.stdin.on("end", () => process.exit(0));

/** Copies the next `n` bytes of stdin into `into` at `at`, waiting for them. */
async function take(n: number, into: Buffer, at: number): Promise<void> {
  while (n > 0) {
    while (available === 0) await new Promise<void>((resolve) => (waiter = resolve));
    const c = chunks[0];
    const k = Math.min(n, c.length - head);
    c.copy(into, at, head, head + k);
    head += k;
    at += k;
    n -= k;
    available -= k;
    if (head === c.length) {
      chunks.shift();
      head = 0;
    }
  }
}

const lengthBytes = Buffer.alloc(4);

/**
 * Reads one table's frames into one buffer of `hint` bytes (the declared size; grown by
 * doubling if the frames are longer, which only IPC framing and padding can make them).
 */
async function readTable(hint: number): Promise<Buffer> {
  let buf = Buffer.allocUnsafe(Math.max(hint, 64));
  let total = 0;
  for (;;) {
    await take(4, lengthBytes, 0);
    const n = lengthBytes.readUInt32LE(0);
    if (n === 0) break;
    if (total + n > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, total + n));
      buf.copy(bigger, 0, 0, total);
      buf = bigger;
    }
    await take(n, buf, total);
    total += n;
  }
  return buf.subarray(0, total);
}

// polars 0.24.1's SQLContext.execute returns a lazy frame wrapping the native error (instead
// of throwing) when the statement fails to plan; collect() then fails with "_ldf.collect is
// not a function". `_ldf` is declared on LazyDataFrame's public type; reading it is the only
// way to get the engine's message.
function planError(lazy: pl.LazyDataFrame): Error | undefined {
  const inner = (lazy as unknown as { _ldf?: unknown })._ldf;
  return inner instanceof Error ? inner : undefined;
}

function message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // Polars appends the resolved plan after a blank line; the first part is the reason.
  const first = text.split("\n\nResolved plan")[0].trim();
  return first.length > 1024 ? `${first.slice(0, 1021)}...` : first;
}

async function run(req: EngineProcessRequest): Promise<void> {
  const ctx = pl.SQLContext();
  // Every table's frames are read, even after a failure, so the next request starts at its own frames.
  let failure: EngineProcessReply | undefined;
  for (let i = 0; i < req.tables.length; i++) {
    const name = req.tables[i];
    const bytes = await readTable(req.sizes[i]);
    if (failure !== undefined) continue;
    try {
      ctx.register(name, pl.readIPCStream(bytes).lazy());
    } catch (err) {
      failure = { id: req.id, ok: false, kind: "read", table: name, error: message(err) };
    }
  }
  if (failure !== undefined) return send(failure);
  let frame: pl.DataFrame;
  try {
    const lazy = ctx.execute(req.sql);
    const err = planError(lazy);
    if (err !== undefined) throw err;
    frame = await lazy.collect();
  } catch (err) {
    return send({ id: req.id, ok: false, kind: "sql", error: message(err) });
  }
  const out = frame.writeIPCStream();
  if (out.length > req.maxResultBytes) {
    return send({ id: req.id, ok: false, kind: "result", error: `the result is ${out.length} bytes of IPC, over the limit of ${req.maxResultBytes}` });
  }
  send({ id: req.id, ok: true, bytes: out.length, rows: frame.height });
  await new Promise<void>((resolve, reject) => result.write(out, (e) => (e ? reject(e) : resolve())));
}

// One request at a time: the parent sends the next only after the answer to this one.
let queue: Promise<void> = Promise.resolve();
process.on("message", (m: EngineProcessRequest) => {
  queue = queue.then(() => run(m)).catch((err) => {
    process.stderr.write(`engine process: ${message(err)}\n`);
    process.exit(70);
  });
});
send({ ready: true });
