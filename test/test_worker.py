"""The background worker and the pg_cron job: what needs a server's life.

A scratch server preloads retrain with a one-second naptime; its worker must
show in pg_stat_activity, run cycles (a due schedule makes a request), obey
a reloaded retrain.worker_enabled, survive an error in a cycle, come back
after kill -9, and stop with the server.  In the test cluster, pg_cron runs
the same cycle as the job "retrain-checks".
"""

import os
import time

import psycopg

from testlib import ScratchCluster, connect, expect_error, run_as_owner, run_suite, scalar

WORKER = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'retrain worker'"


def wait_for(what, fn, timeout=30.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def checked_rows(conn):
    return scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'checked'")


def test_worker_lifecycle():
    with ScratchCluster(shared_preload_libraries="'retrain'", **{"retrain.naptime": "1"}) as cluster:
        with cluster.connect() as conn:
            conn.execute("CREATE EXTENSION retrain")
            row = conn.execute("SELECT datname, application_name FROM pg_stat_activity "
                               "WHERE backend_type = 'retrain worker'").fetchone()
            assert row == ("postgres", "retrain worker"), row

            # a model whose weekly schedule is due: the worker's cycle requests training
            conn.execute("SELECT retrain.register_model('w', 'binary_classification')")
            conn.execute("SELECT retrain.register_version('w', 'v1', 's3://m', repeat('a', 64), '{}')")
            conn.execute("SELECT retrain.promote('w', 'v1', 'blue_green')")
            conn.execute("""SELECT retrain.set_policy('w', '{"triggers": {"schedule":
                            {"every": "week", "weekday": "monday", "at": "00:00"}}}')""")
            conn.execute("UPDATE retrain.models SET created_at = now() - interval '30 days'")
            wait_for("a request made by the worker",
                     lambda: scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model = 'w'"))
            assert scalar(conn, "SELECT requested_by FROM retrain.requests WHERE model = 'w'") == "postgres"

            # SIGHUP: switched off, no more cycles; switched on, cycles again
            conn.execute("ALTER SYSTEM SET retrain.worker_enabled = off")
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(1.5)
            before = checked_rows(conn)
            time.sleep(2.5)
            assert checked_rows(conn) == before, "the worker ran while switched off"
            conn.execute("ALTER SYSTEM SET retrain.worker_enabled = on")
            conn.execute("SELECT pg_reload_conf()")
            wait_for("cycles after switching on", lambda: checked_rows(conn) > before)

            # an error in a cycle is reported and the worker goes on
            pid = scalar(conn, WORKER)
            conn.execute("ALTER FUNCTION retrain.run_checks() RENAME TO run_checks_away")
            time.sleep(2.5)
            log = open(os.path.join(cluster.dir, "log"), encoding="utf-8", errors="replace").read() \
                if os.access(os.path.join(cluster.dir, "log"), os.R_OK) else \
                run_as_owner("cat", os.path.join(cluster.dir, "log")).stdout
            assert "retrain.run_checks() does not exist" in log, log[-2000:]
            assert scalar(conn, WORKER) == pid, "the worker did not survive an error"
            conn.execute("ALTER FUNCTION retrain.run_checks_away() RENAME TO run_checks")
            before = checked_rows(conn)
            wait_for("cycles after the error", lambda: checked_rows(conn) > before)

        # kill -9: the postmaster restarts the server's processes, the worker with them
        run_as_owner("kill", "-9", str(pid))

        def new_worker():
            try:
                with cluster.connect() as c:
                    p = scalar(c, WORKER)
                    return p if p and p != pid else None
            except psycopg.OperationalError:
                return None
        new_pid = wait_for("the worker after kill -9", new_worker, timeout=60)
    # the server stopped: so did its worker
    assert not os.path.exists(f"/proc/{new_pid}"), "the worker outlived the server"


def test_pg_cron_job_runs_the_cycle():
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        conn.execute("DROP EXTENSION IF EXISTS pg_cron")
        expect_error(conn, "SELECT retrain.schedule_checks()", "42704", match="pg_cron is not installed")
        conn.execute("CREATE EXTENSION pg_cron")
        try:
            job = scalar(conn, "SELECT retrain.schedule_checks('* * * * *')")
            again = scalar(conn, "SELECT retrain.schedule_checks('* * * * *')")
            assert again == job  # replaced, not doubled
            assert scalar(conn, "SELECT count(*) FROM cron.job WHERE jobname = 'retrain-checks'") == 1
            before = checked_rows(conn)
            # pg_cron runs every minute on the minute
            wait_for("the pg_cron job to run the cycle", lambda: scalar(
                conn, "SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded'",
                (job,)), timeout=90, interval=1)
            assert checked_rows(conn) > before or scalar(conn, "SELECT count(*) FROM retrain.models") == 0
            assert scalar(conn, "SELECT retrain.unschedule_checks()") is True
            assert scalar(conn, "SELECT retrain.unschedule_checks()") is False
            assert scalar(conn, "SELECT count(*) FROM cron.job WHERE jobname = 'retrain-checks'") == 0
        finally:
            conn.execute("DROP EXTENSION pg_cron")


run_suite(globals())
