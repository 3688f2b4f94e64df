import { settingsOf, FlightError, StatusCode } from "@blackice/flight-core";
import { clientBreaker, type ClientBreaker } from "./client-breaker";
import { expectFlightError, settle, waitFor } from "./test-calls";

const made: ClientBreaker[] = [];
function make(options: Parameters<typeof clientBreaker>[0]): ClientBreaker {
  const b = clientBreaker(options);
  made.push(b);
  return b;
}
afterEach(() => {
  for (const b of made.splice(0)) b.shutdown();
});

/** A fake remote call that fails with `code` while `failing.code` is set. */
function fakePeer(): { call: (x: number) => Promise<number>; failing: { code?: number; plain?: boolean }; calls: () => number } {
  let count = 0;
  const failing: { code?: number; plain?: boolean } = {};
  return {
    failing,
    calls: () => count,
    async call(x: number) {
      count++;
      if (failing.plain) throw new Error("ECONNRESET");
      if (failing.code !== undefined) throw Object.assign(new Error("remote"), { code: failing.code, details: "remote says no" });
      return x * 2;
    },
  };
}

test("UNAVAILABLE and DEADLINE_EXCEEDED from the peer open it; then calls fail fast without reaching the peer", async () => {
  const peer = fakePeer();
  const breaker = make({ name: "warehouse-1", volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 });
  const call = breaker.wrap(peer.call);
  await expect(call(2)).resolves.toBe(4);

  peer.failing.code = StatusCode.UNAVAILABLE;
  await expect(call(1)).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
  await settle();
  expect(breaker.state).toBe("closed"); // 1 of 2 failed: not above 50 %
  peer.failing.code = StatusCode.DEADLINE_EXCEEDED;
  await expect(call(1)).rejects.toMatchObject({ code: StatusCode.DEADLINE_EXCEEDED });
  await settle();
  expect(breaker.state).toBe("open");

  const reached = peer.calls();
  const err = await expectFlightError(() => call(1), StatusCode.UNAVAILABLE);
  expect(peer.calls()).toBe(reached);
  expect(err.message).toMatch(/peer "warehouse-1" is unavailable/);
  expect(Number(err.metadata["retry-after-ms"])).toBeGreaterThan(0);
});

test("answers that prove the peer is alive do not count", async () => {
  const peer = fakePeer();
  const breaker = make({ name: "p", volumeThreshold: 1, errorThresholdPercentage: 1 });
  const call = breaker.wrap(peer.call);
  for (const code of [StatusCode.NOT_FOUND, StatusCode.INVALID_ARGUMENT, StatusCode.PERMISSION_DENIED, StatusCode.INTERNAL]) {
    peer.failing.code = code;
    await expect(call(1)).rejects.toMatchObject({ code });
    await settle();
  }
  expect(breaker.state).toBe("closed");
  expect(breaker.stats().totals.ignored).toBe(4);
});

test("transport errors without a code count unless countUncodedErrors is false", async () => {
  const peer = fakePeer();
  peer.failing.plain = true;
  const counting = make({ name: "a", volumeThreshold: 1 });
  await expect(counting.wrap(peer.call)(1)).rejects.toThrow("ECONNRESET");
  await settle();
  expect(counting.state).toBe("open");

  const lenient = make({ name: "b", volumeThreshold: 1, countUncodedErrors: false });
  await expect(lenient.wrap(peer.call)(1)).rejects.toThrow("ECONNRESET");
  await settle();
  expect(lenient.state).toBe("closed");
});

test("half-opens after resetTimeout and a successful probe closes it", async () => {
  const peer = fakePeer();
  const breaker = make({ name: "p", volumeThreshold: 1, resetTimeoutMs: 30 });
  const call = breaker.wrap(peer.call);
  peer.failing.code = StatusCode.UNAVAILABLE;
  await expect(call(1)).rejects.toBeDefined();
  await settle();
  expect(breaker.state).toBe("open");
  await waitFor(() => breaker.state === "halfOpen");
  peer.failing.code = undefined;
  await expect(call(5)).resolves.toBe(10);
  expect(breaker.state).toBe("closed");
});

test("run() passes a signal that its timeout aborts", async () => {
  const breaker = make({ name: "p", timeoutMs: 20, volumeThreshold: 10 });
  let seen: AbortSignal | undefined;
  const err = await expectFlightError(
    () =>
      breaker.run((signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      }),
    StatusCode.UNAVAILABLE,
  );
  expect(err.message).toMatch(/timed out after 20 ms/);
  expect(seen?.aborted).toBe(true);
});

test("options are validated", () => {
  expect(() => clientBreaker({ failureCodes: [StatusCode.UNAVAILABLE, 17 as StatusCode] })).toThrow(/failureCodes must be an array of gRPC status codes/);
  expect(() => clientBreaker({ countUncodedErrors: "yes" as never })).toThrow(/countUncodedErrors must be a boolean/);
  expect(() => clientBreaker({ rollingWindowMs: 5, rollingBuckets: 10 })).toThrow(/rollingBuckets must be an integer from 1 to 5/);
});

test("its lifecycle part shuts it down; afterwards the wrapped function is refused with UNAVAILABLE", async () => {
  const peer = fakePeer();
  const breaker = clientBreaker({ name: "p" });
  expect(breaker.parts.map((p) => (typeof p === "function" ? "middleware" : p.kind))).toEqual(["stats", "lifecycle"]);
  await settingsOf(breaker.parts, "lifecycle")[0]!.onShutdown?.();
  const err = await expectFlightError(() => breaker.wrap(peer.call)(1), StatusCode.UNAVAILABLE);
  expect(err).toBeInstanceOf(FlightError);
  expect(peer.calls()).toBe(0);
  expect(breaker.state).toBe("shutdown");
});
