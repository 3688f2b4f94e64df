// A man in the middle for gRPC over cleartext HTTP/2: it relays every call to the upstream
// server, and for the calls whose path `tamper` handles, collects the request's gRPC messages
// (5-byte length-prefixed frames) and sends `tamper(messages)` upstream instead; for the calls
// whose path `responseTamperOf` handles, it does the same to the response messages on their
// way back. Requests and responses are held whole: for tests with small calls only.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

/** Rewrites a call's request messages (each a serialized protobuf message, without its prefix). */
export type MessageTamper = (messages: Buffer[]) => Buffer[];

function splitFrames(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0; pos < data.length; ) {
    const len = data.readUInt32BE(pos + 1);
    out.push(data.subarray(pos + 5, pos + 5 + len));
    pos += 5 + len;
  }
  return out;
}

function joinFrames(messages: Buffer[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => [Buffer.from([0, (m.length >>> 24) & 255, (m.length >>> 16) & 255, (m.length >>> 8) & 255, m.length & 255]), m]));
}

/**
 * Starts the proxy on a free port of 127.0.0.1; `tamperOf(path)` gives the tamper of a call's
 * request, `responseTamperOf(path)` that of its response, or undefined to relay it as it is.
 */
export async function startGrpcMitm(
  upstreamPort: number,
  tamperOf: (path: string) => MessageTamper | undefined,
  responseTamperOf: (path: string) => MessageTamper | undefined = () => undefined,
): Promise<{ port: number; close: () => Promise<void> }> {
  const upstream = http2.connect(`http://127.0.0.1:${upstreamPort}`);
  upstream.on("error", () => undefined);
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const path = String(headers[":path"]);
    const forward: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": path };
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(":")) forward[k] = v;
    const chunks: Buffer[] = [];
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("error", () => undefined);
    stream.on("end", () => {
      const tamper = tamperOf(path);
      const body = Buffer.concat(chunks);
      const req = upstream.request(forward);
      req.on("error", () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const data: Buffer[] = [];
      req.on("response", (h) => (responseHeaders = h));
      req.on("data", (d: Buffer) => data.push(d));
      req.on("trailers", (t) => (trailers = t));
      req.on("end", () => {
        const responseTamper = responseTamperOf(path);
        if (responseTamper && data.length > 0) data.splice(0, data.length, joinFrames(responseTamper(splitFrames(Buffer.concat(data)))));
        const strip = (h: http2.IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== ":status" || h === responseHeaders));
        if (trailers === undefined) {
          stream.respond(strip(responseHeaders), { endStream: data.length === 0 });
          if (data.length > 0) stream.end(Buffer.concat(data));
          return;
        }
        const t = Object.fromEntries(Object.entries(trailers).filter(([k]) => !k.startsWith(":")));
        stream.respond(strip(responseHeaders), { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers(t));
        stream.end(Buffer.concat(data));
      });
      req.end(tamper ? joinFrames(tamper(splitFrames(body))) : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        upstream.close();
        server.close(() => resolve());
      }),
  };
}
