"""Releases and upgrades: a released install script never changes, and for
each released version, an install of it filled with data and then updated
with ALTER EXTENSION retrain UPDATE equals a fresh install of the current
version, object by object (test/fingerprint.py), follows the conventions of
sql/conventions.sql, and keeps every row, its log chain and a dump/restore
round trip.  The last test shows that the comparison catches the mistakes an
upgrade script makes (a missing column, a missing revoke) with a readable
diff.
"""

import glob
import hashlib
import os
import re
import subprocess

from fingerprint import diff, fingerprint
from testlib import connect, fill_every_table, run_suite, scalar, table_columns, table_snapshot

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.environ.get("RETRAIN_PGBIN", "/usr/lib/postgresql/15/bin")
TMP = os.environ["RETRAIN_TMP"]

# Every released script and its SHA-256, as released.  Releasing a version
# adds its lines; nothing ever changes one.
RELEASED = {
    "retrain--0.1.0.sql": "1c51f84d9d1d2fc4ed0cd7564768c59e3a3fc688f83a47e932f3d1469d86c370",
}


# What a site has granted before it upgrades (from the GRANT recipe of
# docs/operations.md as 0.1.0 had it): a state-changing function, an internal
# one, a table, its sequence, a view.  An upgrade keeps them, and keeps them
# the site's own, so that a dump and restore keeps them too.
ROLES = ["upg_reviewer", "upg_operator", "upg_app"]
SITE_GRANTS = """
    GRANT EXECUTE ON FUNCTION retrain.approve(text, text, text, text) TO upg_reviewer;
    GRANT EXECUTE ON FUNCTION retrain.promote(text, text, text, text),
                              retrain._store_baseline(text, text, jsonb) TO upg_operator;
    GRANT INSERT ON retrain.predictions TO upg_app;
    GRANT USAGE ON SEQUENCE retrain.predictions_id_seq TO upg_app;
    GRANT SELECT ON retrain.version_stats TO upg_app;
"""


def released_versions():
    """The versions with a released install script, oldest first."""
    names = [os.path.basename(p) for p in glob.glob(os.path.join(REPO, "sql", "released", "retrain--*.sql"))]
    versions = [m.group(1) for m in (re.fullmatch(r"retrain--([^-]+)\.sql", n) for n in names) if m]
    return sorted(versions, key=lambda v: [int(x) for x in v.split(".")])


def fresh(db):
    with connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")


def drop(*dbs):
    with connect("postgres") as admin:
        for db in dbs:
            admin.execute(f"DROP DATABASE IF EXISTS {db}")


def catalog(db):
    """A connection whose search_path qualifies every name it prints."""
    return connect(db, options="-c search_path=pg_catalog")


def conventions(db):
    """sql/conventions.sql through pg_regress against an existing database:
    its diff, or "" when the output is as expected."""
    pg_config = os.path.join(BIN, "pg_config")
    pkglib = subprocess.run([pg_config, "--pkglibdir"], check=True, capture_output=True, text=True).stdout.strip()
    out = os.path.join(TMP, f"conventions-{db}")
    os.makedirs(out, exist_ok=True)
    run = subprocess.run([os.path.join(pkglib, "pgxs", "src", "test", "regress", "pg_regress"),
                          f"--inputdir={REPO}", f"--outputdir={out}", f"--bindir={BIN}",
                          "--use-existing", f"--dbname={db}", "conventions"],
                         capture_output=True, text=True)
    diffs = os.path.join(out, "regression.diffs")
    if run.returncode == 0:
        return ""
    return open(diffs, encoding="utf-8").read() if os.path.exists(diffs) else run.stdout + run.stderr


def test_released_scripts_never_change():
    found = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "sql", "released", "*.sql"))}
    assert found == set(RELEASED), f"sql/released/ and RELEASED differ: {sorted(found ^ set(RELEASED))}"
    for name, digest in RELEASED.items():
        with open(os.path.join(REPO, "sql", "released", name), "rb") as f:
            actual = hashlib.sha256(f.read()).hexdigest()
        assert actual == digest, f"sql/released/{name} was edited: released scripts never change"


def test_every_released_version_is_tested():
    """The suite below covers each released version (0.1.0 at least)."""
    assert "0.1.0" in released_versions()
    for v in released_versions():
        assert f"test_upgrade_from_{v.replace('.', '_')}" in globals(), f"no upgrade test from {v}"


def check_upgrade(version):
    db, ref, restored = f"upg_{version.replace('.', '_')}", "upg_fresh", "upg_restored"
    dump = os.path.join(TMP, f"{db}.dump")
    for d in (db, ref, restored):
        fresh(d)
    with connect("postgres") as admin:
        for role in ROLES:
            admin.execute(f"DROP ROLE IF EXISTS {role}")
            admin.execute(f"CREATE ROLE {role}")
    try:
        with connect(db) as conn:
            conn.execute(f"CREATE EXTENSION retrain VERSION '{version}'")
            conn.execute(SITE_GRANTS)
            fill_every_table(conn, "upg_reviewer")
            columns_before = table_columns(conn)
            before = table_snapshot(conn)
            warnings = []
            conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
            conn.execute("ALTER EXTENSION retrain UPDATE")
            # The log's two tables are made again, partitioned: the update
            # names the site's grants on them, and they work as written
            # (given after the update, they stay the site's own).
            said = "retrain: retrain.predictions and retrain.outcomes are new, partitioned tables; after the update, run: "
            regrants = sorted(w.split("run: ", 1)[1] for w in warnings if w.startswith(said))
            assert regrants == ["GRANT INSERT ON TABLE retrain.predictions TO upg_app;",
                                "GRANT USAGE ON SEQUENCE retrain.predictions_id_seq TO upg_app;"], warnings
            for statement in regrants:
                conn.execute(statement)
            current = scalar(conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'retrain'")
            assert scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'retrain'") == current
        with connect(ref) as conn:
            conn.execute("CREATE EXTENSION retrain")
            conn.execute(SITE_GRANTS)
        with catalog(db) as updated, catalog(ref) as reference:
            updated_fingerprint = fingerprint(updated)
            difference = diff(fingerprint(reference), updated_fingerprint,
                              f"fresh install of {current}", f"{version} updated to {current}")
        assert not difference, f"the updated install differs from a fresh one:\n{difference}"

        problems = conventions(db)
        assert not problems, f"sql/conventions.sql fails on the updated database:\n{problems}"

        with connect(db) as conn:
            # the rows as they were, in the columns that were there (an
            # update may add a column, NULL or its default in old rows)
            after = table_snapshot(conn, columns_before)
            assert after == before, "rows changed in the update"
            assert conn.execute("SELECT ok, rows_checked > 0 FROM retrain.verify_log()").fetchone() == (True, True)
            # and the updated extension works: the chain goes on
            conn.execute("SELECT retrain.request_retrain('ops', 'after the update')")
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
            after = table_snapshot(conn)
        subprocess.run([f"{BIN}/pg_dump", "-Fc", "-f", dump, db], check=True)
        subprocess.run([f"{BIN}/pg_restore", "--exit-on-error", "-d", restored, dump], check=True)
        with connect(restored) as conn:
            assert table_snapshot(conn) == after, "the dump/restore round trip lost rows"
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
        # the site's grants came through the dump as the site's, not lost
        with catalog(restored) as conn:
            difference = diff(updated_fingerprint, fingerprint(conn), "updated", "dumped and restored")
        assert not difference, f"the dump/restore round trip changed the extension:\n{difference}"
    finally:
        drop(db, ref, restored)
        with connect("postgres") as admin:
            for role in ROLES:
                admin.execute(f"DROP ROLE IF EXISTS {role}")
        if os.path.exists(dump):
            os.remove(dump)


def test_upgrade_from_0_1_0():
    check_upgrade("0.1.0")


def test_a_site_grant_on_a_recreated_function_is_named():
    """register_version() is created again by the 0.2.0 update (new
    arguments): the site's grant on it cannot be carried over by the script,
    and the update says which GRANT to give again."""
    db = "upg_grant"
    fresh(db)
    try:
        with connect(db) as conn:
            conn.execute("CREATE EXTENSION retrain VERSION '0.1.0'")
            conn.execute("DROP ROLE IF EXISTS \"upg trainer\"")
            conn.execute("CREATE ROLE \"upg trainer\"")
            conn.execute("GRANT EXECUTE ON FUNCTION retrain.register_version(text, text, text, text, jsonb, jsonb, "
                         "text, bigint, text, tstzrange, text[]) TO \"upg trainer\"")
            warnings = []
            conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
            conn.execute("ALTER EXTENSION retrain UPDATE")
            want = ('retrain: register_version() has new arguments; after the update, run: '
                    'GRANT EXECUTE ON FUNCTION retrain.register_version TO "upg trainer";')
            assert want in warnings, warnings
            # the statement it names works, as written
            conn.execute(want.split("run: ", 1)[1])
            assert scalar(conn, "SELECT has_function_privilege('upg trainer', 'retrain.register_version(text, text, "
                                "text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[], bigint[], jsonb, "
                                "boolean)', 'EXECUTE')")
            conn.execute("REVOKE ALL ON FUNCTION retrain.register_version FROM \"upg trainer\"")
    finally:
        drop(db)
        with connect("postgres") as admin:
            admin.execute("DROP ROLE IF EXISTS \"upg trainer\"")


def test_a_wrong_upgrade_is_caught():
    """The two classic mistakes of an upgrade script, made on an updated
    database: a column the fresh install has and the update did not add, and
    a revoke the update did not make.  The comparison names both, and the
    conventions fail on the second."""
    db, ref = "upg_wrong", "upg_fresh"
    fresh(db)
    fresh(ref)
    try:
        with connect(db) as conn:
            conn.execute("CREATE EXTENSION retrain VERSION '0.1.0'")
            conn.execute("ALTER EXTENSION retrain UPDATE")
            conn.execute("ALTER TABLE retrain.requests DROP COLUMN message")
            conn.execute("GRANT EXECUTE ON FUNCTION retrain._log(text, text, text, jsonb) TO PUBLIC")
        with connect(ref) as conn:
            conn.execute("CREATE EXTENSION retrain")
        with catalog(db) as updated, catalog(ref) as reference:
            difference = diff(fingerprint(reference), fingerprint(updated))
        print(difference)
        removed = [line for line in difference.splitlines() if line.startswith("-retrain.requests")]
        assert any("column" in line and " message " in line for line in removed), difference
        changed = [line for line in difference.splitlines() if line.startswith("+retrain._log(")]
        assert any("=X/" in line for line in changed), difference  # PUBLIC's EXECUTE in the ACL
        # the conventions' list of support functions PUBLIC may execute shows it
        assert "retrain._log(text,text,text,jsonb)" in conventions(db)
    finally:
        drop(db, ref)


if __name__ == "__main__":
    run_suite(globals())
