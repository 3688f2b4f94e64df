// Shared pieces of the fault tests: a Flight client with its own connection, Arrow test
// data, puts and gets over a bare grpc-js client, and a server in a child process.
import * as grpc from "@grpc/grpc-js";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { splitIpcStream } from "@blackice/flight-core";
import { rawClient, type RawClient } from "../helpers/raw-flight-client";

export const ROOT = path.resolve(__dirname, "../..");
export const NONE = new Uint8Array(0);

/** A grpc-js client whose methods are the Flight RPCs with the project's codecs. */
export type Client = RawClient;

/** A client on its own HTTP/2 connection, accepting messages up to 64 MiB. */
export function connect(port: number, options: grpc.ChannelOptions = {}): Client {
  return rawClient(port, { ownConnection: true, maxMessageBytes: 64 * 2 ** 20, channelOptions: options });
}

export const pathDescriptor = (...p: string[]) => ({ type: 1, cmd: NONE, path: p });

/** One IPC message as sent in FlightData. */
export interface Msg {
  header: Uint8Array;
  body: Uint8Array;
}

/**
 * A schema message and `batches` record batches of `rows` float64 rows each, every batch
 * with different values (seeded), so a swapped or repeated batch is detected. Arrow encodes
 * one batch; the others are copies of its body with the values rewritten in place (a float64
 * column without nulls is its values, from the start of the body).
 */
export function makeFlight(batches: number, rows: number, seed = 0): Msg[] {
  const table = tableFromArrays({ v: Float64Array.from({ length: rows }, (_, i) => i) });
  const [schema, batch] = splitIpcStream(tableToIPC(table, "stream"));
  const values = new Float64Array(batch.body.buffer, batch.body.byteOffset, rows);
  if (batch.body.byteOffset % 8 !== 0 || values[rows - 1] !== rows - 1) throw new Error("makeFlight: unexpected batch layout");
  const out: Msg[] = [{ header: new Uint8Array(schema.header), body: new Uint8Array(schema.body) }];
  for (let b = 0; b < batches; b++) {
    const body = new Uint8Array(batch.body);
    const v = new Float64Array(body.buffer, 0, rows);
    const base = seed * 1e9 + b * 1e6;
    for (let i = 0; i < rows; i++) v[i] = base + i;
    out.push({ header: new Uint8Array(batch.header), body });
  }
  return out;
}

export function toFlightData(messages: Msg[], name: string[]) {
  return messages.map((m, i) => ({
    flightDescriptor: i === 0 ? { type: 1, cmd: NONE, path: name } : undefined,
    dataHeader: m.header,
    dataBody: m.body,
    appMetadata: NONE,
  }));
}

export function unary<T>(client: Client, method: string, request: unknown, options: grpc.CallOptions = {}): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](request, new grpc.Metadata(), options, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

export async function serverStream<T>(client: Client, method: string, request: unknown, options: grpc.CallOptions = {}): Promise<T[]> {
  const call = client[method](request, new grpc.Metadata(), options) as grpc.ClientReadableStream<T>;
  const out: T[] = [];
  for await (const m of call) out.push(m as T);
  return out;
}

/** Puts a flight, writing with backpressure; resolves with the PutResults. */
export function put(client: Client, name: string[], messages: Msg[], options: grpc.CallOptions = {}): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const call = client.doPut(new grpc.Metadata(), options) as grpc.ClientDuplexStream<unknown, unknown>;
    const results: unknown[] = [];
    let failed = false;
    call.on("data", (r) => results.push(r));
    call.on("error", (err) => {
      failed = true;
      reject(err);
    });
    call.on("end", () => {
      if (!failed) resolve(results);
    });
    const data = toFlightData(messages, name);
    let i = 0;
    const writeMore = (): void => {
      while (i < data.length && !failed) {
        if (!call.write(data[i++])) {
          call.once("drain", writeMore);
          return;
        }
      }
      if (!failed) call.end();
    };
    writeMore();
  });
}

export interface FlightInfoLike {
  flightDescriptor?: { path: string[] };
  endpoint: Array<{ ticket: { ticket: Uint8Array } }>;
  totalRecords: number;
  totalBytes: number;
  appMetadata: Uint8Array;
}

export interface DataLike {
  dataHeader: Uint8Array;
  dataBody: Uint8Array;
}

/** Reads a whole DoGet. */
export function get(client: Client, ticket: unknown, options: grpc.CallOptions = {}): Promise<DataLike[]> {
  return serverStream<DataLike>(client, "doGet", ticket, options);
}

/** Whether a received message is byte-identical to the one put. */
export function sameMessage(got: DataLike, want: Msg): boolean {
  return Buffer.from(got.dataHeader).equals(Buffer.from(want.header)) && Buffer.from(got.dataBody).equals(Buffer.from(want.body));
}

/** The server's `stats` action, parsed. */
export async function stats(client: Client): Promise<{
  flights: number;
  memory: { used: number; reserved: number; limit: number; rss: number };
  [section: string]: unknown;
}> {
  const [r] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "stats", body: NONE });
  return JSON.parse(Buffer.from(r.body).toString("utf8"));
}

export async function ping(client: Client, options: grpc.CallOptions = {}): Promise<string> {
  const [r] = await serverStream<{ body: Uint8Array }>(client, "doAction", { type: "ping", body: NONE }, options);
  return Buffer.from(r.body).toString("utf8");
}

export async function listPaths(client: Client): Promise<FlightInfoLike[]> {
  return serverStream<FlightInfoLike>(client, "listFlights", { expression: NONE });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it did. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(everyMs);
  }
}

/** A child process running a Flight server, with its port once it announced it. */
export interface ChildServer {
  child: ChildProcess;
  port: number;
  /** Everything the child wrote so far. */
  output: () => string;
  /** Resolves with the exit code (or signal name) when the child exits. */
  exited: Promise<number | string | null>;
}

/**
 * Runs `node <args>` and waits for a line matching `portPattern` (its first group is the
 * port). The child is SIGKILLed if it does not announce within `timeoutMs`.
 */
export function spawnServer(args: string[], portPattern: RegExp, timeoutMs = 20_000): Promise<ChildServer> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<number | string | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server child did not announce its port in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = portPattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), output: () => out, exited });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server child exited (${signal ?? code}) before announcing its port:\n${out}`));
    });
  });
}

/** The fixture server (test/faults/fixtures/server.js) started with `config`. */
export function spawnFixtureServer(config: Record<string, unknown>, nodeArgs: string[] = []): Promise<ChildServer> {
  return spawnServer([...nodeArgs, path.join(__dirname, "fixtures/server.js"), JSON.stringify(config)], /^listening (\d+)$/m);
}

/** SIGKILLs a child that is still running and waits for it to go. */
export async function killHard(server: ChildServer | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill("SIGKILL");
  await server.exited;
}

/** The gRPC status code of an error (a grpc-js ServiceError), or undefined. */
export const codeOf = (err: unknown): number | undefined => (err as { code?: number })?.code;
