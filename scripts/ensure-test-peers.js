#!/usr/bin/env node
// Installs the test suite's real peers on first use, so that `npm test` works on a fresh
// clone (README): pyarrow, pytest, grpcio and the ADBC Flight SQL driver into .venv (requirements-test.txt), and
// arrow-go's Flight integration client and server into .cache/go-bin
// (scripts/install-go-peers.sh), and the Debian packages of DEBIAN_PEERS (apt-get, as root or
// through sudo). Each step is skipped when its peer is already there, so later runs cost a
// fraction of a second. Needs Python 3 with venv and Go on PATH, and a package registry; it
// says which one is missing instead of failing later in a test.
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const venvPython = path.join(root, ".venv", "bin", "python");
const requirements = path.join(root, "requirements-test.txt");
const stamp = path.join(root, ".venv", ".requirements-test.txt");

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit ${r.status}`;
    process.stderr.write(`ensure-test-peers: ${what} failed (${why})\n`);
    process.exit(1);
  }
}

function python() {
  const wanted = fs.readFileSync(requirements, "utf8");
  const have = fs.existsSync(stamp) ? fs.readFileSync(stamp, "utf8") : undefined;
  if (fs.existsSync(venvPython) && have === wanted) return;
  if (!fs.existsSync(venvPython)) {
    process.stdout.write("ensure-test-peers: creating .venv (first use)\n");
    run("python3", ["-m", "venv", path.join(root, ".venv")], "python3 -m venv .venv");
  }
  process.stdout.write("ensure-test-peers: installing requirements-test.txt into .venv\n");
  run(venvPython, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements], "pip install -r requirements-test.txt");
  fs.writeFileSync(stamp, wanted);
}

function go() {
  // The script itself checks the pinned version and returns at once when both binaries are there.
  run("bash", [path.join(root, "scripts", "install-go-peers.sh")], "scripts/install-go-peers.sh");
}

/**
 * Debian packages the tests start, each with the program that shows it is installed. Tests
 * find them at these paths.
 */
const DEBIAN_PEERS = [
  { pkg: "redis-server", program: "/usr/bin/redis-server" },
  { pkg: "chromium", program: "/usr/bin/chromium" },
];

function debian() {
  const missing = DEBIAN_PEERS.filter((p) => !fs.existsSync(p.program)).map((p) => p.pkg);
  if (missing.length === 0) return;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const sudo = root ? [] : ["sudo", "-n"];
  if (!root && spawnSync("sudo", ["-n", "true"]).status !== 0) {
    process.stderr.write(`ensure-test-peers: the tests need Debian packages ${missing.join(", ")}; install them (apt-get install ${missing.join(" ")}) or run as root\n`);
    process.exit(1);
  }
  process.stdout.write(`ensure-test-peers: installing ${missing.join(", ")} with apt-get (first use)\n`);
  const cmd = (args) => (sudo.length > 0 ? ["sudo", [...sudo.slice(1), ...args]] : [args[0], args.slice(1)]);
  run(...cmd(["apt-get", "update", "-qq"]), "apt-get update");
  run(...cmd(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]), `apt-get install ${missing.join(" ")}`);
}

python();
go();
debian();
