--
-- set_source(): a model reads its predictions and outcomes from its own
-- table or view, with its owner's privileges; check() and guard_rollouts()
-- see the same numbers as from retrain.predictions.
--
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

CREATE ROLE src_owner;
CREATE ROLE src_operator;
GRANT EXECUTE ON FUNCTION retrain.register_model(text, text, text), retrain.set_source(text, regclass)
    TO src_owner, src_operator;

-- The same month of traffic three ways: in retrain.predictions (model
-- "builtin"), in the team's own log with a jsonb features column (model
-- "own"; the table holds other models' rows too), and in a wide table with
-- one column per feature and no model column (model "wide").
CREATE TABLE src_traffic AS
SELECT i, 'u' || i AS unit_key,
       CASE WHEN week = 1 THEN '2026-06-01 00:00+00'::timestamptz ELSE '2026-06-08 00:00+00' END
           + (i % 1000) * interval '5 minutes' AS predicted_at,
       CASE WHEN week = 1 THEN CASE WHEN i % 2 = 0 THEN 0.95 ELSE 0.05 END ELSE 0.55 END AS score,
       10 + i % 7 AS latency_ms,
       CASE WHEN week = 1 THEN (i % 100)::float8 ELSE (60 + i % 100)::float8 END AS a,
       CASE WHEN week = 1 THEN (ARRAY['x', 'y'])[1 + i % 2] ELSE 'x' END AS c,
       CASE WHEN i % 4 <> 0 THEN NULL WHEN week = 1 THEN i % 2 = 0 ELSE i % 3 = 0 END AS label
  FROM generate_series(1, 2000) i, LATERAL (SELECT CASE WHEN i <= 1000 THEN 1 ELSE 2 END AS week) w;

CREATE TABLE src_log (model text, version text, unit_key text, predicted_at timestamptz, score float8,
                      latency_ms float8, error boolean, features jsonb, label boolean, observed_at timestamptz);
INSERT INTO src_log
SELECT 'own', 'v1', unit_key, predicted_at, score, latency_ms, false, jsonb_build_object('a', a, 'c', c),
       label, CASE WHEN label IS NOT NULL THEN predicted_at + interval '1 hour' END
  FROM src_traffic;
-- another model's rows in the same table, far off: they must not count
INSERT INTO src_log
SELECT 'other', 'v1', unit_key, predicted_at, 1 - score, 5000, true, '{"a": 1e6}', NOT label, observed_at FROM src_log;

CREATE TABLE src_wide (version text, predicted_at timestamptz, score numeric, latency_ms integer,
                       label boolean, observed_at timestamptz, a float8, c text);
INSERT INTO src_wide
SELECT 'v1', predicted_at, score, latency_ms, label, CASE WHEN label IS NOT NULL THEN predicted_at + interval '1 hour' END, a, c
  FROM src_traffic;
GRANT SELECT ON src_log, src_wide TO src_owner;

SELECT retrain.register_model('builtin', 'binary_classification');
SELECT count(retrain.log_prediction('builtin', 'v1', unit_key, score, latency_ms, false,
                                    jsonb_build_object('a', a, 'c', c), predicted_at))
  FROM src_traffic;
INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
SELECT p.id, t.label, p.predicted_at + interval '1 hour'
  FROM retrain.predictions p JOIN src_traffic t ON t.unit_key = p.unit_key
 WHERE p.model = 'builtin' AND t.label IS NOT NULL;

SET SESSION AUTHORIZATION src_owner;
SELECT retrain.register_model('own', 'binary_classification');
SELECT retrain.register_model('wide', 'binary_classification');
SELECT retrain.set_source('own', 'src_log');
SELECT retrain.set_source('wide', 'src_wide');
RESET SESSION AUTHORIZATION;
SELECT name, source FROM retrain.models WHERE name IN ('builtin', 'own', 'wide') ORDER BY name;
SELECT details FROM retrain.log WHERE model = 'wide' AND event = 'source_set';

CREATE TABLE src_training AS
SELECT (i % 100)::float8 AS a, (ARRAY['x', 'y'])[1 + i % 2] AS c FROM generate_series(1, 1000) i;
DO $$
DECLARE
    m text;
BEGIN
    FOREACH m IN ARRAY ARRAY['builtin', 'own', 'wide'] LOOP
        PERFORM retrain.register_version(m, 'v1', 's3://m/v1', repeat('a', 64), '{"f1": 0.80}',
                                         data_range => '[2026-01-01, 2026-05-01)', features => '{a, c}');
        PERFORM retrain.capture_baseline(m, 'v1', 'src_training');
        PERFORM retrain.promote(m, 'v1', 'blue_green');
        PERFORM retrain.set_policy(m, '{
          "triggers": {"drift": {"psi": 0.25, "aggregate": "max", "window": "7 days"},
                       "performance": {"metric": "f1", "max_drop": 0.05, "min_labels": 50, "window": "7 days"},
                       "data_growth": {"count": 300},
                       "confidence": {"min": 0.7, "window": "7 days"},
                       "feature_change": {}},
          "eligibility": {"min_new_labels": 25}}');
    END LOOP;
END
$$;

-- Week 1: nothing fires; week 2: drift, performance, confidence, data growth.
SELECT trigger, fired, round(observed::numeric, 4) AS observed, round(threshold::numeric, 4) AS threshold, eligible
  FROM retrain.check('own', '2026-06-05 12:00+00');
SELECT trigger, fired, round(observed::numeric, 4) AS observed, round(threshold::numeric, 4) AS threshold, eligible
  FROM retrain.check('wide', '2026-06-12 00:00+00');
-- Every row of check() agrees across the three, at both times.
SELECT at, count(DISTINCT m) AS models, count(*) AS rows,
       count(DISTINCT (trigger, fired, observed, threshold, eligible, detail)) AS distinct_rows
  FROM unnest(ARRAY['2026-06-05 12:00+00', '2026-06-12 00:00+00']::timestamptz[]) at,
       unnest(ARRAY['builtin', 'own', 'wide']) m,
       LATERAL retrain.check(m, at) c
 GROUP BY at ORDER BY at;

-- A wide source's columns are its features: a new column is a feature
-- change, as a new key in the features document is.
ALTER TABLE src_wide ADD COLUMN tenure integer;
SELECT fired, detail->'added' AS added, detail->'dropped' AS dropped
  FROM retrain.check('wide', '2026-06-12 00:00+00') WHERE trigger = 'feature_change';
ALTER TABLE src_wide DROP COLUMN c;
SELECT fired, detail->'added' AS added, detail->'dropped' AS dropped
  FROM retrain.check('wide', '2026-06-12 00:00+00') WHERE trigger = 'feature_change';
-- the dropped column's drift reads as missing values: only a's PSI remains
SELECT detail->'features' AS features_with_psi
  FROM retrain.check('wide', '2026-06-12 00:00+00') WHERE trigger = 'drift';

-- The source is read with the owner's privileges, never the extension's:
-- a view that shows rows only to its reader src_owner still shows them,
-- and a source the owner can no longer read fails the model's check.
CREATE VIEW src_owner_only AS SELECT * FROM src_log WHERE current_user = 'src_owner';
GRANT SELECT ON src_owner_only TO src_owner;
SET SESSION AUTHORIZATION src_owner;
SELECT retrain.set_source('own', 'src_owner_only');
RESET SESSION AUTHORIZATION;
SELECT count(*) AS rows_seen_by_superuser FROM src_owner_only;
SELECT detail->'predictions' AS predictions_seen_as_owner
  FROM retrain.check('own', '2026-06-12 00:00+00') WHERE trigger = 'confidence';
REVOKE SELECT ON src_owner_only FROM src_owner;
SELECT retrain.check('own', '2026-06-12 00:00+00');
SELECT retrain.run_checks() >= 0 AS ran;
SELECT event, details->>'sqlstate' AS sqlstate, details->>'message' AS message
  FROM retrain.log WHERE model = 'own' ORDER BY id DESC LIMIT 1;
GRANT SELECT ON src_owner_only TO src_owner;

-- A dropped source fails clearly; NULL goes back to retrain.predictions.
CREATE TABLE src_gone (version text, predicted_at timestamptz, score float8);
GRANT SELECT ON src_gone TO src_owner;
SET SESSION AUTHORIZATION src_owner;
SELECT retrain.set_source('wide', 'src_gone');
RESET SESSION AUTHORIZATION;
DROP TABLE src_gone;
SELECT retrain.check('wide', '2026-06-12 00:00+00');
SET SESSION AUTHORIZATION src_owner;
SELECT retrain.set_source('wide', NULL);
RESET SESSION AUTHORIZATION;
SELECT source IS NULL AS back_to_predictions FROM retrain.models WHERE name = 'wide';
SELECT count(*) AS rows FROM retrain.check('wide', '2026-06-12 00:00+00');

-- Bad input.
SELECT retrain.set_source(NULL, 'src_log');
SELECT retrain.set_source('nosuch', 'src_log');
SELECT retrain.set_source('own', 'nosuch_table');
CREATE TABLE src_no_score (version text, predicted_at timestamptz);
CREATE TABLE src_text_score (version text, predicted_at timestamptz, score text);
CREATE TABLE src_naive_time (version text, predicted_at timestamp, score float8);
CREATE TABLE src_no_grant (version text, predicted_at timestamptz, score float8);
CREATE INDEX src_log_idx ON src_log (predicted_at);
GRANT SELECT ON src_no_score, src_text_score, src_naive_time TO src_owner;
SELECT retrain.set_source('own', 'src_no_score');
SELECT retrain.set_source('own', 'src_text_score');
SELECT retrain.set_source('own', 'src_naive_time');
SELECT retrain.set_source('own', 'src_log_idx');
SELECT retrain.set_source('own', 'src_no_grant');
-- only who may act as the owner chooses what the owner's privileges read
SET SESSION AUTHORIZATION src_operator;
SELECT retrain.set_source('own', 'src_log');
RESET SESSION AUTHORIZATION;
-- not for PUBLIC
SELECT has_function_privilege('public', 'retrain.set_source(text, regclass)', 'EXECUTE') AS public_may;

-- The rollout guard reads the canary from the source too: a version 2
-- whose p99 latency is double production's is rolled back.
SET SESSION AUTHORIZATION src_owner;
SELECT retrain.set_source('own', 'src_log');
RESET SESSION AUTHORIZATION;
SELECT retrain.register_version('own', 'v2', 's3://m/v2', repeat('b', 64), '{"f1": 0.82}');
SELECT retrain.set_policy('own', '{"rollback": {"max_latency_increase": 0.5, "latency_percentile": 99,
                                                "min_predictions": 50}}') IS NOT NULL AS policy_set;
SELECT retrain.promote('own', 'v2');
INSERT INTO src_log (model, version, unit_key, predicted_at, score, latency_ms, error)
SELECT 'own', CASE WHEN i % 10 = 0 THEN 'v2' ELSE 'v1' END, 'n' || i, now() + interval '1 second' * (i % 60),
       0.9, CASE WHEN i % 10 = 0 THEN 40 ELSE 20 END, false
  FROM generate_series(1, 1000) i;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '1 minute');
SELECT production_version, canary_version FROM retrain.deployments WHERE model = 'own';

-- A source partitioned by prediction time, and the policy's
-- eligibility.max_label_delay: the count of labels since the last training
-- reads only the partitions of predictions a label observed since then can
-- belong to, and counts the same; without the key, every partition.
CREATE TABLE src_part (version text, predicted_at timestamptz NOT NULL, score float8, label boolean,
                       observed_at timestamptz) PARTITION BY RANGE (predicted_at);
CREATE TABLE src_part_old PARTITION OF src_part FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE src_part_new PARTITION OF src_part FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO src_part VALUES ('v1', '2025-06-01', 0.9, true, '2025-06-02'),
                            ('v1', '2026-06-01', 0.9, true, '2026-06-01 02:00'),
                            ('v1', '2026-06-05', 0.2, false, '2026-06-06'),
                            ('v1', '2026-06-05', 0.3, NULL, NULL);
GRANT SELECT ON src_part TO src_owner;
GRANT EXECUTE ON FUNCTION retrain.set_policy(text, jsonb) TO src_owner;
SET SESSION AUTHORIZATION src_owner;
SELECT retrain.register_model('part', 'binary_classification');
SELECT retrain.set_source('part', 'src_part');
SELECT retrain.set_policy('part', '{"eligibility": {"max_label_delay": "3 days"}}') IS NOT NULL AS set;
SELECT retrain.set_policy('part', '{"eligibility": {"max_label_delay": "soon"}}');
RESET SESSION AUTHORIZATION;
BEGIN;
SELECT retrain._new_labels(m, '2026-05-31', '2026-06-30') AS labels FROM retrain.models m WHERE m.name = 'part';
SELECT pg_stat_get_xact_numscans('src_part_old'::regclass) > 0 AS old_read,
       pg_stat_get_xact_numscans('src_part_new'::regclass) > 0 AS new_read;
COMMIT;
SET SESSION AUTHORIZATION src_owner;
SELECT retrain.set_policy('part', '{}') IS NOT NULL AS set;
RESET SESSION AUTHORIZATION;
BEGIN;
SELECT retrain._new_labels(m, '2026-05-31', '2026-06-30') AS labels FROM retrain.models m WHERE m.name = 'part';
SELECT pg_stat_get_xact_numscans('src_part_old'::regclass) > 0 AS old_read,
       pg_stat_get_xact_numscans('src_part_new'::regclass) > 0 AS new_read;
COMMIT;
REVOKE EXECUTE ON FUNCTION retrain.set_policy(text, jsonb) FROM src_owner;
DELETE FROM retrain.deployments WHERE model = 'part';
DELETE FROM retrain.models WHERE name = 'part';
DROP TABLE src_part;

-- Clean up.
DELETE FROM retrain.requests WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.outcomes o USING retrain.predictions p WHERE p.id = o.prediction_id AND p.model = 'builtin';
DELETE FROM retrain.predictions WHERE model = 'builtin';
DELETE FROM retrain.trigger_state WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.production_history WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.baselines WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.evaluations WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.approvals WHERE model IN ('builtin', 'own', 'wide');
UPDATE retrain.deployments SET production_version = NULL, previous_version = NULL, canary_version = NULL
 WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.model_versions WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.deployments WHERE model IN ('builtin', 'own', 'wide');
DELETE FROM retrain.models WHERE name IN ('builtin', 'own', 'wide');
DROP VIEW src_owner_only;
DROP TABLE src_traffic, src_log, src_wide, src_training, src_no_score, src_text_score, src_naive_time, src_no_grant;
REVOKE EXECUTE ON FUNCTION retrain.register_model(text, text, text), retrain.set_source(text, regclass)
    FROM src_owner, src_operator;
DROP ROLE src_owner;
DROP ROLE src_operator;
