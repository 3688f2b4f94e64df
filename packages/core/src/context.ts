/**
 * A typed key for values that middleware publishes for later middleware and handlers
 * (for example the caller's identity). Keys are compared by identity, never by name.
 *
 * @example
 * export const kIdentity = createContextKey<Identity | undefined>("identity", undefined);
 * ctx.set(kIdentity, { subject: "alice" });
 * const who = ctx.get(kIdentity);
 */
export interface ContextKey<T> {
  readonly id: symbol;
  readonly description: string;
  readonly defaultValue: T;
}

/** Creates a new {@link ContextKey} with a default value returned when nothing was set. */
export function createContextKey<T>(description: string, defaultValue: T): ContextKey<T> {
  return { id: Symbol(description), description, defaultValue };
}

/** Per-call values, read and written through typed keys. */
export class CallContext {
  readonly #values = new Map<symbol, unknown>();

  /** The value under `key`, or its default. */
  get<T>(key: ContextKey<T>): T {
    return this.#values.has(key.id) ? (this.#values.get(key.id) as T) : key.defaultValue;
  }

  /** Sets the value under `key`; returns this context for chaining. */
  set<T>(key: ContextKey<T>, value: T): this {
    this.#values.set(key.id, value);
    return this;
  }

  /** Whether a value was set under `key`. */
  has(key: ContextKey<unknown>): boolean {
    return this.#values.has(key.id);
  }

  /** Removes the value under `key`. */
  delete(key: ContextKey<unknown>): this {
    this.#values.delete(key.id);
    return this;
  }
}
