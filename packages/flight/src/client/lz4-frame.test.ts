import { Lz4FrameError, decodeLz4Frames, xxh32 } from "./lz4-frame";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const u32le = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const concat = (...parts: Array<Uint8Array | number[]>): Uint8Array => Uint8Array.from(parts.flatMap((p) => Array.from(p)));

/** The data the `lz4` command-line tool (v1.9.4) compressed into {@link CLI_FRAMES}: runs, a period-13 text and a 256-byte ramp with noise. */
function sample(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    if ((i >> 12) % 3 === 0) out[i] = (i >> 10) & 0xff;
    else if ((i >> 12) % 3 === 1) out[i] = "arrow flight ".charCodeAt(i % 13);
    else {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[i] = (i & 255) === 0 ? x >>> 24 : i & 0xff;
    }
  }
  return out;
}

/**
 * `sample(140_000)` compressed by `lz4 -B4` (64 KiB independent blocks, content checksum),
 * `lz4 -B4 -BD -BX --content-size` (linked blocks, block checksums, content size, content
 * checksum) and `lz4 -B7 --no-frame-crc` (one 256 KiB block, no checksum).
 */
const CLI_FRAMES: Record<string, string> = {
  independentBlocks:
    "BCJNGGRAp8IDAAAfAAEA////7x8BAQD////vHwIBAP///+8fAwEA////799ycm93IGZsaWdodCBhDQD////////////////////v//LTAQIDBA" +
    "UGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX" +
    "WFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6Slpqeoqa" +
    "qrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+vv8" +
    "/f7/gQAB7B83AAHsH6QAAewfeQAB7B9lAAHsHxkAAewfRAAB7B+XAAHsH8IAAewfdAAB7B9dAAHsHy4AAewPAAXtH0cAAuwf7wAB7B8MAQD///" +
    "/vHw0BAP///+8fDgEA////7x8PAQD////vD/0v////////////////////+U9yb3c+ACHsH+UAAewfkwAB7B/5AAHsH8cAAewfrAAB7B9YAAHs" +
    "H3wAAewfyAAB7B/rAAHsH5YAAewfeAAB7B9CAAHsH6MAAewfTAAB7B/tAAHsHxgBAP///+8fGQEA////7x8aAQD////vHxsBAP///+8P+l////" +
    "/////////////////2AvlvHzUAIewf1AAB7A8AK+0f2gAC7B+gAAHsH34AAewfIwAB7B9AAAHsH4UAAewfoQAB7A8AY+0fHwAC7B/iAAHsHzwA" +
    "Aewf3gAB7B93AAHsHyQBAP///+8fJQEA////7x8mAQD////vHycBAP///+8P94/////////////////////zAv0vT2lnaLgAIewfUAAB7B/wAA" +
    "HsDwCF7R8GAALsH90AAewfewAB7B+QAAHsH80AAewPAC3tDwA17R9SAAPsHw4AAewfYAAB7B/7AAHsH40AAewfMAEA////7x8xAQD////vHzIB" +
    "AP///+8fMwEA////7wcLIA8BwP////////////////////EfxgAh7B9XAAHsDwAw7Q8AXO0f+AAD7A8Ake0fXgAC7B9sAAHsH6IAAewfsAAB7B" +
    "9FAAHsHxEAAewfxQAB7A8AAu0PAMvtHy8AA+wfPAEA////7x89AQD////vHz4BAP///+8fPwEA////6lA/Pz8/P7cDAADfb3cgZmxpZ2h0IGFy" +
    "cg0A////////////////////7//yYQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD" +
    "0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6P" +
    "kJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4e" +
    "Lj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/+sAAewffAAB7B/FAAHsH3YAAewfPgAB7B/NAAHsH9QAAewfAwAB7B8JAAHsH5cAAewfXAAB" +
    "7A8AA+0fTQAC7B/ZAAHsH10AAewfSAEA////7x9JAQD////vH0oBAP///+8fSwEA////7w/9L/////////////////////lPdyBmiAAh7B8KAA" +
    "HsH5UAAewf1gAB7B9/AAHsH0AAAewfyAAB/+0f8AAC7B/vAAHsH3UAAewfMwAB7A8ALu0fFgAC7B+bAAHsHxcAAewfVAEA////7x9VAQD////v" +
    "H1YBAP///+8fVwEA////7w/6X/////////////////////YC+W8fOwAh7B+2AAHsHzkAAewfcwAB7B8VAAHsH88AAewfUAAB7B9IAAHsH2gAAe" +
    "wfYAAB7B/fAAHsH5YAAewfNQAB7B9qAAHsH+gAAewPAGDtH2ABAP///+8fYQEA////7x9iAQD////vH2MBAP///+8P94//////////////////" +
    "///zAv0vT2h0IHkAIuwf7QAB7B9pAAHsH5wAAewfNwAB7B/pAAHsH2MAAewfVAAB7B9tAAHsH14AAewPAGftH4UAAuwfHAAB7B9LAAHsH8EAAe" +
    "wfLwAB7B9sAQD////vH20BAP///+8fbgEA////7x9vAQD////vBwsgDwHA////////////////////8R9EACHsH7EAAewfJQAB7B9RAAHsH+UA" +
    "AewfkAAB7B8CAAHsH+wAAewf/gAB7B/nAAHsH1gAAewfAAAB7A8AB+0ftwAC7B8mAAHsH40AAewfeAEA////7x95AQD////vH3oBAP///+8few" +
    "EA////7w/+7/////////////////////dQcnJvdyCFAQAA//KbAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywt" +
    "Li8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4" +
    "CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS" +
    "09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+vv8/f7/AAAB7B9tAAHsH5IAAewfHgAB7B/CAAHsHy0AAewfEAAB7B8bAA" +
    "HsH/0AAewfZgAB7B8HAAHsH5AAAewfsAAB7B8YAAHsH3cAAewfhAEA////7x+FAQD////vH4YBAP///+8fhwEA////799pZ2h0IGFycm93IGZs" +
    "DQD//71QdCBhcnIAAAAAdvovBg==",
  linkedBlocksWithSums:
    "BCJNGFxA4CICAAAAAABPwgMAAB8AAQD////vHwEBAP///+8fAgEA////7x8DAQD////v33Jyb3cgZmxpZ2h0IGENAP///////////////////+" +
    "//8tMBAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5P" +
    "UFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goa" +
    "KjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DBwsPExcbHyMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP0" +
    "9fb3+Pn6+/z9/v+BAAHsHzcAAewfpAAB7B95AAHsH2UAAewfGQAB7B9EAAHsH5cAAewfwgAB7B90AAHsH10AAewfLgAB7A8ABe0fRwAC7B/vAA" +
    "HsHwwBAP///+8fDQEA////7x8OAQD////vHw8BAP///+8P/S/////////////////////5T3Jvdz4AIewf5QAB7B+TAAHsH/kAAewfxwAB7B+s" +
    "AAHsH1gAAewffAAB7B/IAAHsH+sAAewflgAB7B94AAHsH0IAAewfowAB7B9MAAHsH+0AAewfGAEA////7x8ZAQD////vHxoBAP///+8fGwEA//" +
    "//7w/6X/////////////////////YC+W8fNQAh7B/UAAHsDwAr7R/aAALsH6AAAewffgAB7B8jAAHsH0AAAewfhQAB7B+hAAHsDwBj7R8fAALs" +
    "H+IAAewfPAAB7B/eAAHsH3cAAewfJAEA////7x8lAQD////vHyYBAP///+8fJwEA////7w/3j/////////////////////MC/S9PaWdouAAh7B" +
    "9QAAHsH/AAAewPAIXtHwYAAuwf3QAB7B97AAHsH5AAAewfzQAB7A8ALe0PADXtH1IAA+wfDgAB7B9gAAHsH/sAAewfjQAB7B8wAQD////vHzEB" +
    "AP///+8fMgEA////7x8zAQD////vBwsgDwHA////////////////////8R/GACHsH1cAAewPADDtDwBc7R/4AAPsDwCR7R9eAALsH2wAAewfog" +
    "AB7B+wAAHsH0UAAewfEQAB7B/FAAHsDwAC7Q8Ay+0fLwAD7B88AQD////vHz0BAP///+8fPgEA////7x8/AQD////qUD8/Pz8/y9dGt6MDAAAf" +
    "bwHA////////////////////+x9hACHsDwC47Q8AkO0PACftH3YABOwPAMXtDwBe7Q8Alu0fAwAE7B8JAAHsDwDt7R9cAALsDwAD7R9NAALsH9" +
    "kAAewPAPTtH0gBAP///+8fSQEA////7x9KAQD////vH0sBAP///+8BBYAP+l/////////////////////xAgSQH4gAIuwfCgAB7B+VAAHsH9YA" +
    "AewffwAB7A8AYu0PAO7tDwAB7Q8AZu0f7wAF7B91AAHsHzMAAewPAC7tHxYAAuwfmwAB7B8XAAHsH1QBAP///+8fVQEA////7x9WAQD////vH1" +
    "cBAP///+8P/S/////////////////////5//VsaWc7AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIz" +
    "NDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhY" +
    "aHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY" +
    "2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+vv8/f7/tgAB7B85AAHsH3MAAewfFQAB7B/PAAHsDwDF7R9IAALsH2gAAewPALztH9" +
    "8AAuwflgAB7A8A/O0fagAC7B/oAAHsDwBg7R9gAQD////vH2EBAP///+8fYgEA////7x9jAQD////vBAhQL2xpCjD////////////////////y" +
    "H3kAIuwf7QAB7B9pAAHsH5wAAewfNwAB7B/pAAHsH2MAAewfVAAB7B9tAAHsDwDD7Q8AZ+0fhQAD7B8cAAHsH0sAAewfwQAB7A8AwO0fbAEA//" +
    "//7x9tAQD////vH24BAP///+8fbwEA////7wEFgA/9L/////////////////////RPYXJyRAAi7B+xAAHsHyUAAewfUQAB7B/lAAHsH5AAAewf" +
    "AgAB7B/sAAHsH/4AAewf5wAB7B9YAAHsHwAAAewPAAftH7cAAuwfJgAB7B+NAAHsH3gBAP///+8feQEA////7x96AQD////vH3sBAP///+8P/S" +
    "/////////////////////3UHJyb3cge9HH+nkAAAAfmwAh7A8AJu0PAFrtH5IAA+wfHgAB7B/CAAHsHy0AAewfEAAB7B8bAAHsH/0AAewfZgAB" +
    "7B8HAAHsDwAw7R+wAALsHxgAAewfdwAB7B+EAQD////vH4UBAP///+8fhgEA////7x+HAQD////vD/eP///KUHQgYXJycmUWKAAAAAB2+i8G",
  oneBigBlock:
    "BCJNGGBQ+9UHAAAfAAEA////7x8BAQD////vHwIBAP///+8fAwEA////799ycm93IGZsaWdodCBhDQD////////////////////v//LTAQIDBA" +
    "UGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX" +
    "WFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6Slpqeoqa" +
    "qrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+vv8" +
    "/f7/gQAB7B83AAHsH6QAAewfeQAB7B9lAAHsHxkAAewfRAAB7B+XAAHsH8IAAewfdAAB7B9dAAHsHy4AAewPAAXtH0cAAuwf7wAB7B8MAQD///" +
    "/vHw0BAP///+8fDgEA////7x8PAQD////vD/0v////////////////////+U9yb3c+ACHsH+UAAewfkwAB7B/5AAHsH8cAAewfrAAB7B9YAAHs" +
    "H3wAAewfyAAB7B/rAAHsH5YAAewfeAAB7B9CAAHsH6MAAewfTAAB7B/tAAHsHxgBAP///+8fGQEA////7x8aAQD////vHxsBAP///+8P+l////" +
    "/////////////////2AvlvHzUAIewf1AAB7A8AK+0f2gAC7B+gAAHsH34AAewfIwAB7B9AAAHsH4UAAewfoQAB7A8AY+0fHwAC7B/iAAHsHzwA" +
    "Aewf3gAB7B93AAHsHyQBAP///+8fJQEA////7x8mAQD////vHycBAP///+8P94/////////////////////zAv0vT2lnaLgAIewfUAAB7B/wAA" +
    "HsDwCF7R8GAALsH90AAewfewAB7B+QAAHsH80AAewPAC3tDwA17R9SAAPsHw4AAewfYAAB7B/7AAHsH40AAewfMAEA////7x8xAQD////vHzIB" +
    "AP///+8fMwEA////7wcLIA8BwP////////////////////EfxgAh7B9XAAHsDwAw7Q8AXO0f+AAD7A8Ake0fXgAC7B9sAAHsH6IAAewfsAAB7B" +
    "9FAAHsHxEAAewfxQAB7A8AAu0PAMvtHy8AA+wfPAEA////7x89AQD////vHz4BAP///+8fPwEA////7w/+7/////////////////////o/cm9h" +
    "ACHsDwC47Q8AkO0PACftH3YABOwPAMXtDwBe7Q8Alu0fAwAE7B8JAAHsDwDt7R9cAALsDwAD7R9NAALsH9kAAewPAPTtH0gBAP///+8fSQEA//" +
    "//7x9KAQD////vH0sBAP///+8BBYAP+l/////////////////////xAgSQH4gAIuwfCgAB7B+VAAHsH9YAAewffwAB7A8AYu0PAO7tDwAB7Q8A" +
    "Zu0f7wAF7B91AAHsHzMAAewPAC7tHxYAAuwfmwAB7B8XAAHsH1QBAP///+8fVQEA////7x9WAQD////vH1cBAP///+8P/S////////////////" +
    "/////5//VsaWc7AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdI" +
    "SUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmp" +
    "ucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt" +
    "7u/w8fLz9PX29/j5+vv8/f7/tgAB7B85AAHsH3MAAewfFQAB7B/PAAHsDwDF7R9IAALsH2gAAewPALztH98AAuwflgAB7A8A/O0fagAC7B/oAA" +
    "HsDwBg7R9gAQD////vH2EBAP///+8fYgEA////7x9jAQD////vBAhQL2xpCjD////////////////////yH3kAIuwf7QAB7B9pAAHsH5wAAewf" +
    "NwAB7B/pAAHsH2MAAewfVAAB7B9tAAHsDwDD7Q8AZ+0fhQAD7B8cAAHsH0sAAewfwQAB7A8AwO0fbAEA////7x9tAQD////vH24BAP///+8fbw" +
    "EA////7wEFgA/9L/////////////////////RPYXJyRAAi7B+xAAHsHyUAAewfUQAB7B/lAAHsH5AAAewfAgAB7B/sAAHsH/4AAewf5wAB7B9Y" +
    "AAHsHwAAAewPAAftH7cAAuwfJgAB7B+NAAHsH3gBAP///+8feQEA////7x96AQD////vH3sBAP///+8P/S/////////////////////5P293IA" +
    "Cy7Q8AJu0PAFrtH5IAJOwfHgAB7B/CAAHsHy0AAewfEAAB7B8bAAHsH/0AAewfZgAB7B8HAAHsDwAw7R+wAALsHxgAAewfdwAB7B+EAQD////v" +
    "H4UBAP///+8fhgEA////7x+HAQD////vD/eP///KUHQgYXJyAAAAAA==",
};
const cliFrame = (name: string): Uint8Array => new Uint8Array(Buffer.from(CLI_FRAMES[name], "base64"));

/** One LZ4 sequence: literals, then (unless it is the last) a match of `length` bytes `offset` back. */
function sequence(literals: ArrayLike<number>, match?: { offset: number; length: number }): number[] {
  const lengthBytes = (n: number): number[] => {
    const out: number[] = [];
    for (n -= 15; n >= 255; n -= 255) out.push(255);
    out.push(n);
    return out;
  };
  const lit = literals.length;
  const ml = match ? match.length - 4 : 0;
  const out = [(Math.min(lit, 15) << 4) | Math.min(ml, 15)];
  if (lit >= 15) out.push(...lengthBytes(lit));
  out.push(...Array.from(literals));
  if (match) {
    out.push(match.offset & 0xff, match.offset >>> 8);
    if (ml >= 15) out.push(...lengthBytes(ml));
  }
  return out;
}

interface FrameOptions {
  blockSums?: boolean;
  contentSize?: number;
  /** The decoded content, whose checksum ends the frame. */
  contentSum?: Uint8Array;
  linked?: boolean;
  /** The BD byte (0x40: 64 KiB blocks). */
  bd?: number;
  dictId?: number;
  /** Bits or-ed into the FLG byte. */
  flgExtra?: number;
}

/** An LZ4 frame around the given blocks (compressed, or `raw` for a stored one). */
function frame(blocks: Array<number[] | Uint8Array | { raw: Uint8Array }>, o: FrameOptions = {}): Uint8Array {
  const flg = 0x40 | (o.linked ? 0 : 0x20) | (o.blockSums ? 0x10 : 0) | (o.contentSize !== undefined ? 0x08 : 0) | (o.contentSum ? 0x04 : 0) | (o.dictId !== undefined ? 0x01 : 0) | (o.flgExtra ?? 0);
  const descriptor = [flg, o.bd ?? 0x40];
  if (o.contentSize !== undefined) descriptor.push(...u32le(o.contentSize % 2 ** 32), ...u32le(Math.floor(o.contentSize / 2 ** 32)));
  if (o.dictId !== undefined) descriptor.push(...u32le(o.dictId));
  const out = [...u32le(0x184d2204), ...descriptor, (xxh32(Uint8Array.from(descriptor)) >>> 8) & 0xff];
  for (const b of blocks) {
    const raw = !Array.isArray(b) && !(b instanceof Uint8Array);
    const data = raw ? b.raw : Uint8Array.from(b as ArrayLike<number>);
    out.push(...u32le((data.length | (raw ? 0x80000000 : 0)) >>> 0), ...Array.from(data));
    if (o.blockSums) out.push(...u32le(xxh32(data)));
  }
  out.push(0, 0, 0, 0);
  if (o.contentSum) out.push(...u32le(xxh32(o.contentSum)));
  return Uint8Array.from(out);
}

const lz4Error = (f: () => unknown, message: RegExp): void => {
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(Lz4FrameError);
  expect((caught as Error).message).toMatch(message);
};

describe("xxh32", () => {
  it("matches the reference values", () => {
    expect(xxh32(bytes(""))).toBe(0x02cc5d05);
    expect(xxh32(bytes("a"))).toBe(0x550d7456);
    expect(xxh32(bytes("abc"))).toBe(0x32d153ff);
    expect(xxh32(bytes("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f);
    expect(xxh32(bytes("xxabcxx"), 2, 5)).toBe(0x32d153ff);
  });
});

describe("decodeLz4Frames", () => {
  const expected = sample(140_000);

  it.each(Object.keys(CLI_FRAMES))("decodes frames made by the lz4 tool: %s", (name) => {
    const src = cliFrame(name);
    const out = decodeLz4Frames(src);
    expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
    // A fresh buffer of exactly the decoded size, starting at offset 0 (apache-arrow views it as any typed array).
    expect(out.byteOffset).toBe(0);
    expect(out.buffer.byteLength).toBe(expected.length);
  });

  it("decodes long literal runs, long and overlapping matches, stored blocks and matches into earlier blocks", () => {
    const text = bytes("abcdefghijklmnopqrstuvwxyz0123456789").subarray(0, 300);
    const long = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    const block1 = [
      ...sequence(long, { offset: 1, length: 4 + 15 + 255 + 10 }), // 300 literals (two length bytes), then a run of the last byte
      ...sequence(text.subarray(0, 3), { offset: 3, length: 40 }), // a period-3 pattern
      ...sequence(text.subarray(3, 20), { offset: 600, length: 5 }),
      ...sequence(text.subarray(20, 22)),
    ];
    const want: number[] = [...long];
    for (let i = 0; i < 284; i++) want.push(long[299]);
    want.push(...text.subarray(0, 3));
    for (let i = 0; i < 40; i++) want.push(want[want.length - 3]);
    want.push(...text.subarray(3, 20));
    for (let i = 0; i < 5; i++) want.push(want[want.length - 600]);
    want.push(...text.subarray(20, 22));
    const stored = Uint8Array.from({ length: 100 }, (_, i) => 255 - i);
    const before = want.length;
    want.push(...stored);
    const block3 = [...sequence([1, 2], { offset: want.length + 2 - 50, length: 30 }), ...sequence([9])]; // back into block 1
    want.push(1, 2, ...want.slice(50, 80), 9);
    const content = Uint8Array.from(want);
    const src = frame([block1, { raw: stored }, block3], { linked: true, blockSums: true, contentSize: content.length, contentSum: content });
    expect(before).toBe(300 + 284 + 3 + 40 + 17 + 5 + 2);
    expect(Array.from(decodeLz4Frames(src))).toEqual(want);
  });

  it("decodes concatenated frames and skips skippable frames", () => {
    const a = frame([sequence(bytes("first "))]);
    const skippable = concat(u32le(0x184d2a5f), u32le(3), [7, 7, 7]);
    const b = frame([sequence(bytes("second"))], { contentSum: bytes("second") });
    expect(Buffer.from(decodeLz4Frames(concat(skippable, a, skippable, b))).toString()).toBe("first second");
    expect(decodeLz4Frames(frame([]))).toHaveLength(0); // a frame of no blocks holds no bytes
  });

  it("refuses what is not a well-formed frame", () => {
    const good = frame([sequence(bytes("hello hello"))], { contentSum: bytes("hello hello") });
    expect(Buffer.from(decodeLz4Frames(good)).toString()).toBe("hello hello");
    lz4Error(() => decodeLz4Frames(new Uint8Array(0)), /no data/);
    lz4Error(() => decodeLz4Frames(bytes("definitely not lz4")), /bad magic number/);
    lz4Error(() => decodeLz4Frames(concat(u32le(0x184d2a50), u32le(0))), /only skippable/);
    lz4Error(() => decodeLz4Frames(concat(good, [1, 2])), /stray bytes/);
    const header = (at: number, value: number): Uint8Array => {
      const bad = good.slice();
      bad[at] = value;
      return bad;
    };
    lz4Error(() => decodeLz4Frames(header(4, 0x80 | 0x24)), /version/);
    lz4Error(() => decodeLz4Frames(header(6, good[6] ^ 1)), /header checksum/);
    lz4Error(() => decodeLz4Frames(frame([sequence([1])], { flgExtra: 0x02 })), /reserved bit/);
    lz4Error(() => decodeLz4Frames(frame([sequence([1])], { bd: 0x41 })), /reserved bits/);
    lz4Error(() => decodeLz4Frames(frame([sequence([1])], { bd: 0x30 })), /block maximum size id 3/);
    lz4Error(() => decodeLz4Frames(frame([sequence([1])], { dictId: 7 })), /dictionary/);
    lz4Error(() => decodeLz4Frames(header(good.length - 1, good[good.length - 1] ^ 0x80)), /content checksum mismatch/);
    const summed = frame([sequence(bytes("abc"))], { blockSums: true });
    lz4Error(() => decodeLz4Frames(Uint8Array.from(summed, (b, i) => (i === summed.length - 5 ? b ^ 1 : b))), /block checksum mismatch/);
    lz4Error(() => decodeLz4Frames(frame([sequence(bytes("abc"))], { contentSize: 4 })), /declares 4 bytes of content but decodes to 3/);
  });

  it("refuses corrupt blocks", () => {
    lz4Error(() => decodeLz4Frames(frame([sequence([1, 2], { offset: 0, length: 4 })])), /match offset 0/);
    lz4Error(() => decodeLz4Frames(frame([[...sequence([1, 2], { offset: 3, length: 4 }), ...sequence([0])]])), /match offset 3 points outside/);
    lz4Error(() => decodeLz4Frames(frame([[0x50, 1, 2]])), /literals run past the end/);
    lz4Error(() => decodeLz4Frames(frame([[0xf0, 255]])), /truncated literal length/);
    lz4Error(() => decodeLz4Frames(frame([[0x10, 1, 1]])), /truncated match offset/);
    lz4Error(() => decodeLz4Frames(frame([[0x1f, 1, 1, 0]])), /truncated match length/);
    lz4Error(() => decodeLz4Frames(frame([sequence([1], { offset: 1, length: 4 })])), /ends with a match/);
    // 64 KiB blocks: one that decodes to more, and one that is stored bigger.
    lz4Error(() => decodeLz4Frames(frame([[...sequence([1], { offset: 1, length: 65_600 }), ...sequence([2])]])), /more than the frame's block maximum size 65536/);
    lz4Error(() => decodeLz4Frames(frame([{ raw: new Uint8Array(65_537) }])), /exceeds the frame's block maximum size/);
  });

  it("refuses every truncation of a frame", () => {
    const content = bytes("truncate metruncate metruncate !");
    const src = frame([[...sequence(content.subarray(0, 11), { offset: 11, length: 20 }), ...sequence(bytes("!"))]], { blockSums: true, contentSize: 32, contentSum: content });
    expect(Buffer.from(decodeLz4Frames(src)).toString()).toBe("truncate metruncate metruncate !");
    for (let n = 1; n < src.length; n++) expect(() => decodeLz4Frames(src.subarray(0, n))).toThrow(Lz4FrameError);
  });

  it("never decodes a corrupted frame with a content checksum into other bytes", () => {
    const src = cliFrame("independentBlocks");
    let refused = 0;
    for (let at = 0; at < src.length; at += 19) {
      const bad = src.slice();
      bad[at] ^= 0x41;
      let out: Uint8Array | undefined;
      try {
        out = decodeLz4Frames(bad);
      } catch (err) {
        expect(err).toBeInstanceOf(Lz4FrameError);
        refused++;
        continue;
      }
      // Some changes do not change the content: another match offset into a run of equal bytes.
      expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
    }
    expect(refused).toBeGreaterThan(src.length / 19 - 5);
  });
});
