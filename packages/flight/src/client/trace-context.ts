import { SpanKind, SpanStatusCode, context, propagation, trace, type TextMapSetter, type Tracer } from "@opentelemetry/api";
import { StatusCode, statusCodeName, checkImplements, checkOptions } from "@blackice/flight-core";
import type { ClientMiddleware, OutgoingHeaders } from "./client-middleware";

/** Options of {@link traceContext}. */
export interface TraceContextOptions {
  /** The tracer for the client spans. Default: `trace.getTracer("@blackice/flight")` from the global provider. */
  tracer?: Tracer;
}

const setter: TextMapSetter<OutgoingHeaders> = {
  set(carrier, key, value) {
    carrier[key.toLowerCase()] = value;
  },
};

/**
 * A client middleware for OpenTelemetry: each call gets a CLIENT span (named
 * `arrow.flight.protocol.FlightService/<Method>`, child of the active context, with
 * `rpc.system`, `rpc.service`, `rpc.method` and `rpc.grpc.status_code`; ERROR status on
 * failure), and sends W3C `traceparent`/`tracestate` for it, so the server's spans (see
 * `tracing()` in @blackice/flight-resilience) join the caller's trace. Uses only
 * `@opentelemetry/api`: without an SDK (and its propagator) registered by the host app, it
 * sends nothing and records nothing.
 *
 * @example
 * const client = new FlightClient("grpc+tcp://127.0.0.1:8815", { middleware: [traceContext()] });
 */
export function traceContext(options: TraceContextOptions = {}): ClientMiddleware {
  checkOptions("traceContext", options, ["tracer"], true);
  const tracer = checkImplements<Tracer>("traceContext", "tracer", options.tracer, ["startSpan"], "an OpenTelemetry Tracer") ?? trace.getTracer("@blackice/flight");
  return {
    startCall({ path }) {
      const [service, method] = path.slice(1).split("/") as [string, string];
      const parent = context.active();
      const span = tracer.startSpan(
        `${service}/${method}`,
        { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method } },
        parent,
      );
      return {
        sendingHeaders() {
          const headers: OutgoingHeaders = {};
          propagation.inject(trace.setSpan(parent, span), headers, setter);
          return headers;
        },
        callCompleted({ code, details }) {
          span.setAttribute("rpc.grpc.status_code", code);
          if (code !== StatusCode.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: `${statusCodeName(code)}: ${details}` });
          span.end();
        },
      };
    },
  };
}
