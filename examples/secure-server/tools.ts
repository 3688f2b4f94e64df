// Helpers for setting up the secure-server example:
//
//   printf '%s' "$PASSWORD" | npx ts-node examples/secure-server/tools.ts hash-password
//       prints a passwordHash for the config file (the password is read from stdin, so it
//       stays out of the shell history and the process list)
//
//   npx ts-node examples/secure-server/tools.ts evidence --secret-file attestation.secret \
//       --subject ingest --device edge-7 --posture patched
//       prints attestation evidence for the x-blackice-attestation header (valid 10 minutes)
import { parseArgs } from "node:util";
import { signEvidence } from "./evidence";
import { hashPassword } from "./passwords";
import { readSecretFile } from "./server";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

async function run(argv: string[]): Promise<string> {
  const [command, ...rest] = argv;
  if (command === "hash-password") {
    const password = await readStdin();
    if (password.length === 0) throw new Error("hash-password: give the password on stdin");
    return hashPassword(password);
  }
  if (command === "evidence") {
    const { values } = parseArgs({
      args: rest,
      options: { "secret-file": { type: "string" }, subject: { type: "string" }, device: { type: "string" }, posture: { type: "string" } },
      strict: true,
    });
    if (!values["secret-file"] || !values.subject || !values.posture) throw new Error("evidence: --secret-file, --subject and --posture are required");
    const secret = readSecretFile("--secret-file", values["secret-file"]);
    return signEvidence(secret, { sub: values.subject, device: values.device ?? "unnamed", posture: values.posture, iat: Date.now() });
  }
  throw new Error("usage: tools.ts hash-password < password | tools.ts evidence --secret-file F --subject S --posture P [--device D]");
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (out) => process.stdout.write(`${out}\n`),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
