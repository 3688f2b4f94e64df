// grpc.health.v1.Health (grpc/grpc doc/health-checking.md), served by the transport next to
// Flight. Its two messages have one field each, so they are written by hand here rather than
// generated: HealthCheckRequest { string service = 1; } and
// HealthCheckResponse { ServingStatus status = 1; }.
import { contiguous, notFound, type Bytes } from "@blackice/flight-core";
import type { TransportMethod } from "./transport";

/** A status the health service reports. */
export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

const STATUS_NUMBER: Record<ServingStatus, number> = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };

/** The gRPC service name. */
export const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= buf.length) throw new Error("truncated varint");
    const b = buf[pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [v, pos];
  }
  throw new Error("varint too long");
}

/** Reads `HealthCheckRequest.service` (unknown fields are skipped, as protobuf requires). */
function decodeRequest(bytes: Bytes): string {
  const buf = contiguous(bytes);
  let pos = 0;
  let service = "";
  while (pos < buf.length) {
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const type = tag & 7;
    if (type === 0) [, pos] = readVarint(buf, pos);
    else if (type === 1) pos += 8;
    else if (type === 5) pos += 4;
    else if (type === 2) {
      let len: number;
      [len, pos] = readVarint(buf, pos);
      if (pos + len > buf.length) throw new Error("field past end of message");
      if (tag >>> 3 === 1) service = Buffer.from(buf.subarray(pos, pos + len)).toString("utf8");
      pos += len;
    } else throw new Error(`wire type ${type}`);
    if (pos > buf.length) throw new Error("truncated message");
  }
  return service;
}

function frame(status: ServingStatus): Uint8Array[] {
  const n = STATUS_NUMBER[status];
  // An enum field at its default (0) is omitted: the message is empty.
  return n === 0 ? [Buffer.from([0, 0, 0, 0, 0])] : [Buffer.from([0, 0, 0, 0, 2, 0x08, n])];
}

/** The health service's statuses, and its methods for a transport. */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<() => void>();

  constructor(initial: Record<string, ServingStatus>) {
    for (const [k, v] of Object.entries(initial)) this.statuses.set(k, v);
  }

  /** Sets the status of `service` ("" is the whole server) and tells every watcher. */
  setStatus(service: string, status: ServingStatus): void {
    this.statuses.set(service, status);
    for (const w of this.watchers) w();
  }

  /** The transport methods, by gRPC path. */
  methods(): Map<string, TransportMethod> {
    const check: TransportMethod = {
      clientStreaming: false,
      serverStreaming: false,
      maxRequestBytes: 64 * 1024,
      decode: decodeRequest,
      encode: (s) => frame(s as ServingStatus),
      handle: async (call) => {
        const status = this.statuses.get(call.request as string);
        if (status === undefined) throw notFound(`unknown service ${JSON.stringify(call.request)}`);
        return status;
      },
    };
    const watch: TransportMethod = {
      ...check,
      serverStreaming: true,
      handle: async (call) => this.watch(call.request as string, call.signal),
    };
    return new Map([
      [`/${HEALTH_SERVICE_NAME}/Check`, check],
      [`/${HEALTH_SERVICE_NAME}/Watch`, watch],
    ]);
  }

  /** Sends the current status, then every change, until the call ends. */
  private async *watch(service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
    let wake: (() => void) | undefined;
    const onChange = (): void => wake?.();
    this.watchers.add(onChange);
    signal.addEventListener("abort", onChange);
    try {
      let last: ServingStatus | undefined;
      while (!signal.aborted) {
        const now = this.statuses.get(service) ?? "SERVICE_UNKNOWN";
        if (now !== last) {
          last = now;
          yield now;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      this.watchers.delete(onChange);
      signal.removeEventListener("abort", onChange);
    }
  }
}
