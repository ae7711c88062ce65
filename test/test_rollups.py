"""Rollups against the rows, through real folds on the server's clock.

Round after round, seeded random traffic arrives as an application and a
backfill job would send it: predictions made now and hours ago (a
backfill), a few made a minute ahead (a clock that runs fast), scores a
classifier's figures leave out (1.5), NULL and non-numeric features,
categories the baseline never saw, two versions; outcomes for predictions
of any age (late labels), some observed a little ahead of when they are
logged; and, in one round, a transaction that writes and stays open across
a fold.  After each fold (rollups.settle of one second, 10-minute buckets),
the window figures merged from the rollups must equal those read from the
rows: counts, histograms, category counts and AUC, F1 and the rest of the
confusion family exactly; Brier, log loss and confidence to 1e-12.
"""

import json
import os
import random
import time

from testlib import connect, run_suite, scalar

SEED = int(os.environ.get("RETRAIN_TEST_SEED", "20261201"))
METRICS = ["auc", "f1", "precision", "recall", "accuracy", "brier", "log_loss"]
CLOSE = {"brier", "log_loss"}


def compare(conn, model, version, metric):
    """(rollups, rows) figures of one version as of now, the metric set."""
    row = conn.execute(
        """SELECT retrain._rollup_window(m, t, %(v)s, x.at), retrain._window(m, t, %(v)s, x.at)
             FROM retrain.models m,
                  LATERAL (SELECT jsonb_set(retrain.effective_policy(m.name)->'triggers',
                                            '{performance,metric}', to_jsonb(%(metric)s::text)) AS t) p,
                  LATERAL (SELECT clock_timestamp() AS at) x
            WHERE m.name = %(m)s""", {"m": model, "v": version, "metric": metric}).fetchone()
    return row


def same(rolled, direct, metric):
    assert rolled is not None, "the rollups did not answer"
    strip = lambda d: {k: v for k, v in d.items() if k not in ("metric", "confidence")}  # noqa: E731
    if strip(rolled) != strip(direct):
        return False
    for key in ("metric", "confidence"):
        a, b = rolled.get(key), direct.get(key)
        if a is None or b is None:
            if a is not b:
                return False
        elif key == "confidence" or metric in CLOSE:
            if abs(a - b) > 1e-12 * max(1.0, abs(b)):
                return False
        elif a != b:
            return False
    return True


def traffic(conn, rng, model, rnd):
    rows = []
    for i in range(rng.randint(150, 400)):
        ago = rng.choice([0, 0, 0, rng.uniform(0, 60), rng.uniform(60, 1400), -rng.uniform(0, 1)])  # minutes
        score = 1.5 if rng.random() < 0.01 else round(rng.random(), 3)
        features = {"x": round(rng.gauss(25, 10), 2) if rng.random() > 0.05 else None,
                    "c": rng.choice(["a", "b", "c", "zzz"])}
        if rng.random() < 0.06:
            # what _as_float8(features->>'x') reads as missing or as a number
            features["x"] = rng.choice(["n/a", " 12.5 ", "0x1A", "1e400", "NaN", "-Infinity", True,
                                        [1], {"v": 2}, 1e300, -0.0, 25])
        if rng.random() < 0.02:
            features = None
        rows.append((model, "v2" if rng.random() < 0.25 else "v1", f"r{rnd}-{i}", ago, score,
                     json.dumps(features) if features else None))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, features) "
                        "VALUES (%s, %s, %s, now() - %s * interval '1 minute', %s, %s)", rows)
    # labels for a share of the predictions not yet labelled, of any age
    conn.execute("""INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
                    SELECT p.id, random() < p.score,
                           greatest(p.predicted_at, now() + CASE WHEN random() < 0.05 THEN interval '2 seconds'
                                                                 ELSE interval '0' END)
                      FROM retrain.predictions p
                     WHERE p.model = %s AND random() < 0.3
                       AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id)""", (model,))


def test_rollups_equal_rows_through_folds():
    rng = random.Random(SEED)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    model = "prop_rollups"
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    for v in ("v1", "v2"):
        conn.execute("SELECT retrain.register_version(%s, %s, 's3://m', encode(sha256(%s::bytea), 'hex'), '{\"auc\": 0.8}')",
                     (model, v, v))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("CREATE TEMP TABLE prop_train AS SELECT 25 + 10 * sin(i) AS x, "
                 "(ARRAY['a', 'b', 'c'])[1 + i % 3] AS c FROM generate_series(1, 500) i")
    for v in ("v1", "v2"):
        conn.execute("SELECT retrain.capture_baseline(%s, %s, 'prop_train', '{x, c}')", (model, v))
    conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"drift": {"window": "1 day"},
                    "confidence": {"min": 0.6, "window": "1 day"},
                    "performance": {"metric": "auc", "max_drop": 0.05, "window": "1 day"}},
                    "rollups": {"bucket": "10 minutes", "settle": "1 second"}}')""", (model,))
    checked = 0
    writer = None
    for rnd in range(8):
        traffic(conn, rng, model, rnd)
        if rnd == 3:
            # a transaction writes and stays open across the next fold
            writer = connect(autocommit=False)
            writer.execute("INSERT INTO retrain.predictions (model, version, unit_key, score) "
                           "VALUES (%s, 'v1', 'open', 0.42)", (model,))
        if rnd == 5 and writer is not None:
            writer.commit()
            writer.close()
        time.sleep(1.2)
        conn.execute("SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,))
        for version in ("v1", "v2"):
            for metric in METRICS:
                rolled, direct = compare(conn, model, version, metric)
                assert same(rolled, direct, metric), (rnd, version, metric, rolled, direct)
                checked += 1
    assert scalar(conn, "SELECT count(*) FROM retrain.rollups WHERE model = %s", (model,)) > 20
    assert scalar(conn, "SELECT count(*) FROM retrain.predictions WHERE unit_key = 'open'") == 1
    print(f"    {checked} comparisons over 8 folds, "
          f"{scalar(conn, 'SELECT count(*) FROM retrain.predictions WHERE model = %s', (model,))} predictions",
          flush=True)
    conn.close()


def test_a_fold_never_commits_between_a_reads_marks_and_rows():
    """A read of the rollups takes the marks (which rows they hold) and then
    the rest from the rows: a fold committing in between would count its
    rows twice.  So a read while another transaction folds the model is
    answered from the rows, at once, and a fold while a transaction reads
    the rollups skips the model."""
    conn = connect()
    model = "prop_lock"
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', encode(sha256('v1'::bytea), 'hex'), '{}')",
                 (model,))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"confidence": {"min": 0.6, "window": "1 day"},
                    "performance": {"metric": "f1", "max_drop": 0.05, "window": "1 day"}},
                    "rollups": {"bucket": "10 minutes", "settle": "1 second"}}')""", (model,))

    def log(n):
        conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score)
                        SELECT %s, 'v1', 'u' || i, now() - i * interval '1 second', random()
                          FROM generate_series(1, %s) i""", (model, n))
        time.sleep(1.2)

    # (without a drift trigger, the rows' figures carry an empty drift list)
    window = ("SELECT retrain._rollup_window(m, retrain.effective_policy(m.name)->'triggers', 'v1', now()), "
              "retrain._window(m, retrain.effective_policy(m.name)->'triggers', 'v1', now()) - 'drift' "
              "FROM retrain.models m WHERE m.name = %s")
    log(200)
    assert scalar(conn, "SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,)) > 0
    log(50)
    folder = connect(autocommit=False)
    assert scalar(folder, "SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,)) > 0
    # the fold holds its lock until it commits: the read does not wait for it
    conn.execute("SET statement_timeout = '5s'")
    started = time.monotonic()
    rolled, direct = conn.execute(window, (model,)).fetchone()
    assert rolled is None and direct["predictions"] == 250, (rolled, direct)
    assert time.monotonic() - started < 2
    folder.commit()
    rolled, direct = conn.execute(window, (model,)).fetchone()
    assert rolled == direct and direct["predictions"] == 250, (rolled, direct)

    # a transaction reading the rollups keeps the next fold off the model
    reader = connect(autocommit=False)
    assert reader.execute(window, (model,)).fetchone()[0]["predictions"] == 250
    log(30)
    until = scalar(conn, "SELECT computed_until FROM retrain.rollup_marks WHERE model = %s", (model,))
    assert scalar(conn, "SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,)) == 0
    assert scalar(conn, "SELECT computed_until FROM retrain.rollup_marks WHERE model = %s", (model,)) == until
    reader.commit()
    assert scalar(conn, "SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,)) > 0
    rolled, direct = conn.execute(window, (model,)).fetchone()
    assert rolled == direct and direct["predictions"] == 280, (rolled, direct)
    for c in (folder, reader, conn):
        c.close()


run_suite(globals())
