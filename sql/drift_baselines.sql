--
-- Feature baselines and drift reports: capture_baseline, drift,
-- drift_summary.
--

-- Line numbers inside PL/pgSQL functions are no part of the contract.
\set SHOW_CONTEXT never

-- Training data: a uniform number, a number with missing values, an
-- integer, a category, a timestamp.
CREATE TABLE training_rows AS
SELECT i,
       (i % 100)::float8 AS amount,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 7)::float8 END AS tenure,
       (i % 5)::int AS visits,
       (ARRAY['basic', 'plus', 'pro'])[1 + i % 3] AS plan,
       '2026-01-01'::timestamptz + i * interval '1 hour' AS seen_at
  FROM generate_series(1, 1000) i;

-- The models and versions the baselines belong to, owned by a team.
CREATE ROLE retrain_regress_team;
SELECT retrain.register_model(m, 'binary_classification') FROM unnest(ARRAY['churn', 'm']) m;
SELECT retrain.register_version(m, v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{}')
  FROM (VALUES ('churn', 'v1'), ('churn', 'v2'), ('churn', 'v3'), ('m', 'v1')) x(m, v);
SELECT retrain.set_owner(m, 'retrain_regress_team') FROM unnest(ARRAY['churn', 'm']) m;

-- Every numeric and text column (i, amount, tenure, visits, plan) is
-- profiled; quartiles here.
SELECT retrain.capture_baseline('churn', 'v1', 'training_rows', NULL, 4);
SELECT feature, kind, edges, expected, categories, row_count, missing_share
  FROM retrain.baselines WHERE model = 'churn' ORDER BY feature;
-- and each number's training range, missing values and NaN left out
SELECT feature, min_value, max_value FROM retrain.baselines WHERE model = 'churn' ORDER BY feature;

-- Capturing again replaces the earlier baseline of that version.
SELECT retrain.capture_baseline('churn', 'v1', 'training_rows', '{amount, tenure, plan}');
SELECT count(*) AS features, min(array_length(edges, 1)) AS deciles
  FROM retrain.baselines WHERE model = 'churn' AND version = 'v1';

-- The same data drifts nowhere.
SELECT feature, kind, round(psi::numeric, 12) AS psi, round(js::numeric, 6) AS js,
       missing_share, n, drifted
  FROM retrain.drift('churn', 'v1', 'training_rows') ORDER BY feature;

-- Current data: amounts shifted up, a new plan, more missing tenure.
CREATE TABLE current_rows AS
SELECT i,
       (i % 100 + 30)::float8 AS amount,
       CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 7)::float8 END AS tenure,
       (i % 5)::int AS visits,
       (ARRAY['basic', 'plus', 'enterprise'])[1 + i % 3] AS plan,
       '2026-02-01'::timestamptz + i * interval '1 hour' AS seen_at
  FROM generate_series(1, 500) i;

SELECT feature, kind, round(psi::numeric, 6) AS psi, round(js::numeric, 6) AS js,
       missing_share, n, drifted
  FROM retrain.drift('churn', 'v1', 'current_rows') ORDER BY feature;
-- The same PSI by hand for amount: its histogram against the baseline.
SELECT round(retrain.psi(b.expected, (SELECT retrain.histogram(amount, b.edges) FROM current_rows)::float8[])::numeric, 6)
       AS amount_psi_by_hand
  FROM retrain.baselines b WHERE model = 'churn' AND version = 'v1' AND feature = 'amount';

-- A time window: only rows seen since the given time; a higher threshold.
SELECT feature, n, drifted
  FROM retrain.drift('churn', 'v1', 'current_rows', '2026-02-20', 'seen_at', psi_threshold => 5)
 ORDER BY feature;

-- Dataset drift: 2 of 3 features drifted >= the default share 0.5.
SELECT round(mean_psi::numeric, 6) AS mean_psi, round(max_psi::numeric, 6) AS max_psi,
       round(drifted_share::numeric, 6) AS drifted_share, dataset_drift, features
  FROM retrain.drift_summary('churn', 'v1', 'current_rows');
SELECT dataset_drift FROM retrain.drift_summary('churn', 'v1', 'current_rows', drift_share => 0.9);

-- No rows in the window: no PSI, nothing drifted.
SELECT feature, psi, js, missing_share, n, drifted
  FROM retrain.drift('churn', 'v1', 'current_rows', '2030-01-01', 'seen_at') ORDER BY feature;
SELECT * FROM retrain.drift_summary('churn', 'v1', 'current_rows', '2030-01-01', 'seen_at');

-- Errors.
-- The same rows with their features in a jsonb column "features", as
-- retrain.predictions and a source keep them: the same figures (a key a
-- row lacks is missing, as a NULL column is).
CREATE TABLE current_json AS
SELECT seen_at, jsonb_strip_nulls(jsonb_build_object('amount', amount, 'tenure', tenure, 'visits', visits,
                                                     'plan', plan)) AS features
  FROM current_rows;
SELECT (SELECT array_agg(d ORDER BY d.feature) FROM retrain.drift('churn', 'v1', 'current_rows') d)::text
     = (SELECT array_agg(d ORDER BY d.feature) FROM retrain.drift('churn', 'v1', 'current_json') d)::text
       AS same_figures,
       (SELECT array_agg(d ORDER BY d.feature) FROM retrain.drift('churn', 'v1', 'current_rows', '2026-02-20', 'seen_at') d)::text
     = (SELECT array_agg(d ORDER BY d.feature) FROM retrain.drift('churn', 'v1', 'current_json', '2026-02-20', 'seen_at') d)::text
       AS same_since;
-- a value that is no number, in a numeric feature, is missing too
UPDATE current_json SET features = features || '{"amount": "n/a"}' WHERE seen_at < '2026-02-01 06:00';
SELECT feature, missing_share, n FROM retrain.drift('churn', 'v1', 'current_json') WHERE feature = 'amount';
-- a column of the feature's name is read before the jsonb
ALTER TABLE current_json ADD COLUMN amount float8 DEFAULT 1000;
SELECT feature, missing_share, drifted FROM retrain.drift('churn', 'v1', 'current_json') WHERE feature = 'amount';
DROP TABLE current_json;

SELECT * FROM retrain.drift('churn', 'v9', 'current_rows');
SELECT * FROM retrain.drift('churn', 'v1', 'current_rows', '2026-02-20');
SELECT * FROM retrain.drift('churn', 'v1', 'current_rows', '2026-02-20', 'no_such_column');
SELECT * FROM retrain.drift('churn', 'v1', 'current_rows', psi_threshold => 'NaN');
SELECT * FROM retrain.drift_summary('churn', 'v1', 'current_rows', drift_share => 2);
ALTER TABLE current_rows DROP COLUMN tenure;
SELECT * FROM retrain.drift('churn', 'v1', 'current_rows');
SELECT retrain.capture_baseline('churn', 'v2', 'training_rows', '{no_such_column}');
SELECT retrain.capture_baseline('churn', 'v2', 'training_rows', '{seen_at}');
SELECT retrain.capture_baseline('churn', 'v2', 'training_rows', NULL, 1);
SELECT retrain.capture_baseline(NULL, 'v2', 'training_rows');

-- A column with no values at all has no distribution, but is recorded.
CREATE TABLE empty_feature AS SELECT NULL::float8 AS x, 'a'::text AS c FROM generate_series(1, 3);
SELECT retrain.capture_baseline('m', 'v1', 'empty_feature');
SELECT feature, edges, expected, categories, missing_share FROM retrain.baselines WHERE model = 'm' ORDER BY feature;
SELECT feature, psi, missing_share, drifted FROM retrain.drift('m', 'v1', 'empty_feature') ORDER BY feature;

-- Privileges: baselines are for the model's owner and the prediction
-- log's readers (not every role); capture_baseline is not for PUBLIC;
-- drift reads with the caller's rights.
CREATE ROLE retrain_regress_analyst;
SET SESSION AUTHORIZATION retrain_regress_analyst;
SELECT count(*) > 0 AS can_read_baselines FROM retrain.baselines;
RESET SESSION AUTHORIZATION;
GRANT SELECT ON retrain.predictions TO retrain_regress_analyst;
SET SESSION AUTHORIZATION retrain_regress_analyst;
SELECT count(*) > 0 AS can_read_baselines FROM retrain.baselines;
SELECT retrain.capture_baseline('churn', 'v3', 'training_rows');
SELECT * FROM retrain.drift('churn', 'v1', 'training_rows');
RESET SESSION AUTHORIZATION;
GRANT SELECT ON training_rows TO retrain_regress_analyst;
SET SESSION AUTHORIZATION retrain_regress_analyst;
SELECT count(*) AS features FROM retrain.drift('churn', 'v1', 'training_rows');
DELETE FROM retrain.baselines;
RESET SESSION AUTHORIZATION;
REVOKE ALL ON training_rows FROM retrain_regress_analyst;
-- An operator may capture for its team's models only, and reads the source
-- with its own rights: not in the team, no baseline; no SELECT on the
-- source, no baseline.
GRANT EXECUTE ON FUNCTION retrain.capture_baseline(text, text, regclass, text[], integer),
                          retrain._store_baseline(text, text, jsonb)
   TO retrain_regress_analyst;
GRANT SELECT ON training_rows TO retrain_regress_analyst;
SET SESSION AUTHORIZATION retrain_regress_analyst;
SELECT retrain.capture_baseline('churn', 'v3', 'training_rows', '{amount}');
RESET SESSION AUTHORIZATION;
GRANT retrain_regress_team TO retrain_regress_analyst;
REVOKE ALL ON training_rows FROM retrain_regress_analyst;
SET SESSION AUTHORIZATION retrain_regress_analyst;
SELECT retrain.capture_baseline('churn', 'v3', 'training_rows');
RESET SESSION AUTHORIZATION;
GRANT SELECT ON training_rows TO retrain_regress_analyst;
SET SESSION AUTHORIZATION retrain_regress_analyst;
SELECT retrain.capture_baseline('churn', 'v3', 'training_rows', '{amount}');
RESET SESSION AUTHORIZATION;
SELECT model, version, feature FROM retrain.baselines WHERE version = 'v3';
REVOKE ALL ON training_rows FROM retrain_regress_analyst;
REVOKE ALL ON FUNCTION retrain.capture_baseline(text, text, regclass, text[], integer),
                       retrain._store_baseline(text, text, jsonb)
    FROM retrain_regress_analyst;
REVOKE ALL ON retrain.predictions FROM retrain_regress_analyst;
DROP ROLE retrain_regress_analyst;

-- What _store_baseline is handed is checked, whoever calls it: a profile
-- that is no distribution, a version that does not exist.
SELECT retrain._store_baseline('churn', 'v1', '[{"feature": "x", "kind": "numeric", "row_count": 10,
    "missing_share": 0, "edges": [1], "expected": [-1, 2]}]');
SELECT retrain._store_baseline('churn', 'v1', '[{"feature": "x", "kind": "numeric", "row_count": 10,
    "missing_share": 0, "edges": [2, 1, 3], "expected": [0.25, 0.25, 0.25, 0.25]}]');
SELECT retrain._store_baseline('churn', 'v1', '[{"feature": "x", "kind": "categorical", "row_count": 10,
    "missing_share": 1.5}]');
SELECT retrain._store_baseline('churn', 'v1', '[{"feature": "x", "kind": "categorical", "row_count": 10,
    "missing_share": 0, "categories": {"a": 0.5, "b": 0.6}}]');
SELECT retrain._store_baseline('churn', 'v1', '[{"feature": "x", "kind": "numeric", "row_count": 1, "missing_share": 0},
    {"feature": "x", "kind": "numeric", "row_count": 1, "missing_share": 0}]');
SELECT retrain._store_baseline('churn', 'v1', '{"feature": "x"}');
SELECT retrain._store_baseline('churn', 'v9', '[]');
SELECT retrain._store_baseline('nope', 'v1', '[]');

DROP TABLE training_rows, current_rows, empty_feature;
DELETE FROM retrain.baselines;
DELETE FROM retrain.model_versions WHERE model IN ('churn', 'm');
DELETE FROM retrain.deployments WHERE model IN ('churn', 'm');
DELETE FROM retrain.models WHERE name IN ('churn', 'm');
DROP ROLE retrain_regress_team;

-- A value in a numeric feature is a number when it is written as a decimal
-- one; anything else counts as missing, never as an error (a value beyond
-- float8's range too).
SELECT v, retrain._as_float8(v)
  FROM unnest(ARRAY[' 1.5 ', '-.5', '1.', '.', '1e3', '1e999', '-1e999', '1e1000', 'NaN', '-Infinity', 'inf',
                    '0x10', 'abc', '1e', '1e+05', '', '+', '5 5', '1e99999999999', '1e-0000000000001',
                    '12345678901234567890123', '0.000000000000000000000000000123', NULL]) v;
