// Fault: the store starts failing. A MemoryStore wrapped so that every operation throws once
// a switch is flipped, guarded by a circuit breaker (guardedStore + the breaker's parts),
// served over a real socket. The breaker must open at its configured threshold, refuse fast
// with UNAVAILABLE and a retry-after-ms trailer that reaches the client, probe when half-open,
// and close once the store answers again.
import * as grpc from "@grpc/grpc-js";
import { MemoryStore, serverConfig, withStore, type FlightStore } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { RETRY_AFTER_MS, circuitBreaker, guardedStore, type BreakerStats } from "@blackice/flight-resilience";
import { connect, eventually, get, listPaths, makeFlight, pathDescriptor, put, stats, unary, type Client, type FlightInfoLike } from "./helpers";

/** A store whose every operation throws while `failing` is set, counting the calls that reached it. */
function flakyStore(inner: MemoryStore) {
  const state = { failing: false, reached: 0 };
  const ops = new Set(["beginPut", "get", "getByTicket", "list", "delete", "renew", "gc"]);
  const store = new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (!ops.has(String(prop))) return value.bind(target);
      return (...args: unknown[]) => {
        state.reached++;
        // A plain Error, like a broken disk or database driver would throw: no gRPC code.
        if (state.failing) throw new Error("injected store failure");
        return value.apply(target, args);
      };
    },
  });
  return { store: store as FlightStore, state };
}

const RESET_TIMEOUT_MS = 1500;
const VOLUME_THRESHOLD = 6;

describe("a failing store behind a circuit breaker", () => {
  const memory = new MemoryStore({ enableGC: false });
  const { store, state } = flakyStore(memory);
  const breaker = circuitBreaker({
    name: "store",
    volumeThreshold: VOLUME_THRESHOLD,
    errorThresholdPercentage: 50,
    resetTimeoutMs: RESET_TIMEOUT_MS,
    rollingWindowMs: 60_000, // nothing ages out of the window during the test
  });
  let server: FlightServer;
  let client: Client;
  let ticket: unknown;
  const breakerStats = async () => (await stats(client))["breaker:store"] as BreakerStats;
  const info = () => unary<FlightInfoLike>(client, "getFlightInfo", pathDescriptor("kept"), { deadline: Date.now() + 10_000 });

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), withStore(store), guardedStore(breaker), breaker.parts);
    await server.start();
    client = connect(server.port);
    await put(client, ["kept"], makeFlight(2, 1000));
    ticket = (await info()).endpoint[0].ticket;
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown({ graceMs: 100 });
    memory.close();
  });

  it("opens at the threshold, refuses fast with a retry hint, probes half-open, and closes after recovery", async () => {
    // The window holds the put's successes; with every later call failing, the circuit opens
    // at the first failure that brings it to volumeThreshold calls and over 50 % failures.
    const before = await breakerStats();
    expect(before.state).toBe("closed");
    const calls = before.window.calls;
    let toOpen = 1;
    while (calls + toOpen < VOLUME_THRESHOLD || (toOpen / (calls + toOpen)) * 100 <= 50) toOpen++;

    state.failing = true;
    for (let i = 1; i <= toOpen; i++) {
      // Each of these reaches the store and fails: INTERNAL, with the store's message kept private.
      const err = await info().catch((e) => e);
      expect({ call: i, code: err.code, details: err.details }).toEqual({ call: i, code: grpc.status.INTERNAL, details: "internal error" });
    }
    const opened = await breakerStats();
    expect(opened.state).toBe("open");
    expect(opened.transitions.open).toBe(1);
    expect(opened.totals.failures).toBe(toOpen);

    // Open: refused at once, without touching the store, on unary and streaming calls alike,
    // with the retry hint in the trailers.
    const reachedBefore = state.reached;
    const refusals = [
      await info().catch((e) => e),
      await listPaths(client).catch((e) => e),
      await get(client, ticket).catch((e) => e),
      await put(client, ["new"], makeFlight(1, 10)).catch((e) => e),
    ];
    for (const err of refusals) {
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toMatch(/circuit open/);
      const hint = Number((err.metadata as grpc.Metadata).get(RETRY_AFTER_MS)[0]);
      expect(hint).toBeGreaterThan(0);
      expect(hint).toBeLessThanOrEqual(RESET_TIMEOUT_MS);
    }
    expect(state.reached).toBe(reachedBefore);

    // Half-open after resetTimeoutMs; the probe hits the still-failing store and reopens the circuit.
    expect(await eventually(async () => (await breakerStats()).state === "halfOpen", RESET_TIMEOUT_MS * 4)).toBe(true);
    expect((await info().catch((e) => e)).code).toBe(grpc.status.INTERNAL);
    expect(state.reached).toBe(reachedBefore + 1);
    expect((await breakerStats()).state).toBe("open");
    expect((await info().catch((e) => e)).code).toBe(grpc.status.UNAVAILABLE);

    // The store recovers; the next probe succeeds and closes the circuit.
    state.failing = false;
    expect(await eventually(async () => (await breakerStats()).state === "halfOpen", RESET_TIMEOUT_MS * 4)).toBe(true);
    expect((await info()).totalRecords).toBe(2000);
    const closed = await breakerStats();
    expect(closed.state).toBe("closed");
    expect(closed.transitions).toEqual({ open: 2, halfOpen: 2, closed: 1 });

    // Closed: everything works again, the flight kept all along.
    const infoAfter = await info();
    expect(infoAfter.totalRecords).toBe(2000);
    expect((await get(client, infoAfter.endpoint[0].ticket)).length).toBe(3);
    await put(client, ["after"], makeFlight(1, 10));
    expect((await listPaths(client)).map((i) => i.flightDescriptor!.path.join("/")).sort()).toEqual(["after", "kept"]);
    expect((await stats(client)).memory.reserved).toBe(0);
  });
});
