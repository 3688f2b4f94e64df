import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { run } from "./helpers/python";

// What a user installs: every workspace package is packed with `npm pack`, the tarballs are
// installed (with their dependencies from the registry) into fresh host apps outside the
// repository, one ESM and one CommonJS, both strict TypeScript, and each compiles against the
// packed types and runs a server and a client; a third app installs only core and flight.

const ROOT = path.resolve(__dirname, "..");
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");
const NPM_TIMEOUT = 300_000;

interface Packed {
  name: string;
  filename: string;
  files: Array<{ path: string }>;
}

/** A server and a client from core and flight only; `extra` adds imports and server parts. */
const app = (extra: { imports: string; parts: string } = { imports: "", parts: "" }): string => `
import { serverConfig, StatusCode, FlightError } from "@blackice/flight-core";
import { FlightClient, createFlightServer, pathDescriptor } from "@blackice/flight";
import { FLIGHT_SERVICE_NAME, flightServiceDefinition } from "@blackice/flight/internal";
import { tableFromArrays } from "apache-arrow";
${extra.imports}
async function main(): Promise<void> {
  const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" })${extra.parts});
  const { port } = await server.start();
  const client = new FlightClient(\`grpc+tcp://127.0.0.1:\${port}\`);
  try {
    await client.putTable(pathDescriptor("packed", "app"), tableFromArrays({ x: Int32Array.from([1, 2, 3]) }));
    const table = await client.getTable(pathDescriptor("packed", "app"));
    const missing = await client.getFlightInfo(pathDescriptor("nothing")).catch((e: unknown) => e);
    const code: number = missing instanceof FlightError ? missing.code : -1;
    const doGetPath: string = flightServiceDefinition.doGet.path;
    const internal = doGetPath === \`/\${FLIGHT_SERVICE_NAME}/DoGet\` && flightServiceDefinition.doGet.responseStream;
    console.log(JSON.stringify({ rows: table.numRows, notFound: code === StatusCode.NOT_FOUND, internal }));
  } finally {
    client.close();
    await server.shutdown({ graceMs: 0 });
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

describe("the packed packages, installed into host apps outside the repository", () => {
  let work: string;
  let packed: Packed[];

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "blackice-packaging-"));
    const r = await run("npm", ["pack", "--workspaces", "--json", "--pack-destination", work], { cwd: ROOT, timeoutMs: NPM_TIMEOUT });
    if (r.code !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
    packed = JSON.parse(r.stdout) as Packed[];
  }, NPM_TIMEOUT);

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it("packs every package with README, LICENSE, dist and types, and no tests, test helpers or sources", () => {
    const workspaces = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;
    expect(packed.map((p) => p.name).sort()).toEqual(
      workspaces.map((w) => (JSON.parse(fs.readFileSync(path.join(ROOT, w, "package.json"), "utf8")) as { name: string }).name).sort(),
    );
    for (const p of packed) {
      const files = p.files.map((f) => f.path);
      expect({ name: p.name, has: ["README.md", "LICENSE", "package.json", "dist/index.js", "dist/index.d.ts", ...(p.name === "@blackice/flight" ? ["dist/internal.js", "dist/internal.d.ts"] : [])].filter((f) => !files.includes(f)) }).toEqual({ name: p.name, has: [] });
      const unwanted = files.filter((f) => /(^|\/)src\/|\.test\.|(^|\/)test-[^/]*$|tsbuildinfo/.test(f));
      expect({ name: p.name, unwanted }).toEqual({ name: p.name, unwanted: [] });
    }
  });

  /** Installs the named tarballs into a new strict TypeScript host app, compiles `source` there and runs it. */
  async function hostApp(type: string, moduleKind: string, names: string[], source: string): Promise<{ dir: string; stdout: string }> {
    const dir = fs.mkdtempSync(path.join(work, `app-${type}-`));
    const deps: Record<string, string> = Object.fromEntries(packed.filter((p) => names.includes(p.name)).map((p) => [p.name, `file:${path.join(work, p.filename)}`]));
    expect(Object.keys(deps).sort()).toEqual([...names].sort());
    fs.writeFileSync(
      path.join(dir, "package.json"),
      JSON.stringify({ name: `host-${type}`, private: true, type, dependencies: { ...deps, "apache-arrow": "^21.0.0", "@types/node": "^20.17.0" } }, null, 2),
    );
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, module: moduleKind, moduleResolution: moduleKind, target: "es2022", outDir: "out", types: ["node"], skipLibCheck: false } }),
    );
    fs.writeFileSync(path.join(dir, "app.ts"), source);
    // The packed packages depend on each other by version: npm takes the local tarballs for them.
    const install = await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, timeoutMs: NPM_TIMEOUT });
    expect(install.stderr).not.toMatch(/ERR!/);
    expect(install.code).toBe(0);
    const compile = await run(process.execPath, [TSC, "-p", "."], { cwd: dir, timeoutMs: 120_000 });
    expect(compile.stdout + compile.stderr).toBe("");
    const out = await run(process.execPath, [path.join(dir, "out/app.js")], { cwd: dir, timeoutMs: 60_000 });
    expect(out.stderr).toBe("");
    return { dir, stdout: out.stdout };
  }

  it.each([
    ["ESM", "module", "nodenext"],
    ["CommonJS", "commonjs", "node16"],
  ])("a strict TypeScript %s host app with every package compiles against the packed types, runs a server and a client, and has the CLI", async (_kind, type, moduleKind) => {
    // The cluster part is only built (it connects to Redis at start, which this app does not do);
    // test/cluster.test.ts runs it against real Redis servers.
    const source = app({
      imports: `import { cluster } from "@blackice/flight-cluster";\nimport { parseCli } from "@blackice/flight-cli";\nimport { callLogger } from "@blackice/flight-resilience";\nimport { hmacAuth } from "@blackice/flight-security";\nvoid cluster; void hmacAuth;\n`,
      parts: `, callLogger(), serverConfig({ ttl: parseCli(["--ttl", "1h"], {}).config.ttl })`,
    });
    const { dir, stdout } = await hostApp(type, moduleKind, packed.map((p) => p.name), source);
    expect(JSON.parse(stdout)).toEqual({ rows: 3, notFound: true, internal: true });
    // npm links the CLI package's bin into the app, as `npx blackice-flight` finds it.
    const version = await run(path.join(dir, "node_modules/.bin/blackice-flight"), ["--version"], { cwd: dir, timeoutMs: 60_000 });
    const cliVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, "packages/cli/package.json"), "utf8")) as { version: string }).version;
    expect({ code: version.code, stdout: version.stdout, stderr: version.stderr }).toEqual({ code: 0, stdout: `blackice-flight ${cliVersion}\n`, stderr: "" });
  }, NPM_TIMEOUT + 180_000);

  it("@blackice/flight installs and runs with only @blackice/flight-core: no security, resilience, cluster or CLI dependencies", async () => {
    const { dir, stdout } = await hostApp("commonjs", "node16", ["@blackice/flight-core", "@blackice/flight"], app());
    expect(JSON.parse(stdout)).toEqual({ rows: 3, notFound: true, internal: true });
    const installed = ["@blackice/flight-security", "@blackice/flight-resilience", "@blackice/flight-cluster", "@blackice/flight-cli", "pino", "prom-client", "ioredis", "jose", "opossum"].filter((name) =>
      fs.existsSync(path.join(dir, "node_modules", name)),
    );
    expect(installed).toEqual([]);
  }, NPM_TIMEOUT + 180_000);
});
