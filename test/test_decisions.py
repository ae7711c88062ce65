"""Decisions a team can hand over (issue 13): what pg_regress cannot show.

- every function PUBLIC may execute works for a role with no other right:
  generated from the catalog, both statically (no such function calls one
  of retrain's functions PUBLIC may not execute) and by calling each one;
- route() in an open READ COMMITTED transaction sees a fallback another
  session committed, at its next statement;
- check() and drift() give the same figures whatever the session's
  extra_float_digits;
- ks_pvalue() agrees with scipy's exact two-sample distribution on small
  samples; rmse() and r2() with scikit-learn on inputs scaled by 1e200 and
  1e-200.
"""

import re

import numpy as np
import psycopg

import testlib
from testlib import expect_error, run_suite, scalar

DB = "retrain_decisions"


def connect(**kwargs):
    """This suite's own database, made afresh by setup_module()."""
    return testlib.connect(dbname=DB, **kwargs)

# One call per function PUBLIC may execute, with arguments a role without
# any other right would pass.  A new public function without a line here
# fails test_every_public_function_has_a_sample_call.
SAMPLE_CALLS = {
    "version()": "SELECT retrain.version()",
    '"precision"(retrain.confusion)': "SELECT retrain.precision(retrain.confusion(s, l, 0.5)) FROM t",
    "recall(retrain.confusion)": "SELECT retrain.recall(retrain.confusion(s, l, 0.5)) FROM t",
    "f1(retrain.confusion)": "SELECT retrain.f1(retrain.confusion(s, l, 0.5)) FROM t",
    "fbeta(retrain.confusion,double precision)": "SELECT retrain.fbeta(retrain.confusion(s, l, 0.5), 2) FROM t",
    "accuracy(retrain.confusion)": "SELECT retrain.accuracy(retrain.confusion(s, l, 0.5)) FROM t",
    "confusion_add(retrain.confusion,retrain.confusion)":
        "SELECT retrain.confusion(s, l, 0.5) OPERATOR(retrain.+) retrain.confusion(s, l, 0.5) FROM t",
    "psi(double precision[],double precision[],double precision)": "SELECT retrain.psi('{1,2}'::float8[], '{2,1}')",
    "psi(jsonb,jsonb,double precision)": """SELECT retrain.psi('{"a": 1}'::jsonb, '{"a": 1, "b": 1}')""",
    "js_distance(double precision[],double precision[],double precision)":
        "SELECT retrain.js_distance('{1,2}'::float8[], '{2,1}')",
    "ks_pvalue(double precision,bigint,bigint)": "SELECT retrain.ks_pvalue(0.5, 10, 10)",
    "schedule_occurrence(jsonb,timestamp with time zone,timestamp with time zone)":
        """SELECT retrain.schedule_occurrence('{"every": "week", "weekday": "monday"}', now())""",
    "_valid_schedule(jsonb)": """SELECT retrain._valid_schedule('{"every": "week", "weekday": "monday"}')""",
    "_schedule_hint()": "SELECT retrain._schedule_hint()",
    "_interval_in_bounds(interval)": "SELECT retrain._interval_in_bounds('1 day')",
    "drift(text,text,regclass,timestamp with time zone,text,double precision)":
        "SELECT * FROM retrain.drift('dec_pub', 'v1', 't')",
    "drift_summary(text,text,regclass,timestamp with time zone,text,double precision,double precision)":
        "SELECT * FROM retrain.drift_summary('dec_pub', 'v1', 't')",
    "bucket(text,text)": "SELECT retrain.bucket('dec_pub', 'u1')",
    "route(text,text)": "SELECT retrain.route('dec_pub', 'u1')",
    "route_detail(text,text)": "SELECT * FROM retrain.route_detail('dec_pub', 'u1')",
    "effective_policy(text)": "SELECT retrain.effective_policy('dec_pub')",
    "_as_float8(text)": "SELECT retrain._as_float8('1.5')",
    "report(text,timestamp with time zone,timestamp with time zone,interval)":
        "SELECT * FROM retrain.report('dec_pub', now() - interval '1 day')",
    "next_occurrences(text,integer,timestamp with time zone)":
        "SELECT * FROM retrain.next_occurrences('dec_pub')",
    "manifest(text)": "SELECT retrain.manifest('dec_pub')",
    "_freeze_of(retrain.deployments,timestamp with time zone)":
        "SELECT retrain._freeze_of(d) FROM retrain.deployments d",
    "verify_log()": "SELECT * FROM retrain.verify_log()",
    "verify_log(bigint,text)": "SELECT * FROM retrain.verify_log(0, repeat('0', 64))",
}

# The support functions of aggregates whose state is retrain.agg_state run
# for any caller, as Citus runs them for the caller (docs/scaling.md).  A
# role without rights reaches them through aggregates of its own over them,
# made by state_aggregates(); the binary input through a binary parameter.
STATE_AGGREGATES = {
    "c_part(boolean, boolean)": "_confusion_accum",
    "cs_part(float8, boolean, float8)": "_confusion_score_accum",
    "brier_part(float8, boolean)": "_brier_accum",
    "log_loss_part(float8, boolean)": "_log_loss_accum",
    "mae_part(float8, float8)": "_mae_accum",
    "rmse_part(float8, float8)": "_rmse_accum",
    "r2_part(float8, float8)": "_r2_accum",
    "hist_part(float8, float8[])": "_histogram_accum",
    "hist_missing_part(float8, float8[])": "_histogram_missing_accum",
    "psi_part(float8, float8[], float8[])": "_psi_accum",
    "c_merge(retrain.agg_state)": "_confusion_combine",
    "loss_merge(retrain.agg_state)": "_loss_combine",
    "hist_merge(retrain.agg_state)": "_hist_combine",
}
C = "pg_temp.c_part(s >= 0.5, l)"
LOSS = "pg_temp.rmse_part(s, x)"
HIST = "pg_temp.psi_part(s, '{0.5}', '{1,1}')"


def state_aggregates(conn):
    for signature, sfunc in STATE_AGGREGATES.items():
        conn.execute(f"CREATE AGGREGATE pg_temp.{signature} "
                     f"(SFUNC = retrain.{sfunc}, STYPE = retrain.agg_state)")


def binary_state_input(conn):
    """agg_state_recv(internal): a state sent back in binary, as Citus's
    workers send them."""
    oid = scalar(conn, "SELECT 'retrain.agg_state'::regtype::oid")
    cur = conn.cursor(binary=True)
    cur.execute(f"SELECT {C} FROM t")
    raw = cur.fetchone()[0]
    res = conn.pgconn.exec_params(b"SELECT retrain._f1_final($1)", [bytes(raw)],
                                  param_types=[oid], param_formats=[1])
    if res.status != psycopg.pq.ExecStatus.TUPLES_OK:
        raise psycopg.Error(res.error_message.decode())


SAMPLE_CALLS.update({
    "_confusion_accum(retrain.agg_state,boolean,boolean)": f"SELECT {C} FROM t",
    "_confusion_score_accum(retrain.agg_state,double precision,boolean,double precision)":
        "SELECT pg_temp.cs_part(s, l, 0.5) FROM t",
    "_confusion_combine(retrain.agg_state,retrain.agg_state)":
        f"SELECT pg_temp.c_merge(a) FROM (SELECT {C} AS a FROM t) q",
    "_confusion_final(retrain.agg_state)": f"SELECT retrain._confusion_final({C}) FROM t",
    "_accuracy_final(retrain.agg_state)": f"SELECT retrain._accuracy_final({C}) FROM t",
    "_f1_final(retrain.agg_state)": f"SELECT retrain._f1_final({C}) FROM t",
    "_precision_final(retrain.agg_state)": f"SELECT retrain._precision_final({C}) FROM t",
    "_recall_final(retrain.agg_state)": f"SELECT retrain._recall_final({C}) FROM t",
    "_brier_accum(retrain.agg_state,double precision,boolean)": "SELECT pg_temp.brier_part(s, l) FROM t",
    "_log_loss_accum(retrain.agg_state,double precision,boolean)": "SELECT pg_temp.log_loss_part(s, l) FROM t",
    "_mae_accum(retrain.agg_state,double precision,double precision)": "SELECT pg_temp.mae_part(s, x) FROM t",
    "_rmse_accum(retrain.agg_state,double precision,double precision)": f"SELECT {LOSS} FROM t",
    "_r2_accum(retrain.agg_state,double precision,double precision)": "SELECT pg_temp.r2_part(s, x) FROM t",
    "_loss_combine(retrain.agg_state,retrain.agg_state)":
        f"SELECT pg_temp.loss_merge(a) FROM (SELECT {LOSS} AS a FROM t) q",
    "_mean_loss_final(retrain.agg_state)": "SELECT retrain._mean_loss_final(pg_temp.mae_part(s, x)) FROM t",
    "_rmse_final(retrain.agg_state)": f"SELECT retrain._rmse_final({LOSS}) FROM t",
    "_r2_final(retrain.agg_state)": "SELECT retrain._r2_final(pg_temp.r2_part(s, x)) FROM t",
    "_histogram_accum(retrain.agg_state,double precision,double precision[])":
        "SELECT pg_temp.hist_part(s, '{0.5}') FROM t",
    "_histogram_final(retrain.agg_state)": "SELECT retrain._histogram_final(pg_temp.hist_part(s, '{0.5}')) FROM t",
    "_histogram_missing_accum(retrain.agg_state,double precision,double precision[])":
        "SELECT pg_temp.hist_missing_part(s, '{0.5}') FROM t",
    "_histogram_missing_final(retrain.agg_state)":
        "SELECT retrain._histogram_missing_final(pg_temp.hist_missing_part(s, '{0.5}')) FROM t",
    "_psi_accum(retrain.agg_state,double precision,double precision[],double precision[])": f"SELECT {HIST} FROM t",
    "_hist_combine(retrain.agg_state,retrain.agg_state)":
        f"SELECT pg_temp.hist_merge(a) FROM (SELECT {HIST} AS a FROM t) q",
    "_psi_final(retrain.agg_state)": f"SELECT retrain._psi_final({HIST}) FROM t",
    "agg_state_out(retrain.agg_state)": f"SELECT retrain.agg_state_out({C}) FROM t",
    "agg_state_in(cstring)": f"SELECT retrain.agg_state_in(retrain.agg_state_out({C})) FROM t",
    "agg_state_send(retrain.agg_state)": f"SELECT retrain.agg_state_send({C}) FROM t",
    "agg_state_recv(internal)": binary_state_input,
})

PUBLIC_FUNCTIONS = """
    SELECT p.oid, regexp_replace(p.oid::regprocedure::text, '^retrain\\.', ''), p.prosecdef, p.prokind
      FROM pg_proc p
     WHERE p.pronamespace = 'retrain'::regnamespace
       AND has_function_privilege('dec_nobody', p.oid, 'EXECUTE')
"""


def setup_module():
    with testlib.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute("DROP ROLE IF EXISTS dec_nobody")
        conn.execute(f"CREATE DATABASE {DB}")
    with connect() as conn:
        conn.execute("CREATE EXTENSION retrain")
        conn.execute("CREATE ROLE dec_nobody")
        conn.execute("GRANT USAGE ON SCHEMA retrain TO dec_nobody")
        conn.execute("SELECT retrain.register_model('dec_pub', 'binary_classification')")
        conn.execute("SELECT retrain.register_version('dec_pub', 'v1', 's3://m/v1', repeat('a', 64), '{\"auc\": 0.8}')")
        conn.execute("CREATE TABLE public.dec_t AS SELECT g / 10.0 AS s, g % 2 = 0 AS l, g AS x "
                     "FROM generate_series(1, 9) g")
        conn.execute("SELECT retrain.capture_baseline('dec_pub', 'v1', 'public.dec_t', '{x}')")
        conn.execute("GRANT SELECT ON public.dec_t TO dec_nobody")
        # its baselines are for its owner's members (the analysts' case is in pg_regress)
        conn.execute("SELECT retrain.set_owner('dec_pub', 'dec_nobody')")


def test_every_public_function_has_a_sample_call():
    with connect() as conn:
        names = {r[1] for r in conn.execute(PUBLIC_FUNCTIONS + " AND p.prokind = 'f'")}
    missing = sorted(names - set(SAMPLE_CALLS))
    assert not missing, f"public functions without a sample call in this test: {missing}"


def test_public_functions_call_only_what_public_may():
    """Statically: the body of every function PUBLIC may run as itself (not
    SECURITY DEFINER) names only retrain functions PUBLIC may run, and so on
    down."""
    with connect() as conn:
        public = {r[0]: r for r in conn.execute(PUBLIC_FUNCTIONS)}
        # the body alone: a definition's own header names the function
        bodies = dict(conn.execute("""
            SELECT p.oid, coalesce(pg_get_function_sqlbody(p.oid), p.prosrc) FROM pg_proc p
             WHERE p.pronamespace = 'retrain'::regnamespace AND p.prokind IN ('f', 'p')"""))
        by_name = {}
        for oid, name, executable in conn.execute("""
                SELECT p.oid, p.proname, has_function_privilege('dec_nobody', p.oid, 'EXECUTE')
                  FROM pg_proc p WHERE p.pronamespace = 'retrain'::regnamespace"""):
            by_name.setdefault(name, []).append((oid, executable))
    bad = []
    seen = set()
    todo = [oid for oid, r in public.items() if not r[2] and r[3] == "f"]
    while todo:
        oid = todo.pop()
        if oid in seen:
            continue
        seen.add(oid)
        # messages' hints name functions too: not calls
        body = "\n".join(line for line in bodies.get(oid, "").splitlines() if "HINT =" not in line)
        for callee in set(re.findall(r"retrain\.(\w+)\s*\(", body)):
            for c_oid, executable in by_name.get(callee, []):
                if not executable:
                    bad.append((public.get(oid, (oid, oid))[1], callee))
                else:
                    todo.append(c_oid)
    assert not bad, f"public functions calling functions PUBLIC may not execute: {sorted(set(bad))}"


def test_every_public_function_runs_for_a_role_without_rights():
    with connect() as conn:
        conn.execute("SET ROLE dec_nobody")
        conn.execute("SET search_path = public")
        conn.execute("CREATE TEMP VIEW t AS SELECT s::float8 AS s, l, x::float8 AS x FROM public.dec_t")
        state_aggregates(conn)
        failures = []
        for name, sql in sorted(SAMPLE_CALLS.items()):
            try:
                if callable(sql):
                    sql(conn)
                else:
                    conn.execute(sql).fetchall()
            except psycopg.Error as e:
                failures.append((name, e.sqlstate, str(e).splitlines()[0]))
        assert not failures, failures


def test_route_in_an_open_read_committed_transaction_sees_a_committed_fallback():
    with connect() as admin:
        admin.execute("SELECT retrain.register_model('dec_route', 'binary_classification')")
        admin.execute("SELECT retrain.register_version('dec_route', 'v1', 's3://m/v1', repeat('a', 64), '{}')")
        admin.execute("SELECT retrain.promote('dec_route', 'v1', 'blue_green', override_reason => 'test')")
        with connect(autocommit=False) as app:
            app.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            assert scalar(app, "SELECT retrain.route('dec_route', 'u1')") == "v1"
            admin.execute("SELECT retrain.force('dec_route', 'fallback')")
            # the next statement of the same transaction: like a table read
            assert scalar(app, "SELECT retrain.route('dec_route', 'u1')") is None
            assert scalar(app, "SELECT mode FROM retrain.deployments WHERE model = 'dec_route'") == "fallback"
            app.rollback()
            # REPEATABLE READ keeps its snapshot, for route() as for the table
            app.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            assert scalar(app, "SELECT retrain.route('dec_route', 'u1')") is None
            admin.execute("SELECT retrain.force('dec_route', 'auto')")
            assert scalar(app, "SELECT retrain.route('dec_route', 'u1')") is None
            app.rollback()
            assert scalar(app, "SELECT retrain.route('dec_route', 'u1')") == "v1"
            app.rollback()


def test_ks_pvalue_is_exact_on_small_samples():
    """Item 13: scipy's ks_2samp(method='exact') on small samples, and
    ks_pvalue(1, 1, 1) = 1; above 10,000 values the asymptotic form."""
    from scipy import stats
    rng = np.random.default_rng(13)
    with connect() as conn:
        assert scalar(conn, "SELECT retrain.ks_pvalue(1, 1, 1)") == 1.0
        cases = [(1, 1), (1, 2), (2, 3), (5, 5), (7, 13), (20, 30), (50, 50), (100, 37), (400, 300)]
        for n1, n2 in cases:
            for shift in (0.0, 0.5, 2.0):
                a = rng.normal(0, 1, n1)
                b = rng.normal(shift, 1, n2)
                ref = stats.ks_2samp(a, b, method="exact")
                got = scalar(conn, "SELECT retrain.ks_pvalue(%s, %s, %s)", (float(ref.statistic), n1, n2))
                assert abs(got - ref.pvalue) <= 1e-12 + 1e-9 * ref.pvalue, (n1, n2, shift, got, ref.pvalue)
        # past 10,000 values scipy's auto mode (and retrain) are asymptotic
        ref = stats.ks_2samp(rng.normal(0, 1, 10001), rng.normal(0.05, 1, 9000), method="asymp")
        got = scalar(conn, "SELECT retrain.ks_pvalue(%s, 10001, 9000)", (float(ref.statistic),))
        assert abs(got - ref.pvalue) <= 1e-12 + 1e-9 * ref.pvalue, (got, ref.pvalue)


def regression_inputs():
    """scikit-learn's regression-metric test inputs, and random ones."""
    rng = np.random.default_rng(14)
    y_true = np.arange(50, dtype=float)
    yield y_true, y_true + 1
    yield np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])
    yield np.array([3.0, -0.5, 2.0, 7.0]), np.array([2.5, 0.0, 2.0, 8.0])
    for _ in range(5):
        t = rng.normal(0, 3, 200)
        yield t, t + rng.normal(0, 1, 200)


def test_rmse_and_r2_of_huge_and_tiny_values():
    """Items 14 and 17: scaled by 1e200 and 1e-200 the answers scale (rmse,
    mae) or stay (r2), as scikit-learn computes them on the unscaled inputs."""
    from sklearn import metrics
    with connect() as conn:
        for t, p in regression_inputs():
            mse = metrics.mean_squared_error(t, p)
            want = {"rmse": np.sqrt(mse), "mae": metrics.mean_absolute_error(t, p),
                    "r2": metrics.r2_score(t, p) if np.ptp(t) > 0 else None}
            for scale in (1e200, 1e-200):
                got = conn.execute(
                    "SELECT retrain.rmse(p, a), retrain.mae(p, a), retrain.r2(p, a) "
                    "FROM unnest(%s::float8[], %s::float8[]) u(p, a)",
                    ((p * scale).tolist(), (t * scale).tolist())).fetchone()
                for name, value, factor in zip(("rmse", "mae", "r2"), got, (scale, scale, 1.0)):
                    expected = want[name]
                    if expected is None:
                        assert value is None, (name, scale, value)
                        continue
                    assert value is not None and np.isfinite(value), (name, scale, value)
                    assert abs(value - expected * factor) <= 1e-9 * abs(expected * factor) + 1e-12 * factor, \
                        (name, scale, value, expected * factor)


def test_finite_inputs_give_finite_answers():
    """Item 17: finite inputs give a finite answer where the exact one is
    finite, or 22003 naming the function where it is not."""
    with connect() as conn:
        assert scalar(conn, "SELECT retrain.rmse(0, 1e155)") == 1e155
        assert scalar(conn, "SELECT retrain.fbeta(retrain.confusion(s, l, 0.5), 1e155) "
                            "FROM (VALUES (0.7::float8, true), (0.2, true), (0.9, false)) v(s, l)") == 0.5
        assert scalar(conn, """SELECT retrain.psi('{"a": 1e400, "b": 1}'::jsonb, '{"a": 1, "b": 1}')""") > 4.6
        assert scalar(conn, """SELECT retrain.psi('{"a": 1e-400, "b": 1e-400}'::jsonb, '{"a": 1, "b": 1}')""") == 0
        assert scalar(conn, "SELECT retrain.psi('{1e308, 1e308}'::float8[], '{1, 1}')") == 0
        assert scalar(conn, "SELECT retrain.js_distance('{1e308, 1e308}'::float8[], '{1, 1}')") == 0
        edges = scalar(conn, "SELECT retrain.quantile_edges(x, 4) "
                             "FROM unnest('{-1e308, 1e308, -1.5e308, 1.7e308}'::float8[]) x")
        assert all(np.isfinite(edges)), edges
        e = expect_error(conn, "SELECT retrain.rmse(p, a) FROM (VALUES (-1e308::float8, 1e308::float8), "
                               "(1e308, -1e308)) v(p, a)", "22003")
        assert "retrain.rmse" in str(e)
        # every metric over values near the ends of float8
        for agg in ("mae", "rmse", "r2"):
            for big in (1e300, 1e-300, 5e-324):
                value = scalar(conn, f"SELECT retrain.{agg}(p * %s, a * %s) "
                                     "FROM (VALUES (1::float8, 2::float8), (2, 2.5), (3, 2.9)) v(p, a)", (big, big))
                assert value is not None and np.isfinite(value), (agg, big, value)


def test_figures_do_not_depend_on_the_sessions_output_settings():
    """Item 16: check() and drift() give the same figures at every
    extra_float_digits (at -12 a confidence of 0.746409538355153 became
    0.746; at -14 check() failed)."""
    rng = np.random.default_rng(16)
    with connect() as conn:
        conn.execute("SELECT retrain.register_model('dec_efd', 'binary_classification')")
        conn.execute("SELECT retrain.register_version('dec_efd', 'v1', 's3://m/v1', repeat('a', 64), "
                     "'{\"auc\": 0.8123456789012345}')")
        conn.execute("SELECT retrain.promote('dec_efd', 'v1', 'blue_green', override_reason => 'test')")
        conn.execute("CREATE TABLE dec_efd_train (x float8, y float8)")
        train = rng.normal(0, 1, (2000, 2)) * [1.0, 1e-7]
        conn.execute("INSERT INTO dec_efd_train SELECT * FROM unnest(%s::float8[], %s::float8[])",
                     (train[:, 0].tolist(), train[:, 1].tolist()))
        conn.execute("SELECT retrain.capture_baseline('dec_efd', 'v1', 'dec_efd_train', '{x, y}')")
        conn.execute("""SELECT retrain.set_policy('dec_efd', '{"triggers": {
            "confidence": {"min": 0.746409538355153, "window": "30 days"},
            "drift": {"psi": 0.2, "window": "30 days"},
            "performance": {"metric": "auc", "max_drop": 0.05, "min_labels": 1, "window": "30 days"}}}')""")
        scores = rng.uniform(0, 1, 500)
        xs = rng.normal(0.3, 1, 500)
        ys = rng.normal(0, 1, 500) * 1e-7
        conn.execute("""SELECT retrain.log_outcome(retrain.log_prediction('dec_efd', 'v1', 'u' || i, s, 10, false,
                                                   jsonb_build_object('x', x, 'y', y),
                                                   '2026-06-01 00:00+00'::timestamptz + i * interval '1 minute'),
                                                   s > 0.4, '2026-06-02 00:00+00')
                          FROM unnest(%s::float8[], %s::float8[], %s::float8[]) WITH ORDINALITY u(s, x, y, i)""",
                     (scores.tolist(), xs.tolist(), ys.tolist()))
        # each setting's figures kept in float8, and compared at one setting:
        # the client's own reading of float8 depends on extra_float_digits
        settings = (-15, -12, 0, 1, 3)
        for digits in settings:
            conn.execute(f"SET extra_float_digits = {digits}")
            conn.execute(f"CREATE TEMP TABLE efd_check_{digits + 15} AS SELECT trigger, fired, observed, threshold, "
                         "detail - 'eligibility' AS detail FROM retrain.check('dec_efd', '2026-06-10 00:00+00')")
            conn.execute(f"CREATE TEMP TABLE efd_drift_{digits + 15} AS SELECT feature, psi, js, missing_share, drifted "
                         "FROM retrain.drift('dec_efd', 'v1', 'dec_efd_train')")
        conn.execute("SET extra_float_digits = 3")
        for digits in settings[1:]:
            for kind in ("check", "drift"):
                differ = scalar(conn, f"SELECT count(*) FROM ((TABLE efd_{kind}_0 EXCEPT TABLE efd_{kind}_{digits + 15}) "
                                      f"UNION ALL (TABLE efd_{kind}_{digits + 15} EXCEPT TABLE efd_{kind}_0)) x")
                assert differ == 0, (kind, digits)
        confidence = scalar(conn, "SELECT observed FROM efd_check_0 WHERE trigger = 'confidence'")
        assert confidence is not None and confidence != round(confidence, 3), confidence
        assert scalar(conn, "SELECT count(*) FROM efd_drift_0 WHERE psi IS NOT NULL") == 2

if __name__ == "__main__":
    setup_module()
    run_suite(globals())
