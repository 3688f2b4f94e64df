// Password hashes for the users file: scrypt, compared in constant time. Plain passwords are
// never stored, logged or put in an error.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

/** `scrypt$N$r$p$<salt base64url>$<hash base64url>`. */
const FORMAT = /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{22,88})\$([A-Za-z0-9_-]{43,88})$/;
const DEFAULTS = { N: 16384, r: 8, p: 1 };
const HASH_BYTES = 32;

/**
 * Hashes a password for the users file (in a worker thread: scrypt is slow on purpose).
 *
 * @example
 * await hashPassword("correct horse battery staple"); // "scrypt$16384$8$1$...$..."
 */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== "string" || password.length === 0) throw new TypeError("hashPassword: the password must be a non-empty string");
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, HASH_BYTES, DEFAULTS);
  return `scrypt$${DEFAULTS.N}$${DEFAULTS.r}$${DEFAULTS.p}$${salt.toString("base64url")}$${hash.toString("base64url")}`;
}

/** Whether a string is a hash {@link hashPassword} could have made. */
export function isPasswordHash(text: unknown): text is string {
  const m = typeof text === "string" ? FORMAT.exec(text) : null;
  return m !== null && Number(m[1]) >= 1024 && (Number(m[1]) & (Number(m[1]) - 1)) === 0 && Number(m[2]) > 0 && Number(m[3]) > 0;
}

/** A hash of a random password, checked when the user is unknown so that unknown users take as long as known ones. */
let decoy: Promise<string> | undefined;

/**
 * Checks a password against a hash (or against a decoy when `hash` is undefined, always
 * false), with a constant-time comparison of the derived keys.
 */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  const known = hash !== undefined;
  const target = known ? hash : await (decoy ??= hashPassword(randomBytes(16).toString("hex")));
  const m = FORMAT.exec(target);
  if (!m) return false;
  const [, n, r, p, salt, expected] = m;
  const want = Buffer.from(expected!, "base64url");
  const N = Number(n);
  const got = await scrypt(password, Buffer.from(salt!, "base64url"), want.length, { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) + 1024 * 1024 });
  return known && got.length === want.length && timingSafeEqual(got, want);
}
