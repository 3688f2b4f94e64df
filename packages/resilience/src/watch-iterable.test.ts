import { watchIterable, type StreamEnd } from "./watch-iterable";
import { drain, fromArray, gatedStream } from "./test-calls";

function recorder(): { ends: StreamEnd[]; onEnd: (e: StreamEnd) => void } {
  const ends: StreamEnd[] = [];
  return { ends, onEnd: (e) => ends.push(e) };
}

test("reports items and a normal end once", async () => {
  const seen: number[] = [];
  const { ends, onEnd } = recorder();
  const w = watchIterable(fromArray([1, 2, 3]), { onItem: (n) => seen.push(n), onEnd });
  expect(await drain(w)).toEqual([1, 2, 3]);
  expect(seen).toEqual([1, 2, 3]);
  expect(ends).toEqual([{ kind: "done" }]);
});

test("a return() before the first next() still ends it and stops the source", async () => {
  const stream = gatedStream([1]);
  const { ends, onEnd } = recorder();
  const it = watchIterable(stream.iterable, { onEnd })[Symbol.asyncIterator]();
  await it.return?.();
  expect(ends).toEqual([{ kind: "returned" }]);
  expect(stream.returned()).toBe(true);
  expect(await it.next()).toEqual({ done: true, value: undefined });
});

test("an abort interrupts a pending next() with the signal's reason", async () => {
  const stream = gatedStream<number>([]);
  const controller = new AbortController();
  const { ends, onEnd } = recorder();
  const it = watchIterable(stream.iterable, { onEnd, signal: controller.signal })[Symbol.asyncIterator]();
  const pending = it.next();
  const reason = new Error("deadline");
  controller.abort(reason);
  await expect(pending).rejects.toBe(reason);
  expect(ends).toEqual([{ kind: "aborted", reason }]);
  expect(stream.returned()).toBe(true);
  await expect(it.next()).rejects.toBe(reason);
});

test("onItem throwing fails the stream and stops the source; source errors are reported", async () => {
  const stream = gatedStream([1, 2]);
  const { ends, onEnd } = recorder();
  const boom = new Error("over budget");
  const w = watchIterable(stream.iterable, {
    onItem: () => {
      throw boom;
    },
    onEnd,
  });
  await expect(drain(w)).rejects.toBe(boom);
  expect(ends).toEqual([{ kind: "error", error: boom }]);
  expect(stream.returned()).toBe(true);

  const failing = (async function* () {
    yield 1;
    throw new Error("source broke");
  })();
  const second = recorder();
  await expect(drain(watchIterable(failing, { onEnd: second.onEnd }))).rejects.toThrow("source broke");
  expect(second.ends[0]).toMatchObject({ kind: "error" });
});
