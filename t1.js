const pl = require("nodejs-polars");
const fs = require("fs");
const buf = fs.readFileSync("/tmp/t1.arrows");
(async () => {
const df = pl.readIPCStream(buf);
let t = Date.now();
const ctx = pl.SQLContext({ "telemetry/host-1": df.lazy() });
const lz = ctx.execute('SELECT host, count(*) AS n, avg(cpu) AS c, max(amount) AS m, min(ts) as t0 FROM "telemetry/host-1" WHERE cpu > 0.5 AND ts >= \'2026-12-01T00:00:00Z\' GROUP BY host ORDER BY host');
console.log(Object.getOwnPropertyNames(Object.getPrototypeOf(lz)).join(" "), Object.keys(lz).join(" "));
const r = await lz.collect();
console.log("sql ms", Date.now() - t, r.toString().slice(0, 900));
const out = r.writeIPCStream();
console.log("out bytes", out.length);
try { await ctx.execute('SELEC x').collect(); } catch (e) { console.log("bad:", e.message); }
try { await ctx.execute('SELECT * FROM nope').collect(); } catch (e) { console.log("nf:", e.message); }
try { await ctx.execute('SELECT nope FROM "telemetry/host-1"').collect(); } catch (e) { console.log("nc:", e.message); }
})();
