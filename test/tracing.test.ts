import { context, propagation, trace, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import * as arrow from "apache-arrow";
import { FlightError, StatusCode, serverConfig } from "@blackice/flight-core";
import { FlightClient, createFlightServer, traceContext, type FlightServer } from "@blackice/flight";
import { tracing } from "@blackice/flight-resilience";

// The SDK's in-memory exporter records what tracing() and the client's traceContext() make,
// over a real server and client.
describe("tracing (OpenTelemetry)", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let server: FlightServer;
  let client: FlightClient;

  const spans = (kind: SpanKind) => exporter.getFinishedSpans().filter((s) => s.kind === kind);
  /** Spans end when their stream does, which the server sees a moment after the client. */
  const settle = () => new Promise((r) => setTimeout(r, 50));

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    server = createFlightServer(tracing(), serverConfig({ addr: "127.0.0.1:0" }));
    await server.start();
    client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`, { middleware: [traceContext()] });
  });
  afterAll(async () => {
    client.close();
    await server.shutdown({ graceMs: 0 });
    trace.disable();
    propagation.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  it("makes a server span per call, child of the client's span, with method, descriptor, bytes and rows", async () => {
    const table = arrow.tableFromArrays({ id: Int32Array.from({ length: 1000 }, (_, i) => i) });
    const root = trace.getTracer("test").startSpan("producer");
    await context.with(trace.setSpan(context.active(), root), async () => {
      await client.putTable({ path: ["traced", "t1"] }, table);
      const got = await client.getTable({ path: ["traced", "t1"] });
      expect(got.numRows).toBe(1000);
    });
    root.end();
    await settle();

    const server = spans(SpanKind.SERVER);
    const byMethod = (m: string) => server.find((s) => s.attributes["rpc.method"] === m)!;
    const put = byMethod("DoPut");
    const get = byMethod("DoGet");
    const info = byMethod("GetFlightInfo");
    expect(put.name).toBe("arrow.flight.protocol.FlightService/DoPut");
    expect(put.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.grpc.status_code": StatusCode.OK, "blackice.flight.descriptor": "traced/t1", "blackice.flight.rows_received": 1000 });
    expect(put.attributes["blackice.flight.bytes_received"]).toBeGreaterThan(4000);
    expect(get.attributes).toMatchObject({ "blackice.flight.descriptor": "traced/t1", "blackice.flight.rows_sent": 1000 });
    expect(get.attributes["blackice.flight.bytes_sent"]).toBe(put.attributes["blackice.flight.bytes_received"]);
    expect(info.attributes["blackice.flight.descriptor"]).toBe("traced/t1");

    // One trace: producer → client span → server span.
    const clientSpans = spans(SpanKind.CLIENT);
    expect(clientSpans).toHaveLength(3);
    for (const s of [put, get, info]) {
      expect(s.spanContext().traceId).toBe(root.spanContext().traceId);
      const parent = clientSpans.find((c) => c.spanContext().spanId === s.parentSpanContext?.spanId);
      expect(parent?.attributes["rpc.method"]).toBe(s.attributes["rpc.method"]);
      expect(parent?.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    }
  });

  it("marks a failed call with ERROR and its code, on both sides", async () => {
    const err = await client.getFlightInfo({ path: ["no", "such"] }).catch((e: unknown) => e);
    expect((err as FlightError).code).toBe(StatusCode.NOT_FOUND);
    await settle();
    const [s] = spans(SpanKind.SERVER);
    expect(s!.attributes["rpc.grpc.status_code"]).toBe(StatusCode.NOT_FOUND);
    expect(s!.status.code).toBe(SpanStatusCode.ERROR);
    expect(s!.status.message).toMatch(/^NOT_FOUND: no flight at/);
    const [c] = spans(SpanKind.CLIENT);
    expect(c!.status.code).toBe(SpanStatusCode.ERROR);
    expect(c!.attributes["rpc.grpc.status_code"]).toBe(StatusCode.NOT_FOUND);
  });

  it("shows only the length of a command descriptor", async () => {
    await client.getFlightInfo({ type: 2, cmd: Buffer.from("secret-query") }).catch(() => undefined);
    await settle();
    expect(spans(SpanKind.SERVER)[0]!.attributes["blackice.flight.descriptor"]).toBe("cmd:12B");
  });

  it("validates its options", () => {
    expect(() => tracing({ sampler: 1 } as never)).toThrow(/unknown option "sampler"/);
    expect(() => tracing({ countRows: "yes" } as never)).toThrow(TypeError);
    expect(() => traceContext({ tracer: {} as never })).toThrow(TypeError);
  });
});

describe("tracing without an SDK", () => {
  it("is a no-op: calls work and nothing is sent or recorded", async () => {
    const seen: Array<string | undefined> = [];
    const server = createFlightServer(
      tracing(),
      (next) => async (call) => {
        seen.push(call.headers.get("traceparent")?.[0] as string | undefined);
        return next(call);
      },
      serverConfig({ addr: "127.0.0.1:0" }),
    );
    await server.start();
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`, { middleware: [traceContext()] });
    try {
      await client.putTable({ path: ["plain"] }, arrow.tableFromArrays({ x: Int32Array.from([1, 2, 3]) }));
      expect((await client.getTable({ path: ["plain"] })).numRows).toBe(3);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((v) => v === undefined)).toBe(true);
    } finally {
      client.close();
      await server.shutdown({ graceMs: 0 });
    }
  });
});
