/// <reference lib="dom" />
// The browser page in a real browser: Debian's headless Chromium driven by playwright-core
// (pointed at /usr/bin/chromium; nothing is downloaded). Flights are put with pyarrow; the page
// lists them, reads a 1M-row flight over plain HTTP and over gRPC-Web, draws a chart, and a
// server with auth on refuses it without credentials.
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import { basicTokenAuth } from "@blackice/flight-security";
import { run, venvPython } from "./helpers/python";

const CHROMIUM = "/usr/bin/chromium";
const PEER = path.join(__dirname, "python/browser_peer.py");
const RESULTS = path.resolve(__dirname, "../test-results");
const ROWS = 1_000_000;

interface PageWindow {
  flightPageReady: Promise<true | string>;
  flightPage: {
    selectPath(path: string): Promise<{ fields: string[]; points: number }>;
    readWhole(kind: "http" | "grpc-web", column: string): Promise<{ rows?: number; sum?: number; error?: string; httpStatus?: number }>;
  };
}

async function putWithPyarrow(port: number, rows: number, env: Record<string, string> = {}): Promise<Record<string, { rows: number; sumV?: number; sumCpu?: number }>> {
  const r = await run(venvPython(), [PEER, "put", `grpc+tcp://127.0.0.1:${port}`, String(rows)], { env, timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`browser_peer.py put failed (exit ${r.code}):\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("the flight page in headless Chromium", () => {
  let browser: Browser;
  let server: FlightServer;
  let page: Page;
  let put: Record<string, { rows: number; sumV?: number; sumCpu?: number }>;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm test installs Debian's chromium (scripts/ensure-test-peers.js)`);
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", webPage: true, gcInterval: 60_000 }));
    await server.start();
    put = await putWithPyarrow(server.port, ROWS);
    // --no-sandbox: the tests run as root on CI, where Chromium's sandbox refuses to start.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("loads the page, which lists the flights put by pyarrow", async () => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.port}/`);
    expect(await page.evaluate(() => (window as unknown as PageWindow).flightPageReady)).toBe(true);
    const names = await page.locator("#flights tbody tr td:first-child").allTextContents();
    expect(names.sort()).toEqual(["big/values", "telemetry/host-1"]);
    expect(await page.locator("#flights tbody tr", { hasText: "big/values" }).locator("td").nth(1).textContent()).toBe("1,000,000");
    expect(errors).toEqual([]);
  });

  it("reads the 1M-row flight over the HTTP Arrow endpoint and over gRPC-Web, with pyarrow's row count and checksum", async () => {
    const shown = await page.evaluate(() => (window as unknown as PageWindow).flightPage.selectPath("big/values"));
    expect(shown.fields).toEqual(["i", "v"]);
    const http = await page.evaluate(() => (window as unknown as PageWindow).flightPage.readWhole("http", "v"));
    expect(http).toMatchObject({ rows: ROWS, sum: put["big/values"]!.sumV });
    const grpcWeb = await page.evaluate(() => (window as unknown as PageWindow).flightPage.readWhole("grpc-web", "v"));
    expect(grpcWeb).toMatchObject({ rows: ROWS, sum: put["big/values"]!.sumV });
    expect(await page.locator("#read-result").textContent()).toContain("grpc-web: 1,000,000 rows");
    // The first rows table shows row 0 of the flight.
    expect(await page.locator("#rows tbody tr").count()).toBe(10);
    expect(await page.locator("#rows tbody tr").first().locator("td").first().textContent()).toBe("0");
  }, 120_000);

  it("draws cpu over time for the telemetry flight, and saves a screenshot", async () => {
    const shown = await page.evaluate(() => (window as unknown as PageWindow).flightPage.selectPath("telemetry/host-1"));
    expect(shown).toEqual({ fields: ["ts", "cpu", "host"], points: 600 });
    expect(await page.locator("#x-column").inputValue()).toBe("ts");
    expect(await page.locator("#y-column").inputValue()).toBe("cpu");
    const sum = await page.evaluate(() => (window as unknown as PageWindow).flightPage.readWhole("http", "cpu"));
    expect(sum.rows).toBe(600);
    expect(sum.sum).toBeCloseTo(put["telemetry/host-1"]!.sumCpu!, 6);
    // The line is drawn: the plot area holds pixels of the line's colour (#2b6cb0).
    const linePixels = await page.evaluate(() => {
      const canvas = document.getElementById("chart") as HTMLCanvasElement;
      const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - 0x2b) < 40 && Math.abs(data[i + 1]! - 0x6c) < 40 && Math.abs(data[i + 2]! - 0xb0) < 40) n++;
      return n;
    });
    expect(linePixels).toBeGreaterThan(500);
    fs.mkdirSync(RESULTS, { recursive: true });
    const file = path.join(RESULTS, "browser-page.png");
    await page.screenshot({ path: file, fullPage: true });
    expect(fs.statSync(file).size).toBeGreaterThan(10_000);
  });
});

describe("the page against a server with auth on", () => {
  let browser: Browser;
  let server: FlightServer;

  beforeAll(async () => {
    server = createFlightServer(
      serverConfig({ addr: "127.0.0.1:0", webPage: true }),
      basicTokenAuth({ validate: async (u, p) => (u === "alice" && p === "pw-alice-1" ? { subject: u } : undefined) }),
    );
    await server.start();
    await putWithPyarrow(server.port, 1000, { BLACKICE_TEST_USER: "alice", BLACKICE_TEST_PASSWORD: "pw-alice-1" });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("is refused without credentials: 401 over HTTP, UNAUTHENTICATED over gRPC-Web", async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    // The page itself is public; the flights are not.
    expect(await page.evaluate(() => (window as unknown as PageWindow).flightPageReady)).toMatch(/^UNAUTHENTICATED/);
    expect(await page.locator("#status").textContent()).toMatch(/^UNAUTHENTICATED/);
    const refused = await page.evaluate(async () => {
      const http = await fetch("/flight/big/values");
      const web = (window as unknown as { flightWeb: { grpcWebCall(m: string, b: Uint8Array): AsyncIterable<Uint8Array> } }).flightWeb;
      let grpcWeb = "no error";
      try {
        for await (const _ of web.grpcWebCall("ListFlights", new Uint8Array(0))) grpcWeb = "got a message";
      } catch (e) {
        grpcWeb = (e as { code: string }).code;
      }
      return { httpStatus: http.status, httpBody: await http.json(), grpcWeb };
    });
    expect(refused).toEqual({ httpStatus: 401, httpBody: { code: "UNAUTHENTICATED", message: expect.any(String) }, grpcWeb: "UNAUTHENTICATED" });
  });
});
