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
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(format('%s (hint: %s)', SQLERRM, hint),
                                                             'prediction \d+', 'prediction N', 'g'),
                                              '\(\d+,', '(N,', 'g');
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
SELECT retrain.register_version('dec_rb', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{}') FROM unnest('{v1, v2, v3}'::text[]) v;
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
-- v2, fixed and signed again, serves and is replaced in the ordinary way:
-- it is a good version to return to again
SET SESSION AUTHORIZATION dec_signer;
SELECT retrain.approve('dec_rb', 'v2', 'reviewer', 'fixed');
RESET SESSION AUTHORIZATION;
SELECT retrain.promote('dec_rb', 'v2', 'blue_green');
SELECT retrain.promote('dec_rb', 'v3', 'blue_green', override_reason => 'the owner takes it');
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'dec_rb';

-- Item 18: one shadow at most, and a version is in exactly one stage: the
-- running canary cannot also be the shadow; a new shadow returns the one
-- it replaces to registered.
SELECT retrain.register_model('dec_sh', 'binary_classification');
SELECT retrain.register_version('dec_sh', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{}') FROM unnest('{v1, v2, v3, v4}'::text[]) v;
SELECT retrain.promote('dec_sh', 'v1', 'blue_green', override_reason => 't'),
       retrain.promote('dec_sh', 'v2', 'canary', override_reason => 't');
SELECT retrain.promote('dec_sh', 'v2', 'shadow', override_reason => 't');
SELECT retrain.promote('dec_sh', 'v3', 'shadow', override_reason => 't'),
       retrain.promote('dec_sh', 'v4', 'shadow', override_reason => 't');
SELECT version, stage FROM retrain.model_versions WHERE model = 'dec_sh' ORDER BY version;
SELECT production_version, canary_version, shadow_version FROM retrain.deployments WHERE model = 'dec_sh';


-- Item 5, for triggers: an accuracy drop of exactly the policy's 0.05 does
-- not fire, in either of the cases binary floating point decides wrong
-- (0.87 -> 0.82 fired, 0.86 -> 0.81 did not); a drop past it fires.
CREATE FUNCTION pg_temp.accuracy_case(name text, registered numeric, correct integer, n integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM retrain.register_model(name, 'binary_classification');
    PERFORM retrain.register_version(name, 'v1', 's3://m/v1', repeat('a', 64), jsonb_build_object('accuracy', registered));
    PERFORM retrain.promote(name, 'v1', 'blue_green', override_reason => 'test');
    PERFORM retrain.set_policy(name, '{"triggers": {"performance": {"metric": "accuracy", "max_drop": 0.05,
                                                                    "min_labels": 1, "window": "1 day"}}}');
    PERFORM retrain.log_outcome(retrain.log_prediction(name, 'v1', 'u' || i, 0.9, predicted_at => '2026-06-01 12:00+00'),
                                i <= correct, '2026-06-01 13:00+00')
       FROM generate_series(1, n) i;
    RETURN (SELECT c.fired FROM retrain.check(name, '2026-06-02 00:00+00') c WHERE c.trigger = 'performance');
END
$$;
SELECT pg_temp.accuracy_case('dec_acc1', 0.87, 82, 100) AS "0.87 -> 0.82",
       pg_temp.accuracy_case('dec_acc2', 0.86, 81, 100) AS "0.86 -> 0.81",
       pg_temp.accuracy_case('dec_acc3', 0.87, 819, 1000) AS "0.87 -> 0.819";

-- Item 6: a trigger that cannot be evaluated says so (fired NULL, why in
-- detail->>'unusable'), and run_checks() logs it once per reason, not every
-- cycle; set_policy() refuses triggers that do not fit the task.
SELECT retrain.register_model('dec_un', 'binary_classification');
SELECT retrain.register_version('dec_un', 'v1', 's3://m/v1', repeat('a', 64), '{"auc": 0.9}');
SELECT retrain.set_policy('dec_un', '{"triggers": {"performance": {"metric": "f1", "max_drop": 0.05},
                                                   "drift": {}, "feature_change": {}, "data_growth": {"count": 10}}}') IS NOT NULL AS set;
SELECT trigger, fired, detail->>'unusable' AS unusable FROM retrain.check('dec_un');
SELECT retrain.promote('dec_un', 'v1', 'blue_green', override_reason => 'test');
SELECT trigger, fired, detail->>'unusable' AS unusable FROM retrain.check('dec_un');
SELECT retrain.run_checks() >= 0 AS ran, retrain.run_checks() >= 0 AS ran_again;
SELECT event, details->>'trigger' AS trigger, details->>'reason' AS reason FROM retrain.log
 WHERE model = 'dec_un' AND event LIKE 'trigger_%' ORDER BY id;
SELECT details->'fired' AS fired, details->'unusable' AS unusable FROM retrain.log
 WHERE model = 'dec_un' AND event = 'checked' ORDER BY id DESC LIMIT 1;
-- the metric arrives with a new version: usable again, logged once
SELECT retrain.register_version('dec_un', 'v2', 's3://m/v2', repeat('b', 64), '{"auc": 0.9, "f1": 0.8}');
SELECT retrain.promote('dec_un', 'v2', 'blue_green', override_reason => 'test');
SELECT retrain.run_checks() >= 0 AS ran;
SELECT event, details->>'trigger' AS trigger FROM retrain.log
 WHERE model = 'dec_un' AND event = 'trigger_usable' ORDER BY id;
SELECT retrain.set_policy('dec_reg', '{"triggers": {"confidence": {"min": 0.7}}}');
SELECT retrain.set_policy('dec_reg', '{"triggers": {"performance": {"metric": "auc", "max_drop": 0.05}}}');
SELECT retrain.set_policy('dec_un', '{"triggers": {"performance": {"metric": "rmse", "max_drop": 0.05}}}');

-- Item 7: check(model, at) in the past counts what was known at: outcomes
-- observed by at (a label observed later is not counted), predictions made
-- by at; run_checks(at) decides as a cycle at that time would; the owner's
-- checks see at as retrain.check_at.
SELECT retrain.register_model('dec_tt', 'binary_classification');
SELECT retrain.register_version('dec_tt', 'v1', 's3://m/v1', repeat('a', 64), '{"accuracy": 0.9}',
                                data_range => '[2026-01-01, 2026-06-01)');
SELECT retrain.promote('dec_tt', 'v1', 'blue_green', override_reason => 'test');
SELECT retrain.set_policy('dec_tt', '{"triggers": {"performance": {"metric": "accuracy", "max_drop": 0.05,
                                                                   "min_labels": 1, "window": "30 days"},
                                                   "data_growth": {"count": 15}},
  "eligibility": {"checks": {"asked_about_june_12": "SELECT current_setting(''retrain.check_at'')::timestamptz = ''2026-06-12 00:00+00''"}}}') IS NOT NULL AS set;
SELECT retrain.log_outcome(retrain.log_prediction('dec_tt', 'v1', 'u' || i, 0.9, predicted_at => '2026-06-10 00:00+00'),
                           true, '2026-06-10 00:00+00'::timestamptz + i * interval '1 day')
  FROM generate_series(1, 20) i;
SELECT trigger, fired, observed, detail->'labelled' AS labelled, detail->'new_labels' AS new_labels, eligible
  FROM retrain.check('dec_tt', '2026-06-12 00:00+00');
SELECT trigger, fired, observed, detail->'labelled' AS labelled, detail->'new_labels' AS new_labels, eligible
  FROM retrain.check('dec_tt', '2026-07-01 00:00+00');
SELECT detail->'eligibility'->'failed_checks' AS failed_checks FROM retrain.check('dec_tt', '2026-07-01 00:00+00') LIMIT 1;
SELECT current_setting('retrain.check_at') = '' AS nothing_left_in_the_session;
SELECT retrain.run_checks('2026-06-12 00:00+00') AS new_requests;
SELECT retrain.run_checks('2026-07-01 00:00+00') AS new_requests;
SELECT status, reasons->0->>'trigger' AS trigger FROM retrain.requests WHERE model = 'dec_tt';
SELECT retrain.run_checks(NULL::timestamptz);
SELECT details->>'at' AS at, details->'held' AS held FROM retrain.log
 WHERE model = 'dec_tt' AND event = 'checked' ORDER BY id;

-- Item 8: a feature is dropped only when no prediction of the window
-- carries it, added when at least min_share of them carry a new key.
SELECT retrain.register_model('dec_fc', 'binary_classification');
SELECT retrain.register_version('dec_fc', 'v1', 's3://m/v1', repeat('a', 64), '{}', features => '{age, city}');
SELECT retrain.promote('dec_fc', 'v1', 'blue_green', override_reason => 'test');
SELECT retrain.set_policy('dec_fc', '{"triggers": {"feature_change": {"window": "1 day"}}}') IS NOT NULL AS set;
-- ten requests; one omits "age" (its value was null); four carry "extra"
SELECT count(retrain.log_prediction('dec_fc', 'v1', 'u' || i, 0.5,
                                    features => CASE WHEN i = 1 THEN '{"city": "a"}'::jsonb
                                                     ELSE jsonb_build_object('age', i, 'city', 'a') END
                                                || CASE WHEN i <= 4 THEN '{"extra": 1}'::jsonb ELSE '{}' END,
                                    predicted_at => '2026-06-01 12:00+00'))
  FROM generate_series(1, 10) i;
SELECT fired, detail->'added' AS added, detail->'dropped' AS dropped, detail->'served' AS served
  FROM retrain.check('dec_fc', '2026-06-02 00:00+00');
-- two more with "extra": 6 of 12 is the policy's 0.5
SELECT count(retrain.log_prediction('dec_fc', 'v1', 'w' || i, 0.5, features => '{"age": 1, "city": "a", "extra": 1}',
                                    predicted_at => '2026-06-01 13:00+00'))
  FROM generate_series(1, 2) i;
SELECT fired, detail->'added' AS added, detail->'dropped' AS dropped FROM retrain.check('dec_fc', '2026-06-02 00:00+00');
-- a day later, nobody sends "city" any more
SELECT count(retrain.log_prediction('dec_fc', 'v1', 'x' || i, 0.5, features => '{"age": 1}',
                                    predicted_at => '2026-06-03 12:00+00'))
  FROM generate_series(1, 5) i;
SELECT fired, detail->'added' AS added, detail->'dropped' AS dropped FROM retrain.check('dec_fc', '2026-06-04 00:00+00');

-- Item 1, sources: rows of a team's relation whose value an aggregate
-- cannot take (NaN, infinite, a probability outside [0, 1]) are left out of
-- that figure and counted; the check does not fail, every trigger is
-- evaluated.
CREATE TABLE dec_src (version text, predicted_at timestamptz, score float8, label boolean, observed_at timestamptz);
INSERT INTO dec_src
SELECT 'v1', '2026-06-01 12:00+00', CASE WHEN i % 2 = 0 THEN 0.9 ELSE 0.1 END, i % 2 = 0, '2026-06-01 13:00+00'
  FROM generate_series(1, 100) i;
INSERT INTO dec_src VALUES ('v1', '2026-06-01 12:00+00', 'NaN', true, '2026-06-01 13:00+00'),
                           ('v1', '2026-06-01 12:00+00', 'Infinity', false, '2026-06-01 13:00+00'),
                           ('v1', '2026-06-01 12:00+00', 1.5, true, '2026-06-01 13:00+00');
SELECT retrain.register_model('dec_nan', 'binary_classification');
SELECT retrain.register_version('dec_nan', 'v1', 's3://m/v1', repeat('a', 64), '{"auc": 0.99}');
SELECT retrain.promote('dec_nan', 'v1', 'blue_green', override_reason => 'test');
SELECT retrain.set_source('dec_nan', 'dec_src');
SELECT retrain.set_policy('dec_nan', '{"triggers": {"performance": {"metric": "auc", "max_drop": 0.05, "min_labels": 10,
                                                                    "window": "1 day"},
                                                    "confidence": {"min": 0.7, "window": "1 day"},
                                                    "data_growth": {"count": 50}}}') IS NOT NULL AS set;
SELECT trigger, fired, round(observed::numeric, 4) AS observed, detail->'invalid_rows' AS invalid_rows,
       detail->'labelled' AS labelled
  FROM retrain.check('dec_nan', '2026-06-02 00:00+00');
SELECT retrain.run_checks('2026-06-02 00:00+00') >= 0 AS ran;
SELECT count(*) AS check_failed FROM retrain.log WHERE model = 'dec_nan' AND event = 'check_failed';

-- Item 1, the log: retrain.predictions refuses NaN and infinities, from
-- log_prediction (22023, naming the column) and from INSERT or COPY (23514,
-- a named constraint).
SELECT retrain.log_prediction('dec_clf', 'v1', 'u', 'NaN');
SELECT retrain.log_prediction('dec_clf', 'v1', 'u', 0.5, latency_ms => 'Infinity');
-- (at a time and an id no partition but the default holds: the message
-- names the partition the row went to)
INSERT INTO retrain.predictions (model, version, score, predicted_at) VALUES ('dec_clf', 'v1', '-Infinity', '1999-01-01');
INSERT INTO retrain.predictions (model, version, score, latency_ms, predicted_at) VALUES ('dec_clf', 'v1', 0.5, 'NaN', '1999-01-01');
COPY retrain.predictions (model, version, score, predicted_at) FROM stdin;
dec_clf	v1	NaN	1999-01-01
\.
INSERT INTO retrain.outcomes (prediction_id, actual) VALUES (9000000000000000000, 'NaN');

-- Item 1, the guard: a canary whose scores an aggregate cannot take (here a
-- classifier's 1.5: out of [0, 1]) is rolled back at once, with the count;
-- and when its source holds NaN, the owner's rollback check still runs
-- first, and decides.
SELECT retrain.register_model('dec_bad', 'binary_classification');
SELECT retrain.register_version('dec_bad', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{}') FROM unnest('{v1, v2, v3}'::text[]) v;
SELECT retrain.promote('dec_bad', 'v1', 'blue_green', override_reason => 't'),
       retrain.promote('dec_bad', 'v2', 'canary', override_reason => 't');
SELECT count(retrain.log_prediction('dec_bad', 'v2', 'u' || i, CASE WHEN i = 3 THEN 1.5 ELSE 0.5 END, 10))
  FROM generate_series(1, 20) i;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts() WHERE model = 'dec_bad';
SELECT production_version, canary_version FROM retrain.deployments WHERE model = 'dec_bad';
CREATE TABLE dec_bad_src (version text, predicted_at timestamptz, score float8, error boolean);
SELECT retrain.set_source('dec_bad', 'dec_bad_src');
SELECT retrain.set_policy('dec_bad', '{"rollback": {"checks": {"wrong_output": "SELECT true"}}}') IS NOT NULL AS set;
SELECT retrain.promote('dec_bad', 'v3', 'canary', override_reason => 't');
INSERT INTO dec_bad_src SELECT 'v3', now() + i * interval '1 second', CASE WHEN i % 2 = 0 THEN 'NaN' ELSE 0.5 END, false
  FROM generate_series(1, 10) i;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '1 minute') WHERE model = 'dec_bad';
-- without the check, the NaN scores themselves roll it back
SELECT retrain.set_policy('dec_bad', '{}') IS NOT NULL AS set;
SELECT retrain.promote('dec_bad', 'v3', 'canary', override_reason => 'again, without the check');
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '1 minute') WHERE model = 'dec_bad';
SELECT count(*) AS guard_failed FROM retrain.log WHERE model = 'dec_bad' AND event = 'guard_failed';
-- a source the owner can no longer read at all: the owner's check still
-- decides, and the figures that could not be read are reported, not raised
CREATE ROLE dec_bad_owner;
GRANT SELECT ON dec_bad_src TO dec_bad_owner;
SELECT retrain.set_owner('dec_bad', 'dec_bad_owner');
REVOKE SELECT ON dec_bad_src FROM dec_bad_owner;
SELECT retrain.set_policy('dec_bad', '{"rollback": {"checks": {"wrong_output": "SELECT true"}}}') IS NOT NULL AS set;
SELECT retrain.promote('dec_bad', 'v3', 'canary', override_reason => 'a third time');
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '1 minute') WHERE model = 'dec_bad';
SELECT details->'canary'->'errors'->>'n' AS unreadable FROM retrain.log
 WHERE model = 'dec_bad' AND event = 'guard' ORDER BY id DESC LIMIT 1;
SELECT retrain.set_owner('dec_bad', current_user);

-- An outcome no metric can take (a labeller's NaN) is not the version's
-- doing: the guard does not count it as an invalid score, and waits for
-- enough predictions as for any canary.
SELECT retrain.register_model('dec_labels', 'regression');
SELECT retrain.register_version('dec_labels', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{}')
  FROM unnest('{v1, v2}'::text[]) v;
CREATE TABLE dec_labels_src (version text, predicted_at timestamptz, score float8, actual float8, latency_ms float8,
                             error boolean);
SELECT retrain.set_source('dec_labels', 'dec_labels_src');
SELECT retrain.promote('dec_labels', 'v1', 'blue_green', override_reason => 't'),
       retrain.promote('dec_labels', 'v2', 'canary', override_reason => 't');
INSERT INTO dec_labels_src SELECT 'v2', now() + i * interval '1 second', i, CASE WHEN i % 2 = 0 THEN 'NaN' ELSE i::float8 END, 10, false
  FROM generate_series(1, 20) i;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '1 minute') WHERE model = 'dec_labels';
SELECT details->'canary'->>'invalid' AS invalid_scores FROM retrain.log
 WHERE model = 'dec_labels' AND event = 'guard' ORDER BY id DESC LIMIT 1;

-- Item 2: production is watched after release.  A blue-green swap whose new
-- version answers in 1 s with 10% errors is rolled back to the version it
-- replaced within rollback.watch; after the watch the guard leaves
-- production alone; every decision is logged.
SELECT retrain.register_model('dec_watch', 'binary_classification');
SELECT retrain.register_version('dec_watch', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{"auc": 0.9}')
  FROM unnest('{v1, v2, v3, v4}'::text[]) v;
SELECT retrain.promote('dec_watch', 'v1', 'blue_green', override_reason => 't');
UPDATE retrain.production_history SET started_at = now() - interval '3 days' WHERE model = 'dec_watch';
SELECT count(retrain.log_prediction('dec_watch', 'v1', 'u' || i, 0.5, 20, false,
                                    predicted_at => now() - interval '30 minutes' + i * interval '1 second'))
  FROM generate_series(1, 200) i;
SELECT retrain.promote('dec_watch', 'v2', 'blue_green', override_reason => 't');
SELECT count(retrain.log_prediction('dec_watch', 'v2', 'u' || i, 0.5, 1000, i % 10 = 0,
                                    predicted_at => now() + i * interval '1 second'))
  FROM generate_series(1, 200) i;
SELECT model, canary AS version, decision, reason FROM retrain.guard_rollouts(now() + interval '10 minutes')
 WHERE model = 'dec_watch';
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'dec_watch';
SELECT details->>'decision' AS decision, details->'watch' AS watch FROM retrain.log
 WHERE model = 'dec_watch' AND event = 'guard' ORDER BY id;
-- v1 came back by a rollback: it is not watched against the version it replaced
SELECT count(*) AS judged FROM retrain.guard_rollouts(now() + interval '20 minutes') WHERE model = 'dec_watch';
-- a canary that reaches 100% is watched too; healthy, it is held, and after
-- the watch left alone; the latency limit compares with the version it
-- replaced over the same length of time before the swap
SELECT retrain.promote('dec_watch', 'v3', 'canary', override_reason => 't');
SELECT retrain.advance('dec_watch') AS to_50;
SELECT retrain.advance('dec_watch') AS to_production;
SELECT count(retrain.log_prediction('dec_watch', 'v3', 'w' || i, 0.5, 21, false,
                                    predicted_at => now() + i * interval '1 second'))
  FROM generate_series(1, 200) i;
SELECT model, canary AS version, decision, reason FROM retrain.guard_rollouts(now() + interval '10 minutes')
 WHERE model = 'dec_watch';
SELECT count(*) AS judged_after_the_watch FROM retrain.guard_rollouts(now() + interval '25 hours') WHERE model = 'dec_watch';
-- the owner's rollback checks run during the watch ("three critical
-- feedback labels within an hour"), and roll back to the version replaced
SELECT retrain.set_policy('dec_watch', '{"rollback": {"checks": {"critical_feedback": "SELECT true"}, "watch": "48 hours"}}') IS NOT NULL AS set;
SELECT model, canary AS version, decision, reason FROM retrain.guard_rollouts(now() + interval '30 hours')
 WHERE model = 'dec_watch';
SELECT production_version FROM retrain.deployments WHERE model = 'dec_watch';
-- latency: p99 of 1 s against the 20 ms the replaced version served in the
-- same length of time before the swap
SELECT retrain.set_policy('dec_watch', '{}') IS NOT NULL AS set;
SELECT count(retrain.log_prediction('dec_watch', 'v1', 'y' || i, 0.5, 20, false,
                                    predicted_at => now() - interval '5 minutes' + i * interval '1 second'))
  FROM generate_series(1, 200) i;
SELECT retrain.promote('dec_watch', 'v4', 'blue_green', override_reason => 't');
SELECT count(retrain.log_prediction('dec_watch', 'v4', 'z' || i, 0.5, 1000, false,
                                    predicted_at => now() + i * interval '1 second'))
  FROM generate_series(1, 200) i;
SELECT model, canary AS version, decision, reason FROM retrain.guard_rollouts(now() + interval '10 minutes')
 WHERE model = 'dec_watch';
SELECT production_version FROM retrain.deployments WHERE model = 'dec_watch';
-- a first release has nothing to return to: the guard says so and holds
SELECT retrain.register_model('dec_first', 'binary_classification');
SELECT retrain.register_version('dec_first', 'v1', 's3://m/v1', repeat('a', 64), '{}');
SELECT retrain.promote('dec_first', 'v1', 'blue_green', override_reason => 't');
SELECT retrain.set_policy('dec_first', '{"rollback": {"checks": {"critical_feedback": "SELECT true"}}}') IS NOT NULL AS set;
SELECT model, canary AS version, decision, reason FROM retrain.guard_rollouts() WHERE model = 'dec_first';
SELECT production_version FROM retrain.deployments WHERE model = 'dec_first';
-- rollback.metric: F1 at the policy's threshold is possible; a regression
-- metric on a classifier is refused
SELECT retrain.set_policy('dec_first', '{"rollback": {"metric": "f1", "max_metric_drop": 0.05}}') -> 'rollback' ->> 'metric' AS metric;
SELECT retrain.set_policy('dec_first', '{"rollback": {"metric": "rmse"}}');
DROP TABLE dec_train, dec_empty, dec_patients, dec_src, dec_bad_src, dec_labels_src;
REVOKE SELECT ON retrain.predictions FROM dec_analyst;
DROP ROLE dec_outsider;
DROP ROLE dec_bad_owner;
DROP ROLE dec_analyst;
REVOKE EXECUTE ON FUNCTION retrain.approve(text, text, text, text) FROM dec_signer;
DROP ROLE dec_signer;

