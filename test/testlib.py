"""Helpers shared by the Python suites in test/.

Each suite is a plain script: it defines test_* functions and ends with
run_suite(globals()).  The runner prints one line per test and, last, the
"N passed, N failed" line that test/run_tests.sh adds up.  Connections go to
the throwaway cluster through the libpq variables that test/cluster.sh sets.
"""

import os
import shlex
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import numpy as np
import psycopg


def connect(dbname=None, **kwargs):
    """A connection to the test cluster, autocommit unless told otherwise."""
    kwargs.setdefault("autocommit", True)
    return psycopg.connect(dbname=dbname or os.environ["PGDATABASE"], **kwargs)


def scalar(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def expect_error(conn, sql, sqlstate, params=None, match=None):
    """Run sql and insist that it fails with sqlstate (and message containing match)."""
    try:
        conn.execute(sql, params)
    except psycopg.Error as e:
        assert e.sqlstate == sqlstate, f"expected SQLSTATE {sqlstate}, got {e.sqlstate}: {e}"
        if match is not None:
            assert match in str(e), f"expected {match!r} in the error, got: {e}"
        return e
    raise AssertionError(f"expected SQLSTATE {sqlstate} from: {sql}")


# Forced parallel plans, also for one-row tables: the tables ask for two
# workers, inflated per-row costs make splitting the scan worth it, and a
# costly tuple transfer makes the workers aggregate before the Gather.  The
# leader does not scan, so every row's state crosses over serialized (and a
# worker that finds no row sends none).
PARALLEL = {"max_parallel_workers_per_gather": "2", "parallel_setup_cost": "0",
            "parallel_tuple_cost": "1000", "min_parallel_table_scan_size": "0",
            "parallel_leader_participation": "off", "cpu_tuple_cost": "10",
            "cpu_operator_cost": "10"}
SERIAL = {"max_parallel_workers_per_gather": "0"}


def copy_binary(conn, table, cols):
    """Load numpy columns with binary COPY: fast for millions of rows."""
    n = len(cols[0])
    fields = [("nfields", ">i2")]
    values = {}
    for i, col in enumerate(cols):
        if col.dtype == bool:
            fields += [(f"l{i}", ">i4"), (f"v{i}", "u1")]
            values[f"l{i}"], values[f"v{i}"] = 1, col.astype(np.uint8)
        else:
            fields += [(f"l{i}", ">i4"), (f"v{i}", ">f8")]
            values[f"l{i}"], values[f"v{i}"] = 8, col
    rows = np.empty(n, dtype=fields)
    rows["nfields"] = len(cols)
    for key, value in values.items():
        rows[key] = value
    payload = b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0) + rows.tobytes() + struct.pack(">h", -1)
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
            copy.write(payload)



def run_as_owner(*argv, **kwargs):
    """Run a program as the OS user that owns the cluster (postgres when we are root)."""
    prefix = shlex.split(os.environ.get("RETRAIN_RUNAS", ""))
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(prefix + list(argv), **kwargs)


class ScratchCluster:
    """A second throwaway cluster with settings of a test's choosing.

    It listens on a Unix socket in its own directory only, so its port can
    never clash with anything.  Use it as a context manager: it is stopped
    and removed on the way out.
    """

    def __init__(self, **settings):
        self.settings = settings
        self.dir = tempfile.mktemp(prefix="scratch.", dir=os.environ["RETRAIN_TMP"])
        self.data = os.path.join(self.dir, "data")
        # a port of the test's choosing matters when it listens on TCP too
        self.port = int(settings.get("port", 5432))
        self.bin = os.environ["RETRAIN_PGBIN"]

    def __enter__(self):
        run_as_owner("mkdir", "-m", "700", self.dir)
        run_as_owner(f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                     "-E", "UTF8", "--locale=C", "-N")
        conf = {"listen_addresses": "''", "unix_socket_directories": f"'{self.dir}'",
                "port": str(self.port), "fsync": "off", "lc_messages": "'C'"}
        conf.update(self.settings)
        text = "".join(f"{k} = {v}\n" for k, v in conf.items())
        run_as_owner("tee", "-a", os.path.join(self.data, "postgresql.conf"), input=text)
        run_as_owner(f"{self.bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                     "-w", "-t", "60", "start")
        return self

    def connect(self, dbname="postgres", user="postgres", **kwargs):
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(host=self.dir, port=self.port, user=user, dbname=dbname, **kwargs)

    def log(self):
        """The server log so far."""
        return run_as_owner("cat", os.path.join(self.dir, "log")).stdout

    def __exit__(self, *exc):
        run_as_owner(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)
        run_as_owner("rm", "-rf", self.dir, check=False)
        return False


def run_demo(cluster, artifacts):
    """test/demo.py in a ScratchCluster (preloaded with pg_cron and retrain),
    in a database retrain it creates; returns the finished run."""
    with cluster.connect() as conn:
        conn.execute("CREATE DATABASE retrain")
    env = dict(os.environ, PGHOST=cluster.dir, PGPORT=str(cluster.port), PGUSER="postgres",
               PGDATABASE="retrain", RETRAIN_TMP=artifacts)
    here = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.run([sys.executable, "-u", os.path.join(here, "demo.py")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def wait_for(what, fn, timeout=30.0, interval=0.25):
    """Poll fn until it returns something true, and return that; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_threads(n, target):
    """Run target(0) ... target(n - 1) in threads; fail with their errors."""
    errors = []

    def wrapped(i):
        try:
            target(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def train_until(conn, deadline, worker="racer"):
    """A trainer that claims and finishes requests until time.monotonic()
    passes deadline, as a racing test's background load."""
    while time.monotonic() < deadline:
        row = conn.execute("SELECT id FROM retrain.claim_request(%s)", (worker,)).fetchone()
        if row:
            conn.execute("SELECT retrain.finish_request(%s, 'done')", row)
        else:
            time.sleep(0.05)


def fill_every_table(conn, reviewer):
    """Put rows into every table of the installed retrain, through the API
    that every released version has (the upgrade test fills a 0.1.0 install
    with it); reviewer is an existing role that signs a version."""
    conn.execute(f"GRANT EXECUTE ON FUNCTION retrain.approve(text, text, text, text) TO {reviewer}")
    conn.execute("CREATE TABLE training AS SELECT (i % 10)::float8 AS a FROM generate_series(1, 100) i")
    for sql in [
        "SELECT retrain.register_model('ops', 'binary_classification')",
        "SELECT retrain.register_version('ops', 'v1', 's3://m/v1', repeat('a', 64), '{\"f1\": 0.8}',"
        " data_range => '[2026-01-01, 2026-02-01)')",
        "SELECT retrain.capture_baseline('ops', 'v1', 'training')",
        "SELECT retrain.promote('ops', 'v1', 'blue_green')",
        f"SELECT retrain.set_policy('ops', '{{\"approvals\": {{\"reviewer\": \"{reviewer}\"}},"
        " \"gates\": [{\"metric\": \"f1\", \"op\": \">=\", \"value\": 0.5}],"
        " \"triggers\": {\"schedule\": {\"interval\": \"1 day\"}}}')",
        "SELECT retrain.register_version('ops', 'v2', 's3://m/v2', repeat('b', 64), '{\"f1\": 0.9}')",
        "SELECT retrain.evaluate('ops', 'v2')",
        # the reviewer signs in a session of their own (as if logged in)
        f"SET SESSION AUTHORIZATION {reviewer}",
        "SELECT retrain.approve('ops', 'v2', 'reviewer', 'fine')",
        "RESET SESSION AUTHORIZATION",
        "SELECT retrain.promote('ops', 'v2')",
        "SELECT retrain.log_outcome(retrain.log_prediction('ops', 'v1', 'u' || i, 0.7), i % 2 = 0)"
        " FROM generate_series(1, 50) i",
        # the schedule counts occurrences since the model's registration
        "UPDATE retrain.models SET created_at = '2026-01-01'",
        "SELECT retrain.run_checks()",
        # a check of the log's chain (on record from 0.2.0)
        "SELECT retrain.verify_log()",
    ]:
        conn.execute(sql)
    # evidence recorded after registration: 0.2.0 and later
    if scalar(conn, "SELECT to_regproc('retrain.record_metrics') IS NOT NULL"):
        conn.execute("SELECT retrain.record_metrics('ops', 'v2', '{\"conversion\": 0.12}', 'kpi dashboard')")
    empty = [t for t, digest in table_snapshot(conn).items() if digest is None]
    assert not empty, f"fill_every_table left these tables empty: {empty}"


def table_columns(conn):
    """The columns of every table of the extension whose rows are data (those
    pg_dump keeps: not the check cycle's rollups, a cache it rebuilds), by
    table name.  A partitioned table is read whole, through its parent (its
    default partition is the extension's, the others are not)."""
    return {t: cols for t, cols in conn.execute(
        "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_depend d "
        "JOIN pg_class c ON c.oid = d.objid "
        "JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'retrain' "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'p') "
        "AND (c.oid = ANY (e.extconfig) OR c.relkind = 'p') AND NOT c.relispartition "
        "GROUP BY c.relname ORDER BY 1")}


def table_snapshot(conn, columns=None):
    """A digest of the rows of every table of the extension, by table name
    (None for an empty table): of the columns given per table (an upgrade
    compares the columns that were there before it), or of all."""
    columns = columns or table_columns(conn)
    digests = {}
    for t, cols in columns.items():
        row = ", ".join(f'x."{c}"' for c in cols)
        digests[t] = conn.execute(f"SELECT md5(string_agg(ROW({row})::text, ',' ORDER BY ROW({row})::text)) "
                                  f"FROM retrain.{t} x").fetchone()[0]
    return digests


def run_suite(namespace):
    """Run every test_* function of a suite in definition order and exit."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        started = time.monotonic()
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            print(f"FAILED  {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok      {name} ({time.monotonic() - started:.1f} s)")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
