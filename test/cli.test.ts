import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { splitIpcStream } from "@blackice/flight-core";
import { FlightClient, cmdDescriptor, packFlightSql, pathDescriptor } from "@blackice/flight";
import { run } from "./helpers/python";

const CLI = path.resolve(__dirname, "../packages/flight/dist/cli.js");

describe("the CLI (built)", () => {
  it("starts, prints its address, and stops cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, [CLI, "--host", "127.0.0.1", "--port", "0", "--ttl", "30s", "--max-memory", "64MiB"]);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
          if (out.includes("\n")) resolve(out);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      expect(line).toMatch(/^BlackIce Flight listening on grpc\+tcp:\/\/127\.0\.0\.1:\d+\n/);
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("serves Prometheus metrics on --metrics-port", async () => {
    const child = spawn(process.execPath, [CLI, "--port", "0", "--metrics-port", "0", "--log-level", "silent"]);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        let text = "";
        child.stdout.on("data", (d) => {
          text += d;
          if (/metrics on .*\n/.test(text)) resolve(text);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      const url = /metrics on (http:\/\/\S+)/.exec(out)![1];
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toMatch(/blackice_flight_/);
      const base = url.replace(/\/metrics$/, "");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      // A put left open holds the shutdown's grace period: meanwhile /readyz says 503, /healthz 200.
      const port = Number(/listening on grpc\+tcp:\/\/[^:]+:(\d+)/.exec(out)![1]);
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

  it("prints its version with --version and exits 0", async () => {
    const r = await run(process.execPath, [CLI, "--version"], { timeoutMs: 20_000 });
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../packages/flight/package.json"), "utf8")) as { version: string };
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`blackice-flight ${pkg.version}\n`);
  });

  it("keeps flights in --data-dir, locks it against a second server, and unlocks it on SIGTERM", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-data-"));
    const child = spawn(process.execPath, [CLI, "--port", "0", "--data-dir", dir, "--fsync", "never", "--log-level", "silent"]);
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
          if (out.includes("listening on")) resolve();
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      expect(fs.readFileSync(path.join(dir, "LOCK"), "utf8")).toMatch(new RegExp(`^${child.pid}\n`));
      const second = await run(process.execPath, [CLI, "--port", "0", "--data-dir", dir, "--log-level", "silent"], { timeoutMs: 20_000 });
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
    const child = spawn(process.execPath, [CLI, "--host", "127.0.0.1", "--port", "0", "--query", "--log-level", "silent"]);
    let client: FlightClient | undefined;
    try {
      const uri = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
          const m = /listening on (grpc\+tcp:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      client = new FlightClient(uri);
      await client.putTable(pathDescriptor("cli", "t"), tableFromArrays({ a: Int32Array.from([1, 2]), b: Float64Array.from([0.5, 1.5]) }));
      const info = await client.getFlightInfo(cmdDescriptor(JSON.stringify({ flight: ["cli", "t"], columns: ["b"] })));
      const got = await client.getTable(info.endpoint[0]!.ticket!);
      expect(got.schema.fields.map((f) => f.name)).toEqual(["b"]);
      expect([...got.getChild("b")!]).toEqual([0.5, 1.5]);
    } finally {
      client?.close();
      child.kill("SIGKILL");
    }
  });

  it("serves Flight SQL with BLACKICE_FLIGHT_SQL=1: tables and statements", async () => {
    const child = spawn(process.execPath, [CLI, "--host", "127.0.0.1", "--port", "0", "--log-level", "silent"], { env: { ...process.env, BLACKICE_FLIGHT_SQL: "1" } });
    let client: FlightClient | undefined;
    try {
      const uri = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
          const m = /listening on (grpc\+tcp:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      client = new FlightClient(uri);
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

  it.each([
    [["--bogus"], /Unknown option '--bogus'/],
    [["--port", "99999"], /--port must be a whole number from 0 to 65535/],
    [["--ttl", "soon"], /--ttl: cannot read "soon"/],
    [["--max-memory", "lots"], /--max-memory: cannot read "lots"/],
  ])("refuses %p with a clear message and exit code 2", async (args, message) => {
    const result = await run(process.execPath, [CLI, ...args], { timeoutMs: 20_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Usage: blackice-flight/);
  });

  it("takes settings from the environment", async () => {
    const result = await run(process.execPath, [CLI], { env: { BLACKICE_PORT: "70000" }, timeoutMs: 20_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--port must be/);
  });

  it("serves the browser page, apache-arrow's browser build and CORS headers with --web and --cors-origin", async () => {
    const child = spawn(process.execPath, [CLI, "--port", "0", "--web", "--cors-origin", "http://page.test", "--log-level", "silent"]);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        let text = "";
        child.stdout.on("data", (d) => {
          text += d;
          if (/page on .*\n/.test(text)) resolve(text);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      const url = /page on (http:\/\/\S+)/.exec(out)![1]!;
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
