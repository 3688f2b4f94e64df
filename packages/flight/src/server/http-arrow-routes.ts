import { readFile } from "node:fs/promises";
import * as path from "node:path";
import {
  DescriptorType,
  FlightError,
  StatusCode,
  chunksOf,
  descriptorKey,
  encodeQueryTicket,
  invalidArgument,
  ipcEndOfStream,
  ipcMessagePrefix,
  notFound,
  parseQueryCommand,
  ticketFromKey,
  type FlightData,
  type FlightDescriptor,
  type FlightInfo,
  type FlightStore,
  checkBoolean,
  checkImplements,
  checkObject,
} from "@blackice/flight-core";
import * as pb from "../gen/Flight";
import { FLIGHT_SERVICE_NAME } from "../codec/service-definition";
import { responseWrittenHook, type HttpExchange, type HttpRequestContext, type HttpRoutes } from "../transport/transport";

/** The media type of an Arrow IPC stream (IANA registration of application/vnd.apache.arrow.stream). */
export const ARROW_STREAM_TYPE = "application/vnd.apache.arrow.stream";

const DO_GET = `/${FLIGHT_SERVICE_NAME}/DoGet`;
const LIST_FLIGHTS = `/${FLIGHT_SERVICE_NAME}/ListFlights`;
/** Response bytes queued before the writer waits for the socket. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;
/** The browser page's files (packages/flight/web), next to dist/ and src/. */
const WEB_DIR = path.join(__dirname, "..", "..", "web");
const WEB_FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "flight-web.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

/** Options of {@link httpArrowRoutes}. */
export interface HttpArrowRoutesOptions {
  /** The server's store (`call.store`): only to find the ticket of `/flight/<path>`. */
  store: FlightStore;
  /** Serve the browser page at `/` and `/web/...`. */
  webPage: boolean;
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalidArgument(`path segment ${JSON.stringify(s)} is not valid percent-encoded UTF-8`);
  }
}

function refuseQuery(query: URLSearchParams, allowed: readonly string[]): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) {
      throw invalidArgument(`unknown query parameter ${JSON.stringify(name)}${allowed.length ? `; this route takes ${allowed.join(", ")}` : "; this route takes none"}`);
    }
  }
}

/** A flight of the listing as JSON: what a page needs to show it and fetch it. */
function flightJson(info: FlightInfo): Record<string, unknown> {
  const d = info.flightDescriptor;
  const ticket = info.endpoint[0]?.ticket?.ticket;
  const t = ticket ? Buffer.from(ticket).toString("base64url") : undefined;
  return {
    descriptor: d ? (d.type === DescriptorType.CMD ? { cmd: Buffer.from(d.cmd).toString("base64") } : { path: d.path }) : null,
    totalRecords: Number(info.totalRecords),
    totalBytes: Number(info.totalBytes),
    ...(t !== undefined ? { ticket: t, href: `/ticket/${t}` } : {}),
    ...(info.endpoint[0]?.expirationTime ? { expiresAt: info.endpoint[0].expirationTime.toISOString() } : {}),
  };
}

async function writeAll(ex: HttpExchange, pieces: readonly Uint8Array[], done?: () => void): Promise<void> {
  ex.cork();
  for (let i = 0; i < pieces.length; i++) ex.write(pieces[i]!, i === pieces.length - 1 ? done : undefined);
  ex.uncork();
  if (ex.writableLength >= WRITE_HIGH_WATER) await ex.drained();
}

/**
 * Serves a DoGet's messages as an Arrow IPC stream: for each stored message, the continuation
 * marker, the length and the header with its padding (one small buffer), then the body's
 * chunks as they are stored; the end-of-stream marker last. No Arrow data is decoded, copied
 * or re-encoded. The first message is read before the response begins, so that a refusal
 * (NOT_FOUND, PERMISSION_DENIED...) still gets its HTTP status; a failure after that cuts the
 * response short (no end-of-stream marker), so no reader takes it for the whole flight.
 */
async function serveDoGet(req: HttpRequestContext, ticket: Uint8Array): Promise<void> {
  const ex = req.exchange;
  const response = (await req.invoke(DO_GET, pb.Ticket.encode({ ticket }).finish())) as AsyncIterable<FlightData>;
  let hook = responseWrittenHook(response);
  const iterator = response[Symbol.asyncIterator]();
  try {
    let next = await iterator.next();
    ex.respond(200, { "content-type": ARROW_STREAM_TYPE, "cache-control": "no-store", "x-content-type-options": "nosniff" });
    while (!next.done) {
      if (ex.closed || req.signal.aborted) throw req.signal.reason ?? new FlightError(StatusCode.CANCELLED, "call cancelled by the client");
      const m = next.value;
      const report = hook === undefined ? undefined : () => {
        if (hook?.(m) === false) hook = undefined;
      };
      await writeAll(ex, [ipcMessagePrefix(m.dataHeader), ...chunksOf(m.dataBody)], report);
      next = await iterator.next();
    }
    ex.write(ipcEndOfStream());
    ex.end();
  } finally {
    if (ex.closed || req.signal.aborted) await iterator.return?.();
  }
}

/** `GET /flights?prefix=a/b`: ListFlights as a JSON array, written as the flights come. */
async function serveList(req: HttpRequestContext, query: URLSearchParams): Promise<void> {
  refuseQuery(query, ["prefix"]);
  const prefix = query.get("prefix") ?? "";
  const ex = req.exchange;
  const response = (await req.invoke(LIST_FLIGHTS, pb.Criteria.encode({ expression: Buffer.from(prefix, "utf8") }).finish())) as AsyncIterable<FlightInfo>;
  let first = true;
  for await (const info of response) {
    if (first) ex.respond(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    await writeAll(ex, [Buffer.from(`${first ? "[" : ","}\n${JSON.stringify(flightJson(info))}`)]);
    first = false;
    if (ex.closed) return;
  }
  if (first) ex.respond(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  ex.write(Buffer.from(first ? "[]\n" : "\n]\n"));
  ex.end();
}

/**
 * `?columns=a,b` (or repeated): the query ticket of `query()` (docs/query.md) for those
 * columns of the flight, checked by the same rules as a query descriptor. The DoGet of it is
 * served by `query()`, which the server must have (`--query`); without it the ticket is not
 * one the store knows.
 */
function projectionTicket(path: string[], columns: string[], ticket: Uint8Array): Uint8Array {
  const names = columns.flatMap((c) => c.split(","));
  const command = parseQueryCommand({ type: DescriptorType.CMD, path: [], cmd: Buffer.from(JSON.stringify({ flight: path, columns: names })) });
  return encodeQueryTicket({ ticket, columns: command!.columns });
}

async function serveWebFile(ex: HttpExchange, name: string): Promise<void> {
  let file: string;
  let type: string;
  if (name === "arrow.js") {
    // apache-arrow's self-contained browser build (UMD, sets `window.Arrow`), from the installed package.
    file = require.resolve("apache-arrow/Arrow.es2015.min");
    type = "text/javascript; charset=utf-8";
  } else if (Object.hasOwn(WEB_FILES, name)) {
    file = path.join(WEB_DIR, name);
    type = WEB_FILES[name]!;
  } else {
    throw notFound(`no such file /web/${name}`);
  }
  const body = await readFile(file);
  ex.respond(200, { "content-type": type, "content-length": String(body.byteLength), "cache-control": "no-cache", "x-content-type-options": "nosniff" });
  ex.write(body);
  ex.end();
}

/**
 * Arrow over plain HTTP (see docs/browser.md), served through the same middleware chain as
 * gRPC: each request becomes the Flight call it stands for (DoGet, ListFlights) with the
 * request's headers, peer and client certificate, so authentication, authorization, limits,
 * metrics and logs apply to it as they do to the gRPC call.
 *
 * - `GET /flight/<segment>/<segment>...` (URL-encoded path segments): the flight as
 *   `application/vnd.apache.arrow.stream`; with `?columns=a,b`, only those columns, projected
 *   without decoding by `query()` (which the server must have);
 * - `GET /ticket/<base64url ticket>`: the same, by ticket;
 * - `GET /flights?prefix=a/b`: the listing as JSON;
 * - with `webPage`: the browser page at `/` and its files under `/web/`.
 *
 * @example
 * const transport = new Http2GrpcTransport(settings, methods, hooks, httpArrowRoutes({ store, webPage: true }));
 */
export function httpArrowRoutes(options: HttpArrowRoutesOptions): HttpRoutes {
  const where = "httpArrowRoutes";
  checkObject(where, "options", options, "an object { store, webPage }");
  const store = checkImplements<FlightStore>(where, "store", options.store, ["get", "ticketFor"], "a FlightStore", true);
  const webPage = checkBoolean(where, "webPage", options.webPage);
  return async function httpArrowRoute(req: HttpRequestContext): Promise<void> {
    const ex = req.exchange;
    if (ex.method !== "GET") {
      throw new FlightError(StatusCode.UNIMPLEMENTED, `${ex.method} is not served here; the plain-HTTP routes take GET (gRPC-Web calls POST with application/grpc-web+proto)`);
    }
    const q = ex.url.indexOf("?");
    const pathname = q < 0 ? ex.url : ex.url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : ex.url.slice(q + 1));
    if (pathname === "/flights") return serveList(req, query);
    if (pathname.startsWith("/flight/")) {
      refuseQuery(query, ["columns"]);
      const segments = pathname.slice("/flight/".length).split("/").map(decodeSegment);
      if (segments.some((s) => s === "")) throw invalidArgument("a flight path is one or more non-empty URL-encoded segments: /flight/<segment>/<segment>");
      const descriptor: FlightDescriptor = { type: DescriptorType.PATH, path: segments, cmd: new Uint8Array(0) };
      // The ticket of a stored flight, as the store makes it; for a flight that does not exist,
      // the key-ticket every BlackIce store would give it, so that the DoGet still goes
      // through authentication first and only then answers NOT_FOUND (a caller without
      // credentials learns nothing about which flights exist).
      const flight = await store.get(descriptor);
      const ticket = flight ? store.ticketFor(flight) : ticketFromKey(descriptorKey(descriptor));
      const columns = query.getAll("columns");
      if (columns.length === 0) return serveDoGet(req, ticket);
      return serveDoGet(req, projectionTicket(segments, columns, ticket));
    }
    if (pathname.startsWith("/ticket/")) {
      refuseQuery(query, []);
      const text = pathname.slice("/ticket/".length);
      if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalidArgument("a ticket is base64url (A-Z a-z 0-9 - _, no padding): /ticket/<base64url>");
      return serveDoGet(req, Buffer.from(text, "base64url"));
    }
    if (webPage && (pathname === "/" || pathname === "/index.html")) return serveWebFile(ex, "index.html");
    if (webPage && pathname.startsWith("/web/")) return serveWebFile(ex, pathname.slice("/web/".length));
    throw notFound(`no route ${pathname}; this server serves /flight/<path>, /ticket/<ticket> and /flights${webPage ? " and its page at /" : ""}`);
  };
}
