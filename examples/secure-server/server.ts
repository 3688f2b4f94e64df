// A BlackIce Flight server with every security mechanism on:
//
//   TLS (mTLS when a client CA is given) → HMAC-signed requests for services, or
//   basic → bearer tokens for users (pyarrow's authenticate_basic_token) → attestation
//   verdict → authorization (path prefixes; writes need a trusted device) → Merkle roots
//   in FlightInfo.app_metadata.
//
//   npm run build
//   npx ts-node examples/secure-server/server.ts --config secure-server.json \
//     --tls-cert server.crt --tls-key server.key [--tls-client-ca ca.crt] \
//     --hmac-secret-file ingest:hmac-ingest.secret --attestation-secret-file attestation.secret \
//     [--token-secret-file token.secret] [--token-ttl 15m] [--host 127.0.0.1] [--port 8815]
//
// README.md in this folder shows how to make the certificates, secrets and config.
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import {
  MemoryStore,
  composeMiddleware,
  onLifecycle,
  parseDuration,
  serverConfig,
  splitServerParts,
  statsSection,
  withStore,
  type FlightCall,
  type FlightMiddleware,
  type ServerPart,
} from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import {
  HMAC_HEADERS,
  attestation,
  attestationOf,
  authorize,
  basicTokenAuth,
  hmacAuth,
  merkleIntegrity,
  pathPrefixPolicy,
  tls,
  type AccessPolicy,
  type IdentityClaims,
  type PathGrants,
} from "@blackice/flight-security";
import { evidenceVerifier } from "./evidence";
import { isPasswordHash, verifyPassword } from "./passwords";

/** The config file. Subjects are user names (basic/bearer) and HMAC key ids. */
export interface SecureServerConfig {
  /** Users who log in with a password: `{ "alice": { "passwordHash": "scrypt$..." } }` (see `tools.ts hash-password`). */
  readonly users: Readonly<Record<string, { readonly passwordHash: string; readonly claims?: IdentityClaims }>>;
  /** Path prefixes per subject, as pathPrefixPolicy takes them. */
  readonly grants: Readonly<Record<string, readonly string[] | PathGrants>>;
  /** Trust score a write or delete needs from the attestation verdict. Default 0.5. */
  readonly minWriteTrust?: number;
  /** Actions open to every granted subject besides delete/merkle-proof. Default `["ping"]`. */
  readonly actions?: readonly string[];
}

/** Everything the server needs; {@link parseFlags} makes it from flags and the environment. */
export interface SecureServerOptions {
  readonly addr: string;
  readonly config: SecureServerConfig;
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
  /** HMAC keys for services; none turns HMAC off (users only). */
  readonly hmacKeys: ReadonlyArray<{ readonly keyId: string; readonly secretPath: string }>;
  /** Signs bearer tokens; give the same to every replica. Default: random per process. */
  readonly tokenSecret?: Buffer;
  readonly tokenTtlMs: number;
  /** Verifies attestation evidence (see evidence.ts). */
  readonly attestationSecret: Buffer;
}

/** Operations that change data, and need a trusted device. */
const WRITES = new Set(["write", "delete", "exchange"]);

/**
 * HMAC for calls that carry an `x-blackice-*` signature, bearer tokens for the rest. hmacAuth
 * refuses every call without a signature, so the two cannot simply be chained: each call is
 * routed to one of them, and both publish the caller under kIdentity.
 */
function hmacOrToken(hmac: readonly FlightMiddleware[], token: readonly FlightMiddleware[]): FlightMiddleware {
  const signed = (call: FlightCall): boolean => Object.values(HMAC_HEADERS).some((h) => call.headers.has(h));
  return (next) => {
    const viaHmac = composeMiddleware(hmac, next);
    const viaToken = composeMiddleware(token, next);
    return async function authenticate(call) {
      return hmac.length > 0 && signed(call) ? viaHmac(call) : viaToken(call);
    };
  };
}

/** The server's parts, in middleware order (first = outermost), with its store. */
export function secureServerParts(options: SecureServerOptions): { parts: ServerPart[]; store: MemoryStore } {
  const { config } = options;
  for (const [user, u] of Object.entries(config.users)) {
    if (!isPasswordHash(u?.passwordHash)) throw new TypeError(`config: users.${user}.passwordHash must be a hash made by \`tools.ts hash-password\``);
  }
  const minWriteTrust = config.minWriteTrust ?? 0.5;
  if (typeof minWriteTrust !== "number" || !(minWriteTrust >= 0 && minWriteTrust <= 1)) throw new TypeError("config: minWriteTrust must be a number from 0 to 1");

  const store = new MemoryStore();
  const hmac = options.hmacKeys.length > 0 ? splitServerParts(hmacAuth({ keys: options.hmacKeys })) : { middleware: [], settings: [] };
  const token = splitServerParts(
    basicTokenAuth({
      validate: async (user, password) => {
        const entry = Object.hasOwn(config.users, user) ? config.users[user] : undefined;
        // An unknown user costs a decoy hash, so timing does not tell which users exist.
        if (!(await verifyPassword(password, entry?.passwordHash))) return undefined;
        return { subject: user, ...(entry!.claims ? { claims: entry!.claims } : {}) };
      },
      tokenTtlMs: options.tokenTtlMs,
      ...(options.tokenSecret ? { secret: options.tokenSecret } : {}),
    }),
  );

  // Attestation only publishes its verdict (required: false): reads need none; the policy
  // below asks for a trusted device where it matters.
  const verdicts: Record<string, number> = {};
  const verify = evidenceVerifier({ secret: options.attestationSecret });
  const attest = attestation({
    verify: async (evidence, call) => {
      const v = await verify(evidence, call);
      const key = v.ok ? "accepted" : (v.reason ?? "refused");
      verdicts[key] = (verdicts[key] ?? 0) + 1;
      return v;
    },
  });

  const paths = pathPrefixPolicy(config.grants, config.actions ? { actions: config.actions } : {});
  const policy: AccessPolicy = async (request) => {
    if (!(await paths(request))) return false;
    if (!WRITES.has(request.operation)) return true;
    const verdict = attestationOf(request.call);
    return verdict?.ok === true && verdict.trustScore !== undefined && verdict.trustScore >= minWriteTrust;
  };

  const parts: ServerPart[] = [
    serverConfig({ addr: options.addr }),
    withStore(store),
    onLifecycle({ onShutdown: () => store.close() }), // the server closes only a store it made
    tls({ ...options.tls, watch: true }), // reloads the files when they change, or on SIGHUP
    hmacOrToken(hmac.middleware, token.middleware),
    ...hmac.settings,
    ...token.settings,
    attest, // after authentication: the verifier checks the evidence names the caller
    authorize(policy),
    merkleIntegrity(), // reads flights from the server's store (call.store)
    statsSection("attestation", () => ({ minWriteTrust, verdicts: { ...verdicts } })),
  ];
  return { parts, store };
}

/** Builds the server (not started). */
export function secureServer(options: SecureServerOptions): FlightServer {
  return createFlightServer(...secureServerParts(options).parts);
}

/** Reads a secret file: its bytes minus one trailing line break; at least 32 bytes. Errors never show its content. */
export function readSecretFile(what: string, file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${what}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const text = bytes.subarray(0, bytes.length - (bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? 2 : 1) : 0));
  if (text.length < 32) throw new Error(`${what}: ${JSON.stringify(file)} holds ${text.length} bytes; at least 32 are needed (openssl rand -hex 32)`);
  return Buffer.from(text);
}

const FLAGS = {
  config: "SECURE_SERVER_CONFIG",
  host: "BLACKICE_HOST",
  port: "BLACKICE_PORT",
  "tls-cert": "BLACKICE_TLS_CERT",
  "tls-key": "BLACKICE_TLS_KEY",
  "tls-client-ca": "BLACKICE_TLS_CLIENT_CA",
  "hmac-secret-file": "BLACKICE_HMAC_SECRET_FILE",
  "token-secret-file": "BLACKICE_TOKEN_SECRET_FILE",
  "token-ttl": "BLACKICE_TOKEN_TTL",
  "attestation-secret-file": "BLACKICE_ATTESTATION_SECRET_FILE",
} as const;

export const USAGE = `usage: ts-node examples/secure-server/server.ts [flags]   (each flag falls back to its environment variable)
${Object.entries(FLAGS)
  .map(([f, env]) => `  --${f.padEnd(24)} [${env}]`)
  .join("\n")}
required: --config, --tls-cert, --tls-key, --attestation-secret-file
--hmac-secret-file is KEYID:PATH, repeatable (env: comma-separated); --token-ttl is 15m by default
`;

/** Settles the options from flags, falling back to the environment. Throws with a message naming the flag. */
export function parseFlags(argv: string[], env: NodeJS.ProcessEnv): SecureServerOptions {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: "string" as const, multiple: f === "hmac-secret-file" }])),
    strict: true,
  });
  const get = (flag: keyof typeof FLAGS): string | undefined => {
    const v = values[flag];
    if (Array.isArray(v)) return v.length > 0 ? v.join(",") : undefined;
    return (v as string | undefined) ?? (env[FLAGS[flag]] || undefined);
  };
  const need = (flag: keyof typeof FLAGS): string => {
    const v = get(flag);
    if (!v) throw new Error(`--${flag} is required\n${USAGE}`);
    return v;
  };
  const configFile = need("config");
  let config: SecureServerConfig;
  try {
    config = JSON.parse(fs.readFileSync(configFile, "utf8"));
  } catch (err) {
    throw new Error(`--config: cannot read ${JSON.stringify(configFile)} (${(err as NodeJS.ErrnoException).code ?? "not valid JSON"})`);
  }
  if (config === null || typeof config.users !== "object" || typeof config.grants !== "object") throw new Error(`--config: ${configFile} needs "users" and "grants"`);
  const host = get("host") ?? "127.0.0.1";
  const port = get("port") ?? "8815";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`--port must be 0..65535, got ${JSON.stringify(port)}`);
  const hmacKeys = (get("hmac-secret-file") ?? "")
    .split(",")
    .filter((s) => s.length > 0)
    .map((s) => {
      const m = /^([A-Za-z0-9._-]{1,128}):(.+)$/.exec(s);
      if (!m) throw new Error(`--hmac-secret-file must be KEYID:PATH, got ${JSON.stringify(s)}`);
      return { keyId: m[1]!, secretPath: m[2]! };
    });
  const tokenSecretFile = get("token-secret-file");
  const clientCaFile = get("tls-client-ca");
  return {
    addr: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    config,
    tls: { certFile: need("tls-cert"), keyFile: need("tls-key"), ...(clientCaFile ? { clientCaFile } : {}) },
    hmacKeys,
    ...(tokenSecretFile ? { tokenSecret: readSecretFile("--token-secret-file", tokenSecretFile) } : {}),
    tokenTtlMs: parseDuration(get("token-ttl") ?? "15m", "--token-ttl"),
    attestationSecret: readSecretFile("--attestation-secret-file", need("attestation-secret-file")),
  };
}

/** Starts the example from flags and the environment. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<FlightServer> {
  const server = secureServer(parseFlags(argv, env));
  await server.start();
  return server;
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).then(
    (server) => {
      process.stdout.write(`secure-server example listening on ${server.location}\n`);
      const stop = (): void => void server.shutdown({ graceMs: 5_000 }).then(() => process.exit(0), () => process.exit(1));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    },
    (err: Error) => {
      process.stderr.write(`secure-server example: ${err.message}\n`);
      process.exit(1);
    },
  );
}
