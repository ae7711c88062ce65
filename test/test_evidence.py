"""Evidence and reports cross-checked against scipy, scikit-learn and numpy.

shadow_report() on seeded data with ties, outcomes on some pairs and
unpaired predictions, read from retrain.predictions and from a set_source
relation: Spearman's coefficient against scipy.stats.spearmanr, the AUCs
against sklearn.metrics.roc_auc_score, agreement and mean absolute
difference against numpy.  smoke_test()'s p99 latency against
numpy.percentile (linear interpolation, as percentile_cont).
"""

import os

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from testlib import connect, run_suite

SEED = int(os.environ.get("RETRAIN_TEST_SEED", "20261122"))
RTOL = 1e-12
N = 3000


def close(a, b):
    return abs(a - b) <= RTOL * max(1.0, abs(b))


def shadow_data(rng):
    """Units scored by both versions at the same time, a third labelled."""
    prod = np.round(rng.random(N), 2)              # ties on purpose
    shadow = np.clip(np.round(prod + rng.normal(0, 0.15, N), 2), 0, 1)
    labelled = rng.random(N) < 0.33
    labels = rng.random(N) < prod
    return prod, shadow, labelled, labels


def expected_figures(prod, shadow, labelled, labels, threshold=0.5):
    return {
        "shadow_pairs": N,
        "shadow_labelled_pairs": int(labelled.sum()),
        "shadow_agreement": float(np.mean((shadow >= threshold) == (prod >= threshold))),
        "shadow_mean_abs_diff": float(np.mean(np.abs(shadow - prod))),
        "shadow_spearman": float(spearmanr(shadow, prod).statistic),
        "shadow_auc": float(roc_auc_score(labels[labelled], shadow[labelled])),
        "production_auc": float(roc_auc_score(labels[labelled], prod[labelled])),
    }


def setup_model(conn, name):
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (name,))
    for v in ("v1", "v2"):
        conn.execute("SELECT retrain.register_version(%s, %s, 's3://m', encode(sha256(%s::bytea), 'hex'), '{}')", (name, v, v))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (name,))
    conn.execute("SELECT retrain.promote(%s, 'v2', 'shadow', override_reason => 'test')", (name,))


def check_report(conn, name, want):
    got = conn.execute("SELECT retrain.shadow_report(%s, '2026-01-01')", (name,)).fetchone()[0]
    for key, value in want.items():
        assert key in got, (key, got)
        assert close(float(got[key]), value), (key, got[key], value)


def test_shadow_report_matches_scipy_and_sklearn():
    rng = np.random.default_rng(SEED)
    prod, shadow, labelled, labels = shadow_data(rng)
    want = expected_figures(prod, shadow, labelled, labels)
    with connect() as conn:
        setup_model(conn, "evx_log")
        with conn.cursor() as cur:
            rows = []
            for i in range(N):
                rows.append(("evx_log", "v1", f"u{i}", float(prod[i]), i))
                rows.append(("evx_log", "v2", f"u{i}", float(shadow[i]), i))
            # and shadow predictions of units production never scored
            rows += [("evx_log", "v2", f"x{i}", 0.5, i) for i in range(50)]
            cur.executemany("INSERT INTO retrain.predictions (model, version, unit_key, score, predicted_at) "
                            "VALUES (%s, %s, %s, %s, '2026-03-01'::timestamptz + %s * interval '1 second')",
                            rows)
            cur.executemany("INSERT INTO retrain.outcomes (prediction_id, label) "
                            "SELECT id, %s FROM retrain.predictions WHERE model = 'evx_log' AND version = 'v1' "
                            "AND unit_key = %s",
                            [(bool(labels[i]), f"u{i}") for i in range(N) if labelled[i]])
        check_report(conn, "evx_log", want)


def test_shadow_report_over_a_source():
    rng = np.random.default_rng(SEED + 1)
    prod, shadow, labelled, labels = shadow_data(rng)
    want = expected_figures(prod, shadow, labelled, labels)
    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS public.evx_src")
        conn.execute("CREATE TABLE public.evx_src (version text, unit_key bigint, predicted_at timestamptz, "
                     "score float8, label boolean)")
        with conn.cursor() as cur:
            rows = []
            for i in range(N):
                label = bool(labels[i]) if labelled[i] else None
                rows.append(("v1", i, float(prod[i]), label, i))
                # the label is on the served prediction only
                rows.append(("v2", i, float(shadow[i]), None, i))
            cur.executemany("INSERT INTO public.evx_src "
                            "VALUES (%s, %s, '2026-03-01'::timestamptz + %s * interval '1 second', %s, %s)",
                            [(v, u, t, s, lab) for (v, u, s, lab, t) in rows])
        setup_model(conn, "evx_src")
        conn.execute("SELECT retrain.set_source('evx_src', 'public.evx_src')")
        check_report(conn, "evx_src", want)
        conn.execute("SELECT retrain.set_source('evx_src', NULL)")
        conn.execute("DROP TABLE public.evx_src")


def test_smoke_p99_matches_numpy():
    rng = np.random.default_rng(SEED + 2)
    latency = np.round(rng.lognormal(3, 0.8, 777), 3)
    scores = rng.random(777) * 1.02          # a few above 1
    with connect() as conn:
        conn.execute("SELECT retrain.register_model('evx_smoke', 'binary_classification')")
        conn.execute("SELECT retrain.register_version('evx_smoke', 'v1', 's3://m', repeat('a', 64), '{}')")
        with conn.cursor() as cur:
            cur.executemany("SELECT retrain.log_prediction('evx_smoke', 'v1', NULL, %s, %s, "
                            "predicted_at => '2026-03-01'::timestamptz)",
                            [(float(s), float(x)) for s, x in zip(scores, latency)])
        got = conn.execute("SELECT retrain.smoke_test('evx_smoke', 'v1', '2026-03-01')").fetchone()[0]
        assert got["smoke_count"] == 777, got
        assert close(got["smoke_latency_p99_ms"], float(np.percentile(latency, 99))), got
        assert close(got["smoke_in_range_share"], float(np.mean(scores <= 1))), got


def test_a_slow_source_does_not_hold_up_other_changes():
    """smoke_test() reads the predictions before it takes the write lock:
    while a slow source is read, another team's change goes through."""
    import threading
    import time

    with connect() as admin:
        admin.execute("DROP VIEW IF EXISTS public.evx_slow")
        admin.execute("CREATE VIEW public.evx_slow AS SELECT 'v1'::text AS version, now() - interval '1 minute' AS predicted_at, "
                      "0.5::float8 AS score FROM generate_series(1, 4) WHERE pg_sleep(0.5) IS NOT NULL")
        admin.execute("SELECT retrain.register_model('evx_slow', 'binary_classification')")
        admin.execute("SELECT retrain.register_version('evx_slow', 'v1', 's3://m', repeat('a', 64), '{}')")
        admin.execute("SELECT retrain.set_source('evx_slow', 'public.evx_slow')")
        admin.execute("SELECT retrain.register_model('evx_busy', 'regression')")
        admin.execute("SELECT retrain.register_version('evx_busy', 'v1', 's3://m', repeat('b', 64), '{}')")
        result = {}

        def smoke():
            with connect() as c:
                result["smoke"] = c.execute("SELECT retrain.smoke_test('evx_slow', 'v1', now() - interval '1 hour')"
                                            ).fetchone()[0]

        t = threading.Thread(target=smoke)
        started = time.monotonic()
        t.start()
        time.sleep(0.5)
        admin.execute("SELECT retrain.record_metrics('evx_busy', 'v1', '{\"kpi\": 1}', 'kpi dashboard')")
        other = time.monotonic() - started
        t.join()
        smoke_took = time.monotonic() - started
        assert result["smoke"]["smoke_count"] == 4, result
        assert smoke_took >= 2.0, smoke_took
        assert other < 1.5, f"record_metrics waited for the slow read: {other:.2f} s"
        admin.execute("SELECT retrain.set_source('evx_slow', NULL)")
        admin.execute("DROP VIEW public.evx_slow")


if __name__ == "__main__":
    run_suite(globals())
