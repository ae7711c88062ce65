--
-- Retraining triggers: schedule_occurrence, check() around each threshold,
-- run_checks() making one request.
--
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

-- Schedules, in UTC.  Weekly, Sunday 02:00.
SELECT at, retrain.schedule_occurrence('{"every": "week", "weekday": "sunday", "at": "02:00"}', at) AS occurrence
  FROM unnest(ARRAY['2026-06-07 01:59+00', '2026-06-07 02:00+00', '2026-06-13 23:00+00']::timestamptz[]) at;
-- The second Tuesday of every month at 02:00, across month and year ends.
SELECT at, retrain.schedule_occurrence('{"every": "month", "weekday": "tuesday", "nth": 2, "at": "02:00"}', at) AS occurrence
  FROM unnest(ARRAY['2026-06-09 02:00+00', '2026-06-09 01:00+00', '2026-07-01 00:00+00',
                    '2026-01-05 00:00+00', '2026-03-10 02:00+00']::timestamptz[]) at;
-- A fifth Friday exists only in some months.
SELECT retrain.schedule_occurrence('{"every": "month", "weekday": "friday", "nth": 5}', '2026-06-15') AS fifth_friday;
-- The first of the month; every 3 months since the last training.
SELECT retrain.schedule_occurrence('{"every": "month", "day": 1, "at": "03:00"}', '2026-03-01 02:00+00') AS first_of_month,
       retrain.schedule_occurrence('{"interval": "3 months"}', '2026-08-15', '2026-01-31') AS quarterly,
       retrain.schedule_occurrence('{"interval": "3 months"}', '2026-03-15', '2026-01-31') AS not_yet,
       retrain.schedule_occurrence('{"interval": "3 months"}', '2026-03-15', NULL) AS never_trained;

-- Intervals since the last training are calendar arithmetic, exact however
-- long ago it was: a minute's schedule after two years, a month after 31
-- January (28 February, then 31 March).
SELECT retrain.schedule_occurrence('{"interval": "1 minute"}', '2026-11-22 10:00:30+00', '2024-11-22 00:00+00') AS minutely,
       retrain.schedule_occurrence('{"interval": "1 month"}', '2026-03-30', '2026-01-31') AS monthly,
       retrain.schedule_occurrence('{"interval": "1 month"}', '2026-03-31', '2026-01-31') AS monthly_later;
-- An invalid schedule is an error, not a silent NULL.
SELECT retrain.schedule_occurrence('{"every": "fortnight"}', '2026-06-01');
SELECT retrain.schedule_occurrence('{"every": "week", "weekday": "funday"}', '2026-06-01');
SELECT retrain.schedule_occurrence('{"every": "month", "day": 1, "at": "25:00"}', '2026-06-01');
SELECT retrain.schedule_occurrence('{"interval": "-1 day"}', '2026-06-01', '2026-01-01');
SELECT retrain.schedule_occurrence('{"every": "month", "nth": "2", "weekday": "tuesday"}', '2026-06-01');
-- PARALLEL SAFE holds: read from a table (constants would be folded in the
-- leader), it runs in a parallel worker as in the leader; the validator
-- needs no subtransaction, which a worker may not start.
CREATE TABLE trig_schedules (schedule jsonb, at timestamptz);
INSERT INTO trig_schedules VALUES ('{"every": "month", "weekday": "tuesday", "nth": 2, "at": "02:00"}', '2026-07-01'),
                                  ('{"every": "month", "nth": 2.0, "weekday": "tuesday"}', '2026-07-01');
-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS parallel_setting \gset
SET :parallel_setting = on;
SELECT current_setting(:'parallel_setting') AS forced_parallel;
SELECT schedule, retrain.schedule_occurrence(schedule, at) FROM trig_schedules ORDER BY schedule;
INSERT INTO trig_schedules VALUES ('{"every": "fortnight"}', '2026-06-01');
SELECT retrain.schedule_occurrence(schedule, at) FROM trig_schedules;
RESET :parallel_setting;
DROP TABLE trig_schedules;

-- A model with a production version, a baseline and triggers.
CREATE TABLE trig_training AS
SELECT (i % 100)::float8 AS a, (ARRAY['x', 'y'])[1 + i % 2] AS c FROM generate_series(1, 1000) i;
SELECT retrain.register_model('trig', 'binary_classification');
SELECT retrain.register_version('trig', 'v1', 's3://m/v1', repeat('a', 64), '{"f1": 0.80}',
                                data_range => '[2026-01-01, 2026-05-01)', features => '{a, c}');
SELECT retrain.capture_baseline('trig', 'v1', 'trig_training', '{a, c}');
SELECT retrain.promote('trig', 'v1', 'blue_green');
SELECT retrain.set_policy('trig', '{
  "triggers": {"drift": {"psi": 0.25, "aggregate": "max", "window": "7 days"},
               "performance": {"metric": "f1", "max_drop": 0.05, "min_labels": 50, "window": "7 days"},
               "data_growth": {"count": 300},
               "confidence": {"min": 0.7, "window": "7 days"},
               "schedule": {"every": "week", "weekday": "sunday", "at": "02:00"},
               "feature_change": {"window": "365 days"}},
  "eligibility": {"min_new_labels": 25}}') ? 'triggers' AS policy_set;
UPDATE retrain.models SET created_at = '2026-05-01' WHERE name = 'trig';

-- Week 1 (June 1-7): traffic like the training data, confident, labelled and accurate.
SELECT count(*) FROM (
    SELECT retrain.log_prediction('trig', 'v1', 'u' || i, CASE WHEN i % 2 = 0 THEN 0.95 ELSE 0.05 END, 10, false,
                                  jsonb_build_object('a', i % 100, 'c', (ARRAY['x', 'y'])[1 + i % 2]),
                                  '2026-06-01 00:00+00'::timestamptz + i * interval '5 minutes')
      FROM generate_series(1, 1000) i) x;
INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
SELECT id, score > 0.5, predicted_at + interval '1 hour' FROM retrain.predictions
 WHERE model = 'trig' AND substr(unit_key, 2)::integer % 4 = 0;
SELECT trigger, fired, round(observed::numeric, 4) AS observed, round(threshold::numeric, 4) AS threshold, eligible
  FROM retrain.check('trig', '2026-06-05 12:00+00');

-- Before the 25th new label, nothing is eligible.
SELECT DISTINCT eligible FROM retrain.check('trig', '2026-06-01 03:00+00');

-- Week 2 (June 8-14): amounts shifted, confidence low, a new feature, wrong labels.
SELECT count(*) FROM (
    SELECT retrain.log_prediction('trig', 'v1', 'u' || i, 0.55, 10, false,
                                  jsonb_build_object('a', 60 + i % 100, 'c', 'x', 'z', 1),
                                  '2026-06-08 00:00+00'::timestamptz + i * interval '5 minutes')
      FROM generate_series(1, 1000) i) x;
INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
SELECT id, substr(unit_key, 2)::integer % 3 = 0, predicted_at + interval '1 hour' FROM retrain.predictions
 WHERE model = 'trig' AND predicted_at >= '2026-06-08' AND substr(unit_key, 2)::integer % 4 = 0;
SELECT trigger, fired, round(observed::numeric, 4) AS observed, round(threshold::numeric, 4) AS threshold, eligible,
       detail->'added' AS added
  FROM retrain.check('trig', '2026-06-12 00:00+00');

-- check() changed nothing.
SELECT count(*) AS requests FROM retrain.requests WHERE model = 'trig';

-- Every default lives in one place, _policy_defaults(), which
-- effective_policy() merges under the policy: a policy that names no psi
-- and no min_labels gets 0.25 and 100; changed there, check() uses the new
-- ones (in a transaction rolled back).
BEGIN;
SELECT retrain.set_policy('trig', policy #- '{triggers,drift,psi}' #- '{triggers,performance,min_labels}')
       -> 'triggers' -> 'drift' -> 'psi' AS default_psi
  FROM retrain.models WHERE name = 'trig';
SELECT trigger, fired, round(threshold::numeric, 4) AS threshold, detail->'min_labels' AS min_labels
  FROM retrain.check('trig', '2026-06-12 00:00+00') WHERE trigger IN ('drift', 'performance');
ROLLBACK;
-- (a new transaction: a function's plan keeps what it folded for the rest of one)
BEGIN;
SELECT retrain.set_policy('trig', policy #- '{triggers,drift,psi}' #- '{triggers,performance,min_labels}') ? 'triggers'
  FROM retrain.models WHERE name = 'trig';
DO $$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION retrain._policy_defaults() RETURNS jsonb '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN %L::jsonb',
                   jsonb_set(jsonb_set(retrain._policy_defaults(), '{triggers,drift,psi}', '9'),
                             '{triggers,performance,min_labels}', '1000'));
END
$$;
SELECT trigger, fired, round(threshold::numeric, 4) AS threshold, detail->'min_labels' AS min_labels
  FROM retrain.check('trig', '2026-06-12 00:00+00') WHERE trigger IN ('drift', 'performance');
ROLLBACK;

-- run_checks() makes one request with every fired trigger's reason; a second
-- run joins it instead of making another, and the week's schedule
-- occurrence does not fire twice.
SELECT retrain.run_checks() AS new_requests;
SELECT status, jsonb_array_length(reasons) AS reason_entries,
       (SELECT array_agg(split_part(x, ':', 1) ORDER BY x)
          FROM unnest(string_to_array(reasons->0->>'reason', '; ')) x) AS triggers
  FROM retrain.requests WHERE model = 'trig';
SELECT retrain.run_checks() AS new_requests;
SELECT last_occurrence IS NOT NULL AS schedule_recorded FROM retrain.trigger_state WHERE model = 'trig';
SELECT fired FROM retrain.check('trig', now()) WHERE trigger = 'schedule';
SELECT event, details->'fired' AS fired FROM retrain.log WHERE model = 'trig' AND event = 'checked' ORDER BY id;

-- A trainer answers the request with v2.  While v2 is on its way (registered,
-- shadow or canary), v1's drift would only make the same request again: not
-- eligible, for at most the policy's cooldown (7 days) after the request was
-- finished; once v2 is released or discarded, eligible again.
SELECT retrain.register_version('trig', 'v2', 's3://m/v2', repeat('c', 64), '{"f1": 0.85}');
SELECT status FROM retrain.claim_request('regress-trainer');
SELECT status, version FROM retrain.finish_request((SELECT id FROM retrain.requests WHERE model = 'trig'), 'done', 'v2');
SELECT DISTINCT eligible, detail->'eligibility'->'in_flight'->>'version' AS in_flight,
       detail->'eligibility'->'in_flight'->>'stage' AS stage
  FROM retrain.check('trig', now() + interval '1 minute');
SELECT DISTINCT eligible, detail->'eligibility'->'in_flight' AS in_flight
  FROM retrain.check('trig', now() + interval '8 days');
SELECT retrain.run_checks() AS new_requests;
SELECT retrain.promote('trig', 'v2');
SELECT retrain.rollback('trig', 'regress: discard v2');
SELECT DISTINCT eligible, detail->'eligibility'->'in_flight' AS in_flight
  FROM retrain.check('trig', now() + interval '1 minute');

-- A model whose check fails is logged and skipped.
SELECT retrain.register_model('trig_broken', 'binary_classification');
SELECT retrain.register_version('trig_broken', 'v1', 's3://m', repeat('b', 64), '{"f1": 0.9}');
SELECT retrain.promote('trig_broken', 'v1', 'blue_green');
SELECT retrain.capture_baseline('trig_broken', 'v1', 'trig_training', '{a}');
SELECT retrain.set_policy('trig_broken', '{"triggers": {"drift": {"psi": 0.1}}}') ? 'triggers';
-- a value that is not a number counts as missing, not as an error
SELECT retrain.log_prediction('trig_broken', 'v1', 'u', 0.5, features => '{"a": "not a number"}') > 0;
SELECT trigger, fired IS NOT NULL AS evaluated FROM retrain.check('trig_broken') WHERE trigger = 'drift';
-- a source that is gone fails the check
CREATE TABLE trig_broken_src (version text, predicted_at timestamptz, score float8);
SELECT retrain.set_source('trig_broken', 'trig_broken_src');
DROP TABLE trig_broken_src;
-- (the one new request is trig's: v2 was discarded, v1 still drifts)
SELECT retrain.run_checks() AS new_requests;
SELECT event, details->>'sqlstate' AS sqlstate FROM retrain.log WHERE model = 'trig_broken' AND event LIKE 'check%' ORDER BY id;

SELECT retrain.check('nope');
SELECT retrain.check(NULL);
SELECT retrain.check('trig', NULL);

-- Not for PUBLIC.
CREATE ROLE retrain_regress_nobody;
SET SESSION AUTHORIZATION retrain_regress_nobody;
SELECT retrain.run_checks();
SELECT * FROM retrain.check('trig');
RESET SESSION AUTHORIZATION;
DROP ROLE retrain_regress_nobody;

-- The cycle as the worker and the pg_cron job run it: every model in a
-- transaction of its own, then the log's head written to the server log.
-- A procedure: not inside a transaction block.  What it visits, in order:
-- the running canaries' guards, then every model's checks.
SELECT * FROM retrain._cycle_plan() WITH ORDINALITY WHERE model LIKE 'trig%';
BEGIN;
SELECT retrain.register_version('trig_broken', 'v2', 's3://m/v2', repeat('d', 64), '{}') IS NOT NULL AS registered;
SELECT retrain.promote('trig_broken', 'v2', 'canary');
SELECT * FROM retrain._cycle_plan() WITH ORDINALITY WHERE model LIKE 'trig%';
ROLLBACK;
SELECT max(id) AS before_cycle FROM retrain.log \gset
CALL retrain.run_cycle();
SELECT count(*) = 0 AS every_model_checked FROM retrain.models m
 WHERE NOT EXISTS (SELECT 1 FROM retrain.log l
                    WHERE l.id > :before_cycle AND l.model = m.name AND l.event IN ('checked', 'check_failed'));
BEGIN;
CALL retrain.run_cycle();
ROLLBACK;

-- Clean up.
DELETE FROM retrain.requests; DELETE FROM retrain.outcomes; DELETE FROM retrain.predictions;
DELETE FROM retrain.trigger_state; DELETE FROM retrain.baselines;
DELETE FROM retrain.production_history WHERE model LIKE 'trig%';
UPDATE retrain.deployments SET production_version = NULL, previous_version = NULL WHERE model LIKE 'trig%';
DELETE FROM retrain.model_versions WHERE model LIKE 'trig%';
DELETE FROM retrain.deployments WHERE model LIKE 'trig%';
DELETE FROM retrain.models WHERE name LIKE 'trig%';
DROP TABLE trig_training;
