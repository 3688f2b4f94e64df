/** How a watched stream ended. */
export type StreamEnd =
  /** The source reported `done`. */
  | { readonly kind: "done" }
  /** The source (or `onItem`) threw. */
  | { readonly kind: "error"; readonly error: unknown }
  /** The consumer stopped early (`return()`, e.g. `break` in `for await` or a cancelled call). */
  | { readonly kind: "returned" }
  /** `signal` was aborted; `reason` is its reason. */
  | { readonly kind: "aborted"; readonly reason: unknown };

/** Hooks of {@link watchIterable}. */
export interface WatchHooks<T> {
  /** Sees every item before the consumer does. Throwing fails the stream and stops the source. */
  onItem?: (item: T) => void;
  /** Called exactly once, however the stream ends (even if it is never iterated but `signal` aborts). */
  onEnd?: (end: StreamEnd) => void;
  /**
   * When aborted, a pending or later `next()` rejects with the signal's reason and the
   * source is stopped with `return()`, so a stuck source cannot hold the stream open.
   */
  signal?: AbortSignal;
}

const noop = (): void => {};

/**
 * Wraps an AsyncIterable to observe its items and its end. Unlike an `async function*`
 * wrapper, the end is reported even when the consumer calls `return()` before the first
 * `next()`, and a pending `next()` can be interrupted by `signal`.
 *
 * @example
 * const response = watchIterable(await next(call), {
 *   onItem: (m) => (bytes += m.dataBody.byteLength),
 *   onEnd: () => release(),
 *   signal: call.signal,
 * });
 */
export function watchIterable<T>(source: AsyncIterable<T>, hooks: WatchHooks<T>): AsyncIterable<T> {
  const { onItem, onEnd, signal } = hooks;
  let ended = false;
  let iterator: AsyncIterator<T> | undefined;
  let rejectPending: ((reason: unknown) => void) | undefined;

  const finish = (end: StreamEnd): void => {
    if (ended) return;
    ended = true;
    signal?.removeEventListener("abort", onAbort);
    onEnd?.(end);
  };
  const stopSource = (): void => {
    // The source's own cleanup errors have no consumer left to go to.
    if (iterator?.return) iterator.return().then(noop, noop);
  };
  function onAbort(): void {
    const reason = signal!.reason;
    finish({ kind: "aborted", reason });
    rejectPending?.(reason);
    rejectPending = undefined;
    stopSource();
  }
  if (signal?.aborted) finish({ kind: "aborted", reason: signal.reason });
  else signal?.addEventListener("abort", onAbort, { once: true });

  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      iterator ??= source[Symbol.asyncIterator]();
      const it = iterator;
      return {
        async next(): Promise<IteratorResult<T>> {
          if (signal?.aborted) {
            stopSource();
            throw signal.reason;
          }
          if (ended) return { done: true, value: undefined };
          let result: IteratorResult<T>;
          try {
            const pending = it.next();
            result = signal
              ? await new Promise<IteratorResult<T>>((resolve, reject) => {
                  rejectPending = reject;
                  pending.then(resolve, reject);
                })
              : await pending;
          } catch (error) {
            if (!signal?.aborted) finish({ kind: "error", error });
            throw error;
          } finally {
            rejectPending = undefined;
          }
          if (result.done) {
            finish({ kind: "done" });
            return result;
          }
          if (onItem) {
            try {
              onItem(result.value);
            } catch (error) {
              finish({ kind: "error", error });
              stopSource();
              throw error;
            }
          }
          return result;
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          finish({ kind: "returned" });
          try {
            await it.return?.(value);
          } catch {
            // Stopping the source is best effort; the consumer asked to stop, not for its errors.
          }
          return { done: true, value: value as T };
        },
        async throw(error?: unknown): Promise<IteratorResult<T>> {
          finish({ kind: "error", error });
          if (it.throw) return it.throw(error);
          throw error;
        },
      };
    },
  };
}

/**
 * Whether `v` can be iterated with `for await`.
 *
 * @example
 * if (isAsyncIterable(response)) response = watchIterable(response, { onEnd });
 */
export function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === "object" && v !== null && typeof (v as Record<symbol, unknown>)[Symbol.asyncIterator] === "function";
}
