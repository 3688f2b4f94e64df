"""pyarrow (Arrow C++) against examples/secure-server over grpc+tls (with a client certificate).

Run by test/security/secure-server-example.test.ts, which starts the server and passes
everything in the environment. Prints one JSON object with what happened.
"""
import json
import os

import pyarrow as pa
import pyarrow.flight as flight
from flight_outcome import outcome as outcome_of


def outcome(fn):
    return outcome_of(fn, 10000)

env = os.environ
out = {}


def read(name):
    with open(env[name], "rb") as f:
        return f.read()




client = flight.FlightClient(
    env["URI"],
    tls_root_certs=read("CA"),
    cert_chain=read("CLIENT_CERT"),
    private_key=read("CLIENT_KEY"),
)
out["bad_password"] = outcome(lambda: client.authenticate_basic_token(env["USER_NAME"], "not the password"))
out["no_token"] = outcome(lambda: list(client.list_flights()))

pair = client.authenticate_basic_token(env["USER_NAME"], env["USER_PASSWORD"])
out["token_header"] = pair[0].decode()
attested = flight.FlightCallOptions(headers=[pair, (b"x-blackice-attestation", env["EVIDENCE"].encode())])
low_trust = flight.FlightCallOptions(headers=[pair, (b"x-blackice-attestation", env["LOW_EVIDENCE"].encode())])
token_only = flight.FlightCallOptions(headers=[pair])

table = pa.table({"id": pa.array(range(150), pa.int64()), "name": pa.array(["row-%d" % i for i in range(150)])})
mine = flight.FlightDescriptor.for_path("telemetry", "from-pyarrow")


def put(descriptor, options):
    writer, _ = client.do_put(descriptor, table.schema, options=options)
    writer.write_table(table, max_chunksize=40)
    writer.close()


out["put_without_evidence"] = outcome(lambda: put(mine, token_only))
out["put_low_trust"] = outcome(lambda: put(mine, low_trust))
out["put_attested"] = outcome(lambda: put(mine, attested))
out["put_other_prefix"] = outcome(lambda: put(flight.FlightDescriptor.for_path("secret", "x"), attested))

# Reads need a token, not a trusted device.
info = client.get_flight_info(mine, token_only)
out["location"] = info.endpoints[0].locations[0].uri.decode() if info.endpoints[0].locations else None
got = client.do_get(info.endpoints[0].ticket, token_only).read_all()
out["rows"] = got.num_rows
out["same_table"] = got.equals(table)
out["merkle"] = json.loads(info.app_metadata.decode()).get("merkle") if info.app_metadata else None
out["read_other"] = outcome(lambda: client.get_flight_info(flight.FlightDescriptor.for_path("secret", "x"), token_only))
client.close()
print(json.dumps(out))
