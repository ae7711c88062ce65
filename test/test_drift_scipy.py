"""Cross-check of the drift statistics against numpy and scipy.

Seeded data sets (shifted normals, heavy tails, a constant column, ties,
categories that appear or vanish, a large one) are loaded into the test
cluster; every drift aggregate and function is computed serially and under a
forced parallel plan and compared with numpy's quantiles and histograms,
scipy's ks_2samp and jensenshannon, and a direct implementation of the PSI
formula, to 1e-12 relative.
"""

import collections
import json
import math
import os

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import distributions, ks_2samp
# scipy's exact two-sample p-value, as ks_2samp(method='auto') uses it
from scipy.stats._stats_py import _attempt_exact_2kssamp

# up to this many values in the larger sample both are exact
KS_EXACT_MAX_N = 10000

from testlib import PARALLEL, SERIAL, connect, copy_binary, run_suite

RTOL = 1e-12
SEED = int(os.environ.get("RETRAIN_TEST_SEED", "20261122"))
LARGE = int(os.environ.get("RETRAIN_TEST_LARGE_ROWS", "2000000")) // 2
EPS = 1e-4
CATEGORIES = ["red", "green", "blue", "cyan", "magenta"]


def dataset(name, rng):
    """Reference and current values, and categories, for one case."""
    n = {"tiny": 5, "shifted_normal": 20000, "heavy_tails": 20000, "constant": 3000,
         "ties": 20000, "large": LARGE}[name]
    if name == "shifted_normal":
        ref, cur = rng.normal(0, 1, n), rng.normal(0.3, 1.2, n)
    elif name == "heavy_tails":
        ref, cur = rng.standard_t(1.5, n), rng.standard_t(1.5, n) * 1.5
    elif name == "constant":
        ref, cur = np.full(n, 4.0), np.full(n, 4.0)
    elif name == "ties":
        ref, cur = np.round(rng.normal(0, 1, n), 1), np.round(rng.normal(0.1, 1, n), 1)
    else:
        ref, cur = rng.random(n), rng.random(n) ** 1.1
    # categories: "magenta" vanishes in current, "cyan" appears
    ref_cat = rng.choice(CATEGORIES[:3] + ["magenta"], n, p=[0.4, 0.3, 0.2, 0.1])
    cur_cat = rng.choice(CATEGORIES[:4], n, p=[0.3, 0.3, 0.2, 0.2])
    return ref, cur, ref_cat, cur_cat


def psi_reference(expected, actual, eps=EPS):
    e = np.asarray(expected, float) / np.sum(expected)
    a = np.asarray(actual, float) / np.sum(actual)
    e = np.where(e == 0, eps, e)
    a = np.where(a == 0, eps, a)
    return float(np.sum((a - e) * np.log(a / e)))


def unique_quantile_edges(values, bins):
    qs = np.quantile(values, np.arange(1, bins) / bins)
    return list(np.unique(qs))  # ascending, duplicates removed


def close(got, want, what, rtol=RTOL, atol=0.0):
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} against {want.shape}"
    scale = np.maximum(np.abs(got), np.abs(want))
    bad = np.abs(got - want) > rtol * scale + atol
    assert not bad.any(), f"{what}: got {got[bad][:5]}, expected {want[bad][:5]}"


_loaded = {}


def load(name):
    if name in _loaded:
        return _loaded[name]
    rng = np.random.default_rng([SEED, sum(map(ord, name))])
    ref, cur, ref_cat, cur_cat = dataset(name, rng)
    table = f"drift_check_{name}"
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_cat")
        conn.execute(f"CREATE TABLE {table} (value float8, is_reference boolean) "
                     "WITH (parallel_workers = 2)")
        copy_binary(conn, table, [np.concatenate([ref, cur]),
                                  np.concatenate([np.ones(len(ref), bool),
                                                  np.zeros(len(cur), bool)])])
        conn.execute(f"CREATE TABLE {table}_cat (category text, is_reference boolean) "
                     "WITH (parallel_workers = 2)")
        with conn.cursor() as cur_, cur_.copy(f"COPY {table}_cat FROM STDIN") as copy:
            for c in ref_cat:
                copy.write_row((c, True))
            for c in cur_cat:
                copy.write_row((c, False))
        if len(ref) >= 1000:
            conn.execute(f"VACUUM ANALYZE {table}, {table}_cat")
    _loaded[name] = (table, ref, cur, ref_cat, cur_cat)
    return _loaded[name]


def query(sql, settings, params=None, plan_check=True):
    with connect() as conn:
        for key, value in settings.items():
            conn.execute(f"SET {key} = {value}")
        if plan_check:
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
            partial = "Partial" in plan
            assert partial == (settings is PARALLEL), plan
        return conn.execute(sql, params).fetchone()


def check(name, settings):
    table, ref, cur, ref_cat, cur_cat = load(name)
    bins = 10

    # quantile edges of the reference values, as numpy computes them
    (edges,) = query(f"SELECT retrain.quantile_edges(value, {bins}) FROM {table} "
                     "WHERE is_reference", settings)
    want_edges = unique_quantile_edges(ref, bins)
    close(edges, want_edges, "quantile_edges", atol=1e-12 * max(1.0, np.max(np.abs(ref))))
    edges = list(want_edges)  # the same edges on both sides from here on

    # histogram, psi aggregate and the array functions over the current values
    expected = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    hist, psi_agg, psi_arr, js, js2, ks = query(
        f"""SELECT retrain.histogram(value, %(e)s),
                   retrain.psi(value, %(e)s, %(x)s),
                   retrain.psi(%(x)s::float8[], retrain.histogram(value, %(e)s)::float8[]),
                   retrain.js_distance(%(x)s, retrain.histogram(value, %(e)s)::float8[]),
                   retrain.js_distance(%(x)s, retrain.histogram(value, %(e)s)::float8[], 2),
                   (SELECT retrain.ks_2samp(value, is_reference) FROM {table})
              FROM {table} WHERE NOT is_reference""",
        settings, {"e": edges, "x": [float(v) for v in expected]}, plan_check=False)
    assert list(hist) == list(actual), f"histogram {hist} against {list(actual)}"
    want_psi = psi_reference(expected, actual)
    close(psi_agg, want_psi, "psi aggregate")
    close(psi_arr, want_psi, "psi of arrays")
    close(js, jensenshannon(expected, actual), "js_distance", atol=1e-12)
    close(js2, jensenshannon(expected, actual, base=2), "js_distance base 2", atol=1e-12)
    close(ks, ks_2samp(ref, cur).statistic, "ks_2samp")

    (pvalue,) = query("SELECT retrain.ks_pvalue(%s, %s, %s)", {}, (ks, len(ref), len(cur)),
                      plan_check=False)
    want_p = ks_2samp(ref, cur, method="auto").pvalue
    assert abs(pvalue - want_p) <= max(RTOL * want_p, 1e-15), f"ks_pvalue {pvalue} against {want_p}"

    # ks_2samp alone, to see its plan
    (ks_alone,) = query(f"SELECT retrain.ks_2samp(value, is_reference) FROM {table}", settings)
    close(ks_alone, ks_2samp(ref, cur).statistic, "ks_2samp, own plan")

    # categories
    (ref_counts,) = query(f"SELECT retrain.category_counts(category) FROM {table}_cat "
                          "WHERE is_reference", settings)
    (cur_counts,) = query(f"SELECT retrain.category_counts(category) FROM {table}_cat "
                          "WHERE NOT is_reference", settings)
    assert ref_counts == dict(collections.Counter(ref_cat)), ref_counts
    assert cur_counts == dict(collections.Counter(cur_cat)), cur_counts
    (cat_psi,) = query("SELECT retrain.psi(%s::jsonb, %s::jsonb)", {},
                       (json.dumps(ref_counts), json.dumps(cur_counts)), plan_check=False)
    keys = sorted(set(ref_counts) | set(cur_counts))
    close(cat_psi, psi_reference([ref_counts.get(k, 0) for k in keys],
                                 [cur_counts.get(k, 0) for k in keys]), "psi of categories")


def make_test(name, settings):
    return lambda: check(name, settings)


for _name in ["tiny", "shifted_normal", "heavy_tails", "constant", "ties", "large"]:
    globals()[f"test_{_name}_serial"] = make_test(_name, SERIAL)
    globals()[f"test_{_name}_parallel"] = make_test(_name, PARALLEL)


def test_ks_pvalue_against_scipy():
    """Random sample sizes up to two million and statistics around where the
    p-value moves, plus a grid over every region of the distribution: the
    exact distribution up to 10,000 values, the asymptotic one beyond."""
    rng = np.random.default_rng([SEED, 7])
    cases = [(d, n1, n2) for n1, n2 in [(1, 1), (2, 3), (10, 7), (50, 60), (137, 150), (281, 280),
                                         (3000, 5000), (100000, 100000), (1000000, 1000000)]
             for d in [0.0, 1e-6, 0.003, 0.01, 0.03, 0.07, 0.15, 0.3, 0.5, 0.8, 1.0]]
    for _ in range(300):
        n1, n2 = int(10 ** rng.uniform(0, 6.3)), int(10 ** rng.uniform(0, 6.3))
        en = n1 * n2 / (n1 + n2)
        d = min(1.0, rng.uniform(0, 4) / np.sqrt(en)) if rng.random() < 0.8 else rng.random()
        cases.append((d, n1, n2))
    problems = []
    with connect() as conn:
        for d, n1, n2 in cases:
            if max(n1, n2) <= KS_EXACT_MAX_N:
                # scipy's method='auto' is exact here, and so is retrain; scipy's
                # exact method is a Python loop, too slow for the largest of them
                if n1 * n2 > 2_000_000:
                    continue
                ok, _, want = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
                if not ok:
                    continue
                want = float(np.clip(want, 0, 1))
            else:
                m, n = sorted([float(n1), float(n2)], reverse=True)
                want = float(np.clip(distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
            got = conn.execute("SELECT retrain.ks_pvalue(%s, %s, %s)", (d, n1, n2)).fetchone()[0]
            # a p-value formed as 1 - cdf is exact to about 1e-16 absolute, in scipy too
            if abs(got - want) > max(RTOL * want, 1e-15):
                problems.append((d, n1, n2, got, want))
    assert not problems, f"{len(problems)} of {len(cases)} differ, e.g. {problems[:3]}"


def decimal_strings(rng):
    """Decimal numbers as features arrive: float8's and Python's shortest
    output (up to 17 digits), rounded decimals, trailing and leading zeros,
    exponents around the 10^22 and 10^27 that exact reading stops at, and
    16 to 19 digits within a hair of a midpoint between two doubles (where
    reading them twice rounds them wrong)."""
    from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, localcontext
    out = []
    with localcontext() as ctx:
        ctx.prec = 80
        for i in range(40000):
            x = float(rng.uniform(0, 2)) * 10.0 ** int(rng.integers(-30, 30))
            if x == 0:
                continue
            mid = (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2
            for digits in (16, 17, 18, 19):
                for rounding in (ROUND_DOWN, ROUND_UP, ROUND_HALF_EVEN):
                    q = mid.quantize(Decimal(1).scaleb(mid.adjusted() - digits + 1), rounding=rounding)
                    out.append(format(q, "e" if i % 2 else "f"))
            out += [repr(x), repr(-x), f"{x:.15g}", f"{x:.12e}", f"{round(x, 6)}",
                    f"{int(rng.integers(0, 10 ** 15))}e{int(rng.integers(-30, 31))}",
                    f"-00{int(rng.integers(0, 10 ** 6))}{'0' * int(rng.integers(0, 25))}.{'0' * (i % 4)}"]
    return out


def test_feature_values_are_read_as_float8_reads_them():
    """A feature's value is read without strtod() where that is exact; every
    value must be the double float8 and Python read (to the last bit), from
    a string and from a jsonb number, or a histogram's bucket moves."""
    rng = np.random.default_rng([SEED, 11])
    strings = decimal_strings(rng)
    with connect() as conn:
        conn.execute("CREATE TEMP TABLE decimals (s text, v float8, above float8)")
        with conn.cursor().copy("COPY decimals (s, v, above) FROM STDIN") as copy:
            for text in strings:
                v = float(text)
                copy.write_row((text, v, math.nextafter(v, math.inf)))
        wrong = conn.execute(
            "SELECT count(*), "
            "       count(*) FILTER (WHERE float8send(retrain._as_float8(s)) IS DISTINCT FROM float8send(v)), "
            "       count(*) FILTER (WHERE float8send(s::float8) IS DISTINCT FROM float8send(v)), "
            "       count(*) FILTER (WHERE float8send(retrain._as_float8(' ' || s || ' ')) "
            "                              IS DISTINCT FROM float8send(v)) "
            "  FROM decimals").fetchone()
        assert wrong == (len(strings), 0, 0, 0), wrong
        # through jsonb (numeric's output): counted at or above its own
        # value, and below the next double up
        wrong = conn.execute(
            "SELECT count(*) FILTER (WHERE at_v <> '{\"x\": [0, 0, 1, 0, 0]}' OR at_above <> '{\"x\": [0, 1, 0, 0, 0]}') "
            "  FROM (SELECT retrain._feature_histograms(jsonb_build_object('x', s::numeric), '{x}', "
            "                                           ARRAY['-Infinity', v, 'Infinity'], '{3}') AS at_v, "
            "               retrain._feature_histograms(jsonb_build_object('x', s::numeric), '{x}', "
            "                                           ARRAY['-Infinity', above, 'Infinity'], '{3}') AS at_above "
            "          FROM (SELECT DISTINCT s, v, above FROM decimals) d "
            "         WHERE v <> 0 AND above < 'Infinity' GROUP BY s, v, above) h").fetchone()[0]
        assert wrong == 0, f"{wrong} jsonb numbers read as another double"


def test_drop_tables():
    with connect() as conn:
        for table, *_ in _loaded.values():
            conn.execute(f"DROP TABLE {table}, {table}_cat")


run_suite(globals())
