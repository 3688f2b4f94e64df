// What profiling found, written by hand and included in docs/benchmarks.md by lib/report.js.
// reasonFor(id) gives the short reason shown next to a MISS (ids: see evaluate() in
// lib/report.js); a MISS it has no reason for is shown as "not profiled yet", never hidden.
//
// Numbers quoted here come from the runs named with them: bench/experiments/ab.js A/B runs
// (same pyarrow client, variants interleaved run by run, medians) and bench/profile.js
// profiles, on the same shared 2-core machine as the full run.
"use strict";

const REASONS = [
  [/^doget4?-.*-vs-pyarrow$/, "G3: BlackIce's server thread is mostly idle during DoGet (61 % at 4 MiB); Node's HTTP/2 engine sends DATA frames of at most 16 KiB whatever the client allows, and the C++ client's per-frame work sets the pace; 4 concurrent DoGets reach 1.02–1.11×"],
  [/^doput-.*-vs-pyarrow$/, "G2: the transport and strict decoding alone reached 1.5–1.6× (b) in an A/B (handler draining the stream); validating and keeping the received buffers costs the rest: BlackIce's DoPut levels off near 850–900 MiB/s for both tables while pyarrow's reaches 1.2 GB/s on the telemetry table"],
  [/^small-/, "G4: the two cores are saturated by 32 callers, so the server's CPU per call decides; Node's HTTP/2 header handling and an AbortController per call cost more than pyarrow's C++ server spends (ping 0.89 → 0.82, GetFlightInfo 0.85 → 0.96 since the grpc-js run)"],
  [/^memory-/, "see Memory: RSS is the stored bytes plus a fixed ~60–70 MiB process"],
  [/^flood-rss$/, "G6: the bench server admits 256 MiB of requests in flight (maxInFlightBytes) besides the 256 MiB store; the documented sizing then is cap + 10 % + maxInFlightBytes, which this run meets (+402 of 538 MiB); the 64 MiB in the target was the old formula's"],
  [/^tiny-rss$/, "G5: counted bytes follow the per-message and per-flight overheads measured in-process; the server process adds its transport and V8 heap growth"],
  [/^scale-list$/, "G1: pyarrow's own server took 4.8 s for the same call and client; the pyarrow client alone needs ~0.4 s to decode 100k FlightInfos"],
  [/^disk-big-rss$/, "see Disk store"],
  [/^disk-doget-/, "G7: read buffers are reused now (ReadLease: GC fell from 12 % to 3 % of the server's profile); what is left is the CRC-32 of every served byte (19 %, kept: it is what turns a flipped bit into DATA_LOSS) and the copy from the page cache, on a machine whose second core runs the client"],
  [/^scale-gc-action-lag$/, "the gc action collects in slices; a miss would be V8's collection of the removed objects"],
  [/^scale-bg-lag$/, "background GC slices at 4 ms; a miss would be V8's own collection of the removed objects"],
];

function reasonFor(id) {
  for (const [re, text] of REASONS) if (re.test(id)) return text;
  return undefined;
}

const narrative = `
How: \`node bench/profile.js --op=doget|doput|ping|list ...\` runs server (a) under \`node --cpu-prof\` with the pyarrow
client as load and prints self time by function and by file (profiles land in \`bench/out/prof/\`);
\`node bench/experiments/ab.js\` compares server variants with the same client, interleaved run by run: a variant is
node flags, \`--config=KEY=VALUE\` settings, or a patched copy of the built packages (\`BENCH_FLIGHT_DIST=...\`).
The A/B figures below were taken on this machine while other work ran on it (load 3–5), so only their ratios count.

This run is the first on BlackIce's own server transport (gRPC on \`node:http2\`, a7a5d1a) with the asynchronous store
contract and the disk store. The previous full run (8c9383a, grpc-js's \`Server\`) had DoPut a/b 0.33–0.69, DoGet
0.82–1.21, ping / GetFlightInfo with 32 callers 0.89 / 0.85 and ListFlights of 100k flights 2.27 s.

| | finding | state |
| --- | --- | --- |
| G1 | ListFlights: protobuf encoding of every FlightInfo, then tickets through a TextEncoder | encoder by hand (2adde80); 2.27 → 1.83 s; pyarrow's server 4.79 s |
| G2 | DoPut: the transport is no longer the ceiling; keeping what was received is | open |
| G3 | DoGet: Node sends DATA frames of at most 16 KiB | open; outside BlackIce |
| G4 | small calls: CPU per call | a FlightError per call removed (5e6a2a3); open |
| G5 | memory counted as held | per-message and per-flight overheads measured and counted (a6531a4) |
| G6 | put flood: the in-flight budget is memory too | documented |
| G7 | disk store DoGet at 0.57–0.76× the memory store (0.53–0.60× before the read lease, 0.31–0.49× before c8bb535) | open |

**G1 — ListFlights of 100k flights.** Profile of one call before 2adde80: \`@bufbuild/protobuf\`'s BinaryWriter
(\`ensureCapacity\` 1.6 s of 12 s sampled over four calls, \`finish\` 0.9 s) and garbage collection. FlightInfo is now
encoded by hand (\`codec/flight-info-codec.ts\`): measured first, then written with its gRPC prefix into one buffer,
byte-identical to the generated encoder (checked on 2 000 random FlightInfos). The next profile showed \`TextEncoder.encode\`
at 1.1 s over four calls, all from \`ticketFromKey\`; tickets are now \`Buffer.from(key, "latin1")\` (keys are ASCII).
A raw HTTP/2 client that decodes nothing read the 100k FlightInfos in 1.6–2.2 s before and 0.85–1.4 s after (loaded
machine). Through pyarrow's client the call is 1.83 s here, and pyarrow's own server takes 4.79 s with the same client:
the client side (0.43 s just to deserialize 100k FlightInfos in pyarrow, measured alone) and the per-message async
hops of the server's response loop are what is left. 0.5 s is not reachable with this client.

**G2 — DoPut.** The own transport removed grpc-js's receive copy: raw grpc-js (c) puts 187–286 MiB/s in this run,
BlackIce 378–912. An A/B on the loaded machine (fixed table, 5 interleaved runs) with patched builds:
a handler that drains the request stream and stores nothing ran at 847 / 1728 / 1271 MiB/s at 64 KiB / 1 MiB / 4 MiB
against pyarrow's 581 / 1068 / 802 — the transport and the strict FlightData decoding alone are 1.5–1.6× (b). Validating
each message and building its stored form without keeping it: 503 / 540 / 670; the full server: 298 / 440 / 550.
The profile of the full server at 1 MiB: the main thread 61 % idle, GC 11 %, native 11 %, BlackIce's own functions
a few per cent each — keeping 256 MiB of received 64 KiB socket buffers per put means fresh, page-faulting memory and
V8 collections of external memory, and the client stalls while the server is busy. Two transport settings helped in
A/B: \`TCP_NODELAY\` (cae62e1; 1 MiB 367 → 453 MiB/s) and 256 KiB DATA frames from the peer (6d4f96f; +12–20 %).
Next: reuse receive memory across puts (a pool of 64 KiB blocks the store gives back on delete), and move the
per-message validation off the per-chunk path.

**G3 — DoGet.** Profile at 4 MiB batches: the server thread 61 % idle, 19 % native (Node's HTTP/2 framing and socket
writes), GC 3.5 %. Node's HTTP/2 engine (nghttp2 without a read-length callback) sends DATA frames of at most 16 KiB,
whatever SETTINGS_MAX_FRAME_SIZE the client advertises, so the C++ client handles 64 frames per MiB; pyarrow's
server sends larger frames. With 4 concurrent DoGets, where the client's per-frame work is spread over streams, BlackIce
is at 1.02–1.11× (b). The 1 MiB fixed-table dip (0.71) did not show in the telemetry table (0.86) or the concurrent
case (1.03); it is within the spread seen in earlier runs.

**G4 — Small calls.** Under 32 \`ping\` callers the server is about half idle: the two cores are shared with 32 client
threads, so the server's CPU per call decides the figure. The largest JavaScript cost per call was a FlightError
(stack trace) built as the abort reason of every call that ended normally; it is now one frozen instance (5e6a2a3).
What remains is Node's HTTP/2 header handling (\`toHeaderObject\`, \`respond\`, \`processHeaders\`, \`mapToHeaders\`),
an AbortController per call (the call's \`signal\`) and the call's objects.

**G5 — Memory counted.** Measured in-process (Node 20, 50k–100k flights of one 10-row batch, heap and external memory
after a full GC): about 850 B per stored message beyond its bytes and about 300 B per flight beyond its messages.
The store now counts 1 KiB per message, 512 B per flight plus its key and descriptor, and a schema's cached
encapsulated copy (a6531a4): a tiny flight counts 3.3 KB, against 2.5 KB of heap and external memory measured. In this
run's server process 100k tiny flights grew RSS by 1.47× the counted bytes; large flights 1.03–1.04×.

**G6 — Put flood.** 16 clients offering 512 MiB to a 256 MiB store: 7 puts stored, 9 refused with RESOURCE_EXHAUSTED,
RSS +402 MiB at the peak. Besides the store, the transport admits up to \`maxInFlightBytes\` of requests being received
(256 MiB in the bench server, the default) — bytes counted and bounded, but held. The sizing in docs/operations.md
now says so: RSS ≈ baseline + max-memory × 1.1 + maxInFlightBytes. The target in this table still uses the older
64 MiB figure and misses; against the documented bound (538 MiB) the run is inside.

**G7 — Disk store DoGet.** In the full run DiskStore served 458–540 MiB/s from a warm page cache against 1048–1468
from memory (0.31–0.49×). Profile of iterating a flight's messages: 25 % GC (a fresh buffer per read: V8 runs a
mark-compact every few tens of MiB for "external memory pressure"), 20 % CRC-32, 17 % waiting on reads. c8bb535 reads
consecutive messages in 4 MiB spans with one span read ahead and checks a span's checksums in one pass; the disk part
measured again after it: 517–578 MiB/s against 906–1062 (0.53–0.60×). Experiments on patched builds: without the CRC
+20 %; a ring of reused 8 MiB read buffers 0.83× (unsafe as it stands: a consumer may still hold the bytes); glibc
malloc settings (\`MALLOC_MMAP_THRESHOLD_\`) lifted both stores, the memory store most. Serving a 2 GiB flight from
disk kept the server at 140 MiB RSS throughout. DoPut with \`fsync: "always"\` (an fsync per commit of a 256 MiB put):
165–254 MiB/s across the two runs, with \`never\` 369–517. 778b442 gave the store a read lease: the server's DoGet releases each message once the transport has written it
(only when no middleware wrapped the response), and the store reads later spans into the released buffers. GC in the
server's profile fell from 12 % to 3 %; CRC-32 (native \`zlib.crc32\`, ~2.5 GB/s here) is now the largest single cost at
19 %. The disk part measured again after it: 618–661 MiB/s against 871 for 1 MiB batches (0.71–0.76×), 799–821 against
1393 for 16 MiB batches (0.57–0.59×); in two earlier runs of the same build 1 MiB batches gave 0.75–0.81× and 0.64–0.75×.
The 2 GiB DoGet stayed at +6 MiB RSS.
`;

const notes = `
- **One 2-core VM, loopback.** Client and server compete for the same two cores; no other work ran during this run,
  and the load averages above are the benchmark's own processes. Targets use ratios of medians from the same run,
  every server measured interleaved.
- **Same code for the whole run.** The run copies the built packages to \`bench/out/snapshot\` before it starts and every
  process loads that copy. The commit above is HEAD at that moment.
- **(c) is grpc-js's public \`Server\`**, the transport BlackIce replaced, for comparison; no target refers to it.
- **(d) raw TCP** is read by the benchmark's own Node process (one JS callback per ~64 KiB read), a Node-to-Node floor.
- **Volumes.** Full mode moves 256 MiB per run per server: 1.25 GiB per case over the 5 runs. The TypeScript client's
  decoded series runs 3 times only. Quick mode shrinks everything and writes to bench/out/ instead of docs/.
- **Small calls** use 4 Python processes × 8 threads for 32 callers, each thread with its own FlightClient.
- **Lag** is \`monitorEventLoopDelay\` at 10 ms resolution inside the server.
- Not measured: TLS, middleware (auth, limits), compression, more than one client host.
`;

module.exports = { reasonFor, narrative, notes };
