import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { splitIpcStream } from "@blackice/flight-core";
import { FlightClient, cmdDescriptor, packFlightSql, pathDescriptor } from "@blackice/flight";
import { CLI } from "./helpers/cli";
import { run } from "./helpers/python";

type LogEntry = { level: number; msg: string; [field: string]: unknown };

/**
 * Starts the built CLI and resolves once a JSON log line on stdout satisfies `until`, with
 * every stdout line so far (the test checks they are all JSON).
 */
function startLogged(
  args: string[],
  until: (e: LogEntry) => boolean,
  env?: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcessWithoutNullStreams; entry: LogEntry; lines: () => string[] }> {
  const child = spawn(process.execPath, [CLI, ...args], env ? { env: { ...process.env, ...env } } : {});
  let out = "";
  const lines = (): string[] => out.split("\n").filter((l) => l.length > 0);
  return new Promise((resolve, reject) => {
    let done = false;
    child.stdout.on("data", (d) => {
      out += d;
      if (done) return;
      for (const line of out.split("\n").slice(0, -1)) {
        let entry: LogEntry;
        try {
          entry = JSON.parse(line) as LogEntry;
        } catch {
          continue;
        }
        if (until(entry)) {
          done = true;
          resolve({ child, entry, lines });
          return;
        }
      }
    });
    child.on("exit", (code) => reject(new Error(`exited early with ${code}: ${out}`)));
  });
}

const listening = (e: LogEntry): boolean => typeof e.port === "number" && typeof e.location === "string";

/** Runs the built CLI to its exit (for the settings it refuses). */
const runCli = (args: string[], env?: NodeJS.ProcessEnv) => run(process.execPath, [CLI, ...args], { env, timeoutMs: 20_000 });

describe("the CLI (built)", () => {
  it("starts, logs its address, writes only JSON lines on stdout (not a terminal), and stops cleanly on SIGTERM", async () => {
    const { child, entry, lines } = await startLogged(["--host", "127.0.0.1", "--port", "0", "--ttl", "30s", "--max-memory", "64MiB"], listening);
    try {
      expect(entry.location).toBe(`grpc+tcp://127.0.0.1:${entry.port}`);
      expect(entry.msg).toBe(`BlackIce Flight listening on grpc+tcp://127.0.0.1:${entry.port}`);
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      const all = lines();
      expect(all.length).toBeGreaterThanOrEqual(2);
      for (const line of all) expect(() => JSON.parse(line)).not.toThrow();
      expect(all.map((l) => (JSON.parse(l) as LogEntry).msg)).toContain("shutting down");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("logs in pino-pretty's form, not JSON, when stdout is a terminal", async () => {
    // util-linux's `script` gives the CLI a pseudo-terminal as stdout.
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} --port 0 --log-level info`;
    const child = spawn("script", ["-qfec", command, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    try {
      const out = await new Promise<string>((resolve, reject) => {
        let text = "";
        child.stdout.on("data", (d) => {
          text += d;
          if (/listening on grpc\+tcp:\/\/127\.0\.0\.1:\d+/.test(text)) resolve(text);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}: ${text}`)));
      });
      expect(out).toMatch(/INFO/);
      expect(out).not.toMatch(/\{"level":/);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("serves Prometheus metrics, /healthz and /readyz on --metrics-port", async () => {
    const { child, lines } = await startLogged(["--port", "0", "--metrics-port", "0"], (e) => typeof e.metrics === "string");
    try {
      const logged = lines().map((l) => JSON.parse(l) as LogEntry);
      const url = logged.find((e) => typeof e.metrics === "string")!.metrics as string;
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toMatch(/blackice_flight_/);
      const base = url.replace(/\/metrics$/, "");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      // A put left open holds the shutdown's grace period: meanwhile /readyz says 503, /healthz 200.
      const port = logged.find(listening)!.port as number;
      const client = new FlightClient(`grpc+tcp://127.0.0.1:${port}`);
      const [schema] = splitIpcStream(tableToIPC(tableFromArrays({ x: Int32Array.from([1]) }), "stream"));
      const never = (async function* () {
        yield { dataHeader: schema!.header, dataBody: schema!.body };
        await new Promise(() => undefined);
      })();
      const call = client.doPutRaw(pathDescriptor("held"), never).results[Symbol.asyncIterator]().next().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      child.kill("SIGKILL");
      await call;
      client.close();
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("--grace bounds how long an open call holds the shutdown", async () => {
    const { child, entry } = await startLogged(["--port", "0", "--grace", "500ms"], listening);
    const client = new FlightClient(`grpc+tcp://127.0.0.1:${entry.port}`);
    try {
      const [schema] = splitIpcStream(tableToIPC(tableFromArrays({ x: Int32Array.from([1]) }), "stream"));
      const never = (async function* () {
        yield { dataHeader: schema!.header, dataBody: schema!.body };
        await new Promise(() => undefined);
      })();
      const call = client.doPutRaw(pathDescriptor("held"), never).results[Symbol.asyncIterator]().next().catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      const t0 = Date.now();
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      const took = Date.now() - t0;
      // The put holds the shutdown for the grace, then is cut; the default grace is 10 s.
      expect(took).toBeGreaterThanOrEqual(450);
      expect(took).toBeLessThan(8_000);
      await call;
    } finally {
      client.close();
      child.kill("SIGKILL");
    }
  });

  it("prints its version with --version and exits 0", async () => {
    const r = await runCli(["--version"]);
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../packages/cli/package.json"), "utf8")) as { version: string };
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`blackice-flight ${pkg.version}\n`);
  });

  it("keeps flights in --data-dir, locks it against a second server, and unlocks it on SIGTERM", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-data-"));
    const { child } = await startLogged(["--port", "0", "--data-dir", dir, "--fsync", "never"], listening);
    try {
      expect(fs.readFileSync(path.join(dir, "LOCK"), "utf8")).toMatch(new RegExp(`^${child.pid}\n`));
      const second = await runCli(["--port", "0", "--data-dir", dir, "--log-level", "silent"]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(new RegExp(`data directory .* is locked by process ${child.pid}`));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(fs.existsSync(path.join(dir, "LOCK"))).toBe(false);
    } finally {
      child.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves queries with --query", async () => {
    const { child, entry } = await startLogged(["--host", "127.0.0.1", "--port", "0", "--query"], listening);
    const client = new FlightClient(entry.location as string);
    try {
      await client.putTable(pathDescriptor("cli", "t"), tableFromArrays({ a: Int32Array.from([1, 2]), b: Float64Array.from([0.5, 1.5]) }));
      const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ flight: ["cli", "t"], columns: ["b"] })));
      const got = await client.getTable(info.endpoint[0]!.ticket!);
      expect(got.schema.fields.map((f) => f.name)).toEqual(["b"]);
      expect([...got.getChild("b")!]).toEqual([0.5, 1.5]);
    } finally {
      client.close();
      child.kill("SIGKILL");
    }
  });

  it("serves Flight SQL with BLACKICE_FLIGHT_SQL=1: tables and statements", async () => {
    const { child, entry } = await startLogged(["--host", "127.0.0.1", "--port", "0"], listening, { BLACKICE_FLIGHT_SQL: "1" });
    let client: FlightClient | undefined;
    try {
      client = new FlightClient(entry.location as string);
      await client.putTable(pathDescriptor("cli", "t"), tableFromArrays({ a: Int32Array.from([1, 2]), b: Float64Array.from([0.5, 1.5]) }));
      const tables = await client.getFlightInfo(cmdDescriptor(packFlightSql("CommandGetTables", { tableTypes: [], includeSchema: false })));
      expect([...(await client.getTable(tables.endpoint[0]!.ticket!)).getChild("table_name")!]).toEqual(["cli/t"]);
      const statement = await client.getFlightInfo(cmdDescriptor(packFlightSql("CommandStatementQuery", { query: 'SELECT b FROM "cli/t" WHERE a > 1' })));
      expect([...(await client.getTable(statement.endpoint[0]!.ticket!)).getChild("b")!]).toEqual([1.5]);
    } finally {
      client?.close();
      child.kill("SIGKILL");
    }
  }, 60_000);

  describe("refuses a bad value with one line naming its flag or variable, and exit code 2", () => {
    it.each([
      [["--bogus"], {}, /Unknown option '--bogus'/],
      [["--port", "99999"], {}, /--port must be a whole number from 0 to 65535/],
      [["--ttl", "soon"], {}, /--ttl: cannot read "soon"/],
      [["--ttl", "-5s"], {}, /--ttl: cannot read "-5s"/],
      [["--ttl"], {}, /--ttl needs a value/],
      [["--max-memory", "lots"], {}, /--max-memory: cannot read "lots"/],
      [["--max-memory", "0"], {}, /--max-memory must be at least 1 byte/],
      [["--max-message-size", "1GiB"], {}, /--max-message-size must be from 1KiB to 256MiB/],
      [["--grace", "forever"], {}, /--grace: cannot read "forever"/],
      [["--grace", "2h"], {}, /--grace must be from 0 to 1h/],
      [["--cors-origin", "https://a.test/page"], {}, /^blackice-flight: --cors-origin: corsOrigins: "https:\/\/a.test\/page" is not an origin/],
      [["--fsync", "never"], {}, /--fsync needs --data-dir/],
      [[], { BLACKICE_PORT: "abc" }, /BLACKICE_PORT must be a whole number from 0 to 65535, got "abc"/],
      [[], { BLACKICE_MAX_MEMORY: "0" }, /BLACKICE_MAX_MEMORY must be at least 1 byte/],
      [[], { BLACKICE_TTL: "-1" }, /BLACKICE_TTL: cannot read "-1"/],
      [[], { BLACKICE_GRACE: "x" }, /BLACKICE_GRACE: cannot read "x"/],
      [[], { BLACKICE_QUERY: "maybe" }, /BLACKICE_QUERY must be 1, true, yes, on, 0, false, no or off/],
      [[], { BLACKICE_CORS_ORIGIN: "ftp://x" }, /^blackice-flight: BLACKICE_CORS_ORIGIN: corsOrigins: "ftp:\/\/x" is not an origin/],
    ])("%p %p", async (args, env, message) => {
      const result = await runCli(args, env as NodeJS.ProcessEnv);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stdout).toBe("");
    });

    it("names the environment variable, not the flag, for a value from the environment", async () => {
      const result = await runCli([], { BLACKICE_PORT: "abc" });
      expect(result.stderr).not.toMatch(/--port/);
    });
  });

  describe("--config FILE", () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-config-"));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Starts the CLI and resolves with its port once it listens. */
    async function started(args: string[], env?: NodeJS.ProcessEnv): Promise<{ port: number; child: ChildProcessWithoutNullStreams }> {
      const { child, entry } = await startLogged(args, listening, env);
      return { port: entry.port as number, child };
    }

    it("reads YAML with the flags' names as keys", async () => {
      const file = path.join(dir, "server.yaml");
      fs.writeFileSync(file, "# a config file\nhost: 127.0.0.1\nport: 0\nquery: true\nmax-memory: 64MiB\ncors-origin:\n  - https://a.test\n");
      const { port, child } = await started(["--config", file]);
      const client = new FlightClient(`grpc+tcp://127.0.0.1:${port}`);
      try {
        // query: true serves query descriptors.
        await client.putTable(pathDescriptor("cfg"), tableFromArrays({ a: Int32Array.from([1]), b: Int32Array.from([2]) }));
        const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ flight: ["cfg"], columns: ["b"] })));
        expect((await client.getTable(info.endpoint[0]!.ticket!)).schema.fields.map((f) => f.name)).toEqual(["b"]);
        const res = await fetch(`http://127.0.0.1:${port}/flights`, { headers: { origin: "https://a.test" } });
        expect(res.headers.get("access-control-allow-origin")).toBe("https://a.test");
      } finally {
        client.close();
        child.kill("SIGKILL");
      }
    });

    it("reads JSON; a flag overrides the file, and the file overrides the environment", async () => {
      const file = path.join(dir, "server.json");
      fs.writeFileSync(file, JSON.stringify({ port: 0, "metrics-port": 0, "log-level": "info" }));
      // --metrics-port wins over the file (it is refused: 70000).
      const refused = await runCli(["--config", file, "--metrics-port", "70000"]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--metrics-port must be a whole number from 0 to 65535, got "70000"/);
      // A bad value in the file is named by its key and the file; the environment's is not reached.
      fs.writeFileSync(file, JSON.stringify({ port: "abc" }));
      const badKey = await runCli(["--config", file], { BLACKICE_PORT: "also-bad" });
      expect(badKey.code).toBe(2);
      expect(badKey.stderr).toContain(`port in ${file} must be a whole number from 0 to 65535, got "abc"`);
      // The file's port 0 is used: the environment's bad value is never read.
      fs.writeFileSync(file, JSON.stringify({ port: 0 }));
      const { child } = await started(["--config", file], { BLACKICE_PORT: "abc" });
      child.kill("SIGKILL");
      // BLACKICE_CONFIG names the file too; a flag still wins over it.
      const fromEnv = await started(["--port", "0"], { BLACKICE_CONFIG: file, BLACKICE_PORT: "abc" });
      fromEnv.child.kill("SIGKILL");
      const flagWins = await runCli(["--port", "abc"], { BLACKICE_CONFIG: file });
      expect(flagWins.stderr).toMatch(/^blackice-flight: --port must be/);
    });

    it.each([
      ["unknown.yaml", "port: 0\nmax-memroy: 1GiB\n", /unknown key "max-memroy" in .*unknown\.yaml/],
      ["nested.yaml", "config: other.yaml\n", /unknown key "config" in .*nested\.yaml/],
      ["list.yaml", "- port\n", /must hold a mapping of settings/],
      ["broken.json", "{ port: 0", /broken\.json is not valid JSON/],
      ["broken.yaml", "port: [0\n", /broken\.yaml is not valid YAML/],
      ["switch.yaml", "query: maybe\n", /query in .*switch\.yaml must be true or false/],
      ["ttl.yaml", "ttl: -5s\n", /ttl in .*ttl\.yaml: cannot read "-5s"/],
    ])("refuses %s with one line naming the key and the file, exit code 2", async (name, text, message) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      const result = await runCli(["--config", file]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    });

    it("refuses a file it cannot read, naming the flag", async () => {
      const result = await runCli(["--config", path.join(dir, "missing.yaml")]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--config: cannot read .*missing\.yaml: ENOENT/);
    });
  });

  it.each([
    ["--port", "cannot listen on 127.0.0.1:PORT: the port is already in use (choose another with --port)"],
    ["--metrics-port", "cannot serve metrics on port PORT: the port is already in use (choose another with --metrics-port)"],
  ])("a %s already in use gives one clear line and exit code 1", async (flag, line) => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const args = flag === "--port" ? ["--port", String(port)] : ["--port", "0", "--metrics-port", String(port)];
      const result = await runCli([...args, "--log-level", "silent"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`blackice-flight: ${line.replace("PORT", String(port))}\n`);
    } finally {
      blocker.close();
    }
  });

  it("serves the browser page, apache-arrow's browser build and CORS headers with --web and --cors-origin", async () => {
    const { child, entry } = await startLogged(["--port", "0", "--web", "--cors-origin", "http://page.test"], (e) => typeof e.page === "string");
    try {
      const url = entry.page as string;
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      expect(await page.text()).toContain("/web/arrow.js");
      for (const file of ["app.js", "flight-web.js", "arrow.js", "style.css"]) {
        const res = await fetch(`${url}web/${file}`);
        expect([file, res.status]).toEqual([file, 200]);
      }
      expect((await fetch(`${url}web/../package.json`)).status).toBe(404);
      const listing = await fetch(`${url}flights`, { headers: { origin: "http://page.test" } });
      expect(await listing.json()).toEqual([]);
      expect(listing.headers.get("access-control-allow-origin")).toBe("http://page.test");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
