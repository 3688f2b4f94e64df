// Flag parsing shared by server.ts and client.ts. Accepts `--flag value`, `--flag=value` and
// the Go peers' single-dash spelling (`-port 0`), so both drivers can be called alike.

import { EXIT_USAGE, isScenario, type ScenarioName } from "./scenario-names";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseFlags(argv: readonly string[], known: readonly string[], booleans: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--?([a-z][a-z0-9-]*)(?:=(.*))?$/i.exec(arg);
    if (!m) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const name = m[1];
    if (booleans.includes(name)) {
      out.set(name, m[2] ?? "true");
      continue;
    }
    if (!known.includes(name)) throw new UsageError(`unknown flag --${name} (known: ${[...known, ...booleans].map((k) => `--${k}`).join(", ")})`);
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    out.set(name, value);
  }
  return out;
}

export function portFlag(flags: Map<string, string>, fallback: number): number {
  const raw = flags.get("port");
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new UsageError(`--port must be 0..65535, got ${JSON.stringify(raw)}`);
  return port;
}

export function scenarioFlag(flags: Map<string, string>): ScenarioName {
  const name = flags.get("scenario") ?? "";
  if (!isScenario(name)) throw new UsageError(`unknown scenario ${JSON.stringify(name)}`);
  return name;
}

/** Runs a CLI main: usage errors exit 2 with the message. */
export function runMain(main: () => Promise<number | void>, usage: string): void {
  main().then(
    (code) => {
      if (typeof code === "number") process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`${err.message}\n${usage}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
