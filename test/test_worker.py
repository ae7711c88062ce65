"""The background worker and the pg_cron job: what needs a server's life.

A scratch server preloads retrain with a one-second naptime; its worker must
show in pg_stat_activity, run cycles (a due schedule makes a request), obey
a reloaded retrain.worker_enabled, survive an error in a cycle, come back
after kill -9, and stop with the server.  In the test cluster, pg_cron runs
the same cycle as the job "retrain-checks".  Last, the worker, a pg_cron job
and a person run the cycle at once for a minute (RETRAIN_RACE_SECONDS).
"""

import os
import time

import psycopg

from testlib import (ScratchCluster, connect, expect_error, run_as_owner, run_suite, run_threads, scalar,
                     train_until, wait_for)

WORKER = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'retrain worker'"


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
            # in one transaction: a cycle between the two would find the
            # schedule not due (the model made after its last occurrence)
            # and keep that first
            with conn.transaction():
                conn.execute("""SELECT retrain.set_policy('w', '{"triggers": {"schedule":
                                {"every": "week", "weekday": "monday", "at": "00:00"}}}')""")
                conn.execute("UPDATE retrain.models SET created_at = now() - interval '30 days'")
            wait_for("a request made by the worker",
                     lambda: scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model = 'w'"))
            assert scalar(conn, "SELECT requested_by FROM retrain.requests WHERE model = 'w'") == "postgres"
            # and kept what it decided, naming the request (a later cycle,
            # which may already have run, finds this week's occurrence fired
            # and keeps that it did not fire again)
            request = scalar(conn, "SELECT id FROM retrain.requests WHERE model = 'w'")
            results = conn.execute("SELECT trigger, fired, request_id, detail->>'occurrence', "
                                   "detail->>'last_fired' FROM retrain.check_results "
                                   "WHERE model = 'w' ORDER BY id").fetchall()
            occurrence = results[0][3]
            assert results[0] == ("schedule", True, request, occurrence, None), results
            assert occurrence is not None, results
            assert all(r == ("schedule", False, None, occurrence, occurrence) for r in results[1:]), results

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

            # an error in a cycle is reported, logged for the model, and the worker goes on
            pid = scalar(conn, WORKER)
            conn.execute("ALTER FUNCTION retrain._check_model(text, timestamptz) RENAME TO _check_model_away")
            time.sleep(2.5)
            log = cluster.log()
            assert "retrain._check_model(text, timestamp with time zone) does not exist" in log, log[-2000:]
            assert scalar(conn, WORKER) == pid, "the worker did not survive an error"
            assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE model = 'w' AND event = 'check_failed' "
                                "AND details->>'message' LIKE '%%does not exist%%'") > 0
            conn.execute("ALTER FUNCTION retrain._check_model_away(text, timestamptz) RENAME TO _check_model")
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


def test_worker_cron_and_manual_race_for_a_minute():
    """The worker (naptime 1 s), a pg_cron job (every minute) and a person
    calling run_checks() in a loop race while a trainer finishes requests.
    Never two open requests for a model, a weekly schedule's one occurrence
    fires once across the three, no cycle fails, and the log chain holds."""
    seconds = float(os.environ.get("RETRAIN_RACE_SECONDS", "65"))
    settings = {"shared_preload_libraries": "'pg_cron,retrain'", "retrain.naptime": "1",
                "cron.database_name": "'postgres'", "cron.use_background_workers": "on",
                "max_worker_processes": "16"}
    with ScratchCluster(**settings) as cluster:
        with cluster.connect() as conn:
            conn.execute("CREATE EXTENSION retrain")
            conn.execute("CREATE EXTENSION pg_cron")
            for i in range(6):
                m = f"race_{i}"
                # three models churn (a new occurrence every second); three
                # have a weekly occurrence in the past that must fire once
                schedule = ('{"interval": "1 second"}' if i < 3
                            else '{"every": "week", "weekday": "monday", "at": "00:00"}')
                conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (m,))
                conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', repeat('a', 64), '{}')", (m,))
                conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green')", (m,))
                conn.execute("SELECT retrain.set_policy(%s, jsonb_build_object('triggers', "
                             "jsonb_build_object('schedule', %s::jsonb)))", (m, schedule))
            conn.execute("UPDATE retrain.models SET created_at = now() - interval '30 days'")
            job = scalar(conn, "SELECT retrain.schedule_checks('* * * * *')")

        deadline = time.monotonic() + seconds
        duplicates = []
        manual_cycles = [0]

        def person(_):
            with cluster.connect() as c:
                while time.monotonic() < deadline:
                    c.execute("SELECT retrain.run_checks()")
                    manual_cycles[0] += 1

        def trainer(_):
            with cluster.connect() as c:
                train_until(c, deadline, "race-trainer")

        def watcher(_):
            with cluster.connect() as c:
                while time.monotonic() < deadline:
                    rows = c.execute("SELECT model, count(*) FROM retrain.requests "
                                     "WHERE status IN ('open', 'claimed') GROUP BY model "
                                     "HAVING count(*) > 1").fetchall()
                    duplicates.extend(rows)
                    time.sleep(0.1)

        roles = [person, trainer, watcher]
        run_threads(len(roles), lambda i: roles[i](i))

        with cluster.connect() as conn:
            assert not duplicates, duplicates[:5]
            cron_runs = scalar(conn, "SELECT count(*) FROM cron.job_run_details "
                                     "WHERE jobid = %s AND status = 'succeeded'", (job,))
            assert cron_runs >= 1, "pg_cron never ran the cycle"
            failed_cron = scalar(conn, "SELECT count(*) FROM cron.job_run_details "
                                       "WHERE jobid = %s AND status <> 'succeeded'", (job,))
            assert failed_cron == 0, conn.execute("SELECT return_message FROM cron.job_run_details").fetchall()
            checked = scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'checked'")
            # the person's cycles and more: the worker's and pg_cron's
            assert checked > manual_cycles[0] * 6, (checked, manual_cycles[0])
            assert scalar(conn, "SELECT count(*) FROM retrain.log "
                                "WHERE event IN ('check_failed', 'guard_failed')") == 0
            # the weekly occurrence fired once, whoever checked first
            weekly = conn.execute("SELECT model, count(*) FROM retrain.requests r, "
                                  "jsonb_array_elements(r.reasons) x WHERE r.model >= 'race_3' "
                                  "AND x->>'trigger' = 'schedule' GROUP BY model ORDER BY model").fetchall()
            assert weekly == [("race_3", 1), ("race_4", 1), ("race_5", 1)], weekly
            done = scalar(conn, "SELECT count(*) FROM retrain.requests WHERE status = 'done'")
            assert done >= 10, done
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()")
            log = run_as_owner("cat", os.path.join(cluster.dir, "log")).stdout
            assert "deadlock" not in log, log[-2000:]
            print(f"    {seconds:.0f} s: {manual_cycles[0]} manual cycles, {checked} model checks in all, "
                  f"{cron_runs} pg_cron runs, {done} requests trained", flush=True)


def test_a_fold_waits_for_a_transaction_still_writing():
    """A row logged inside a transaction that commits after a fold has a
    logged_at before that fold's watermark: a fold by arrival that did not
    stop short of the oldest transaction still writing would never take it
    in, and check() would count one prediction too few, for good."""
    with connect() as conn, connect(autocommit=False) as writer:
        conn.execute("SELECT retrain.register_model('fold_tx', 'binary_classification')")
        conn.execute("SELECT retrain.register_version('fold_tx', 'v1', 's3://m', repeat('b', 64), '{}')")
        conn.execute("SELECT retrain.promote('fold_tx', 'v1', 'blue_green', override_reason => 'test')")
        conn.execute("""SELECT retrain.set_policy('fold_tx', '{"rollups": {"settle": "1 second"},
                        "triggers": {"confidence": {"min": 0.5, "window": "1 day"}}}')""")
        log = "SELECT retrain.log_prediction('fold_tx', 'v1', 'u', 0.75)"
        writer.execute(log)  # a transaction begins and writes
        began = scalar(writer, "SELECT now()")
        time.sleep(1.2)
        for _ in range(10):
            conn.execute(log)
        time.sleep(1.2)
        conn.execute("SELECT retrain._fold_rollups('fold_tx', clock_timestamp())")
        until = scalar(conn, "SELECT computed_until FROM retrain.rollup_marks WHERE model = 'fold_tx'")
        assert until <= began, (until, began)
        writer.commit()
        window = """SELECT (retrain._rollup_window(m, retrain.effective_policy('fold_tx')->'triggers', 'v1',
                                                  clock_timestamp())->>'predictions')::int
                      FROM retrain.models m WHERE m.name = 'fold_tx'"""
        assert scalar(conn, window) == 11
        time.sleep(1.2)
        conn.execute("SELECT retrain._fold_rollups('fold_tx', clock_timestamp())")
        assert scalar(conn, "SELECT computed_until FROM retrain.rollup_marks WHERE model = 'fold_tx'") > began
        assert scalar(conn, "SELECT sum(predictions)::int FROM retrain.rollups WHERE model = 'fold_tx'") == 11
        assert scalar(conn, window) == 11


run_suite(globals())
