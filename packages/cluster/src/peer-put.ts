import * as http2 from "node:http2";
import { FlightError, StatusCode, type FlightData, type FlightDescriptor, type StreamSealer } from "@blackice/flight-core";
import { parseLocation, proto as pb, type FlightClientOptions } from "@blackice/flight";
import { flightDataPieces, percentDecode } from "@blackice/flight/internal";

const DO_PUT_PATH = "/arrow.flight.protocol.FlightService/DoPut";
const EMPTY = new Uint8Array(0);

/**
 * The DoPut streams of one node to another (replica puts and re-replication copies), written
 * straight on `node:http2`. Hand-written rather than through the grpc-js `FlightClient`: a
 * replicated put streams every byte of the flight through this path, and grpc-js copies each
 * message twice (our codec concatenates its pieces into one Buffer, grpc-js copies that into
 * its framed message) and writes one message at a time, waiting for each to be flushed; here a
 * message goes out as its pieces (the 5-byte prefix, the protobuf fields, the body chunks as
 * they were received) with no copy. With grpc-js the replica stream was the bottleneck of a
 * put that has a remote holder (docs/cluster.md, benchmark). It speaks only what the server
 * transport of another BlackIce node needs: a DoPut, its trailers, TLS or mTLS, the signer
 * (HMAC) and headers of the cluster's peer options.
 */
export class PeerPutClient {
  private session: http2.ClientHttp2Session | undefined;
  private readonly authority: string;
  private readonly secure: boolean;

  constructor(
    readonly location: string,
    private readonly options: FlightClientOptions,
  ) {
    const parsed = parseLocation(location);
    this.secure = parsed.tls || options.tls !== undefined;
    this.authority = `${this.secure ? "https" : "http"}://${parsed.target}`;
  }

  private connect(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const tls = this.options.tls ?? {};
    const session = http2.connect(this.authority, {
      settings: { initialWindowSize: 16 * 1024 * 1024 },
      ...(this.secure ? { ca: tls.rootCerts, cert: tls.cert, key: tls.key, servername: tls.serverNameOverride, ALPNProtocols: ["h2"] } : {}),
    });
    session.on("error", () => undefined); // each stream reports its own failure
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
    });
    session.on("goaway", () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }

  /**
   * Streams `messages` (the first gets the descriptor) as a DoPut and resolves when the peer
   * answered OK (it committed). Rejects with the peer's status as a FlightError, UNAVAILABLE
   * when the connection fails, or CANCELLED when `signal` aborts: the stream is then reset, so
   * the peer aborts its put (a stream that ended would commit it).
   */
  async put(descriptor: FlightDescriptor, messages: AsyncIterable<Partial<FlightData>>, headers: Record<string, string>, signal?: AbortSignal): Promise<void> {
    const requestHeaders: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": DO_PUT_PATH,
      "content-type": "application/grpc",
      te: "trailers",
      ...this.options.metadata,
      ...headers,
    };
    let sealer: StreamSealer | undefined;
    const signer = this.options.signer;
    if (signer) {
      const signable = { path: DO_PUT_PATH, descriptor: pb.FlightDescriptor.encode(descriptor).finish() };
      let signed: Record<string, string>;
      if (typeof signer.signStream === "function") {
        const s = await signer.signStream(signable);
        signed = s.headers;
        sealer = s.sealer;
      } else {
        signed = await signer(signable);
      }
      Object.assign(requestHeaders, signed);
    }
    if (this.options.tls?.serverNameOverride) requestHeaders[":authority"] = this.options.tls.serverNameOverride;
    if (signal?.aborted) throw new FlightError(StatusCode.CANCELLED, "the put was cancelled");

    const stream = this.connect().request(requestHeaders);
    return new Promise<void>((resolve, reject) => {
      let status: string | undefined;
      let message = "";
      let settled = false;
      const settle = (err?: FlightError): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else resolve();
      };
      const onAbort = (): void => settle(new FlightError(StatusCode.CANCELLED, "the put was cancelled"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const statusOf = (h: http2.IncomingHttpHeaders): void => {
        if (h["grpc-status"] !== undefined) {
          status = String(h["grpc-status"]);
          message = percentDecode(String(h["grpc-message"] ?? ""));
        }
      };
      stream.on("response", statusOf);
      stream.on("trailers", statusOf);
      stream.on("data", () => undefined); // PutResults: nothing to do with them
      stream.on("error", (err: Error) => settle(new FlightError(StatusCode.UNAVAILABLE, err.message, { cause: err })));
      stream.on("close", () => {
        if (status === "0") settle();
        else if (status !== undefined) settle(new FlightError(Number(status) as StatusCode, message));
        else settle(new FlightError(StatusCode.UNAVAILABLE, `the stream to ${this.location} closed without a status (HTTP/2 code ${stream.rstCode})`));
      });

      void (async () => {
        let first = true;
        const write = async (m: Partial<FlightData>, seal = false): Promise<void> => {
          const data: FlightData = {
            flightDescriptor: first ? descriptor : undefined,
            dataHeader: m.dataHeader ?? EMPTY,
            dataBody: m.dataBody ?? EMPTY,
            appMetadata: m.appMetadata ?? EMPTY,
          };
          first = false;
          if (!seal) sealer?.update(data);
          let ok = true;
          stream.cork();
          for (const piece of flightDataPieces(data, true)) ok = stream.write(piece) && ok;
          stream.uncork();
          if (!ok) await new Promise<void>((r) => {
            const done = (): void => {
              stream.off("drain", done);
              stream.off("close", done);
              r();
            };
            stream.on("drain", done);
            stream.on("close", done);
          });
        };
        for await (const m of messages) {
          if (settled || stream.closed) return;
          await write(m);
        }
        if (settled || stream.closed) return;
        // The trailing message carries the seal of the others (see hmacSigner v2).
        if (sealer) await write({ dataHeader: EMPTY, dataBody: EMPTY, appMetadata: sealer.seal() }, true);
        stream.end();
      })().catch((err: unknown) => settle(FlightError.from(err, StatusCode.UNAVAILABLE)));
    });
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}
