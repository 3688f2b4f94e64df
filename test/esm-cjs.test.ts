import { run } from "./helpers/python";

// Every package must load from both module systems, through its exports map only.
const PACKAGES = ["@blackice/flight-core", "@blackice/flight", "@blackice/flight/internal", "@blackice/flight-security", "@blackice/flight-resilience"];

describe("packages load from ESM and CommonJS host apps", () => {
  it.each(PACKAGES)("%s: require() and import give the same named exports", async (pkg) => {
    const cjs = await run(process.execPath, ["-e", `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(pkg)})).sort()))`]);
    expect(cjs.stderr).toBe("");
    const esm = await run(process.execPath, [
      "--input-type=module",
      "-e",
      `import * as m from ${JSON.stringify(pkg)}; console.log(JSON.stringify(Object.keys(m).filter((k) => k !== "default" && k !== "__esModule").sort()))`,
    ]);
    expect(esm.stderr).toBe("");
    const names = JSON.parse(cjs.stdout) as string[];
    expect(names.length).toBeGreaterThan(0);
    expect(JSON.parse(esm.stdout)).toEqual(names);
  });

  it("exposes only what the exports map names", async () => {
    const deep = await run(process.execPath, ["-e", `require("@blackice/flight/dist/server/store-handler.js")`]);
    expect(deep.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });

  it("keeps transport-author exports on the /internal subpath, out of the main barrel", async () => {
    const names = await run(process.execPath, [
      "-e",
      `const main = require("@blackice/flight"), internal = require("@blackice/flight/internal");
       console.log(JSON.stringify({ main: ["Http2GrpcTransport", "decodeFlightData", "flightServiceDefinition"].filter((n) => n in main), internal: typeof internal.Http2GrpcTransport }))`,
    ]);
    expect(names.stderr).toBe("");
    expect(JSON.parse(names.stdout)).toEqual({ main: [], internal: "function" });
  });

  it("a host app can build and start a server from ESM", async () => {
    const script = `
      import { serverConfig } from "@blackice/flight-core";
      import { createFlightServer } from "@blackice/flight";
      const s = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
      const { port } = await s.start();
      console.log(port > 0 ? "ok" : "no port");
      await s.shutdown({ graceMs: 10 });`;
    const result = await run(process.execPath, ["--input-type=module", "-e", script], { timeoutMs: 30_000 });
    expect(result.stdout.trim()).toBe("ok");
  });
});
