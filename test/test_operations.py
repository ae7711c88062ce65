"""What docs/operations.md promises an operator: a pg_dump of a database
with retrain keeps the extension's data (registry, log, prediction log,
queue), the restored log chain verifies and continues, sequences go on where
they were, and the GRANT recipe gives each duty what it needs and no more.
"""

import os
import subprocess

from testlib import connect, expect_error, fill_every_table, run_suite, scalar, table_snapshot

BIN = os.environ.get("RETRAIN_PGBIN", "/usr/lib/postgresql/15/bin")


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
            src.execute("CREATE EXTENSION retrain")
            fill_every_table(src, "ops_reviewer")
            before = table_snapshot(src)
            route_before = scalar(src, "SELECT array_agg(retrain.route('ops', 'u' || i) ORDER BY i) "
                                       "FROM generate_series(1, 200) i")
            max_prediction = scalar(src, "SELECT max(id) FROM retrain.predictions")
        subprocess.run([f"{BIN}/pg_dump", "-Fc", "-f", dump, "ops_src"], check=True)
        subprocess.run([f"{BIN}/pg_restore", "--exit-on-error", "-d", "ops_dst", dump], check=True)
        with connect("ops_dst") as dst:
            assert table_snapshot(dst) == before
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
            conn.execute("CREATE ROLE ops_op IN ROLE ml_operator, churn_team")
            conn.execute("CREATE ROLE ops_trainer IN ROLE ml_trainer, churn_team")
            # an operator and a trainer of another team
            conn.execute("CREATE ROLE ops_other IN ROLE ml_operator")
            conn.execute("CREATE ROLE ops_other_trainer IN ROLE ml_trainer")
            # the operator registers the team's model and releases; the trainer registers versions
            conn.execute("SET SESSION AUTHORIZATION ops_op")
            conn.execute("SELECT retrain.register_model('m', 'binary_classification')")
            conn.execute("SELECT retrain.set_owner('m', 'churn_team')")
            conn.execute("SELECT retrain.set_policy('m', '{\"approvals\": {\"reviewer\": \"ml_reviewers\"}}')")
            conn.execute("RESET SESSION AUTHORIZATION")
            conn.execute("SET SESSION AUTHORIZATION ops_other_trainer")
            expect_error(conn, "SELECT retrain.register_version('m', 'v0', 's3://v0', repeat('b', 64), '{}')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            conn.execute("SET SESSION AUTHORIZATION ops_trainer")
            conn.execute("SELECT retrain.register_version('m', 'v1', 's3://v1', repeat('a', 64), '{}')")
            expect_error(conn, "SELECT retrain.promote('m', 'v1')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            conn.execute("SET SESSION AUTHORIZATION ops_alice")
            conn.execute("SELECT retrain.approve('m', 'v1', 'reviewer')")
            expect_error(conn, "SELECT retrain.promote('m', 'v1')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            # another team's operator may execute the functions, not act on this team's model
            conn.execute("SET SESSION AUTHORIZATION ops_other")
            expect_error(conn, "SELECT retrain.promote('m', 'v1', 'blue_green')", "42501")
            expect_error(conn, "SELECT retrain.set_policy('m', '{}')", "42501")
            expect_error(conn, "SELECT retrain.force('m', 'fallback')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            conn.execute("SET SESSION AUTHORIZATION ops_op")
            assert scalar(conn, "SELECT retrain.promote('m', 'v1', 'blue_green')") == "blue_green"
            expect_error(conn, "SELECT * FROM retrain.claim_request('x')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            # the application logs and routes; it cannot release
            conn.execute("SET SESSION AUTHORIZATION ml_app")
            assert scalar(conn, "SELECT retrain.route('m', 'u1')") == "v1"
            assert scalar(conn, "SELECT retrain.log_prediction('m', 'v1', 'u1', 0.5)") > 0
            expect_error(conn, "SELECT retrain.rollback('m', 'x')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            # analysts read the prediction log and the daily report
            conn.execute("SET SESSION AUTHORIZATION ml_analyst")
            assert scalar(conn, "SELECT count(*) FROM retrain.version_stats") == 1
            expect_error(conn, "SELECT retrain.log_prediction('m', 'v1', 'u1', 0.5)", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            # PUBLIC reads the registry but changes nothing
            conn.execute("CREATE ROLE ops_nobody")
            conn.execute("SET SESSION AUTHORIZATION ops_nobody")
            assert scalar(conn, "SELECT production_version FROM retrain.deployments") == "v1"
            expect_error(conn, "SELECT count(*) FROM retrain.predictions", "42501")
            expect_error(conn, "SELECT retrain.register_model('n', 'regression')", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
            # the exporter's login reads every model's figures, and no row of the log
            conn.execute("SELECT retrain.run_checks()")
            conn.execute("SET SESSION AUTHORIZATION retrain_monitor")
            for view in ("metrics_versions", "metrics_triggers", "metrics_features", "metrics_log"):
                conn.execute(f"SELECT * FROM retrain.{view}").fetchall()
            assert scalar(conn, "SELECT production_version FROM retrain.metrics_models WHERE model = 'm'") == "v1"
            expect_error(conn, "SELECT count(*) FROM retrain.predictions", "42501")
            expect_error(conn, "SELECT count(*) FROM retrain.rollups", "42501")
            expect_error(conn, "SELECT retrain.run_checks()", "42501")
            expect_error(conn, "SELECT retrain.log_prediction('m', 'v1', 'u1', 0.5)", "42501")
            conn.execute("RESET SESSION AUTHORIZATION")
    finally:
        with connect("postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS ops_roles")
            for role in ("ops_alice", "ops_op", "ops_trainer", "ops_other", "ops_other_trainer", "ops_nobody",
                         "ml_operator", "ml_trainer", "ml_app", "ml_analyst", "ml_reviewers", "product_owners",
                         "churn_team", "retrain_monitor"):
                admin.execute(f"DROP ROLE IF EXISTS {role}")


if __name__ == "__main__":
    run_suite(globals())
