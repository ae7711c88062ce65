--
-- Evidence recorded after registration and shadow as the architecture
-- describes it (issue 14, items 2 and 4); each threshold on both sides.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE ev_team;
CREATE ROLE ev_ci IN ROLE ev_team;
CREATE ROLE ev_other;
GRANT EXECUTE ON FUNCTION retrain.record_metrics(text, text, jsonb, text), retrain.evaluate(text, text),
                          retrain.shadow_report(text, timestamptz, boolean) TO ev_ci, ev_other;
SELECT retrain.register_model('ev', 'binary_classification');
SELECT retrain.set_owner('ev', 'ev_team');
SELECT retrain.register_version('ev', v, 's3://m/' || v, repeat(c, 64), m::jsonb)
  FROM (VALUES ('v1', 'a', '{"auc": 0.80, "conversion": 0.100}'),
               ('v2', 'b', '{"auc": 0.81}'),
               ('v3', 'c', '{"auc": 0.90}')) x(v, c, m);
SELECT retrain.promote('ev', 'v1', 'blue_green', override_reason => 'first release');

-- Item 2: "+2% AUC", the smoke figures and "+5% conversion", judged on the
-- latest recorded value of each metric.
SELECT retrain.set_policy('ev', '{"gates": [{"metric": "auc", "op": ">=", "ratio": 1.02},
                                           {"metric": "smoke_count", "op": ">=", "value": 100},
                                           {"metric": "smoke_in_range_share", "op": ">=", "value": 1},
                                           {"metric": "smoke_latency_p99_ms", "op": "<", "value": 1000},
                                           {"metric": "conversion", "op": ">=", "ratio": 1.05}],
                                 "approvals": {"risk": "ev_team"}}') IS NOT NULL AS set;
SELECT gate, required, observed, passed FROM retrain.evaluate('ev', 'v2');

-- A re-evaluation of AUC arrives from CI: exactly production x 1.02 passes,
-- a hair below fails; the latest record counts, and every record is kept.
SET SESSION AUTHORIZATION ev_ci;
SELECT retrain.record_metrics('ev', 'v2', '{"auc": 0.8159}', 'ci: governance workflow, release/2.0') AS metrics;
SELECT gate, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'auc%';
SELECT retrain.record_metrics('ev', 'v2', '{"auc": 0.816}', 'ci: governance workflow, release/2.0') AS metrics;
SELECT gate, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'auc%';
RESET SESSION AUTHORIZATION;
-- the registered figure is never overwritten
SELECT metrics FROM retrain.model_versions WHERE model = 'ev' AND version = 'v2';
SELECT metrics, source, recorded_by FROM retrain.metric_records WHERE model = 'ev' ORDER BY id;
SELECT version, actor, details->>'source' AS source, details->'metrics' AS metrics
  FROM retrain.log WHERE model = 'ev' AND event = 'metrics_recorded' ORDER BY id;

-- Business KPIs: +5% conversion is production's recorded value x 1.05.
SELECT retrain.record_metrics('ev', 'v1', '{"conversion": 0.120}', 'kpi dashboard') ->> 'conversion' AS production_now;
SELECT retrain.record_metrics('ev', 'v2', '{"conversion": 0.1259}', 'kpi dashboard') ->> 'conversion' AS v2;
SELECT gate, required, observed, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'conversion%';
SELECT retrain.record_metrics('ev', 'v2', '{"conversion": 0.126}', 'kpi dashboard') ->> 'conversion' AS v2;
SELECT gate, required, observed, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'conversion%';

-- Smoke tests from the logged predictions: 99 predictions are one short of
-- 100; the 100th passes; a p99 latency of exactly 1000 ms fails "< 1000".
SELECT count(retrain.log_prediction('ev', 'v2', 'u' || i, 0.5, 10 + i % 5, predicted_at => '2026-06-01 10:00+00'::timestamptz + i * interval '1 second'))
  FROM generate_series(1, 99) i;
SELECT retrain.smoke_test('ev', 'v2', '2026-06-01 10:00+00') AS smoke;
SELECT gate, required, observed, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'smoke%';
SELECT retrain.log_prediction('ev', 'v2', 'u100', 1.0, 14, predicted_at => '2026-06-01 10:05+00') > 0 AS logged;
SELECT retrain.smoke_test('ev', 'v2', '2026-06-01 10:00+00') AS smoke;
SELECT gate, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'smoke%';
-- one score outside [0, 1] and one slow prediction after 10:10
SELECT count(retrain.log_prediction('ev', 'v2', 'w' || i, CASE WHEN i = 1 THEN 1.5 ELSE 0.2 END,
                                    CASE WHEN i = 2 THEN 2000 ELSE 1000 END,
                                    predicted_at => '2026-06-01 10:10+00'::timestamptz + i * interval '1 second'))
  FROM generate_series(1, 3) i;
SELECT retrain.smoke_test('ev', 'v2', '2026-06-01 10:10+00') AS smoke;
SELECT gate, required, observed, passed FROM retrain.evaluate('ev', 'v2') WHERE gate LIKE 'smoke%';
SELECT source FROM retrain.metric_records WHERE model = 'ev' AND source LIKE 'smoke%' ORDER BY id;

-- Bad input.
SELECT retrain.record_metrics('ev', 'v2', NULL, 'x');
SELECT retrain.record_metrics('ev', 'v2', '{"auc": "high"}', 'x');
SELECT retrain.record_metrics('ev', 'v2', '{}', 'x');
SELECT retrain.record_metrics('ev', 'v2', '[0.9]', 'x');
SELECT retrain.record_metrics('ev', 'v2', '{"auc": 0.9}', ' ');
SELECT retrain.record_metrics('ev', 'v2', '{"auc": 0.9}', NULL);
SELECT retrain.record_metrics('ev', 'v9', '{"auc": 0.9}', 'x');
SELECT retrain.record_metrics('nosuch', 'v2', '{"auc": 0.9}', 'x');
SELECT retrain.record_metrics(NULL, 'v2', '{"auc": 0.9}', 'x');
SELECT retrain.smoke_test('ev', 'v2', NULL);
SELECT retrain.smoke_test(NULL, 'v2', '2026-06-01');
SELECT retrain.smoke_test('ev', 'v9', '2026-06-01');
SELECT retrain.smoke_test('ev', 'v2', '2999-01-01 00:00+00');
-- Another team may not vouch for this team's version.
SET SESSION AUTHORIZATION ev_other;
SELECT retrain.record_metrics('ev', 'v2', '{"auc": 0.99}', 'trust me');
RESET SESSION AUTHORIZATION;

-- Item 4: entering shadow needs the gates, not sign-offs (a shadow serves
-- nobody); serving anyone needs both.
SELECT retrain.promote('ev', 'v3', 'shadow');
SELECT retrain.record_metrics('ev', 'v3', '{"smoke_count": 100, "smoke_in_range_share": 1, "smoke_latency_p99_ms": 12, "conversion": 0.2}',
                              'staging smoke run') IS NOT NULL AS recorded;
SELECT retrain.promote('ev', 'v3', 'shadow');
SELECT bool_and(passed) AS gates_pass FROM retrain.evaluate('ev', 'v3');
SELECT retrain.promote('ev', 'v3', 'shadow');
SELECT shadow_version, shadow_since IS NOT NULL AS since_set FROM retrain.deployments WHERE model = 'ev';
SELECT retrain.promote('ev', 'v3', 'canary');

-- rollout.shadow_min: 7 days in shadow before any traffic.
SELECT retrain.set_policy('ev', retrain.effective_policy('ev') - 'approvals' || '{"rollout": {"steps": [10, 100], "shadow_min": "7 days"}}') IS NOT NULL AS set;
SELECT retrain.set_policy('ev', '{"rollout": {"shadow_min": "soon"}}');
SELECT retrain.set_policy('ev', '{"rollout": {"shadow_min": 7}}');
\set VERBOSITY default
SELECT retrain.promote('ev', 'v3', 'canary');
\set VERBOSITY terse
-- six days, 23 hours, 59 minutes and 59 seconds later: a second short
UPDATE retrain.deployments SET shadow_since = now() - interval '7 days' + interval '1 second' WHERE model = 'ev';
SELECT retrain.promote('ev', 'v3', 'blue_green');
-- exactly seven days (and the instant this statement takes) is enough
UPDATE retrain.deployments SET shadow_since = now() - interval '7 days' WHERE model = 'ev';
SELECT retrain.promote('ev', 'v3', 'canary');
SELECT canary_version, shadow_version, shadow_since FROM retrain.deployments WHERE model = 'ev';
SELECT retrain.rollback('ev', 'test over');
-- a version that never served in shadow
SELECT retrain.register_version('ev', 'v4', 's3://m/v4', repeat('d', 64), '{"auc": 0.95, "smoke_count": 100, "smoke_in_range_share": 1, "smoke_latency_p99_ms": 12, "conversion": 0.2}') IS NULL AS registered;
SELECT retrain.evaluate('ev', 'v4') IS NOT NULL AS evaluated;
\set VERBOSITY default
SELECT retrain.promote('ev', 'v4', 'blue_green');
\set VERBOSITY terse

-- shadow_report: the shadow beside production on the same units, paired by
-- unit and time.  v4 scores in shadow; six units, both versions, four
-- labelled (production ranks b below d, the shadow does not); one unit
-- scored by v4 at another time does not pair.
SELECT retrain.promote('ev', 'v4', 'shadow');
SELECT count(*) FROM (
  SELECT retrain.log_prediction('ev', v, u, s, 5, predicted_at => '2026-07-01 00:00+00'::timestamptz + i * interval '1 minute')
    FROM (VALUES (1, 'a', 0.9, 0.8), (2, 'b', 0.2, 0.4), (3, 'c', 0.6, 0.45), (4, 'd', 0.3, 0.3),
                 (5, 'e', 0.7, 0.9), (6, 'f', 0.1, 0.2)) x(i, u, ps, ss),
         LATERAL (VALUES ('v1', ps), ('v4', ss)) y(v, s)) z;
SELECT retrain.log_prediction('ev', 'v4', 'g', 0.5, predicted_at => '2026-07-01 00:30+00') > 0 AS unpaired;
SELECT count(*) FROM (SELECT retrain.log_outcome(p.id, l)
  FROM retrain.predictions p JOIN (VALUES ('a', true), ('b', true), ('c', true), ('d', false)) x(u, l) ON x.u = p.unit_key
 WHERE p.model = 'ev' AND p.version = 'v1' AND p.predicted_at >= '2026-07-01 00:00+00') z;
SELECT key, value FROM jsonb_each(retrain.shadow_report('ev', '2026-07-01 00:00+00') - 'until') ORDER BY key;
-- recorded as the shadow's evidence, for gates such as shadow_agreement >= 0.8
SELECT retrain.shadow_report('ev', '2026-07-01 00:00+00', record => true) ? 'shadow_spearman' AS reported;
SELECT version, source LIKE 'shadow_report against v1 since %' AS source, metrics->'shadow_pairs' AS pairs
  FROM retrain.metric_records WHERE model = 'ev' AND source LIKE 'shadow_report%';
-- since the shadow started (now): nothing paired yet
SELECT retrain.shadow_report('ev')->'shadow_pairs' AS pairs_since_start;
SELECT retrain.shadow_report('ev', NULL, NULL);
SELECT retrain.shadow_report('gt_nosuch');
SELECT retrain.shadow_report(NULL);
SET SESSION AUTHORIZATION ev_other;
SELECT retrain.shadow_report('ev');
RESET SESSION AUTHORIZATION;
-- no shadow, no report
UPDATE retrain.deployments SET shadow_since = now() - interval '8 days' WHERE model = 'ev';
SELECT retrain.promote('ev', 'v4', 'blue_green');
SELECT retrain.shadow_report('ev');

-- Clean up.
SELECT retrain.set_owner('ev', current_user);
REVOKE ALL ON FUNCTION retrain.record_metrics(text, text, jsonb, text), retrain.evaluate(text, text),
                       retrain.shadow_report(text, timestamptz, boolean) FROM ev_ci, ev_other;
DROP ROLE ev_ci;
DROP ROLE ev_other;
DROP ROLE ev_team;
