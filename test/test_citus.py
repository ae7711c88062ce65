"""retrain on Citus: a coordinator and two workers on 127.0.0.1.

test/run_tests.sh runs this suite when Citus is installed (test/cluster.sh
installs the package from ../shared/citus as root).  Each node is a scratch
cluster of the system's PostgreSQL 15 with Citus preloaded; `CREATE
EXTENSION citus` runs on every node, `CREATE EXTENSION retrain` on the
coordinator only (Citus creates it on the workers).

The prediction log of 200,000 rows is distributed twice, by unit_key and by
model, beside a local copy: every aggregate must give the local result
(counts exactly, sums to 1e-12 relative), and the aggregates over
retrain.agg_state must run as partial aggregates on the workers.
"""

import math
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import ScratchCluster, expect_error, run_suite, scalar  # noqa: E402

ROWS = 200_000
SHARDS = 8

# Aggregates whose state is a retrain.agg_state: Citus runs them on its
# workers (worker_partial_agg) and combines the states on the coordinator.
PUSHABLE = {
    "confusion": "retrain.confusion(score >= 0.5, label)::text",
    "confusion_threshold": "retrain.confusion(score, label, 0.4)::text",
    "precision": "retrain.precision(score >= 0.5, label)",
    "recall": "retrain.recall(score, label, 0.5)",
    "f1": "retrain.f1(score >= 0.5, label)",
    "accuracy": "retrain.accuracy(score, label, 0.5)",
    "brier": "retrain.brier(score, label)",
    "log_loss": "retrain.log_loss(score, label)",
    "mae": "retrain.mae(predicted, actual)",
    "rmse": "retrain.rmse(predicted, actual)",
    "r2": "retrain.r2(predicted, actual)",
    "histogram": "retrain.histogram(x, '{-1,0,0.5,1,2}')::text",
    "histogram_missing": "retrain.histogram_missing(x, '{-1,0,1}')::text",
    "psi": "retrain.psi(x, '{-1,0,1}', '{0.2,0.3,0.3,0.2}')",
}

# Aggregates whose state grows with the rows (internal): exact on a
# distributed table, but Citus pulls the rows to the coordinator unless the
# query groups by the distribution column.
GROWING = {
    "auc": "retrain.auc(score, label)",
    "average_precision": "retrain.average_precision(score, label)",
    "quantile_edges": "retrain.quantile_edges(actual, 4)::text",
    "ks_2samp": "retrain.ks_2samp(score, label)::text",
}

TABLES = ("preds_by_unit", "preds_by_model")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Citus:
    """A coordinator and two workers, set up once for the whole suite."""

    def __init__(self, **settings):
        """settings: more of each node's postgresql.conf (make bench's
        shared_buffers)."""
        self.nodes = []
        for _ in range(3):
            port = free_port()
            self.nodes.append(ScratchCluster(
                shared_preload_libraries="'citus'", listen_addresses="'127.0.0.1'",
                port=str(port), max_worker_processes="16", max_connections="60",
                **{"citus.shard_count": str(SHARDS)}, **settings))

    def __enter__(self):
        started = []
        try:
            for node in self.nodes:
                started.append(node.__enter__())
            for node in self.nodes:
                with node.connect() as conn:
                    conn.execute("CREATE EXTENSION citus")
            with self.coordinator() as conn:
                conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.nodes[0].port,))
                for node in self.nodes[1:]:
                    conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (node.port,))
                conn.execute("CREATE EXTENSION retrain")
        except BaseException:
            for node in reversed(started):
                node.__exit__(None, None, None)
            raise
        return self

    def coordinator(self, **kwargs):
        return self.nodes[0].connect(**kwargs)

    def __exit__(self, *exc):
        for node in reversed(self.nodes):
            node.__exit__(*exc)
        return False


def load_predictions(conn):
    """preds_local, and the same rows distributed by unit_key and by model."""
    conn.execute(f"""
        CREATE TABLE preds_local AS
        SELECT 'u' || i AS unit_key,
               'model_' || (i % 5) AS model,
               s AS score,
               (random() < s) AS label,
               p AS predicted,
               p + (random() - 0.5) * 4 AS actual,
               CASE WHEN i % 97 = 0 THEN NULL
                    WHEN i % 89 = 0 THEN 'NaN'::float8
                    ELSE (random() - 0.4) * 3 END AS x
          FROM (SELECT i, random() AS s, random() * 100 AS p
                  FROM (SELECT setseed(0.17)) AS seed,
                       generate_series(1, {ROWS}) AS i) AS rows
    """)
    for table, column in zip(TABLES, ("unit_key", "model")):
        conn.execute(f"CREATE TABLE {table} (LIKE preds_local)")
        conn.execute(f"SELECT create_distributed_table('{table}', '{column}')")
        conn.execute(f"INSERT INTO {table} SELECT * FROM preds_local")
    conn.execute("ANALYZE")


def same(name, got, want):
    """Exact for counts and text, 1e-12 relative for sums."""
    if isinstance(want, float) and isinstance(got, float):
        if math.isnan(want) and math.isnan(got):
            return
        assert abs(got - want) <= 1e-12 * max(abs(want), 1e-300), f"{name}: {got!r} != {want!r}"
    else:
        assert got == want, f"{name}: {got!r} != {want!r}"


def compare(conn, aggregates, group_by=None):
    exprs = ", ".join(aggregates.values())
    key = f"{group_by}, " if group_by else ""
    tail = f" GROUP BY {group_by} ORDER BY {group_by}" if group_by else ""
    want = conn.execute(f"SELECT {key}{exprs} FROM preds_local{tail}").fetchall()
    for table in TABLES:
        got = conn.execute(f"SELECT {key}{exprs} FROM {table}{tail}").fetchall()
        assert len(got) == len(want), f"{table}: {len(got)} groups, not {len(want)}"
        for g, w in zip(got, want):
            names = ([group_by] if group_by else []) + list(aggregates)
            for name, gv, wv in zip(names, g, w):
                same(f"{table} {name} (group by {group_by})", gv, wv)


def plan(conn, sql):
    return "\n".join(r[0] for r in conn.execute("EXPLAIN (VERBOSE, COSTS OFF) " + sql))


CITUS = None


def cluster():
    global CITUS
    if CITUS is None:
        CITUS = Citus().__enter__()
        with CITUS.coordinator() as conn:
            load_predictions(conn)
    return CITUS


def test_the_extension_reaches_the_workers():
    with cluster().coordinator() as conn:
        assert scalar(conn, "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary'") == 3
        versions = conn.execute("""
            SELECT result FROM run_command_on_workers(
                $$SELECT extversion FROM pg_extension WHERE extname = 'retrain'$$)""").fetchall()
        assert [v[0] for v in versions] == ["0.2.0", "0.2.0"], versions


def test_every_aggregate_equals_the_local_result():
    with cluster().coordinator() as conn:
        everything = {**PUSHABLE, **GROWING}
        compare(conn, everything)
        compare(conn, everything, group_by="model")
        compare(conn, everything, group_by="label")


def test_fixed_state_aggregates_run_as_partial_aggregates_on_the_workers():
    with cluster().coordinator() as conn:
        for name, expr in PUSHABLE.items():
            for table in TABLES:
                for tail in ("", " GROUP BY label"):
                    text = plan(conn, f"SELECT {expr} FROM {table}{tail}")
                    assert "worker_partial_agg" in text and "coord_combine_agg" in text, \
                        f"{name} on {table}{tail} is not pushed down:\n{text}"


def test_growing_state_aggregates_run_on_the_workers_grouped_by_the_distribution_column():
    with cluster().coordinator() as conn:
        for name, expr in GROWING.items():
            # grouped by the distribution column, each group is on one shard:
            # the whole aggregate runs there
            text = plan(conn, f"SELECT model, {expr} FROM preds_by_model GROUP BY model")
            assert "retrain." + name.split("(")[0] in text.split("Task Count")[1], \
                f"{name} grouped by model does not run on the workers:\n{text}"
            # otherwise the rows come to the coordinator
            text = plan(conn, f"SELECT {expr} FROM preds_by_unit")
            assert "worker_partial_agg" not in text, text


def test_a_partial_state_of_another_kind_is_refused():
    with cluster().coordinator() as conn:
        # A valid mean-loss state (no rows) handed to f1's combine on the
        # coordinator, as a worker's answer could be: the input function
        # accepts it, and the combine function refuses its kind.
        floats = ["0" * 16] * 12
        floats[2] = "3ff0000000000000"  # the pending product, 1.0
        state = "loss:1:" + "00" * 8 + "00" * 8 + "00000000" + "00" + "".join(floats)
        assert scalar(conn, f"SELECT '{state}'::retrain.agg_state::text") == state
        expect_error(conn, f"""
            SELECT coord_combine_agg('retrain.f1(boolean, boolean)'::regprocedure,
                                     '{state}'::cstring, NULL::float8)""", "42804",
                     match="not a confusion state")
        expect_error(conn, """
            SELECT coord_combine_agg('retrain.f1(boolean, boolean)'::regprocedure,
                                     'confusion:1:ffffffffffffffff'::cstring, NULL::float8)""", "22P03")


def test_a_role_without_superuser_gets_the_pushed_down_aggregates():
    with cluster().coordinator() as conn:
        conn.execute("CREATE ROLE analyst LOGIN")
        conn.execute("GRANT SELECT ON preds_by_unit, preds_local TO analyst")
        want = scalar(conn, "SELECT retrain.f1(score >= 0.5, label)::text || retrain.rmse(predicted, actual)::text"
                            " FROM preds_local")
    with cluster().coordinator(user="analyst") as conn:
        got = scalar(conn, "SELECT retrain.f1(score >= 0.5, label)::text || retrain.rmse(predicted, actual)::text"
                           " FROM preds_by_unit")
        assert got == want, (got, want)


def test_stop_the_nodes():
    global CITUS
    if CITUS is not None:
        CITUS.__exit__(None, None, None)
        CITUS = None


if __name__ == "__main__":
    run_suite(globals())
