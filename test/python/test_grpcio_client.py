"""grpcio (gRPC C-core's Python client) against the server's own transport.

Plain gRPC, no Flight library: raw bytes in and out, so the test sees the protocol itself.
BLACKICE_FLIGHT_TARGET is host:port of a server started by test/grpc-clients.test.ts with a
"sleep" action (never answers) and a "headers" action (returns the request metadata as JSON).
"""
import json
import os

import grpc
import pytest

TARGET = os.environ["BLACKICE_FLIGHT_TARGET"]
FLIGHT = "/arrow.flight.protocol.FlightService/"


def action(kind, body=b""):
    """An arrow.flight.protocol.Action: type = 1 (string), body = 2 (bytes)."""
    t = kind.encode()
    return bytes([0x0A, len(t)]) + t + (bytes([0x12, len(body)]) + body if body else b"")


def result_body(message):
    """The body (field 1) of an arrow.flight.protocol.Result."""
    assert message[0] == 0x0A
    length, shift, pos = 0, 0, 1
    while True:
        b = message[pos]
        length |= (b & 0x7F) << shift
        pos += 1
        if b < 0x80:
            break
        shift += 7
    return message[pos:pos + length]


@pytest.fixture(scope="module")
def channel():
    with grpc.insecure_channel(TARGET) as ch:
        yield ch


def test_health_check_reports_serving(channel):
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    assert check(b"") == b"\x08\x01"  # status: SERVING
    with pytest.raises(grpc.RpcError) as e:
        check(b"\x0a\x07unknown")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_method_is_unimplemented(channel):
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary(FLIGHT + "NoSuchMethod")(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_not_found_keeps_its_code_and_message(channel):
    descriptor = b"\x08\x01\x1a\x07missing"  # PATH ["missing"]
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary(FLIGHT + "GetFlightInfo")(descriptor)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "missing" in e.value.details()


def test_deadline_is_enforced_by_the_server(channel):
    with pytest.raises(grpc.RpcError) as e:
        list(channel.unary_stream(FLIGHT + "DoAction")(action("sleep"), timeout=0.3))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_metadata_text_and_binary_reach_the_server(channel):
    call = channel.unary_stream(FLIGHT + "DoAction")
    metadata = [("x-text", "hello"), ("x-raw-bin", b"\x00\x01\xfe\xff")]
    results = list(call(action("headers"), metadata=metadata))
    seen = json.loads(result_body(results[0]))
    assert seen["x-text"] == ["hello"]
    assert seen["x-raw-bin"] == ["0001feff"]


def test_cancelling_a_stream_reaches_the_server(channel):
    call = channel.unary_stream(FLIGHT + "DoAction")(action("sleep"))
    call.cancel()
    with pytest.raises(grpc.RpcError) as e:
        list(call)
    assert e.value.code() == grpc.StatusCode.CANCELLED
