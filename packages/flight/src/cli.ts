#!/usr/bin/env node
import { serverConfig, type ServerPart } from "@blackice/flight-core";
import { createFlightServer } from "./server/create-flight-server";
import { parseCli, usage, UsageError } from "./cli-options";

/** Runs the CLI: starts a server and stops it gracefully on SIGINT/SIGTERM. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let settings;
  try {
    settings = parseCli(argv, env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`blackice-flight: ${err.message}\n\n${usage()}`);
      process.exit(2);
    }
    throw err;
  }
  if (settings.help) {
    process.stdout.write(usage());
    return;
  }
  const parts: ServerPart[] = [serverConfig(settings.config)];
  const server = createFlightServer(...parts);
  try {
    await server.start();
  } catch (err) {
    process.stderr.write(`blackice-flight: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down\n`);
    server.shutdown({ graceMs: 10_000 }).then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`blackice-flight: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.stdout.write(`BlackIce Flight listening on ${server.location}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).catch((err) => {
    process.stderr.write(`blackice-flight: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
