#!/usr/bin/env node
// `npm start` runs straight after `npm install` on a fresh clone: build first if the CLI
// has not been built, or if any source is newer than it.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const root = path.resolve(__dirname, "..");
const cli = path.join(root, "packages/cli/dist/cli.js");

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

const stale =
  !fs.existsSync(cli) ||
  ["core", "flight", "security", "resilience", "cluster", "cli"].some((p) => newestSource(path.join(root, "packages", p, "src")) > fs.statSync(cli).mtimeMs);
if (stale) {
  process.stderr.write("building BlackIce Flight (tsc -b)...\n");
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-b"], { cwd: root, stdio: "inherit" });
}
