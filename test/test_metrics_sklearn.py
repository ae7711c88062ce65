"""Cross-check of every model-quality aggregate against scikit-learn.

Seeded numpy data sets (ties, imbalance, tiny, one class, extreme and
infinite scores, a large one) are loaded into the test cluster with binary
COPY; every aggregate is computed serially and under a forced parallel plan
and compared with scikit-learn to 1e-12 relative.  Where scikit-learn calls a
metric undefined (or warns and returns 0), the aggregate must return NULL.
"""

import math
import os

import numpy as np
from sklearn import metrics as skm

from testlib import PARALLEL, SERIAL, connect, copy_binary, run_suite

RTOL = 1e-12
SEED = int(os.environ.get("RETRAIN_TEST_SEED", "20261122"))
LARGE = int(os.environ.get("RETRAIN_TEST_LARGE_ROWS", "2000000"))

QUERY = """
SELECT retrain.auc(score, label), retrain.average_precision(score, label),
       (retrain.confusion(predicted, label)).*,
       retrain.precision(predicted, label), retrain.recall(predicted, label),
       retrain.f1(predicted, label), retrain.accuracy(predicted, label),
       retrain.precision(score, label, 0.5), retrain.recall(score, label, 0.5),
       retrain.f1(score, label, 0.5), retrain.accuracy(score, label, 0.5),
       retrain.brier(prob, label), retrain.log_loss(prob, label),
       retrain.mae(pred, actual), retrain.rmse(pred, actual), retrain.r2(pred, actual)
  FROM {table}
"""
NAMES = ["auc", "average_precision", "tp", "fp", "fn", "tn", "precision", "recall", "f1",
         "accuracy", "precision@0.5", "recall@0.5", "f1@0.5", "accuracy@0.5", "brier",
         "log_loss", "mae", "rmse", "r2"]


def dataset(name, rng):
    """(score, label, predicted, prob, pred, actual) arrays for one case."""
    n = {"one_row": 1, "two_rows": 2, "tiny": 7, "ties": 20000, "imbalanced": 200000,
         "all_equal": 1000, "one_class": 500, "extreme": 5000, "infinite": 3000,
         "large": LARGE}[name]
    score = rng.random(n)
    if name == "ties":
        score = np.round(score, 1)
    if name == "all_equal":
        score = np.full(n, 0.5)
    label = rng.random(n) < score            # informative labels
    if name == "imbalanced":
        label = rng.random(n) < score * 0.002  # about 0.1% positive
    if name == "one_class":
        label = np.ones(n, dtype=bool)
    if name == "two_rows":
        label = np.array([True, False])
    if name == "large":
        score = score.astype(np.float32).astype(np.float64)  # some ties among millions
    prob = score.copy()
    if name == "extreme":
        prob[::5] = 0.0
        prob[1::5] = 1.0
        prob[2::5] = 1e-20
        prob[3::5] = 1 - 1e-17
        score = prob.copy()
    if name == "infinite":
        score[::10] = np.inf
        score[5::10] = -np.inf
    predicted = rng.random(n) < np.where(label, 0.8, 0.3)
    actual = rng.normal(50.0, 10.0, n)
    pred = actual + rng.normal(0.0, 4.0, n)
    if name == "large":
        actual += 1e6                          # an offset must not cost digits
        pred += 1e6
    if name == "all_equal":
        actual = np.full(n, 3.0)
    return score, label, predicted, prob, pred, actual


def undefined_or(fn, defined):
    return fn() if defined else None


def expected(score, label, predicted, prob, pred, actual):
    both = label.any() and not label.all()
    out = {}
    finite = score.copy()
    if np.isinf(finite).any():
        # scikit-learn refuses infinities; the same order with finite stand-ins
        lo, hi = finite[np.isfinite(finite)].min(), finite[np.isfinite(finite)].max()
        finite[finite == np.inf] = hi + 1
        finite[finite == -np.inf] = lo - 1
    out["auc"] = undefined_or(lambda: skm.roc_auc_score(label, finite), both)
    out["average_precision"] = undefined_or(lambda: skm.average_precision_score(label, finite), both)
    tn, fp, fn, tp = skm.confusion_matrix(label, predicted, labels=[False, True]).ravel()
    out.update(tp=tp, fp=fp, fn=fn, tn=tn)
    for suffix, p in (("", predicted), ("@0.5", score >= 0.5)):
        tn_, fp_, fn_, tp_ = skm.confusion_matrix(label, p, labels=[False, True]).ravel()
        out["precision" + suffix] = undefined_or(
            lambda: skm.precision_score(label, p, zero_division=0), tp_ + fp_ > 0)
        out["recall" + suffix] = undefined_or(
            lambda: skm.recall_score(label, p, zero_division=0), tp_ + fn_ > 0)
        out["f1" + suffix] = undefined_or(
            lambda: skm.f1_score(label, p, zero_division=0), tp_ + fp_ + fn_ > 0)
        out["accuracy" + suffix] = skm.accuracy_score(label, p)
    out["brier"] = skm.brier_score_loss(label, prob, pos_label=True)
    out["log_loss"] = skm.log_loss(label, prob, eps=1e-15, labels=[False, True])
    out["mae"] = skm.mean_absolute_error(actual, pred)
    out["rmse"] = math.sqrt(skm.mean_squared_error(actual, pred))
    out["r2"] = undefined_or(lambda: skm.r2_score(actual, pred), len(set(actual)) > 1)
    return out


def compare(got, want):
    problems = []
    for name, value in zip(NAMES, got):
        w = want[name]
        if w is None or value is None:
            if not (w is None and value is None):
                problems.append(f"{name}: got {value}, scikit-learn {w}")
            continue
        w = float(w)
        if abs(value - w) > RTOL * max(abs(value), abs(w)):
            problems.append(f"{name}: got {value!r}, scikit-learn {w!r}, "
                            f"relative error {abs(value - w) / max(abs(value), abs(w)):.2e}")
    assert not problems, "; ".join(problems)


_loaded = {}


def load(name):
    if name in _loaded:
        return _loaded[name]
    rng = np.random.default_rng([SEED, sum(map(ord, name))])
    cols = dataset(name, rng)
    table = f"xcheck_{name}"
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (score float8, label boolean, predicted boolean, "
                     "prob float8, pred float8, actual float8) WITH (parallel_workers = 2)")
        copy_binary(conn, table, cols)
        # Left without statistics, a table of a few rows is estimated at a
        # page's worth, which is what lets the planner split its scan.
        if len(cols[0]) >= 1000:
            conn.execute(f"VACUUM ANALYZE {table}")
    _loaded[name] = (table, expected(*cols))
    return _loaded[name]


def run(table, settings):
    with connect() as conn:
        for key, value in settings.items():
            conn.execute(f"SET {key} = {value}")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + QUERY.format(table=table)))
        return conn.execute(QUERY.format(table=table)).fetchone(), plan


def make_test(name, mode):
    def test():
        table, want = load(name)
        got, plan = run(table, PARALLEL if mode == "parallel" else SERIAL)
        if mode == "parallel":
            assert "Partial Aggregate" in plan, plan
        else:
            assert "Partial" not in plan, plan
        compare(got, want)
    return test


for _name in ["one_row", "two_rows", "tiny", "ties", "imbalanced", "all_equal", "one_class",
              "extreme", "infinite", "large"]:
    for _mode in ("serial", "parallel"):
        globals()[f"test_{_name}_{_mode}"] = make_test(_name, _mode)


def test_drop_tables():
    with connect() as conn:
        for table, _ in _loaded.values():
            conn.execute(f"DROP TABLE {table}")


run_suite(globals())
