"""Benchmarks of the drift statistics (issue: drift statistics and feature baselines).

A table of RETRAIN_BENCH_DRIFT_ROWS rows (default 10 million)
(value float8, is_reference boolean), prewarmed into shared buffers; each
statistic runs with a serial plan against SELECT sum(value) over the same
table.  Then drift() over a 20-feature table of 1 million rows against one
SELECT sum(f1), ..., sum(f20), and the plain-SQL PSI an analyst writes with
width_bucket and GROUP BY.
"""

import os

from bench import Case
from bench_metrics import SERIAL, create_table

ROWS = int(os.environ.get("RETRAIN_BENCH_DRIFT_ROWS", "10000000"))
WIDE_ROWS = 1_000_000
FEATURES = 20

# What an analyst writes without the extension: bucket with width_bucket,
# count per bucket, turn counts into proportions and sum the PSI terms.
PURE_SQL_PSI = """
WITH edges AS (SELECT %(edges)s::float8[] AS e),
expected AS (
    SELECT b - 1 AS bucket, p FROM unnest(%(expected)s::float8[]) WITH ORDINALITY AS x(p, b)
),
actual AS (
    SELECT width_bucket(value, (SELECT e FROM edges)) AS bucket, count(*)::float8 AS c
      FROM bench_drift GROUP BY 1
),
joined AS (
    SELECT greatest(coalesce(a.c / sum(a.c) OVER (), 0), 0.0001) AS a,
           greatest(e.p / sum(e.p) OVER (), 0.0001) AS e
      FROM expected e LEFT JOIN actual a USING (bucket)
)
SELECT sum((a - e) * ln(a / e)) FROM joined
"""


def cases(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    create_table(conn, "bench_drift", ROWS,
                 "s * 10 + CASE WHEN random() < 0.5 THEN 0 ELSE 1 END AS value, "
                 "random() < 0.5 AS is_reference")
    conn.execute("SELECT pg_prewarm('bench_drift')")
    edges = conn.execute("SELECT retrain.quantile_edges(value, 10) FROM bench_drift "
                         "WHERE is_reference").fetchone()[0]
    expected = [0.1] * 10
    lit = {"edges": "'{%s}'" % ",".join(map(repr, edges)),
           "expected": "'{%s}'" % ",".join(map(repr, expected))}

    base = "SELECT sum(value) FROM bench_drift"
    out = [
        Case("psi(value, edges, expected)",
             f"SELECT retrain.psi(value, {lit['edges']}, {lit['expected']}) FROM bench_drift",
             base, "sum(value)", target=1.3, settings=SERIAL),
        Case("histogram(value, edges)",
             f"SELECT retrain.histogram(value, {lit['edges']}) FROM bench_drift",
             base, "sum(value)", target=1.3, settings=SERIAL),
        Case("quantile_edges(value, 10)",
             "SELECT retrain.quantile_edges(value, 10) FROM bench_drift",
             base, "sum(value)", target=3, settings=SERIAL),
        Case("ks_2samp(value, is_reference)",
             "SELECT retrain.ks_2samp(value, is_reference) FROM bench_drift",
             base, "sum(value)", target=3, settings=SERIAL),
        Case("plain-SQL PSI (width_bucket + GROUP BY)", PURE_SQL_PSI % lit,
             f"SELECT retrain.psi(value, {lit['edges']}, {lit['expected']}) FROM bench_drift",
             "retrain.psi aggregate", settings=SERIAL),
    ]

    # drift() over 20 features: one scan against one scan of 20 sums.
    columns = ", ".join(f"s * {i + 1} + random() AS f{i + 1}" for i in range(FEATURES))
    create_table(conn, "bench_drift_wide", WIDE_ROWS, columns)
    conn.execute("SELECT pg_prewarm('bench_drift_wide')")
    # a baseline belongs to a registered version (capture_baseline checks)
    if not conn.execute("SELECT 1 FROM retrain.models WHERE name = 'bench'").fetchone():
        conn.execute("SELECT retrain.register_model('bench', 'binary_classification')")
        conn.execute("SELECT retrain.register_version('bench', 'v1', 's3://m', repeat('a', 64), '{}')")
    conn.execute("SELECT retrain.capture_baseline('bench', 'v1', 'bench_drift_wide')")
    sums = ", ".join(f"sum(f{i + 1})" for i in range(FEATURES))
    out.append(Case("drift(): 20 features, 1M rows",
                    "SELECT * FROM retrain.drift('bench', 'v1', 'bench_drift_wide')",
                    f"SELECT {sums} FROM bench_drift_wide", "sum(f1), ..., sum(f20)",
                    target=2, settings=SERIAL))
    return out
