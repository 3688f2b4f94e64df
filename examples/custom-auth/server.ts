// A host app with its own authentication (API keys) and the security package's authorization:
// each caller may only touch the flights under its own path prefixes.
//
//   npm run build
//   npx ts-node examples/custom-auth/server.ts --config callers.json --port 8815
//
// README.md in this folder shows how to make callers.json.
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { authorize, pathPrefixPolicy, type PathGrants } from "@blackice/flight-security";
import { apiKeyAuth } from "./api-key-auth";

/** One caller of the config file: its API key (or keys, while rotating) and the path prefixes it may use. */
export interface Caller {
  readonly apiKey: string | readonly string[];
  /** A list of prefixes (read, list, write, delete), or per operation. See pathPrefixPolicy. */
  readonly grants: readonly string[] | PathGrants;
}

/** The config file: `{ "callers": { "<subject>": { "apiKey": "...", "grants": [...] } } }`. */
export interface CustomAuthConfig {
  readonly callers: Readonly<Record<string, Caller>>;
}

/** Reads and checks a config file. Error messages name the file and the caller, never a key. */
export function readConfig(file: string): CustomAuthConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? "not valid JSON";
    throw new Error(`cannot read the config file ${JSON.stringify(file)} (${why})`);
  }
  const callers = (parsed as { callers?: unknown } | null)?.callers;
  if (callers === null || typeof callers !== "object" || Array.isArray(callers)) throw new Error(`${file}: expected {"callers": {"<subject>": {"apiKey": "...", "grants": [...]}}}`);
  for (const [subject, c] of Object.entries(callers as Record<string, unknown>)) {
    const caller = c as Partial<Caller> | null;
    if (caller === null || typeof caller !== "object" || (typeof caller.apiKey !== "string" && !Array.isArray(caller.apiKey)) || caller.grants === undefined) {
      throw new Error(`${file}: caller ${JSON.stringify(subject)} needs "apiKey" (a string, or a list while rotating) and "grants"`);
    }
  }
  return { callers: callers as Record<string, Caller> };
}

/**
 * The server: API-key authentication first (it publishes the identity), then authorization
 * (it reads it). Nothing is served to a caller without a key, and a caller with a key only
 * sees its own flights: reads, DoGet by ticket, delete and DoPut elsewhere are
 * PERMISSION_DENIED, and ListFlights leaves other callers' flights out.
 */
export function customAuthServer(config: CustomAuthConfig, addr = "127.0.0.1:8815"): FlightServer {
  const keys: Record<string, string | readonly string[]> = {};
  const grants: Record<string, readonly string[] | PathGrants> = {};
  for (const [subject, caller] of Object.entries(config.callers)) {
    keys[subject] = caller.apiKey;
    grants[subject] = caller.grants;
  }
  return createFlightServer(
    serverConfig({ addr }),
    apiKeyAuth({ keys }), // outermost: runs first
    authorize(pathPrefixPolicy(grants)),
  );
}

const USAGE = `usage: ts-node examples/custom-auth/server.ts --config FILE [--host 127.0.0.1] [--port 8815]
  --config  JSON {"callers": {"<subject>": {"apiKey": "...", "grants": [...]}}}  [CUSTOM_AUTH_CONFIG]
  --host    address to listen on (default 127.0.0.1)                           [CUSTOM_AUTH_HOST]
  --port    port, 0 for any (default 8815)                                     [CUSTOM_AUTH_PORT]
`;

/** Starts the example from command-line flags (falling back to the environment). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<FlightServer> {
  const { values } = parseArgs({ args: argv, options: { config: { type: "string" }, host: { type: "string" }, port: { type: "string" } }, strict: true });
  const configFile = values.config ?? env.CUSTOM_AUTH_CONFIG;
  if (!configFile) throw new Error(`--config is required\n${USAGE}`);
  const host = values.host ?? env.CUSTOM_AUTH_HOST ?? "127.0.0.1";
  const port = values.port ?? env.CUSTOM_AUTH_PORT ?? "8815";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`--port must be 0..65535, got ${JSON.stringify(port)}`);
  const server = customAuthServer(readConfig(configFile), `${host.includes(":") ? `[${host}]` : host}:${port}`);
  await server.start();
  return server;
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).then(
    (server) => {
      process.stdout.write(`custom-auth example listening on ${server.location}\n`);
      const stop = (): void => void server.shutdown({ graceMs: 5_000 }).then(() => process.exit(0), () => process.exit(1));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    },
    (err: Error) => {
      process.stderr.write(`custom-auth example: ${err.message}\n`);
      process.exit(1);
    },
  );
}
