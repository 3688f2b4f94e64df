import { checkInt } from "@blackice/flight-core";
/** A Flight location, parsed into what grpc-js needs to open a channel. */
export interface ParsedLocation {
  /** The scheme as written (`grpc+tcp`, `grpc`, `grpc+tls`), or `undefined` for a bare `host:port`. */
  readonly scheme: "grpc+tcp" | "grpc" | "grpc+tls" | undefined;
  /** The host, without IPv6 brackets. */
  readonly host: string;
  /** The port, 1..65535. */
  readonly port: number;
  /** The grpc-js target: `host:port`, or `[v6]:port`. */
  readonly target: string;
  /** True when the scheme asks for TLS (`grpc+tls`). A bare `host:port` is `false` here; the `tls` option can still turn TLS on. */
  readonly tls: boolean;
}

// Schemes of the Arrow Flight URI convention that name a TCP endpoint. `grpc://` is Arrow's
// alias of `grpc+tcp://`. Unix sockets (`grpc+unix://`) are not supported by this client.
const LOCATION = /^(?:(grpc\+tcp|grpc\+tls|grpc):\/\/)?(\[[^\]\s/]+\]|[A-Za-z0-9_.-]+):(\d{1,5})\/?$/;

/**
 * Parses a Flight location: `grpc+tcp://host:port`, `grpc://host:port`,
 * `grpc+tls://host:port` or a bare `host:port`. IPv6 hosts go in brackets (`[::1]:8815`).
 * Throws a TypeError naming the problem for anything else, so that a typo fails when the
 * client is built rather than as UNAVAILABLE on the first call.
 *
 * @example
 * parseLocation("grpc+tls://flight.example.com:443");
 * // { scheme: "grpc+tls", host: "flight.example.com", port: 443, target: "flight.example.com:443", tls: true }
 */
export function parseLocation(location: string): ParsedLocation {
  if (typeof location !== "string") throw new TypeError(`location must be a string such as "grpc+tcp://host:port", got ${typeof location}`);
  const text = location.trim();
  const m = LOCATION.exec(text);
  if (!m) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1];
    if (scheme && !["grpc+tcp", "grpc", "grpc+tls"].includes(scheme)) {
      throw new TypeError(`location ${JSON.stringify(location)}: unsupported scheme "${scheme}" (use grpc+tcp://, grpc://, grpc+tls:// or host:port)`);
    }
    throw new TypeError(`location ${JSON.stringify(location)} is not "grpc+tcp://host:port", "grpc://host:port", "grpc+tls://host:port" or "host:port"`);
  }
  const scheme = m[1] as ParsedLocation["scheme"];
  const bracketed = m[2].startsWith("[");
  const host = bracketed ? m[2].slice(1, -1) : m[2];
  const port = checkInt(`location ${JSON.stringify(location)}`, "port", Number(m[3]), 1, 65535);
  return { scheme, host, port, target: bracketed ? `[${host}]:${port}` : `${host}:${port}`, tls: scheme === "grpc+tls" };
}
