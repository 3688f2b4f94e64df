"""Flight SQL (docs/query.md, "Flight SQL") under Python's ADBC Flight SQL driver.

adbc-driver-flightsql ships the Go driver (arrow-go's Flight SQL client) inside its wheel; it
is driven here through adbc-driver-manager's DB-API. The server (test/flight-sql-adbc.test.ts)
runs basicTokenAuth, flightSql(), query() and authorize(pathPrefixPolicy): alice may read and
write "telemetry/..." and "alice/...", bob only "public/...".

Results of SQL statements are checked against pyarrow's compute functions over the data the
test ingested (an engine independent of the server's).

BLACKICE_FLIGHT_SQL_URI: the server's grpc:// URI; BLACKICE_VERSION: the version the server reports
(@blackice/flight's package.json).
"""
import datetime
import os

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

URI = os.environ["BLACKICE_FLIGHT_SQL_URI"]
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}


def connect(user="alice", password=None):
    return flightsql.connect(URI, db_kwargs={"username": user, "password": password or PASSWORDS[user]}, autocommit=True)


def telemetry(n=2000):
    """Generated telemetry: timestamps with time zone, a host column with nulls, cpu with nulls."""
    t0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    hosts = ["host-1", "host-2", "host-3", None]
    return pa.table(
        {
            "ts": pa.array([t0 + datetime.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", "UTC")),
            "host": pa.array([hosts[i % 4] for i in range(n)], pa.string()),
            "cpu": pa.array([None if i % 13 == 5 else (i * 37 % 1000) / 1000 for i in range(n)], pa.float64()),
            "mem": pa.array([i * 1024 for i in range(n)], pa.int64()),
        }
    )


@pytest.fixture(scope="module")
def conn():
    c = connect()
    with c.cursor() as cur:
        assert cur.adbc_ingest("telemetry/fleet", telemetry(), mode="create") == 2000
    yield c
    c.close()


def status_of(err):
    return str(err).split(":", 1)[0]


# ADBC's name for gRPC's PERMISSION_DENIED.
PERMISSION_DENIED = "UNAUTHORIZED"


# --- connect ---------------------------------------------------------------------------------


def test_connect_with_username_and_password_through_the_handshake(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "BlackIce Flight"
    assert info["vendor_version"] == os.environ["BLACKICE_VERSION"]
    assert info["driver_name"] == "ADBC Flight SQL Driver - Go"


def test_a_wrong_password_is_refused():
    with pytest.raises(adbc_driver_manager.Error) as e:
        connect("alice", "not-her-password").adbc_get_info()
    assert status_of(e.value) == "UNAUTHENTICATED"
    assert "not-her-password" not in str(e.value)


def test_connect_with_a_bearer_token_in_the_authorization_header():
    client = flight.FlightClient(URI)
    name, value = client.authenticate_basic_token("alice", PASSWORDS["alice"])
    assert value.startswith(b"Bearer ")
    client.close()
    key = adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value
    with flightsql.connect(URI, db_kwargs={key: value.decode()}, autocommit=True) as c, c.cursor() as cur:
        cur.execute('SELECT count(*) AS n FROM "telemetry/fleet"')
        assert cur.fetch_arrow_table().column("n").to_pylist() == [2000]
    with flightsql.connect(URI, db_kwargs={key: "Bearer forged"}, autocommit=True) as c:
        with pytest.raises(adbc_driver_manager.Error) as e:
            c.adbc_get_table_types()
        assert status_of(e.value) == "UNAUTHENTICATED"


# --- metadata --------------------------------------------------------------------------------


def test_get_table_types(conn):
    assert conn.adbc_get_table_types() == ["TABLE"]


def test_get_objects_lists_stored_flights_as_tables_with_their_columns(conn):
    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == [""]  # no catalogs
    schemas = objects[0]["catalog_db_schemas"]
    assert [s["db_schema_name"] for s in schemas] == ["flights"]
    tables = {t["table_name"]: t for t in schemas[0]["db_schema_tables"]}
    assert "telemetry/fleet" in tables
    fleet = tables["telemetry/fleet"]
    assert fleet["table_type"] == "TABLE"
    assert [c["column_name"] for c in fleet["table_columns"]] == ["ts", "host", "cpu", "mem"]
    # a filter on the table name is a LIKE pattern
    filtered = conn.adbc_get_objects(depth="tables", table_name_filter="telemetry/fl%").read_all().to_pylist()
    assert [t["table_name"] for t in filtered[0]["catalog_db_schemas"][0]["db_schema_tables"]] == ["telemetry/fleet"]


def test_get_table_schema(conn):
    schema = conn.adbc_get_table_schema("telemetry/fleet")
    assert schema == telemetry(1).schema
    with pytest.raises(adbc_driver_manager.Error):
        conn.adbc_get_table_schema("telemetry/no-such-table")


def test_metadata_lists_only_what_the_caller_may_list():
    with connect("bob") as c:
        objects = c.adbc_get_objects(depth="tables").read_all().to_pylist()
        names = [t["table_name"] for s in objects[0]["catalog_db_schemas"] for t in s["db_schema_tables"] or []]
        assert "telemetry/fleet" not in names


# --- ingest ----------------------------------------------------------------------------------


def test_ingest_create_append_and_read_back_with_plain_pyarrow_flight(conn):
    part = telemetry(10)
    with conn.cursor() as cur:
        assert cur.adbc_ingest("alice/ingested", part, mode="create") == 10
    with conn.cursor() as cur:
        assert cur.adbc_ingest("alice/ingested", part, mode="append") == 10
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("alice/ingested", part, mode="create")
        assert status_of(e.value) == "ALREADY_EXISTS"
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("alice/never-created", part, mode="append")
        assert status_of(e.value) == "NOT_FOUND"
    # The table is the flight at path ["alice", "ingested"], as a plain DoPut would store it.
    client = flight.FlightClient(URI)
    opts = flight.FlightCallOptions(headers=[client.authenticate_basic_token("alice", PASSWORDS["alice"])])
    stored = client.do_get(client.get_flight_info(flight.FlightDescriptor.for_path("alice", "ingested"), opts).endpoints[0].ticket, opts).read_all()
    client.close()
    assert stored.equals(pa.concat_tables([part, part]))


def test_ingest_is_authorized_as_a_write_of_the_path():
    with connect("bob") as c, c.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("telemetry/bobs", telemetry(3), mode="create")
        assert status_of(e.value) == PERMISSION_DENIED
        assert "permission denied" in str(e.value)


# --- statements ------------------------------------------------------------------------------


def fetch(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def test_select_where(conn):
    got = fetch(conn, 'SELECT ts, host, cpu FROM "telemetry/fleet" WHERE cpu > 0.9')
    data = telemetry()
    want = data.filter(pc.greater(data["cpu"], 0.9)).select(["ts", "host", "cpu"])
    assert got.num_rows == want.num_rows > 0
    assert got.column("cpu").to_pylist() == want.column("cpu").to_pylist()
    assert got.column("ts").cast(pa.timestamp("us", "UTC")).to_pylist() == want.column("ts").to_pylist()


def test_select_group_by_order_by(conn):
    got = fetch(conn, 'SELECT host, count(cpu) AS n, sum(mem) AS total FROM "telemetry/fleet" WHERE host IS NOT NULL GROUP BY host ORDER BY host')
    data = telemetry()
    data = data.filter(pc.is_valid(data["host"]))
    want = data.group_by("host").aggregate([("cpu", "count"), ("mem", "sum")]).sort_by("host")
    assert got.column("host").to_pylist() == want.column("host").to_pylist() == ["host-1", "host-2", "host-3"]
    assert got.column("n").to_pylist() == want.column("cpu_count").to_pylist()
    assert got.column("total").to_pylist() == want.column("mem_sum").to_pylist()


def test_select_order_by_limit(conn):
    got = fetch(conn, 'SELECT mem, cpu FROM "telemetry/fleet" WHERE cpu IS NOT NULL ORDER BY cpu DESC, mem ASC LIMIT 7')
    data = telemetry()
    want = data.filter(pc.is_valid(data["cpu"])).sort_by([("cpu", "descending"), ("mem", "ascending")]).slice(0, 7)
    assert got.column("mem").to_pylist() == want.column("mem").to_pylist()
    assert got.column("cpu").to_pylist() == want.column("cpu").to_pylist()


def test_fetch_arrow_table_of_a_whole_table(conn):
    got = fetch(conn, 'SELECT * FROM "telemetry/fleet"')
    want = telemetry()
    assert got.num_rows == want.num_rows
    assert got.column("mem").to_pylist() == want.column("mem").to_pylist()
    assert got.column("host").to_pylist() == want.column("host").to_pylist()


def test_prepared_statement_reports_its_schemas_and_runs_twice(conn):
    with conn.cursor() as cur:
        # CreatePreparedStatement: no parameters (the parameter schema is empty)
        parameters = cur.adbc_prepare('SELECT host, mem FROM "telemetry/fleet" WHERE mem < 3000')
        assert parameters is None or len(parameters) == 0
        assert cur.adbc_execute_schema('SELECT host, mem FROM "telemetry/fleet" WHERE mem < 3000').names == ["host", "mem"]
        cur.execute('SELECT host, mem FROM "telemetry/fleet" WHERE mem < 3000')
        first = cur.fetch_arrow_table()
        cur.execute('SELECT host, mem FROM "telemetry/fleet" WHERE mem < 3000')
        assert cur.fetch_arrow_table().equals(first)
        assert first.column("mem").to_pylist() == [0, 1024, 2048]


def test_a_parameterised_query_binds_its_values(conn):
    # ADBC prepares the statement, then DoPuts the parameters as one row; the server answers a
    # handle carrying them and runs the statement with the values written in as literals.
    data = telemetry()
    with conn.cursor() as cur:
        cur.execute('SELECT ts, host, cpu, mem FROM "telemetry/fleet" WHERE cpu > $1 AND host = $2', (0.5, "host-1"))
        got = cur.fetch_arrow_table()
    want = data.filter(pc.and_(pc.greater(data["cpu"], 0.5), pc.equal(data["host"], "host-1")))
    assert got.num_rows == want.num_rows > 0
    assert got.column("mem").to_pylist() == want.column("mem").to_pylist()
    assert got.column("cpu").to_pylist() == want.column("cpu").to_pylist()
    # Integers, and the same prepared statement run again with other values.
    with conn.cursor() as cur:
        for limit in (3000, 10_000):
            cur.execute('SELECT mem FROM "telemetry/fleet" WHERE mem < $1 ORDER BY mem', (limit,))
            assert cur.fetch_arrow_table().column("mem").to_pylist() == data.filter(pc.less(data["mem"], limit)).column("mem").to_pylist()


def test_a_timestamp_parameter_is_bound_as_a_timestamp(conn):
    t0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    data = telemetry()
    with conn.cursor() as cur:
        cur.execute('SELECT mem FROM "telemetry/fleet" WHERE ts < $1 ORDER BY mem', (t0 + datetime.timedelta(seconds=5),))
        got = cur.fetch_arrow_table()
    assert got.column("mem").to_pylist() == data.filter(pc.less(data["ts"], pa.scalar(t0 + datetime.timedelta(seconds=5), pa.timestamp("us", "UTC")))).column("mem").to_pylist()
    assert got.num_rows == 5


def test_an_injection_attempt_is_bound_as_a_value(conn):
    with conn.cursor() as cur:
        cur.execute('SELECT mem FROM "telemetry/fleet" WHERE host = $1', ("x' OR '1'='1",))
        assert cur.fetch_arrow_table().num_rows == 0
        cur.execute('SELECT count(*) AS n FROM "telemetry/fleet" WHERE host = $1', ("host-1'; --",))
        assert cur.fetch_arrow_table().column("n").to_pylist() == [0]


def test_a_parameter_of_a_type_that_cannot_be_bound_is_invalid_argument(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute('SELECT mem FROM "telemetry/fleet" WHERE cpu > $1', (b"\x00\x01",))
        assert status_of(e.value) == "INVALID_ARGUMENT"
        assert "Binary" in str(e.value)
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute('SELECT mem FROM "telemetry/fleet" WHERE cpu > $1', (0.5, 0.6))
        assert status_of(e.value) == "INVALID_ARGUMENT"
        assert "takes 1 parameter; 2 given" in str(e.value)


def test_a_question_mark_placeholder_is_refused_clearly(conn):
    # PostgreSQL's $1, $2, ... are the placeholders; the parser does not read "?".
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute('SELECT mem FROM "telemetry/fleet" WHERE cpu > ?', parameters=(0.9,))
        assert status_of(e.value) == "INVALID_ARGUMENT"
        assert "does not parse" in str(e.value)


def test_bad_sql_is_invalid_argument_with_the_engines_message(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute('SELECT no_such_column FROM "telemetry/fleet"')
        assert status_of(e.value) == "INVALID_ARGUMENT"
        assert "no_such_column" in str(e.value)
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute("SELEC nonsense")
        assert status_of(e.value) == "INVALID_ARGUMENT"
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute('SELECT * FROM "telemetry/no-such-table"')
        assert status_of(e.value) == "NOT_FOUND"
    # the server still serves
    assert fetch(conn, 'SELECT count(*) AS n FROM "telemetry/fleet"').column("n").to_pylist() == [2000]


def test_a_statement_over_a_flight_the_caller_may_not_read_is_refused():
    with connect("bob") as c, c.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute('SELECT count(*) FROM "telemetry/fleet"')
        assert status_of(e.value) == PERMISSION_DENIED
        assert "permission denied" in str(e.value)
