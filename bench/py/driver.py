"""The benchmark client: pyarrow's Flight client, the same for every server.

Reads one JSON command per line on stdin and answers one JSON line on stdout
({"ok": true, "result": ...} or {"ok": false, "error": "..."}). bench/run.js drives it, so
that every server is measured by this same process, interleaved run by run.
Exits when stdin closes.
"""
import base64
import json
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight

import tables

TIMEOUT_S = 600.0
_clients = {}


def client(uri):
    c = _clients.get(uri)
    if c is None:
        c = flight.FlightClient(uri)
        c.wait_for_available(timeout=30)
        _clients[uri] = c
    return c


def fresh_client(uri):
    # A separate channel (and TCP connection) per concurrent stream.
    return flight.FlightClient(uri, generic_options=[("grpc.use_local_subchannel_pool", 1)])


def options(headers=None):
    return flight.FlightCallOptions(timeout=TIMEOUT_S, headers=headers or [])


def descriptor(path):
    return flight.FlightDescriptor.for_path(*path)


def ticket_for(uri, path):
    info = client(uri).get_flight_info(descriptor(path), options())
    return info.endpoints[0].ticket


def put_table(c, path, table, rows_per_batch, headers=None):
    writer, _ = c.do_put(descriptor(path), table.schema, options(headers))
    writer.write_table(table, max_chunksize=rows_per_batch)
    writer.close()


def run_together(barrier, threads, clients, errors):
    """Starts the threads, releases them at once through `barrier` and times them until all
    ended; closes the clients; raises the first error a thread recorded."""
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError(errors[0])
    return seconds


def cmd_spec(a):
    _, spec = tables.table_spec(a["table"], a["batch_bytes"], a["table_bytes"])
    return spec


def cmd_load(a):
    table, spec = tables.table_spec(a["table"], a["batch_bytes"], a["table_bytes"])
    t0 = time.perf_counter()
    put_table(client(a["uri"]), a["path"], table, spec["rows_per_batch"])
    seconds = time.perf_counter() - t0
    ticket = ticket_for(a["uri"], a["path"])
    return dict(spec, seconds=seconds, ticket=base64.b64encode(ticket.ticket).decode())


def read_stream(c, ticket, expect_rows):
    t = c.do_get(ticket, options()).read_all()
    if t.num_rows != expect_rows:
        raise RuntimeError("DoGet returned %d rows, expected %d" % (t.num_rows, expect_rows))
    return t.num_rows


def cmd_doget(a):
    """`times` sequential DoGets of the stored table on each of `streams` concurrent streams."""
    ticket = flight.Ticket(base64.b64decode(a["ticket"]))
    streams = a.get("streams", 1)
    times = a["times"]
    rows = a["rows"]
    if streams == 1:
        c = client(a["uri"])
        t0 = time.perf_counter()
        for _ in range(times):
            read_stream(c, ticket, rows)
        return {"seconds": time.perf_counter() - t0}
    clients = [fresh_client(a["uri"]) for _ in range(streams)]
    for c in clients:
        c.wait_for_available(timeout=30)
    errors = []
    barrier = threading.Barrier(streams + 1)

    def work(c):
        try:
            barrier.wait()
            for _ in range(times):
                read_stream(c, ticket, rows)
        except Exception as e:  # reported below
            errors.append(repr(e))

    seconds = run_together(barrier, [threading.Thread(target=work, args=(c,)) for c in clients], clients, errors)
    return {"seconds": seconds}


def cmd_ticket(a):
    """The ticket of a stored flight (from GetFlightInfo), base64."""
    return {"ticket": base64.b64encode(ticket_for(a["uri"], a["path"]).ticket).decode()}


def cmd_doput(a):
    """`times` sequential DoPuts of the table, to path_prefix + [i]."""
    table, spec = tables.table_spec(a["table"], a["batch_bytes"], a["table_bytes"])
    c = client(a["uri"])
    t0 = time.perf_counter()
    for i in range(a["times"]):
        put_table(c, a["path_prefix"] + [str(i)], table, spec["rows_per_batch"])
    return {"seconds": time.perf_counter() - t0}


def action(uri, typ, body=b""):
    results = client(uri).do_action(flight.Action(typ, body), options())
    return [r.body.to_pybytes().decode("utf8", "replace") for r in results]


def cmd_action(a):
    return action(a["uri"], a["type"], a.get("body", "").encode())


def cmd_delete(a):
    for p in a["paths"]:
        try:
            action(a["uri"], "delete", json.dumps({"path": p}).encode())
        except flight.FlightError:
            pass
    return None


def cmd_put_many(a):
    """Puts `count` small flights (a 10-row batch each) from `threads` threads."""
    schema = pa.schema([("id", pa.int64()), ("v", pa.float64())])
    small = pa.Table.from_pydict({"id": list(range(10)), "v": [0.5] * 10}, schema=schema)
    headers = [(b"x-blackice-ttl", a["ttl"].encode())] if a.get("ttl") else None
    count, nthreads, prefix = a["count"], a.get("threads", 8), a["prefix"]
    errors = []

    def work(k):
        try:
            c = fresh_client(a["uri"])
            for i in range(k, count, nthreads):
                put_table(c, prefix + [str(i)], small, 10, headers)
            c.close()
        except Exception as e:
            errors.append(repr(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return {"seconds": time.perf_counter() - t0, "last_put_at": time.time()}


def cmd_flood(a):
    """`clients` concurrent DoPuts, each of its own table_bytes flight: a put flood.

    Puts refused with RESOURCE_EXHAUSTED (over the server's memory cap) are counted, not
    raised; any other failure is."""
    table, spec = tables.table_spec(a["table"], a["batch_bytes"], a["table_bytes"])
    n = a["clients"]
    clients = [fresh_client(a["uri"]) for _ in range(n)]
    for c in clients:
        c.wait_for_available(timeout=30)
    results = {"ok": 0, "refused": 0}
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(n + 1)

    def work(k, c):
        try:
            barrier.wait()
            put_table(c, a["path_prefix"] + [str(k)], table, spec["rows_per_batch"])
            with lock:
                results["ok"] += 1
        except Exception as e:
            # pyarrow has no class of its own for RESOURCE_EXHAUSTED; its text names the code.
            if "resource exhausted" in str(e).lower() or "resource_exhausted" in str(e).lower():
                with lock:
                    results["refused"] += 1
            else:
                errors.append(repr(e))

    seconds = run_together(barrier, [threading.Thread(target=work, args=(k, c)) for k, c in enumerate(clients)], clients, errors)
    return dict(results, seconds=seconds)


def cmd_list(a):
    c = client(a["uri"])
    t0 = time.perf_counter()
    n = sum(1 for _ in c.list_flights(b"", options()))
    return {"seconds": time.perf_counter() - t0, "count": n}


def cmd_query_ticket(a):
    """The query ticket of a projection of a stored flight (docs/query.md), base64, and the
    share of the table's data bytes the selected columns hold (pyarrow's nbytes)."""
    cmd = json.dumps({"flight": a["path"], "columns": a["columns"]}).encode()
    info = client(a["uri"]).get_flight_info(flight.FlightDescriptor.for_command(cmd), options())
    if info.schema.names != a["columns"]:
        raise RuntimeError("the query's schema has columns %s, expected %s" % (info.schema.names, a["columns"]))
    batch = tables.make_batch(a["table"], a["batch_bytes"])
    fraction = batch.select(a["columns"]).nbytes / batch.nbytes
    return {"ticket": base64.b64encode(info.endpoints[0].ticket.ticket).decode(), "fraction": fraction}


def cmd_load_series(a):
    """A telemetry flight whose batch k holds the k-th stretch of time (ts increasing across
    batches, as a telemetry feed appends), for the pruning bench: `batches` batches of
    `batch_bytes`. Returns rows per batch, the first ts (us) and the us per batch."""
    batch = tables.make_batch("telemetry", a["batch_bytes"])
    rows = batch.num_rows
    base = 1_767_225_600_000_000  # 2026-01-01 in us
    step = 1000  # us per row
    c = client(a["uri"])
    writer, _ = c.do_put(descriptor(a["path"]), batch.schema, options())
    ts_index = batch.schema.get_field_index("ts")
    for k in range(a["batches"]):
        ts = pa.array(range(base + k * rows * step, base + (k + 1) * rows * step, step), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        writer.write_batch(batch.set_column(ts_index, "ts", ts))
    writer.close()
    return {"rows_per_batch": rows, "base_us": base, "us_per_batch": rows * step}


class _Headers(flight.ClientMiddlewareFactory):
    """The response headers of the calls of one client (to read the pruning counts)."""

    def __init__(self):
        self.last = {}

    def start_call(self, info):
        outer = self

        class M(flight.ClientMiddleware):
            def received_headers(self, headers):
                outer.last.update({k.lower(): v for k, v in headers.items()})

        return M()


_header_clients = {}


def cmd_engine_query(a):
    """A `where` query (docs/query.md) timed from GetFlightInfo to the last row of its DoGet,
    `times` times; returns seconds per query, rows, and the DoGet's batches read and skipped."""
    if a["uri"] not in _header_clients:
        h = _Headers()
        _header_clients[a["uri"]] = (flight.FlightClient(a["uri"], middleware=[h]), h)
    c, h = _header_clients[a["uri"]]
    cmd = json.dumps({"flight": a["path"], "where": a["where"]}).encode()
    t0 = time.perf_counter()
    for _ in range(a["times"]):
        info = c.get_flight_info(flight.FlightDescriptor.for_command(cmd), options())
        h.last.clear()
        t = c.do_get(info.endpoints[0].ticket, options()).read_all()
    seconds = (time.perf_counter() - t0) / a["times"]
    return {"seconds": seconds, "rows": t.num_rows, "read": int(h.last["x-blackice-batches-read"][0]), "skipped": int(h.last["x-blackice-batches-skipped"][0])}


def cmd_sql(a):
    """A statement run by the server's query engine (docs/query.md): GetFlightInfo of
    {"sql": ...} and a DoGet of its ticket, timed together; the rows of the result."""
    c = client(a["uri"])
    cmd = json.dumps({"sql": a["sql"]}).encode()
    t0 = time.perf_counter()
    info = c.get_flight_info(flight.FlightDescriptor.for_command(cmd), options())
    t = c.do_get(info.endpoints[0].ticket, options()).read_all()
    return {"seconds": time.perf_counter() - t0, "rows": t.num_rows}


_duck = {}


def cmd_duckdb(a):
    """The same statement on DuckDB in this process, over the very table `load` put (pyarrow,
    registered as the view "t"; DuckDB reads its Arrow memory without copying), timed from
    the query to a pyarrow table of the result."""
    import duckdb

    key = (a["table"], a["batch_bytes"], a["table_bytes"])
    if key not in _duck:
        table, _ = tables.table_spec(*key)
        con = duckdb.connect()
        con.register("t", table)
        _duck[key] = con
    t0 = time.perf_counter()
    t = _duck[key].sql(a["sql"]).to_arrow_table()
    return {"seconds": time.perf_counter() - t0, "rows": t.num_rows, "threads": _duck[key].execute("SELECT current_setting('threads')").fetchall()[0][0]}


def cmd_version(a):
    return {"pyarrow": pa.__version__}


COMMANDS = {
    "version": cmd_version,
    "spec": cmd_spec,
    "load": cmd_load,
    "doget": cmd_doget,
    "doput": cmd_doput,
    "ticket": cmd_ticket,
    "query_ticket": cmd_query_ticket,
    "load_series": cmd_load_series,
    "engine_query": cmd_engine_query,
    "sql": cmd_sql,
    "duckdb": cmd_duckdb,
    "action": cmd_action,
    "delete": cmd_delete,
    "put_many": cmd_put_many,
    "flood": cmd_flood,
    "list": cmd_list,
}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            out = {"ok": True, "result": COMMANDS[req["cmd"]](req)}
        except Exception as e:  # answered, never fatal
            out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
