// EXPERIMENT (preload with `node -r`), not used by `npm run bench`: advertises a larger HTTP/2
// SETTINGS_MAX_FRAME_SIZE from the server (default 16 KiB), so that peers may send bigger DATA
// frames: fewer chunks for grpc-js to handle per DoPut message. BENCH_MAX_FRAME_SIZE sets it
// (default 1 MiB). BENCH_EXPERIMENT_VERBOSE=1 logs each session's remote settings.
"use strict";
const http2 = require("node:http2");

const size = Number(process.env.BENCH_MAX_FRAME_SIZE || 1 << 20);
const original = http2.createServer;
http2.createServer = function createServer(options, ...rest) {
  const opts = { ...options, settings: { ...(options && options.settings), maxFrameSize: size } };
  const server = original.call(this, opts, ...rest);
  if (process.env.BENCH_EXPERIMENT_VERBOSE) {
    server.on("session", (s) => s.once("remoteSettings", (r) => process.stderr.write(`remote settings: ${JSON.stringify(r)}\n`)));
  }
  return server;
};
