"""Benchmarks of the model-quality aggregates (issue: metrics as exact, parallel C aggregates).

A table of RETRAIN_BENCH_METRIC_ROWS rows (default 10 million)
(score float8, label boolean, predicted boolean, actual float8), prewarmed
into shared buffers.  Every aggregate runs with a serial plan and is compared
with SELECT sum(score) over the same table in the same run.  Two reference
points: the rank-sum AUC an analyst writes in plain SQL (ours must be at
least 10x faster), and scikit-learn's roc_auc_score on the same data already
in memory.

RETRAIN_BENCH_BIG=1 adds the 100-million-row exact AUC and average precision
in one group, serially and in parallel (several minutes and about 9 GB of
disk; not part of a normal run).
"""

import os

from bench import Case

ROWS = int(os.environ.get("RETRAIN_BENCH_METRIC_ROWS", "10000000"))
BIG_ROWS = 100_000_000

SERIAL = {"max_parallel_workers_per_gather": "0"}

# What an analyst writes without the extension: the Mann-Whitney rank sum,
# with midranks for ties from a window over equal scores.
PURE_SQL_AUC = """
WITH ranked AS (
    SELECT label, avg(rn) OVER (PARTITION BY score) AS midrank
      FROM (SELECT score, label, row_number() OVER (ORDER BY score) AS rn
              FROM bench_metrics) numbered
), totals AS (
    SELECT count(*) FILTER (WHERE label) AS n1,
           count(*) FILTER (WHERE NOT label) AS n0,
           sum(midrank) FILTER (WHERE label) AS rank_sum
      FROM ranked
)
SELECT (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0) FROM totals
"""


def create_table(conn, name, rows, columns):
    exists = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname = %s AND relkind = 'r'", (name,)).fetchone()[0]
    if exists and conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == rows:
        return
    print(f"creating {name} ({rows:,} rows) ...", flush=True)
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute("SELECT setseed(0.5)")
    conn.execute(f"CREATE TABLE {name} AS SELECT {columns} "
                 f"FROM (SELECT random() AS s FROM generate_series(1, {rows})) g")
    conn.execute(f"VACUUM (FREEZE, ANALYZE) {name}")


def cases(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    # Continuous scores in [0, 1]; labels drawn with P(true) = score, so the
    # model is informative (AUC about 0.83); predictions at 0.5; a noisy
    # actual value; and the score rounded to 4 digits, for heavy ties.
    create_table(conn, "bench_metrics", ROWS,
                 "s AS score, random() < s AS label, s >= 0.5 AS predicted, "
                 "s + random() AS actual, round(s::numeric, 4)::float8 AS tied_score")
    conn.execute("SELECT pg_prewarm('bench_metrics')")

    base = "SELECT sum(score) FROM bench_metrics"
    base_name = "sum(score)"
    out = []
    for name, expr in [
        ("confusion(predicted, actual)", "retrain.confusion(predicted, label)"),
        ("confusion(score, label, 0.5)", "retrain.confusion(score, label, 0.5)"),
        ("f1(predicted, actual)", "retrain.f1(predicted, label)"),
        ("f1(score, label, 0.5)", "retrain.f1(score, label, 0.5)"),
        ("precision(score, label, 0.5)", "retrain.precision(score, label, 0.5)"),
        ("recall(score, label, 0.5)", "retrain.recall(score, label, 0.5)"),
        ("accuracy(predicted, actual)", "retrain.accuracy(predicted, label)"),
        ("brier(score, label)", "retrain.brier(score, label)"),
        ("log_loss(score, label)", "retrain.log_loss(score, label)"),
        ("mae(predicted, actual)", "retrain.mae(score, actual)"),
        ("rmse(predicted, actual)", "retrain.rmse(score, actual)"),
        ("r2(predicted, actual)", "retrain.r2(score, actual)"),
    ]:
        out.append(Case(name, f"SELECT {expr} FROM bench_metrics", base, base_name,
                        target=1.3, settings=SERIAL))
    for name, expr in [("auc(score, label)", "retrain.auc(score, label)"),
                       ("average_precision(score, label)",
                        "retrain.average_precision(score, label)")]:
        out.append(Case(name, f"SELECT {expr} FROM bench_metrics", base, base_name,
                        target=2.5, settings=SERIAL))

    ours = "SELECT retrain.auc(score, label) FROM bench_metrics"
    out.append(Case("pure-SQL rank-sum AUC (analyst's query)", PURE_SQL_AUC, ours,
                    "retrain.auc", floor=10, settings=SERIAL, runs=3))

    # The same with 10,001 distinct scores: sorts with many ties are cheaper
    # for PostgreSQL's own sort, so the plain-SQL gap narrows.
    tied = "SELECT retrain.auc(tied_score, label) FROM bench_metrics"
    out.append(Case("auc(score, label), heavy ties", tied, base, base_name,
                    target=2.5, settings=SERIAL))
    out.append(Case("pure-SQL rank-sum AUC, heavy ties",
                    PURE_SQL_AUC.replace("score", "tied_score"), tied, "retrain.auc, heavy ties",
                    settings=SERIAL, runs=3))

    # scikit-learn on the same rows, already in memory as numpy arrays.
    import numpy as np
    from sklearn.metrics import roc_auc_score
    rows = conn.execute("SELECT score, label FROM bench_metrics").fetchall()
    scores = np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows))
    labels = np.fromiter((r[1] for r in rows), dtype=bool, count=len(rows))
    del rows
    out.append(Case("scikit-learn roc_auc_score (in memory)",
                    lambda: roc_auc_score(labels, scores), ours, "retrain.auc",
                    settings=SERIAL, runs=3))

    if os.environ.get("RETRAIN_BENCH_BIG"):
        create_table(conn, "bench_metrics_big", BIG_ROWS,
                     "s AS score, random() < s AS label")
        big_base = "SELECT sum(score) FROM bench_metrics_big"
        parallel = {"max_parallel_workers_per_gather": "2", "parallel_setup_cost": "0",
                    "parallel_tuple_cost": "0", "min_parallel_table_scan_size": "0"}
        for label, settings in [("serial", SERIAL), ("parallel", parallel)]:
            for agg in ("auc", "average_precision"):
                out.append(Case(f"{agg}, 100M rows, one group, {label}",
                                f"SELECT retrain.{agg}(score, label) FROM bench_metrics_big",
                                big_base, "sum(score), same plan", settings=settings, runs=1))
    return out
