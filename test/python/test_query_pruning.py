"""Batch statistics and batch pruning (docs/query.md, "Batch pruning") with pyarrow.

BLACKICE_FLIGHT_URI: a server with query() over a store the Node test can read
(test/query-pruning.test.ts). BLACKICE_EXPECT_FILE: where test_put_stats writes what
pyarrow.compute.min_max says of each batch, for the Node test to compare with the statistics
the store computed at put.
"""
import datetime
import json
import math
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

URI = os.environ["BLACKICE_FLIGHT_URI"]
EXPECT_FILE = os.environ["BLACKICE_EXPECT_FILE"]
UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 12, 1, tzinfo=UTC)


class HeaderRecorder(flight.ClientMiddlewareFactory):
    """Keeps the response headers of the last call (pyarrow's way to see them)."""

    def __init__(self):
        self.headers = {}

    def start_call(self, info):
        recorder = self

        class Middleware(flight.ClientMiddleware):
            def received_headers(self, headers):
                recorder.headers.update({k.lower(): v for k, v in headers.items()})

        return Middleware()


@pytest.fixture(scope="module")
def recorder():
    return HeaderRecorder()


@pytest.fixture(scope="module")
def client(recorder):
    c = flight.FlightClient(URI, middleware=[recorder])
    yield c
    c.close()


def put(client, path, batches, schema):
    writer, _ = client.do_put(flight.FlightDescriptor.for_path(*path), schema)
    for b in batches:
        writer.write_batch(b)
    writer.close()


def scalar_json(s):
    """A min_max bound as JSON: int for integers and temporal types (their stored integer), float otherwise."""
    if not s.is_valid:
        return None
    t = s.type
    if pa.types.is_floating(t):
        v = s.as_py()
        return v if math.isfinite(v) else str(v)
    if pa.types.is_integer(t):
        return str(s.as_py())
    # Temporal: the stored integer (days, ms, the time or timestamp unit).
    storage = {32: pa.int32(), 64: pa.int64()}[t.bit_width]
    return str(s.cast(storage).as_py())


def stats_table(n_batches=12, rows=500):
    """Batches of every type with statistics: nulls, NaN, negative values, all timestamp units."""
    batches = []
    for b in range(n_batches):
        def opt(values, every):
            return [None if (i + b) % every == 0 else v for i, v in enumerate(values)]

        rng = range(rows)
        cols = {
            "i8": pa.array(opt([(i * 7 + b) % 256 - 128 for i in rng], 5), pa.int8()),
            "u8": pa.array(opt([(i * 3 + b) % 256 for i in rng], 6), pa.uint8()),
            "i16": pa.array(opt([(i * 31 - 9000 + b) for i in rng], 7), pa.int16()),
            "u32": pa.array([(i * 2654435761 + b) % 2**32 for i in rng], pa.uint32()),
            "i64": pa.array(opt([(i - 250) * 2**50 + b for i in rng], 9), pa.int64()),
            "u64": pa.array(opt([i * 2**54 + b for i in rng], 4), pa.uint64()),
            "f32": pa.array(opt([math.sin(i + b) * 1e3 for i in rng], 8), pa.float32()),
            # Batch 3 has NaN, batch 5 only nulls.
            "f64": pa.array([None] * rows if b == 5 else opt([float("nan") if (b == 3 and i == 17) else -(i + b) / 3 for i in rng], 3), pa.float64()),
            "d32": pa.array(opt([datetime.date(1969, 12, 1) + datetime.timedelta(days=i + b) for i in rng], 11), pa.date32()),
            "d64": pa.array(opt([datetime.date(2026, 1, 1) + datetime.timedelta(days=i) for i in rng], 13), pa.date64()),
            "t32": pa.array(opt([(i * 1000 + b) % 86_400_000 for i in rng], 10), pa.time32("ms")),
            "t64": pa.array(opt([i * 10**9 + b for i in rng], 10), pa.time64("ns")),
            "ts_s": pa.array(opt([b * 1000 + i - 300 for i in rng], 12), pa.timestamp("s")),
            "ts_ms": pa.array(opt([b * 10**6 + i for i in rng], 12), pa.timestamp("ms", tz="UTC")),
            "ts_us": pa.array(opt([T0 + datetime.timedelta(seconds=b * rows + i) for i in rng], 12), pa.timestamp("us", tz="Europe/Paris")),
            "ts_ns": pa.array(opt([-(b * 10**12) - i for i in rng], 12), pa.timestamp("ns")),
            "dur": pa.array(opt([i - b for i in rng], 14), pa.duration("us")),
            "name": pa.array([f"n{i}" for i in rng], pa.string()),
        }
        batches.append(pa.RecordBatch.from_pydict(cols))
    return batches


def test_put_stats(client):
    batches = stats_table()
    schema = batches[0].schema
    put(client, ["pruning", "stats"], batches, schema)
    expected = []
    for batch in batches:
        row = {}
        for name in schema.names:
            col = batch.column(name)
            if name == "name":
                continue
            # min_max has no duration kernel: its int64 storage orders the same.
            mm = pc.min_max(col.cast(pa.int64()) if pa.types.is_duration(col.type) else col)  # skips nulls, and NaN
            has_nan = pa.types.is_floating(col.type) and bool(pc.any(pc.is_nan(col)).as_py() or False)
            row[name] = {"nullCount": col.null_count, "min": scalar_json(mm["min"]), "max": scalar_json(mm["max"]), "hasNaN": has_nan}
        expected.append(row)
    with open(EXPECT_FILE, "w") as f:
        json.dump({"columns": schema.names, "batches": expected}, f)


def telemetry(n_batches=40, rows=1000):
    """Batch k holds seconds [k*rows, (k+1)*rows) after T0, cpu with nulls."""
    out = []
    for k in range(n_batches):
        ts = [T0 + datetime.timedelta(seconds=k * rows + i) for i in range(rows)]
        cpu = [None if i % 97 == 0 else ((k * 7919 + i * 104729) % 1000) / 1000 for i in range(rows)]
        out.append(pa.RecordBatch.from_pydict({
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "host": pa.array([f"h{k % 4}"] * rows, pa.string()),
            "cpu": pa.array(cpu, pa.float64()),
        }))
    return out


def iso(seconds):
    """A time zone aware literal as polars' SQL takes it (it does not compare a string with a timestamp)."""
    text = (T0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S+0000")
    return f"STRPTIME('{text}', '%Y-%m-%d %H:%M:%S%z')"


def query(client, recorder, cmd):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(cmd)))
    recorder.headers.clear()
    table = client.do_get(info.endpoints[0].ticket).read_all()
    read = int(recorder.headers["x-blackice-batches-read"][0])
    skipped = int(recorder.headers["x-blackice-batches-skipped"][0])
    return table, read, skipped


@pytest.fixture(scope="module")
def telemetry_flight(client):
    batches = telemetry()
    put(client, ["pruning", "telemetry"], batches, batches[0].schema)
    return pa.Table.from_batches(batches)


def test_time_range_reads_only_the_batches_in_range(client, recorder, telemetry_flight):
    # Seconds [10 000, 20 000): batches 10..19 exactly.
    where = f"ts >= {iso(10_000)} AND ts < {iso(20_000)} AND cpu > 0.5"
    table, read, skipped = query(client, recorder, {"flight": ["pruning", "telemetry"], "where": where})
    t = telemetry_flight
    lo = pa.scalar(T0 + datetime.timedelta(seconds=10_000), pa.timestamp("us", tz="UTC"))
    hi = pa.scalar(T0 + datetime.timedelta(seconds=20_000), pa.timestamp("us", tz="UTC"))
    want = t.filter(pc.and_(pc.and_(pc.greater_equal(t["ts"], lo), pc.less(t["ts"], hi)), pc.greater(t["cpu"], 0.5)))
    assert table.num_rows == want.num_rows > 0
    # polars answers strings as large_string: compared after casting to the flight's types.
    assert table.cast(want.schema).sort_by("ts").equals(want.sort_by("ts"))
    assert (read, skipped) == (10, 30)


def test_between_and_a_range_inside_one_batch(client, recorder, telemetry_flight):
    # Seconds 25 100 .. 25 200 lie in batch 25 alone; BETWEEN is inclusive.
    where = f"ts BETWEEN {iso(25_100)} AND {iso(25_200)}"
    table, read, skipped = query(client, recorder, {"flight": ["pruning", "telemetry"], "where": where, "columns": ["ts", "cpu"]})
    assert table.num_rows == 101
    assert (read, skipped) == (1, 39)


def test_predicates_pruning_cannot_use_read_everything(client, recorder, telemetry_flight):
    # OR is not a conjunction; host has no statistics (a string): nothing is skipped, and the result is still right.
    where = f"ts < {iso(1_000)} OR host = 'h1'"
    table, read, skipped = query(client, recorder, {"flight": ["pruning", "telemetry"], "where": where})
    t = telemetry_flight
    want = t.filter(pc.or_(pc.less(t["ts"], pa.scalar(T0 + datetime.timedelta(seconds=1_000), pa.timestamp("us", tz="UTC"))), pc.equal(t["host"], "h1")))
    assert table.num_rows == want.num_rows
    assert (read, skipped) == (40, 0)


def test_no_match_skips_every_batch(client, recorder, telemetry_flight):
    table, read, skipped = query(client, recorder, {"flight": ["pruning", "telemetry"], "where": f"ts > {iso(50_000)}"})
    assert table.num_rows == 0
    assert (read, skipped) == (0, 40)


def test_sql_with_aggregate_prunes_too(client, recorder, telemetry_flight):
    sql = f"SELECT host, count(*) AS n FROM \"pruning/telemetry\" WHERE ts >= {iso(38_000)} GROUP BY host ORDER BY host"
    table, read, skipped = query(client, recorder, {"sql": sql})
    assert table.to_pydict() == {"host": ["h2", "h3"], "n": [1000, 1000]}
    assert (read, skipped) == (2, 38)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, data):
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def flight_sql_statement(sql):
    """CommandStatementQuery{query} packed in google.protobuf.Any, as a Flight SQL client sends it (FlightSql.proto)."""
    command = _field(1, sql.encode())
    return _field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + _field(2, command)


def test_flight_sql_statement_prunes_too(client, recorder, telemetry_flight):
    # The same statement as a Flight SQL CommandStatementQuery: its TicketStatementQuery is
    # redeemed through query(), which prunes as for {"sql": ...}.
    sql = f"SELECT host, count(*) AS n FROM \"pruning/telemetry\" WHERE ts >= {iso(38_000)} GROUP BY host ORDER BY host"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(flight_sql_statement(sql)))
    recorder.headers.clear()
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert table.to_pydict() == {"host": ["h2", "h3"], "n": [1000, 1000]}
    read = int(recorder.headers["x-blackice-batches-read"][0])
    skipped = int(recorder.headers["x-blackice-batches-skipped"][0])
    assert (read, skipped) == (2, 38)
