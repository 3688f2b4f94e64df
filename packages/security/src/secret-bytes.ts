// Internal: secrets for HMAC keys and token signing, from values or files. Error messages
// name the option and the file, never the secret's bytes.
import * as fs from "node:fs";
import { checkString } from "@blackice/flight-core";

/** The shortest secret accepted: 32 bytes, the output size of SHA-256. */
export const MIN_SECRET_BYTES = 32;

/** A secret given as a value: a string (its UTF-8 bytes) or bytes. */
export type SecretValue = string | Uint8Array;

function checkLength(what: string, bytes: Buffer, where: string): Buffer {
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new TypeError(`${what}: the secret ${where}is ${bytes.length} bytes long; at least ${MIN_SECRET_BYTES} bytes are required`);
  }
  return bytes;
}

/**
 * Copies a secret given as a value, refusing one shorter than {@link MIN_SECRET_BYTES}. Checked
 * by hand, not with core's option checks: their messages echo numbers and strings, and a
 * secret's message must show only its type and length.
 */
export function secretFromValue(what: string, value: unknown): Buffer {
  if (typeof value === "string") return checkLength(what, Buffer.from(value, "utf8"), "");
  if (value instanceof Uint8Array) return checkLength(what, Buffer.from(value), "");
  throw new TypeError(`${what}: a secret must be a string or a Uint8Array, got ${value === null ? "null" : typeof value}`);
}

/**
 * Reads a secret file: its bytes, minus one trailing line break (`\n` or `\r\n`) so that a
 * file written with `echo` works. Refuses a missing, unreadable or too short file.
 */
export function secretFromFile(what: string, file: unknown): Buffer {
  const path = checkString(what, "secret file path", file, "a non-empty path", true) as string;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new TypeError(`${what}: cannot read the secret file ${JSON.stringify(file)} (${code})`);
  }
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d && end === bytes.length - 1) end--;
  return checkLength(what, Buffer.from(bytes.subarray(0, end)), `in ${JSON.stringify(file)} `);
}
