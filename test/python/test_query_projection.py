"""Query projection (docs/query.md) with pyarrow's Flight client (Arrow C++).

Tables covering every type the store carries are put uncompressed, LZ4- and ZSTD-compressed;
projections of several column subsets are fetched with a plain do_get of the ticket that
GetFlightInfo returns, and compared with pyarrow's own projection, table.select(columns):
values always, and for uncompressed data the bytes of every buffer (against the same
selection written and read by pyarrow's IPC writer, which is what pyarrow would serve).

BLACKICE_FLIGHT_URI: a server with query(). BLACKICE_AUTH_URI: a server with basicTokenAuth,
query() and authorize(pathPrefixPolicy({"alice": ["public"]})) (test/query-projection.test.ts).
"""
import datetime
import decimal
import json
import os

import pyarrow as pa
import pyarrow.flight as flight
import pytest

URI = os.environ["BLACKICE_FLIGHT_URI"]
AUTH_URI = os.environ["BLACKICE_AUTH_URI"]


@pytest.fixture(scope="module")
def client():
    c = flight.FlightClient(URI)
    yield c
    c.close()


def every_type_table(n=257):
    rng = range(n)

    def opt(values, every=7):
        return [None if i % every == 3 else v for i, v in enumerate(values)]

    utc = datetime.timezone.utc
    cols = {
        "i8": pa.array(opt([i % 100 - 50 for i in rng]), pa.int8()),
        "u16": pa.array(opt([i * 7 % 60000 for i in rng]), pa.uint16()),
        "i32": pa.array(opt(list(rng)), pa.int32()),
        "u64": pa.array(opt([i * 2**40 for i in rng]), pa.uint64()),
        "f16": pa.array(opt([float(i % 50) / 4 for i in rng]), pa.float16()) if hasattr(pa, "float16") else None,
        "f32": pa.array(opt([i / 3 for i in rng]), pa.float32()),
        "f64": pa.array(opt([i / 7 for i in rng]), pa.float64()),
        "bool": pa.array(opt([i % 3 == 0 for i in rng]), pa.bool_()),
        "dec128": pa.array(opt([decimal.Decimal(f"{i}.{i % 100:02d}") for i in rng]), pa.decimal128(12, 2)),
        "dec256": pa.array(opt([decimal.Decimal(f"-{i}.5") for i in rng]), pa.decimal256(50, 1)),
        "date32": pa.array(opt([datetime.date(2026, 1, 1) + datetime.timedelta(days=i) for i in rng]), pa.date32()),
        "date64": pa.array(opt([datetime.date(2026, 1, 1) + datetime.timedelta(days=i) for i in rng]), pa.date64()),
        "time32": pa.array(opt([i * 1000 for i in rng]), pa.time32("ms")),
        "time64": pa.array(opt([i * 10**6 for i in rng]), pa.time64("ns")),
        "ts_tz": pa.array(opt([datetime.datetime(2026, 12, 1, tzinfo=utc) + datetime.timedelta(seconds=i) for i in rng]), pa.timestamp("us", tz="Europe/Paris")),
        "ts": pa.array(opt([i * 10**9 for i in rng]), pa.timestamp("ns")),
        "dur": pa.array(opt([i for i in rng]), pa.duration("ms")),
        "mdn": pa.array(opt([pa.MonthDayNano([i % 12, i % 28, i * 1000]) for i in rng]), pa.month_day_nano_interval()),
        "utf8": pa.array(opt([f"s{i}" * (i % 4) for i in rng]), pa.string()),
        "lutf8": pa.array(opt([f"L{i}" for i in rng]), pa.large_string()),
        "bin": pa.array(opt([bytes([i % 256]) * (i % 5) for i in rng]), pa.binary()),
        "lbin": pa.array(opt([bytes([i % 256]) * 3 for i in rng]), pa.large_binary()),
        "fsb": pa.array(opt([bytes([i % 256]) * 4 for i in rng]), pa.binary(4)),
        "sview": pa.array(opt([f"string view value number {i}" * (i % 3) for i in rng]), pa.string_view()),
        "bview": pa.array(opt([bytes([i % 256]) * (i % 20) for i in rng]), pa.binary_view()),
        "list": pa.array(opt([[i, i + 1, None][: i % 4] for i in rng]), pa.list_(pa.int32())),
        "llist": pa.array(opt([[f"x{i}"] * (i % 3) for i in rng]), pa.large_list(pa.string())),
        "fsl": pa.array(opt([[i, -i] for i in rng]), pa.list_(pa.int16(), 2)),
        "lview": pa.array(opt([[i, i + 1][: i % 3] for i in rng]), pa.list_view(pa.int32())),
        "llview": pa.array(opt([[float(i)] * (i % 2) for i in rng]), pa.large_list_view(pa.float64())),
        "struct": pa.array(opt([{"a": i, "b": f"b{i}", "c": [i % 100] if i % 2 else None} for i in rng]),
                           pa.struct([("a", pa.int64()), ("b", pa.string()), ("c", pa.list_(pa.int8()))])),
        "map": pa.array(opt([[(f"k{j}", j) for j in range(i % 3)] for i in rng]), pa.map_(pa.string(), pa.int32())),
        "sunion": pa.UnionArray.from_sparse(
            pa.array([i % 2 for i in rng], pa.int8()),
            [pa.array(list(rng), pa.int32()), pa.array([f"u{i}" for i in rng], pa.string())]),
        "dunion": pa.UnionArray.from_dense(
            pa.array([i % 2 for i in rng], pa.int8()),
            pa.array([i // 2 for i in rng], pa.int32()),
            [pa.array([i / 2 for i in range((n + 1) // 2)], pa.float64()), pa.array([bytes([i % 256]) for i in range(n // 2)], pa.binary())]),
        "dict": pa.array(opt([f"host-{i % 5}" for i in rng])).dictionary_encode(),
        "dict2": pa.array([i % 3 for i in rng], pa.int64()).dictionary_encode(),
        "ree": pa.compute.run_end_encode(pa.array([i // 10 for i in rng], pa.int32())),
        "null": pa.nulls(n),
    }
    return pa.table({k: v for k, v in cols.items() if v is not None}, metadata={"origin": "blackice-test"})


TABLE = every_type_table()
NAMES = TABLE.column_names
SUBSETS = [
    ["i32", "f64"],
    ["f64", "i32"],
    ["sview", "bview", "lview", "llview"],
    ["dict"],
    ["dict2", "utf8", "dict"],
    ["struct", "map", "sunion", "dunion"],
    ["ree", "null", "fsb", "fsl", "mdn"],
    ["dec128", "dec256", "date32", "date64", "time32", "time64", "ts_tz", "ts", "dur"],
    ["bool", "i8", "u16", "u64", "list", "llist", "lutf8", "bin", "lbin"],
    [n for i, n in enumerate(NAMES) if i % 2 == 1],
    list(reversed(NAMES)),
]
COMPRESSIONS = [None, "lz4", "zstd"]


def query_descriptor(path, columns=None, **extra):
    q = {"flight": path}
    if columns is not None:
        q["columns"] = columns
    q.update(extra)
    return flight.FlightDescriptor.for_command(json.dumps(q).encode())


def put(client, path, table, compression):
    options = flight.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(compression=compression))
    writer, _ = client.do_put(flight.FlightDescriptor.for_path(*path), table.schema, options=options)
    for batch in table.to_batches(max_chunksize=100):
        writer.write_batch(batch)
    writer.close()


def pyarrow_projection(table, columns):
    """What pyarrow itself serves for table.select(columns): written and read by its IPC writer."""
    selected = table.select(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, selected.schema) as w:
        for batch in table.to_batches(max_chunksize=100):
            w.write_batch(pa.RecordBatch.from_arrays([batch.column(c) for c in columns], schema=selected.schema))
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def all_buffers(array):
    out = [b.to_pybytes() if b is not None else None for b in array.buffers()]
    if isinstance(array, pa.DictionaryArray):
        out += all_buffers(array.dictionary)
    return out


@pytest.fixture(scope="module")
def stored(client):
    for c in COMPRESSIONS:
        put(client, ["types", c or "plain"], TABLE, c)
    return True


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("columns", SUBSETS, ids=lambda c: ",".join(c)[:60])
def test_projection_equals_pyarrow_select(client, stored, compression, columns):
    path = ["types", compression or "plain"]
    info = client.get_flight_info(query_descriptor(path, columns))
    expected = TABLE.select(columns)
    assert info.schema.equals(expected.schema, check_metadata=True)
    assert info.total_records == TABLE.num_rows
    assert len(info.endpoints) == 1
    got = client.do_get(info.endpoints[0].ticket).read_all()
    assert got.column_names == columns
    assert got.schema.equals(expected.schema, check_metadata=True)
    assert got.equals(expected)
    assert client.get_schema(query_descriptor(path, columns)).schema.equals(expected.schema, check_metadata=True)
    if compression is None:
        reference = pyarrow_projection(TABLE, columns)
        assert got.num_rows == reference.num_rows
        for name in columns:
            ours, theirs = got.column(name).chunks, reference.column(name).chunks
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                assert all_buffers(a) == all_buffers(b), f"buffers of {name} differ"


def test_large_batches_kept_in_the_chunks_they_arrived_in(client):
    # Bodies over 64 KiB are stored as the network chunks they arrived in, so buffers start,
    # end and span across chunks: the projection must slice them the same.
    n = 300_000
    big = pa.table({
        "a": pa.array(range(n), pa.int64()),
        "s": pa.array([f"value-{i}" for i in range(n)], pa.string()),
        "v": pa.array([f"a longer string view value {i}" for i in range(n)], pa.string_view()),
        "d": pa.array([f"host-{i % 50}" for i in range(n)]).dictionary_encode(),
        "f": pa.array([i / 3 for i in range(n)], pa.float64()),
    })
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("big", "t"), big.schema)
    writer.write_table(big, max_chunksize=150_000)
    writer.close()
    for columns in (["f", "v"], ["d", "a"], ["s"]):
        info = client.get_flight_info(query_descriptor(["big", "t"], columns))
        got = client.do_get(info.endpoints[0].ticket).read_all()
        assert got.equals(big.select(columns))


def test_without_columns_the_whole_flight_is_served(client, stored):
    info = client.get_flight_info(query_descriptor(["types", "plain"]))
    assert info.schema.equals(TABLE.schema, check_metadata=True)
    got = client.do_get(info.endpoints[0].ticket).read_all()
    assert got.equals(TABLE)


def test_bad_descriptors(client, stored):
    # where/limit/sql run on the engine (test_query_engine.py); malformed ones are INVALID_ARGUMENT here.
    with pytest.raises(pa.ArrowInvalid) as err:
        client.get_flight_info(query_descriptor(["types", "plain"], ["i32"], where="i32 > 3 GROUP BY i32"))
    assert "no other clause" in str(err.value)
    with pytest.raises(pa.ArrowInvalid) as err:
        client.get_flight_info(flight.FlightDescriptor.for_command(b'{"sql": "select 1"}'))
    assert "reads no stored flight" in str(err.value)
    with pytest.raises(pa.ArrowInvalid) as err:  # INVALID_ARGUMENT
        client.get_flight_info(query_descriptor(["types", "plain"], ["i32"], colums=["x"]))
    assert "colums" in str(err.value)
    with pytest.raises(pa.ArrowInvalid) as err:
        client.get_flight_info(query_descriptor(["types", "plain"], ["i32", "no_such"]))
    assert "no_such" in str(err.value)
    with pytest.raises(pa.ArrowKeyError):  # NOT_FOUND
        client.get_flight_info(query_descriptor(["types", "missing"], ["i32"]))


def test_bad_tickets(client, stored):
    good = client.get_flight_info(query_descriptor(["types", "plain"], ["i32"])).endpoints[0].ticket.ticket
    body = json.loads(good[len(b"blackice.query.v1:"):])
    prefix = b"blackice.query.v1:"
    for bad in [prefix, prefix + b"{", prefix + b'{"ticket":"!!"}', prefix + json.dumps({**body, "x": 1}).encode(), prefix + b"\xff\xfe"]:
        with pytest.raises(pa.ArrowInvalid):
            client.do_get(flight.Ticket(bad)).read_all()
    with pytest.raises(pa.ArrowInvalid) as err:  # unknown column, named
        client.do_get(flight.Ticket(prefix + json.dumps({**body, "columns": ["nope"]}).encode())).read_all()
    assert "nope" in str(err.value)
    import base64
    missing = {**body, "ticket": base64.b64encode(b"p:types/missing").decode()}
    with pytest.raises(pa.ArrowKeyError):  # NOT_FOUND
        client.do_get(flight.Ticket(prefix + json.dumps(missing).encode())).read_all()
    # The server is still up and serving.
    assert client.do_get(flight.Ticket(good)).read_all().equals(TABLE.select(["i32"]))


def test_authorization_applies_to_the_queried_flight():
    c = flight.FlightClient(AUTH_URI)
    try:
        header = c.authenticate_basic_token("alice", "alice-password")
        opts = flight.FlightCallOptions(headers=[header])
        admin = flight.FlightCallOptions(headers=[c.authenticate_basic_token("admin", "admin-password")])
        table = TABLE.select(["i32", "utf8", "dict"])
        for path in (["public", "t"], ["secret", "t"]):
            writer, _ = c.do_put(flight.FlightDescriptor.for_path(*path), table.schema, options=admin)
            writer.write_table(table)
            writer.close()
        # alice may read public/...: the query works.
        info = c.get_flight_info(query_descriptor(["public", "t"], ["utf8"]), options=opts)
        assert c.do_get(info.endpoints[0].ticket, options=opts).read_all().equals(table.select(["utf8"]))
        # not secret/...: the query is refused like a DoGet of that flight.
        with pytest.raises(flight.FlightUnauthorizedError):
            c.get_flight_info(query_descriptor(["secret", "t"], ["utf8"]), options=opts)
        with pytest.raises(OSError, match="unauthorized"):  # pyarrow's get_schema raises a plain OSError
            c.get_schema(query_descriptor(["secret", "t"], ["utf8"]), options=opts)
        with pytest.raises(flight.FlightUnauthorizedError):
            c.get_flight_info(flight.FlightDescriptor.for_path("secret", "t"), options=opts)
        # A query ticket for secret/... (made by admin, or forged) is refused for alice.
        secret_ticket = c.get_flight_info(query_descriptor(["secret", "t"], ["utf8"]), options=admin).endpoints[0].ticket
        with pytest.raises(flight.FlightUnauthorizedError):
            c.do_get(secret_ticket, options=opts).read_all()
        assert c.do_get(secret_ticket, options=admin).read_all().equals(table.select(["utf8"]))
        # Without credentials: UNAUTHENTICATED.
        with pytest.raises(flight.FlightUnauthenticatedError):
            c.do_get(secret_ticket).read_all()
    finally:
        c.close()
