import {
  settingsOf,
  FlightError,
  StatusCode,
  composeMiddleware,
  type FlightHandler,
  type FlightStore,
  type StoredFlight,
  type Ticket,
} from "@blackice/flight-core";
import { circuitBreaker, type FlightCircuitBreaker } from "./circuit-breaker";
import { guardedStore } from "./guarded-store";
import { FakeStore, captureLogger, expectFlightError, makeCall, settle, waitFor } from "./test-calls";

const internal = (): FlightError => new FlightError(StatusCode.INTERNAL, "disk on fire");

const breakers: FlightCircuitBreaker[] = [];
function make(options: Parameters<typeof circuitBreaker>[0]): FlightCircuitBreaker {
  const b = circuitBreaker(options);
  breakers.push(b);
  return b;
}
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
  jest.restoreAllMocks();
});

/** The fake store wrapped by `guardedStore(breaker)`, as the server would wrap its store. */
function guard(store: FakeStore, breaker: FlightCircuitBreaker): FlightStore {
  return settingsOf(guardedStore(breaker), "storeWrapper")[0]!.wrap(store);
}

/** Reads a whole async listing. */
async function listAll(store: FlightStore): Promise<StoredFlight[]> {
  const out: StoredFlight[] = [];
  for await (const f of store.list()) out.push(f);
  return out;
}

/** Runs `n` failing store reads, letting opossum count each. */
async function failReads(store: FakeStore, guarded: FlightStore, n: number): Promise<void> {
  store.failure = internal();
  for (let i = 0; i < n; i++) {
    await expect(guarded.get({ type: 1, path: ["a"], cmd: new Uint8Array() })).rejects.toThrow("disk on fire");
    await settle();
  }
}

const desc = { type: 1, path: ["a"], cmd: new Uint8Array() };

describe("circuitBreaker options", () => {
  test("invalid options are refused at build time, naming the option and its range", () => {
    expect(() => circuitBreaker({ resetTimeoutMs: 0 })).toThrow(/circuitBreaker: resetTimeoutMs must be an integer from 1 to 2147483647; got 0/);
    expect(() => circuitBreaker({ errorThresholdPercentage: 101 })).toThrow(/errorThresholdPercentage must be a number from 0 to 100/);
    expect(() => circuitBreaker({ timeoutMs: -1 })).toThrow(/timeoutMs \(0 = no timeout\) must be an integer/);
    expect(() => circuitBreaker({ name: "has space" })).toThrow(/name must be 1 to 64 characters/);
    expect(() => circuitBreaker({ ignoreCodes: [99] as never })).toThrow(/ignoreCodes must be an array of gRPC status codes/);
    expect(() => circuitBreaker({ resetTimout: 5 } as never)).toThrow(/unknown option "resetTimout"/);
  });
});

describe("circuitBreaker with guardedStore", () => {
  test("opens at the configured threshold on store failures, then fails fast with UNAVAILABLE and a retry hint", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 });
    const guarded = guard(store, breaker);

    await failReads(store, guarded, 3);
    expect(breaker.state).toBe("closed"); // below the volume threshold
    await failReads(store, guarded, 1);
    expect(breaker.state).toBe("open");

    store.failure = undefined;
    const before = store.ops.length;
    const err = await expectFlightError(() => guarded.get(desc), StatusCode.UNAVAILABLE);
    expect(store.ops.length).toBe(before); // the store was not touched
    expect(err.message).toMatch(/dependency "store" is unavailable: circuit open/);
    const hint = Number(err.metadata["retry-after-ms"]);
    expect(hint).toBeGreaterThan(0);
    expect(hint).toBeLessThanOrEqual(60_000);
    expect(breaker.stats().totals.rejected).toBe(1);
  });

  test("a failing handler dependency surfaces through composed middleware as UNAVAILABLE", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, resetTimeoutMs: 60_000 });
    const guarded = guard(store, breaker);
    const handler: FlightHandler = async (call) => {
      if (call.method !== "doGet") throw new Error("unexpected");
      const flight = await guarded.getByTicket(call.request.ticket);
      return (async function* () {
        yield { flightDescriptor: undefined, dataHeader: new Uint8Array(), dataBody: new Uint8Array(), appMetadata: new Uint8Array(), flight };
      })();
    };
    const chain = composeMiddleware([], handler);
    const ticket: Ticket = { ticket: new Uint8Array([1]) };
    store.failure = internal();
    await expect(chain(makeCall("doGet", ticket))).rejects.toThrow("disk on fire");
    await settle();
    expect(breaker.state).toBe("open");
    const err = await expectFlightError(() => chain(makeCall("doGet", ticket)), StatusCode.UNAVAILABLE);
    expect(err.metadata["retry-after-ms"]).toMatch(/^\d+$/);
  });

  test("goes half-open after resetTimeout and closes when the probe succeeds", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 2, resetTimeoutMs: 40 });
    const guarded = guard(store, breaker);
    await failReads(store, guarded, 2);
    expect(breaker.state).toBe("open");

    await waitFor(() => breaker.state === "halfOpen");
    store.failure = undefined;
    expect(await guarded.get(desc)).toBe(store.flight);
    await settle();
    expect(breaker.state).toBe("closed");
    expect(breaker.stats().transitions).toEqual({ open: 1, halfOpen: 1, closed: 1 });
  });

  test("a failing probe opens the circuit again", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 2, resetTimeoutMs: 40 });
    const guarded = guard(store, breaker);
    await failReads(store, guarded, 2);
    await waitFor(() => breaker.state === "halfOpen");
    await failReads(store, guarded, 1);
    expect(breaker.state).toBe("open");
    expect(breaker.stats().transitions.open).toBe(2);
  });

  test("client mistakes and limits never trip it", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1 });
    const guarded = guard(store, breaker);
    const codes = [
      StatusCode.INVALID_ARGUMENT,
      StatusCode.NOT_FOUND,
      StatusCode.UNAUTHENTICATED,
      StatusCode.PERMISSION_DENIED,
      StatusCode.ALREADY_EXISTS,
      StatusCode.FAILED_PRECONDITION,
      StatusCode.RESOURCE_EXHAUSTED,
    ];
    for (const code of codes) {
      for (let i = 0; i < 3; i++) {
        store.failure = new FlightError(code, "client side");
        await expect(guarded.get(desc)).rejects.toThrow("client side");
        await settle();
      }
    }
    expect(breaker.state).toBe("closed");
    expect(breaker.stats().totals.ignored).toBe(codes.length * 3);
    expect(breaker.stats().totals.failures).toBe(0);
    // ...while a real failure with the same settings opens it at once.
    await failReads(store, guarded, 1);
    expect(breaker.state).toBe("open");
  });

  test("ignoreCodes replaces the default set", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1, ignoreCodes: [StatusCode.INTERNAL] });
    const guarded = guard(store, breaker);
    await failReads(store, guarded, 3);
    expect(breaker.state).toBe("closed");
    store.failure = new FlightError(StatusCode.NOT_FOUND, "gone");
    await expect(guarded.get(desc)).rejects.toThrow("gone");
    await settle();
    expect(breaker.state).toBe("open");
  });

  test("puts are guarded step by step, and abort always goes through", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1 });
    const guarded = guard(store, breaker);
    const schema = {} as never;
    const tx = await guarded.beginPut(desc, schema);
    await tx.append(schema);
    store.failure = internal();
    await expect(tx.append(schema)).rejects.toThrow("disk on fire");
    await settle();
    expect(breaker.state).toBe("open");
    await expectFlightError(() => tx.commit(), StatusCode.UNAVAILABLE);
    await tx.abort();
    expect(store.aborted).toBe(1);
    expect(store.ops).toEqual(["beginPut", "append", "append"]);
    expect(breaker.stats().operations["store.append"]).toEqual({ calls: 2, failures: 1 });
  });

  test("list is guarded per step; stats and other members pass through", async () => {
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1 });
    const guarded = guard(store, breaker);
    expect(await listAll(guarded)).toHaveLength(2);
    expect(guarded.stats().flights).toBe(3);
    expect(guarded.ticketFor(store.flight)).toEqual(new Uint8Array([1]));

    store.failure = internal();
    await expect(listAll(guarded)).rejects.toThrow("disk on fire");
    await settle();
    expect(breaker.state).toBe("open");
    expect(guarded.stats().rows).toBe(300); // stats still work while open
    await expectFlightError(() => listAll(guarded), StatusCode.UNAVAILABLE);
  });
});

describe("circuitBreaker.guard", () => {
  test("a timeout aborts the guarded work's signal and fails with UNAVAILABLE", async () => {
    const breaker = make({ name: "catalog", timeoutMs: 20, volumeThreshold: 5 });
    let seen: AbortSignal | undefined;
    const work = (signal: AbortSignal): Promise<string> => {
      seen = signal;
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    };
    const err = await expectFlightError(() => breaker.guard("lookup", work), StatusCode.UNAVAILABLE);
    expect(err.message).toMatch(/dependency "catalog" timed out after 20 ms \(lookup\)/);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(err);
    await settle();
    expect(breaker.stats().totals.timeouts).toBe(1);
    expect(breaker.stats().totals.failures).toBe(1);
  });

  test("the caller's cancellation aborts the work and does not count", async () => {
    const breaker = make({ name: "catalog", volumeThreshold: 1, errorThresholdPercentage: 1 });
    const caller = new AbortController();
    let seen: AbortSignal | undefined;
    const pending = breaker.guard(
      "lookup",
      (signal) => {
        seen = signal;
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("stopped"))));
      },
      { signal: caller.signal },
    );
    caller.abort(new FlightError(StatusCode.CANCELLED, "client went away"));
    await expect(pending).rejects.toThrow("stopped");
    expect(seen?.aborted).toBe(true);
    await settle();
    expect(breaker.state).toBe("closed");
    expect(breaker.stats().totals.ignored).toBe(1);
    // An already-aborted caller never reaches the work.
    const work = jest.fn(async () => 1);
    await expect(breaker.guard("lookup", work, { signal: caller.signal })).rejects.toThrow("client went away");
    expect(work).not.toHaveBeenCalled();
  });

  test("returns the work's value and rethrows its errors unchanged", async () => {
    const breaker = make({ name: "catalog" });
    await expect(breaker.guard("ok", async () => 42)).resolves.toBe(42);
    await expect(breaker.guard("sync", () => "plain")).resolves.toBe("plain");
    const boom = new RangeError("boom");
    await expect(breaker.guard("bad", async () => Promise.reject(boom))).rejects.toBe(boom);
    expect(() => breaker.guard("", async () => 1)).toThrow(TypeError);
  });

  test("reset closes the circuit and starts a fresh window", async () => {
    const breaker = make({ name: "catalog", volumeThreshold: 2, resetTimeoutMs: 60_000 });
    const fail = async (): Promise<void> => {
      await expect(breaker.guard("x", async () => Promise.reject(internal()))).rejects.toThrow();
      await settle();
    };
    await fail();
    await fail();
    expect(breaker.state).toBe("open");
    expect(breaker.reset()).toBe(true);
    expect(breaker.state).toBe("closed");
    await fail(); // one failure in a fresh window: below the volume threshold
    expect(breaker.state).toBe("closed");
    await expect(breaker.guard("x", async () => "fine")).resolves.toBe("fine");
  });
});

describe("circuitBreaker reporting and lifecycle", () => {
  test("state and transitions appear in its stats section and in the logs", async () => {
    const { logger, lines } = captureLogger("info");
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, logger });
    const changes: string[] = [];
    breaker.onStateChange(({ from, to }) => changes.push(`${from}->${to}`));
    const section = settingsOf(breaker.parts, "stats")[0]!;
    expect(section.section).toBe("breaker:store");

    await failReads(store, guard(store, breaker), 1);
    const stats = section.collect() as ReturnType<FlightCircuitBreaker["stats"]>;
    expect(stats.state).toBe("open");
    expect(stats.transitions.open).toBe(1);
    expect(stats.lastFailure).toMatchObject({ operation: "store.get", error: "INTERNAL: disk on fire" });
    expect(changes).toEqual(["closed->open"]);
    const opened = lines().find((l) => l.msg === 'circuit of dependency "store" opened');
    expect(opened).toMatchObject({ level: 40, breaker: "store", from: "closed", to: "open" });
  });

  test("a throwing state listener goes to onError, not into the call", async () => {
    const onError = jest.fn();
    const store = new FakeStore();
    const breaker = make({ name: "store", volumeThreshold: 1, onError });
    breaker.onStateChange(() => {
      throw new Error("listener bug");
    });
    await failReads(store, guard(store, breaker), 1);
    expect(breaker.state).toBe("open");
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: "listener bug" }));
  });

  test("the lifecycle hook shuts it down and every timer it started is cleared", async () => {
    const intervals: unknown[] = [];
    const timeouts: unknown[] = [];
    const cleared = new Set<unknown>();
    const realSetInterval = global.setInterval;
    const realSetTimeout = global.setTimeout;
    jest.spyOn(global, "setInterval").mockImplementation(((fn: () => void, ms?: number) => {
      const t = realSetInterval(fn, ms);
      intervals.push(t);
      return t;
    }) as typeof setInterval);
    jest.spyOn(global, "setTimeout").mockImplementation(((fn: () => void, ms?: number) => {
      const t = realSetTimeout(fn, ms);
      timeouts.push(t);
      return t;
    }) as typeof setTimeout);
    const realClearInterval = global.clearInterval;
    const realClearTimeout = global.clearTimeout;
    jest.spyOn(global, "clearInterval").mockImplementation(((t: NodeJS.Timeout) => {
      cleared.add(t);
      realClearInterval(t);
    }) as typeof clearInterval);
    jest.spyOn(global, "clearTimeout").mockImplementation(((t: NodeJS.Timeout) => {
      cleared.add(t);
      realClearTimeout(t);
    }) as typeof clearTimeout);

    const store = new FakeStore();
    const breaker = circuitBreaker({ name: "store", volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeoutMs: 60_000, timeoutMs: 60_000 });
    const guarded = guard(store, breaker);
    await breaker.guard("ok", async () => 1);
    await failReads(store, guarded, 1); // opens: starts the 60 s reset timer
    expect(breaker.state).toBe("open");
    jest.restoreAllMocks(); // stop recording: the test's own waits are not the breaker's

    expect(intervals.length).toBeGreaterThan(0);
    const lifecycle = settingsOf(breaker.parts, "lifecycle")[0]!;
    await lifecycle.onShutdown?.();
    expect(breaker.state).toBe("shutdown");
    for (const t of [...intervals, ...timeouts]) {
      const destroyed = (t as { _destroyed?: boolean })._destroyed === true;
      expect(cleared.has(t) || destroyed).toBe(true);
    }
    await expectFlightError(() => guarded.get(desc), StatusCode.UNAVAILABLE);
    await expectFlightError(() => breaker.guard("late", async () => 1), StatusCode.UNAVAILABLE);
    breaker.shutdown(); // idempotent
    expect(breaker.reset()).toBe(false);
  });
});
