#!/usr/bin/env node
// The `blackice-flight` command. A committed file rather than dist/cli.js itself, so that npm
// links the command at install time, before the package is built (in this repository,
// `npm start` builds it; a published package ships dist).
"use strict";
const path = require("node:path");
const fs = require("node:fs");

const cli = path.join(__dirname, "..", "dist", "cli.js");
if (!fs.existsSync(cli)) {
  process.stderr.write(`blackice-flight: ${cli} is missing; build the packages first (npm run build, or npm start)\n`);
  process.exit(1);
}
require(cli)
  .main(process.argv.slice(2), process.env)
  .catch((err) => {
    process.stderr.write(`blackice-flight: ${(err && err.stack) || err}\n`);
    process.exit(1);
  });
