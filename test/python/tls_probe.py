"""Connects pyarrow's Flight client over grpc+tls and lists actions; prints OK or the error.

Usage: tls_probe.py URI CA_CERT [CLIENT_CERT CLIENT_KEY]
"""
import sys

import pyarrow.flight as flight

uri, ca = sys.argv[1], sys.argv[2]
kwargs = {"tls_root_certs": open(ca, "rb").read()}
if len(sys.argv) > 4:
    kwargs["cert_chain"] = open(sys.argv[3], "rb").read()
    kwargs["private_key"] = open(sys.argv[4], "rb").read()
try:
    client = flight.FlightClient(uri, **kwargs)
    types = [a.type for a in client.list_actions(options=flight.FlightCallOptions(timeout=5))]
    assert "ping" in types
    print("OK")
except Exception as e:  # the test reads the outcome from stdout
    print("FAIL", type(e).__name__, str(e).splitlines()[0])
