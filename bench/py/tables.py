"""The two benchmark tables, built from one record batch of about `batch_bytes` repeated.

fixed:      4 x int64, 4 x float64 (64 bytes per row)
telemetry:  timestamp[us, UTC], cpu/mem float64, rx/tx int64, status int32 and the host name
            dictionary-encoded (int32 indices into 200 names): 48 bytes per row

Repeating one batch keeps the client's memory small; the bytes on the wire are the same as
for distinct batches (no compression).
"""
import pyarrow as pa
import pyarrow.compute as pc

ROW_BYTES = {"fixed": 64, "telemetry": 48}
_cache = {}


def _floats(n, scale=1.0):
    return pc.multiply(pc.random(n), scale) if scale != 1.0 else pc.random(n)


def _ints(n, scale, typ):
    return pc.cast(pc.floor(pc.multiply(pc.random(n), float(scale))), typ)


def make_batch(kind, batch_bytes):
    rows = max(1, batch_bytes // ROW_BYTES[kind])
    if kind == "fixed":
        cols = {}
        for i in range(4):
            cols["i%d" % i] = _ints(rows, 1e12, pa.int64())
        for i in range(4):
            cols["f%d" % i] = _floats(rows, 1e3)
        return pa.RecordBatch.from_pydict(cols)
    if kind == "telemetry":
        base = 1_767_225_600_000_000  # 2026-01-01 in us
        ts = pc.cast(pc.add(pc.multiply(pa.array(range(rows), pa.int64()), 1000), base), pa.timestamp("us", tz="UTC"))
        hosts = pa.array(["host-%04d.dc%d.blackice.local" % (i, i % 4) for i in range(200)])
        host = pa.DictionaryArray.from_arrays(_ints(rows, 200, pa.int32()), hosts)
        return pa.RecordBatch.from_pydict(
            {
                "ts": ts,
                "cpu": _floats(rows, 100.0),
                "mem": _floats(rows, 64e9),
                "rx": _ints(rows, 1e9, pa.int64()),
                "tx": _ints(rows, 1e9, pa.int64()),
                "status": _ints(rows, 8, pa.int32()),
                "host": host,
            }
        )
    raise ValueError("unknown table kind " + kind)


def _stream_size(schema, batches):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        for b in batches:
            w.write_batch(b)
    return sink.getvalue().size


def table_spec(kind, batch_bytes, table_bytes):
    """(table, spec) where spec gives the IPC stream size and the per-batch message size."""
    key = (kind, batch_bytes, table_bytes)
    if key in _cache:
        return _cache[key]
    batch = make_batch(kind, batch_bytes)
    one = _stream_size(batch.schema, [batch])
    two = _stream_size(batch.schema, [batch, batch])
    message = two - one  # one record batch message: prefix + flatbuffer + body
    fixed = one - message  # schema (+ dictionary) + end-of-stream marker
    count = max(1, round(table_bytes / message))
    table = pa.Table.from_batches([batch] * count)
    spec = {
        "kind": kind,
        "batch_bytes": batch_bytes,
        "rows_per_batch": batch.num_rows,
        "batches": count,
        "rows": batch.num_rows * count,
        "message_bytes": message,
        "ipc_bytes": fixed + message * count,
    }
    _cache.clear()  # keep one table at a time
    _cache[key] = (table, spec)
    return table, spec
