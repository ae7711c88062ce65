"""Benchmark of the check cycle (issue: retraining triggers).

RETRAIN_BENCH_CHECK_MODELS models (default 100), each with 10 baselined
numeric features, a production version, and RETRAIN_BENCH_CHECK_ROWS
predictions (default 100,000) in its drift, performance and confidence
window, a quarter of them labelled.  One run_checks() cycle is timed; the
case prints seconds per cycle and predictions checked per second.  Each
model's window is read by one query (one scan), whatever the number of
features and triggers.  The baseline is one plain scan of the same rows
(SELECT count(*) over the window of every model), for scale.
"""

import os
import time

from bench import Case

MODELS = int(os.environ.get("RETRAIN_BENCH_CHECK_MODELS", "100"))
ROWS = int(os.environ.get("RETRAIN_BENCH_CHECK_ROWS", "100000"))
FEATURES = [f"f{i}" for i in range(10)]


def cases(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
    have = conn.execute("SELECT count(*) FROM retrain.models WHERE name LIKE 'bench_check_%'").fetchone()[0]
    if have != MODELS:
        print(f"creating {MODELS} models with {ROWS:,} predictions each ...", flush=True)
        conn.execute("DROP TABLE IF EXISTS bench_check_training")
        conn.execute("CREATE TABLE bench_check_training AS SELECT "
                     + ", ".join(f"random() * {i + 1} AS {f}" for i, f in enumerate(FEATURES))
                     + " FROM generate_series(1, 20000)")
        policy = ('{"triggers": {"drift": {"psi": 0.25, "aggregate": "mean", "window": "7 days"}, '
                  '"performance": {"metric": "f1", "max_drop": 0.05, "min_labels": 100, "window": "7 days"}, '
                  '"confidence": {"min": 0.7, "window": "7 days"}}}')
        for m in range(MODELS):
            name = f"bench_check_{m}"
            conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (name,))
            conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', repeat('a', 64), "
                         "'{\"f1\": 0.8}', features => %s)", (name, FEATURES))
            conn.execute("SELECT retrain.capture_baseline(%s, 'v1', 'bench_check_training')", (name,))
            conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green')", (name,))
            conn.execute("SELECT retrain.set_policy(%s, %s)", (name, policy))
            conn.execute(
                "INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms, features) "
                "SELECT %s, 'v1', 'u' || i, now() - random() * interval '6 days', random(), 10, "
                "jsonb_build_object(" + ", ".join(f"'{f}', random() * {i + 1.2}" for i, f in enumerate(FEATURES)) + ") "
                "FROM generate_series(1, %s) i", (name, ROWS))
        conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) "
                     "SELECT id, random() < score FROM retrain.predictions "
                     "WHERE model LIKE 'bench_check_%' AND id % 4 = 0")
        conn.execute("VACUUM ANALYZE retrain.predictions, retrain.outcomes")

    def cycle():
        started = time.perf_counter()
        conn.execute("SELECT retrain.run_checks()")
        elapsed = time.perf_counter() - started
        print(f"    run_checks(): {MODELS} models, {MODELS * ROWS:,} predictions in their windows: "
              f"{elapsed:.1f} s a cycle, {MODELS * ROWS / elapsed:,.0f} predictions/s", flush=True)

    return [Case(f"run_checks(), {MODELS} models x {ROWS:,} predictions", cycle,
                 "SELECT model, count(*) FROM retrain.predictions "
                 "WHERE model LIKE 'bench_check_%' AND predicted_at >= now() - interval '7 days' GROUP BY model",
                 "count(*) of every model's window", runs=1)]
