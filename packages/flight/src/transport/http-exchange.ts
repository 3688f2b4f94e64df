// One HTTP request and its response, the same whether it came over HTTP/1.1 (node:http) or
// HTTP/2 (a node:http2 stream), so that gRPC-Web and the plain-HTTP routes are written once.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { Readable } from "node:stream";
import type { PeerCertificateInfo } from "@blackice/flight-core";

/** A request that is not native gRPC, and the way to answer it. */
export interface HttpExchange {
  readonly protocol: "http/1.1" | "h2";
  /** `GET`, `POST`, ... */
  readonly method: string;
  /** The request target: path and query, as sent. */
  readonly url: string;
  /** Request headers, names lower-cased. */
  readonly headers: http.IncomingHttpHeaders;
  /** `[name, value, name, value, ...]` as received. */
  readonly rawHeaders: readonly string[];
  readonly peer: string;
  readonly peerCertificate: PeerCertificateInfo | undefined;
  /** The request body (paused until read). */
  readonly body: Readable;
  /** Headers added to whatever response is sent (CORS). */
  readonly extraHeaders: Record<string, string>;
  readonly headersSent: boolean;
  /** Sends the status line and headers. */
  respond(status: number, headers: Record<string, string>): void;
  /** Writes response bytes; `done` runs once they reached the socket (not on failure). */
  write(chunk: Uint8Array, done?: () => void): void;
  /** Response bytes queued and not yet handed to the socket. */
  readonly writableLength: number;
  /** Resolves when the queue has drained or the exchange closed. */
  drained(): Promise<void>;
  cork(): void;
  uncork(): void;
  /** Ends the response normally. */
  end(): void;
  /** Ends the response abnormally (HTTP/2 RST_STREAM, HTTP/1.1 connection closed), so the client sees it cut short. */
  abort(): void;
  /** Whether the exchange is over (answered, reset, or the client went away). */
  readonly closed: boolean;
  /** Runs once when the exchange is over. */
  onClose(listener: () => void): void;
}

function drainedOf(emitter: NodeJS.EventEmitter, isClosed: () => boolean): Promise<void> {
  if (isClosed()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      emitter.off("drain", done);
      emitter.off("close", done);
      resolve();
    };
    emitter.on("drain", done);
    emitter.on("close", done);
  });
}

/** An HTTP/2 stream as an {@link HttpExchange}. */
export function exchangeFromStream(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  rawHeaders: string[],
  peer: string,
  peerCertificate: PeerCertificateInfo | undefined,
): HttpExchange {
  stream.on("error", () => undefined);
  const extraHeaders: Record<string, string> = {};
  const isClosed = (): boolean => stream.closed || stream.destroyed;
  return {
    protocol: "h2",
    method: String(headers[":method"] ?? ""),
    url: String(headers[":path"] ?? "/"),
    headers,
    rawHeaders,
    peer,
    peerCertificate,
    body: stream,
    extraHeaders,
    get headersSent() {
      return stream.headersSent;
    },
    respond(status, h) {
      if (isClosed()) return;
      stream.respond({ ...extraHeaders, ...h, ":status": status });
    },
    write(chunk, done) {
      if (isClosed()) return;
      stream.write(chunk, done === undefined ? undefined : (err) => (err ? undefined : done()));
    },
    get writableLength() {
      return stream.writableLength;
    },
    drained: () => drainedOf(stream, isClosed),
    cork: () => stream.cork(),
    uncork: () => stream.uncork(),
    end() {
      if (!isClosed()) stream.end();
    },
    abort() {
      if (!isClosed()) stream.close(2 /* NGHTTP2_INTERNAL_ERROR */);
    },
    get closed() {
      return isClosed();
    },
    onClose(listener) {
      if (isClosed()) queueMicrotask(listener);
      else stream.once("close", listener);
    },
  };
}

/** An HTTP/1.1 request and response as an {@link HttpExchange}. */
export function exchangeFromHttp1(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  peer: string,
  peerCertificate: PeerCertificateInfo | undefined,
): HttpExchange {
  req.on("error", () => undefined);
  res.on("error", () => undefined);
  const extraHeaders: Record<string, string> = {};
  let over = false;
  res.once("close", () => (over = true));
  const isClosed = (): boolean => over || res.destroyed;
  req.pause();
  return {
    protocol: "http/1.1",
    method: req.method ?? "",
    url: req.url ?? "/",
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    peer,
    peerCertificate,
    body: req,
    extraHeaders,
    get headersSent() {
      return res.headersSent;
    },
    respond(status, h) {
      if (isClosed()) return;
      res.writeHead(status, { ...extraHeaders, ...h });
    },
    write(chunk, done) {
      if (isClosed()) return;
      res.write(chunk, done === undefined ? undefined : (err) => (err ? undefined : done()));
    },
    get writableLength() {
      return res.writableLength;
    },
    drained: () => drainedOf(res, isClosed),
    cork: () => res.cork(),
    uncork: () => res.uncork(),
    end() {
      if (!isClosed()) res.end();
    },
    abort() {
      // The only way HTTP/1.1 says "this body is incomplete" is to close the connection.
      res.destroy();
      req.socket.destroy();
    },
    get closed() {
      return isClosed();
    },
    onClose(listener) {
      if (isClosed()) queueMicrotask(listener);
      else res.once("close", listener);
    },
  };
}
