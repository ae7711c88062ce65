"""Bad input never crashes a backend nor gives an internal error.

Every public function and aggregate of schema retrain, taken from the
catalog (so a new one is covered without writing anything), is called with
each of its arguments in turn set to NULL, NaN, ±Infinity, empty, huge,
negative, quoted and otherwise unusual values, the other arguments typical.
Each call must succeed or fail with an error of its own kind: never an
internal error (class XX), never a lost connection, and never one of the
raw constraint violations of retrain's tables (a NOT NULL, CHECK or foreign
key failing inside the extension), which a function must turn into its own
message naming itself.  The matrix runs twice: as a role with no privilege
at all, and as a superuser (whose calls reach the state changes).
"""


import psycopg

from testlib import connect, run_suite

# Typical value first, then the unusual ones.
VALUES = {
    "text": ["'m'", "NULL", "''", "repeat('x', 100000)", "'a''b\"c'", "'nope'", "E'\\\\x00'"],
    "name": ["'postgres'", "NULL", "''", "'no_such_role'", "repeat('n', 200)"],
    "double precision": ["0.5", "NULL", "'NaN'", "'Infinity'", "'-Infinity'", "-1", "1e308", "0", "1e-320"],
    "integer": ["10", "NULL", "0", "-1", "2147483647", "1"],
    "bigint": ["10", "NULL", "0", "-1", "9223372036854775807"],
    "numeric": ["10", "NULL", "'NaN'", "-1", "1e100", "100.001"],
    "boolean": ["true", "NULL", "false"],
    "jsonb": ["'{}'", "NULL", "'[]'", "'null'", "'\"x\"'", "'{\"a\": {\"b\": []}}'", "'[1, \"x\", null]'",
              "'{\"gates\": [{}], \"triggers\": {\"drift\": null}}'"],
    "double precision[]": ["'{1,2,3}'", "NULL", "'{}'", "'{NaN}'", "'{1,Infinity}'", "'{3,2,1}'", "'{NULL,1}'",
                           "'{{1,2},{3,4}}'", "array_fill(1::float8, ARRAY[100000])"],
    "text[]": ["'{a}'", "NULL", "'{}'", "'{\"\"}'", "'{NULL}'"],
    "bigint[]": ["'{1}'", "NULL", "'{}'", "'{NULL}'", "'{-9223372036854775808}'"],
    "timestamp with time zone": ["'2026-06-01'", "NULL", "'infinity'", "'-infinity'", "'4713-01-01 BC'"],
    "interval": ["'1 day'", "NULL", "'0'", "'-1 day'", "'1 month'", "'1000 years'", "'1 microsecond'"],
    "tstzrange": ["'[2026-01-01, 2026-02-01)'", "NULL", "'empty'", "'(,)'"],
    "regclass": ["'pg_class'", "NULL", "'retrain.log'", "'pg_class_oid_index'"],
    "retrain.confusion": ["'(1,2,3,4)'", "NULL", "'(-1,0,0,0)'", "'(,,,)'", "'(0,0,0,0)'",
                          "'(9223372036854775807,9223372036854775807,1,1)'"],
    # retrain.agg_state's text form (agg_state_in takes it as a cstring)
    "cstring": ["('confusion:1:' || repeat('00', 32))", "NULL", "''", "'loss:1:'", "'confusion:1:zz'",
                "'histogram:1:7fffffff00000000'", "'confusion:99999999999999999999:00'",
                "('histogram:' || repeat('0', 100000))"],
    "retrain.agg_state": ["('confusion:1:' || repeat('00', 32))", "NULL",
                          "('histogram:1:00000001000000003ff0000000000000' || repeat('00', 24))",
                          "('loss:1:' || repeat('00', 37) || '3ff0000000000000' || repeat('00', 72))"],
}

# Raw constraint violations of retrain's own tables: a function must turn
# them into its own messages.
RAW_CONSTRAINTS = {"23502", "23503", "23514"}


def routines(conn):
    return conn.execute(
        "SELECT p.proname, p.prokind, array_agg(format_type(t, NULL) ORDER BY o) FILTER (WHERE t IS NOT NULL) "
        "FROM pg_proc p LEFT JOIN LATERAL unnest(p.proargtypes) WITH ORDINALITY AS a(t, o) ON true "
        "WHERE p.pronamespace = 'retrain'::regnamespace AND p.proname NOT LIKE '\\_%' "
        "GROUP BY p.oid, p.proname, p.prokind ORDER BY p.proname, p.oid").fetchall()


def call(name, kind, args):
    rendered = ", ".join(f"{v}::{t}" for t, v in args)
    if kind == "a":
        return f"SELECT retrain.{name}({', '.join(f'c{i}' for i in range(len(args)))}) " \
               f"FROM (VALUES ({rendered}), ({rendered})) AS v({', '.join(f'c{i}' for i in range(len(args)))})"
    if kind == "p":
        return f"CALL retrain.{name}({rendered})"
    return f"SELECT * FROM retrain.{name}({rendered})"


def matrix(conn, as_superuser):
    """Every call of the matrix: (statement, None or SQLSTATE, message)."""
    results = []
    for name, kind, types in routines(conn):
        if kind == "p" and not as_superuser:
            continue
        types = types or []
        if "internal" in types:
            continue  # a receive function: SQL cannot make its argument
        for i in range(max(len(types), 1)):
            choices = VALUES[types[i]] if types else [None]
            for value in choices:
                args = [(t, value if j == i else VALUES[t][0]) for j, t in enumerate(types)]
                sql = call(name, kind, args)
                try:
                    with conn.transaction():
                        conn.execute("SET LOCAL statement_timeout = '20s'")
                        conn.execute(sql).fetchall() if kind != "p" else conn.execute(sql)
                        # roll back whatever the call changed
                        raise psycopg.Rollback()
                except psycopg.Error as e:
                    if conn.broken or conn.closed:
                        raise AssertionError(f"the connection was lost on {sql}: {e}")
                    results.append((sql, e.sqlstate, str(e).splitlines()[0] if str(e) else ""))
                else:
                    results.append((sql, None, ""))
    return results


def check(results):
    internal = [r for r in results if r[1] and r[1].startswith("XX")]
    assert not internal, internal[:10]
    raw = [r for r in results if r[1] in RAW_CONSTRAINTS]
    assert not raw, raw[:10]
    duplicates = [r for r in results if r[1] == "23505" and not r[2].startswith("retrain.")]
    assert not duplicates, duplicates[:10]
    assert len(results) > 300, len(results)


def setup(conn):
    conn.execute("CREATE EXTENSION retrain")
    conn.execute("SELECT retrain.register_model('m', 'binary_classification')")
    conn.execute("SELECT retrain.register_version('m', 'nope', 's3://m', repeat('a', 64), '{}')")
    conn.execute("SELECT retrain.promote('m', 'nope', 'blue_green')")


def run_matrix(as_superuser):
    with connect("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS inputs")
        admin.execute("CREATE DATABASE inputs")
        admin.execute("DROP ROLE IF EXISTS inputs_nobody")
        admin.execute("CREATE ROLE inputs_nobody")
    try:
        with connect("inputs") as conn:
            setup(conn)
            if not as_superuser:
                conn.execute("SET SESSION AUTHORIZATION inputs_nobody")
            results = matrix(conn, as_superuser)
        states = {}
        for _, state, _ in results:
            states[state or "ok"] = states.get(state or "ok", 0) + 1
        print(f"    {len(results)} calls: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        check(results)
        return results
    finally:
        with connect("postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS inputs")
            admin.execute("DROP ROLE IF EXISTS inputs_nobody")


def test_bad_input_as_a_role_without_privileges():
    results = run_matrix(as_superuser=False)
    # what PUBLIC may call ran; the rest was refused as "permission denied"
    assert any(r[1] is None for r in results)
    assert any(r[1] == "42501" for r in results)


def test_bad_input_as_a_superuser():
    run_matrix(as_superuser=True)


def test_the_check_catches_an_internal_error():
    """The assertions above can fail."""
    try:
        check([("SELECT 1", "XX000", "boom")] + [("SELECT 1", None, "")] * 400)
    except AssertionError:
        pass
    else:
        raise AssertionError("an internal error passed the check")
    try:
        check([("SELECT 1", "23514", "new row violates check constraint")] + [("SELECT 1", None, "")] * 400)
    except AssertionError:
        pass
    else:
        raise AssertionError("a raw check violation passed the check")


if __name__ == "__main__":
    run_suite(globals())
