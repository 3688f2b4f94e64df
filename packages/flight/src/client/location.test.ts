import { parseLocation } from "./location";

describe("parseLocation", () => {
  it.each([
    ["grpc+tcp://127.0.0.1:8815", { scheme: "grpc+tcp", host: "127.0.0.1", port: 8815, target: "127.0.0.1:8815", tls: false }],
    ["grpc://flight.example.com:443", { scheme: "grpc", host: "flight.example.com", port: 443, target: "flight.example.com:443", tls: false }],
    ["grpc+tls://flight.example.com:443", { scheme: "grpc+tls", host: "flight.example.com", port: 443, target: "flight.example.com:443", tls: true }],
    ["localhost:8815", { scheme: undefined, host: "localhost", port: 8815, target: "localhost:8815", tls: false }],
    ["grpc+tcp://[::1]:8815", { scheme: "grpc+tcp", host: "::1", port: 8815, target: "[::1]:8815", tls: false }],
    ["[fe80::1%eth0]:1", { scheme: undefined, host: "fe80::1%eth0", port: 1, target: "[fe80::1%eth0]:1", tls: false }],
    ["grpc+tls://my_host-1.internal:65535/", { scheme: "grpc+tls", host: "my_host-1.internal", port: 65535, target: "my_host-1.internal:65535", tls: true }],
    ["  grpc://10.0.0.1:80  ", { scheme: "grpc", host: "10.0.0.1", port: 80, target: "10.0.0.1:80", tls: false }],
  ])("parses %s", (location, expected) => {
    expect(parseLocation(location)).toEqual(expected);
  });

  it.each([
    ["http://127.0.0.1:8815", /unsupported scheme "http"/],
    ["grpc+unix:///tmp/flight.sock", /unsupported scheme "grpc\+unix"/],
    ["127.0.0.1", /is not/],
    ["grpc+tcp://127.0.0.1", /is not/],
    ["grpc+tcp://:8815", /is not/],
    ["::1:8815", /is not/],
    ["grpc+tcp://host:0", /^location "grpc\+tcp:\/\/host:0": port must be an integer from 1 to 65535; got 0$/],
    ["grpc+tcp://host:70000", /port must be an integer from 1 to 65535; got 70000$/],
    ["grpc+tcp://host:8815/path", /is not/],
    ["grpc+tcp://user@host:8815", /is not/],
    ["", /is not/],
  ])("refuses %j", (location, message) => {
    expect(() => parseLocation(location)).toThrow(TypeError);
    expect(() => parseLocation(location)).toThrow(message);
  });

  it("refuses a non-string", () => {
    expect(() => parseLocation(8815 as unknown as string)).toThrow(/must be a string/);
  });
});
