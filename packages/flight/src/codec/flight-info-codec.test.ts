import type { FlightEndpoint, FlightInfo } from "@blackice/flight-core";
import * as pb from "../gen/Flight";
import { encodeFlightInfoFramed } from "./flight-info-codec";

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const EMPTY = new Uint8Array(0);

function endpoint(over: Partial<FlightEndpoint> = {}): FlightEndpoint {
  return { ticket: { ticket: bytes(1, 2, 3) }, location: [{ uri: "grpc+tcp://127.0.0.1:8815" }], expirationTime: undefined, appMetadata: EMPTY, ...over };
}

function info(over: Partial<FlightInfo> = {}): FlightInfo {
  return {
    schema: bytes(0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8),
    flightDescriptor: { type: 1, cmd: EMPTY, path: ["telemetry", "host-1"] },
    endpoint: [endpoint()],
    totalRecords: 1000,
    totalBytes: 64_000,
    ordered: false,
    appMetadata: EMPTY,
    ...over,
  };
}

/** What the generated encoder writes, with the gRPC prefix in front. */
function reference(i: FlightInfo): Buffer {
  const body = pb.FlightInfo.encode(i).finish();
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

describe("encodeFlightInfoFramed", () => {
  const cases: Array<[string, FlightInfo]> = [
    ["a stored flight's info", info()],
    ["no descriptor, no endpoints, all defaults", { schema: EMPTY, flightDescriptor: undefined, endpoint: [], totalRecords: 0, totalBytes: 0, ordered: false, appMetadata: EMPTY }],
    ["unknown totals (-1) and ordered", info({ totalRecords: -1, totalBytes: -1, ordered: true })],
    ["totals past 2^32 and up to 2^53-1", info({ totalRecords: 2 ** 40 + 3, totalBytes: Number.MAX_SAFE_INTEGER })],
    ["a command descriptor", info({ flightDescriptor: { type: 2, cmd: bytes(0, 1, 2, 255), path: [] } })],
    ["empty, non-ASCII and long path segments", info({ flightDescriptor: { type: 1, cmd: EMPTY, path: ["", "héllo", "日本", "\u{1f680}", "x".repeat(300)] } })],
    ["a lone surrogate in a segment", info({ flightDescriptor: { type: 1, cmd: EMPTY, path: ["a\ud800b"] } })],
    ["an unknown descriptor type and a negative one", info({ flightDescriptor: { type: -3, cmd: EMPTY, path: ["a"] } })],
    ["app_metadata on the info and endpoints", info({ appMetadata: bytes(9, 8, 7), endpoint: [endpoint({ appMetadata: bytes(1) }), endpoint({ ticket: undefined })] })],
    ["endpoints without location, with an empty uri, with several", info({ endpoint: [endpoint({ location: [] }), endpoint({ location: [{ uri: "" }, { uri: "grpc://a" }, { uri: "grpc+tls://b:1" }] })] })],
    ["an empty ticket", info({ endpoint: [endpoint({ ticket: { ticket: EMPTY } })] })],
    ["expiration times: now, whole seconds, the epoch, before the epoch", info({
      endpoint: [
        endpoint({ expirationTime: new Date(1_765_000_000_123) }),
        endpoint({ expirationTime: new Date(1_765_000_000_000) }),
        endpoint({ expirationTime: new Date(0) }),
        endpoint({ expirationTime: new Date(-1_500) }),
      ],
    })],
    ["a large schema (length varint of 3 bytes)", info({ schema: new Uint8Array(70_000).fill(7) })],
  ];
  it.each(cases)("writes %s byte for byte as the generated encoder", (_name, i) => {
    expect(encodeFlightInfoFramed(i).equals(reference(i))).toBe(true);
  });

  it("agrees with the generated encoder on 2000 random infos", () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const rbytes = (): Uint8Array => Uint8Array.from({ length: rnd(3) === 0 ? 0 : rnd(200) }, () => rnd(256));
    const rstring = (): string => String.fromCodePoint(...Array.from({ length: rnd(12) }, () => (rnd(4) === 0 ? 0x80 + rnd(0x3000) : 0x20 + rnd(90))));
    for (let k = 0; k < 2000; k++) {
      const i: FlightInfo = {
        schema: rbytes(),
        flightDescriptor: rnd(4) === 0 ? undefined : { type: rnd(3), cmd: rbytes(), path: Array.from({ length: rnd(4) }, rstring) },
        endpoint: Array.from({ length: rnd(3) }, () => ({
          ticket: rnd(5) === 0 ? undefined : { ticket: rbytes() },
          location: Array.from({ length: rnd(3) }, () => ({ uri: rstring() })),
          expirationTime: rnd(2) === 0 ? undefined : new Date(rnd(2 ** 31) * 1000 + rnd(1000)),
          appMetadata: rbytes(),
        })),
        totalRecords: rnd(4) === 0 ? -1 : rnd(2 ** 31) * rnd(1000),
        totalBytes: rnd(4) === 0 ? 0 : rnd(2 ** 31),
        ordered: rnd(2) === 0,
        appMetadata: rbytes(),
      };
      const mine = encodeFlightInfoFramed(i);
      if (!mine.equals(reference(i))) throw new Error(`case ${k} differs: ${JSON.stringify(i)}`);
    }
  });

  it("decodes back to the same info through the generated decoder", () => {
    const i = info({ endpoint: [endpoint({ expirationTime: new Date(1_765_000_000_123), appMetadata: bytes(5) })], totalRecords: -1 });
    const back = pb.FlightInfo.decode(encodeFlightInfoFramed(i).subarray(5));
    expect(back.flightDescriptor?.path).toEqual(["telemetry", "host-1"]);
    expect(back.endpoint[0]!.expirationTime?.getTime()).toBe(1_765_000_000_123);
    expect(back.totalRecords).toBe(-1);
    expect(Buffer.from(back.endpoint[0]!.ticket!.ticket)).toEqual(Buffer.from([1, 2, 3]));
  });
});
