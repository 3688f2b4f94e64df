"""Small-call load generator: closed-loop callers on threads, pyarrow's Flight client.

    small_calls.py THREADS        (the plan arrives on stdin, see below)

Protocol with bench/run.js:
  1. stdin line 1: {"servers": {name: {"uri": ..., "path": [...]}}}
     Each thread opens its own FlightClient per server (a local subchannel pool, so its own
     TCP connection) and makes a few warm-up calls; then the process prints {"ready": true}.
  2. stdin line 2: {"t0": epoch_seconds, "phases": [{"server", "kind", "offset", "duration"}]}
     Every thread runs each phase from t0+offset for `duration` s, calling back to back.
  3. It prints {"phases": [{"count", "hist"}]}: calls completed inside each phase's window and
     a latency histogram (log buckets of 1 %: bucket b holds latencies near 1.01**b us).
Several such processes run at once for 32 callers; run.js merges their histograms.
"""
import json
import math
import sys
import threading
import time

import pyarrow.flight as flight

LOG_STEP = math.log(1.01)


def main():
    nthreads = int(sys.argv[1])
    setup = json.loads(sys.stdin.readline())
    servers = setup["servers"]
    opts = flight.FlightCallOptions(timeout=60)

    def make_call(c, kind, path):
        if kind == "ping":
            action = flight.Action("ping", b"")

            def call():
                for _ in c.do_action(action, opts):
                    pass

        elif kind == "getflightinfo":
            d = flight.FlightDescriptor.for_path(*path)

            def call():
                c.get_flight_info(d, opts)

        else:
            raise ValueError(kind)
        return call

    calls = []  # per thread: {(server, kind): fn}
    for _ in range(nthreads):
        mine = {}
        for name, s in servers.items():
            c = flight.FlightClient(s["uri"], generic_options=[("grpc.use_local_subchannel_pool", 1)])
            c.wait_for_available(timeout=30)
            for kind in ("ping", "getflightinfo"):
                fn = make_call(c, kind, s["path"])
                for _ in range(20):
                    fn()
                mine[(name, kind)] = fn
        calls.append(mine)
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()

    plan = json.loads(sys.stdin.readline())
    t0, phases = plan["t0"], plan["phases"]
    results = [[{"count": 0, "hist": {}} for _ in phases] for _ in range(nthreads)]
    errors = []

    def work(k):
        perf0 = time.perf_counter()
        wall0 = time.time()
        to_perf = lambda wall: perf0 + (wall - wall0)
        try:
            for i, ph in enumerate(phases):
                fn = calls[k][(ph["server"], ph["kind"])]
                start = to_perf(t0 + ph["offset"])
                end = start + ph["duration"]
                delay = start - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                count = 0
                hist = results[k][i]["hist"]
                while True:
                    a = time.perf_counter()
                    if a >= end:
                        break
                    fn()
                    b = time.perf_counter()
                    if b > end:
                        break
                    count += 1
                    us = (b - a) * 1e6
                    bucket = int(math.log(us) / LOG_STEP) if us > 1 else 0
                    hist[bucket] = hist.get(bucket, 0) + 1
                results[k][i]["count"] = count
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.stdout.write(json.dumps({"error": errors[0]}) + "\n")
        sys.stdout.flush()
        return
    merged = []
    for i in range(len(phases)):
        count = 0
        hist = {}
        for k in range(nthreads):
            r = results[k][i]
            count += r["count"]
            for b, n in r["hist"].items():
                hist[b] = hist.get(b, 0) + n
        merged.append({"count": count, "hist": hist})
    sys.stdout.write(json.dumps({"phases": merged}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
