import { DescriptorType, type FlightDescriptor } from "@blackice/flight-core";

const EMPTY = new Uint8Array(0);

/**
 * A PATH FlightDescriptor from its segments. Each segment is kept as given (no splitting on
 * `/`), because servers compare paths segment by segment.
 *
 * @example
 * await client.putTable(pathDescriptor("telemetry", "host-1"), table);
 * const info = await client.getFlightInfo(pathDescriptor("telemetry", "host-1"));
 */
export function pathDescriptor(...segments: string[]): FlightDescriptor {
  segments.forEach((s, i) => {
    if (typeof s !== "string") throw new TypeError(`pathDescriptor: segment ${i} must be a string, got ${typeof s}`);
  });
  return { type: DescriptorType.PATH, cmd: EMPTY, path: [...segments] };
}

/**
 * A CMD FlightDescriptor: an opaque command, as bytes or as text (sent as UTF-8).
 *
 * @example
 * const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ query: "SELECT 1" })));
 * for await (const m of client.doExchangeRaw(cmdDescriptor("echo"), messages)) handle(m);
 */
export function cmdDescriptor(command: Uint8Array | string): FlightDescriptor {
  if (typeof command === "string") return { type: DescriptorType.CMD, cmd: new Uint8Array(Buffer.from(command, "utf8")), path: [] };
  if (command instanceof Uint8Array) return { type: DescriptorType.CMD, cmd: command, path: [] };
  throw new TypeError(`cmdDescriptor: the command must be a Uint8Array or a string, got ${typeof command}`);
}

/**
 * Fills in a possibly partial descriptor (`{ path: [...] }` or `{ cmd }`), so that callers may
 * pass the short forms; the type is inferred when missing.
 */
export function normalizeDescriptor(d: Partial<FlightDescriptor> | undefined, what = "descriptor"): FlightDescriptor {
  if (d === null || typeof d !== "object") throw new TypeError(`${what} must be a FlightDescriptor (see pathDescriptor/cmdDescriptor), got ${d === null ? "null" : typeof d}`);
  const path = d.path ?? [];
  const cmd = d.cmd ?? EMPTY;
  if (!Array.isArray(path) || !path.every((s) => typeof s === "string")) throw new TypeError(`${what}.path must be an array of strings`);
  if (!(cmd instanceof Uint8Array)) throw new TypeError(`${what}.cmd must be a Uint8Array`);
  const type = d.type ?? (path.length > 0 ? DescriptorType.PATH : cmd.length > 0 ? DescriptorType.CMD : DescriptorType.UNKNOWN);
  if (typeof type !== "number") throw new TypeError(`${what}.type must be a DescriptorType number`);
  return { type, cmd, path };
}
