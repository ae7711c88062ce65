"""The test cluster's set-up and the library's loading: what pg_regress cannot show.

pg_regress runs in one server with fixed settings; these tests compare the
preloaded server that `make test` starts with a scratch server that does not
preload retrain.
"""

import os

from testlib import ScratchCluster, connect, expect_error, scalar, run_suite


def test_server_preloads_pg_cron_and_retrain():
    with connect() as conn:
        libs = [s.strip() for s in scalar(conn, "SHOW shared_preload_libraries").split(",")]
        assert libs == ["pg_cron", "retrain"], libs
        assert scalar(conn, "SHOW cron.database_name") == os.environ["PGDATABASE"]


def test_pg_cron_can_be_created_in_the_test_database():
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        try:
            assert scalar(conn, "SELECT count(*) FROM cron.job") == 0
        finally:
            conn.execute("DROP EXTENSION pg_cron")


def test_prefix_reserved_as_soon_as_preloaded():
    # In a preloaded server _PG_init ran in the postmaster, so a fresh session
    # refuses a misspelt retrain.* setting before any retrain function runs.
    with connect() as conn:
        expect_error(conn, "SET retrain.no_such_setting = 1", "42602",
                     match='"retrain" is a reserved prefix')


def test_functions_work_without_preloading():
    with ScratchCluster(shared_preload_libraries="''") as cluster, cluster.connect() as conn:
        assert scalar(conn, "SHOW shared_preload_libraries") == ""
        # Before the library is loaded a retrain.* setting is only a placeholder ...
        conn.execute("SET retrain.not_yet_reserved = 1")
        conn.execute("CREATE EXTENSION retrain")
        version = scalar(conn, "SELECT retrain.version()")
        assert version.startswith("retrain "), version
        # ... and once the first call has loaded it, the prefix is reserved.
        expect_error(conn, "SET retrain.no_such_setting = 1", "42602",
                     match='"retrain" is a reserved prefix')
        conn.execute("DROP EXTENSION retrain")


run_suite(globals())
