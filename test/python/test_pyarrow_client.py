"""pyarrow's Flight client (Arrow C++) against a BlackIce Flight server.

The server's URI comes from BLACKICE_FLIGHT_URI; test/pyarrow-peer.test.ts starts the
server and runs this file with pytest.
"""
import datetime
import decimal
import json
import os
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

URI = os.environ.get("BLACKICE_FLIGHT_URI", "grpc+tcp://127.0.0.1:8815")


@pytest.fixture(scope="module")
def client():
    c = flight.FlightClient(URI)
    yield c
    c.close()


def telemetry_table(n, offset=0):
    hosts = pa.array([f"host-{(i + offset) % 5}" for i in range(n)]).dictionary_encode()
    ts = pa.array(
        [datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i + offset) for i in range(n)],
        type=pa.timestamp("us", tz="Europe/Paris"),
    )
    nested = pa.array(
        [{"cpu": float(i), "tags": [f"t{i}", None], "ok": i % 2 == 0} for i in range(n)],
        type=pa.struct([("cpu", pa.float64()), ("tags", pa.list_(pa.string())), ("ok", pa.bool_())]),
    )
    dec = pa.array([decimal.Decimal(f"{i}.{i % 100:02d}") for i in range(n)], type=pa.decimal128(12, 2))
    sview = pa.array([f"view-{i}" * (i % 3) for i in range(n)], type=pa.string_view())
    bview = pa.array([bytes([i % 256]) * (i % 20) for i in range(n)], type=pa.binary_view())
    lview = pa.array([[i, i + 1] if i % 4 else None for i in range(n)], type=pa.list_view(pa.int32()))
    return pa.table(
        {"ts": ts, "host": hosts, "value": pa.array(range(offset, offset + n), pa.int64()), "nested": nested,
         "dec": dec, "sview": sview, "bview": bview, "lview": lview}
    )


def put_batches(client, descriptor, batches, options=None):
    writer, meta_reader = client.do_put(descriptor, batches[0].schema, options=options)
    acks = []
    for i, batch in enumerate(batches):
        writer.write_with_metadata(batch, pa.py_buffer(f"batch-{i}".encode()))
        ack = meta_reader.read()
        acks.append(ack.to_pybytes() if ack is not None else None)
    writer.done_writing()
    writer.close()
    return acks


def make_batches():
    table = telemetry_table(300)
    return [b for b in table.to_batches(max_chunksize=100)]


def test_put_get_round_trip_with_boundaries_and_metadata(client):
    descriptor = flight.FlightDescriptor.for_path("pyarrow", "telemetry")
    batches = make_batches()
    assert len(batches) == 3
    acks = put_batches(client, descriptor, batches)
    assert acks == [b"batch-0", b"batch-1", b"batch-2"]

    info = client.get_flight_info(descriptor)
    assert info.total_records == 300
    assert info.total_bytes > 0
    assert info.schema.equals(batches[0].schema)
    assert len(info.endpoints) >= 1
    assert info.endpoints[0].locations[0].uri.decode().startswith("grpc+tcp://")

    reader = client.do_get(info.endpoints[0].ticket)
    chunks = list(reader)
    assert [c.app_metadata.to_pybytes() for c in chunks] == [b"batch-0", b"batch-1", b"batch-2"]
    assert [c.data.num_rows for c in chunks] == [100, 100, 100]
    for got, want in zip(chunks, batches):
        assert got.data.equals(want)

    schema = client.get_schema(descriptor).schema
    assert schema.equals(batches[0].schema)


def test_list_flights_by_prefix(client):
    for name in ("a", "b"):
        put_batches(client, flight.FlightDescriptor.for_path("listing", name), make_batches()[:1])
    paths = sorted(tuple(p.decode() for p in f.descriptor.path) for f in client.list_flights(b"listing"))
    assert paths == [("listing", "a"), ("listing", "b")]


def test_append_same_schema_and_refuse_other_schema(client):
    descriptor = flight.FlightDescriptor.for_path("pyarrow", "append")
    batches = make_batches()
    put_batches(client, descriptor, batches[:1])
    put_batches(client, descriptor, batches[1:2])
    assert client.get_flight_info(descriptor).total_records == 200
    other = pa.record_batch({"x": pa.array([1, 2, 3], pa.int32())})
    with pytest.raises(pa.ArrowInvalid) as err:  # INVALID_ARGUMENT
        put_batches(client, descriptor, [other])
    assert "field count 8 vs 1" in str(err.value)
    assert client.get_flight_info(descriptor).total_records == 200


def test_actions(client):
    types = {a.type for a in client.list_actions()}
    assert {"ping", "stats", "gc", "delete"} <= types
    assert b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("ping", b""))) == b"pong"
    stats = json.loads(b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("stats", b""))))
    assert stats["flights"] >= 1 and stats["memory"]["limit"] > 0 and "doPut" in stats["calls"]
    gc = json.loads(b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("gc", b""))))
    assert "bytesFreed" in gc

    descriptor = flight.FlightDescriptor.for_path("pyarrow", "doomed")
    put_batches(client, descriptor, make_batches()[:1])
    body = json.dumps({"path": ["pyarrow", "doomed"]}).encode()
    deleted = json.loads(b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("delete", body))))
    assert deleted["deleted"] == 1
    with pytest.raises(pa.lib.ArrowKeyError) as err:  # NOT_FOUND
        client.get_flight_info(descriptor)
    assert "no flight" in str(err.value)
    with pytest.raises(pa.lib.ArrowKeyError):  # NOT_FOUND: already deleted
        list(client.do_action(flight.Action("delete", body)))


def test_expired_flight_disappears(client):
    descriptor = flight.FlightDescriptor.for_path("pyarrow", "short-lived")
    options = flight.FlightCallOptions(headers=[(b"x-blackice-ttl", b"300ms")])
    put_batches(client, descriptor, make_batches()[:1], options=options)
    info = client.get_flight_info(descriptor)
    assert info.endpoints[0].expiration_time is not None
    time.sleep(0.6)
    with pytest.raises(pa.lib.ArrowKeyError):  # NOT_FOUND once expired
        client.get_flight_info(descriptor)
    gc = json.loads(b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("gc", b""))))
    assert gc["flightsRemoved"] >= 1


def _wrap_field1(payload: bytes) -> bytes:
    """A protobuf message whose field 1 is the given embedded message."""
    n, varint = len(payload), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        varint.append(b | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(varint) + payload


def test_every_listed_action_runs(client):
    descriptor = flight.FlightDescriptor.for_path("pyarrow", "renewable")
    put_batches(client, descriptor, make_batches()[:1], options=flight.FlightCallOptions(headers=[(b"x-blackice-ttl", b"1h")]))
    info = client.get_flight_info(descriptor)
    endpoint = info.endpoints[0]
    bodies = {
        "ping": b"",
        "stats": b"",
        "gc": b"",
        "RenewFlightEndpoint": _wrap_field1(endpoint.serialize()),
        "CancelFlightInfo": _wrap_field1(info.serialize()),
        "delete": json.dumps({"ticket": endpoint.ticket.ticket.decode()}).encode(),
    }
    listed = [a.type for a in client.list_actions()]
    assert sorted(listed) == sorted(bodies), listed
    for action in listed:  # delete last: the others use the flight
        if action == "delete":
            continue
        results = list(client.do_action(flight.Action(action, bodies[action])))
        assert len(results) == 1, action
        if action == "RenewFlightEndpoint":
            renewed = flight.FlightEndpoint.deserialize(results[0].body.to_pybytes())
            assert renewed.ticket == endpoint.ticket
            assert renewed.expiration_time is not None
            assert renewed.expiration_time.as_py() >= endpoint.expiration_time.as_py()
        if action == "CancelFlightInfo":
            assert results[0].body.to_pybytes() == b"\x08\x03"  # CANCEL_STATUS_NOT_CANCELLABLE: stored flights are complete
    deleted = json.loads(b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("delete", bodies["delete"]))))
    assert deleted["deleted"] == 1
    with pytest.raises(pa.lib.ArrowKeyError):
        client.get_flight_info(descriptor)
