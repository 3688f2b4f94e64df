"""pyarrow (Arrow C++) against a BlackIce Flight server with basicTokenAuth + authorize.

Run by test/security/security-real-server.test.ts, which starts the server and passes its
URI in BLACKICE_FLIGHT_URI. Prints one JSON object with what happened.
"""
import json
import os

import pyarrow as pa
import pyarrow.flight as flight
from flight_outcome import outcome

URI = os.environ["BLACKICE_FLIGHT_URI"]
out = {}




client = flight.FlightClient(URI)
out["bad_password"] = outcome(lambda: client.authenticate_basic_token("alice", "wrong"))
out["no_token"] = outcome(lambda: list(client.list_actions()))

pair = client.authenticate_basic_token("alice", "correct horse")
out["header_name"] = pair[0].decode()
out["header_scheme"] = pair[1].decode().split(" ")[0]
alice = flight.FlightCallOptions(headers=[pair])

root_pair = client.authenticate_basic_token("root", "root-pass")
root = flight.FlightCallOptions(headers=[root_pair])

table = pa.table({"id": pa.array(range(100), pa.int64()), "v": pa.array([i / 2 for i in range(100)])})


def put(descriptor, options):
    writer, _ = client.do_put(descriptor, table.schema, options=options)
    writer.write_table(table, max_chunksize=30)
    writer.close()


out["alice_put_own"] = outcome(lambda: put(flight.FlightDescriptor.for_path("telemetry", "cpu"), alice))
out["alice_put_other"] = outcome(lambda: put(flight.FlightDescriptor.for_path("secret", "x"), alice))
out["root_put_other"] = outcome(lambda: put(flight.FlightDescriptor.for_path("secret", "x"), root))

info = client.get_flight_info(flight.FlightDescriptor.for_path("telemetry", "cpu"), alice)
out["alice_get_rows"] = client.do_get(info.endpoints[0].ticket, alice).read_all().num_rows
out["alice_merkle"] = json.loads(info.app_metadata.decode()).get("merkle") if info.app_metadata else None
out["alice_read_other"] = outcome(lambda: client.get_flight_info(flight.FlightDescriptor.for_path("secret", "x"), alice))
out["alice_list"] = sorted("/".join(p.decode() if isinstance(p, bytes) else p for p in f.descriptor.path) for f in client.list_flights(options=alice))
out["root_list"] = sorted("/".join(p.decode() if isinstance(p, bytes) else p for p in f.descriptor.path) for f in client.list_flights(options=root))
out["bad_token"] = outcome(lambda: list(client.list_actions(flight.FlightCallOptions(headers=[(b"authorization", b"Bearer bi1.AAAA.AAAA")]))))
client.close()
print(json.dumps(out))
