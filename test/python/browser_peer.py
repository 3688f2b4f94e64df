"""The pyarrow side of test/browser.test.ts: puts flights over Flight (Arrow C++) and reads them
back over plain HTTP with pyarrow.ipc.open_stream, printing what it saw as JSON.

  browser_peer.py put <grpc uri> <rows of the big flight>
  browser_peer.py read <http url> [header: value ...]
"""
import json
import os
import sys
import urllib.request

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as fl
import pyarrow.ipc as ipc


def big_table(rows):
    i = pa.array(range(rows), type=pa.int64())
    # v is a value checksum that both sides can add up exactly (the sum stays below 2**53).
    v = pc.cast(pc.bit_wise_and(pc.multiply(i, 7919), 0xFFFFF), pa.int64())
    return pa.table({"i": i, "v": v})


def telemetry_table(rows):
    start = 1_767_225_600_000  # 2026-01-01T00:00:00Z, ms
    ts = pa.array([start + k * 1000 for k in range(rows)], type=pa.timestamp("ms", tz="UTC"))
    cpu = pa.array([50 + 40 * ((k % 60) / 60.0 if (k // 60) % 2 == 0 else 1 - (k % 60) / 60.0) for k in range(rows)], type=pa.float64())
    host = pa.array(["host-1"] * rows)
    return pa.table({"ts": ts, "cpu": cpu, "host": host})


def summary(table):
    out = {"rows": table.num_rows, "columns": table.column_names}
    if "v" in table.column_names:
        out["sumV"] = pc.sum(table["v"]).as_py()
    if "cpu" in table.column_names:
        out["sumCpu"] = pc.sum(table["cpu"]).as_py()
    return out


def put(uri, rows):
    client = fl.connect(uri)
    options = fl.FlightCallOptions()
    done = {}
    user = os.environ.get("BLACKICE_TEST_USER")
    if user:
        token = client.authenticate_basic_token(user, os.environ["BLACKICE_TEST_PASSWORD"])
        options = fl.FlightCallOptions(headers=[token])
        done["authorization"] = token[1].decode()
    for path, table in (("telemetry/host-1", telemetry_table(600)), ("big/values", big_table(rows))):
        writer, _ = client.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, options=options)
        writer.write_table(table, max_chunksize=65536)
        writer.close()
        done[path] = summary(table)
    print(json.dumps(done))


def read(url, headers):
    request = urllib.request.Request(url, headers=dict(h.split(": ", 1) for h in headers))
    try:
        with urllib.request.urlopen(request) as response:
            content_type = response.headers["content-type"]
            reader = ipc.open_stream(response)
            table = reader.read_all()
            out = summary(table)
            out["contentType"] = content_type
            print(json.dumps(out))
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read().decode()}))


if __name__ == "__main__":
    if sys.argv[1] == "put":
        put(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(__doc__)
