import { composeMiddleware, type FlightHandler, type FlightMiddleware } from "./middleware";
import { serverParts, settingsOf, splitServerParts, statsSection, onLifecycle } from "./server-parts";

const mw =
  (tag: string, log: string[]): FlightMiddleware =>
  (next) =>
  (call) => (log.push(tag), next(call));

describe("serverParts, the one shape factories return", () => {
  it("flattens nested lists in order, freezes the result, and refuses what is not a part", () => {
    const log: string[] = [];
    const a = mw("a", log);
    const stats = statsSection("s", () => 1);
    const life = onLifecycle({});
    const parts = serverParts(a, [stats, [life]]);
    expect(parts).toEqual([a, stats, life]);
    expect(Object.isFrozen(parts)).toBe(true);
    expect(() => serverParts(42 as never)).toThrow(/serverParts: expected a middleware function or a setting object with a "kind", got number/);
    expect(() => splitServerParts([null as never])).toThrow(/createFlightServer: expected .* got null/);
  });

  it("settingsOf picks the settings of one kind; composeMiddleware takes parts and skips their settings", async () => {
    const log: string[] = [];
    const parts = serverParts(mw("a", log), statsSection("s", () => 7), mw("b", log));
    expect(settingsOf(parts, "stats").map((s) => s.collect())).toEqual([7]);
    expect(settingsOf(parts, "lifecycle")).toEqual([]);
    const handler: FlightHandler = async () => ({}) as never;
    await composeMiddleware([parts], handler)({ method: "getFlightInfo" } as never);
    expect(log).toEqual(["a", "b"]);
  });
});
