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

-- Nothing to guard: no canary, and production's watch (rollback.watch, 24
-- hours after its release) is over.
SELECT count(*) AS decisions FROM retrain.guard_rollouts(now() + interval '25 hours');
SELECT count(*) AS guard_log_rows FROM retrain.log WHERE model = 'guarded' AND event = 'guard';

-- Not for PUBLIC.
CREATE ROLE retrain_regress_nobody;
SET SESSION AUTHORIZATION retrain_regress_nobody;
SELECT * FROM retrain.guard_rollouts();
RESET SESSION AUTHORIZATION;
DROP ROLE retrain_regress_nobody;

-- The owner's rollback check, "three critical feedback labels within an
-- hour": it rolls the canary back at once, before min_predictions.
-- Owner code runs with search_path pg_catalog, pg_temp: a table of the
-- owner's is named with its schema, or its schema is named in the policy.
CREATE SCHEMA guard_team;
CREATE TABLE guard_team.feedback (at timestamptz, severity text);
CREATE VIEW guard_feedback AS SELECT * FROM guard_team.feedback;
SELECT retrain.set_policy('guarded', policy || $${"search_path": ["guard_team"],
         "rollback": {"min_predictions": 100, "checks": {
         "critical_feedback": "SELECT count(*) >= 3 FROM feedback WHERE severity = 'critical' AND at > now() - interval '1 hour'"}}}$$)
       -> 'rollback' -> 'checks' ? 'critical_feedback' AS has_check
  FROM retrain.models WHERE name = 'guarded';
-- a schema every role may create in is refused: anyone could plant an
-- operator or function there that the check would run as the owner
CREATE SCHEMA guard_open;
GRANT CREATE ON SCHEMA guard_open TO PUBLIC;
SELECT retrain.set_policy('guarded', '{"search_path": ["guard_open"]}');
SELECT retrain.set_policy('guarded', '{"search_path": ["pg_temp"]}');
SELECT retrain.set_policy('guarded', '{"search_path": ["no_such_schema"]}');
SELECT retrain.set_policy('guarded', '{"search_path": "guard_team"}');
DROP SCHEMA guard_open;
SELECT retrain.set_policy('guarded', '{"rollback": {"checks": {"x": 1}}}');
SELECT retrain.register_version('guarded', v, 's3://m/' || v, repeat(c, 64), '{}')
  FROM (VALUES ('v4', 'd'), ('v5', 'e')) x(v, c);
SELECT retrain.promote('guarded', 'v4');
INSERT INTO guard_feedback VALUES (now() - interval '2 hours', 'critical'), (now(), 'critical'), (now(), 'minor'),
                                  (now(), 'critical');
SELECT model, canary, decision, reason FROM retrain.guard_rollouts();
INSERT INTO guard_feedback VALUES (now(), 'critical');
SELECT model, canary, decision, reason FROM retrain.guard_rollouts();
SELECT production_version, canary_version FROM retrain.deployments WHERE model = 'guarded';
SELECT details->>'reason' AS reason FROM retrain.log
 WHERE model = 'guarded' AND event = 'rolled_back' ORDER BY id DESC LIMIT 1;

-- A check runs as the model's owner: an owner who may not read the feedback
-- cannot judge the canary, which is held, neither advanced nor rolled back.
CREATE ROLE guard_owner;
UPDATE retrain.models SET owner = 'guard_owner' WHERE name = 'guarded';
SELECT retrain.promote('guarded', 'v5');
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '3 days');
SELECT production_version, canary_version, canary_percent FROM retrain.deployments WHERE model = 'guarded';
GRANT USAGE ON SCHEMA guard_team TO guard_owner;
GRANT SELECT ON guard_team.feedback TO guard_owner;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts();
REVOKE ALL ON guard_team.feedback FROM guard_owner;
REVOKE ALL ON SCHEMA guard_team FROM guard_owner;
UPDATE retrain.models SET owner = session_user WHERE name = 'guarded';
DROP VIEW guard_feedback;
DROP TABLE guard_team.feedback;
DROP SCHEMA guard_team;
DROP ROLE guard_owner;

DELETE FROM retrain.outcomes; DELETE FROM retrain.predictions;
DELETE FROM retrain.production_history WHERE model = 'guarded';
UPDATE retrain.deployments SET production_version = NULL, previous_version = NULL, canary_version = NULL
 WHERE model = 'guarded';
DELETE FROM retrain.model_versions WHERE model = 'guarded';
DELETE FROM retrain.deployments WHERE model = 'guarded';
DELETE FROM retrain.models WHERE name = 'guarded';

-- An approximate latency (from the rollups) is read again from the rows
-- when it is over its limit or within 2.5% below it; an exact one, or a
-- reference of 0, never.
SELECT retrain._latency_near_limit('{"max_latency_increase": 0.5}', j, r) AS near
  FROM (VALUES ('{"latency": 14.7, "latency_approx": true}'::jsonb, '{"latency": 10}'::jsonb),
               ('{"latency": 14.6, "latency_approx": true}', '{"latency": 10}'),
               ('{"latency": 99}', '{"latency": 10, "latency_approx": true}'),
               ('{"latency": 99}', '{"latency": 10}'),
               ('{"latency": 99, "latency_approx": true}', '{"latency": 0}'),
               ('{"latency": null, "latency_approx": true}', '{"latency": 10}')) x(j, r);
