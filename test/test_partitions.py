"""The partitioned prediction log: the check cycle makes the coming days'
partitions of retrain.predictions and the ranges of retrain.outcomes, moves
rows out of the default partition, drops what is older than
retrain.prediction_retention (exactly at the boundary, with the outcomes of
the dropped predictions, each drop logged), gives way to a report that holds
the table instead of queueing the applications behind it, and survives a
dump and restore with the partitions' own indexes, once each.  Every
database here is a throwaway one.
"""

import os
import subprocess
import time
from datetime import datetime, timedelta, timezone

from testlib import connect, expect_error, run_suite, scalar, table_snapshot

BIN = os.environ.get("RETRAIN_PGBIN", "/usr/lib/postgresql/15/bin")
TMP = os.environ["RETRAIN_TMP"]
DAY = timedelta(days=1)


def fresh(db):
    with connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    conn = connect(db)
    conn.execute("CREATE EXTENSION retrain CASCADE")
    return conn


def drop(*dbs):
    with connect("postgres") as admin:
        for db in dbs:
            admin.execute(f"DROP DATABASE IF EXISTS {db}")


def retention(value):
    """retrain.prediction_retention for the cluster (a server setting)."""
    with connect("postgres") as admin:
        if value is None:
            admin.execute("ALTER SYSTEM RESET retrain.prediction_retention")
        else:
            admin.execute(f"ALTER SYSTEM SET retrain.prediction_retention = '{value}'")
        admin.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)


def partitions(conn, parent):
    return [r[0] for r in conn.execute(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass ORDER BY 1", (f"retrain.{parent}",))]


def midnight(days_from_today=0):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + days_from_today * DAY


def forty_days(conn, hour, first_id=None):
    """Model m; the day partitions from forty days ago to a week ahead;
    and a prediction of m at this hour of each of the forty-one days up to
    today, its ids from the log's sequence or counted from first_id."""
    conn.execute("SELECT retrain.register_model('m', 'binary_classification')")
    for d in range(-40, 1, 8):
        conn.execute("SELECT count(*) FROM retrain._maintain_partitions(%s)", (midnight(d),))
    add_days(conn, hour, first_id)


def add_days(conn, hour, first_id=None):
    ids = "" if first_id is None else f"{int(first_id)} + d, "
    conn.execute(f"INSERT INTO retrain.predictions ({'id, ' if ids else ''}model, version, score, predicted_at) "
                 f"SELECT {ids}'m', 'v1', 0.5, %s + d * interval '1 day' + %s * interval '1 hour' "
                 "FROM generate_series(0, 40) d", (midnight(-40), hour))


def test_the_cycle_makes_the_coming_days_and_moves_rows_out_of_the_default():
    conn = fresh("part_make")
    try:
        # before any cycle: the rows go to the default partitions
        pid = scalar(conn, "SELECT retrain.log_prediction('m', 'v1', 'u', 0.5)")
        conn.execute("SELECT retrain.log_outcome(%s, true)", (pid,))
        assert partitions(conn, "predictions") == ["predictions_default"]
        assert scalar(conn, "SELECT count(*) FROM retrain.predictions_default") == 1
        # the cycle (the procedure the pg_cron job calls) makes today's and
        # the next seven days' partitions, and the outcomes' ranges
        conn.execute("CALL retrain.run_cycle()")
        days = [f"predictions_p{(midnight(d)).strftime('%Y%m%d')}" for d in range(8)]
        assert partitions(conn, "predictions") == sorted(days + ["predictions_default"])
        assert partitions(conn, "outcomes") == ["outcomes_default", "outcomes_p0", "outcomes_p10000000"]
        # the row moved out of the default partition, its outcome too
        assert scalar(conn, "SELECT tableoid::regclass::text FROM retrain.predictions WHERE id = %s", (pid,)) \
            == f"retrain.{days[0]}"
        assert scalar(conn, "SELECT tableoid::regclass::text FROM retrain.outcomes WHERE prediction_id = %s",
                      (pid,)) == "retrain.outcomes_p0"
        # the outcome carries its prediction's time, which then cannot
        # change (the cycle finds a late outcome's prediction by it)
        assert scalar(conn, "SELECT o.predicted_at = p.predicted_at FROM retrain.outcomes o "
                            "JOIN retrain.predictions p ON p.id = o.prediction_id WHERE p.id = %s", (pid,))
        expect_error(conn, "UPDATE retrain.predictions SET predicted_at = predicted_at + interval '1 day' "
                           "WHERE id = %s", "55000", params=(pid,), match="has an outcome")
        other = scalar(conn, "SELECT retrain.log_prediction('m', 'v1', 'u2', 0.5)")
        conn.execute("UPDATE retrain.predictions SET predicted_at = predicted_at + interval '1 day' WHERE id = %s",
                     (other,))
        # each one made is logged; a second run makes nothing
        made = conn.execute("SELECT details->>'partition', details->>'rows_moved' FROM retrain.log "
                            "WHERE event = 'partition_created' ORDER BY id").fetchall()
        assert [m[0] for m in made] == [f"retrain.{d}" for d in days] + ["retrain.outcomes_p0",
                                                                        "retrain.outcomes_p10000000"]
        assert made[0][1] == "1" and made[-2][1] == "1"
        assert conn.execute("SELECT * FROM retrain.maintain_partitions()").fetchall() == []
        # each partition has its own key and indexes, made with it
        indexes = {r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", (f"retrain.{days[0]}",))}
        assert indexes == {f"retrain.{days[0]}_{s}" for s in ("pkey", "model_time", "logged_late", "model_request")}
        # the partitions are the site's data, not the extension's
        assert scalar(conn, "SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid "
                            "WHERE d.deptype = 'e' AND c.relname ~ '^(predictions_p|outcomes_p)'") == 0
        # a day before the first partition stays in the default partition
        # (finding such days would read it every cycle)
        conn.execute("INSERT INTO retrain.predictions (model, version, score, predicted_at) VALUES "
                     "('m', 'v1', 0.1, %s)", (midnight(-3),))
        conn.execute("SELECT count(*) FROM retrain._maintain_partitions(%s)", (midnight(1),))
        assert scalar(conn, "SELECT count(*) FROM retrain.predictions_default") == 1
        # the time must be a time
        expect_error(conn, "SELECT * FROM retrain._maintain_partitions('infinity')", "22023", match="finite")
        expect_error(conn, "SELECT * FROM retrain._maintain_partitions(NULL)", "22023", match="not NULL")
    finally:
        conn.close()
        drop("part_make")


def test_retention_drops_old_days_exactly_at_the_boundary_with_their_outcomes():
    conn = fresh("part_keep")
    try:
        # forty days ago onwards, a partition a day and a prediction in each,
        # every one labelled; a backfill older than any partition
        forty_days(conn, 12)
        conn.execute("INSERT INTO retrain.predictions (model, version, score, predicted_at) "
                     "VALUES ('m', 'v1', 0.5, %s)", (midnight(-400),))
        conn.execute("INSERT INTO retrain.outcomes (prediction_id, label, observed_at) "
                     "SELECT id, true, predicted_at + interval '1 hour' FROM retrain.predictions")
        # ids of later predictions beyond the first outcomes ranges
        conn.execute("SELECT setval('retrain.predictions_id_seq', 25000000)")
        conn.execute("SELECT count(*) FROM retrain._maintain_partitions(%s)", (midnight(0),))
        kept_before = scalar(conn, "SELECT count(*) FROM retrain.predictions WHERE predicted_at >= %s",
                             (midnight(-30),))
        # no retention set: nothing goes
        assert conn.execute("SELECT * FROM retrain._maintain_partitions(%s) WHERE action <> 'created'",
                            (midnight(0),)).fetchall() == []
        retention("30d")
        try:
            # at midnight exactly: the day that ends 30 days before goes, the
            # day that begins then stays
            done = conn.execute("SELECT action, partition, detail FROM retrain._maintain_partitions(%s) "
                                "WHERE action <> 'created' ORDER BY action, partition", (midnight(0),)).fetchall()
            dropped = [p for a, p, _ in done if a == "dropped"]
            expected = [f"retrain.predictions_p{midnight(d).strftime('%Y%m%d')}" for d in range(-40, -30)]
            assert [p for p in dropped if "predictions_p" in p] == expected, done
            assert f"retrain.predictions_p{midnight(-30).strftime('%Y%m%d')}" in \
                [f"retrain.{p}" for p in partitions(conn, "predictions")]
            # the default partition's old backfill is deleted, and the
            # outcomes of dropped predictions go with them
            assert ("deleted", "retrain.predictions_default") in [(a, p) for a, p, _ in done]
            assert scalar(conn, "SELECT count(*) FROM retrain.predictions WHERE predicted_at < %s",
                          (midnight(-30),)) == 0
            assert scalar(conn, "SELECT count(*) FROM retrain.predictions") == kept_before
            assert scalar(conn, "SELECT count(*) FROM retrain.outcomes o WHERE NOT EXISTS "
                                "(SELECT 1 FROM retrain.predictions p WHERE p.id = o.prediction_id)") == 10 + 1
            # the outcome ranges wholly below the smallest id left are kept
            # while a prediction of theirs is; once none is, they go
            assert "outcomes_p0" in partitions(conn, "outcomes")
            conn.execute("DELETE FROM retrain.predictions")
            done = conn.execute("SELECT action, partition FROM retrain._maintain_partitions(%s) "
                                "WHERE action = 'dropped'", (midnight(0),)).fetchall()
            assert ("dropped", "retrain.outcomes_p0") in done and ("dropped", "retrain.outcomes_p10000000") in done
            assert scalar(conn, "SELECT count(*) FROM retrain.outcomes") == 0
            # every drop is on the log, and the chain holds
            logged = conn.execute("SELECT event, details->>'table', details->>'partition' FROM retrain.log "
                                  "WHERE event IN ('partition_dropped', 'predictions_expired') ORDER BY id").fetchall()
            assert [p for e, t, p in logged if e == "partition_dropped" and t == "predictions"] == expected
            assert ("predictions_expired", "predictions", "retrain.predictions_default") in logged
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
        finally:
            retention(None)
        # the setting is the server's: a session cannot SET it; and it is a
        # time of at least 0
        expect_error(conn, "SET retrain.prediction_retention = '1min'", "55P02")
        with connect("postgres") as admin:
            expect_error(admin, "ALTER SYSTEM SET retrain.prediction_retention = '-1'", "22023")
            expect_error(admin, "ALTER SYSTEM SET retrain.prediction_retention = 'a week'", "22023")
    finally:
        conn.close()
        drop("part_keep")


def test_retention_takes_the_default_partition_s_outcomes_of_predictions_gone():
    """Predictions with ids above every range of outcomes (on Citus, those
    written through a worker, from its own range of ids): their outcomes
    stay in the default partition, and the smallest id left never passes
    them.  Retention deletes those whose prediction is gone, and keeps
    those whose prediction is kept, even when older than the retention
    (a day's partition is dropped only once wholly older)."""
    conn = fresh("part_orphans")
    high = 2 ** 48
    try:
        # every day at 01:00, an id of the coordinator's and one of a worker's
        forty_days(conn, 1)
        add_days(conn, 1, first_id=high)
        conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) SELECT id, true FROM retrain.predictions")
        assert scalar(conn, "SELECT count(*) FROM ONLY retrain.outcomes_default WHERE prediction_id >= %s",
                      (high,)) == 41
        retention("30d")
        try:
            # noon: the retention ends at noon 30 days ago; that day's
            # partition is kept whole, its 01:00 predictions with it
            at = midnight(0) + timedelta(hours=12)
            done = conn.execute("SELECT action, partition, detail FROM retrain._maintain_partitions(%s) "
                                "WHERE action = 'deleted'", (at,)).fetchall()
            swept = [d for a, p, d in done if p == "retrain.outcomes_default" and "predicted_before" in d]
            assert len(swept) == 1 and swept[0]["rows"] == 10, done
            # no outcome is left without its prediction among the high ids,
            # and every outcome of a prediction kept is kept
            assert scalar(conn, "SELECT count(*) FROM retrain.outcomes o WHERE o.prediction_id >= %s AND NOT EXISTS "
                                "(SELECT 1 FROM retrain.predictions p WHERE p.id = o.prediction_id)", (high,)) == 0
            assert scalar(conn, "SELECT count(*) FROM retrain.predictions p WHERE NOT EXISTS "
                                "(SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id)") == 0
            assert scalar(conn, "SELECT count(*) FROM retrain.outcomes WHERE prediction_id >= %s "
                                "AND predicted_at < %s", (high, at - timedelta(days=30))) == 1
            # logged as the other expiries are, and the next run finds none
            assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'predictions_expired' "
                                "AND details ? 'predicted_before' AND (details->>'rows')::int = 10") == 1
            assert conn.execute("SELECT * FROM retrain._maintain_partitions(%s) WHERE action = 'deleted'",
                                (at,)).fetchall() == []
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
        finally:
            retention(None)
    finally:
        conn.close()
        drop("part_orphans")


def test_maintenance_gives_way_to_a_report_holding_the_log():
    """Dropping a partition takes the parent's ACCESS EXCLUSIVE lock, and
    attaching one the default partition's: behind a long report, either
    would queue every statement that reads the log after it.  Each waits a
    second, is reported skipped, and the next cycle does it.  An insert
    into a day's partition does not hold up the making of a new day."""
    conn = fresh("part_lock")
    try:
        conn.execute("SELECT count(*) FROM retrain._maintain_partitions(%s)", (midnight(-40),))
        conn.execute("SELECT count(*) FROM retrain._maintain_partitions(%s)", (midnight(0),))
        with connect("part_lock", autocommit=False) as writer:
            writer.execute("SELECT retrain.log_prediction('m', 'v1', 'u', 0.5)")
            started = time.monotonic()
            made = conn.execute("SELECT action FROM retrain._maintain_partitions(%s)", (midnight(1),)).fetchall()
            assert made == [("created",)] and time.monotonic() - started < 0.9, made
            writer.rollback()
        retention("30d")
        try:
            with connect("part_lock", autocommit=False) as report:
                report.execute("SELECT count(*) FROM retrain.predictions")
                started = time.monotonic()
                done = conn.execute("SELECT action, partition FROM retrain._maintain_partitions(%s)",
                                    (midnight(1),)).fetchall()
                waited = time.monotonic() - started
                assert done == [("skipped", None)], done
                assert 0.9 < waited < 5, waited
                report.rollback()
            assert f"predictions_p{midnight(-40).strftime('%Y%m%d')}" in partitions(conn, "predictions")
            assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'partition_dropped'") == 0
            done = conn.execute("SELECT action FROM retrain._maintain_partitions(%s) WHERE action = 'dropped'",
                                (midnight(1),)).fetchall()
            assert len(done) == 8, done
        finally:
            retention(None)
    finally:
        conn.close()
        drop("part_lock")


def test_a_dump_and_restore_keeps_the_partitions_and_their_indexes_once():
    conn = fresh("part_dump")
    dump = os.path.join(TMP, "part_dump.dump")
    try:
        conn.execute("SELECT retrain.register_model('m', 'binary_classification')")
        conn.execute("SELECT count(*) FROM retrain.maintain_partitions()")
        conn.execute("INSERT INTO retrain.predictions (model, version, score, predicted_at, request_id) "
                     "SELECT 'm', 'v1', i / 100.0, now() - i * interval '1 minute', 'r' || i "
                     "FROM generate_series(1, 100) i")
        conn.execute("INSERT INTO retrain.predictions (model, version, score, predicted_at) "
                     "VALUES ('m', 'v1', 0.5, '2001-01-01')")
        conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) SELECT id, id % 2 = 0 FROM retrain.predictions")
        before = table_snapshot(conn)
        indexes = scalar(conn, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                               "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'retrain'")
        subprocess.run([f"{BIN}/pg_dump", "-Fc", "-f", dump, "part_dump"], check=True)
        with connect("postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS part_restored")
            admin.execute("CREATE DATABASE part_restored")
        subprocess.run([f"{BIN}/pg_restore", "--exit-on-error", "-d", "part_restored", dump], check=True)
        with connect("part_restored") as restored:
            assert table_snapshot(restored) == before
            assert partitions(restored, "predictions") == partitions(conn, "predictions")
            assert scalar(restored, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                    "WHERE n.nspname = 'retrain'") == indexes
            # the restored log takes rows, refuses a repeated request id in a
            # day, and finds an outcome's model
            expect_error(restored, "SELECT retrain.log_prediction('m', 'v1', 'u', 0.5, request_id => 'r1')", "23505")
            pid = scalar(restored, "SELECT retrain.log_prediction('m', 'v1', 'u', 0.5, request_id => 'new')")
            restored.execute("SELECT retrain.log_outcome('m', 'new', true)")
            assert scalar(restored, "SELECT model FROM retrain.outcomes WHERE prediction_id = %s", (pid,)) == "m"
    finally:
        conn.close()
        drop("part_dump", "part_restored")
        if os.path.exists(dump):
            os.remove(dump)


def test_maintenance_is_not_for_every_role():
    conn = fresh("part_priv")
    try:
        for f in ("retrain.maintain_partitions()", "retrain._maintain_partitions(timestamptz)"):
            assert scalar(conn, f"SELECT has_function_privilege('public', '{f}', 'EXECUTE')") is False
        conn.execute("DROP ROLE IF EXISTS part_nobody")
        conn.execute("CREATE ROLE part_nobody")
        conn.execute("GRANT USAGE ON SCHEMA retrain TO part_nobody")
        conn.execute("SET ROLE part_nobody")
        expect_error(conn, "SELECT * FROM retrain.maintain_partitions()", "42501")
        conn.execute("RESET ROLE")
        conn.execute("REVOKE ALL ON SCHEMA retrain FROM part_nobody")
        conn.execute("DROP ROLE part_nobody")
    finally:
        conn.close()
        drop("part_priv")


run_suite(globals())
