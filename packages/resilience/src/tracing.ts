import { SpanKind, SpanStatusCode, context, propagation, trace, type Span, type TextMapGetter, type Tracer } from "@opentelemetry/api";
import {
  MessageKind,
  StatusCode,
  descriptorFromKey,
  readMessageHeader,
  statusCodeName,
  ticketToKey,
  type CallHeaders,
  type FlightData,
  type FlightDescriptor,
  type FlightMiddleware,
  serverParts,
  type ServerParts,
  checkBoolean,
  checkImplements,
  checkOptions,
} from "@blackice/flight-core";
import { observeCall, withFields } from "./observe-call";
import { flightDataBytes } from "./put-byte-budget";
import { watchIterable } from "./watch-iterable";

/** Options of {@link tracing}. */
export interface TracingOptions {
  /** The tracer to use. Default: `trace.getTracer("@blackice/flight")` from the global provider. */
  tracer?: Tracer;
  /**
   * Count rows of record batches sent and received (reads each message's flatbuffer header,
   * only while the span is recorded). Default true.
   */
  countRows?: boolean;
}

const SERVICE = "arrow.flight.protocol.FlightService";
const METHOD_NAMES: Record<string, string> = {
  handshake: "Handshake",
  listFlights: "ListFlights",
  getFlightInfo: "GetFlightInfo",
  pollFlightInfo: "PollFlightInfo",
  getSchema: "GetSchema",
  doGet: "DoGet",
  doPut: "DoPut",
  doExchange: "DoExchange",
  doAction: "DoAction",
  listActions: "ListActions",
};

/** Reads W3C trace context (`traceparent`, `tracestate`) from a call's headers. */
const headerGetter: TextMapGetter<CallHeaders> = {
  keys: (carrier) => [...carrier.keys()],
  get(carrier, key) {
    const values = carrier.get(key.toLowerCase());
    if (values === undefined) return undefined;
    const text = values.filter((v): v is string => typeof v === "string");
    return text.length === 0 ? undefined : text.length === 1 ? text[0] : text;
  },
};

/** A short text for a descriptor: its path joined with '/', or `cmd:<bytes>` (the command's bytes may be secret). */
function describeDescriptor(d: FlightDescriptor | undefined): string | undefined {
  if (d === undefined) return undefined;
  if (d.path.length > 0) return d.path.join("/");
  return `cmd:${d.cmd.byteLength}B`;
}

/** The descriptor a ticket names, when it is a store key (MemoryStore, DiskStore); else undefined. */
function descriptorOfTicket(ticket: Uint8Array): FlightDescriptor | undefined {
  try {
    return descriptorFromKey(ticketToKey(ticket));
  } catch {
    return undefined;
  }
}

/**
 * OpenTelemetry tracing of every call: one SERVER span per call, named
 * `arrow.flight.protocol.FlightService/<Method>`, child of the client's W3C `traceparent`
 * when it sent one. Attributes: `rpc.system` (`grpc`), `rpc.service`, `rpc.method`,
 * `rpc.grpc.status_code`, `client.address`, `blackice.flight.descriptor` (the path, or only
 * the length of a command), `blackice.flight.bytes_sent` / `bytes_received` (FlightData header
 * + body) and `blackice.flight.rows_sent` / `rows_received`. A failed call sets the span's
 * status to ERROR with the FlightError's message. The handler runs in the span's context, so
 * spans it starts are its children. A streaming call's span ends when its stream does.
 *
 * It uses only `@opentelemetry/api`: without an SDK registered by the host app, it is a no-op
 * (non-recording spans, nothing counted).
 *
 * @example
 * // In the host app: an SDK, e.g. NodeSDK from @opentelemetry/sdk-node, registered first.
 * createFlightServer(tracing(), serverConfig({ addr: "0.0.0.0:8815" }));
 */
export function tracing(options: TracingOptions = {}): ServerParts {
  const where = "tracing";
  checkOptions(where, options, ["tracer", "countRows"], true);
  const tracer = checkImplements<Tracer>(where, "tracer", options.tracer, ["startSpan"], "an OpenTelemetry Tracer") ?? trace.getTracer("@blackice/flight");
  const countRows = checkBoolean(where, "countRows", options.countRows, true);

  const middleware: FlightMiddleware = function tracingMiddleware(next) {
    return async function traced(call) {
      const method = METHOD_NAMES[call.method] ?? call.method;
      const parent = propagation.extract(context.active(), call.headers, headerGetter);
      const span = tracer.startSpan(
        `${SERVICE}/${method}`,
        { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": method, "client.address": call.peer } },
        parent,
      );
      const recording = span.isRecording();
      const descriptor = recording ? requestDescriptor(call) : undefined;
      if (descriptor !== undefined) span.setAttribute("blackice.flight.descriptor", descriptor);
      const sent = { bytes: 0, rows: 0 };
      const received = { bytes: 0, rows: 0 };
      const count = (tally: { bytes: number; rows: number }, m: FlightData): void => {
        tally.bytes += flightDataBytes(m);
        if (countRows && m.dataHeader.byteLength > 0) {
          try {
            const info = readMessageHeader(m.dataHeader);
            if (info.kind === MessageKind.RECORD_BATCH) tally.rows += info.rows;
          } catch {
            // A malformed header is the validator's to refuse; the span counts what it can.
          }
        }
      };
      let inner = call;
      if (recording && (call.method === "doPut" || call.method === "doExchange")) {
        let first = true;
        const request = watchIterable(call.request as AsyncIterable<FlightData>, {
          onItem: (m) => {
            if (first && m.flightDescriptor !== undefined) span.setAttribute("blackice.flight.descriptor", describeDescriptor(m.flightDescriptor)!);
            first = false;
            count(received, m);
          },
        });
        inner = withFields(call, { request });
      }
      const ctx = trace.setSpan(parent, span);
      return context.with(ctx, () =>
        observeCall(inner, next, {
          onEnd: ({ code, error }) => {
            if (recording) end(span, code, error, sent, received, call.method);
            else span.end();
          },
          onResponseItem: recording && (call.method === "doGet" || call.method === "doExchange") ? (m) => count(sent, m as FlightData) : undefined,
        }),
      );
    };
  };
  return serverParts(middleware);
}

function requestDescriptor(call: Parameters<ReturnType<FlightMiddleware>>[0]): string | undefined {
  switch (call.method) {
    case "getFlightInfo":
    case "pollFlightInfo":
    case "getSchema":
      return describeDescriptor(call.request);
    case "doGet":
      return describeDescriptor(descriptorOfTicket(call.request.ticket));
    default:
      return undefined;
  }
}

function end(span: Span, code: StatusCode, error: unknown, sent: { bytes: number; rows: number }, received: { bytes: number; rows: number }, method: string): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (method === "doGet" || method === "doExchange") {
    span.setAttribute("blackice.flight.bytes_sent", sent.bytes);
    span.setAttribute("blackice.flight.rows_sent", sent.rows);
  }
  if (method === "doPut" || method === "doExchange") {
    span.setAttribute("blackice.flight.bytes_received", received.bytes);
    span.setAttribute("blackice.flight.rows_received", received.rows);
  }
  if (code !== StatusCode.OK) {
    const message = error instanceof Error ? error.message : statusCodeName(code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${statusCodeName(code)}: ${message}` });
  }
  span.end();
}
