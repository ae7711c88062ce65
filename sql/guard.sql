--
-- The rollout guard: roll back on the policy's limits, advance after the
-- dwell time, hold or wait otherwise.
--
\set SHOW_CONTEXT never

SELECT retrain.register_model('guarded', 'binary_classification');
SELECT retrain.set_policy('guarded', '{"rollout": {"steps": [10, 50, 100], "dwell": ["1 day", "2 days"]},
                                       "rollback": {"max_error_rate": 0.02, "max_latency_increase": 0.5,
                                                    "latency_percentile": 99, "min_predictions": 100}}')
       -> 'rollback' AS rollback_policy;
SELECT retrain.set_policy('guarded', '{"rollback": {"max_error_rate": "high"}}');
SELECT retrain.set_policy('guarded', '{"rollback": {"latency_percentile": 20}}');
SELECT retrain.register_version('guarded', v, 's3://m/' || v, repeat(c, 64), '{}')
  FROM (VALUES ('v1', 'a'), ('v2', 'b'), ('v3', 'c')) x(v, c);
SELECT retrain.promote('guarded', 'v1', 'blue_green');
SELECT retrain.promote('guarded', 'v2');

-- Too few canary predictions to judge.
SELECT count(*) FROM (SELECT retrain.log_prediction('guarded', 'v2', 'u' || i, 0.5, 10) FROM generate_series(1, 20) i) x;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts();

-- Healthy, and equal to production: hold during the day's dwell, then advance.
SELECT count(*) FROM (
    SELECT retrain.log_prediction('guarded', v, 'u' || i, 0.5, 10 + i % 5)
      FROM generate_series(1, 200) i, (VALUES ('v1'), ('v2')) x(v)) y;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts();
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '25 hours');
SELECT canary_version, canary_percent FROM retrain.deployments WHERE model = 'guarded';

-- Latency +100% against production: rolled back, with the reason logged.
SELECT count(*) FROM (
    SELECT retrain.log_prediction('guarded', 'v2', 'u' || i, 0.5, 40) FROM generate_series(1, 300) i) x;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '25 hours');
SELECT production_version, canary_version FROM retrain.deployments WHERE model = 'guarded';
SELECT event, version, details->>'reason' AS reason FROM retrain.log
 WHERE model = 'guarded' AND event IN ('rolled_back', 'advanced') ORDER BY id;

-- Error rate above 2%: v3 is rolled back too.
SELECT retrain.promote('guarded', 'v3');
SELECT count(*) FROM (
    SELECT retrain.log_prediction('guarded', 'v3', 'u' || i, 0.5, 10, i % 10 = 0) FROM generate_series(1, 200) i) x;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts();
SELECT production_version, canary_version FROM retrain.deployments WHERE model = 'guarded';

-- Nothing to guard.
SELECT count(*) AS decisions FROM retrain.guard_rollouts();
SELECT count(*) AS guard_log_rows FROM retrain.log WHERE model = 'guarded' AND event = 'guard';

-- Not for PUBLIC.
CREATE ROLE retrain_regress_nobody;
SET ROLE retrain_regress_nobody;
SELECT * FROM retrain.guard_rollouts();
RESET ROLE;
DROP ROLE retrain_regress_nobody;

DELETE FROM retrain.outcomes; DELETE FROM retrain.predictions;
DELETE FROM retrain.production_history WHERE model = 'guarded';
UPDATE retrain.deployments SET production_version = NULL, previous_version = NULL, canary_version = NULL
 WHERE model = 'guarded';
DELETE FROM retrain.model_versions WHERE model = 'guarded';
DELETE FROM retrain.deployments WHERE model = 'guarded';
DELETE FROM retrain.models WHERE name = 'guarded';
