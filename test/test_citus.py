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
import random
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

    def __init__(self, worker_settings=None, **settings):
        """settings: more of each node's postgresql.conf (make bench's
        shared_buffers); worker_settings: of the workers' only."""
        self.nodes = []
        for i in range(3):
            port = free_port()
            conf = {"shared_preload_libraries": "'citus'", "listen_addresses": "'127.0.0.1'",
                    "port": str(port), "max_worker_processes": "16", "max_connections": "60",
                    "citus.shard_count": str(SHARDS), **settings}
            if i > 0:
                conf.update(worker_settings or {})
            self.nodes.append(ScratchCluster(**conf))

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
        # the workers preload retrain too, its background worker every
        # second in the database Citus created retrain in: it must find it
        # is on a worker and sleep
        CITUS = Citus(worker_settings={"shared_preload_libraries": "'citus,retrain'",
                                       "retrain.database": "'postgres'", "retrain.naptime": "1"}).__enter__()
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
        # the message names our aggregate, not the Citus one it runs in
        expect_error(conn, f"""
            SELECT coord_combine_agg('retrain.f1(boolean, boolean)'::regprocedure,
                                     '{state}'::cstring, NULL::float8)""", "42804",
                     match="retrain.f1: the transition state is a loss state, not a confusion state")
        expect_error(conn, """
            SELECT coord_combine_agg('retrain.f1(boolean, boolean)'::regprocedure,
                                     'confusion:1:ffffffffffffffff'::cstring, NULL::float8)""", "22P03")


def test_bad_input_on_a_shard_is_refused_in_the_aggregate_s_name():
    """A NaN score on a shard stops the pushed-down aggregate there with
    the error a local table gives, naming retrain.brier (not Citus's
    worker_partial_agg)."""
    with cluster().coordinator() as conn:
        conn.execute("CREATE TABLE preds_nan (LIKE preds_local)")
        conn.execute("SELECT create_distributed_table('preds_nan', 'unit_key')")
        conn.execute("INSERT INTO preds_nan SELECT * FROM preds_local LIMIT 1000")
        conn.execute("INSERT INTO preds_nan (unit_key, model, score, label) VALUES ('nan', 'model_0', 'NaN', true)")
        assert "worker_partial_agg" in plan(conn, "SELECT retrain.brier(score, label) FROM preds_nan")
        local = expect_error(conn, "SELECT retrain.brier(score, label) FROM (SELECT score, label FROM preds_local"
                                   " UNION ALL SELECT 'NaN', true) t", "22023")
        distributed = expect_error(conn, "SELECT retrain.brier(score, label) FROM preds_nan", "22023")
        assert distributed.diag.message_primary == local.diag.message_primary == "retrain.brier: score is NaN", \
            (distributed.diag.message_primary, local.diag.message_primary)


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


# The log half: retrain's own prediction log distributed by model.

def worker_conn(index, **kwargs):
    return cluster().nodes[index].connect(**kwargs)


def test_distribute_is_refused_without_citus_and_to_public():
    with cluster().coordinator() as conn:
        conn.execute("CREATE DATABASE plain")
        conn.execute("CREATE ROLE stranger LOGIN")
    with cluster().coordinator(dbname="plain") as conn:
        conn.execute("CREATE EXTENSION retrain")
        expect_error(conn, "SELECT retrain.distribute()", "0A000", match="citus extension is not installed")
        assert scalar(conn, "SELECT retrain._on_citus_worker()") is False
        assert scalar(conn, "SELECT retrain._log_distributed()") is False
    with cluster().coordinator(user="stranger") as conn:
        expect_error(conn, "SELECT retrain.distribute()", "42501")
    with cluster().coordinator() as conn:
        expect_error(conn, "SELECT retrain.distribute(0)", "22023", match="shard_count")
    # a worker is not where the log is distributed from
    with worker_conn(1) as conn:
        assert scalar(conn, "SELECT retrain._on_citus_worker()") is True
        expect_error(conn, "SELECT retrain.distribute()", "0A000", match="coordinator")


def log_figures(conn):
    """The log's rows, ids and outcomes, in statements Citus can plan."""
    return (scalar(conn, "SELECT count(*) FROM retrain.predictions"),
            scalar(conn, "SELECT sum(id) FROM retrain.predictions"),
            scalar(conn, "SELECT count(*) FROM retrain.outcomes"),
            scalar(conn, "SELECT count(*) FROM retrain.outcomes o JOIN retrain.predictions p"
                         " ON p.id = o.prediction_id AND p.model = o.model AND p.predicted_at = o.predicted_at"
                         " WHERE o.model = 'before'"))


def test_the_log_distributes_by_model_keeping_its_rows():
    """Rows logged before keep their ids and outcomes; the keys hold the
    model; the triggers' guarantees become privileges; the two tables are
    co-located; each worker draws ids from a range of its own."""
    with cluster().coordinator() as conn:
        conn.execute("CREATE ROLE app LOGIN")
        conn.execute("GRANT USAGE ON SCHEMA retrain TO app")
        conn.execute("GRANT SELECT, INSERT, UPDATE ON retrain.predictions TO app")
        conn.execute("GRANT SELECT, INSERT, UPDATE ON retrain.outcomes TO app")
        conn.execute("GRANT UPDATE (label) ON retrain.outcomes TO stranger")
        # a name that must be quoted
        conn.execute('CREATE ROLE "App Team"')
        conn.execute('GRANT INSERT ON retrain.outcomes TO "App Team"')
        conn.execute("GRANT EXECUTE ON FUNCTION retrain.log_prediction(text, text, text, float8, float8, boolean,"
                     " jsonb, timestamptz), retrain.log_prediction(text, text, text, float8, text, float8, boolean,"
                     " jsonb, timestamptz), retrain.log_outcome(bigint, boolean, timestamptz),"
                     " retrain.log_outcome(text, text, boolean, timestamptz) TO app")
        conn.execute("SELECT retrain.register_model('before', 'binary_classification')")
        conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, score, predicted_at)
                        SELECT 'before', 'v1', 'u' || i, i / 1000.0, now() - i * interval '1 minute'
                          FROM generate_series(1, 1000) i""")
        conn.execute("SELECT retrain.maintain_partitions()")
        conn.execute("""INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
                        SELECT id, id % 2 = 0, now() FROM retrain.predictions WHERE id % 4 = 0""")
        before = log_figures(conn)
        assert before == (1000, 500500, 250, 250), before
        done = scalar(conn, "SELECT retrain.distribute()")
        assert done["distributed"] == ["retrain.predictions", "retrain.outcomes"], done
        assert done["partitions_keyed"] >= 4, done
        assert sorted(done["privileges_taken"]) == sorted([
            "app: INSERT on retrain.outcomes", "app: UPDATE on retrain.outcomes",
            "app: UPDATE on retrain.predictions", "stranger: UPDATE on retrain.outcomes",
            '"App Team": INSERT on retrain.outcomes']), done
        assert sorted(done["worker_ids_from"].values()) == [2 ** 48 + 1, 2 ** 49 + 1], done
        assert scalar(conn, "SELECT retrain._log_distributed()") is True
        after = log_figures(conn)
        assert after == before, (after, before)
        # co-located, hash-distributed by model
        rows = conn.execute("""SELECT logicalrelid::text, partmethod, column_to_column_name(logicalrelid, partkey),
                                      colocationid
                                 FROM pg_dist_partition
                                WHERE logicalrelid IN ('retrain.predictions'::regclass, 'retrain.outcomes'::regclass)
                                ORDER BY 1""").fetchall()
        assert [r[1:3] for r in rows] == [("h", "model"), ("h", "model")] and rows[0][3] == rows[1][3], rows
        # NULL: Citus's own shard count
        assert scalar(conn, "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'retrain.predictions'::regclass"
                      ) == SHARDS
        # every partition's key holds the model, those made later too
        keys = conn.execute("""SELECT DISTINCT pg_get_constraintdef(con.oid)
                                 FROM pg_constraint con JOIN pg_inherits i ON i.inhrelid = con.conrelid
                                WHERE con.contype = 'p'
                                  AND i.inhparent IN ('retrain.predictions'::regclass, 'retrain.outcomes'::regclass)
                                ORDER BY 1""").fetchall()
        assert [k[0] for k in keys] == ["PRIMARY KEY (id, model)", "PRIMARY KEY (prediction_id, model)"], keys
        assert scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname IN"
                            " ('outcomes_model', 'predictions_model_moved', 'predictions_time_kept')") == 0
        assert scalar(conn, "SELECT has_table_privilege('app', 'retrain.predictions', 'INSERT')") is True
        assert scalar(conn, "SELECT has_table_privilege('app', 'retrain.outcomes', 'INSERT')") is False
        assert scalar(conn, "SELECT has_column_privilege('stranger', 'retrain.outcomes', 'label', 'UPDATE')") is False
        assert scalar(conn, """SELECT has_table_privilege('App Team', 'retrain.outcomes', 'INSERT')""") is False
        assert scalar(conn, "SELECT details->'distributed' FROM retrain.log WHERE event = 'log_distributed'") \
            == ["retrain.predictions", "retrain.outcomes"]
        # again: nothing to distribute, the workers' ranges stay
        again = scalar(conn, "SELECT retrain.distribute()")
        assert "distributed" not in again and sorted(again["worker_ids_from"].values()) == [2 ** 48 + 1, 2 ** 49 + 1]
        # the cycle's partition maintenance still makes the coming days
        made = conn.execute("SELECT action, partition FROM retrain._maintain_partitions(now() + interval '10 days')"
                            " WHERE action = 'created'").fetchall()
        assert len(made) >= 1, made
        assert scalar(conn, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text = %s",
                      (made[0][1],)) == 1, made


def test_logging_on_the_distributed_log():
    """log_prediction and log_outcome, by id and by request id, from an
    application role; the outcome carries its prediction's model and time;
    a second outcome, an unknown prediction and direct writes are refused;
    a row logged through a worker gets an id no other node hands out."""
    with cluster().coordinator(user="app") as conn:
        a = scalar(conn, "SELECT retrain.log_prediction('before', 'v1', 'x1', 0.9)")
        b = scalar(conn, "SELECT retrain.log_prediction('before', 'v1', 'x2', 0.1, request_id => 'req-2')")
        assert 1000 < a < b < 2 ** 48, (a, b)
        conn.execute("SELECT retrain.log_outcome(%s, true)", (a,))
        conn.execute("SELECT retrain.log_outcome('before', 'req-2', false)")
        expect_error(conn, "SELECT retrain.log_outcome(%s, false)", "23505", (a,), match="already has an outcome")
        expect_error(conn, "SELECT retrain.log_outcome(%s, false)", "42704", (2 ** 47,))
        expect_error(conn, "SELECT retrain.log_prediction('before', 'v1', 'x3', 0.5, request_id => 'req-2')", "23505")
        expect_error(conn, "INSERT INTO retrain.outcomes (prediction_id, label, model) VALUES (1, true, 'other')",
                     "42501")
        expect_error(conn, "UPDATE retrain.predictions SET predicted_at = now() WHERE id = %s", "42501", (a,))
        # COPY and INSERT of predictions stay the application's
        conn.execute("INSERT INTO retrain.predictions (model, version, score) VALUES ('before', 'v1', 0.4)")
    with cluster().coordinator() as conn:
        got = conn.execute("SELECT o.prediction_id, o.model, o.predicted_at = p.predicted_at,"
                           " o.logged_at >= p.logged_at"
                           " FROM retrain.outcomes o JOIN retrain.predictions p"
                           " ON p.id = o.prediction_id AND p.model = o.model"
                           " WHERE o.prediction_id IN (%s, %s) ORDER BY 1", (a, b)).fetchall()
        assert got == [(a, "before", True, True), (b, "before", True, True)], got
        # the model is where the row lives: Citus refuses to move it
        expect_error(conn, "UPDATE retrain.predictions SET model = 'elsewhere' WHERE id = %s", "0A000", (a,))
    # through a worker (Citus routes writes from any node): an id of its range
    with worker_conn(1) as conn:
        w = scalar(conn, "INSERT INTO retrain.predictions (model, version, score) VALUES ('before', 'v1', 0.3)"
                         " RETURNING id")
        assert 2 ** 48 < w < 2 ** 49 + 2 ** 48, w
    with cluster().coordinator() as conn:
        conn.execute("SELECT retrain.log_outcome(%s, true)", (w,))
        assert scalar(conn, "SELECT count(*) FROM retrain.predictions WHERE id IN (%s, %s, %s)", (a, b, w)) == 3
        assert scalar(conn, "SELECT count(DISTINCT id) = count(*) FROM retrain.predictions") is True


def checked_model(conn, model):
    """A classifier whose production version was registered at AUC 0.95 and
    now scores at random: its performance trigger fires.  Rollups in
    10-minute buckets that settle in a second."""
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    conn.execute("SELECT retrain.register_version(%s, v, 's3://m', encode(sha256(v::bytea), 'hex'),"
                 " '{\"auc\": 0.95}') FROM unnest('{v1, v2}'::text[]) v", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"confidence": {"min": 0.2, "window": "1 day"},
                    "performance": {"metric": "auc", "max_drop": 0.05, "window": "1 day", "min_labels": 100}},
                    "rollout": {"steps": [10, 100], "dwell": ["1 hour"]},
                    "rollback": {"max_error_rate": 0.05, "min_predictions": 100},
                    "rollups": {"bucket": "10 minutes", "settle": "1 second"}}')""", (model,))


def direct_auc(conn, model):
    return scalar(conn, """SELECT retrain.auc(p.score, o.label)
                             FROM retrain.predictions p
                             JOIN retrain.outcomes o ON o.prediction_id = p.id AND o.model = p.model
                            WHERE p.model = %s AND p.version = 'v1' AND p.predicted_at >= now() - interval '1 day'
                              AND p.score >= 0 AND p.score <= 1""", (model,))


def label_half(conn, model, parity, rng):
    """Outcomes for the model's predictions of even (0) or odd (1) id, more
    often true the higher the score.  (log_outcome over a distributed
    table's rows would run on their node and query the log from there,
    which Citus refuses: the ids are read first.)"""
    ids = conn.execute("SELECT p.id, p.score FROM retrain.predictions p WHERE p.model = %s AND p.id %% 2 = %s",
                       (model, parity)).fetchall()
    with conn.cursor() as cur:
        cur.executemany("SELECT retrain.log_outcome(%s, %s)",
                        [(i, rng.random() < 0.3 + 0.2 * score) for i, score in ids])


def test_checks_and_rollups_on_the_distributed_log():
    """run_checks() folds the model's rollups on its node, reads the AUC
    from them equal to the rows', and files the request; late outcomes are
    folded in; nothing fails on the way."""
    import time
    with cluster().coordinator() as conn:
        model = "dist_checked"
        checked_model(conn, model)
        conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, score, predicted_at)
                        SELECT %s, 'v1', 'u' || i, ((i * 7919) %% 1000) / 1000.0,
                               now() - (i %% 600) * interval '1 second'
                          FROM generate_series(1, 1200) i""", (model,))
        rng = random.Random(17)
        label_half(conn, model, 0, rng)
        time.sleep(1.2)
        made = scalar(conn, "SELECT retrain.run_checks(clock_timestamp())")
        assert made >= 1, made
        failures = conn.execute("SELECT event, details FROM retrain.log WHERE event IN"
                                " ('check_failed', 'rollups_failed') ORDER BY id").fetchall()
        assert failures == [], failures
        assert scalar(conn, "SELECT count(*) FROM retrain.rollups WHERE model = %s", (model,)) > 0
        detail = scalar(conn, "SELECT detail FROM retrain.check(%s, clock_timestamp())"
                              " WHERE trigger = 'performance'", (model,))
        want = direct_auc(conn, model)
        assert detail["labelled"] == 600 and abs(detail["value"] - want) <= 1e-12, (detail, want)
        assert scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model = %s AND status = 'open'",
                      (model,)) == 1
        # outcomes that arrive after the fold, of predictions folded before
        label_half(conn, model, 1, rng)
        time.sleep(1.2)
        conn.execute("SELECT retrain.run_checks(clock_timestamp())")
        detail = scalar(conn, "SELECT detail FROM retrain.check(%s, clock_timestamp())"
                              " WHERE trigger = 'performance'", (model,))
        want = direct_auc(conn, model)
        assert detail["labelled"] == 1200 and abs(detail["value"] - want) <= 1e-12, (detail, want)
        marks = conn.execute("SELECT computed_until > now() - interval '1 minute' FROM retrain.rollup_marks"
                             " WHERE model = %s", (model,)).fetchone()
        assert marks == (True,), marks
        assert conn.execute("SELECT event FROM retrain.log WHERE event IN ('check_failed', 'rollups_failed')"
                            ).fetchall() == []
        # the daily report joins the two tables on the node of each model
        report = conn.execute("SELECT predictions, labelled_share FROM retrain.version_stats"
                              " WHERE model = %s", (model,)).fetchall()
        assert sum(r[0] for r in report) == 1200, report


def test_the_guard_rolls_back_a_failing_canary_on_the_distributed_log():
    import time
    with cluster().coordinator() as conn:
        model = "dist_guarded"
        checked_model(conn, model)
        conn.execute("SELECT retrain.promote(%s, 'v2', 'canary', override_reason => 'test')", (model,))
        # production fails 1% of its requests, the canary 20%
        conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, score, latency_ms, error)
                        SELECT %s, v, v || i, 0.5, 10, i %% CASE v WHEN 'v1' THEN 100 ELSE 5 END = 0
                          FROM generate_series(1, 1000) i, unnest('{v1, v2}'::text[]) v""", (model,))
        time.sleep(1.2)
        decision, reason = conn.execute("SELECT decision, reason FROM retrain.guard_rollouts(clock_timestamp())"
                                        " WHERE model = %s", (model,)).fetchone()
        assert decision == "rollback", (decision, reason)
        assert scalar(conn, "SELECT canary_version FROM retrain.deployments WHERE model = %s", (model,)) is None
        assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE model = %s AND event = 'rolled_back'",
                      (model,)) == 1


def test_a_check_that_fails_on_the_distributed_log_is_never_silent():
    """A source Citus cannot plan (outcomes joined by id alone, across
    nodes): check() raises, the cycle logs check_failed with the SQLSTATE,
    makes no request, and the exporter's view shows the model failing."""
    with cluster().coordinator() as conn:
        model = "dist_failing"
        checked_model(conn, model)
        conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, score)
                        SELECT %s, 'v1', 'u' || i, 0.5 FROM generate_series(1, 200) i""", (model,))
        conn.execute("""CREATE VIEW cross_node AS
                        SELECT p.model, p.version, p.predicted_at, p.score, o.label, o.observed_at
                          FROM retrain.predictions p
                          LEFT JOIN retrain.outcomes o ON o.prediction_id = p.id""")
        conn.execute("SELECT retrain.set_source(%s, 'cross_node')", (model,))
        expect_error(conn, "SELECT * FROM retrain.check(%s)", "0A000", (model,))
        assert scalar(conn, "SELECT retrain.run_checks()") == 0
        failed = scalar(conn, "SELECT details FROM retrain.log WHERE model = %s AND event = 'check_failed'"
                              " ORDER BY id DESC LIMIT 1", (model,))
        assert failed is not None and failed["sqlstate"] == "0A000", failed
        assert scalar(conn, "SELECT check_failing FROM retrain.metrics_models WHERE model = %s", (model,)) == 1
        assert scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model = %s", (model,)) == 0
        # the other models' checks were not held back by it
        assert scalar(conn, "SELECT check_failing FROM retrain.metrics_models WHERE model = 'dist_checked'") == 0


def test_retention_on_the_distributed_log():
    """retrain.prediction_retention on the distributed log: the days older
    than it are dropped on every node, and the outcomes of predictions
    written through a worker (ids of its own range, in the default
    partition of outcomes, which no range of ids takes) go with their
    predictions; those of predictions kept stay.  Run more than five times
    in one session, so that PL/pgSQL's cached plans are Citus's to run too."""
    high = 2 ** 48
    with cluster().coordinator() as conn:
        conn.execute("SELECT retrain.register_model('aging', 'binary_classification')")
        old = scalar(conn, "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
                           " - interval '32 days'")
        conn.execute("SELECT count(*) FROM retrain._maintain_partitions(%s)", (old,))
        # noon of the first two days made, and now
        times = [scalar(conn, "SELECT %s::timestamptz + %s * interval '1 day' + interval '12 hours'", (old, d))
                 for d in (0, 1)] + [scalar(conn, "SELECT now()")]
        mine = [scalar(conn, "SELECT retrain.log_prediction('aging', 'v1', %s, 0.7, predicted_at => %s)",
                       (f"c{i}", t)) for i, t in enumerate(times)]
    with worker_conn(1) as conn:
        theirs = [scalar(conn, "INSERT INTO retrain.predictions (model, version, unit_key, score, predicted_at)"
                               " VALUES ('aging', 'v1', %s, 0.3, %s) RETURNING id", (f"w{i}", t))
                  for i, t in enumerate(times)]
    assert all(i < high for i in mine) and all(i > high for i in theirs), (mine, theirs)
    with cluster().coordinator() as conn:
        for i in mine + theirs:
            conn.execute("SELECT retrain.log_outcome(%s, true)", (i,))
        dropped_days = [r[0] for r in conn.execute(
            "SELECT p.part::text FROM retrain._log_partitions('retrain.predictions') p"
            " WHERE NOT p.is_default AND p.hi::timestamptz <= now() - interval '30 days'"
            " AND p.hi::timestamptz > %s ORDER BY 1", (old,))]
        assert len(dropped_days) == 2, dropped_days
        conn.execute("ALTER SYSTEM SET retrain.prediction_retention = '30d'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        with cluster().coordinator() as conn:
            for _ in range(7):
                conn.execute("SELECT count(*) FROM retrain._maintain_partitions(now())")
            left = [r[0] for r in conn.execute("SELECT part::text FROM retrain._log_partitions('retrain.predictions')")]
            assert not set(dropped_days) & set(left), (dropped_days, left)
            # the shards of the partitions dropped are gone from the workers
            assert scalar(conn, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text = ANY(%s)",
                          (dropped_days,)) == 0
            got = conn.execute("SELECT p.id FROM retrain.predictions p WHERE p.model = 'aging' ORDER BY 1").fetchall()
            assert [r[0] for r in got] == [mine[2], theirs[2]], got
            # the worker's old outcomes went with their predictions, its
            # outcome of a prediction kept stayed
            outcomes = conn.execute("SELECT o.prediction_id FROM retrain.outcomes o WHERE o.model = 'aging'"
                                    " AND o.prediction_id > %s ORDER BY 1", (high,)).fetchall()
            assert [r[0] for r in outcomes] == [theirs[2]], outcomes
            assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'predictions_expired'"
                                " AND details ? 'predicted_before' AND (details->>'rows')::int >= 2") >= 1
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
    finally:
        with cluster().coordinator() as conn:
            conn.execute("ALTER SYSTEM RESET retrain.prediction_retention")
            conn.execute("SELECT pg_reload_conf()")


def test_the_cycle_runs_on_the_coordinator_only():
    """On a worker, run_cycle() returns at once and partition maintenance
    is refused: the coordinator's cycle does both."""
    said = "database \"postgres\" is on a Citus worker node; the check cycle runs on the coordinator"
    for node in cluster().nodes[1:]:
        # once, however many cycles it slept through
        assert node.log().count(said) == 1, node.log()[-3000:]
    with worker_conn(1) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("CALL retrain.run_cycle()")
        assert any("Citus worker" in n for n in notices), notices
        expect_error(conn, "SELECT retrain.maintain_partitions()", "0A000", match="coordinator")
        assert scalar(conn, "SELECT count(*) FROM retrain.log") == 0
    with cluster().coordinator() as conn:
        conn.execute("CALL retrain.run_cycle()")
        assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'checked'"
                            " AND at > now() - interval '1 minute'") >= 1


def test_an_install_of_0_1_0_on_citus_updates_in_place_and_distributes():
    """A site that ran 0.1.0 on its Citus coordinator (the log local
    there): ALTER EXTENSION retrain UPDATE, which Citus runs on the workers
    too, reaches 0.2.0 on every node; the rows logged before keep their ids
    and outcomes; the updated log then distributes and logs as a fresh one."""
    db = "upgraded"
    nodes = cluster().nodes
    for node in nodes:
        with node.connect(autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {db}")
        with node.connect(dbname=db) as conn:
            conn.execute("CREATE EXTENSION citus")
    with nodes[0].connect(dbname=db) as conn:
        conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (nodes[0].port,))
        for node in nodes[1:]:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (node.port,))
        conn.execute("CREATE EXTENSION retrain VERSION '0.1.0'")
        conn.execute("SELECT retrain.register_model('old', 'binary_classification')")
        ids = [scalar(conn, "SELECT retrain.log_prediction('old', 'v1', %s, %s)", (f"u{i}", i / 10))
               for i in range(10)]
        for i in ids[::2]:
            conn.execute("SELECT retrain.log_outcome(%s, true)", (i,))
        conn.execute("ALTER EXTENSION retrain UPDATE")
        versions = conn.execute("SELECT result FROM run_command_on_all_nodes("
                                "$$SELECT extversion FROM pg_extension WHERE extname = 'retrain'$$)").fetchall()
        assert [v[0] for v in versions] == ["0.2.0"] * 3, versions
        assert scalar(conn, "SELECT count(*) FROM retrain.outcomes o JOIN retrain.predictions p"
                            " ON p.id = o.prediction_id AND p.model = o.model AND p.predicted_at = o.predicted_at"
                            " WHERE p.model = 'old'") == 5
        # each worker's update attached its own empty old tables: a row
        # there (logged on the worker, never read) stops the distribution
        with nodes[1].connect(dbname=db) as worker:
            worker.execute("INSERT INTO retrain.predictions (model, version, score, predicted_at)"
                           " VALUES ('old', 'v1', 0.5, now() - interval '1 day')")
            expect_error(conn, "SELECT retrain.distribute()", "55000", match="rows logged on this worker")
            assert scalar(conn, "SELECT retrain._log_distributed()") is False
            worker.execute("DELETE FROM retrain.predictions")
        done = scalar(conn, "SELECT retrain.distribute()")
        assert done["distributed"] == ["retrain.predictions", "retrain.outcomes"], done
        assert sorted(sum(done.get("worker_partitions_dropped", {}).values(), [])) == \
            ["retrain.outcomes_0_1_0", "retrain.predictions_0_1_0"], done
        assert scalar(conn, "SELECT array_agg(id ORDER BY id) FROM retrain.predictions") == ids
        new = scalar(conn, "SELECT retrain.log_prediction('old', 'v1', 'u10', 0.5)")
        conn.execute("SELECT retrain.log_outcome(%s, false)", (new,))
        assert new > max(ids) and scalar(conn, "SELECT count(*) FROM retrain.outcomes") == 6
        assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True


def test_stop_the_nodes():
    global CITUS
    if CITUS is not None:
        CITUS.__exit__(None, None, None)
        CITUS = None


if __name__ == "__main__":
    run_suite(globals())
