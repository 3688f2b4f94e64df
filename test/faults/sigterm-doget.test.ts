// Fault: SIGTERM reaches the server while a large DoGet streams. The server maps SIGTERM to
// shutdown({graceMs}): the stream completes within the grace time, or ends with a clean
// status; never a corrupted or partial batch. Every received message is compared byte for
// byte with what was put.
import * as grpc from "@grpc/grpc-js";
import * as path from "node:path";
import {
  ROOT,
  connect,
  killHard,
  makeFlight,
  pathDescriptor,
  put,
  sameMessage,
  spawnFixtureServer,
  spawnServer,
  unary,
  type ChildServer,
  type Client,
  type DataLike,
  type FlightInfoLike,
  type Msg,
} from "./helpers";

const CLI = path.join(ROOT, "packages/cli/dist/cli.js");
/** 48 distinct batches of 2 MiB: a 96 MiB flight. */
const messages: Msg[] = makeFlight(48, 262_144, 42);

interface ReadOutcome {
  received: DataLike[];
  /** undefined: the stream ended with OK. */
  error: grpc.ServiceError | undefined;
}

/**
 * Reads a DoGet, calling `onMessage` with the count after each message (it may pause the
 * call); resolves once the stream ended, one way or the other.
 */
function read(client: Client, ticket: unknown, onMessage: (n: number, call: grpc.ClientReadableStream<DataLike>) => void): Promise<ReadOutcome> {
  const call = client.doGet(ticket, new grpc.Metadata()) as grpc.ClientReadableStream<DataLike>;
  const received: DataLike[] = [];
  return new Promise((resolve) => {
    call.on("data", (m: DataLike) => {
      received.push(m);
      onMessage(received.length, call);
    });
    call.on("error", (error: grpc.ServiceError) => resolve({ received, error }));
    call.on("end", () => resolve({ received, error: undefined }));
  });
}

/** No message differs from what was put, and none is missing before the last received. */
function expectIntact(received: DataLike[]): void {
  expect(received.length).toBeLessThanOrEqual(messages.length);
  const bad = received.map((m, i) => (sameMessage(m, messages[i]) ? -1 : i)).filter((i) => i >= 0);
  expect(bad).toEqual([]);
}

async function putBig(port: number): Promise<{ client: Client; ticket: unknown }> {
  const client = connect(port);
  await put(client, ["big"], messages);
  const info = await unary<FlightInfoLike>(client, "getFlightInfo", pathDescriptor("big"));
  expect(info.totalBytes).toBeGreaterThan(96 * 2 ** 20);
  return { client, ticket: info.endpoint[0].ticket };
}

describe("SIGTERM during a large DoGet", () => {
  let server: ChildServer | undefined;
  let client: Client | undefined;
  afterEach(async () => {
    client?.close();
    await killHard(server);
  });

  it("the CLI lets a reader that keeps up finish within the grace time, then exits 0", async () => {
    server = await spawnServer([CLI, "--port", "0", "--max-memory", "512MiB", "--max-message-size", "8MiB"], /listening on grpc\+tcp:\/\/127\.0\.0\.1:(\d+)/);
    let ticket: unknown;
    ({ client, ticket } = await putBig(server.port));
    let signalledAt = 0;
    const outcome = await read(client, ticket, (n) => {
      if (n === 4) {
        signalledAt = Date.now();
        server!.child.kill("SIGTERM");
      }
    });
    const finishedAt = Date.now();
    expect(signalledAt).toBeGreaterThan(0);
    expectIntact(outcome.received);
    // The CLI's grace is 10 s; the rest of 96 MiB over loopback takes far less.
    expect(outcome.error).toBeUndefined();
    expect(outcome.received.length).toBe(messages.length);
    expect(finishedAt - signalledAt).toBeLessThan(10_000);
    expect(await server.exited).toBe(0);
    expect(server.output()).toMatch(/"signal":"SIGTERM","graceMs":10000,"msg":"shutting down"/);
  });

  it("a reader still paused when the grace time is over gets a clean status, and only whole batches", async () => {
    const graceMs = 300;
    server = await spawnFixtureServer({ config: { maxMemoryBytes: 512 * 2 ** 20, maxMessageBytes: 8 * 2 ** 20 }, graceMs });
    let ticket: unknown;
    ({ client, ticket } = await putBig(server.port));
    let paused: grpc.ClientReadableStream<DataLike> | undefined;
    const reading = read(client, ticket, (n, call) => {
      if (n === 4) {
        call.pause();
        paused = call;
      }
    });
    while (!paused) await new Promise((r) => setTimeout(r, 10));
    server.child.kill("SIGTERM");
    // Past the grace time the server cancels what is left and exits.
    expect(await server.exited).toBe(0);
    paused.resume();
    const outcome = await reading;
    expectIntact(outcome.received);
    expect(outcome.received.length).toBeLessThan(messages.length);
    expect(outcome.error).toBeDefined();
    // A status a client can act on (retry elsewhere), not a protocol or decoding failure.
    expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain(outcome.error!.code);
    process.stdout.write(`paused reader after shutdown: ${outcome.received.length} whole messages, then ${grpc.status[outcome.error!.code]}: ${outcome.error!.details}\n`);
  });
});
