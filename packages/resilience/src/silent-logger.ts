import pino, { type Logger } from "pino";

let silent: Logger | undefined;

/**
 * A pino logger that writes nothing: level `silent` and a destination that drops every
 * line, so it opens no file descriptor and starts no worker. Created on first use and
 * shared (it holds no state that a caller could observe).
 *
 * @example
 * const logger = options.logger ?? silentLogger();
 */
export function silentLogger(): Logger {
  silent ??= pino({ level: "silent" }, { write() {} });
  return silent;
}
