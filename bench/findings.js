// What profiling found, written by hand and included in docs/benchmarks.md by lib/report.js.
// reasonFor(id) gives the short reason shown next to a MISS (ids: see evaluate() in
// lib/report.js); a MISS it has no reason for is shown as "not profiled yet", never hidden.
//
// Every number quoted below comes from the A/B runs named with it (bench/experiments/ab.js:
// same pyarrow client, variants interleaved run by run, median of 3–5 runs), made on the same
// 2-core machine while other work was running on it (1-minute load average 6–9), so they
// are ratios between variants of one run, not absolute figures.
"use strict";

const REASONS = [
  [/^doget4?-.*-vs-pyarrow$/, "F1: grpc-js copies every outgoing message to frame it (+ GC of those copies); F7: the rest is Node's HTTP/2 send path. Prototype of F1: ×1.7–2.2"],
  [/^doget4?-.*-vs-grpc$/, "(c) pays the same F1 copy as (a); a difference is noise or BlackIce's per-message work, see F1/F2"],
  [/^doput-.*-vs-pyarrow$/, "F6: grpc-js reassembles each received message with Buffer.concat (a full copy into fresh, page-faulting memory); (a) ≈ (c), so it is not BlackIce's code"],
  [/^doput-.*-vs-grpc$/, "F6/F3: per-message validation and the FlightError allocated after every call; within noise of (c)"],
  [/^small-/, "F4: grpc-js/Node HTTP/2 cost per call on one thread (≈ raw grpc-js after F3's fix); pyarrow serves calls from a C++ thread pool on both cores"],
  [/^memory-/, "see Memory: RSS is the stored bytes plus a fixed ~60 MiB idle process"],
  [/^scale-list$/, "F5: one grpc-js message write per FlightInfo (~100 µs each here); batching ~64 KiB of framed FlightInfos per write: ×4.5 in the prototype"],
  [/^scale-gc-action-lag$/, "F8: the gc action runs MemoryStore.gc(), one synchronous pass over all expired flights; sliced like background GC: p99 172 → 32 ms in the prototype"],
  [/^scale-bg-lag$/, "background GC slices at 4 ms; a miss here would be V8's own collection of the removed objects"],
];

function reasonFor(id) {
  for (const [re, text] of REASONS) if (re.test(id)) return text;
  return undefined;
}

const narrative = `
How: \`node bench/profile.js --op=doget|doput|ping|list ...\` runs server (a) under \`node --cpu-prof\` with the pyarrow
client as load and prints self time by function and by file (profiles land in \`bench/out/prof/\`, open them in Chrome
DevTools); \`--op=list\` profiles only the ListFlights call, through the bench server's opt-in \`--profile-actions\`.
Proposed changes were measured without touching \`packages/*\`: \`bench/experiments/make-proposed-dist.js\` writes a
patched copy of the built packages to \`bench/out/proposed-dist\`, the two preloads in \`bench/experiments/\` patch grpc-js at
run time, and \`bench/experiments/ab.js\` compares variants with the same client. The lead decides what goes into the packages.

**F1 — DoGet: grpc-js copies every message BlackIce sends without copying (largest single cost).**
Profile of (a), DoGet, 1 MiB batches: 15 % of all samples in \`Buffer.copy\` called from grpc-js
\`BaseServerInterceptingCall.serializeMessage\` (build/src/server-interceptors.js:495), which allocates \`length + 5\` bytes
and copies the message behind the 5-byte gRPC prefix, plus 23 % in V8's garbage collector (the copies: 256 MiB of
short-lived external memory per DoGet of a 256 MiB flight). The zero-copy codec (\`encodeFlightData\` returns the stored
\`wire\` as it is) is undone one call later. The raw grpc-js server (c) pays the same copy, which is why (a) ≈ (c).
*Change:* in \`packages/flight/src/server/tuned-grpc-server.ts\` (already the one module that reaches into grpc-js), override
\`serializeMessage\` for the FlightData response serializer only: a message stored from a DoPut is a view at offset 5 of the
buffer grpc-js's \`StreamDecoder\` built for it (\`Buffer.concat([flag, length, ...chunks])\`), so when the 5 bytes before the
view are \`[0, length BE32]\` return \`Buffer.from(view.buffer, view.byteOffset - 5, view.byteLength + 5)\` — byte for byte what
the copy would be — and fall back to the copy otherwise; add a test that fails if a grpc-js upgrade moves the hook, as
\`tuned-grpc-server.test.ts\` does for the windows. Safe because stored messages are never mutated.
*Prototype:* \`bench/experiments/reuse-grpc-frame.js\`. DoGet, fixed table: 64 KiB 163 → 362 MiB/s, 1 MiB 412 → 839,
16 MiB 843 → 1425 (pyarrow's server in the same runs: 440, 909, 1747), i.e. from ~0.45× to 0.82–0.92× pyarrow. With it the
server's main thread is ~55 % idle during DoGet, GC falls from 23 % to 2.5 %, and most busy time is native (Node's HTTP/2 and
socket writes, 25 %).

**F2 — Every long streaming response leaks an "abort" listener per write that waits.**
\`pump()\` in \`packages/flight/src/server/grpc-adapter.ts\` waits with \`Promise.race([once(call, "drain"), once(signal, "abort")])\`;
the loser's listener stays registered. grpc-js's writable holds 16 messages, so nearly every message of a DoGet or ListFlights
waits, and each wait adds a listener to the call's AbortSignal: every long DoGet prints *MaxListenersExceededWarning: Possible
EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]* on the server's stderr, and Node's
\`addEventListener\` scans the existing listeners on each add (4.8 % of a 20 k-flight ListFlights profile, quadratic in the
number of messages). *Change:* \`await once(call, "drain", { signal }).catch(() => undefined)\` — \`events.once\` removes both
listeners itself. *Prototype* (make-proposed-dist P1): ListFlights of 100 k flights 13.3 → 11.3 s; the warnings are gone.

**F3 — Every streaming call allocates a FlightError after it has ended.**
grpc-js emits \`"cancelled"\` on a call whenever its HTTP/2 stream closes, also after a normal end (server-interceptors.js: the
stream's \`close\` handler calls \`notifyOnCancel()\`). \`callInfo()\` in \`grpc-adapter.ts\` subscribes with
\`call.on("cancelled", () => abort(...))\` and never unsubscribes, so each finished call builds a \`FlightError\` (stack trace
captured) and aborts its signal (running whatever listeners F2 left): 1.2 % self time in the small-call profile, 2.1 % in a
put-heavy one. *Change:* in \`release()\`, set a \`released\` flag and \`call.off("cancelled", onCancelled)\`.
*Prototype* (P1 + P2): \`ping\` with 32 callers 1740 → 2203 ops/s, equal to the raw grpc-js server (2209) in the same run.

**F4 — Small calls: the remaining gap is grpc-js's per-call cost.**
After F3, (a) serves \`ping\` as fast as the bytes-only grpc-js server (c). Profiling (c) under 32 callers: the busy time is
spread over grpc-js and Node's HTTP/2 (header objects \`toHeaderObject\`/\`mapToHeaders\`, \`respond\`, \`processHeaders\`,
\`Metadata.fromHttp2Headers\`, stream construction) — roughly 0.3 ms of CPU per call on this machine, on one thread, while
pyarrow's server handles calls on a C++ thread pool using both cores. Disabling channelz (\`grpc.enable_channelz: 0\`) changed
nothing measurable. Nothing in BlackIce's code can close the rest of this gap; it needs a faster HTTP/2/gRPC server than
grpc-js (or more than one event loop, which an in-memory store shared between calls rules out).

**F5 — ListFlights of 100 k flights: one grpc-js write per FlightInfo.**
Profile of one ListFlights over 20 k flights: each FlightInfo goes through grpc-js \`serializeMessage\`, an HTTP/2 stream write
and its completion callback, and usually a drain wait (stream writable machinery and native writes ≈ 40 %), protobuf encoding
≈ 12 % (\`@bufbuild/protobuf\` \`BinaryWriter.ensureCapacity\`/\`raw\`), \`encapsulateMessage\` of the schema 2.3 %, F2's listeners 4.8 %.
*Change:* in \`store-handler.ts\` \`listFlights\`, encode the FlightInfos itself and hand grpc-js about 64 KiB of already-framed
messages per write; this needs the same grpc-js hook as F1 (pass a buffer marked as pre-framed through unchanged). Caching
each flight's encoded FlightInfo on its (immutable) snapshot would also save the re-encoding (not prototyped).
*Prototype* (P3 + \`bench/experiments/batch-list-frames.js\`): 30 k flights 1.58 s → 0.35 s (×4.5). Extrapolated to 100 k on
this machine: ~1.2 s, so the 1 s target needs the caching too (or a quieter machine).

**F6 — DoPut: grpc-js's receive path copies every byte into fresh memory.**
Profile of (a), DoPut, 1 MiB batches: 26–35 % of samples in \`Buffer.concat\` called from grpc-js \`StreamDecoder.write\`
(build/src/stream-decoder.js:37), which reassembles each message from the 16 KiB HTTP/2 DATA chunks Node delivers into a new
buffer; 10–15 % GC (one JS Buffer per 16 KiB chunk); the rest of the main thread mostly idle. The new buffers are first-touch
memory: a put of 512 MiB takes ~140 k minor page faults, and the same put runs ~2× faster when glibc hands back memory freed by
an earlier delete (228–294 vs 475–598 MiB/s, counted from /proc/PID/stat). BlackIce keeps grpc-js's buffer as it is
(\`toStoredMessage\` stores views; only messages under 4 KiB are copied), so (a) ≈ (c): the cost is grpc-js's and the kernel's.
Advertising a larger HTTP/2 SETTINGS_MAX_FRAME_SIZE (1 MiB, \`bench/experiments/max-frame-size.js\`) cut the chunks 4× (to 64 KiB)
with no measurable gain. Reaching pyarrow here would need a receive path that bypasses grpc-js's decoder; not proposed.

**F7 — What is left of DoGet after F1.**
With the F1 prototype the server's main thread is idle about half the time and 25 % is native (nghttp2 framing, socket writes);
the pyarrow client advertises a 4 MiB stream window and 4 MiB max frame size. No further BlackIce-side cost stood out.

**F8 — The \`gc\` action stalls the event loop for the whole collection.**
\`builtinActions\` (\`packages/flight/src/server/builtin-actions.ts\`) answers \`gc\` with \`store.gc()\`, and \`MemoryStore.gc()\`
(\`packages/core/src/store/memory-store.ts\`) is one synchronous \`collect(now, Infinity, Infinity)\`: removing 100 k expired
flights blocked the loop for ~175 ms. Background GC, which collects in slices (5 000 flights or 4 ms, then \`setImmediate\`),
stays far under the target. *Change:* give the store a sliced, promise-returning collection (the background GC's loop, resolving
with the totals) and let the \`gc\` action await it; keep the synchronous \`gc()\` for callers that need it.
*Prototype* (P5): 50 k expired flights, lag p99 171.6 → 32.0 ms (the action takes a little longer: 165 → 217 ms).
`;

const notes = `
- **One 2-core VM, loopback, shared.** Client and server compete for the same two cores, and other engineers' builds and tests
  ran on the machine during the run (see the load averages above). Absolute figures are therefore low and noisy; the targets
  use ratios of medians from the same run, with every server measured interleaved, which cancels most of the drift but not all
  of it (see the min–max ranges).
- **(c) is grpc-js as its public API allows**, i.e. including the framing copy of F1. With the F1 change BlackIce would be
  *faster* than this "ceiling"; a ceiling without the copy would be the F1 prototype itself.
- **(d) raw TCP** is read by the benchmark's own Node process (one JS callback per ~64 KiB read), so it is a Node-to-Node
  floor, and it can be below what the C++ client reaches over gRPC.
- **Volumes.** Full mode moves 512 MiB per run per server (2.5 GiB per case over the 5 runs; 1 GiB per run for 4× DoGet);
  the TypeScript client moves the table once per run (1.25 GiB per case), because its apache-arrow mode is slow (~50–110 MiB/s).
  Quick mode shrinks everything (8 MiB tables, 3 runs, 2 000 flights, 128 MiB for the memory case) and writes to bench/out/.
- **Small calls** use 4 Python processes × 8 threads for 32 callers, so the GIL does not serialize them; each thread has its
  own FlightClient with a local subchannel pool (its own TCP connection).
- **Lag** is \`monitorEventLoopDelay\` at 10 ms resolution inside the server, reset just before the GC starts and read 300 ms
  after it ends, so short windows have few samples and p99 is close to the maximum.
- **The TypeScript client** is measured raw (\`doGetRaw\`/\`doPutRaw\`, FlightData bytes) and decoded (\`getTable\`/\`putTable\`
  through apache-arrow). In the decoded DoGet, 11 % of its time is grpc-js's client-side \`StreamDecoder\` copy and 21 % GC;
  apache-arrow also copies every body whose offset is not 8-byte aligned (\`readMessageBody\` in apache-arrow/ipc/message.js),
  which bodies inside a gRPC frame usually are not.
- Not measured: TLS, middleware (auth, limits), compression, more than one client host.
`;

module.exports = { reasonFor, narrative, notes };
