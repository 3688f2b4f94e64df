import {
  settingsOf,
  MemoryStore,
  StatusCode,
  type CallInfo,
  type FlightStore,
  type Result,
} from "@blackice/flight-core";
import { adminActions, type AdminActionsOptions } from "./admin-actions";
import { circuitBreaker } from "./circuit-breaker";
import { captureLogger, expectFlightError, makeCall, settle } from "./test-calls";

const stores: MemoryStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});
function newStore(): MemoryStore {
  const s = new MemoryStore({ enableGC: false, maxMemoryBytes: 1000, defaultTtlMs: 0 });
  stores.push(s);
  return s;
}

function setup(extra: Partial<AdminActionsOptions> = {}, store: FlightStore = newStore()) {
  const { logger, lines } = captureLogger("info");
  const parts = adminActions({ logger, isAdmin: (call) => call.headers.has("x-admin"), ...extra });
  const actions = new Map(settingsOf(parts, "action").map((a) => [a.type, a]));
  const stats = settingsOf(parts, "stats")[0]!;
  // What createFlightServer does: tell the settings the server's store, and put it on every call.
  for (const p of settingsOf(parts, "lifecycle")) p.onCreate?.({ store });
  const admin = makeCall("doAction", { type: "", body: new Uint8Array() }, { headers: new Map([["x-admin", ["1"]]]), peer: "10.0.0.1:1", store }) as CallInfo;
  const nobody = makeCall("doAction", { type: "", body: new Uint8Array() }, { store }) as CallInfo;
  const run = async (type: string, body: unknown, as: CallInfo = admin): Promise<Record<string, unknown>> => {
    const raw = body === undefined ? new Uint8Array() : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const result = (await actions.get(type)!.handler(raw, as)) as Result;
    return JSON.parse(Buffer.from(result.body).toString("utf8"));
  };
  return { store: store as MemoryStore, logger, lines, actions, stats, admin, nobody, run };
}

test("offers the six admin actions with descriptions", () => {
  const { actions } = setup();
  expect([...actions.keys()].sort()).toEqual([
    "admin.get",
    "admin.reset-breaker",
    "admin.set-default-ttl",
    "admin.set-gc-interval",
    "admin.set-log-level",
    "admin.set-memory-limit",
  ]);
  for (const a of actions.values()) expect(a.description).toMatch(/^Admin: /);
});

test("admin.get reports limits, TTL, GC interval, log level and breaker states", async () => {
  const breaker = circuitBreaker({ name: "store" });
  const { run } = setup({ breakers: [breaker] });
  expect(await run("admin.get", undefined)).toEqual({
    memoryLimitBytes: 1000,
    defaultTtlMs: 0,
    gcIntervalMs: 30_000,
    logLevel: "info",
    breakers: { store: "closed" },
    changes: [],
  });
  breaker.shutdown();
});

test("setters change the store, answer previous and current, log the change and show it in stats", async () => {
  const { store, run, lines, stats } = setup();
  expect(await run("admin.set-memory-limit", { bytes: "2KiB" })).toEqual({ ok: true, previous: 1000, current: 2048 });
  expect(store.stats().memory.maxMemoryBytes).toBe(2048);
  expect(await run("admin.set-default-ttl", { ms: "1h" })).toEqual({ ok: true, previous: 0, current: 3_600_000 });
  expect(store.stats().ttl.defaultTtlMs).toBe(3_600_000);
  expect(await run("admin.set-gc-interval", { ms: 5000 })).toEqual({ ok: true, previous: 30_000, current: 5000 });

  const logged = lines().filter((l) => l.msg === "admin change");
  expect(logged.map((l) => l.action)).toEqual(["admin.set-memory-limit", "admin.set-default-ttl", "admin.set-gc-interval"]);
  expect(logged[0]).toMatchObject({ previous: 1000, current: 2048, peer: "10.0.0.1:1" });

  const s = stats.collect() as { changeCount: number; changes: Array<{ action: string }>; memoryLimitBytes: number; gcIntervalMs: number };
  expect(s.changeCount).toBe(3);
  expect(s.memoryLimitBytes).toBe(2048);
  expect(s.gcIntervalMs).toBe(5000);
  expect(s.changes.map((c) => c.action)).toEqual(["admin.set-memory-limit", "admin.set-default-ttl", "admin.set-gc-interval"]);
});

test("admin.set-log-level changes the server logger's level", async () => {
  const { logger, run } = setup();
  expect(await run("admin.set-log-level", { level: "debug" })).toEqual({ ok: true, previous: "info", current: "debug" });
  expect(logger.level).toBe("debug");
  await expectFlightError(() => run("admin.set-log-level", { level: "loud" }), StatusCode.INVALID_ARGUMENT);
  expect(logger.level).toBe("debug");
});

test("admin.reset-breaker closes an open breaker by name", async () => {
  const a = circuitBreaker({ name: "store", volumeThreshold: 1, resetTimeoutMs: 60_000 });
  const b = circuitBreaker({ name: "catalog" });
  const { run } = setup({ breakers: [a, b] });
  await expect(a.guard("x", async () => Promise.reject(new Error("down")))).rejects.toThrow();
  await settle();
  expect(a.state).toBe("open");
  expect(await run("admin.reset-breaker", { name: "store" })).toEqual({ ok: true, name: "store", previous: "open", current: "closed" });
  expect(a.state).toBe("closed");
  await expectFlightError(() => run("admin.reset-breaker", { name: "nope" }), StatusCode.NOT_FOUND);
  await expectFlightError(() => run("admin.reset-breaker", {}), StatusCode.INVALID_ARGUMENT); // two breakers: name required
  a.shutdown();
  b.shutdown();
});

test("non-admins are refused with PERMISSION_DENIED and nothing changes", async () => {
  const { store, run, nobody, lines, stats } = setup();
  for (const type of ["admin.get", "admin.set-memory-limit", "admin.set-log-level"]) {
    const err = await expectFlightError(() => run(type, { bytes: 1 }, nobody), StatusCode.PERMISSION_DENIED);
    expect(err.message).toBe(`${type} requires an admin caller`);
  }
  expect(store.stats().memory.maxMemoryBytes).toBe(1000);
  expect(lines().filter((l) => l.msg === "admin action denied")).toHaveLength(3);
  expect((stats.collect() as { denied: number }).denied).toBe(3);
});

test("without isAdmin every admin action is refused", async () => {
  const { run } = setup({ isAdmin: undefined });
  const err = await expectFlightError(() => run("admin.get", undefined), StatusCode.PERMISSION_DENIED);
  expect(err.message).toMatch(/grants admin access to no one/);
});

test("bad bodies and out-of-range values are INVALID_ARGUMENT and change nothing", async () => {
  const { store, run } = setup();
  await expectFlightError(() => run("admin.set-memory-limit", "not json"), StatusCode.INVALID_ARGUMENT);
  await expectFlightError(() => run("admin.set-memory-limit", [1]), StatusCode.INVALID_ARGUMENT);
  await expectFlightError(() => run("admin.set-memory-limit", { size: 5 }), StatusCode.INVALID_ARGUMENT);
  await expectFlightError(() => run("admin.set-memory-limit", { bytes: "lots" }), StatusCode.INVALID_ARGUMENT);
  const zero = await expectFlightError(() => run("admin.set-memory-limit", { bytes: 0 }), StatusCode.INVALID_ARGUMENT);
  expect(zero.message).toMatch(/maxMemoryBytes must be/);
  await expectFlightError(() => run("admin.set-gc-interval", { ms: 0 }), StatusCode.INVALID_ARGUMENT);
  await expectFlightError(() => run("admin.set-default-ttl", { ms: -1 }), StatusCode.INVALID_ARGUMENT);
  await expectFlightError(() => run("admin.set-default-ttl", "x".repeat(5000)), StatusCode.INVALID_ARGUMENT);
  expect(store.stats()).toMatchObject({ memory: { maxMemoryBytes: 1000 }, ttl: { defaultTtlMs: 0 } });
});

test("options are validated; the store option is gone", () => {
  expect(() => adminActions({ store: newStore() } as never)).toThrow(/the store and gcIntervalMs options are gone/);
  expect(() => adminActions({ isAdmin: true as never })).toThrow(/isAdmin must be a function/);
  expect(() => adminActions({ historySize: -1 })).toThrow(/historySize must be an integer from 0 to 10000/);
  expect(() => adminActions()).not.toThrow();
});

test("the actions change the store of the call; on a store without a capability a setter is UNIMPLEMENTED", async () => {
  const other = newStore();
  const { run, admin } = setup();
  const onOther = { ...admin, store: other } as CallInfo;
  expect(await run("admin.set-memory-limit", { bytes: 4096 }, onOther)).toEqual({ ok: true, previous: 1000, current: 4096 });
  expect(other.stats().memory.maxMemoryBytes).toBe(4096);

  const bare: FlightStore = {
    beginPut: other.beginPut.bind(other),
    get: other.get.bind(other),
    getByTicket: other.getByTicket.bind(other),
    ticketFor: other.ticketFor.bind(other),
    list: other.list.bind(other),
    delete: other.delete.bind(other),
    stats: () => ({ flights: 0, rows: 0, bytes: 0 }),
    close: async () => undefined,
  };
  const { run: runBare, admin: adminBare } = setup({}, bare);
  for (const [type, body] of [
    ["admin.set-memory-limit", { bytes: 1 }],
    ["admin.set-default-ttl", { ms: 1 }],
    ["admin.set-gc-interval", { ms: 1 }],
  ] as const) {
    const err = await expectFlightError(() => runBare(type, body, adminBare), StatusCode.UNIMPLEMENTED);
    expect(err.message).toMatch(/has no .* capability/);
  }
  expect(await runBare("admin.get", undefined, adminBare)).toMatchObject({ memoryLimitBytes: null, defaultTtlMs: null, gcIntervalMs: null });
});
