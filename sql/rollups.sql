--
-- Rollups (issue 15), the first part: the aggregates' serialized partial
-- states, kept per group and merged later, give the figure over the rows.
-- Exactly for AUC and average precision; to the last bits for the mean
-- losses, whose states are compensated sums.
--

\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- 120,000 rows in 37 "buckets", ties, NULLs, a third labelled positive.
CREATE TABLE rollup_rows AS
SELECT i % 37 AS bucket,
       CASE WHEN i % 101 = 0 THEN NULL ELSE (k % 1000) / 1000.0::float8 END AS score,
       CASE WHEN i % 89 = 0 THEN NULL ELSE k % 3 = 0 OR k % 1000 > 900 END AS label,
       (k % 1000) / 100.0::float8 + (i % 7) AS actual
  FROM generate_series(1, 120000) i, LATERAL (SELECT i::bigint * 104729 % 10007 AS k) r;
ANALYZE rollup_rows;

CREATE TEMP TABLE rollup_states AS
SELECT bucket, retrain._rank_state(score, label) AS rank_state,
       retrain._brier_state(score, label) AS brier_state,
       retrain._log_loss_state(score, label) AS log_loss_state,
       retrain._mae_state(score, actual) AS mae_state,
       retrain._rmse_state(score, actual) AS rmse_state
  FROM rollup_rows GROUP BY bucket;

CREATE TEMP VIEW rollup_merged AS
SELECT retrain._auc_merged(rank_state) AS auc, retrain._average_precision_merged(rank_state) AS ap,
       retrain._mean_loss_merged(brier_state) AS brier, retrain._mean_loss_merged(log_loss_state) AS log_loss,
       retrain._mean_loss_merged(mae_state) AS mae, retrain._rmse_merged(rmse_state) AS rmse
  FROM rollup_states;
CREATE TEMP VIEW rollup_direct AS
SELECT retrain.auc(score, label) AS auc, retrain.average_precision(score, label) AS ap,
       retrain.brier(score, label) AS brier, retrain.log_loss(score, label) AS log_loss,
       retrain.mae(score, actual) AS mae, retrain.rmse(score, actual) AS rmse
  FROM rollup_rows;

SELECT d.auc = m.auc AS auc_exact, d.ap = m.ap AS ap_exact,
       abs(d.brier - m.brier) <= 1e-15 * d.brier AS brier_same,
       abs(d.log_loss - m.log_loss) <= 1e-15 * d.log_loss AS log_loss_same,
       abs(d.mae - m.mae) <= 1e-15 * d.mae AS mae_same,
       abs(d.rmse - m.rmse) <= 1e-15 * d.rmse AS rmse_same
  FROM rollup_direct d, rollup_merged m;

-- A subset of the buckets is the figure over their rows.
SELECT retrain.auc(score, label) = (SELECT retrain._auc_merged(rank_state) FROM rollup_states WHERE bucket < 5) AS subset_exact
  FROM rollup_rows WHERE bucket < 5;

-- A bucket without rows has no state (NULL), which merges as nothing; no
-- state at all is no figure.
SELECT retrain._rank_state(score, label) IS NULL AS no_rows_no_state FROM rollup_rows WHERE false;
SELECT retrain._auc_merged(s) = (SELECT retrain.auc(score, label) FROM rollup_rows WHERE bucket = 1) AS null_skipped
  FROM (SELECT rank_state FROM rollup_states WHERE bucket = 1 UNION ALL SELECT NULL) x(s);
SELECT retrain._auc_merged(s) IS NULL AS nothing FROM (SELECT NULL::bytea) x(s);
-- a state that is not one is an error, not a figure
SELECT retrain._auc_merged(s) FROM (VALUES ('\x0001'::bytea)) x(s);
SELECT retrain._mean_loss_merged(s) FROM (VALUES ('\xdeadbeef'::bytea)) x(s);
SELECT retrain._auc_merged(s) FROM (VALUES ('\x00000000000000ff0000000000000000'::bytea)) x(s);

-- The merges run in parallel plans and give the serial result.
CREATE TABLE rollup_states_p AS SELECT * FROM rollup_states;
ANALYZE rollup_states_p;
CREATE TEMP VIEW rollup_merged_p AS
SELECT retrain._auc_merged(rank_state) AS auc, retrain._average_precision_merged(rank_state) AS ap,
       retrain._mean_loss_merged(brier_state) AS brier, retrain._mean_loss_merged(log_loss_state) AS log_loss,
       retrain._mean_loss_merged(mae_state) AS mae, retrain._rmse_merged(rmse_state) AS rmse
  FROM rollup_states_p;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE rollup_serial AS SELECT * FROM rollup_merged_p;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT * FROM rollup_merged_p;
CREATE TEMP TABLE rollup_parallel AS SELECT * FROM rollup_merged_p;
SELECT (SELECT row(p.*)::text FROM rollup_parallel p) = (SELECT row(s.*)::text FROM rollup_serial s) AS parallel_equals_serial,
       (SELECT s.auc FROM rollup_serial s) = (SELECT auc FROM rollup_direct) AS serial_equals_rows;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE rollup_rows, rollup_states_p CASCADE;

--
-- The rollups of the check cycle: check()'s window figures merged from them
-- equal the figures read from the rows, with late outcomes, NULL and
-- non-numeric features, an invalid score, two versions, windows that do
-- not start on a bucket boundary, and rows that arrive late with earlier
-- times (a backfill).  Rows are folded in the order they arrived
-- (logged_at); here each arrives when it happens, on the test's clock.
--
SELECT retrain.register_model('ru', 'binary_classification');
SELECT retrain.register_version('ru', v, 's3://m', encode(sha256(v::bytea), 'hex'), '{"auc": 0.9}') FROM unnest('{v1,v2}'::text[]) v;
SELECT retrain.promote('ru', 'v1', 'blue_green', override_reason => 'first release') IS NOT NULL AS promoted;
CREATE TABLE ru_train AS SELECT (i % 50)::float8 AS x, (ARRAY['a', 'b', 'c'])[1 + i % 3] AS c FROM generate_series(1, 1000) i;
SELECT retrain.capture_baseline('ru', 'v1', 'ru_train', '{x, c}');
-- three days, a prediction every two minutes
INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, logged_at, score, latency_ms, features)
SELECT 'ru', CASE WHEN i % 5 = 0 THEN 'v2' ELSE 'v1' END, 'u' || i, '2026-06-01 00:00+00'::timestamptz + i * interval '2 minutes',
       '2026-06-01 00:00+00'::timestamptz + i * interval '2 minutes',
       CASE WHEN i % 397 = 0 THEN 1.5 ELSE ((i * 7919) % 1000) / 1000.0 END, i % 100,
       jsonb_strip_nulls(jsonb_build_object('x', CASE WHEN i % 13 = 0 THEN NULL WHEN i % 29 = 0 THEN '"n/a"'::jsonb
                                                      ELSE to_jsonb((i * 31) % 70) END,
                                            'c', (ARRAY['a', 'b', 'c', 'd'])[1 + i % 4]))
  FROM generate_series(1, 2160) i;
-- a third labelled an hour after the prediction
INSERT INTO retrain.outcomes (prediction_id, label, observed_at, logged_at)
SELECT id, (score * 1000)::int % 3 = 0 OR score > 0.8, predicted_at + interval '1 hour', predicted_at + interval '1 hour'
  FROM retrain.predictions WHERE model = 'ru' AND substr(unit_key, 2)::int % 3 = 0;
SELECT retrain.set_policy('ru', '{"triggers": {"drift": {"window": "1 day"}, "confidence": {"min": 0.6, "window": "1 day"},
                                               "performance": {"metric": "auc", "max_drop": 0.05, "window": "1 day"}}}') IS NOT NULL AS set;

-- Rolled-up and direct figures: counts, histograms, AUC/AP and the
-- confusion family exactly; the mean losses and confidence to 1e-12.
CREATE FUNCTION pg_temp.same(at timestamptz, metric text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    m retrain.models;
    trg jsonb;
    v text;
    r jsonb;
    d jsonb;
BEGIN
    SELECT * INTO m FROM retrain.models WHERE name = 'ru';
    trg := jsonb_set(retrain.effective_policy('ru')->'triggers', '{performance,metric}', to_jsonb(metric));
    FOREACH v IN ARRAY ARRAY['v1', 'v2'] LOOP
        r := retrain._rollup_window(m, trg, v, at);
        d := retrain._window(m, trg, v, at);
        IF r IS NULL THEN
            RAISE EXCEPTION 'the rollups do not answer at %', at;
        END IF;
        IF r - 'metric' - 'confidence' <> d - 'metric' - 'confidence'
           OR (metric NOT IN ('brier', 'log_loss') AND r->'metric' IS DISTINCT FROM d->'metric')
           OR abs((r->>'metric')::float8 - (d->>'metric')::float8) > 1e-12 * abs((d->>'metric')::float8)
           OR abs((r->>'confidence')::float8 - (d->>'confidence')::float8) > 1e-12 THEN
            RAISE NOTICE 'differs at % for % %: % against %', at, metric, v, r, d;
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;
SELECT retrain._fold_rollups('ru', '2026-06-03 12:30+00') AS buckets;
SELECT bucket, computed_from, computed_until, outcomes_until FROM retrain.rollup_marks WHERE model = 'ru';
-- outcomes that arrive after the fold, for predictions already rolled up
INSERT INTO retrain.outcomes (prediction_id, label, observed_at, logged_at)
SELECT id, score > 0.5, '2026-06-03 12:40+00', '2026-06-03 12:40+00' FROM retrain.predictions p
 WHERE model = 'ru' AND substr(unit_key, 2)::int % 21 = 7 AND predicted_at < '2026-06-03 12:00+00';
SELECT bool_and(pg_temp.same(t, mt)) AS rolled_equals_direct
  FROM unnest('{2026-06-03 12:25:00+00, 2026-06-03 12:39:59+00, 2026-06-03 12:40:00+00, 2026-06-03 12:47:13+00,
               2026-06-03 23:59:00+00}'::timestamptz[]) t,
       unnest('{auc, f1, precision, recall, accuracy, brier, log_loss}'::text[]) mt;
-- a later fold takes the late outcomes into their buckets
SELECT retrain._fold_rollups('ru', '2026-06-03 18:10+00') AS buckets;
SELECT bool_and(pg_temp.same(t, mt)) AS rolled_equals_direct_after_refold
  FROM unnest('{2026-06-03 18:05:00+00, 2026-06-03 18:47:00+00, 2026-06-04 02:00:00+00}'::timestamptz[]) t,
       unnest('{auc, f1, brier, log_loss}'::text[]) mt;
-- what the rollups cannot answer, the rows do: a time before their last
-- fold, a window reaching before them
SELECT retrain._rollup_window(m, retrain.effective_policy('ru')->'triggers', 'v1', '2026-06-03 12:00+00') IS NULL AS past,
       retrain._rollup_window(m, jsonb_set(retrain.effective_policy('ru')->'triggers', '{drift,window}', '"30 days"'),
                              'v1', '2026-06-03 18:47+00') IS NULL AS too_long
  FROM retrain.models m WHERE m.name = 'ru';
-- a fold asked about the past leaves the rollups alone
SELECT retrain._fold_rollups('ru', '2026-06-03 10:00+00') AS buckets;

-- A backfill: outcomes observed at 17:00 and predictions made the day
-- before, both logged at 18:30, after the last fold (18:05).  The rows
-- answer for them until the next fold, which takes them into their
-- buckets; no rebuild is needed.
INSERT INTO retrain.outcomes (prediction_id, label, observed_at, logged_at)
SELECT id, true, '2026-06-03 17:00+00', '2026-06-03 18:30+00' FROM retrain.predictions p
 WHERE model = 'ru' AND version = 'v1' AND predicted_at >= '2026-06-03 08:00+00' AND predicted_at < '2026-06-03 09:00+00'
   AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id);
INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, logged_at, score, features)
SELECT 'ru', 'v1', 'late' || i, '2026-06-02 22:00:30+00'::timestamptz + i * interval '7 minutes', '2026-06-03 18:30+00',
       (i % 10) / 10.0, jsonb_build_object('x', i % 50, 'c', 'e')
  FROM generate_series(1, 40) i;
INSERT INTO retrain.outcomes (prediction_id, label, observed_at, logged_at)
SELECT id, score > 0.3, '2026-06-03 18:30+00', '2026-06-03 18:30+00' FROM retrain.predictions WHERE unit_key LIKE 'late%';
SELECT pg_temp.same('2026-06-03 18:47+00', 'auc') AS backfill_seen, pg_temp.same('2026-06-03 18:47+00', 'f1') AS in_f1;
SELECT retrain._fold_rollups('ru', '2026-06-03 18:50+00') > 0 AS folded;
SELECT computed_until FROM retrain.rollup_marks WHERE model = 'ru';
SELECT pg_temp.same('2026-06-03 18:50+00', 'auc') AS backfill_folded, pg_temp.same('2026-06-03 19:20+00', 'log_loss') AS later;
-- a minute later: the one prediction logged in that minute (a fold that
-- finds a transaction still writing stops before it began: see
-- test/test_worker.py)
SELECT retrain._fold_rollups('ru', '2026-06-03 18:51+00') AS buckets;

-- Rows deleted by hand: the rollups still count them until rebuilt.
DELETE FROM retrain.outcomes WHERE prediction_id IN (SELECT id FROM retrain.predictions
                                                      WHERE model = 'ru' AND predicted_at < '2026-06-03 06:00+00');
DELETE FROM retrain.predictions WHERE model = 'ru' AND predicted_at < '2026-06-03 06:00+00';
SELECT pg_temp.same('2026-06-03 18:47+00', 'auc') AS same_before_rebuild;
SELECT retrain.rebuild_rollups('ru', '2026-06-02 00:00+00', '2026-06-03 06:30+00') AS buckets;
SELECT pg_temp.same('2026-06-03 18:47+00', 'auc') AS same_after_rebuild;
SELECT details->>'buckets' AS logged FROM retrain.log WHERE model = 'ru' AND event = 'rollups_rebuilt';
-- The running sums of feature counts that windows are read from: each
-- row's is the one before it plus that row's counts, after folds and a
-- rebuild of buckets in the middle.
CREATE VIEW pg_temp.running_sums AS
SELECT count(*) AS pairs, bool_and(retrain._features_diff(b, a_before) = a_features) AS add_up,
       (SELECT count(*) FROM retrain.rollups WHERE model = 'ru' AND features_before IS NULL) AS not_made
  FROM (SELECT features_before AS b, lag(features_before) OVER w AS a_before, lag(features) OVER w AS a_features
          FROM retrain.rollups WHERE model = 'ru' WINDOW w AS (PARTITION BY version ORDER BY bucket_start)) z
 WHERE a_before IS NOT NULL;
SELECT pairs, add_up, not_made FROM pg_temp.running_sums;
-- a row without one (not yet made): the window adds its buckets up
-- instead; the next fold or rebuild makes it
UPDATE retrain.rollups SET features_before = NULL WHERE model = 'ru' AND bucket_start = '2026-06-03 18:00+00';
SELECT pg_temp.same('2026-06-03 18:47+00', 'auc') AS same_without_a_sum;
SELECT retrain.rebuild_rollups('ru') >= 0 AS all_rebuilt;
SELECT pairs, add_up, not_made FROM pg_temp.running_sums;
-- nothing to make them for: nothing done
SELECT retrain._prefix_features(NULL, NULL, NULL) AS nothing_given,
       retrain._prefix_features('{nosuch}', '{v1}', '{2026-01-01 00:00+00}') AS unknown_model;
SELECT retrain.rebuild_rollups('ru', '2026-06-03', '2026-06-02');
SELECT retrain.rebuild_rollups('nosuch');
SELECT retrain.rebuild_rollups(NULL);
-- A new baseline starts them again at the next fold.
SELECT retrain.capture_baseline('ru', 'v1', 'ru_train', '{x}');
SELECT retrain._fold_rollups('ru', '2026-06-03 19:10+00') > 0 AS refolded;
SELECT made_with->'baselines' ? 'v1' AS new_signature, computed_from, computed_until FROM retrain.rollup_marks WHERE model = 'ru';
SELECT pg_temp.same('2026-06-03 19:47+00', 'auc') AS same_with_new_baseline;
DROP TABLE ru_train;

-- check() judges from them as from the rows.
CREATE TEMP TABLE from_rollups AS SELECT trigger, fired, observed, threshold FROM retrain.check('ru', '2026-06-03 19:47+00');
DELETE FROM retrain.rollup_marks WHERE model = 'ru';
SELECT retrain._rollup_window(m, retrain.effective_policy('ru')->'triggers', 'v1', '2026-06-03 19:47+00') IS NULL AS no_marks_no_rollups
  FROM retrain.models m WHERE m.name = 'ru';
SELECT r.trigger, r.fired = d.fired AS same_decision, abs(r.observed - d.observed) <= 1e-12 AS same_observed,
       r.threshold = d.threshold AS same_threshold
  FROM from_rollups r JOIN retrain.check('ru', '2026-06-03 19:47+00') d USING (trigger) ORDER BY 1;
-- The cycle folds before it checks.
SELECT retrain.run_checks('2026-06-03 20:30+00') >= 0 AS ran;
SELECT computed_until, (SELECT count(*) FROM retrain.rollups WHERE model = 'ru') > 0 AS has_buckets
  FROM retrain.rollup_marks WHERE model = 'ru';
-- Switched off, they are dropped at the next fold and check() reads the
-- rows; the setting is checked.
SELECT retrain.set_policy('ru', policy || '{"rollups": {"enabled": false}}') IS NOT NULL AS off
  FROM retrain.models WHERE name = 'ru';
SELECT retrain._rollup_window(m, retrain.effective_policy('ru')->'triggers', 'v1', '2026-06-03 20:40+00') IS NULL AS not_read
  FROM retrain.models m WHERE m.name = 'ru';
SELECT retrain._fold_rollups('ru', '2026-06-03 21:30+00') AS buckets;
SELECT (SELECT count(*) FROM retrain.rollups WHERE model = 'ru') AS kept,
       (SELECT count(*) FROM retrain.rollup_marks WHERE model = 'ru') AS marks;
SELECT retrain.set_policy('ru', '{"rollups": {"enabled": "no"}}');
SELECT retrain.set_policy('ru', '{"rollups": {"settle": "0 seconds"}}');
SELECT retrain.set_policy('ru', '{"rollups": {"bucket": "1 month"}}');

-- The feature counts of buckets add up feature by feature, whatever the
-- categories each bucket saw; counts of another shape are refused.
SELECT retrain._sum_features(ARRAY['{"a": [1, 2, 3], "c": {"x": 1, "yy": 2}, "n": null}',
                                   '{"a": [10, 20, 30], "c": {"b": 5, "yy": 1, "zzz": 7}}', NULL, '{}']::jsonb[]);
SELECT retrain._sum_features('{}'::jsonb[]);
SELECT retrain._sum_features(ARRAY['{"a": [1, 2]}', '{"a": [1]}']::jsonb[]);
SELECT retrain._sum_features(ARRAY['{"a": [1, 2]}', '{"a": {"x": 1}}']::jsonb[]);
SELECT retrain._sum_features(ARRAY['{"a": [1, "x"]}']::jsonb[]);
-- The same row by row (the aggregate a window's buckets are merged with),
-- in a parallel plan too; and a difference of two running sums: what the
-- rows between counted (no category counted 0 times, no feature counted
-- nowhere), never below zero.
SELECT retrain._features_union(f) FROM (VALUES ('{"a": [1, 2, 3], "c": {"x": 1, "yy": 2}, "n": null}'::jsonb),
                                               ('{"a": [10, 20, 30], "c": {"b": 5, "yy": 1, "zzz": 7}}'), (NULL), ('{}')) v(f);
SELECT retrain._features_union(f) IS NULL AS no_rows FROM (SELECT '{}'::jsonb WHERE false) v(f);
SELECT retrain._features_union(f) FROM (VALUES ('{"a": [1, 2]}'::jsonb), ('{"a": [1]}')) v(f);
CREATE TABLE feature_docs AS
SELECT jsonb_build_object('h', jsonb_build_array(i % 3, i % 7, 1), 'c', jsonb_build_object('k' || i % 5, 1 + i % 2)) AS f
  FROM generate_series(1, 30000) i;
ANALYZE feature_docs;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE features_serial AS SELECT retrain._features_union(f) AS s FROM feature_docs;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT retrain._features_union(f) FROM feature_docs;
SELECT (SELECT retrain._features_union(f) FROM feature_docs) = s AS parallel_equals_serial,
       s = (SELECT retrain._sum_features(array_agg(f)) FROM feature_docs) AS union_equals_sum,
       s->'h' = '[30000, 90000, 30000]' AS counted
  FROM features_serial;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE feature_docs;
SELECT retrain._features_diff('{"a": [11, 22, 33], "c": {"b": 5, "x": 1, "yy": 3, "zzz": 7}, "d": {"q": 2}}',
                              '{"a": [1, 2, 3], "c": {"x": 1, "yy": 2}, "d": {"q": 2}}');
SELECT retrain._features_diff('{"a": [1, 2]}', '{"a": [1, 2]}') AS nothing_between,
       retrain._features_diff('{"a": [1, 2]}', '{}') AS nothing_before,
       retrain._features_diff(NULL, '{}') IS NULL AS null_diff;
SELECT retrain._features_diff('{"a": [1, 2]}', '{"a": [2, 2]}');
SELECT retrain._features_diff('{"a": [1, 2]}', '{"b": [1]}');
SELECT retrain._features_diff('{"a": {"x": 1}}', '{"a": {"y": 1}}');
SELECT retrain._features_diff('{"a": [1, 2]}', '{"a": [1]}');

-- An outcome's model is its prediction's, whatever its writer says: the
-- cycle counts a model's new labels by it.  One without a prediction keeps
-- what it says only from a login that owns the tables (a restore loads
-- outcomes first); an application's orphan counts for no model.
INSERT INTO retrain.predictions (model, version, unit_key, score) VALUES ('ru', 'v1', 'own', 0.5);
INSERT INTO retrain.outcomes (prediction_id, label, model)
SELECT id, true, 'someone_else' FROM retrain.predictions WHERE unit_key = 'own';
SELECT o.model FROM retrain.outcomes o JOIN retrain.predictions p ON p.id = o.prediction_id WHERE p.unit_key = 'own';
UPDATE retrain.outcomes o SET model = 'someone_else' FROM retrain.predictions p
 WHERE p.id = o.prediction_id AND p.unit_key = 'own' RETURNING o.model;
CREATE ROLE ru_app;
GRANT USAGE ON SCHEMA retrain TO ru_app;
GRANT INSERT ON retrain.outcomes TO ru_app;
SET SESSION AUTHORIZATION ru_app;
INSERT INTO retrain.outcomes (prediction_id, label, model) VALUES (-1, true, 'ru');
RESET SESSION AUTHORIZATION;
SELECT prediction_id, model FROM retrain.outcomes WHERE prediction_id < 0;
SELECT retrain._new_labels(m, now() - interval '1 hour', now() + interval '1 hour') AS new_labels
  FROM retrain.models m WHERE m.name = 'ru';
DELETE FROM retrain.outcomes WHERE prediction_id = -1;
INSERT INTO retrain.outcomes (prediction_id, label, model) VALUES (-2, true, 'ru');
SELECT prediction_id, model FROM retrain.outcomes WHERE prediction_id < 0;
DELETE FROM retrain.outcomes WHERE prediction_id < 0;
-- A prediction moved to another model by hand takes its outcome along
-- (the check joins them on the model).
SELECT retrain.register_model('ru_moved', 'binary_classification');
UPDATE retrain.predictions SET model = 'ru_moved' WHERE unit_key = 'own';
SELECT p.model AS prediction, o.model AS outcome
  FROM retrain.outcomes o JOIN retrain.predictions p ON p.id = o.prediction_id WHERE p.unit_key = 'own';
UPDATE retrain.predictions SET model = 'ru' WHERE unit_key = 'own';
REVOKE ALL ON retrain.outcomes FROM ru_app;
REVOKE ALL ON SCHEMA retrain FROM ru_app;
DROP ROLE ru_app;

--
-- The latency distribution the rollout guard reads from the rollups: a
-- percentile within 1/101 of percentile_cont's, relatively; the states of
-- any partition of the rows merge into the state of all of them.
--
CREATE TABLE lat_rows AS
SELECT i % 17 AS bucket,
       CASE WHEN i % 53 = 0 THEN NULL WHEN i % 31 = 0 THEN 0 ELSE exp((i * 7919 % 1000) / 100.0) / 10 END AS v
  FROM generate_series(1, 50000) i;
CREATE TEMP TABLE lat_states AS SELECT bucket, retrain._latency_state(v) AS s FROM lat_rows GROUP BY bucket;
SELECT count(*) AS fractions, bool_and(abs(a - d) <= d / 101) AS within_1_101, max(abs(a - d) / nullif(d, 0)) < 0.0099 AS bound
  FROM (SELECT (SELECT retrain._latency_percentile(retrain._latency_union(s), q) FROM lat_states) AS a,
               (SELECT percentile_cont(q) WITHIN GROUP (ORDER BY v) FROM lat_rows) AS d
          FROM unnest('{0, 0.001, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1}'::float8[]) q) x;
SELECT (SELECT retrain._latency_union(s) FROM lat_states) = (SELECT retrain._latency_state(v) FROM lat_rows) AS merged_equals_whole;
-- in a parallel plan as serially
CREATE TABLE lat_par AS SELECT * FROM lat_rows;
ANALYZE lat_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT retrain._latency_state(v) FROM lat_par;
SELECT retrain._latency_state(v) = (SELECT retrain._latency_state(v) FROM lat_rows) AS parallel_equals_serial FROM lat_par;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
-- Every kind of value, in float8's order, each order statistic within
-- 1/101 (zero, the infinities and NaN exactly); between two values the
-- interpolation percentile_cont makes.
CREATE TEMP TABLE lat_odd AS
SELECT v::float8 FROM unnest('{-Infinity, -1e300, -5, -0.0, 0, 1e-300, 3, 1e300, 1.7976931348623157e308, Infinity, NaN}'::text[]) v;
SELECT q, a = d OR abs(a - d) <= abs(d) / 101 AS within, a::text = d::text AS exact
  FROM (SELECT q, (SELECT retrain._latency_percentile(retrain._latency_state(v), q) FROM lat_odd) AS a,
               (SELECT percentile_cont(q) WITHIN GROUP (ORDER BY v) FROM lat_odd) AS d
          FROM generate_series(0, 10) k, LATERAL (SELECT k / 10.0::float8 AS q) f) x ORDER BY q;
SELECT abs(retrain._latency_percentile(retrain._latency_state(v), 0.5) - 7.5) <= 7.5 / 101 AS between_two
  FROM (VALUES (5::float8), (10)) x(v);
-- two states added: either NULL is no values; else their merge
SELECT retrain._latency_add(NULL, s) = s AS null_first, retrain._latency_add(s, NULL) = s AS null_second,
       retrain._latency_add(NULL, NULL) IS NULL AS both_null,
       retrain._latency_add(s, s) = (SELECT retrain._latency_union(x) FROM (VALUES (s), (s)) v(x)) AS merged
  FROM (SELECT retrain._latency_state(v) AS s FROM lat_rows) x;
SELECT retrain._latency_add('\x01', '\x01');
-- no value, only NULLs: no state, no percentile
SELECT retrain._latency_state(v) IS NULL AS no_rows FROM lat_rows WHERE false;
SELECT retrain._latency_state(NULL::float8) IS NULL AS only_nulls FROM generate_series(1, 3);
SELECT retrain._latency_percentile(NULL, 0.5) IS NULL AS null_state;
-- a fraction outside [0, 1] or NaN, a state that is not one: errors
SELECT retrain._latency_percentile(retrain._latency_state(1), 1.5);
SELECT retrain._latency_percentile(retrain._latency_state(1), 'NaN');
SELECT retrain._latency_percentile('\x01', 0.5);
SELECT retrain._latency_percentile('\x02000000000000000100000000000000010000000000000000000000000000000000000000000000000000000000000000', 0.5);
SELECT retrain._latency_percentile('\x01000000000000000500000000000000010000000000000000000000000000000000000000000000000000000000000000', 0.5);
SELECT retrain._latency_percentile('\x01000000000000000100000000000000000000000000000000000000000000000000000000000000007fffffff00000000', 0.5);
SELECT retrain._latency_percentile('\x01000000000000000200000000000000000000000000000000000000000000000000000000000000000000000200000005000000000000000100000003000000000000000100000000', 0.5);
DROP TABLE lat_rows, lat_par;

-- A source's outcome that arrives after its prediction was folded, with an
-- actual no metric can take (NaN): the prediction, counted valid when
-- folded, is now invalid, in the rollups' figures as in the rows'.
SELECT retrain.register_model('roll_late_nan', 'regression');
SELECT retrain.register_version('roll_late_nan', 'v1', 's3://m', repeat('c', 64), '{}');
CREATE TABLE roll_late_nan_src (version text, predicted_at timestamptz, score float8, actual float8,
                                observed_at timestamptz);
INSERT INTO roll_late_nan_src
SELECT 'v1', '2026-01-01 00:00+00'::timestamptz + i * interval '1 minute', i,
       CASE WHEN i % 4 = 0 THEN 'NaN' ELSE i + 0.5 END, '2026-01-01 03:00+00'
  FROM generate_series(1, 40) i;
SELECT retrain.set_source('roll_late_nan', 'roll_late_nan_src');
SELECT retrain.set_policy('roll_late_nan', '{"triggers": {"performance": {"metric": "mae", "max_drop": 1, "window": "1 day"}},
                                             "rollups": {"bucket": "10 minutes", "settle": "1 minute"}}') IS NOT NULL AS set;
-- folded before the outcomes were observed, then after
SELECT retrain._fold_rollups('roll_late_nan', '2026-01-01 02:00+00') > 0 AS folded;
SELECT retrain._fold_rollups('roll_late_nan', '2026-01-01 04:00+00') > 0 AS outcomes_folded;
SELECT r->'performance_invalid' AS rolled_invalid, w->'performance_invalid' AS direct_invalid,
       r->'labelled' = w->'labelled' AS same_labelled, r->'metric' = w->'metric' AS same_metric
  FROM retrain.models m,
       LATERAL (SELECT retrain.effective_policy(m.name)->'triggers' AS t) p,
       LATERAL (SELECT retrain._rollup_window(m, p.t, 'v1', '2026-01-01 04:00+00') AS r,
                       retrain._window(m, p.t, 'v1', '2026-01-01 04:00+00') AS w) x
 WHERE m.name = 'roll_late_nan';
DROP TABLE roll_late_nan_src;

-- The cycle's helpers: results, NULL, bad input.
SELECT f.names, f.edges IS NOT NULL AND cardinality(f.edges) = f.ends[1] AS edges_end, f.numeric_only
  FROM retrain._feature_spec('roll_late_nan', 'v1') f;
SELECT retrain._feature_spec(NULL, 'v1') IS NULL AS null_spec;
SELECT retrain._logged_from('$1[6]') LIKE '%o.observed_at <= $1[6]' AS logged_from, retrain._logged_from(NULL) IS NULL AS null_from;
SELECT cardinality(retrain._arrived_outcomes_sql('x.model', 'x.after', 'x.upto', 'x.upto')) AS conditions,
       retrain._arrived_outcomes_sql(NULL, 'a', 'b', 'c') IS NULL AS null_conditions;
SELECT retrain._planned_state_list('regression', false, NULL) LIKE '%_feature_histograms(p.features, $5, $6, $7)%' AS features_as_parameters,
       retrain._planned_state_list('regression', false, ARRAY['mae']) NOT LIKE '%_feature_histograms%' AS features_only_when_asked,
       retrain._planned_state_list('regression', false, ARRAY['mae']) NOT LIKE '%$4%' AS no_threshold_for_regression,
       retrain._planned_state_list('binary_classification', true, NULL) LIKE '%confusion(p.score, o.label, $4)%' AS threshold_as_parameter;
SELECT retrain._state_columns('binary_classification', '0.25', '''{}''::jsonb', false, NULL) LIKE '%confusion(p.score, o.label, 0.25)%' AS threshold_sql;
SELECT retrain._rollup_made_with('roll_late_nan', 'public.roll_late_nan_src') AS made_with,
       retrain._rollup_made_with(NULL, NULL) AS made_with_nothing;
-- (a source's rollups end at a closed bucket: never within a settle time)
SELECT retrain._rollups_current('roll_late_nan', '2026-01-01 04:00+00') AS source_current,
       retrain._rollups_current('roll_late_nan', '2026-01-01 05:00+00') AS current_an_hour_later,
       retrain._rollups_current('no such model', now()) AS unknown, retrain._rollups_current(NULL, NULL) AS null_current;
-- a source's model is not folded with the others; ru_moved, kept in the
-- log with no rollups yet, is (a first fold); nothing at NULL
SELECT retrain._fold_logged('2026-01-01 06:00+00') AS folded_together, retrain._fold_logged(NULL) IS NULL AS at_null,
       retrain._fold_cycle(NULL) IS NULL AS cycle_at_null;
-- a planned read: its value, and the same again from the kept plan; errors
SELECT retrain._read_planned('SELECT to_jsonb(count(*)) FROM retrain.predictions p WHERE p.model = $2 AND p.predicted_at <= $1[1]',
                             ARRAY[now()], 'roll_late_nan', 'v1', NULL, NULL, NULL, NULL) AS none_logged,
       retrain._read_planned('SELECT to_jsonb($1[1])', ARRAY['2026-01-01 00:00+00'::timestamptz], NULL, NULL, NULL, NULL, NULL, NULL)
         = retrain._read_planned('SELECT to_jsonb($1[1])', ARRAY['2026-01-01 00:00+00'::timestamptz], NULL, NULL, NULL, NULL, NULL, NULL)
         AS kept_plan_same,
       retrain._read_planned('SELECT NULL::jsonb', '{}', NULL, NULL, NULL, NULL, NULL, NULL) IS NULL AS null_value;
-- more texts than are kept (64): the next one empties the cache, and each
-- read still answers, one read before it included
SELECT bool_and(retrain._read_planned(format('SELECT to_jsonb(%s + cardinality($1))', i),
                                      ARRAY[now(), now()], NULL, NULL, NULL, NULL, NULL, NULL)
                = to_jsonb(i + 2)) AS all_answered
  FROM generate_series(1, 70) i;
SELECT retrain._read_planned('SELECT to_jsonb(1 + cardinality($1))', ARRAY[now(), now(), now()],
                             NULL, NULL, NULL, NULL, NULL, NULL) AS read_again;
SELECT retrain._read_planned(NULL, '{}', NULL, NULL, NULL, NULL, NULL, NULL);
SELECT retrain._read_planned('SELECT 1', '{}', NULL, NULL, NULL, NULL, NULL, NULL);
SELECT retrain._read_planned('SELECT FROM nowhere', '{}', NULL, NULL, NULL, NULL, NULL, NULL);

-- An outcome never counts as logged before its prediction: a statement
-- that began before the prediction was written can still see it committed,
-- and the cycle's fold looks for a new prediction's outcome among those
-- logged since its last fold.  Its logged_at is raised to the
-- prediction's; a later one, or NULL (before 0.2.0), is kept.
SELECT retrain.register_model('early_outcome', 'binary_classification');
INSERT INTO retrain.predictions (model, version, unit_key, score, logged_at)
VALUES ('early_outcome', 'v1', 'a', 0.5, '2026-06-01 12:00+00'), ('early_outcome', 'v1', 'b', 0.5, '2026-06-01 12:00+00'),
       ('early_outcome', 'v1', 'c', 0.5, NULL);
INSERT INTO retrain.outcomes (prediction_id, label, logged_at)
SELECT id, true, CASE unit_key WHEN 'a' THEN '2026-06-01 11:59+00'::timestamptz WHEN 'b' THEN '2026-06-01 12:01+00'
                               ELSE '2026-06-01 11:00+00' END
  FROM retrain.predictions WHERE model = 'early_outcome';
SELECT p.unit_key, o.logged_at FROM retrain.outcomes o JOIN retrain.predictions p ON p.id = o.prediction_id
 WHERE p.model = 'early_outcome' ORDER BY 1;
-- and on an update of its time
UPDATE retrain.outcomes o SET logged_at = '2026-06-01 10:00+00' FROM retrain.predictions p
 WHERE p.id = o.prediction_id AND p.unit_key = 'b' AND p.model = 'early_outcome';
SELECT o.logged_at FROM retrain.outcomes o JOIN retrain.predictions p ON p.id = o.prediction_id
 WHERE p.model = 'early_outcome' AND p.unit_key = 'b';
-- _fold_new_rows (the cycle's read of new rows): NULL, no models, or a
-- model that is not there fold nothing, and raise nothing
CREATE TEMP TABLE rollups_count AS SELECT count(*) AS n FROM retrain.rollups;
SELECT retrain._fold_new_rows(NULL, NULL, NULL, NULL, NULL, NULL, NULL) IS NOT NULL AS at_null,
       retrain._fold_new_rows('binary_classification', '{}', '{}', '{}', '{}', '{}', '{}') IS NOT NULL AS no_models,
       retrain._fold_new_rows('binary_classification', '{no such model}', '{-infinity}', '{infinity}',
                              '{-infinity}', '{0.5}', '{1 hour}') IS NOT NULL AS unknown_model;
SELECT (SELECT count(*) FROM retrain.rollups) = n AS nothing_folded FROM rollups_count;
-- the same for the fold of late outcomes; and both refuse a task the
-- registry does not know, or arrays that do not give one element a model
-- (unnest() would pad them with NULLs, and fold wrong figures)
SELECT retrain._fold_late_outcomes(NULL, NULL, NULL, NULL, NULL, NULL, NULL) IS NOT NULL AS at_null,
       retrain._fold_late_outcomes('binary_classification', '{}', '{}', '{}', '{}', '{}', '{}') IS NOT NULL AS no_models,
       retrain._fold_late_outcomes('regression', '{no such model}', '{-infinity}', '{infinity}',
                                   '{-infinity}', '{0.5}', '{1 hour}') IS NOT NULL AS unknown_model;
SELECT (SELECT count(*) FROM retrain.rollups) = n AS nothing_folded FROM rollups_count;
SELECT retrain._fold_new_rows('bogus', '{m}', '{-infinity}', '{infinity}', '{-infinity}', '{0.5}', '{1 hour}');
SELECT retrain._fold_late_outcomes(NULL, '{m}', '{-infinity}', '{infinity}', '{-infinity}', '{0.5}', '{1 hour}');
SELECT retrain._fold_new_rows('regression', '{m,n}', '{-infinity}', '{infinity,infinity}', '{-infinity,-infinity}',
                              '{0.5,0.5}', '{1 hour,1 hour}');
SELECT retrain._fold_late_outcomes('binary_classification', '{m}', '{-infinity}', '{infinity}', '{-infinity}',
                                   '{0.5}', NULL);
-- as invalid_parameter_value
\set VERBOSITY sqlstate
SELECT retrain._fold_late_outcomes('bogus', '{m}', '{-infinity}', '{infinity}', '{-infinity}', '{0.5}', '{1 hour}');
SELECT retrain._fold_new_rows('regression', '{m}', '{-infinity}', '{infinity}', '{-infinity}', '{0.5,0.5}', '{1 hour}');
\set VERBOSITY default
-- _labels_observed (the count of labels since the last training, C): the
-- query's count, since excluded and at included; a reversed or empty
-- range, or a model with no outcomes, 0; NULL in, NULL out
SELECT retrain.register_model('labels_c', 'binary_classification');
INSERT INTO retrain.predictions (model, version, unit_key, score)
SELECT 'labels_c', 'v1', 'u' || i, 0.5 FROM generate_series(1, 5) i;
INSERT INTO retrain.outcomes (prediction_id, label, observed_at)
SELECT id, true, '2026-06-01 12:00+00'::timestamptz + row_number() OVER (ORDER BY id) * interval '1 minute'
  FROM retrain.predictions WHERE model = 'labels_c';
SELECT retrain._labels_observed('labels_c', '-infinity', 'infinity') AS every,
       retrain._labels_observed('labels_c', '2026-06-01 12:01+00', '2026-06-01 12:03+00') AS two,
       (SELECT count(*) FROM retrain.outcomes WHERE model = 'labels_c'
           AND observed_at > '2026-06-01 12:01+00' AND observed_at <= '2026-06-01 12:03+00') AS query,
       retrain._labels_observed('labels_c', '2026-06-01 12:03+00', '2026-06-01 12:01+00') AS reversed,
       retrain._labels_observed('labels_c', '2026-06-01 12:02+00', '2026-06-01 12:02+00') AS empty,
       retrain._labels_observed('no such model', '-infinity', 'infinity') AS unknown,
       retrain._labels_observed(NULL, '-infinity', 'infinity') AS null_model,
       retrain._labels_observed('labels_c', NULL, 'infinity') AS null_since;
-- _late_outcomes_from: outcomes with their predictions, each found by its
-- key (id and time, so one partition's primary key), the five of labels_c
-- (counted through EXECUTE: query_to_xml needs libxml, which not every
-- supported build has)
CREATE FUNCTION pg_temp.late_joined(model text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s WHERE p.model = o.model AND o.model = %L',
                   retrain._late_outcomes_from(), model) INTO n;
    RETURN n;
END
$f$;
SELECT retrain._late_outcomes_from() LIKE '%WHERE p.id = o.prediction_id AND p.predicted_at = o.predicted_at OFFSET 0%'
           AS by_key,
       pg_temp.late_joined('labels_c') AS joined;
-- with the caller's privileges: EXECUTE alone does not read the outcomes
CREATE ROLE labels_c_reader;
GRANT USAGE ON SCHEMA retrain TO labels_c_reader;
GRANT EXECUTE ON FUNCTION retrain._labels_observed(text, timestamptz, timestamptz) TO labels_c_reader;
SET ROLE labels_c_reader;
SELECT retrain._labels_observed('labels_c', '-infinity', 'infinity');
RESET ROLE;
REVOKE ALL ON FUNCTION retrain._labels_observed(text, timestamptz, timestamptz) FROM labels_c_reader;
REVOKE ALL ON SCHEMA retrain FROM labels_c_reader;
DROP ROLE labels_c_reader;
-- _states_whole (a first fold's read, with workers, grouped by the buckets
-- of a span): the states _states gives, whether the span holds the rows'
-- buckets or misses them (read again by their own buckets), or is empty
-- or unbounded (not used); no rows for a NULL argument.  Log loss's state
-- is a compensated sum whose bytes depend on the order the rows were added
-- in (workers over the log's partitions), and is compared by its value.
SELECT sp.name,
       (SELECT jsonb_agg(to_jsonb(s) - 'log_loss' ORDER BY s.bucket_start)
          FROM retrain._states_whole(m, 'v1', retrain._state_list(m, 'v1', 0.5, false),
                                     retrain._arrival_from('infinity', 'infinity'), 'true', '1 hour', sp.span) s)
       = (SELECT jsonb_agg(to_jsonb(s) - 'log_loss' ORDER BY s.bucket_start)
            FROM retrain._states(m, 'v1', retrain._state_list(m, 'v1', 0.5, false),
                                 retrain._arrival_from('infinity', 'infinity'), 'true', '1 hour') s) AS same_states,
       (SELECT retrain._mean_loss_merged(s.log_loss)
          FROM retrain._states_whole(m, 'v1', retrain._state_list(m, 'v1', 0.5, false),
                                     retrain._arrival_from('infinity', 'infinity'), 'true', '1 hour', sp.span) s)
       = (SELECT retrain._mean_loss_merged(s.log_loss)
            FROM retrain._states(m, 'v1', retrain._state_list(m, 'v1', 0.5, false),
                                 retrain._arrival_from('infinity', 'infinity'), 'true', '1 hour') s) AS same_log_loss,
       (SELECT sum(s.predictions) FROM retrain._states_whole(m, 'v1', retrain._state_list(m, 'v1', 0.5, false),
                                                            retrain._arrival_from('infinity', 'infinity'), 'true',
                                                            '1 hour', sp.span) s) AS predictions
  FROM retrain.models m,
       (VALUES ('holds', tstzrange(now() - interval '30 days', now() + interval '1 day')),
               ('misses', tstzrange('2000-01-01', '2000-01-02')),
               ('empty', 'empty'::tstzrange), ('unbounded', tstzrange(NULL, now()))) sp(name, span)
 WHERE m.name = 'labels_c'
 ORDER BY sp.name;
SELECT count(*) AS null_model FROM retrain._states_whole(NULL, 'v1', 'x', 'x', 'x', '1 hour', tstzrange(now(), now()));
SELECT count(*) AS null_span
  FROM retrain.models m, retrain._states_whole(m, 'v1', 'x', 'x', 'x', '1 hour', NULL)
 WHERE m.name = 'labels_c';
