import { CLI_FLAGS, UsageError, parseCli, usage } from "./cli-options";

describe("parseCli: --project-exchange", () => {
  it("is off unless asked for", () => {
    expect(parseCli([], {}).projectExchange).toBe(false);
  });

  it("is a switch: --project-exchange turns it on, and takes no value", () => {
    expect(parseCli(["--project-exchange"], {}).projectExchange).toBe(true);
    expect(() => parseCli(["--project-exchange=yes"], {})).toThrow(UsageError);
  });

  it.each([
    ["1", true],
    ["true", true],
    ["YES", true],
    ["on", true],
    ["0", false],
    ["false", false],
    ["no", false],
    ["off", false],
    ["", false],
  ])("reads BLACKICE_PROJECT_EXCHANGE=%p as %p", (value, on) => {
    expect(parseCli([], { BLACKICE_PROJECT_EXCHANGE: value }).projectExchange).toBe(on);
  });

  it("refuses any other value of BLACKICE_PROJECT_EXCHANGE, naming the valid ones", () => {
    expect(() => parseCli([], { BLACKICE_PROJECT_EXCHANGE: "maybe" })).toThrow(
      new UsageError('BLACKICE_PROJECT_EXCHANGE must be 1, true, yes, on, 0, false, no or off; got "maybe"'),
    );
  });

  it("the flag wins over the environment, as every flag does", () => {
    expect(parseCli(["--project-exchange"], { BLACKICE_PROJECT_EXCHANGE: "0" }).projectExchange).toBe(true);
  });

  it("is listed in --help with its environment variable", () => {
    expect(CLI_FLAGS.map((f) => f.flag)).toContain("project-exchange");
    expect(usage()).toMatch(/\n {2}--project-exchange +serve the `project` DoExchange .*\[BLACKICE_PROJECT_EXCHANGE\]\n/);
  });
});
