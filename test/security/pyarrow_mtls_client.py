"""pyarrow over mutual TLS to a server whose only authentication is mtlsIdentity: the client
certificate names the caller, and authorize() decides by that name. Prints JSON."""
import json
import os
import sys

import pyarrow as pa
import pyarrow.flight as flight
from flight_outcome import outcome

env = os.environ


def read(name):
    with open(env[name], "rb") as f:
        return f.read()




client = flight.FlightClient(env["URI"], tls_root_certs=read("CA"), cert_chain=read("CLIENT_CERT"), private_key=read("CLIENT_KEY"))
table = pa.table({"id": pa.array(range(10), pa.int64())})


def put(*path):
    writer, _ = client.do_put(flight.FlightDescriptor.for_path(*path), table.schema)
    writer.write_table(table)
    writer.close()


def whoami():
    try:
        return json.loads(list(client.do_action(flight.Action("stats", b"")))[0].body.to_pybytes()).get("identity")
    except flight.FlightUnauthenticatedError:
        return "unauthenticated"


out = {
    "put_own": outcome(lambda: put("telemetry", "a")),
    "put_other": outcome(lambda: put("secret", "a")),
    "read_own": outcome(lambda: client.get_flight_info(flight.FlightDescriptor.for_path("telemetry", "a"))),
    "whoami": whoami(),
}
client.close()
print(json.dumps(out))
sys.stdout.flush()
# pyarrow 26's TLS client once aborted at interpreter teardown ("double free or corruption")
# after printing its results (seen once in a full npm test, not reproduced in 3 runs after it);
# leave without teardown so the test judges what the server answered.
os._exit(0)
