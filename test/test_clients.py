"""Applications' clients as teams run them: psycopg through PgBouncer in
transaction mode, and a trainer's wait for requests.

- route(), log_prediction() and log_outcome() work from several psycopg
  clients through Debian's PgBouncer in transaction mode with
  prepare_threshold=None, and give what a direct connection gives;
- psycopg's default automatic preparation breaks calls there (the reason
  docs/apps.md gives for prepare_threshold=None);
- LISTEN needs a direct connection: through transaction pooling a
  notification reaches whichever client holds the server connection then,
  not the one that listened;
- the trainer's loop (test/trainer.py's wait_for_request, shown in
  docs/apps.md) claims a request whose notification arrived while another
  query ran, where waiting on conn.notifies() alone would sleep on.
"""

import os
import select
import shutil
import socket
import sys
import threading
import time

import psycopg

from testlib import connect, run_as_owner, run_suite, run_threads, scalar

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainer  # noqa: E402 - beside this file

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    """Debian's PgBouncer in front of the test cluster, in transaction mode
    with a pool of pool_size server connections, run as the cluster's owner
    (it refuses to run as root)."""

    def __init__(self, pool_size=2):
        self.pool_size = pool_size
        self.dir = os.path.join(os.environ["RETRAIN_TMP"], f"pgbouncer.{os.getpid()}")
        self.port = free_port()

    def __enter__(self):
        run_as_owner("mkdir", "-p", "-m", "700", self.dir)
        users = "".join(f'"{u}" ""\n' for u in ("postgres", "clients_app"))
        run_as_owner("tee", f"{self.dir}/users.txt", input=users)
        config = f"""[databases]
{os.environ['PGDATABASE']} = host={os.environ['PGHOST']} port={os.environ['PGPORT']}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/users.txt
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 100
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
"""
        run_as_owner("tee", f"{self.dir}/pgbouncer.ini", input=config)
        run_as_owner(PGBOUNCER, "-d", f"{self.dir}/pgbouncer.ini")
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("pgbouncer did not start: "
                                         + run_as_owner("cat", f"{self.dir}/pgbouncer.log", check=False).stdout)
                time.sleep(0.05)

    def connect(self, **kwargs):
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("user", "postgres")
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=os.environ["PGDATABASE"], **kwargs)

    def __exit__(self, *exc):
        pid = run_as_owner("cat", f"{self.dir}/pgbouncer.pid", check=False).stdout.strip()
        if pid:
            run_as_owner("kill", "-INT", pid, check=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and run_as_owner("kill", "-0", pid, check=False).returncode == 0:
                time.sleep(0.05)
        run_as_owner("rm", "-rf", self.dir, check=False)
        return False


def canary_model(conn, model):
    """A model with v1 in production and v2 on a canary."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    for v in ("v1", "v2"):
        conn.execute("SELECT retrain.register_version(%s, %s, 's3://m/' || %s, encode(sha256(convert_to(%s, 'UTF8')), 'hex'), '{}')",
                     (model, v, v, v))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v2', 'canary', override_reason => 'test')", (model,))


def test_serving_calls_work_through_transaction_pooling():
    model = "clients_pool"
    with connect() as direct:
        canary_model(direct, model)
        keys = [f"member-{i}" for i in range(200)]
        expected = {k: scalar(direct, "SELECT retrain.route(%s, %s)", (model, k)) for k in keys}
        assert set(expected.values()) == {"v1", "v2"}, set(expected.values())
    clients, rounds = 4, 150
    with PgBouncer(pool_size=2) as bouncer:
        got = {}
        backends = set()

        def client(i):
            # prepare_threshold=None: no server-side prepared statements,
            # which a pooled server connection would not keep for us
            with bouncer.connect(prepare_threshold=None) as conn:
                for k in range(rounds):
                    key = keys[(i * rounds + k) % len(keys)]
                    version, backend = conn.execute("SELECT retrain.route(%s, %s), pg_backend_pid()",
                                                    (model, key)).fetchone()
                    got[(i, k)] = (key, version)
                    backends.add(backend)
                    if k % 2 == 0:
                        # by the prediction's id
                        pid = scalar(conn, "SELECT retrain.log_prediction(%s, %s, %s, %s, %s)",
                                     (model, version, key, 0.25 + 0.5 * (k % 2), 3.0))
                        conn.execute("SELECT retrain.log_outcome(%s, %s)", (pid, k % 3 == 0))
                    else:
                        # by the application's request id (a str: the text form)
                        request = f"req-{i}-{k}"
                        conn.execute("SELECT retrain.log_prediction(%s, %s, %s, %s, %s, %s)",
                                     (model, version, key, 0.25 + 0.5 * (k % 2), request, 3.0))
                        conn.execute("SELECT retrain.log_outcome(%s, %s, %s)", (model, request, k % 3 == 0))

        run_threads(clients, client)
    # the pooler shared its 2 server connections among the 4 clients
    assert 1 <= len(backends) <= 2, backends
    assert len(got) == clients * rounds
    wrong = [(key, v) for key, v in got.values() if v != expected[key]]
    assert not wrong, wrong[:5]
    with connect() as direct:
        n, labelled = direct.execute(
            "SELECT count(*), count(o.prediction_id) FROM retrain.predictions p "
            "LEFT JOIN retrain.outcomes o ON o.prediction_id = p.id WHERE p.model = %s", (model,)).fetchone()
        assert n == clients * rounds and labelled == clients * rounds, (n, labelled)
        # half of them with a request id, each once; all with latency 3 ms
        assert scalar(direct, "SELECT count(DISTINCT request_id) FROM retrain.predictions WHERE model = %s",
                      (model,)) == clients * rounds // 2
        assert scalar(direct, "SELECT count(*) FROM retrain.predictions WHERE model = %s AND latency_ms = 3",
                      (model,)) == clients * rounds
        # each prediction was logged for the version route() chose
        mismatched = scalar(direct, "SELECT count(*) FROM retrain.predictions "
                                    "WHERE model = %s AND version <> retrain.route(model, unit_key)", (model,))
        assert mismatched == 0


def test_automatic_preparation_breaks_calls_through_transaction_pooling():
    """psycopg prepares a statement on its fifth run, on whichever server
    connection the pooler lent it then; another client may get that
    connection, and the client that prepared it another one."""
    model = "clients_prepare"
    with connect() as direct:
        canary_model(direct, model)
    failures = []
    calls = 0
    with PgBouncer(pool_size=1) as bouncer:
        lock = threading.Lock()

        def client(i):
            nonlocal calls
            with bouncer.connect() as conn:  # the default prepare_threshold (5)
                for k in range(40):
                    try:
                        conn.execute("SELECT retrain.route(%s, %s)", (model, f"u{i}-{k}"))
                    except psycopg.Error as e:
                        with lock:
                            failures.append(e.sqlstate)
                    with lock:
                        calls += 1

        run_threads(3, client)
    # 26000 duplicate_prepared_statement, 26000 invalid_sql_statement_name
    assert failures and set(failures) <= {"42P05", "26000"}, (calls, failures[:5])


def test_listen_through_transaction_pooling_reaches_the_wrong_client():
    """A notification goes to the server connection that ran LISTEN, and
    PgBouncer hands it to whichever client holds that connection when it
    is sent: here another client, in a transaction, gets it, and the one
    that listened never does."""
    channel = "clients_listen"
    with PgBouncer(pool_size=1) as bouncer, connect() as direct, connect() as notifier, \
            bouncer.connect(prepare_threshold=None) as pooled, \
            bouncer.connect(prepare_threshold=None) as other:
        heard = {"direct": [], "pooled": [], "other": []}
        for name, conn in (("direct", direct), ("pooled", pooled), ("other", other)):
            conn.add_notify_handler(lambda n, name=name: heard[name].append(n.payload))
        direct.execute(f"LISTEN {channel}")
        pooled.execute(f"LISTEN {channel}")
        # the pool's one server connection, which listened for pooled,
        # serves another client's transaction when the notification comes
        with other.transaction():
            other.execute("SELECT 1")
            notifier.execute(f"NOTIFY {channel}, 'hello'")
            time.sleep(0.2)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for conn in (direct, pooled, other):
                conn.execute("SELECT 1")
            time.sleep(0.1)
        assert heard == {"direct": ["hello"], "pooled": [], "other": ["hello"]}, heard


def test_trainer_wait_keeps_a_notification_that_arrived_during_a_query():
    # a database of its own: claim_request() takes any model's open request
    model, db = "clients_trainer", "retrain_clients_trainer"
    with connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    with connect(db) as admin:
        admin.execute("CREATE EXTENSION retrain")
        admin.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))

    def request_during(conn):
        """A query that runs while another session commits a request: its
        notification reaches conn during that query, not during a wait."""
        t = threading.Timer(0.2, lambda: request(model))
        t.start()
        conn.execute("SELECT pg_sleep(0.6)")
        t.join()

    def request(m):
        with connect(db) as c:
            c.execute("SELECT retrain.request_retrain(%s, 'late notification')", (m,))

    def claim(conn):
        return conn.execute("SELECT id FROM retrain.claim_request('clients') WHERE id IS NOT NULL").fetchone()

    # Waiting on conn.notifies() alone: the notification was consumed by the
    # query, and the wait sleeps on with a request open.
    with connect(db) as conn:
        conn.execute("LISTEN retrain_requests")
        request_during(conn)
        assert select.select([conn.fileno()], [], [], 1.0)[0] == [], "a notification was still pending"
        assert scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model = %s AND status = 'open'",
                      (model,)) == 1
        assert claim(conn) is not None
        conn.execute("SELECT retrain.finish_request(id, 'done') FROM retrain.requests WHERE model = %s "
                     "AND status = 'claimed'", (model,))

    # trainer.wait_for_request: a handler remembers notifications that
    # arrive during any query, and the wait has a timeout after which the
    # loop polls the queue again anyway.
    with connect(db) as conn:
        woken = trainer.listen_for_requests(conn)
        assert claim(conn) is None
        request_during(conn)
        started = time.monotonic()
        trainer.wait_for_request(conn, woken, timeout=5.0)
        assert time.monotonic() - started < 0.5, "the wait slept although a notification had arrived"
        assert claim(conn) is not None
        # with nothing arriving, the wait ends at its timeout
        started = time.monotonic()
        trainer.wait_for_request(conn, woken, timeout=0.5)
        assert 0.4 < time.monotonic() - started < 2.0
    with connect() as admin:
        admin.execute(f"DROP DATABASE {db} WITH (FORCE)")


if __name__ == "__main__":
    run_suite(globals())
