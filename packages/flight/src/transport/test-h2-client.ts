// Test helper: a raw HTTP/2 gRPC client that sends exactly the bytes a test gives it, so
// transport tests can send what no well-behaved gRPC client would (bad prefixes, stalls).
import * as http2 from "node:http2";

/** One gRPC frame: the 5-byte prefix and the message. */
export function grpcFrame(message: Uint8Array, flag = 0): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([prefix, message]);
}

/** What a raw call saw. */
export interface RawOutcome {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  /** grpc-status from the trailers, or from a trailers-only response. */
  status: number | undefined;
  message: string | undefined;
  /** Milliseconds from the request to the end of the response. */
  elapsedMs: number;
  /** Milliseconds from the request to the status (trailers, or a trailers-only response). */
  statusMs: number | undefined;
}

/** Options of {@link rawGrpcCall}. */
export interface RawCallOptions {
  headers?: http2.OutgoingHttpHeaders;
  /** Written in order; each may be a part of a frame. */
  writes?: Uint8Array[];
  /** End the request side after the writes (default true). */
  end?: boolean;
  session?: http2.ClientHttp2Session;
}

/** Opens a session to 127.0.0.1:port. */
export function connect(port: number): http2.ClientHttp2Session {
  // A large maxSessionMemory: Node would otherwise reset a stream with a big unsent request body.
  const s = http2.connect(`http://127.0.0.1:${port}`, { maxSessionMemory: 1024 });
  s.on("error", () => undefined);
  return s;
}

/** Makes one call with the given bytes and resolves when the response ended (or the stream closed). */
export function rawGrpcCall(port: number, path: string, opts: RawCallOptions = {}): Promise<RawOutcome> {
  const own = !opts.session;
  const session = opts.session ?? connect(port);
  const started = performance.now();
  return new Promise<RawOutcome>((resolve) => {
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...opts.headers });
    req.on("error", () => undefined);
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const data: Buffer[] = [];
    let statusMs: number | undefined;
    req.on("response", (h) => {
      headers = h;
      if (h["grpc-status"] !== undefined) statusMs = performance.now() - started;
    });
    req.on("trailers", (t) => {
      trailers = t;
      statusMs = performance.now() - started;
    });
    req.on("data", (c: Buffer) => data.push(c));
    req.on("close", () => {
      const statusText = trailers["grpc-status"] ?? headers["grpc-status"];
      const message = trailers["grpc-message"] ?? headers["grpc-message"];
      if (own) session.close();
      resolve({
        headers,
        trailers,
        data: Buffer.concat(data),
        status: statusText === undefined ? undefined : Number(statusText),
        message: message === undefined ? undefined : decodeURIComponent(String(message)),
        elapsedMs: performance.now() - started,
        statusMs,
      });
    });
    for (const w of opts.writes ?? []) req.write(w);
    if (opts.end ?? true) req.end();
  });
}
