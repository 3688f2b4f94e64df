"""pyarrow's authenticate_basic_token against basicTokenAuth({ jwt }): the handshake issues a
JWT, calls carry it, an admin revokes it by jti, and the revoked token is refused.

Run by test/security/basic-jwt-pyarrow.test.ts (server URI in BLACKICE_FLIGHT_URI). Prints JSON.
"""
import base64
import json
import os

import pyarrow.flight as flight
from flight_outcome import outcome

URI = os.environ["BLACKICE_FLIGHT_URI"]
out = {}




def part(token, i):
    seg = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


client = flight.FlightClient(URI)
out["bad_password"] = outcome(lambda: client.authenticate_basic_token("alice", "wrong"))
name, value = client.authenticate_basic_token("alice", "correct horse")
token = value.decode().split(" ", 1)[1]
out["header"] = part(token, 0)
claims = part(token, 1)
out["claims"] = {k: claims[k] for k in ("iss", "aud", "sub") if k in claims}
out["has_exp_jti"] = "exp" in claims and "jti" in claims
alice = flight.FlightCallOptions(headers=[(name, value)])
out["alice_before"] = outcome(lambda: list(client.list_flights(options=alice)))

_, root_value = client.authenticate_basic_token("root", "root-pass")
root = flight.FlightCallOptions(headers=[(b"authorization", root_value)])
out["alice_revokes"] = outcome(lambda: list(client.do_action(flight.Action("revoke-token", json.dumps({"jti": claims["jti"]}).encode()), alice)))
out["root_revokes"] = outcome(lambda: list(client.do_action(flight.Action("revoke-token", json.dumps({"jti": claims["jti"]}).encode()), root)))
out["alice_after"] = outcome(lambda: list(client.list_flights(options=alice)))
_, again = client.authenticate_basic_token("alice", "correct horse")
out["alice_new_token"] = outcome(lambda: list(client.list_flights(options=flight.FlightCallOptions(headers=[(b"authorization", again)]))))
stats = list(client.do_action(flight.Action("stats", b""), root))
out["stats"] = json.loads(stats[0].body.to_pybytes())["basicTokenAuth"]
client.close()
print(json.dumps(out))
