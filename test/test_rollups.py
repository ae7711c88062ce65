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
confusion family exactly; Brier, log loss and confidence to 1e-12.  So must
the rollout guard's figures over ranges that start inside a bucket and end
now or in the past: counts, invalid scores, error rate and metric as over
the rows, the latency percentile (NULL, zero and log-normal latencies)
within 1/101 of percentile_cont's.
"""

import json
import os
import random
import re
import time
from datetime import datetime, timedelta, timezone

from testlib import connect, expect_error, run_suite, scalar

SEED = int(os.environ.get("RETRAIN_TEST_SEED", "20261201"))
METRICS = ["auc", "f1", "precision", "recall", "accuracy", "brier", "log_loss"]
CLOSE = {"brier", "log_loss", "mae", "rmse"}


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


def figures_equal(conn, models):
    """Each model's figures of v1 and v2, every metric of METRICS, the same
    from its rollups as from its rows."""
    for model in models:
        for version in ("v1", "v2"):
            for metric in METRICS:
                rolled, direct = compare(conn, model, version, metric)
                assert rolled["drift"] and same(rolled, direct, metric), (model, version, metric, rolled, direct)


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


def guard_compare(conn, model, version, metric, since_ago, until_ago):
    """(rollups, rows) figures of the rollout guard over predictions made
    from since_ago to until_ago minutes ago, outcomes as of now."""
    return conn.execute(
        """SELECT retrain._guard_rolled_figures(m, %(v)s, p.pol, x.at - %(s)s * interval '1 minute',
                                                x.at - %(u)s * interval '1 minute', x.at),
                  retrain._guard_figures(m, %(v)s, p.pol, x.at - %(s)s * interval '1 minute',
                                         x.at - %(u)s * interval '1 minute', x.at)
             FROM retrain.models m,
                  LATERAL (SELECT jsonb_set(retrain.effective_policy(m.name), '{rollback,metric}',
                                            to_jsonb(%(metric)s::text)) AS pol) p,
                  LATERAL (SELECT clock_timestamp() AS at) x
            WHERE m.name = %(m)s""",
        {"m": model, "v": version, "metric": metric, "s": since_ago, "u": until_ago}).fetchone()


def guard_same(rolled, direct, metric):
    """Counts, error rate, metric as over the rows; latency within 1/101."""
    assert rolled is not None, "the rollups did not answer"
    assert rolled.pop("latency_approx") is True
    a, b = rolled.pop("latency"), direct.pop("latency")
    if (a is None) != (b is None) or (b is not None and abs(a - b) > abs(b) / 101 + 1e-9):
        return False
    a, b = rolled.pop("metric"), direct.pop("metric")
    if metric in CLOSE and a is not None and b is not None:
        if abs(a - b) > 1e-12 * max(1.0, abs(b)):
            return False
    elif a != b:
        return False
    return rolled == direct


def explained(conn):
    """The plans of every statement the connection runs from now on, nested
    ones too (auto_explain, as notices), with their row counts."""
    plans = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary))
    conn.execute("LOAD 'auto_explain'")
    for k, v in {"log_min_duration": "0", "log_nested_statements": "on", "log_level": "notice",
                 "log_analyze": "on", "log_timing": "off"}.items():
        conn.execute(f"SET auto_explain.{k} = {v}")
    return plans


def one_version_model(conn, model):
    """A classifier with v1 in production, a day's windows and rollups in
    10-minute buckets that settle in a second."""
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', repeat('a', 64), '{\"auc\": 0.8}')", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"drift": {"window": "1 day"},
                    "confidence": {"min": 0.6, "window": "1 day"},
                    "performance": {"metric": "auc", "max_drop": 0.05, "window": "1 day"}},
                    "rollups": {"bucket": "10 minutes", "settle": "1 second"}}')""", (model,))


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
        latency = rng.choice([None, 0.0] + [round(rng.lognormvariate(3, 1.2), 3)] * 18)
        rows.append((model, "v2" if rng.random() < 0.25 else "v1", f"r{rnd}-{i}", ago, score,
                     json.dumps(features) if features else None, latency, rng.random() < 0.04))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO retrain.predictions "
                        "(model, version, unit_key, predicted_at, score, features, latency_ms, error) "
                        "VALUES (%s, %s, %s, now() - %s * interval '1 minute', %s, %s, %s, %s)", rows)
    # labels for a share of the predictions not yet labelled, of any age
    conn.execute("""INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
                    SELECT p.id, random() < p.score,
                           greatest(p.predicted_at, now() + CASE WHEN random() < 0.05 THEN interval '2 seconds'
                                                                 ELSE interval '0' END)
                      FROM retrain.predictions p
                     WHERE p.model = %s AND random() < 0.3
                       AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id)""", (model,))


def versioned_model(conn, model):
    """A classifier with versions v1 (in production) and v2, both baselined
    on a numeric feature x and a categorical c, and triggers over one day's
    window kept in 10-minute buckets (rollups.settle one second)."""
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    for v in ("v1", "v2"):
        conn.execute("SELECT retrain.register_version(%s, %s, 's3://m', encode(sha256(%s::bytea), 'hex'), "
                     "'{\"auc\": 0.8}')", (model, v, v))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS prop_train AS SELECT 25 + 10 * sin(i) AS x, "
                 "(ARRAY['a', 'b', 'c'])[1 + i % 3] AS c FROM generate_series(1, 500) i")
    for v in ("v1", "v2"):
        conn.execute("SELECT retrain.capture_baseline(%s, %s, 'prop_train', '{x, c}')", (model, v))
    conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"drift": {"window": "1 day"},
                    "confidence": {"min": 0.6, "window": "1 day"},
                    "performance": {"metric": "auc", "max_drop": 0.05, "window": "1 day"}},
                    "rollups": {"bucket": "10 minutes", "settle": "1 second"}}')""", (model,))


def test_rollups_equal_rows_through_folds():
    rng = random.Random(SEED)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    model = "prop_rollups"
    versioned_model(conn, model)
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
            # the guard's figures over ranges that start and end inside
            # buckets, up to now or ending in the past
            for metric in ("auc", "f1", "log_loss"):
                since = rng.uniform(3, 1300)
                until = rng.choice([0, 0, rng.uniform(0, since)])
                rolled, direct = guard_compare(conn, model, version, metric, since, until)
                assert direct.get("errors") in (None, {}), direct
                direct.pop("errors", None)
                assert guard_same(rolled, direct, metric), (rnd, version, metric, since, until, rolled, direct)
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


def test_guard_decides_from_rollups_as_from_rows():
    """The rollout guard reads a canary's figures through the rollups (here
    all in the canary's first, partial bucket, read from the rows into the
    same states; test_a_long_canary_is_judged_from_rollups reads stored
    buckets); its latency percentile, within 1/101 there, is read again
    with percentile_cont when it is near its limit, so a canary exactly at the limit is kept and one just
    over it is rolled back, quoting percentile_cont's figures; far from the
    limit the approximate figure decides, and is logged as such."""
    conn = connect()

    def canary(model, latency):
        conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
        conn.execute("SELECT retrain.register_version(%s, v, 's3://m', encode(sha256(v::bytea), 'hex'), '{}') "
                     "FROM unnest('{v1, v2}'::text[]) v", (model,))
        conn.execute("""SELECT retrain.set_policy(%s, '{"rollout": {"steps": [10, 100], "dwell": ["1 hour"]},
                        "rollback": {"max_error_rate": 0.05, "max_latency_increase": 0.5, "latency_percentile": 90,
                                     "min_predictions": 100},
                        "rollups": {"bucket": "10 minutes", "settle": "1 second"}}')""", (model,))
        conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
        conn.execute("SELECT retrain.promote(%s, 'v2', 'canary', override_reason => 'test')", (model,))
        # production answers in 10 ms (a tenth in 4 ms), the canary in
        # `latency` (a tenth in 5 ms); 2% errors each
        conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, score, latency_ms, error)
                        SELECT %s, v, v || i, (i %% 100) / 100.0,
                               CASE WHEN i %% 10 = 0 THEN CASE v WHEN 'v1' THEN 4 ELSE 5 END
                                    WHEN v = 'v1' THEN 10 ELSE %s END, i %% 50 = 0
                          FROM generate_series(1, 1000) i, unnest('{v1, v2}'::text[]) v""", (model, latency))
        time.sleep(1.2)
        assert scalar(conn, "SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,)) > 0
        decision, reason = conn.execute("SELECT decision, reason FROM retrain.guard_rollouts(clock_timestamp()) "
                                        "WHERE model = %s", (model,)).fetchone()
        figures = scalar(conn, "SELECT details FROM retrain.log WHERE model = %s AND event = 'guard' "
                               "ORDER BY id DESC LIMIT 1", (model,))
        return decision, reason, figures

    # far below the limit (15 ms): the rollups decide
    decision, reason, figures = canary("prop_guard_far", 12)
    assert decision == "hold", (decision, reason)
    assert figures["canary"]["latency_approx"] is True and figures["production"]["latency_approx"] is True, figures
    assert abs(figures["canary"]["latency"] - 12) <= 12 / 101 and abs(figures["production"]["latency"] - 10) <= 10 / 101
    assert figures["canary"]["n"] == 1000 and figures["canary"]["error_rate"] == 0.02, figures
    # exactly at it: kept, on percentile_cont's figures
    decision, reason, figures = canary("prop_guard_at", 15)
    assert decision == "hold", (decision, reason)
    assert "latency_approx" not in figures["canary"] and "latency_approx" not in figures["production"], figures
    assert figures["canary"]["latency"] == 15 and figures["production"]["latency"] == 10, figures
    # 0.4% over it, less than the approximation's error: rolled back
    decision, reason, figures = canary("prop_guard_over", 15.06)
    assert decision == "rollback", (decision, reason)
    assert reason == "p90 latency 15.1 ms > 15.0 ms (production 10.0 ms + 50%)", reason
    assert figures["canary"]["latency"] == 15.06, figures
    conn.close()


def test_a_long_canary_is_judged_from_rollups():
    """A canary with three days of dwell runs longer than the trigger
    windows and the guard's watch: the rollups are kept from its promotion
    on, so that the guard still reads its figures (and production's over
    the same time) from them, three days on."""
    conn = connect()
    model = "prop_long_canary"
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    conn.execute("SELECT retrain.register_version(%s, v, 's3://m', encode(sha256(v::bytea), 'hex'), '{}') "
                 "FROM unnest('{v1, v2}'::text[]) v", (model,))
    conn.execute("""SELECT retrain.set_policy(%s, '{"rollout": {"steps": [10, 100], "dwell": ["7 days"]},
                    "rollups": {"bucket": "1 hour", "settle": "1 second"}}')""", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v2', 'canary', override_reason => 'test')", (model,))
    conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms)
                    SELECT %s, CASE WHEN i %% 10 = 0 THEN 'v2' ELSE 'v1' END, 'u' || i,
                           now() + i * interval '1 minute', (i %% 100) / 100.0, 10 + i %% 7
                      FROM generate_series(1, 4300) i""", (model,))
    time.sleep(1.2)
    at = scalar(conn, "SELECT now() + interval '3 days'")
    assert scalar(conn, "SELECT retrain._fold_rollups(%s, %s)", (model, at)) > 0
    rolled = scalar(conn, """SELECT retrain._guard_rolled_figures(m, 'v2', retrain.effective_policy(m.name),
                                                                  (SELECT max(l.at) FROM retrain.log l
                                                                    WHERE l.model = m.name AND l.version = 'v2'
                                                                      AND l.event = 'promoted'), %s, %s)
                               FROM retrain.models m WHERE m.name = %s""", (at, at, model))
    assert rolled is not None and rolled["n"] == 430, rolled
    decision, reason = conn.execute("SELECT decision, reason FROM retrain.guard_rollouts(%s) WHERE model = %s",
                                    (at, model)).fetchone()
    assert decision == "hold", (decision, reason)
    details = scalar(conn, "SELECT details FROM retrain.log WHERE model = %s AND event = 'guard' "
                           "ORDER BY id DESC LIMIT 1", (model,))
    assert details["canary"]["latency_approx"] is True and details["production"]["n"] == 3870, details
    # rollups damaged: the guard still decides, from the rows, and the
    # server's log says why
    conn.execute("UPDATE retrain.rollups SET latency = '\\x01' WHERE model = %s", (model,))
    warnings = []
    conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
    decision, reason = conn.execute("SELECT decision, reason FROM retrain.guard_rollouts(%s) WHERE model = %s",
                                    (at, model)).fetchone()
    assert decision == "hold", (decision, reason)
    details = scalar(conn, "SELECT details FROM retrain.log WHERE model = %s AND event = 'guard' "
                           "ORDER BY id DESC LIMIT 1", (model,))
    assert "latency_approx" not in details["canary"] and details["canary"]["n"] == 430, details
    assert any(f'the rollups of model "{model}" are damaged' in w for w in warnings), warnings
    conn.close()


def test_guard_watches_a_new_production_version_from_rollups():
    """A production version under watch is compared with the version it
    replaced over as long before the swap as it has run since: a range
    that ends in the past, read from the rollups too.  Ten per cent errors
    roll it back; the figures of both come from the rollups (the latency,
    far from its limit, stays approximate) and equal the rows'."""
    conn = connect()
    model = "prop_watch"
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    conn.execute("SELECT retrain.register_version(%s, v, 's3://m', encode(sha256(v::bytea), 'hex'), '{}') "
                 "FROM unnest('{v1, v2}'::text[]) v", (model,))
    conn.execute("""SELECT retrain.set_policy(%s, '{"rollups": {"bucket": "10 minutes", "settle": "1 second"},
                    "rollback": {"latency_percentile": 95}}')""", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("UPDATE retrain.production_history SET started_at = now() - interval '3 days' WHERE model = %s",
                 (model,))
    conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms, error)
                    SELECT %s, 'v1', 'a' || i, now() - interval '40 minutes' + i * interval '1 second',
                           (i %% 100) / 100.0, 15 + i %% 10, i %% 100 = 0
                      FROM generate_series(1, 2000) i""", (model,))
    conn.execute("SELECT retrain.promote(%s, 'v2', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("""INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms, error)
                    SELECT %s, 'v2', 'b' || i, now() + i * interval '1 second', (i %% 100) / 100.0, 16 + i %% 10,
                           i %% 10 = 0
                      FROM generate_series(1, 600) i""", (model,))
    time.sleep(1.2)
    at = scalar(conn, "SELECT now() + interval '11 minutes'")
    assert scalar(conn, "SELECT retrain._fold_rollups(%s, %s)", (model, at)) > 0
    rolled, direct = conn.execute(
        """SELECT retrain._guard_rolled_figures(m, 'v1', p, h.started_at - (%(at)s - h.started_at), h.started_at, %(at)s),
                  retrain._guard_figures(m, 'v1', p, h.started_at - (%(at)s - h.started_at), h.started_at, %(at)s)
             FROM retrain.models m, retrain.effective_policy(m.name) p, retrain.production_history h
            WHERE m.name = %(m)s AND h.model = m.name AND h.version = 'v2'""", {"m": model, "at": at}).fetchone()
    assert rolled is not None and rolled["n"] == direct["n"] > 200, (rolled, direct)
    decision, reason = conn.execute("SELECT decision, reason FROM retrain.guard_rollouts(%s) WHERE model = %s",
                                    (at, model)).fetchone()
    assert decision == "rollback" and reason.startswith("error rate 0.1"), (decision, reason)
    details = scalar(conn, "SELECT details FROM retrain.log WHERE model = %s AND event = 'guard' "
                           "ORDER BY id DESC LIMIT 1", (model,))
    assert details["watch"] is True, details
    assert details["previous"]["latency_approx"] is True and details["production"]["latency_approx"] is True, details
    assert details["previous"]["n"] == direct["n"] and details["previous"]["error_rate"] == direct["error_rate"], details
    assert scalar(conn, "SELECT production_version FROM retrain.deployments WHERE model = %s", (model,)) == "v1"
    conn.close()


# The rollup columns whose bytes depend on the order rows are added in
# (a ranking state lists its scores as they came; a compensated sum's last
# bits), compared through what is read from them.
ROLLED = """SELECT r.model, r.version, r.bucket_start, r.predictions, r.invalid, r.labelled, r.confusion::text,
                   r.latency, r.errors, r.error_known, r.bad_scores, r.features, r.last_predicted_at,
                   (SELECT retrain._auc_merged(x) FROM (VALUES (r.rank_state)) v(x)),
                   (SELECT retrain._average_precision_merged(x) FROM (VALUES (r.rank_state)) v(x)),
                   (SELECT retrain._mean_loss_merged(x) FROM (VALUES (r.confidence)) v(x)),
                   (SELECT retrain._mean_loss_merged(x) FROM (VALUES (r.brier)) v(x)),
                   (SELECT retrain._mean_loss_merged(x) FROM (VALUES (r.log_loss)) v(x)),
                   (SELECT retrain._mean_loss_merged(x) FROM (VALUES (r.mae)) v(x)),
                   (SELECT retrain._rmse_merged(x) FROM (VALUES (r.rmse)) v(x))
              FROM retrain.rollups r WHERE r.model LIKE 'many\\_%' ORDER BY 1, 2, 3"""
MARKS = "SELECT * FROM retrain.rollup_marks WHERE model LIKE 'many\\_%' ORDER BY model"


def rows_equal(a, b):
    """Rollup rows (ROLLED) the same: exactly, the mean losses to 1e-12."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x[:15] != y[:15]:
            return False
        for p, q in zip(x[15:], y[15:]):
            if (p is None) != (q is None) or (p is not None and abs(p - q) > 1e-12 * max(1.0, abs(q))):
                return False
    return True


def regression_traffic(conn, rng, model, rnd):
    rows = []
    for i in range(rng.randint(100, 250)):
        ago = rng.choice([0, 0, rng.uniform(0, 60), rng.uniform(60, 1400)])
        score = round(rng.gauss(50, 20), 3)
        x = rng.choice([None, "n/a", round(rng.gauss(25, 10), 2), round(rng.gauss(25, 10), 2)])
        rows.append((model, "v2" if rng.random() < 0.3 else "v1", f"r{rnd}-{i}", ago, score,
                     json.dumps({"x": x}), round(rng.lognormvariate(3, 1), 3)))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, features, "
                        "latency_ms) VALUES (%s, %s, %s, now() - %s * interval '1 minute', %s, %s, %s)", rows)
    conn.execute("""INSERT INTO retrain.outcomes (prediction_id, actual, observed_at)
                    SELECT p.id, p.score + 10 * random(),
                           greatest(p.predicted_at, now())
                      FROM retrain.predictions p
                     WHERE p.model = %s AND random() < 0.3
                       AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id)""", (model,))


def test_the_cycles_fold_of_many_models_equals_one_by_one():
    """The cycle folds the models kept from retrain.predictions together
    (_fold_cycle), in a few statements whose thresholds and features are
    columns: round after round of new predictions, late labels and NULL,
    non-numeric features and out-of-range scores, an outcome logged before
    its prediction, for two classifiers with other thresholds
    and features and a regression model, each with two versions, the
    rollups and marks it leaves equal those of folding each model alone at
    the same time.  A model not folded yet, and one whose baseline changed,
    are folded from their whole windows with the others (_fold_first), to
    the rollups of their own first fold; a model with a categorical baseline
    and one being read elsewhere are left to their own fold; a model the
    cycle folded needs no fold of its own until its rollups are a settle
    time behind."""
    rng = random.Random(SEED + 7)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    conn.execute("CREATE TEMP TABLE many_train AS SELECT 25 + 10 * sin(i) AS x, 25 + 12 * cos(i) AS y, "
                 "(ARRAY['a', 'b', 'c'])[1 + i % 3] AS c FROM generate_series(1, 500) i")
    models = {"many_cls": ("binary_classification", "{x}", 0.5), "many_cls2": ("binary_classification", "{x, y}", 0.3),
              "many_reg": ("regression", "{x}", None), "many_cat": ("binary_classification", "{x, c}", 0.5),
              "many_locked": ("binary_classification", "{x}", 0.5), "many_late": ("binary_classification", "{x}", 0.5),
              "many_rebased": ("binary_classification", "{x}", 0.5)}
    for model, (task, features, threshold) in models.items():
        conn.execute("SELECT retrain.register_model(%s, %s)", (model, task))
        for v in ("v1", "v2"):
            conn.execute("SELECT retrain.register_version(%s, %s, 's3://m', encode(sha256(%s::bytea), 'hex'), '{}')",
                         (model, v, model + v))
            conn.execute("SELECT retrain.capture_baseline(%s, %s, 'many_train', %s)", (model, v, features))
        conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
        performance = ('{"metric": "mae", "max_drop": 1, "window": "1 day"}' if task == "regression" else
                       '{"metric": "f1", "max_drop": 0.05, "threshold": %s, "window": "1 day"}' % threshold)
        conn.execute("SELECT retrain.set_policy(%s, %s)", (model, '{"triggers": {"drift": {"window": "1 day"}, '
                     '"performance": ' + performance + '}, "rollups": {"bucket": "10 minutes", "settle": "1 second"}}'))

    def traffic_all(rnd):
        for model, (task, _, _) in models.items():
            # around where the day's window starts: a partial bucket read
            # from the rows
            conn.execute("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, features) "
                         "SELECT %s, 'v1', 'edge' || i, now() - interval '1 day' + (random() * 30 - 10) * interval '1 minute', "
                         "round(random()::numeric, 3), jsonb_build_object('x', round((random() * 50)::numeric, 2)) "
                         "FROM generate_series(1, 20) i", (model,))
            if task == "regression":
                regression_traffic(conn, rng, model, rnd)
            else:
                traffic(conn, rng, model, rnd)
                if model == "many_cls2":
                    conn.execute("UPDATE retrain.predictions SET features = features || jsonb_build_object('y', "
                                 "round((random() * 50)::numeric, 2)) WHERE model = %s AND features IS NOT NULL "
                                 "AND NOT features ? 'y'", (model,))

        # a version nobody registered (written past log_prediction): both
        # folds leave its rows out, also its outcome arriving a round later
        for model in ("many_cls", "many_reg"):
            conn.execute("INSERT INTO retrain.predictions (model, version, unit_key, score, features) "
                         "VALUES (%s, 'v9', %s, 0.7, '{\"x\": 3}')", (model, f"v9-{rnd}"))
            conn.execute("INSERT INTO retrain.outcomes (prediction_id, label, actual) "
                         "SELECT id, CASE WHEN %s THEN true END, CASE WHEN NOT %s THEN 1.5 END "
                         "FROM retrain.predictions p WHERE model = %s AND version = 'v9' AND unit_key = %s "
                         "AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id)",
                         (model == "many_cls", model == "many_cls", model, f"v9-{rnd - 1}"))
        # an outcome logged before its prediction (written with an earlier
        # logged_at, as a statement that began before the prediction's and
        # saw it committed would write it): found with its prediction
        conn.execute("INSERT INTO retrain.predictions (model, version, unit_key, score, features) "
                     "VALUES ('many_cls', 'v1', %s, 0.9, '{\"x\": 4}')", (f"early-{rnd}",))
        conn.execute("INSERT INTO retrain.outcomes (prediction_id, label, logged_at) "
                     "SELECT id, false, logged_at - interval '1 minute' FROM retrain.predictions "
                     "WHERE model = 'many_cls' AND unit_key = %s", (f"early-{rnd}",))

    traffic_all(0)
    time.sleep(1.2)
    for model in models:
        if model != "many_late":
            assert scalar(conn, "SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,)) > 0
    together = {"many_cls", "many_cls2", "many_reg"}
    # many_late's first fold in the first round, many_rebased's second
    # in the third (a new baseline), the others' folds of new rows
    folds = together | {"many_late", "many_rebased"}
    for rnd in range(1, 6):
        traffic_all(rnd)
        if rnd == 3:
            conn.execute("SELECT retrain.capture_baseline('many_rebased', 'v1', 'many_train', '{x}')")
        time.sleep(1.2)
        at = scalar(conn, "SELECT clock_timestamp()")
        reader = connect(autocommit=False)
        reader.execute("SELECT pg_advisory_xact_lock_shared(hashtext('retrain rollups'), hashtext('many_locked'))")
        results = []
        for how in ("cycle", "one by one"):
            with conn.transaction(force_rollback=True):
                if how == "cycle":
                    marks = "SELECT model, computed_until FROM retrain.rollup_marks WHERE model LIKE 'many\\_%'"
                    before = dict(conn.execute(marks).fetchall())
                    assert scalar(conn, "SELECT retrain._fold_cycle(%s)", (at,)) >= len(together)
                    folded = {m for m, until in conn.execute(marks).fetchall() if before.get(m) != until}
                    assert folded == folds, folded
                else:
                    for model in folds:
                        conn.execute("SELECT retrain._fold_rollups(%s, %s)", (model, at))
                results.append((conn.execute(ROLLED).fetchall(), conn.execute(MARKS).fetchall()))
        reader.rollback()
        reader.close()
        assert len(results[0][0]) > 30
        assert rows_equal(results[0][0], results[1][0]), rnd
        assert results[0][1] == results[1][1], rnd
        # the cycle's fold, kept; the windows then read from its rollups
        # (the edges with a plan kept for the session, _read_planned) are
        # the rows' figures
        conn.execute("SELECT retrain._fold_cycle(%s)", (at,))
        for model in sorted(folds):
            for version in ("v1", "v2"):
                for metric in (["mae", "rmse"] if model == "many_reg" else ["f1", "auc", "brier"]):
                    rolled, direct = compare(conn, model, version, metric)
                    assert rolled["drift"] and same(rolled, direct, metric), (rnd, model, version, metric,
                                                                              rolled, direct)
        # current as of the fold's time (a check at most a settle time
        # later skips its own fold)
        for model in folds:
            assert scalar(conn, "SELECT retrain._rollups_current(%s, %s)", (model, at)) is True, model
    # more than a settle time (1 s) after the fold, the rollups are no
    # longer current: a model's checks fold it again
    assert scalar(conn, "SELECT retrain._rollups_current('many_cls', %s + interval '1.1 seconds')", (at,)) is False
    conn.close()


def test_new_labels_are_counted_from_one_index_range():
    """The labels a check counts since the last training come from one
    range of outcomes_model_observed (_labels_observed, C), whatever the
    planner would have guessed: here the outcomes are neither vacuumed (a
    bitmap scan of the model's every outcome looked cheaper) nor in any
    order but observed_at's (a scan of outcomes_observed_at, filtering out
    the other model's labels, looked cheaper still).  The count is the
    query's at the bounds (since excluded, at included), with rows deleted,
    updated in place and out of the range, and rows another transaction
    has not committed; the statement scans that index once and nothing
    else."""
    conn = connect()
    models = ["labels_plan_a", "labels_plan_b"]
    for model in models:
        conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
        conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', repeat('a', 64), '{\"f1\": 0.8}')",
                     (model,))
        conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
    conn.execute("INSERT INTO retrain.predictions (model, version, unit_key, score) "
                 "SELECT (%s::text[])[1 + i %% 2], 'v1', 'u' || i, random() FROM generate_series(1, 60000) i",
                 (models,))
    t0 = scalar(conn, "SELECT date_trunc('second', now()) - interval '1 day'")
    conn.execute("INSERT INTO retrain.outcomes (prediction_id, label, observed_at) "
                 "SELECT id, random() < score, %s + (id %% 7) * interval '1 second' FROM retrain.predictions "
                 "WHERE model = ANY (%s) ORDER BY id", (t0, models))
    conn.execute("ANALYZE retrain.predictions, retrain.outcomes")
    # a row deleted, rows updated in place (the label) and out of the range
    conn.execute("DELETE FROM retrain.outcomes WHERE prediction_id = (SELECT min(prediction_id) "
                 "FROM retrain.outcomes WHERE model = 'labels_plan_a')")
    conn.execute("UPDATE retrain.outcomes SET label = NOT label WHERE model = 'labels_plan_a' "
                 "AND prediction_id % 97 = 0")
    conn.execute("UPDATE retrain.outcomes SET observed_at = observed_at + interval '1 hour' "
                 "WHERE model = 'labels_plan_a' AND prediction_id % 89 = 0")
    other = connect(autocommit=False)
    other.execute("INSERT INTO retrain.outcomes (prediction_id, label, observed_at) "
                  "SELECT id, true, %s FROM retrain.predictions p WHERE model = 'labels_plan_a' "
                  "AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id) LIMIT 5", (t0,))
    query = ("SELECT count(*) FROM retrain.outcomes o WHERE o.model = %s "
             "AND o.observed_at > %s AND o.observed_at <= %s")
    second, hour = timedelta(seconds=1), timedelta(hours=1)
    inf, neg = datetime.max.replace(tzinfo=timezone.utc), datetime.min.replace(tzinfo=timezone.utc)
    bounds = [(neg, inf), (t0, t0 + 3 * second), (t0 - timedelta(microseconds=1), t0),
              (t0 + 3 * second, t0 + 3 * second), (t0 + 4 * second, t0 + 2 * second),
              (t0 + 6 * second, t0 + 2 * hour), (t0 + hour + 2 * second, t0 + hour + 4 * second)]
    for model in models + ["labels_plan_none"]:
        for since, at in bounds:
            counted = scalar(conn, "SELECT retrain._labels_observed(%s, %s, %s)", (model, since, at))
            assert counted == scalar(conn, query, (model, since, at)), (model, since, at, counted)
    assert scalar(conn, "SELECT retrain._labels_observed('labels_plan_a', '-infinity', 'infinity')") == 29999
    assert scalar(conn, "SELECT retrain._labels_observed('labels_plan_a', NULL, now())") is None
    assert scalar(conn, "SELECT retrain._labels_observed(NULL, '-infinity', now())") is None
    # one index range, nothing else (the statistics a new session has not
    # yet sent: its own reads alone)
    fresh = connect()
    with fresh.transaction():
        counted = scalar(fresh, "SELECT retrain._labels_observed('labels_plan_a', %s, %s)", (t0, t0 + 3 * second))
        # every partition of outcomes, and their indexes
        scans = dict(fresh.execute("SELECT c.relname, pg_stat_get_xact_numscans(c.oid) FROM pg_class c "
                                  "WHERE c.oid IN (SELECT i.inhrelid FROM pg_inherits i "
                                  "                WHERE i.inhparent = 'retrain.outcomes'::regclass) "
                                  "   OR c.oid IN (SELECT x.indexrelid FROM pg_index x JOIN pg_inherits i "
                                  "                ON i.inhrelid = x.indrelid "
                                  "                WHERE i.inhparent = 'retrain.outcomes'::regclass)"
                                  ).fetchall())
    fresh.close()
    assert counted == scalar(conn, query, ("labels_plan_a", t0, t0 + 3 * second))
    ranges = {name: scans.pop(name) for name in list(scans) if name.endswith("_model_observed")}
    assert ranges and set(ranges.values()) == {1}, ranges
    assert set(scans.values()) == {0}, scans
    other.rollback()
    other.close()
    # check()'s figure: every label of the model since its version was registered
    at = scalar(conn, "SELECT now() + interval '1 minute'")
    figures = scalar(conn, "SELECT retrain._figures(m, '{}', mv, %s) FROM retrain.models m "
                           "JOIN retrain.model_versions mv ON mv.model = m.name AND mv.version = 'v1' "
                           "WHERE m.name = 'labels_plan_b'", (at,))
    assert figures["new_labels"] == 0, figures  # observed a day before the version was registered
    conn.execute("UPDATE retrain.outcomes SET observed_at = now() WHERE model = 'labels_plan_b' AND prediction_id % 3 = 0")
    figures = scalar(conn, "SELECT retrain._figures(m, '{}', mv, %s) FROM retrain.models m "
                           "JOIN retrain.model_versions mv ON mv.model = m.name AND mv.version = 'v1' "
                           "WHERE m.name = 'labels_plan_b'", (at,))
    assert figures["new_labels"] == scalar(conn, "SELECT count(*) FROM retrain.outcomes WHERE model = 'labels_plan_b' "
                                                 "AND prediction_id % 3 = 0") > 0, figures
    # the caller's privileges, as a query's: none, then the two columns;
    # under row-level security it leaves the count to the query (NULL)
    conn.execute("DROP ROLE IF EXISTS labels_reader")
    conn.execute("CREATE ROLE labels_reader")
    conn.execute("GRANT USAGE ON SCHEMA retrain TO labels_reader")
    conn.execute("GRANT EXECUTE ON FUNCTION retrain._labels_observed(text, timestamptz, timestamptz) TO labels_reader")
    try:
        conn.execute("SET ROLE labels_reader")
        expect_error(conn, "SELECT retrain._labels_observed('labels_plan_a', '-infinity', 'infinity')", "42501",
                     match="outcomes")
        conn.execute("RESET ROLE")
        conn.execute("GRANT SELECT (model, observed_at) ON retrain.outcomes TO labels_reader")
        conn.execute("SET ROLE labels_reader")
        assert scalar(conn, "SELECT retrain._labels_observed('labels_plan_a', '-infinity', 'infinity')") == 29999
        conn.execute("RESET ROLE")
        conn.execute("ALTER TABLE retrain.outcomes ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY labels_b ON retrain.outcomes TO labels_reader USING (model = 'labels_plan_b')")
        conn.execute("SET ROLE labels_reader")
        assert scalar(conn, "SELECT retrain._labels_observed('labels_plan_a', '-infinity', 'infinity')") is None
    finally:
        conn.execute("RESET ROLE")
        conn.execute("DROP POLICY IF EXISTS labels_b ON retrain.outcomes")
        conn.execute("ALTER TABLE retrain.outcomes DISABLE ROW LEVEL SECURITY")
        conn.execute("REVOKE ALL ON retrain.outcomes FROM labels_reader")
        conn.execute("REVOKE ALL ON FUNCTION retrain._labels_observed(text, timestamptz, timestamptz) FROM labels_reader")
        conn.execute("REVOKE ALL ON SCHEMA retrain FROM labels_reader")
        conn.execute("DROP ROLE labels_reader")
    conn.close()

def test_a_first_fold_with_workers_equals_the_rows():
    """A model's first fold reads its whole window with parallel workers
    (_states_whole), each aggregating its share of the rows by bucket (a
    partial hash aggregate: no row sorted); the figures merged from what
    they folded equal the rows' (counts, histograms, AUC and the confusion
    family exactly; Brier, log loss, confidence to 1e-12), as a fold
    without workers gives them.  A prediction made a day ahead of the
    clock lies outside the buckets the workers group by: the version's
    rows are read again by their own buckets, and it is folded too."""
    rng = random.Random(SEED + 7)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    for model in ("cold_workers", "cold_serial", "cold_ahead"):
        versioned_model(conn, model)
        for rnd in range(12):
            traffic(conn, rng, model, rnd)
    conn.execute("INSERT INTO retrain.predictions (model, version, predicted_at, score, features) "
                 "VALUES ('cold_ahead', 'v2', now() + interval '1 day', 0.4, '{\"x\": 31}')")
    # the planner knows the windows' size (a small one it rightly reads
    # without workers)
    conn.execute("ANALYZE retrain.predictions, retrain.outcomes")
    time.sleep(1.2)
    plans = explained(conn)

    def reads(model):
        del plans[:]
        # memory as short, for these few thousand rows, as a work_mem of
        # 64MB is for the bench's 100,000 a model: the planner would not
        # aggregate in the workers if it counted a bucket a row
        conn.execute("SET work_mem = '1MB'")
        conn.execute("SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,))
        conn.execute("RESET work_mem")
        return [p for p in plans if "jsonb_agg(to_jsonb(s))" in p and "FROM retrain.predictions p" in p]

    workers = reads("cold_workers")
    assert len(workers) == 2, len(workers)  # one a version
    for plan in workers:
        assert re.search(r"Workers Launched: [1-9]", plan), plan
        assert "Partial HashAggregate" in plan and not re.search(r"\bSort\b", plan), plan
    ahead = reads("cold_ahead")
    # v1 once; v2 by the buckets of its window, then by its own
    assert len(ahead) == 3, len(ahead)
    assert sum("LEFT JOIN unnest(" in p for p in ahead) == 2, ahead
    conn.execute("RESET auto_explain.log_min_duration")
    for version in ("v1", "v2"):
        folded, rows = conn.execute(
            "SELECT (SELECT sum(r.predictions) FROM retrain.rollups r WHERE r.model = 'cold_ahead' AND r.version = %(v)s), "
            "(SELECT count(*) FROM retrain.predictions p, retrain.rollup_marks mk WHERE mk.model = 'cold_ahead' "
            "   AND p.model = 'cold_ahead' AND p.version = %(v)s AND p.predicted_at >= mk.computed_from)",
            {"v": version}).fetchone()
        assert folded == rows, (version, folded, rows)
    assert scalar(conn, "SELECT count(*) FROM retrain.rollups WHERE model = 'cold_ahead' "
                        "AND bucket_start > now() + interval '23 hours'") == 1
    # the same without workers (the session allows none)
    conn.execute("SET max_parallel_workers_per_gather = 0")
    conn.execute("SELECT retrain._fold_rollups('cold_serial', clock_timestamp())")
    conn.execute("RESET max_parallel_workers_per_gather")
    figures_equal(conn, ("cold_workers", "cold_serial", "cold_ahead"))
    conn.close()


def test_the_cycles_first_folds_read_many_models_together():
    """Models with no rollups yet are folded by the cycle from their whole
    windows, many in one read of the log (_fold_first): grouped
    by (model, version, bucket) in a hash table, nothing sorted, no outcome
    looked up row by row, and the models read a few at a time (here twenty models of two versions and a week in
    10-minute buckets: two reads).  The rollups and marks equal those of
    each model's own first fold at the same time, through NULL and
    out-of-range scores, missing and non-numeric features, rows logged
    before 0.2.0 (no logged_at), labels observed after the fold's time, a
    version nobody registered, and a prediction a day ahead of the clock
    (read by a third call, by its own bucket); the figures from them are
    the rows'."""
    rng = random.Random(SEED + 11)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    conn.execute("CREATE TEMP TABLE first_train AS SELECT 25 + 10 * sin(i) AS x FROM generate_series(1, 500) i")
    models = [f"first_{i:02d}" for i in range(20)]
    for model in models:
        conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
        for v in ("v1", "v2"):
            conn.execute("SELECT retrain.register_version(%s, %s, 's3://m', encode(sha256(%s::bytea), 'hex'), '{}')",
                         (model, v, model + v))
            conn.execute("SELECT retrain.capture_baseline(%s, %s, 'first_train', '{x}')", (model, v))
        conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (model,))
        conn.execute("SELECT retrain.set_policy(%s, %s)", (model, json.dumps({
            "triggers": {"drift": {"window": "7 days"},
                         "performance": {"metric": "f1", "max_drop": 0.05, "threshold": rng.choice([0.3, 0.5]),
                                         "window": "7 days"}},
            "rollups": {"bucket": "10 minutes", "settle": "1 second"}})))
        rows = []
        for i in range(rng.randint(40, 90)):
            score = rng.choice([None, 1.5, -0.2]) if rng.random() < 0.05 else round(rng.random(), 3)
            x = rng.choice([None, "n/a", round(rng.gauss(25, 10), 2), round(rng.gauss(25, 10), 2)])
            features = None if rng.random() < 0.05 else json.dumps({"x": x})
            rows.append((model, rng.choice(["v1", "v1", "v2", "v9"]), f"u{i}", rng.uniform(0, 8 * 24 * 60), score,
                         features, rng.choice([None, round(rng.lognormvariate(3, 1), 3)])))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, features, "
                            "latency_ms) VALUES (%s, %s, %s, now() - %s * interval '1 minute', %s, %s, %s)", rows)
    # labels for some; a few observed only after the fold's time
    conn.execute("INSERT INTO retrain.outcomes (prediction_id, label, observed_at) "
                 "SELECT id, random() < coalesce(score, 0.5), CASE WHEN random() < 0.1 THEN now() + interval '1 hour' "
                 "ELSE greatest(predicted_at, now() - interval '1 hour') END "
                 "FROM retrain.predictions WHERE model LIKE 'first\\_%' AND random() < 0.4")
    # as 0.1.0 left them (the upgrade adds logged_at, NULL for its rows)
    conn.execute("UPDATE retrain.predictions SET logged_at = NULL WHERE model = 'first_03'")
    conn.execute("INSERT INTO retrain.predictions (model, version, predicted_at, score, features) "
                 "VALUES ('first_07', 'v2', now() + interval '1 day', 0.4, '{\"x\": 31}')")
    conn.execute("ANALYZE retrain.predictions, retrain.outcomes")
    time.sleep(1.2)
    at = scalar(conn, "SELECT clock_timestamp()")
    rolled = ROLLED.replace("many\\_%", "first\\_%")
    marks = MARKS.replace("many\\_%", "first\\_%")
    plans = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary))
    conn.execute("LOAD 'auto_explain'")
    results = []
    for how in ("cycle", "one by one"):
        with conn.transaction(force_rollback=True):
            if how == "cycle":
                for k, v in {"log_min_duration": "0", "log_nested_statements": "on", "log_level": "notice",
                             "log_analyze": "on", "log_timing": "off"}.items():
                    conn.execute(f"SET LOCAL auto_explain.{k} = {v}")
                # (and the models of the suite's other tests that it can fold)
                assert scalar(conn, "SELECT retrain._fold_cycle(%s)", (at,)) >= len(models)
                conn.execute("SET LOCAL auto_explain.log_min_duration = -1")
            else:
                for model in models:
                    conn.execute("SELECT retrain._fold_rollups(%s, %s)", (model, at))
            results.append((conn.execute(rolled).fetchall(), conn.execute(marks).fetchall()))
    reads = [p for p in plans if "Query Text: SELECT p.model, p.version," in p and "jsonb_to_recordset($1)" in p
             and "first_" in p]
    assert len(reads) == 3, len(reads)
    assert sum("JOIN unnest((SELECT $3))" in p for p in reads) == 2, reads
    # (these few rows are read without workers, or aggregated above them:
    # the planner rightly expects no gain; at the bench's size each worker
    # aggregates its own share, see docs/performance.md)
    for plan in reads:
        assert "HashAggregate" in plan and not re.search(r"\bSort\b|Nested Loop", plan), plan
    # the look for rows ahead of the clock probes each version by index, and
    # never hashes the whole log (as a semi-join it did: 5 s a read at the
    # bench's size)
    probes = [p for p in plans if "jsonb_to_recordset(spec) x(model text, version text, ahead timestamptz)" in p]
    assert len(probes) == 2, probes
    for plan in probes:
        assert "Limit" in plan and not re.search(r"Hash|Seq Scan on predictions", plan), plan
    assert len(results[0][1]) == len(models) and results[0][1] == results[1][1]
    assert len(results[0][0]) > 500
    assert rows_equal(results[0][0], results[1][0])
    conn.execute("SELECT retrain._fold_cycle(%s)", (at,))
    assert scalar(conn, "SELECT count(*) FROM retrain.rollups WHERE model = 'first_07' "
                        "AND bucket_start > now() + interval '23 hours'") == 1
    figures_equal(conn, ("first_03", "first_07", "first_11"))
    conn.close()


def test_a_model_far_behind_is_folded_on_its_own():
    """The cycle's fold reads the new rows of all its models from the
    earliest of their last folds.  A model whose last fold is an hour
    behind the others' (its rollups switched back on, a first fold long
    ago) is left out of it and folded on its own, which reads only its
    rows; the others are folded together; both then answer as the rows
    do."""
    rng = random.Random(SEED + 11)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    models = ("behind_far", "behind_near")
    for model in models:
        one_version_model(conn, model)
        traffic(conn, rng, model, 0)
    time.sleep(1.2)
    # the far one's last fold an hour ago, the near one's now
    conn.execute("SELECT retrain._fold_rollups('behind_far', clock_timestamp() - interval '1 hour')")
    conn.execute("SELECT retrain._fold_rollups('behind_near', clock_timestamp())")
    marks = "SELECT model, computed_until FROM retrain.rollup_marks WHERE model = ANY (%s) ORDER BY model"
    for model in models:
        traffic(conn, rng, model, 1)
    time.sleep(1.2)
    before = dict(conn.execute(marks, (list(models),)).fetchall())
    at = scalar(conn, "SELECT clock_timestamp()")
    conn.execute("SELECT retrain._fold_cycle(%s)", (at,))
    after = dict(conn.execute(marks, (list(models),)).fetchall())
    assert after["behind_far"] == before["behind_far"], (before, after)
    assert after["behind_near"] > before["behind_near"], (before, after)
    assert scalar(conn, "SELECT retrain._rollups_current('behind_far', %s)", (at,)) is False
    # its checks fold it on its own
    conn.execute("SELECT retrain._check_model('behind_far', %s)", (at,))
    assert dict(conn.execute(marks, (list(models),)).fetchall())["behind_far"] > before["behind_far"]
    for model in models:
        for metric in ("auc", "f1", "brier"):
            rolled, direct = compare(conn, model, "v1", metric)
            assert same(rolled, direct, metric), (model, metric, rolled, direct)
    conn.close()


def test_rows_logged_late_are_folded_through_their_own_index():
    """The cycle finds what arrived since a fold in two parts: the rows
    predicted since ten minutes before the fold inside
    predictions_model_time, the rows logged more than ten minutes after
    their prediction in the partial index predictions_logged_late (which
    current rows never enter, so that COPY pays for no index of them).
    Rows predicted a microsecond either side of that boundary, exactly on
    it, 20 hours before (a backfill), ahead of the clock and just now are each
    folded once: the rollups hold every row, and the figures are the
    rows'.  Neither part reads the whole log."""
    rng = random.Random(SEED + 13)
    conn = connect()
    conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
    model = "late_index"
    one_version_model(conn, model)
    traffic(conn, rng, model, 0)
    time.sleep(1.2)
    conn.execute("SELECT retrain._fold_cycle(clock_timestamp())")
    after = scalar(conn, "SELECT computed_until FROM retrain.rollup_marks WHERE model = %s", (model,))
    offsets = ["-10 minutes -1 microsecond", "-10 minutes", "-10 minutes +1 microsecond", "-9 minutes",
               "-20 hours", "-1 second", "+1 second", "+1 hour"]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms) "
                        "VALUES (%s, 'v1', %s, %s::timestamptz + %s::interval, %s, 12)",
                        [(model, f"edge{i}", after, off, round(rng.random(), 3)) for i, off in enumerate(offsets)])
    conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) SELECT id, random() < score "
                 "FROM retrain.predictions WHERE model = %s AND unit_key LIKE 'edge%%' AND random() < 0.6", (model,))
    late = scalar(conn, "SELECT count(*) FROM retrain.predictions WHERE model = %s AND unit_key LIKE 'edge%%' "
                        "AND timezone(interval '0', logged_at) > timezone(interval '0', predicted_at) + interval '10 minutes'", (model,))
    assert late == 4, late
    time.sleep(1.2)
    plans = explained(conn)
    at = scalar(conn, "SELECT clock_timestamp()")
    conn.execute("SELECT retrain._fold_cycle(%s)", (at,))
    conn.execute("SET auto_explain.log_min_duration = -1")
    # (one read a task; the suite's other models are folded too)
    reads = [p for p in plans if "Query Text: WITH x AS MATERIALIZED" in p and "UNION ALL" in p
             and "late_index" in p]
    assert len(reads) == 1, len(reads)
    # (each partition's own indexes)
    assert re.search(r"Bitmap Index Scan on predictions_\w*model_time", reads[0]), reads[0]
    assert re.search(r"Bitmap Index Scan on predictions_\w*logged_late", reads[0]), reads[0]
    assert "Seq Scan on predictions" not in reads[0], reads[0]
    # every row of the registered version is in the rollups, once (the
    # fold's horizon is after them all; the one ahead of the clock is in
    # its own bucket)
    rolled, rows = conn.execute(
        "SELECT (SELECT sum(predictions) FROM retrain.rollups WHERE model = %(m)s), "
        "       (SELECT count(*) FROM retrain.predictions WHERE model = %(m)s AND version = 'v1' "
        "           AND predicted_at >= (SELECT computed_from FROM retrain.rollup_marks WHERE model = %(m)s))",
        {"m": model}).fetchone()
    assert rolled == rows, (rolled, rows)
    for metric in ("auc", "f1", "brier"):
        got, direct = compare(conn, model, "v1", metric)
        assert same(got, direct, metric), (metric, got, direct)
    # the late rows' index takes an infinite time as any other (a
    # difference of the times would raise, and refuse the row)
    conn.execute("INSERT INTO retrain.predictions (model, version, predicted_at, logged_at, score) VALUES "
                 "('late_index_inf', 'v1', '-infinity', now(), 0.5), ('late_index_inf', 'v1', 'infinity', now(), 0.5), "
                 "('late_index_inf', 'v1', now() - interval '1 hour', 'infinity', 0.5)")
    assert conn.execute("DELETE FROM retrain.predictions WHERE model = 'late_index_inf'").rowcount == 3
    conn.close()


def test_late_outcomes_are_looked_up_by_key():
    """An outcome that arrives after its prediction was folded is joined to
    it by the prediction's key, in the one partition its predicted_at
    names, in all three places that read late outcomes: a check's window
    (_rollup_sum), the cycle's fold of many models and a model's own fold
    (_fold_arrived).  Here the predictions came in one statement, so they
    share a predicted_at: the (model, predicted_at) index, which the
    planner once chose for this lookup, matches all 2,000 of them for each
    outcome (what made the bench's cycle 20 times slower).  And the figures
    stay the rows'."""
    conn = connect()
    model = "late_batch"
    one_version_model(conn, model)
    # today's partition, its statistics taken while predicted_at was
    # nearly unique (rows spread over a minute), then the batch
    conn.execute("SELECT count(*) FROM retrain.maintain_partitions()")
    conn.execute("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms) "
                 "SELECT %s, 'v1', 's' || i, now() - interval '31 minutes' + random() * interval '1 minute', "
                 "       random(), 10 FROM generate_series(1, 20000) i", (model,))
    conn.execute("ANALYZE retrain.predictions")
    conn.execute("INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, score, latency_ms) "
                 "SELECT %s, 'v1', 'b' || i, now() - interval '30 minutes', random(), 10 "
                 "FROM generate_series(1, 2000) i", (model,))
    time.sleep(1.2)
    conn.execute("SELECT retrain._fold_cycle(clock_timestamp())")

    def outcomes(every, rest):
        conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) SELECT id, random() < score "
                     "FROM retrain.predictions WHERE model = %s AND unit_key LIKE 'b%%' AND id %% %s = %s",
                     (model, every, rest))
        time.sleep(1.2)

    def lookups(plans, what):
        """The scans of predictions in the plans that join late outcomes;
        each must run, if at all, as a probe of a partition's key."""
        joins = [p for p in plans if "p.id = o.prediction_id" in p.split("\n", 2)[1]]
        assert joins, what
        for plan in joins:
            for line in plan.splitlines():
                if re.search(r" on predictions_\w+ p", line) and "never executed" not in line:
                    assert re.search(r"Index Scan using predictions_\w+_pkey on", line), (what, line, plan)
        return joins

    outcomes(3, 0)
    plans = explained(conn)
    for metric in ("auc", "f1", "brier"):
        rolled, direct = compare(conn, model, "v1", metric)
        assert same(rolled, direct, metric), (metric, rolled, direct)
    lookups(plans, "a check's window")
    plans.clear()
    conn.execute("SELECT retrain._fold_cycle(clock_timestamp())")
    joined = lookups(plans, "the cycle's fold")
    assert any("x.model" in p for p in joined), "the cycle did not fold the model with others"
    conn.execute("SET auto_explain.log_min_duration = -1")
    outcomes(3, 1)
    conn.execute("SET auto_explain.log_min_duration = 0")
    plans.clear()
    conn.execute("SELECT retrain._fold_rollups(%s, clock_timestamp())", (model,))
    lookups(plans, "a model's own fold")
    conn.execute("SET auto_explain.log_min_duration = -1")
    for metric in ("auc", "f1", "brier"):
        rolled, direct = compare(conn, model, "v1", metric)
        assert same(rolled, direct, metric), (metric, rolled, direct)
    assert scalar(conn, "SELECT sum(labelled) FROM retrain.rollups WHERE model = %s", (model,)) == scalar(
        conn, "SELECT count(*) FROM retrain.outcomes WHERE model = %s", (model,)) > 1000
    conn.close()


def test_late_outcomes_are_read_by_index_whatever_the_statistics_say():
    """The cycle's fold reads each model's late outcomes from its indexes,
    even where a partition's statistics were taken while it held one
    model's outcomes (after a bulk load, say): the planner then expects
    every row there to be each model's, and read the whole partition once
    per model (0.55 s of the bench's 0.9 s fold).  Here the partition is
    outcomes_default (the ids are beyond every range), analyzed after one
    model's load; then four models' predictions are folded and their
    outcomes arrive late."""
    conn = connect()
    models = [f"stale_stats_{i}" for i in range(4)]
    for model in models + ["stale_stats_load"]:
        one_version_model(conn, model)
    base = 900_000_000_000
    conn.execute("INSERT INTO retrain.predictions (id, model, version, unit_key, predicted_at, score) "
                 "SELECT %s + i, 'stale_stats_load', 'v1', 'l' || i, now() - interval '2 hours', random() "
                 "FROM generate_series(1, 30000) i", (base,))
    conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) SELECT id, random() < score "
                 "FROM retrain.predictions WHERE model = 'stale_stats_load'")
    conn.execute("ANALYZE retrain.outcomes_default")
    conn.execute("INSERT INTO retrain.predictions (id, model, version, unit_key, predicted_at, score) "
                 "SELECT %s + 100000 + i, (%s::text[])[1 + i %% 4], 'v1', 'u' || i, "
                 "       now() - interval '1 hour' + i * interval '1 second', random() "
                 "FROM generate_series(1, 2000) i", (base, models))
    time.sleep(1.2)
    conn.execute("SELECT retrain._fold_cycle(clock_timestamp())")
    conn.execute("INSERT INTO retrain.outcomes (prediction_id, label) SELECT id, random() < score "
                 "FROM retrain.predictions WHERE model = ANY (%s) AND (substr(unit_key, 2)::int / 4) %% 2 = 0", (models,))
    time.sleep(1.2)
    plans = explained(conn)
    conn.execute("SELECT retrain._fold_cycle(clock_timestamp())")
    conn.execute("SET auto_explain.log_min_duration = -1")
    late = [p for p in plans if "JOIN LATERAL (SELECT * FROM retrain.outcomes o" in p.split("\n", 2)[1]]
    # (one a task: the suite's regression models are folded too)
    assert late, len(plans)
    read = [line for plan in late for line in plan.splitlines() if re.search(r" on outcomes_\w+", line)
            and "never executed" not in line]
    assert read and not [line for line in read if "Seq Scan" in line], late
    assert any(re.search(r"Bitmap Index Scan on outcomes_default_model_(logged|observed)", p) for p in late), late
    for model in models:
        for metric in ("auc", "f1", "brier"):
            rolled, direct = compare(conn, model, "v1", metric)
            assert rolled["labelled"] == 250 and same(rolled, direct, metric), (model, metric, rolled, direct)
    # (the ids far beyond the ranges are not left to other suites)
    conn.execute("DELETE FROM retrain.outcomes WHERE prediction_id > %s", (base,))
    conn.execute("DELETE FROM retrain.predictions WHERE id > %s", (base,))
    conn.close()


run_suite(globals())
