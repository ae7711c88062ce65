--
-- Bounds on what a policy or a caller can ask for: intervals between 1
-- second and 10 years with one sign, traffic steps that differ at two
-- decimals, histograms of at most retrain.max_bins buckets, and the
-- settings that bound them.
--
\set SHOW_CONTEXT never

SELECT retrain.register_model('bounded', 'regression');

-- Every interval of a policy: windows, dwell, claim_timeout, cooldown, a
-- schedule's interval.
SELECT retrain.set_policy('bounded', '{"requests": {"cooldown": "1 second", "claim_timeout": "10 years"}}')
       -> 'requests' AS at_the_bounds;
SELECT retrain.set_policy('bounded', '{"requests": {"cooldown": "0.5 seconds"}}');
SELECT retrain.set_policy('bounded', '{"requests": {"cooldown": "10 years 1 day"}}');
SELECT retrain.set_policy('bounded', '{"requests": {"claim_timeout": "1 day -23 hours"}}');
SELECT retrain.set_policy('bounded', '{"requests": {"claim_timeout": "-1 hour"}}');
SELECT retrain.set_policy('bounded', '{"triggers": {"drift": {"window": "20 years"}}}');
SELECT retrain.set_policy('bounded', '{"triggers": {"schedule": {"interval": "1 month -30 days"}}}');
SELECT retrain.set_policy('bounded', '{"rollout": {"steps": [10, 100], "dwell": ["100 years"]}}');
SELECT retrain.schedule_occurrence('{"interval": "11 years"}', '2026-06-01', '2026-01-01');

-- Traffic is kept to two decimals: steps that round to the same value, or
-- a first step that rounds to 0, are refused.
SELECT retrain.set_policy('bounded', '{"rollout": {"steps": [0.01, 0.02, 100]}}') -> 'rollout' AS two_decimals;
SELECT retrain.set_policy('bounded', '{"rollout": {"steps": [10.001, 10.004, 100]}}');
SELECT retrain.set_policy('bounded', '{"rollout": {"steps": [0.001, 100]}}');

-- Histograms and quantiles: at most retrain.max_bins buckets (10,000), a
-- bound on what one call may allocate; a superuser may raise it.
SHOW retrain.max_bins;
SELECT retrain.quantile_edges(x, 10001) FROM generate_series(1, 10) x;
SELECT retrain.histogram(x, ARRAY(SELECT generate_series(1, 10000)::float8)) FROM generate_series(1, 10) x;
SELECT cardinality(retrain.histogram(x, ARRAY(SELECT generate_series(1, 9999)::float8))) AS buckets
  FROM generate_series(1, 10) x;
SET retrain.max_bins = 20000;
SELECT cardinality(retrain.quantile_edges(x, 10001)) AS edges FROM generate_series(1, 20000) x;
RESET retrain.max_bins;
SHOW retrain.check_timeout;
CREATE ROLE retrain_regress_plain;
SET SESSION AUTHORIZATION retrain_regress_plain;
SET retrain.max_bins = 20000;
SET retrain.check_timeout = 0;
RESET SESSION AUTHORIZATION;
DROP ROLE retrain_regress_plain;

-- Clean up.
DELETE FROM retrain.deployments WHERE model = 'bounded';
DELETE FROM retrain.models WHERE name = 'bounded';
