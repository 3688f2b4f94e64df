"""pyarrow.flight as the client of a BlackIce cluster (test/cluster.test.ts).

Usage: cluster_client.py '<JSON list of operations>'. Runs them in order in one process (pyarrow
is imported once) and prints one JSON line: the list of their results. An operation that fails
gives {"error": <exception class>, "message": ..., "seconds": ...} instead of stopping the run.

Operations (each has "loc", a grpc+tcp:// location, and most a "path" list):
  put    {"rows": N, "ttl": "2s"?}  -> {"acked": true}
  info   -> {"locations": [...], "records": N, "bytes": N}
  get    -> {"rows": N, "sha256": hex of the schema and every batch as pyarrow serializes them}
  list   -> {"paths": ["a/b", ...]}
  delete -> {"deleted": ...}
"""
import hashlib
import json
import sys
import time

import pyarrow as pa
import pyarrow.flight as flight


def table(rows):
    return pa.table({
        "id": pa.array(range(rows), type=pa.int64()),
        "name": pa.array([f"row-{i}" for i in range(rows)]),
        "value": pa.array([i * 0.5 for i in range(rows)], type=pa.float64()),
    })


def run(op):
    client = flight.connect(op["loc"])
    try:
        kind = op["op"]
        if kind == "put":
            headers = [(b"x-blackice-ttl", op["ttl"].encode())] if op.get("ttl") else []
            options = flight.FlightCallOptions(headers=headers, timeout=30)
            t = table(op["rows"])
            writer, _ = client.do_put(flight.FlightDescriptor.for_path(*op["path"]), t.schema, options=options)
            writer.write_table(t, max_chunksize=max(1, op["rows"] // 4))
            writer.close()
            return {"acked": True}
        options = flight.FlightCallOptions(timeout=10)
        if kind == "info":
            info = client.get_flight_info(flight.FlightDescriptor.for_path(*op["path"]), options)
            return {
                "locations": sorted(loc.uri.decode() if isinstance(loc.uri, bytes) else str(loc.uri) for ep in info.endpoints for loc in ep.locations),
                "records": info.total_records,
                "bytes": info.total_bytes,
            }
        if kind == "get":
            ticket = flight.Ticket("p:" + "/".join(op["path"]))
            reader = client.do_get(ticket, options)
            h = hashlib.sha256()
            h.update(reader.schema.serialize().to_pybytes())
            rows = 0
            for chunk in reader:
                h.update(chunk.data.serialize().to_pybytes())
                rows += chunk.data.num_rows
            return {"rows": rows, "sha256": h.hexdigest()}
        if kind == "list":
            return {"paths": sorted("/".join(p.decode() if isinstance(p, bytes) else p for p in f.descriptor.path) for f in client.list_flights(options=options))}
        if kind == "delete":
            body = json.dumps({"path": op["path"]}).encode()
            results = [r.body.to_pybytes().decode() for r in client.do_action(flight.Action("delete", body), options)]
            return {"deleted": results}
        raise ValueError(f"unknown op {kind}")
    finally:
        client.close()


def main():
    out = []
    for op in json.loads(sys.argv[1]):
        started = time.monotonic()
        try:
            out.append(run(op))
        except Exception as e:  # reported to the test, which asserts on it
            out.append({"error": type(e).__name__, "message": str(e), "seconds": time.monotonic() - started})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
