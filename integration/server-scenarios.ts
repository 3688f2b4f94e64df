// The server side of every integration scenario, built from createFlightServer parts: the
// library's store serves the default scenario as it is; the other scenarios answer their RPCs
// with middleware and defineAction, the library's extension points.

import * as arrow from "apache-arrow";
import {
  DescriptorType,
  FlightError,
  StatusCode,
  defineAction,
  invalidArgument,
  type ActionType,
  type FlightCall,
  type FlightData,
  type FlightDescriptor,
  type FlightEndpoint,
  type FlightHandler,
  type FlightInfo,
  type FlightMiddleware,
  type FlightResponse,
  type PollInfo,
  type Result,
  type ServerPart,
} from "@blackice/flight-core";
import { proto, sessionOptions } from "@blackice/flight";
import { schemaBytes, toFlightData } from "./flight-data";
import { recordBatch } from "./json-reader";
import { requireExport, type ScenarioName } from "./scenario-names";

const EMPTY = new Uint8Array(0);

/**
 * @blackice/flight-security, loaded when used: its barrel is still being written, and a
 * scenario that needs it reports the missing export instead of breaking every scenario.
 */
function security(): object {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("@blackice/flight-security") as object;
  } catch {
    return {};
  }
}
const text = (b: Uint8Array): string => Buffer.from(b).toString("utf8");
const bytes = (s: string): Uint8Array => Buffer.from(s, "utf8");

/** What a scenario may need to know about the server it runs in. */
export interface ServerScenarioContext {
  /** The port bound (valid once the server started). */
  port(): number;
}

/** A scenario's server parts. */
export type ServerScenario = (ctx: ServerScenarioContext) => ServerPart[];

// ------------------------------------------------------------------ helpers

/** A middleware answering some calls of one method itself and passing the rest on. */
function answer<M extends FlightCall["method"]>(
  method: M,
  handle: (call: Extract<FlightCall, { method: M }>, next: FlightHandler) => Promise<FlightResponse> | undefined,
): FlightMiddleware {
  return (next) =>
    async function scenarioAnswer(call) {
      if (call.method === method) {
        const out = handle(call as Extract<FlightCall, { method: M }>, next);
        if (out !== undefined) return out;
      }
      return next(call);
    };
}

function int32Batch(name: string, values: number[], type: arrow.Int = new arrow.Int32()): { schema: arrow.Schema; batch: arrow.RecordBatch } {
  const field = new arrow.Field(name, type, true);
  const schema = new arrow.Schema([field]);
  const child = arrow.makeData({ type, length: values.length, nullCount: 0, data: (type.ArrayType as unknown as { from(v: number[]): never }).from(values) });
  const data = arrow.makeData({ type: new arrow.Struct([field]), length: values.length, nullCount: 0, children: [child] });
  return { schema, batch: recordBatch(schema, data) };
}

async function* stream<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

function flightInfo(descriptor: FlightDescriptor, schema: arrow.Schema, endpoint: FlightEndpoint[], extra: Partial<FlightInfo> = {}): FlightInfo {
  return { schema: schemaBytes(schema), flightDescriptor: descriptor, endpoint, totalRecords: -1, totalBytes: -1, ordered: false, appMetadata: EMPTY, ...extra };
}

const endpoint = (ticket: string | undefined, extra: Partial<FlightEndpoint> = {}): FlightEndpoint => ({
  ticket: ticket === undefined ? undefined : { ticket: bytes(ticket) },
  location: [],
  expirationTime: undefined,
  appMetadata: EMPTY,
  ...extra,
});

const isCmd = (d: FlightDescriptor, cmd?: string): boolean => d.type === DescriptorType.CMD && (cmd === undefined || text(d.cmd) === cmd);

// ------------------------------------------------------------------ default

/**
 * DoPut / GetFlightInfo / DoGet of an integration JSON file: the library's store as it is.
 * It keeps the IPC messages as received (never decoded) and acknowledges app_metadata.
 */
const defaultScenario: ServerScenario = () => [];

// ------------------------------------------------------------------ auth:basic_proto

const AUTH_USERNAME = "arrow";
const AUTH_PASSWORD = "flight";

/**
 * Handshake with a serialized BasicAuth (username "arrow", password "flight") answers a token;
 * every later call must carry it (`auth-token-bin`), else UNAUTHENTICATED; DoAction (of any
 * type, the Go client sends an empty one) returns the caller's identity, "arrow".
 */
const authBasicProto: ServerScenario = () => {
  // The library's basic-auth handshake middleware (packages/security, being written).
  type Identity = { subject: string };
  const basicTokenAuth = requireExport<(o: { validate(username: string, password: string): Identity | undefined | Promise<Identity | undefined> }) => ServerPart[]>(
    security(),
    "@blackice/flight-security",
    "basicTokenAuth",
    "auth:basic_proto needs a Handshake that takes a BasicAuth protobuf payload, answers a token, and then authenticates every call by its auth-token-bin (or authorization: Bearer) header",
  );
  const kIdentity = requireExport<import("@blackice/flight-core").ContextKey<Identity | undefined>>(
    security(),
    "@blackice/flight-security",
    "kIdentity",
    "auth:basic_proto returns the authenticated identity from DoAction, so handlers need the context key basicTokenAuth publishes it under",
  );
  return [
    basicTokenAuth({ validate: async (u, p) => (u === AUTH_USERNAME && p === AUTH_PASSWORD ? { subject: u } : undefined) }),
    answer("doAction", (call) => {
      const who = call.context.get(kIdentity);
      if (!who) return Promise.reject(new FlightError(StatusCode.UNAUTHENTICATED, "no identity"));
      return Promise.resolve(stream<Result>([{ body: bytes(who.subject) }]));
    }),
  ];
};

// ------------------------------------------------------------------ middleware

/** Echoes the `x-middleware` request header as a response header, on failing and passing calls. */
const middlewareScenario: ServerScenario = () => [
  (next) =>
    async function echoHeader(call) {
      const v = call.headers.get("x-middleware")?.[0];
      call.responseHeaders.set("x-middleware", v === undefined ? "" : typeof v === "string" ? v : text(v));
      return next(call);
    },
  answer("getFlightInfo", (call) => {
    const d = call.request;
    if (!isCmd(d, "success")) return Promise.reject(new FlightError(StatusCode.UNKNOWN, "unknown"));
    return Promise.resolve(flightInfo(d, new arrow.Schema([]), [endpoint("foo", { location: [{ uri: "grpc+tcp://localhost:10010" }] })]));
  }),
];

// ------------------------------------------------------------------ ordered

const ORDERED_DATA: Record<string, number[]> = { "1": [1, 2, 3], "2": [10, 20, 30], "3": [100, 200, 300] };

/** Three endpoints without locations; FlightInfo.ordered is set for the command "ordered". */
const orderedScenario: ServerScenario = () => [
  answer("getFlightInfo", (call) =>
    Promise.resolve(
      flightInfo(call.request, int32Batch("number", []).schema, ["1", "2", "3"].map((t) => endpoint(t)), { ordered: isCmd(call.request, "ordered") }),
    ),
  ),
  answer("doGet", (call) => {
    const values = ORDERED_DATA[text(call.request.ticket)];
    if (!values) return Promise.reject(new FlightError(StatusCode.NOT_FOUND, `unknown ticket ${text(call.request.ticket)}`));
    const { schema, batch } = int32Batch("number", values);
    return Promise.resolve(stream<FlightData>(toFlightData(schema, [batch])));
  }),
];

// ------------------------------------------------------------------ expiration_time:*

interface EndpointStatus {
  expiresAt: number | undefined;
  gets: number;
  cancelled: boolean;
}

/**
 * Shared by the four expiration_time scenarios: GetFlightInfo gives three endpoints (no
 * expiration, +5 s, +6 s) whose tickets start with their index; DoGet serves each once
 * (without expiration) or until it expires, refuses cancelled ones; CancelFlightInfo and
 * RenewFlightEndpoint (+10 s) act on them; ListActions lists exactly those two actions.
 */
const expirationTime: ServerScenario = () => {
  let statuses: EndpointStatus[] = [];
  const indexOf = (ticket: string): number => {
    const index = Number(ticket.split(":", 1)[0]);
    if (!Number.isInteger(index) || ticket.split(":", 1)[0].trim() === "") throw invalidArgument(`invalid flight: no index: ${ticket}`);
    if (index >= statuses.length) throw invalidArgument(`invalid flight: out of index: ${ticket}`);
    return index;
  };
  const schema = int32Batch("number", [], new arrow.Uint32()).schema;
  const ACTIONS: ActionType[] = [
    { type: "CancelFlightInfo", description: "Cancels the endpoints of a FlightInfo of this scenario" },
    { type: "RenewFlightEndpoint", description: "Extends an endpoint's expiration time by 10 seconds" },
  ];
  return [
    answer("getFlightInfo", (call) => {
      statuses = [];
      const add = (label: string, expiresAt: number | undefined): FlightEndpoint => {
        const index = statuses.length;
        statuses.push({ expiresAt, gets: 0, cancelled: false });
        return endpoint(`${index}: ${label}`, { expirationTime: expiresAt === undefined ? undefined : new Date(expiresAt) });
      };
      const now = Date.now();
      return Promise.resolve(flightInfo(call.request, schema, [add("No expiration time", undefined), add("5 seconds", now + 5000), add("6 seconds", now + 6000)]));
    }),
    answer("doGet", (call) => {
      const ticket = text(call.request.ticket);
      const index = indexOf(ticket);
      const st = statuses[index];
      if (st.cancelled) throw invalidArgument(`Invalid flight: cancelled: ${ticket}`);
      if (st.expiresAt === undefined) {
        if (st.gets > 0) throw invalidArgument(`Invalid flight: can't read multiple times: ${ticket}`);
      } else if (st.expiresAt < Date.now()) {
        throw invalidArgument(`Invalid flight: expired: ${ticket}`);
      }
      st.gets++;
      const { batch } = int32Batch("number", [index], new arrow.Uint32());
      return Promise.resolve(stream<FlightData>(toFlightData(schema, [batch])));
    }),
    // The scenario's server offers exactly its two actions.
    answer("listActions", () => Promise.resolve(stream(ACTIONS))),
    defineAction("CancelFlightInfo", ACTIONS[0].description, async (body) => {
      const request = proto.CancelFlightInfoRequest.decode(body);
      let status = proto.CancelStatus.CANCEL_STATUS_UNSPECIFIED;
      for (const ep of request.info?.endpoint ?? []) {
        let index: number;
        try {
          index = indexOf(text(ep.ticket?.ticket ?? EMPTY));
        } catch {
          status = proto.CancelStatus.CANCEL_STATUS_NOT_CANCELLABLE;
          continue;
        }
        if (statuses[index].cancelled) status = proto.CancelStatus.CANCEL_STATUS_NOT_CANCELLABLE;
        else {
          statuses[index].cancelled = true;
          if (status === proto.CancelStatus.CANCEL_STATUS_UNSPECIFIED) status = proto.CancelStatus.CANCEL_STATUS_CANCELLED;
        }
      }
      return { body: proto.CancelFlightInfoResult.encode({ status }).finish() };
    }),
    defineAction("RenewFlightEndpoint", ACTIONS[1].description, async (body) => {
      const request = proto.RenewFlightEndpointRequest.decode(body);
      const ep = request.endpoint;
      if (!ep?.ticket) throw invalidArgument("RenewFlightEndpoint: no endpoint ticket");
      const ticket = text(ep.ticket.ticket);
      const index = indexOf(ticket);
      const expiresAt = Date.now() + 10_000;
      statuses[index].expiresAt = expiresAt;
      const renewed: proto.FlightEndpoint = { ...ep, ticket: { ticket: bytes(`${ticket}: renewed (+ 10 seconds)`) }, expirationTime: new Date(expiresAt) };
      return { body: proto.FlightEndpoint.encode(renewed).finish() };
    }),
  ];
};

// ------------------------------------------------------------------ location:reuse_connection

/** One endpoint whose location is the "reuse this connection" URI. */
const locationReuseConnection: ServerScenario = () => [
  answer("getFlightInfo", (call) =>
    Promise.resolve(flightInfo(call.request, new arrow.Schema([]), [endpoint("reuse", { location: [{ uri: "arrow-flight-reuse-connection://?" }] })])),
  ),
];

// ------------------------------------------------------------------ poll_flight_info

/** A first poll answers progress 0.1 and a descriptor to poll again; the command "poll" answers a finished query. */
const pollFlightInfo: ServerScenario = () => [
  answer("pollFlightInfo", (call) => {
    const d = call.request;
    const info = flightInfo(d, int32Batch("number", [], new arrow.Uint32()).schema, [endpoint("long-running query")]);
    const poll: PollInfo = isCmd(d, "poll")
      ? { info, flightDescriptor: undefined, progress: 1.0, expirationTime: undefined }
      : { info, flightDescriptor: { type: DescriptorType.CMD, cmd: bytes("poll"), path: [] }, progress: 0.1, expirationTime: new Date(Date.now() + 10_000) };
    return Promise.resolve(poll);
  }),
];

// ------------------------------------------------------------------ app_metadata_flight_info_endpoint

/** FlightInfo.app_metadata and its one endpoint's app_metadata echo the command. */
const appMetadataFlightInfoEndpoint: ServerScenario = () => [
  answer("getFlightInfo", (call) => {
    const d = call.request;
    if (d.type !== DescriptorType.CMD) return Promise.reject(invalidArgument("should have received CMD descriptor"));
    return Promise.resolve(flightInfo(d, int32Batch("number", [], new arrow.Uint32()).schema, [endpoint(undefined, { appMetadata: d.cmd })], { appMetadata: d.cmd }));
  }),
];

// ------------------------------------------------------------------ session_options

/** The library's session options; the name "lol_invalid" and the value "lol_invalid" are refused. */
const sessionOptionsScenario: ServerScenario = () => [
  sessionOptions({
    validate: (name, value) => (name === "lol_invalid" ? "INVALID_NAME" : value.stringValue === "lol_invalid" ? "INVALID_VALUE" : undefined),
  }),
];

// ------------------------------------------------------------------ do_exchange:echo

/** The library's built-in `echo` exchange (every server has it). */
const doExchangeEcho: ServerScenario = () => [];

export const SERVER_SCENARIOS: Record<ScenarioName, ServerScenario> = {
  "": defaultScenario,
  "auth:basic_proto": authBasicProto,
  middleware: middlewareScenario,
  ordered: orderedScenario,
  "expiration_time:do_get": expirationTime,
  "expiration_time:list_actions": expirationTime,
  "expiration_time:cancel_flight_info": expirationTime,
  "expiration_time:renew_flight_endpoint": expirationTime,
  "location:reuse_connection": locationReuseConnection,
  poll_flight_info: pollFlightInfo,
  app_metadata_flight_info_endpoint: appMetadataFlightInfoEndpoint,
  session_options: sessionOptionsScenario,
  "do_exchange:echo": doExchangeEcho,
};
