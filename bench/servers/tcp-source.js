#!/usr/bin/env node
// (d) Raw TCP loopback: the floor under any protocol. A client connects and sends one line
// {"chunk": bytes, "total": bytes}; this process writes `total` bytes in writes of `chunk`
// bytes (the same buffer each time, like a server sending stored messages), honouring
// backpressure, then ends the socket. bench/run.js is the reading side.
//
// Prints one JSON line {"port": N, "pid": P}; exits when stdin closes or on SIGTERM.
"use strict";
const net = require("node:net");
const { randomFillSync } = require("node:crypto");

const buffers = new Map();
function chunkOf(size) {
  let b = buffers.get(size);
  if (!b) {
    b = randomFillSync(Buffer.allocUnsafe(size));
    buffers.set(size, b);
  }
  return b;
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let head = "";
  socket.on("error", () => undefined);
  socket.on("data", function onData(d) {
    head += d.toString("latin1");
    const nl = head.indexOf("\n");
    if (nl < 0) return;
    socket.off("data", onData);
    const { chunk, total } = JSON.parse(head.slice(0, nl));
    const buf = chunkOf(chunk);
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk);
        left -= n;
        if (!socket.write(n === chunk ? buf : buf.subarray(0, n))) return void socket.once("drain", pump);
      }
      socket.end();
    };
    pump();
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + "\n");
});
const stop = () => process.exit(0);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
