--
-- Decisions a team can hand over: the ordinary cases in which 0.1.0 decided
-- wrong, each reproduced and answered as a careful operator would (issue
-- 13; each block names its item).
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

SELECT retrain.register_model('dec_clf', 'binary_classification');
SELECT retrain.register_model('dec_reg', 'regression');
SELECT retrain.register_version('dec_clf', 'v1', 's3://m/v1', repeat('a', 64), '{"auc": 0.80}');
SELECT retrain.register_version('dec_reg', 'v1', 's3://m/v1', repeat('a', 64), '{"rmse": 2.0}');

-- Item 11: an outcome whose kind does not fit the model's task is refused
-- (log_outcome(id, 1) picks the float8 form), and the true label still fits.
SELECT retrain.log_prediction('dec_clf', 'v1', 'u1', 0.7) AS clf_id \gset
SELECT retrain.log_prediction('dec_reg', 'v1', 'u1', 3.5) AS reg_id \gset
-- An error's SQLSTATE, message and hint, prediction ids masked (they depend
-- on what ran before).
CREATE FUNCTION pg_temp.refusal(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || regexp_replace(format('%s (hint: %s)', SQLERRM, hint), '\d{3,}', 'N', 'g');
END
$$;
SELECT pg_temp.refusal(format('SELECT retrain.log_outcome(%s, 1)', :clf_id));
SELECT pg_temp.refusal(format('SELECT retrain.log_outcome(%s, true)', :reg_id));
SELECT retrain.log_outcome(:clf_id, true), retrain.log_outcome(:reg_id, 3.0);
SELECT label, actual FROM retrain.outcomes WHERE prediction_id IN (:clf_id, :reg_id) ORDER BY prediction_id;

-- Item 12: an unknown model is an error (42704), not a silent fallback; a
-- registered model with nothing promoted still routes to NULL.
\set VERBOSITY default
SELECT retrain.route('dec_clff', 'u1');
SELECT * FROM retrain.route_detail('dec_clff', 'u1');
\set VERBOSITY terse
SELECT retrain.route('dec_clf', 'u1') IS NULL AS nothing_promoted;
SELECT version IS NULL AND arm IS NULL AS nothing_promoted FROM retrain.route_detail('dec_clf', 'u1');

-- Item 19: routing compares integers of basis points.  For every percentage
-- from 0.00 to 100.00, the canary gets exactly the buckets below it: the
-- unit of bucket p * 100 - 1 goes to the canary, the unit of bucket p * 100
-- to production.
SELECT retrain.register_version('dec_clf', 'v2', 's3://m/v2', repeat('b', 64), '{"auc": 0.81}');
SELECT retrain.promote('dec_clf', 'v1', 'blue_green', override_reason => 'routing test');
SELECT retrain.promote('dec_clf', 'v2', 'canary', override_reason => 'routing test');
CREATE TEMP TABLE unit_of_bucket AS
SELECT DISTINCT ON (b) b, u
  FROM (SELECT 'u' || g AS u, retrain.bucket('dec_clf', 'u' || g) AS b FROM generate_series(1, 200000) g) x
 ORDER BY b, u;
SELECT count(*) AS buckets_covered FROM unit_of_bucket;
DO $$
DECLARE
    bp integer;
    wrong integer := 0;
    unit text[] := ARRAY(SELECT u FROM unit_of_bucket ORDER BY b);  -- unit[b + 1] falls in bucket b
BEGIN
    FOR bp IN 0 .. 10000 LOOP
        UPDATE retrain.deployments SET canary_percent = bp / 100.0 WHERE model = 'dec_clf';
        IF bp > 0 AND retrain.route('dec_clf', unit[bp]) <> 'v2' THEN
            wrong := wrong + 1;
        END IF;
        IF bp < 10000 AND retrain.route('dec_clf', unit[bp + 1]) <> 'v1' THEN
            wrong := wrong + 1;
        END IF;
    END LOOP;
    RAISE WARNING 'percentages routed wrong: %', wrong;
END
$$;
-- 0.07%: buckets 0 to 6 only
UPDATE retrain.deployments SET canary_percent = 0.07 WHERE model = 'dec_clf';
SELECT b, retrain.route('dec_clf', u) FROM unit_of_bucket WHERE b BETWEEN 5 AND 8 ORDER BY b;
SELECT retrain.rollback('dec_clf', 'routing test over');

-- Item 15: psi replaces a share of exactly 0 by epsilon, and keeps a share
-- below epsilon that is not 0 (docs/reference.md says so now).
SELECT round(retrain.psi('{0.5, 0.5}'::float8[], '{1, 0}')::numeric, 6) AS zero_share,
       round(retrain.psi('{0.5, 0.5}'::float8[], '{1, 0.000001}')::numeric, 6) AS tiny_share;

-- Item 21: an all-NULL text column and an empty table are ordinary: the
-- feature is stored without a distribution.
CREATE TABLE dec_train (age float8, city text, notes text);
INSERT INTO dec_train SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, NULL FROM generate_series(1, 20) g;
SELECT retrain.capture_baseline('dec_clf', 'v1', 'dec_train', '{age, city, notes}');
SELECT feature, kind, categories, row_count, missing_share FROM retrain.baselines
 WHERE model = 'dec_clf' AND version = 'v1' ORDER BY feature;
CREATE TABLE dec_empty (age float8, city text);
SELECT retrain.capture_baseline('dec_clf', 'v2', 'dec_empty', '{age, city}');
SELECT feature, kind, edges, expected, categories, row_count, missing_share FROM retrain.baselines
 WHERE model = 'dec_clf' AND version = 'v2' ORDER BY feature;

-- Item 10: text columns are profiled only when named (their categories are
-- the values themselves), and baselines are for the model's owner and the
-- prediction log's readers, not for every role.
CREATE TABLE dec_patients (age float8, name text);
INSERT INTO dec_patients SELECT g, 'patient ' || g FROM generate_series(1, 20) g;
SELECT retrain.capture_baseline('dec_clf', 'v1', 'dec_patients');
SELECT feature, kind FROM retrain.baselines WHERE model = 'dec_clf' AND version = 'v1' ORDER BY feature;
CREATE ROLE dec_outsider;
CREATE ROLE dec_analyst;
GRANT SELECT ON retrain.predictions TO dec_analyst;
SET ROLE dec_outsider;
SELECT count(*) AS outsider_sees FROM retrain.baselines WHERE model = 'dec_clf';
RESET ROLE;
SET ROLE dec_analyst;
SELECT count(*) AS analyst_sees FROM retrain.baselines WHERE model = 'dec_clf';
RESET ROLE;
SELECT retrain.set_owner('dec_clf', 'dec_outsider');
SET ROLE dec_outsider;
SELECT count(*) AS owner_sees FROM retrain.baselines WHERE model = 'dec_clf';
RESET ROLE;
SELECT retrain.set_owner('dec_clf', current_user);

-- Item 22: an aggregate used as a window function names itself in errors,
-- not its support functions.
SELECT retrain.auc(s, l) OVER (ORDER BY i) FROM (VALUES (1, 0.5::float8, true), (2, 'NaN', false)) v(i, s, l);
SELECT retrain.f1(s, l, 0.5) OVER (ORDER BY i) FROM (VALUES (1, 0.5::float8, true), (2, 'NaN', false)) v(i, s, l);
SELECT retrain.rmse(s, a) OVER (ORDER BY i) FROM (VALUES (1, 0.5::float8, 1::float8), (2, 'NaN', 1)) v(i, s, a);

-- Item 23: a trigger that stays fired adds no reason per cycle: the reason
-- is counted, with its first and last time.
SELECT retrain.set_policy('dec_reg', '{"triggers": {"data_growth": {"count": 1}},
                                       "eligibility": {"min_new_labels": 0}}') IS NOT NULL AS set;
SELECT retrain.promote('dec_reg', 'v1', 'blue_green', override_reason => 'test');
SELECT retrain.log_outcome(retrain.log_prediction('dec_reg', 'v1', 'u' || g, g), g::float8) FROM generate_series(1, 3) g;
SELECT retrain.run_checks(), retrain.run_checks(), retrain.run_checks(), retrain.run_checks(), retrain.run_checks();
SELECT jsonb_array_length(reasons) AS entries, reasons->0->>'trigger' AS trigger, reasons->0->'count' AS count,
       (reasons->0->>'first_at')::timestamptz <= (reasons->0->>'last_at')::timestamptz AS ordered
  FROM retrain.requests WHERE model = 'dec_reg' AND status = 'open';
-- a person's reason is its own entry; the same words again are counted
SELECT retrain.request_retrain('dec_reg', 'new data from the partner') = retrain.request_retrain('dec_reg', 'new data from the partner') AS joined;
SELECT e->>'trigger' AS trigger, e->>'reason' AS reason, e->'count' AS count
  FROM retrain.requests q, jsonb_array_elements(q.reasons) e WHERE q.model = 'dec_reg' AND q.status = 'open';

DROP TABLE dec_train, dec_empty, dec_patients;
REVOKE SELECT ON retrain.predictions FROM dec_analyst;
DROP ROLE dec_outsider;
DROP ROLE dec_analyst;
