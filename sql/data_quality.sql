--
-- Data quality before training (issue 14, item 12): per feature, the share
-- of missing values and the share outside the training range over the
-- window, each blocking eligibility or only warning; every limit on both
-- sides.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

SELECT retrain.register_model('dq', 'binary_classification');
SELECT retrain.register_version('dq', 'v1', 's3://m/v1', repeat('a', 64), '{}');
SELECT retrain.promote('dq', 'v1', 'blue_green', override_reason => 'first release');
UPDATE retrain.models SET created_at = '2026-01-01 00:00+00' WHERE name = 'dq';
-- trained on age 18..90 and plan in {basic, pro}
CREATE TABLE dq_training AS
SELECT 18 + (i % 73) AS age, CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'basic' END AS plan
  FROM generate_series(0, 999) i;
SELECT retrain.capture_baseline('dq', 'v1', 'dq_training', '{age, plan}');
SELECT feature, kind, min_value, max_value, categories FROM retrain.baselines WHERE model = 'dq' ORDER BY feature;

-- 100 predictions in the window: 10 without age, 5 with age 95 (outside
-- 18..90), 1 with age "unknown" (not a number: outside), 4 with plan
-- "enterprise" (never trained on)
SELECT count(retrain.log_prediction('dq', 'v1', 'u' || i, 0.5, features => jsonb_strip_nulls(jsonb_build_object(
           'age', CASE WHEN i <= 10 THEN NULL WHEN i <= 15 THEN to_jsonb(95) WHEN i = 16 THEN '"unknown"'::jsonb
                       ELSE to_jsonb(20 + i % 50) END,
           'plan', CASE WHEN i > 96 THEN 'enterprise' ELSE 'basic' END)),
       predicted_at => '2026-06-10 00:00+00'::timestamptz + i * interval '1 minute'))
  FROM generate_series(1, 100) i;

-- ">10% missing values": 10% exactly passes, 9.9% fails
SELECT retrain.set_policy('dq', '{"triggers": {"schedule": {"every": "week", "weekday": "monday"}},
                                  "eligibility": {"data_quality": {"max_missing_share": 0.1}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality' AS data_quality
  FROM retrain.check('dq', '2026-06-11 00:00+00');
SELECT retrain.set_policy('dq', '{"triggers": {"schedule": {"every": "week", "weekday": "monday"}},
                                  "eligibility": {"data_quality": {"max_missing_share": 0.099}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality'->'blocking' AS blocking
  FROM retrain.check('dq', '2026-06-11 00:00+00');

-- "values outside the training range": age 6 of 90 present values, plan 4
-- of 100; per-feature limits, at and just under the share
SELECT retrain.set_policy('dq', '{"triggers": {"schedule": {"every": "week", "weekday": "monday"}},
                                  "eligibility": {"data_quality": {"max_out_of_range_share": 0.04,
                                                                   "features": {"age": {"max_out_of_range_share": 0.0667}}}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality'->'features' AS features,
       detail->'eligibility'->'data_quality'->'blocking' AS blocking
  FROM retrain.check('dq', '2026-06-11 00:00+00');
SELECT retrain.set_policy('dq', '{"triggers": {"schedule": {"every": "week", "weekday": "monday"}},
                                  "eligibility": {"data_quality": {"max_out_of_range_share": 0.039,
                                                                   "features": {"age": {"max_out_of_range_share": 0.0666}}}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality'->'blocking' AS blocking
  FROM retrain.check('dq', '2026-06-11 00:00+00');

-- "warn": reported, eligibility stands; the cycle makes its request and
-- logs the warning with the decision's detail
SELECT retrain.set_policy('dq', '{"triggers": {"schedule": {"every": "week", "weekday": "monday"}},
                                  "eligibility": {"data_quality": {"max_missing_share": 0.05, "action": "warn",
                                                                   "features": {"plan": {"max_out_of_range_share": 0.01,
                                                                                          "action": "block"}}}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality'->'warnings' AS warnings,
       detail->'eligibility'->'data_quality'->'blocking' AS blocking
  FROM retrain.check('dq', '2026-06-11 00:00+00');
SELECT retrain.set_policy('dq', '{"triggers": {"schedule": {"every": "week", "weekday": "monday"}},
                                  "eligibility": {"data_quality": {"max_missing_share": 0.05, "action": "warn"}}}') IS NOT NULL AS set;
SELECT retrain.run_checks('2026-06-11 00:00+00') >= 0 AS ran;
SELECT details->'fired' AS fired FROM retrain.log WHERE model = 'dq' AND event = 'checked' ORDER BY id DESC LIMIT 1;

-- the window: a week by default, or the policy's; nothing in it, nothing
-- to judge
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"max_missing_share": 0, "window": "1 hour"}},
                                  "triggers": {"schedule": {"every": "week", "weekday": "monday"}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality'->'predictions' AS predictions
  FROM retrain.check('dq', '2026-06-11 00:00+00');
SELECT eligible, detail->'eligibility'->'data_quality'->'predictions' AS predictions
  FROM retrain.check('dq', '2026-06-10 01:00+00');

-- a baseline captured without a range (as 0.1.0 did) cannot judge range
UPDATE retrain.baselines SET min_value = NULL, max_value = NULL WHERE model = 'dq' AND feature = 'age';
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"max_out_of_range_share": 0}},
                                  "triggers": {"schedule": {"every": "week", "weekday": "monday"}}}') IS NOT NULL AS set;
SELECT detail->'eligibility'->'data_quality'->'features'->'age' AS age
  FROM retrain.check('dq', '2026-06-11 00:00+00');

-- no production version: nothing to judge, nothing blocked
SELECT retrain.register_model('dq_new', 'regression');
SELECT retrain.set_policy('dq_new', '{"eligibility": {"data_quality": {"max_missing_share": 0}},
                                      "triggers": {"schedule": {"every": "week", "weekday": "monday"}}}') IS NOT NULL AS set;
SELECT eligible, detail->'eligibility'->'data_quality' AS data_quality FROM retrain.check('dq_new', '2026-06-11 00:00+00');

-- Invalid limits are refused.
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"max_missing_share": 1.5}}}');
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"max_missing_share": "10%"}}}');
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"action": "page"}}}');
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"window": "soon"}}}');
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"features": {"age": {"max": 1}}}}}');
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"features": ["age"]}}}');
SELECT retrain.set_policy('dq', '{"eligibility": {"data_quality": {"max_missng_share": 0.1}}}');

-- Clean up.
SELECT count(retrain.finish_request(id, 'cancelled', message => 'data_quality test over')) AS cancelled
  FROM retrain.requests WHERE model IN ('dq', 'dq_new') AND status IN ('open', 'claimed');
DROP TABLE dq_training;
