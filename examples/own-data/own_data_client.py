# pyarrow's Flight client (Arrow C++) against examples/own-data/server.ts: what a Python user
# of a FlightServerBase-style server does. Prints one JSON line of what it saw.
import json
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as fl

client = fl.connect(sys.argv[1])
seen = {}
infos = list(client.list_flights())
seen["listed"] = sorted("/".join(p.decode() for p in i.descriptor.path) for i in infos)
info = client.get_flight_info(fl.FlightDescriptor.for_path("sensors", "pump"))
seen["info_records"] = info.total_records
seen["info_schema"] = info.schema.names
table = client.do_get(info.endpoints[0].ticket).read_all()
seen["rows"] = table.num_rows
seen["first_sensor"] = table.column("sensor")[0].as_py()
seen["mean_value"] = round(pc.mean(table.column("value")).as_py())
seen["schema_names"] = client.get_schema(fl.FlightDescriptor.for_path("sensors", "valve")).schema.names
try:
    client.get_flight_info(fl.FlightDescriptor.for_path("sensors", "nothing"))
    seen["missing"] = "served"
except pa.lib.ArrowKeyError:
    seen["missing"] = "NOT_FOUND"
# The store still serves what clients put beside the handlers' flights.
mine = pa.table({"x": [1, 2, 3]})
writer, _ = client.do_put(fl.FlightDescriptor.for_path("uploads", "x"), mine.schema)
writer.write_table(mine)
writer.close()
stored = client.get_flight_info(fl.FlightDescriptor.for_path("uploads", "x"))
seen["stored_rows"] = client.do_get(stored.endpoints[0].ticket).read_all().num_rows
print(json.dumps(seen))
