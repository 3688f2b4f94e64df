// Child processes of the benchmark: each in its own process group, all killed on the way
// out (normal end, error, signal), so no server outlives a run.
"use strict";
const { spawn } = require("node:child_process");
const readline = require("node:readline");

const live = new Set();

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the whole group: the process and anything it started
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function killAllSync() {
  for (const p of live) {
    killGroup(p.child, "SIGKILL");
  }
  live.clear();
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => {
      killAllSync();
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
  }
}

/**
 * Starts a process in a new process group. stdout is read line by line; `nextLine()`
 * resolves with the next line parsed as JSON. stderr is kept (last 8 KiB) for error messages.
 */
function start(name, command, args, opts = {}) {
  hookExit();
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true, // own process group, killed as a group
  });
  const proc = { name, child, stderr: "", lines: [], waiters: [], exited: false };
  live.add(proc);
  child.stdin.on("error", () => undefined);
  child.stderr.on("data", (d) => {
    proc.stderr = (proc.stderr + d.toString()).slice(-8192);
    if (opts.echoStderr) process.stderr.write(`[${name}] ${d}`);
  });
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const w = proc.waiters.shift();
    if (w) w.resolve(line);
    else proc.lines.push(line);
  });
  child.on("exit", (code, signal) => {
    proc.exited = true;
    live.delete(proc);
    const err = new Error(`${name} exited (code ${code}, signal ${signal})${proc.stderr ? `; stderr:\n${proc.stderr}` : ""}`);
    for (const w of proc.waiters.splice(0)) w.reject(err);
  });
  child.on("error", (err) => {
    for (const w of proc.waiters.splice(0)) w.reject(err);
  });

  proc.nextLine = (timeoutMs = 120_000) =>
    new Promise((resolve, reject) => {
      if (proc.lines.length) return resolve(proc.lines.shift());
      if (proc.exited) return reject(new Error(`${name} has exited; stderr:\n${proc.stderr}`));
      const timer = setTimeout(() => {
        const i = proc.waiters.indexOf(w);
        if (i >= 0) proc.waiters.splice(i, 1);
        reject(new Error(`${name}: no answer within ${timeoutMs} ms; stderr:\n${proc.stderr}`));
      }, timeoutMs);
      const w = {
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      proc.waiters.push(w);
    });
  proc.nextJson = async (timeoutMs) => JSON.parse(await proc.nextLine(timeoutMs));
  proc.send = (obj) => proc.child.stdin.write(JSON.stringify(obj) + "\n");
  /** Sends a command and waits for its one-line JSON answer ({ok, result|error}). */
  proc.call = async (obj, timeoutMs = 900_000) => {
    proc.send(obj);
    const answer = await proc.nextJson(timeoutMs);
    if (!answer.ok) throw new Error(`${name} ${obj.cmd}: ${answer.error}`);
    return answer.result;
  };
  /** Closes stdin (children exit on EOF), then SIGTERM, then SIGKILL; resolves when gone. */
  proc.stop = async (graceMs = 2000) => {
    if (proc.exited) return;
    const gone = new Promise((r) => child.once("exit", r));
    try {
      child.stdin.end();
    } catch {
      // ignore
    }
    const t1 = setTimeout(() => killGroup(child, "SIGTERM"), graceMs / 2);
    const t2 = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
    await gone;
    clearTimeout(t1);
    clearTimeout(t2);
    killGroup(child, "SIGKILL"); // anything left in the group
  };
  return proc;
}

/** Starts a server that prints {"port": N} first; resolves with {proc, port, uri}. */
async function startServer(name, command, args, opts = {}) {
  const proc = start(name, command, args, opts);
  const hello = await proc.nextJson(opts.startTimeoutMs ?? 60_000);
  return { name, proc, port: hello.port, pid: proc.child.pid, uri: `grpc+tcp://127.0.0.1:${hello.port}` };
}

async function stopAll() {
  await Promise.all([...live].map((p) => p.stop()));
}

module.exports = { start, startServer, stopAll, killAllSync };
