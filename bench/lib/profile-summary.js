// Where a .cpuprofile's time went: self time by function and by file (grpc-js, node:*, our
// packages), as printed by bench/profile.js and bench/profile-client.js.
"use strict";
const fs = require("node:fs");

function summarize(file, top, ROOT) {
  const prof = JSON.parse(fs.readFileSync(file, "utf8"));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map();
  const files = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const url = cf.url.replace(/^file:\/\//, "").replace(ROOT + "/", "");
    const name = `${cf.functionName || "(anonymous)"} ${url ? `${url.split("/").slice(-2).join("/")}:${cf.lineNumber + 1}` : ""}`.trim();
    fn.set(name, (fn.get(name) ?? 0) + us);
    const group = !url ? cf.functionName : url.includes("node_modules/@grpc") ? "grpc-js" : url.startsWith("node:") ? url : url.includes("packages/") ? url.split("/").slice(0, 2).join("/") : url;
    files.set(group, (files.get(group) ?? 0) + us);
  }
  const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + " %";
  const lines = [`total sampled ${(total / 1e6).toFixed(2)} s`, "", "self time by function:"];
  for (const [name, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${name}`);
  lines.push("", "self time by file/group:");
  for (const [name, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${name}`);
  return lines.join("\n");
}

module.exports = { summarize };
