// The client side of every integration scenario. Each checks what arrow-go's RunClient of the
// same scenario checks (arrow/internal/flight_integration/scenario.go), and throws a
// ScenarioFailure naming the first thing that differs.

import * as fs from "node:fs";
import * as arrow from "apache-arrow";
import { DescriptorType, MessageKind, StatusCode, FlightError, contiguous, readMessageHeader, type Bytes, type FlightData, type FlightDescriptor, type FlightEndpoint } from "@blackice/flight-core";
import { cookieMiddleware, proto, type ClientMiddleware } from "@blackice/flight";
import { diffBatches, plain } from "./compare";
import { fromFlightData, toFlightData } from "./flight-data";
import { parseIntegrationJson, readIntegrationJson, unsupportedTypes } from "./json-reader";
import { LibraryGapError, type ScenarioName } from "./scenario-names";
import { connect, type ScenarioClient } from "./scenario-client";

/** A check of the scenario failed. */
export class ScenarioFailure extends Error {
  override readonly name = "ScenarioFailure";
}

export interface ClientScenarioOptions {
  /** `host:port` of the server. */
  address: string;
  /** The integration JSON file of the default scenario. */
  path?: string;
}

export type ClientScenario = (o: ClientScenarioOptions) => Promise<void>;

const EMPTY = new Uint8Array(0);
const bytes = (s: string): Uint8Array => Buffer.from(s, "utf8");
const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? EMPTY).toString("utf8");
const cmd = (c: string): FlightDescriptor => ({ type: DescriptorType.CMD, cmd: bytes(c), path: [] });

function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new ScenarioFailure(message);
}

async function withClient<T>(address: string, middleware: ClientMiddleware[], f: (c: ScenarioClient) => Promise<T>): Promise<T> {
  const client = connect(address, middleware);
  try {
    return await f(client);
  } finally {
    client.close();
  }
}

/** Runs a call that must fail; returns its error. */
async function mustFail(what: string, f: () => Promise<unknown>): Promise<FlightError> {
  try {
    await f();
  } catch (err) {
    if (err instanceof LibraryGapError) throw err;
    return err instanceof FlightError ? err : FlightError.from(err);
  }
  throw new ScenarioFailure(`${what} succeeded, expected it to fail`);
}

/** Reads every endpoint (no locations: this server) and returns the batches, in order. */
async function readEndpoints(client: ScenarioClient, endpoints: FlightEndpoint[]): Promise<{ schema?: arrow.Schema; batches: arrow.RecordBatch[] }> {
  let schema: arrow.Schema | undefined;
  const batches: arrow.RecordBatch[] = [];
  for (const ep of endpoints) {
    check(ep.location.length === 0, `expected endpoints without locations (use the original service), got ${JSON.stringify(ep.location)}`);
    check(ep.ticket, "endpoint without a ticket");
    const got = fromFlightData(await client.doGet(ep.ticket));
    schema ??= got.schema;
    batches.push(...got.batches);
  }
  return { schema, batches };
}

/** Compares the values of one column "number" across batches with the expected chunks. */
function checkNumbers(got: { batches: arrow.RecordBatch[] }, expected: number[][], type: string): void {
  check(got.batches.length === expected.length, `got ${got.batches.length} batches, expected ${expected.length}`);
  got.batches.forEach((b, i) => {
    const f = b.schema.fields;
    check(f.length === 1 && f[0].name === "number" && String(f[0].type) === type, `batch ${i} has schema ${b.schema}, expected number: ${type}`);
    const values = plain(b.getChildAt(0)!.toArray()) as number[];
    check(JSON.stringify(values) === JSON.stringify(expected[i]), `batch ${i} is ${JSON.stringify(values)}, expected ${JSON.stringify(expected[i])}`);
  });
}

// ------------------------------------------------------------------ default

/**
 * DoPut the JSON file's batches under the descriptor path [file], each with app_metadata
 * "<index>" that the server must acknowledge in order; then GetFlightInfo and DoGet every
 * endpoint at every location, and compare type for type, value for value, app_metadata too.
 */
const defaultScenario: ClientScenario = async ({ address, path }) => {
  check(path, "the default scenario needs --path FILE.json");
  const expected = readIntegrationJson(fs.readFileSync(path, "utf8"));
  const descriptor: FlightDescriptor = { type: DescriptorType.PATH, cmd: EMPTY, path: [path] };
  await withClient(address, [], async (client) => {
    const put = client.doPut(descriptor);
    const messages = toFlightData(expected.schema, expected.batches, (i) => bytes(String(i)));
    let batch = 0;
    for (const m of messages) {
      await put.write(m);
      if (m.appMetadata.length === 0) continue; // schema or dictionary batch: no acknowledgement
      const ack = await put.nextAck();
      check(ack && ack.appMetadata.length > 0, `expected metadata value: ${batch}, but got nothing`);
      check(text(ack.appMetadata) === String(batch), `expected metadata value: ${batch}, but got: ${text(ack.appMetadata)}`);
      batch++;
    }
    put.end();
    for (let extra = await put.nextAck(); extra; extra = await put.nextAck()) {
      throw new ScenarioFailure(`unexpected extra PutResult ${JSON.stringify(text(extra.appMetadata))}`);
    }

    const info = await client.getFlightInfo(descriptor);
    check(info.endpoint.length > 0, "no endpoints returned from flight server");
    for (const ep of info.endpoint) {
      check(ep.location.length > 0, "no locations returned from flight server");
      check(ep.ticket, "endpoint without a ticket");
      for (const loc of ep.location) {
        const other = client.forLocation(loc.uri);
        try {
          const got = fromFlightData(await other.doGet(ep.ticket));
          const diff = diffBatches(expected, got);
          if (diff) throw new ScenarioFailure(`DoGet from ${loc.uri}: ${diff}`);
          got.appMetadata.forEach((m, i) => check(text(m) === String(i), `DoGet batch ${i}: expected metadata value: ${i}, but got: ${text(m)}`));
        } finally {
          other.close();
        }
      }
    }
  });
};

/**
 * The read-back half of the default scenario, for a flight another client stored (the Go
 * client ignores the errors of its own DoGet checks): GetFlightInfo of [file], DoGet at every
 * location, and compare with the file. Types apache-arrow JS cannot decode (list_view,
 * run_end_encoded) are compared by structure only: record batch count, rows per batch (from
 * the IPC headers) and app_metadata; every other type value for value.
 */
export const verifyStoredFlight: ClientScenario = async ({ address, path }) => {
  check(path, "--verify-stored needs --path FILE.json");
  const json = parseIntegrationJson(fs.readFileSync(path, "utf8"));
  const decodable = unsupportedTypes(json).length === 0;
  const expected = decodable ? readIntegrationJson(json) : undefined;
  const rows = json.batches.map((b) => b.count);
  const descriptor: FlightDescriptor = { type: DescriptorType.PATH, cmd: EMPTY, path: [path] };
  await withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(descriptor);
    const total = rows.reduce((a, b) => a + b, 0);
    check(info.totalRecords === -1 || info.totalRecords === total, `FlightInfo.total_records is ${info.totalRecords}, the file has ${total} rows`);
    check(info.endpoint.length > 0, "no endpoints returned from flight server");
    for (const ep of info.endpoint) {
      check(ep.location.length > 0, "no locations returned from flight server");
      check(ep.ticket, "endpoint without a ticket");
      for (const loc of ep.location) {
        const other = client.forLocation(loc.uri);
        try {
          const messages = await other.doGet(ep.ticket);
          const batches = messages.filter((m) => m.dataHeader.length > 0 && readMessageHeader(m.dataHeader, m.dataBody).kind === MessageKind.RECORD_BATCH);
          check(batches.length === rows.length, `DoGet from ${loc.uri}: ${batches.length} record batches, the file has ${rows.length}`);
          batches.forEach((m, i) => {
            const n = readMessageHeader(m.dataHeader, m.dataBody).rows;
            check(n === rows[i], `DoGet batch ${i}: ${n} rows, the file has ${rows[i]}`);
            check(text(m.appMetadata) === String(i), `DoGet batch ${i}: expected metadata value: ${i}, but got: ${text(m.appMetadata)}`);
          });
          if (expected) {
            const diff = diffBatches(expected, fromFlightData(messages));
            if (diff) throw new ScenarioFailure(`DoGet from ${loc.uri}: ${diff}`);
          }
        } finally {
          other.close();
        }
      }
    }
  });
};

// ------------------------------------------------------------------ auth:basic_proto

/**
 * Arrow's Handshake auth: DoAction before the Handshake is UNAUTHENTICATED; the Handshake
 * sends a BasicAuth ("arrow" / "flight") and gets a token back, which goes on every later call
 * as `auth-token-bin`; DoAction (an empty Action, as arrow-go sends it) then returns "arrow".
 */
const authBasicProto: ClientScenario = async ({ address }) => {
  await withClient(address, [], async (client) => {
    const err = await mustFail("DoAction before Handshake", () => client.doAction({ type: "", body: EMPTY }));
    check(err.code === StatusCode.UNAUTHENTICATED, `expected UNAUTHENTICATED before Handshake, got code ${err.code}: ${err.message}`);
    const payload = proto.BasicAuth.encode({ username: "arrow", password: "flight" }).finish();
    const responses = await client.handshake([{ protocolVersion: 0, payload }]);
    check(responses.length === 1, `Handshake answered ${responses.length} messages, expected 1 (the token)`);
    const token = responses[0].payload;
    const results = await client.doAction({ type: "", body: EMPTY }, { "auth-token-bin": token });
    check(results.length === 1, `action result stream had ${results.length} entries, expected 1`);
    check(text(results[0].body) === "arrow", `got wrong result: expected: arrow, got: ${text(results[0].body)}`);
  });
};

// ------------------------------------------------------------------ middleware

const middlewareScenario: ClientScenario = async ({ address }) => {
  let received: string | undefined;
  // As arrow-go's testClientMiddleware: x-middleware on every call, read back from the response
  // headers (of a failed call answered with trailers only, FlightClient passes the trailers).
  const mw: ClientMiddleware = {
    startCall: () => ({
      sendingHeaders: () => ({ "x-middleware": "expected value" }),
      receivedHeaders(md) {
        const v = md.get("x-middleware")?.[0];
        if (v !== undefined) received = typeof v === "string" ? v : text(v);
      },
    }),
  };
  await withClient(address, [mw], async (client) => {
    await mustFail("GetFlightInfo of an unknown command", () => client.getFlightInfo(cmd("")));
    check(received === "expected value", `expected to receive header 'x-middleware: expected value' on the failing call, but instead got ${received}`);
    received = undefined;
    await client.getFlightInfo(cmd("success"));
    check(received === "expected value", `expected to receive header 'x-middleware: expected value' on the passing call, but instead got ${received}`);
  });
};

// ------------------------------------------------------------------ ordered

const orderedScenario: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(cmd("ordered"));
    check(info.ordered, "expected to server return FlightInfo.ordered = true");
    checkNumbers(await readEndpoints(client, info.endpoint), [[1, 2, 3], [10, 20, 30], [100, 200, 300]], "Int32");
  });

// ------------------------------------------------------------------ expiration_time:*

const expirationDoGet: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(cmd("expiration_time"));
    info.endpoint.forEach((ep, i) => {
      if (i === 0) check(ep.expirationTime === undefined, "endpoints[0] must not have expiration time");
      else check(ep.expirationTime !== undefined, `endpoints[${i}] must have expiration time`);
    });
    checkNumbers(await readEndpoints(client, info.endpoint), [[0], [1], [2]], "Uint32");
  });

const expirationListActions: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const names = (await client.listActions()).map((a) => a.type).sort();
    check(JSON.stringify(names) === JSON.stringify(["CancelFlightInfo", "RenewFlightEndpoint"]), `action types aren't expected: ${JSON.stringify(names)}`);
  });

const expirationCancel: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(cmd("expiration_time"));
    const body = proto.CancelFlightInfoRequest.encode({ info }).finish();
    const results = await client.doAction({ type: "CancelFlightInfo", body });
    check(results.length === 1, `CancelFlightInfo answered ${results.length} results, expected 1`);
    const { status } = proto.CancelFlightInfoResult.decode(results[0].body);
    check(status === proto.CancelStatus.CANCEL_STATUS_CANCELLED, `invalid: CancelFlightInfo must return CANCEL_STATUS_CANCELLED: ${proto.CancelStatus[status]}`);
    for (const ep of info.endpoint) {
      await mustFail("DoGet after CancelFlightInfo", async () => fromFlightData(await client.doGet(ep.ticket!)));
    }
  });

const expirationRenew: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(cmd("expiration_time"));
    for (const ep of info.endpoint) {
      if (ep.expirationTime === undefined) continue;
      const body = proto.RenewFlightEndpointRequest.encode({ endpoint: ep }).finish();
      const results = await client.doAction({ type: "RenewFlightEndpoint", body });
      check(results.length === 1, `RenewFlightEndpoint answered ${results.length} results, expected 1`);
      const renewed = proto.FlightEndpoint.decode(results[0].body);
      check(renewed.expirationTime, "renewed endpoint must have expiration time");
      check(renewed.expirationTime.getTime() > ep.expirationTime.getTime(), `renewed endpoint must have newer expiration time: ${ep.expirationTime.toISOString()} -> ${renewed.expirationTime.toISOString()}`);
    }
  });

// ------------------------------------------------------------------ location:reuse_connection

const REUSE = "arrow-flight-reuse-connection://?";

const locationReuseConnection: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(cmd("reuse"));
    check(info.endpoint.length === 1, `expected 1 endpoint, got ${info.endpoint.length}`);
    const loc = info.endpoint[0].location;
    check(loc.length === 1, `expected 1 location, got ${loc.length}`);
    check(loc[0].uri === REUSE, `expected ${REUSE}, got ${loc[0].uri}`);
  });

// ------------------------------------------------------------------ poll_flight_info

const pollFlightInfo: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const first = await client.pollFlightInfo(cmd("heavy query"));
    check(first.flightDescriptor, "description is missing");
    check(first.progress !== undefined, "progress is missing");
    check(first.progress >= 0 && first.progress <= 1, `invalid progress: ${first.progress}`);
    check(first.expirationTime, "expiration time is missing");
    const done = await client.pollFlightInfo(first.flightDescriptor);
    check(done.flightDescriptor === undefined, "retried but not finished yet");
    check(done.progress !== undefined, "progress is missing in finished query");
    check(Math.abs(done.progress - 1) <= 1e-5, `progress for finished query isn't 1.0: ${done.progress}`);
    check(done.expirationTime === undefined, "expiration time must not be set for finished query");
  });

// ------------------------------------------------------------------ app_metadata_flight_info_endpoint

const appMetadataFlightInfoEndpoint: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const info = await client.getFlightInfo(cmd("foobar"));
    check(text(info.appMetadata) === "foobar", `invalid flight info app_metadata: ${text(info.appMetadata)}, expected: foobar`);
    check(info.endpoint.length === 1, `expected exactly 1 flight endpoint, got: ${info.endpoint.length}`);
    check(text(info.endpoint[0].appMetadata) === "foobar", `invalid flight endpoint app_metadata: ${text(info.endpoint[0].appMetadata)}, expected: foobar`);
  });

// ------------------------------------------------------------------ session_options

type OptionValue = proto.SessionOptionValue;
const STRING_LIST = ["a", "b", "sea", "dee", " ", "  ", "geee", "(づ｡◕‿‿◕｡)づ"];

/** Compares option maps by name and by the one value field each sets. */
function sameOptions(got: Record<string, OptionValue>, expected: Record<string, OptionValue>): string | undefined {
  const canonical = (o: Record<string, OptionValue>): string =>
    JSON.stringify(
      Object.keys(o)
        .sort()
        .map((k) => [k, Object.fromEntries(Object.entries(o[k]).filter(([, v]) => v !== undefined))]),
    );
  const a = canonical(got);
  const b = canonical(expected);
  return a === b ? undefined : `session options are ${a}, expected ${b}`;
}

const sessionOptionsScenario: ClientScenario = async ({ address }) =>
  withClient(address, [cookieMiddleware()], async (client) => {
    const action = async <T>(type: string, body: Uint8Array, decode: (b: Uint8Array) => T): Promise<T> => {
      const results = await client.doAction({ type, body });
      check(results.length === 1, `${type} answered ${results.length} results, expected 1`);
      return decode(results[0].body);
    };
    const getOptions = () => action("GetSessionOptions", proto.GetSessionOptionsRequest.encode({}).finish(), (b) => proto.GetSessionOptionsResult.decode(b).sessionOptions);
    const setOptions = (o: Record<string, OptionValue>) =>
      action("SetSessionOptions", proto.SetSessionOptionsRequest.encode({ sessionOptions: o }).finish(), (b) => proto.SetSessionOptionsResult.decode(b).errors);

    // 1: a new session is empty
    const first = await getOptions();
    check(Object.keys(first).length === 0, `expected new session to be empty, but found ${Object.keys(first).length} options already set`);
    // 2: set five, two refused
    const errors = await setOptions({
      foolong: { int64Value: 123 },
      bardouble: { doubleValue: 456.0 },
      lol_invalid: { stringValue: "this won't get set" },
      key_with_invalid_value: { stringValue: "lol_invalid" },
      big_ol_string_list: { stringListValue: { values: STRING_LIST } },
    });
    const E = proto.SetSessionOptionsResult_ErrorValue;
    const gotErrors = Object.fromEntries(Object.entries(errors).map(([k, v]) => [k, E[v.value]]));
    check(
      JSON.stringify(Object.entries(gotErrors).sort()) === JSON.stringify([["key_with_invalid_value", "INVALID_VALUE"], ["lol_invalid", "INVALID_NAME"]]),
      `SetSessionOptions errors are ${JSON.stringify(gotErrors)}, expected lol_invalid: INVALID_NAME, key_with_invalid_value: INVALID_VALUE`,
    );
    // 3: the three valid ones are set
    const all = { foolong: { int64Value: 123 }, bardouble: { doubleValue: 456.0 }, big_ol_string_list: { stringListValue: { values: STRING_LIST } } };
    const third = sameOptions(await getOptions(), all);
    check(!third, `after SetSessionOptions: ${third}`);
    // 4: unset one
    const removed = await setOptions({ foolong: {} });
    check(Object.keys(removed).length === 0, `errors expected: 0, got: ${Object.keys(removed).length}`);
    // 5: it is gone
    const fifth = sameOptions(await getOptions(), { bardouble: all.bardouble, big_ol_string_list: all.big_ol_string_list });
    check(!fifth, `after unsetting foolong: ${fifth}`);
    // 6: close
    const closed = await action("CloseSession", proto.CloseSessionRequest.encode({}).finish(), (b) => proto.CloseSessionResult.decode(b).status);
    check(closed === proto.CloseSessionResult_Status.CLOSED, `expected session to successfully close, but found status: ${proto.CloseSessionResult_Status[closed]}`);
  });

// ------------------------------------------------------------------ do_exchange:echo

/**
 * DoExchange with the command "echo": a schema, three batches with app_metadata and a
 * metadata-only message come back exactly as sent.
 */
const doExchangeEcho: ClientScenario = async ({ address }) =>
  withClient(address, [], async (client) => {
    const field = new arrow.Field("x", new arrow.Int32(), true);
    const schema = new arrow.Schema([field]);
    const batches = [[1, 2], [3], [4, 5, 6]].map((v) => new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct([field]), length: v.length, nullCount: 0, children: [arrow.makeData({ type: new arrow.Int32(), length: v.length, nullCount: 0, data: Int32Array.from(v) })] })));
    const sent: FlightData[] = toFlightData(schema, batches, (i) => bytes(`m${i}`));
    sent.push({ flightDescriptor: undefined, dataHeader: EMPTY, dataBody: EMPTY, appMetadata: bytes("metadata only") });
    const got = await client.doExchange(cmd("echo"), sent);
    check(got.length === sent.length, `echo returned ${got.length} messages, sent ${sent.length}`);
    got.forEach((m, i) => {
      const same = (a: Bytes, b: Bytes): boolean => Buffer.from(contiguous(a)).equals(Buffer.from(contiguous(b)));
      check(same(m.dataHeader, sent[i].dataHeader) && same(m.dataBody, sent[i].dataBody) && same(m.appMetadata, sent[i].appMetadata), `echoed message ${i} differs from the one sent`);
    });
  });

export const CLIENT_SCENARIOS: Record<ScenarioName, ClientScenario> = {
  "": defaultScenario,
  "auth:basic_proto": authBasicProto,
  middleware: middlewareScenario,
  ordered: orderedScenario,
  "expiration_time:do_get": expirationDoGet,
  "expiration_time:list_actions": expirationListActions,
  "expiration_time:cancel_flight_info": expirationCancel,
  "expiration_time:renew_flight_endpoint": expirationRenew,
  "location:reuse_connection": locationReuseConnection,
  poll_flight_info: pollFlightInfo,
  app_metadata_flight_info_endpoint: appMetadataFlightInfoEndpoint,
  session_options: sessionOptionsScenario,
  "do_exchange:echo": doExchangeEcho,
};
