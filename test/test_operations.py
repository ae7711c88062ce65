"""What docs/operations.md promises an operator: a pg_dump of a database
with retrain keeps the extension's data (registry, log, prediction log,
queue), the restored log chain verifies and continues, sequences go on where
they were, and the GRANT recipe gives each duty what it needs and no more.
"""

import os
import subprocess

from testlib import connect, expect_error, run_suite, scalar

BIN = os.environ.get("RETRAIN_PGBIN", "/usr/lib/postgresql/15/bin")
TABLES = ["models", "model_versions", "approvals", "evaluations", "deployments", "production_history",
          "log", "log_head", "baselines", "predictions", "outcomes", "requests", "trigger_state"]


def fill(conn):
    conn.execute("CREATE EXTENSION retrain")
    conn.execute("GRANT EXECUTE ON FUNCTION retrain.approve(text, text, text, text) TO ops_reviewer")
    conn.execute("CREATE TABLE training AS SELECT (i % 10)::float8 AS a FROM generate_series(1, 100) i")
    for sql in [
        "SELECT retrain.register_model('ops', 'binary_classification')",
        "SELECT retrain.register_version('ops', 'v1', 's3://m/v1', repeat('a', 64), '{\"f1\": 0.8}',"
        " data_range => '[2026-01-01, 2026-02-01)')",
        "SELECT retrain.capture_baseline('ops', 'v1', 'training')",
        "SELECT retrain.promote('ops', 'v1', 'blue_green')",
        "SELECT retrain.set_policy('ops', '{\"approvals\": {\"reviewer\": \"ops_reviewer\"},"
        " \"gates\": [{\"metric\": \"f1\", \"op\": \">=\", \"value\": 0.5}],"
        " \"triggers\": {\"schedule\": {\"interval\": \"1 day\"}}}')",
        "SELECT retrain.register_version('ops', 'v2', 's3://m/v2', repeat('b', 64), '{\"f1\": 0.9}')",
        "SELECT retrain.evaluate('ops', 'v2')",
        "SET ROLE ops_reviewer",
        "SELECT retrain.approve('ops', 'v2', 'reviewer', 'fine')",
        "RESET ROLE",
        "SELECT retrain.promote('ops', 'v2')",
        "SELECT retrain.log_outcome(retrain.log_prediction('ops', 'v1', 'u' || i, 0.7), i % 2 = 0)"
        " FROM generate_series(1, 50) i",
        # the schedule counts occurrences since the model's registration
        "UPDATE retrain.models SET created_at = '2026-01-01'",
        "SELECT retrain.run_checks()",
    ]:
        conn.execute(sql)


def snapshot(conn):
    return {t: conn.execute(f"SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retrain.{t} x").fetchone()[0]
            for t in TABLES}


def test_pg_dump_keeps_the_extensions_data():
    dump = os.path.join(os.environ["RETRAIN_TMP"], "ops.dump")
    with connect("postgres") as admin:
        for db in ("ops_src", "ops_dst"):
            admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute("CREATE DATABASE ops_src")
        admin.execute("CREATE DATABASE ops_dst")
        admin.execute("DROP ROLE IF EXISTS ops_reviewer")
        admin.execute("CREATE ROLE ops_reviewer")
    try:
        with connect("ops_src") as src:
            fill(src)
            before = snapshot(src)
            route_before = scalar(src, "SELECT array_agg(retrain.route('ops', 'u' || i) ORDER BY i) "
                                       "FROM generate_series(1, 200) i")
            max_prediction = scalar(src, "SELECT max(id) FROM retrain.predictions")
        assert all(before.values()), before  # every table has rows to compare
        subprocess.run([f"{BIN}/pg_dump", "-Fc", "-f", dump, "ops_src"], check=True)
        subprocess.run([f"{BIN}/pg_restore", "--exit-on-error", "-d", "ops_dst", dump], check=True)
        with connect("ops_dst") as dst:
            assert snapshot(dst) == before
            assert dst.execute("SELECT ok, rows_checked > 0 FROM retrain.verify_log()").fetchone() == (True, True)
            assert scalar(dst, "SELECT array_agg(retrain.route('ops', 'u' || i) ORDER BY i) "
                               "FROM generate_series(1, 200) i") == route_before
            # the chain and the sequences go on after the restore
            dst.execute("SELECT retrain.advance('ops')")
            assert scalar(dst, "SELECT ok FROM retrain.verify_log()") is True
            assert scalar(dst, "SELECT retrain.log_prediction('ops', 'v2', 'u', 0.5)") > max_prediction
            assert scalar(dst, "SELECT retrain.request_retrain('ops', 'after restore')") is not None
    finally:
        with connect("postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS ops_src")
            admin.execute("DROP DATABASE IF EXISTS ops_dst")
            admin.execute("DROP ROLE IF EXISTS ops_reviewer")
        if os.path.exists(dump):
            os.remove(dump)


def test_grant_recipe():
    """The roles of docs/operations.md: each can do its duty, not another's."""
    with connect("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS ops_roles")
        admin.execute("CREATE DATABASE ops_roles")
    try:
        with connect("ops_roles") as conn:
            conn.execute("CREATE EXTENSION retrain")
            recipe = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                                       "operations.md"), encoding="utf-8").read()
            block = recipe.split("<!-- grant recipe -->", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
            conn.execute(block)
            conn.execute("CREATE ROLE ops_alice IN ROLE ml_reviewers")
            conn.execute("CREATE ROLE ops_op IN ROLE ml_operator")
            # the operator registers and releases; the trainer registers versions
            conn.execute("SET ROLE ops_op")
            conn.execute("SELECT retrain.register_model('m', 'binary_classification')")
            conn.execute("SELECT retrain.set_policy('m', '{\"approvals\": {\"reviewer\": \"ml_reviewers\"}}')")
            conn.execute("RESET ROLE")
            conn.execute("SET ROLE ml_trainer")
            conn.execute("SELECT retrain.register_version('m', 'v1', 's3://v1', repeat('a', 64), '{}')")
            expect_error(conn, "SELECT retrain.promote('m', 'v1')", "42501")
            conn.execute("RESET ROLE")
            conn.execute("SET ROLE ops_alice")
            conn.execute("SELECT retrain.approve('m', 'v1', 'reviewer')")
            expect_error(conn, "SELECT retrain.promote('m', 'v1')", "42501")
            conn.execute("RESET ROLE")
            conn.execute("SET ROLE ops_op")
            assert scalar(conn, "SELECT retrain.promote('m', 'v1', 'blue_green')") == "blue_green"
            expect_error(conn, "SELECT * FROM retrain.claim_request('x')", "42501")
            conn.execute("RESET ROLE")
            # the application logs and routes; it cannot release
            conn.execute("SET ROLE ml_app")
            assert scalar(conn, "SELECT retrain.route('m', 'u1')") == "v1"
            assert scalar(conn, "SELECT retrain.log_prediction('m', 'v1', 'u1', 0.5)") > 0
            expect_error(conn, "SELECT retrain.rollback('m', 'x')", "42501")
            conn.execute("RESET ROLE")
            # analysts read the prediction log and the daily report
            conn.execute("SET ROLE ml_analyst")
            assert scalar(conn, "SELECT count(*) FROM retrain.version_stats") == 1
            expect_error(conn, "SELECT retrain.log_prediction('m', 'v1', 'u1', 0.5)", "42501")
            conn.execute("RESET ROLE")
            # PUBLIC reads the registry but changes nothing
            conn.execute("CREATE ROLE ops_nobody")
            conn.execute("SET ROLE ops_nobody")
            assert scalar(conn, "SELECT production_version FROM retrain.deployments") == "v1"
            expect_error(conn, "SELECT count(*) FROM retrain.predictions", "42501")
            expect_error(conn, "SELECT retrain.register_model('n', 'regression')", "42501")
            conn.execute("RESET ROLE")
    finally:
        with connect("postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS ops_roles")
            for role in ("ops_alice", "ops_op", "ops_nobody", "ml_operator", "ml_trainer", "ml_app", "ml_analyst",
                         "ml_reviewers", "product_owners"):
                admin.execute(f"DROP ROLE IF EXISTS {role}")


if __name__ == "__main__":
    run_suite(globals())
