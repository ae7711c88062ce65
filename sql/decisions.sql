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


-- Item 3: promote() judges the gates at the moment of promotion, against
-- the production version of that moment and the current policy.  v2 (AUC
-- 0.85) was evaluated against v1 (0.80) and passed; v3 (0.95) went live
-- since; v2 is refused, with every failed gate in DETAIL.
SELECT retrain.register_model('dec_gate', 'binary_classification');
SELECT retrain.set_policy('dec_gate', '{"gates": [{"metric": "auc", "op": ">=", "relative": 0.02}]}') IS NOT NULL AS set;
SELECT retrain.register_version('dec_gate', 'v1', 's3://m/v1', repeat('a', 64), '{"auc": 0.80}');
SELECT retrain.register_version('dec_gate', 'v2', 's3://m/v2', repeat('b', 64), '{"auc": 0.85}');
SELECT retrain.register_version('dec_gate', 'v3', 's3://m/v3', repeat('c', 64), '{"auc": 0.95}');
SELECT retrain.promote('dec_gate', 'v1', 'blue_green', override_reason => 'first release');
SELECT gate, passed FROM retrain.evaluate('dec_gate', 'v2');
SELECT gate, passed FROM retrain.evaluate('dec_gate', 'v3');
SELECT retrain.promote('dec_gate', 'v3', 'blue_green');
\set VERBOSITY default
SELECT retrain.promote('dec_gate', 'v2', 'blue_green');
\set VERBOSITY terse
-- and a gate raised after the evaluation counts at once
SELECT retrain.rollback('dec_gate', 'back to v1 for the test');
SELECT retrain.set_policy('dec_gate', '{"gates": [{"metric": "auc", "op": ">=", "relative": 0.50}]}') IS NOT NULL AS set;
SELECT retrain.promote('dec_gate', 'v2', 'blue_green');

-- Item 5: thresholds mean what they say in decimal.  "AUC must improve by
-- 0.02" passes 0.80 -> 0.82 (float8 required 0.8200000000000001).
SELECT retrain.set_policy('dec_gate', '{"gates": [{"metric": "auc", "op": ">=", "relative": 0.02}]}') IS NOT NULL AS set;
SELECT retrain.register_version('dec_gate', 'v4', 's3://m/v4', repeat('d', 64), '{"auc": 0.82}');
SELECT gate, required, observed, passed FROM retrain.evaluate('dec_gate', 'v4');
SELECT 0.80::float8 + 0.02::float8 > 0.82::float8 AS float8_would_refuse;

-- Item 4: after a rollback, previous_version and the manifest's last_good
-- name the last good version, never the one just rolled back; rollback()
-- goes there, or refuses with a hint when there is none; a version rolled
-- back needs new sign-offs.
SELECT retrain.register_model('dec_rb', 'binary_classification');
CREATE ROLE dec_signer;
GRANT EXECUTE ON FUNCTION retrain.approve(text, text, text, text) TO dec_signer;
SELECT retrain.set_policy('dec_rb', '{"approvals": {"reviewer": "dec_signer"}}') IS NOT NULL AS set;
SELECT retrain.register_version('dec_rb', v, 's3://m/' || v, repeat('a', 64), '{}') FROM unnest('{v1, v2, v3}'::text[]) v;
SET SESSION AUTHORIZATION dec_signer;
SELECT retrain.approve('dec_rb', v, 'reviewer') FROM unnest('{v1, v2, v3}'::text[]) v;
RESET SESSION AUTHORIZATION;
SELECT retrain.promote('dec_rb', 'v1', 'blue_green'), retrain.promote('dec_rb', 'v2', 'blue_green'),
       retrain.promote('dec_rb', 'v3', 'blue_green');
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'dec_rb';
SELECT retrain.rollback('dec_rb', 'v3 misbehaves');
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'dec_rb';
SELECT version, stage FROM retrain.model_versions WHERE model = 'dec_rb' ORDER BY version;
SELECT retrain.manifest('dec_rb')->'last_good'->>'version' AS last_good,
       (SELECT jsonb_agg(h->>'version' || ' ' || coalesce(h->>'ended_by', 'serving'))
          FROM jsonb_array_elements(retrain.manifest('dec_rb')->'history') h) AS history;
\set VERBOSITY default
SELECT retrain.promote('dec_rb', 'v3', 'blue_green');
\set VERBOSITY terse
SELECT approver, revoked_at IS NOT NULL AS revoked FROM retrain.approvals WHERE model = 'dec_rb' AND version = 'v3';
SET SESSION AUTHORIZATION dec_signer;
SELECT retrain.approve('dec_rb', 'v3', 'reviewer', 'fixed and re-checked');
RESET SESSION AUTHORIZATION;
SELECT retrain.promote('dec_rb', 'v3', 'canary');
SELECT retrain.rollback('dec_rb', 'the canary misbehaves too');
SELECT retrain.rollback('dec_rb', 'v2 misbehaves');
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'dec_rb';
\set VERBOSITY default
SELECT retrain.rollback('dec_rb', 'v1 misbehaves');
\set VERBOSITY terse

-- Item 18: one shadow at most, and a version is in exactly one stage: the
-- running canary cannot also be the shadow; a new shadow returns the one
-- it replaces to registered.
SELECT retrain.register_model('dec_sh', 'binary_classification');
SELECT retrain.register_version('dec_sh', v, 's3://m/' || v, repeat('a', 64), '{}') FROM unnest('{v1, v2, v3, v4}'::text[]) v;
SELECT retrain.promote('dec_sh', 'v1', 'blue_green', override_reason => 't'),
       retrain.promote('dec_sh', 'v2', 'canary', override_reason => 't');
SELECT retrain.promote('dec_sh', 'v2', 'shadow', override_reason => 't');
SELECT retrain.promote('dec_sh', 'v3', 'shadow', override_reason => 't'),
       retrain.promote('dec_sh', 'v4', 'shadow', override_reason => 't');
SELECT version, stage FROM retrain.model_versions WHERE model = 'dec_sh' ORDER BY version;
SELECT production_version, canary_version, shadow_version FROM retrain.deployments WHERE model = 'dec_sh';

DROP TABLE dec_train, dec_empty, dec_patients;
REVOKE SELECT ON retrain.predictions FROM dec_analyst;
DROP ROLE dec_outsider;
DROP ROLE dec_analyst;
REVOKE EXECUTE ON FUNCTION retrain.approve(text, text, text, text) FROM dec_signer;
DROP ROLE dec_signer;

