// Internal: read the first message of a client stream before the handler runs.

/**
 * Reads the first item of `source` and returns it with a stream that yields that item again
 * followed by the rest, so that a middleware can inspect the first message (a DoPut's
 * descriptor) and still hand the handler the whole stream. `first` is undefined when the
 * stream was empty. Returning (breaking out of) the new stream returns the source.
 */
export async function peekFirst<T>(source: AsyncIterable<T>): Promise<{ first: T | undefined; stream: AsyncIterableIterator<T> }> {
  const it = source[Symbol.asyncIterator]();
  const head = await it.next();
  let pending: IteratorResult<T> | undefined = head;
  const stream: AsyncIterableIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (pending !== undefined) {
        const p = pending;
        pending = undefined;
        return Promise.resolve(p);
      }
      return it.next();
    },
    return(value?: unknown): Promise<IteratorResult<T>> {
      pending = undefined;
      return it.return ? it.return(value) : Promise.resolve({ done: true, value: undefined as never });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return { first: head.done ? undefined : head.value, stream };
}
