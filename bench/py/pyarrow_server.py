"""Server (b): pyarrow's own Flight server keeping tables in a dict.

This is what a user would write instead of BlackIce Flight: do_put stores the reader's
batches, do_get streams the stored table back (RecordBatchStream), plus get_flight_info,
list_flights and the actions ping and delete (delete lets the benchmark free memory between
cases; body: JSON {"path": [...]}).

Prints one JSON line {"port": N} on stdout once listening. Exits when stdin closes, so it
never outlives the benchmark that started it.
"""
import json
import os
import sys
import threading

import pyarrow as pa
import pyarrow.flight as flight


def descriptor_key(descriptor):
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        return "p:" + "/".join(p.decode() if isinstance(p, bytes) else p for p in descriptor.path)
    return "c:" + descriptor.command.hex()


class InMemoryFlightServer(flight.FlightServerBase):
    def __init__(self, location):
        super().__init__(location)
        self._location = "grpc+tcp://127.0.0.1:%d" % self.port
        self._tables = {}  # key -> (descriptor, table)
        self._lock = threading.Lock()

    def _info(self, key, descriptor, table):
        endpoint = flight.FlightEndpoint(key.encode(), [self._location])
        return flight.FlightInfo(table.schema, descriptor, [endpoint], table.num_rows, table.nbytes)

    def do_put(self, context, descriptor, reader, writer):
        table = reader.read_all()
        key = descriptor_key(descriptor)
        with self._lock:
            old = self._tables.get(key)
            if old is not None and old[1].schema.equals(table.schema):
                table = pa.concat_tables([old[1], table])
            self._tables[key] = (descriptor, table)

    def do_get(self, context, ticket):
        with self._lock:
            entry = self._tables.get(ticket.ticket.decode())
        if entry is None:
            raise flight.FlightServerError("no flight for this ticket")
        return flight.RecordBatchStream(entry[1])

    def get_flight_info(self, context, descriptor):
        key = descriptor_key(descriptor)
        with self._lock:
            entry = self._tables.get(key)
        if entry is None:
            raise KeyError("no flight " + key)
        return self._info(key, descriptor, entry[1])

    def list_flights(self, context, criteria):
        with self._lock:
            items = list(self._tables.items())
        for key, (descriptor, table) in items:
            yield self._info(key, descriptor, table)

    def list_actions(self, context):
        return [("ping", "Returns pong"), ("delete", 'Deletes a flight: JSON {"path": [...]}')]

    def do_action(self, context, action):
        if action.type == "ping":
            yield flight.Result(b"pong")
        elif action.type == "delete":
            ref = json.loads(action.body.to_pybytes())
            key = "p:" + "/".join(ref["path"])
            with self._lock:
                found = self._tables.pop(key, None) is not None
            yield flight.Result(json.dumps({"deleted": int(found)}).encode())
        else:
            raise KeyError("unknown action " + action.type)


def main():
    server = InMemoryFlightServer("grpc+tcp://127.0.0.1:0")
    sys.stdout.write(json.dumps({"port": server.port, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()

    def watch_stdin():
        sys.stdin.read()  # returns at EOF: the parent is gone or wants us to stop
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve()


if __name__ == "__main__":
    main()
