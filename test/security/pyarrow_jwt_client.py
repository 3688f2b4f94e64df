"""pyarrow (Arrow C++) carrying JWTs to a BlackIce Flight server run with --jwt-jwks.

Run by test/security/jwt-pyarrow.test.ts: BLACKICE_FLIGHT_URI is the server, BLACKICE_TOKENS
a JSON object {name: token}. Every token is tried on DoPut, DoGet and ListFlights; prints one
JSON object {name: {put, get, list}} plus the server's jwtAuth stats read with the "admin" token.
"""
import json
import os

import pyarrow as pa
import pyarrow.flight as flight
from flight_outcome import outcome as outcome_of


def outcome(fn):
    return outcome_of(fn, 80)

URI = os.environ["BLACKICE_FLIGHT_URI"]
TOKENS = json.loads(os.environ["BLACKICE_TOKENS"])




client = flight.FlightClient(URI)
table = pa.table({"id": pa.array(range(50), pa.int64())})


def opts(token):
    return flight.FlightCallOptions(headers=[(b"authorization", ("Bearer " + token).encode())])


def put(name, token):
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("telemetry", name), table.schema, options=opts(token))
    writer.write_table(table, max_chunksize=20)
    writer.close()


def get(token):
    info = client.get_flight_info(flight.FlightDescriptor.for_path("telemetry", "good"), opts(token))
    assert client.do_get(info.endpoints[0].ticket, opts(token)).read_all().num_rows == 50


out = {}
# "good" first: it stores telemetry/good, which every other token then tries to read.
for name in ["good"] + sorted(n for n in TOKENS if n not in ("good", "admin")):
    token = TOKENS[name]
    out[name] = {
        "put": outcome(lambda: put(name, token)),
        "get": outcome(lambda: get(token)),
        "list": outcome(lambda: list(client.list_flights(options=opts(token)))),
    }
stats = list(client.do_action(flight.Action("stats", b""), opts(TOKENS["admin"])))
out["stats"] = json.loads(stats[0].body.to_pybytes())["jwtAuth"]
out["stored"] = sorted("/".join(p.decode() for p in f.descriptor.path) for f in client.list_flights(options=opts(TOKENS["admin"])))
client.close()
print(json.dumps(out))
