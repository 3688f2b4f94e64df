#!/usr/bin/env node
// Runs the compiled integration server or client:
//
//   node integration/run.js server --port 0 --scenario ordered
//   node integration/run.js client --host localhost --port 31337 --path file.json
//
// Builds first (tsc -b integration: the packages it references, then integration/ into
// .cache/integration-build) when any TypeScript source is newer than the last build, so it
// works straight after a checkout. `--no-build` (or INTEGRATION_NO_BUILD=1) skips the check,
// for a caller that has just built (the integration matrix test).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const root = path.resolve(__dirname, "..");
const outDir = path.join(root, ".cache", "integration-build");
const stamp = path.join(outDir, ".built");

function newestTs(dir) {
  let newest = 0;
  if (!fs.existsSync(dir)) return newest;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (entry.name.endsWith(".ts") || entry.name === "tsconfig.json") newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds when stale; returns quietly when up to date. Exported for the matrix test. */
function ensureBuilt({ force = false, quiet = false } = {}) {
  const sources = Math.max(
    newestTs(path.join(root, "integration")),
    ...["core", "flight", "security", "resilience"].map((p) => newestTs(path.join(root, "packages", p, "src"))),
  );
  if (!force && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= sources) return;
  if (!quiet) process.stderr.write("building integration (tsc -b integration)...\n");
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-b", path.join(root, "integration")], {
    cwd: root,
    stdio: quiet ? "pipe" : "inherit",
  });
  // @blackice/flight-security is loaded at run time by the scenarios that need it (auth),
  // so a security package that does not build yet only fails those scenarios.
  try {
    execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-b", path.join(root, "packages", "security")], { cwd: root, stdio: "pipe" });
  } catch (err) {
    if (!quiet) process.stderr.write(`warning: packages/security does not build; scenarios that need it will report a library gap\n${String(err.stdout || "").slice(0, 2000)}`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(stamp, new Date().toISOString());
}

module.exports = { ensureBuilt, outDir };

if (require.main === module) {
  const [which, ...rest] = process.argv.slice(2);
  if (which !== "server" && which !== "client") {
    process.stderr.write("usage: node integration/run.js server|client [--no-build] [flags...]\n");
    process.exit(2);
  }
  const noBuild = rest.includes("--no-build") || process.env.INTEGRATION_NO_BUILD === "1";
  const args = rest.filter((a) => a !== "--no-build");
  try {
    if (!noBuild) ensureBuilt();
  } catch (err) {
    process.stderr.write(`integration build failed: ${err.message}\n`);
    process.exit(1);
  }
  process.argv = [process.argv[0], path.join(outDir, `${which}.js`), ...args];
  require(path.join(outDir, `${which}.js`));
}
