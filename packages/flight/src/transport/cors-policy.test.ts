import { Readable } from "node:stream";
import { CorsPolicy } from "./cors-policy";
import type { HttpExchange } from "./http-exchange";

function exchange(method: string, headers: Record<string, string>) {
  const sent: { status?: number; headers?: Record<string, string> } = {};
  const ex = {
    method,
    headers,
    extraHeaders: {} as Record<string, string>,
    body: Readable.from([]),
    respond: (status: number, h: Record<string, string>) => Object.assign(sent, { status, headers: { ...ex.extraHeaders, ...h } }),
    end: () => undefined,
  };
  return { ex: ex as unknown as HttpExchange, sent, extra: ex.extraHeaders };
}

describe("CorsPolicy", () => {
  it("is off with no origins: no header, and a preflight gets no permission", () => {
    const cors = new CorsPolicy([]);
    expect(cors.enabled).toBe(false);
    const get = exchange("GET", { origin: "http://a.test" });
    expect(cors.apply(get.ex)).toBe(false);
    expect(get.extra).toEqual({});
    const pre = exchange("OPTIONS", { origin: "http://a.test", "access-control-request-method": "POST" });
    expect(cors.apply(pre.ex)).toBe(true);
    expect(pre.sent.status).toBe(204);
    expect(pre.sent.headers!["access-control-allow-origin"]).toBeUndefined();
  });

  it("allows listed origins only, case-insensitively, and varies on origin", () => {
    const cors = new CorsPolicy(["https://Page.test:8443"]);
    const ok = exchange("GET", { origin: "https://page.test:8443" });
    cors.apply(ok.ex);
    expect(ok.extra["access-control-allow-origin"]).toBe("https://page.test:8443");
    expect(ok.extra.vary).toBe("origin");
    const no = exchange("GET", { origin: "https://other.test" });
    cors.apply(no.ex);
    expect(no.extra["access-control-allow-origin"]).toBeUndefined();
    const pre = exchange("OPTIONS", { origin: "https://page.test:8443", "access-control-request-method": "POST" });
    cors.apply(pre.ex);
    expect(pre.sent.headers!["access-control-allow-methods"]).toContain("POST");
    expect(pre.sent.headers!["access-control-allow-headers"]).toContain("authorization");
  });

  it("answers * for any origin", () => {
    const cors = new CorsPolicy(["*"]);
    const ok = exchange("GET", { origin: "http://x.test" });
    cors.apply(ok.ex);
    expect(ok.extra["access-control-allow-origin"]).toBe("*");
  });

  it("refuses what is not an origin with a TypeError naming the valid forms", () => {
    for (const bad of ["page.test", "http://page.test/", "http://page.test/path", "ftp://x", ""]) {
      expect(() => new CorsPolicy([bad])).toThrow(/http\(s\):\/\/host\[:port\]/);
    }
  });
});
