import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { run } from "./helpers/python";

// What a user installs: every workspace package is packed with `npm pack`, the tarballs are
// installed (with their dependencies from the registry) into fresh host apps outside the
// repository, one ESM and one CommonJS, both strict TypeScript, and each compiles against the
// packed types and runs a server and a client.

const ROOT = path.resolve(__dirname, "..");
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");
const NPM_TIMEOUT = 300_000;

interface Packed {
  name: string;
  filename: string;
  files: Array<{ path: string }>;
}

const APP = `
import { serverConfig, StatusCode, FlightError } from "@blackice/flight-core";
import { FlightClient, createFlightServer, pathDescriptor } from "@blackice/flight";
import { FLIGHT_SERVICE_NAME, flightServiceDefinition } from "@blackice/flight/internal";
import { tableFromArrays } from "apache-arrow";

async function main(): Promise<void> {
  const server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }));
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

  it.each([
    ["ESM", "module", "nodenext"],
    ["CommonJS", "commonjs", "node16"],
  ])("a strict TypeScript %s host app compiles against the packed types and runs a server and a client", async (_kind, type, moduleKind) => {
    const app = fs.mkdtempSync(path.join(work, `app-${type}-`));
    const deps: Record<string, string> = Object.fromEntries(packed.map((p) => [p.name, `file:${path.join(work, p.filename)}`]));
    fs.writeFileSync(
      path.join(app, "package.json"),
      JSON.stringify({ name: `host-${type}`, private: true, type, dependencies: { ...deps, "apache-arrow": "^21.0.0", "@types/node": "^20.17.0" } }, null, 2),
    );
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, module: moduleKind, moduleResolution: moduleKind, target: "es2022", outDir: "out", types: ["node"], skipLibCheck: false } }),
    );
    fs.writeFileSync(path.join(app, "app.ts"), APP);
    // The packed packages depend on each other by version: npm takes the local tarballs for them.
    const install = await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: app, timeoutMs: NPM_TIMEOUT });
    expect(install.stderr).not.toMatch(/ERR!/);
    expect(install.code).toBe(0);
    const compile = await run(process.execPath, [TSC, "-p", "."], { cwd: app, timeoutMs: 120_000 });
    expect(compile.stdout + compile.stderr).toBe("");
    const out = await run(process.execPath, [path.join(app, "out/app.js")], { cwd: app, timeoutMs: 60_000 });
    expect(out.stderr).toBe("");
    expect(JSON.parse(out.stdout)).toEqual({ rows: 3, notFound: true, internal: true });
  }, NPM_TIMEOUT + 180_000);
});
