// Test helper for the security real-server tests: a bare grpc-js Flight client (so the tests
// need no FlightClient) and a way to put grpc metadata on each call.
import * as grpc from "@grpc/grpc-js";
import { flightServiceDefinition } from "@blackice/flight/internal";

const RawFlightClient = grpc.makeGenericClientConstructor(flightServiceDefinition as unknown as grpc.ServiceDefinition, "FlightService");

export type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function rawClient(port: number, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), host = "127.0.0.1"): RawClient {
  return new RawFlightClient(`${host}:${port}`, credentials) as unknown as RawClient;
}

export function metadata(headers: Record<string, string> = {}): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return md;
}

export function unary<T>(client: RawClient, method: string, request: unknown, md = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => client[method](request, md, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
}

export function serverStreamCall<T>(client: RawClient, method: string, request: unknown, md = new grpc.Metadata()): grpc.ClientReadableStream<T> {
  return client[method](request, md) as grpc.ClientReadableStream<T>;
}

export async function serverStream<T>(client: RawClient, method: string, request: unknown, md = new grpc.Metadata()): Promise<T[]> {
  const out: T[] = [];
  for await (const m of serverStreamCall<T>(client, method, request, md)) out.push(m as T);
  return out;
}

export async function bidi<T>(client: RawClient, method: string, requests: unknown[], md = new grpc.Metadata()): Promise<{ messages: T[]; headers: grpc.Metadata }> {
  const call = client[method](md) as grpc.ClientDuplexStream<unknown, T>;
  const headers = new Promise<grpc.Metadata>((resolve) => call.on("metadata", resolve));
  for (const r of requests) call.write(r);
  call.end();
  const messages: T[] = [];
  for await (const m of call) messages.push(m as T);
  return { messages, headers: await Promise.race([headers, Promise.resolve(new grpc.Metadata())]) };
}
