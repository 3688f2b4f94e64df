// Test helper: a bare grpc-js client for the Flight service, so that server tests do not
// depend on FlightClient.
import * as grpc from "@grpc/grpc-js";
import { flightServiceDefinition } from "../codec/service-definition";

const RawFlightClient = grpc.makeGenericClientConstructor(flightServiceDefinition, "FlightService");

/** A grpc-js client whose methods are the Flight RPCs with the project's codecs. */
export type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function rawClient(port: number): RawClient {
  return new RawFlightClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RawClient;
}

export function unary<T>(client: RawClient, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => client[method](request, metadata, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
}

export async function serverStream<T>(client: RawClient, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T[]> {
  const call = client[method](request, metadata) as grpc.ClientReadableStream<T>;
  const out: T[] = [];
  for await (const m of call) out.push(m as T);
  return out;
}

export async function bidi<T>(client: RawClient, method: string, requests: unknown[], metadata = new grpc.Metadata()): Promise<T[]> {
  const call = client[method](metadata) as grpc.ClientDuplexStream<unknown, T>;
  for (const r of requests) call.write(r);
  call.end();
  const out: T[] = [];
  for await (const m of call) out.push(m as T);
  return out;
}
