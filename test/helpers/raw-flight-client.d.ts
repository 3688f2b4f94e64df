import type * as grpc from "@grpc/grpc-js";

/** A grpc-js client whose methods are the Flight RPCs with the project's codecs. */
export type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** A grpc-js client of grpc.health.v1. */
export type RawHealthClient = grpc.Client & {
  check(req: { service: string }, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};

export interface RawClientOptions {
  /** Default 127.0.0.1; `localhost` where a certificate names it. */
  host?: string;
  /** Default insecure. */
  credentials?: grpc.ChannelCredentials;
  /** A connection of its own instead of one shared with equal clients. */
  ownConnection?: boolean;
  /** Largest message sent and received; default grpc-js's (4 MiB received). */
  maxMessageBytes?: number;
  channelOptions?: grpc.ChannelOptions;
}

export function rawClient(port: number, options?: RawClientOptions): RawClient;
export function healthClient(port: number, options?: RawClientOptions): RawHealthClient;
export function metadata(headers?: Record<string, string>): grpc.Metadata;
export function unary<T>(client: RawClient, method: string, request: unknown, md?: grpc.Metadata): Promise<T>;
export function serverStreamCall<T>(client: RawClient, method: string, request: unknown, md?: grpc.Metadata): grpc.ClientReadableStream<T>;
export function serverStream<T>(client: RawClient, method: string, request: unknown, md?: grpc.Metadata): Promise<T[]>;
export function bidi<T>(client: RawClient, method: string, requests: unknown[], md?: grpc.Metadata): Promise<T[]>;
export function bidiWithHeaders<T>(client: RawClient, method: string, requests: unknown[], md?: grpc.Metadata): Promise<{ messages: T[]; headers: grpc.Metadata }>;
