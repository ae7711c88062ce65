--
-- Monitoring data (the prediction log, outcomes, version_stats) and the
-- retrain request queue.
--
\set SHOW_CONTEXT never

SELECT retrain.register_model('scorer', 'binary_classification');
SELECT retrain.register_model('pricer', 'regression');

-- Predictions and outcomes.
SELECT retrain.log_prediction('scorer', 'v1', 'u' || i, s, 10 + i % 7, i % 50 = 0,
                              jsonb_build_object('amount', i % 100), '2026-06-01 00:00+00'::timestamptz + i * interval '1 minute')
  FROM generate_series(1, 2000) i, LATERAL (SELECT (i * 7919 % 1000) / 1000.0 AS s) x
 ORDER BY i LIMIT 3;
SELECT count(*) FROM (
    SELECT retrain.log_prediction('scorer', 'v1', 'u' || i, (i * 7919 % 1000) / 1000.0, 10 + i % 7, i % 50 = 0,
                                  NULL, '2026-06-01 00:00+00'::timestamptz + i * interval '1 minute')
      FROM generate_series(4, 2000) i) x;
-- (the unit's number picks the labelled rows: ids depend on earlier tests)
SELECT count(*) FROM (
    SELECT retrain.log_outcome(p.id, (k * 7919 % 1000) / 1000.0 + (k % 3) * 0.2 > 0.6)
      FROM retrain.predictions p, LATERAL (SELECT substr(p.unit_key, 2)::integer AS k) u
     WHERE p.model = 'scorer' AND k % 2 = 0) x;
SELECT retrain.log_outcome(1, true), retrain.log_outcome(1, false);
SELECT retrain.log_outcome(999999, true);
SELECT retrain.log_outcome(NULL::bigint, true);
SELECT retrain.log_outcome(3, NULL::boolean);
SELECT retrain.log_prediction('pricer', 'r1', 'x', 10.0, predicted_at => '2026-06-01 12:00+00') AS price_id \gset
SELECT retrain.log_outcome(:price_id, 12.5::float8);
SELECT retrain.log_outcome(:price_id + 0, 'NaN'::float8);
-- A backfill says when the outcome became known; never before the prediction.
SELECT retrain.log_prediction('pricer', 'r1', 'y', 11.0, predicted_at => '2026-06-02 12:00+00') AS late_id \gset
SELECT retrain.log_outcome(:late_id, 9.5::float8, '2026-06-02 11:59+00');
SELECT retrain.log_outcome(:late_id, 9.5::float8, NULL);
SELECT retrain.log_outcome(:late_id, 9.5::float8, '2026-06-03 08:00+00');
SELECT observed_at FROM retrain.outcomes WHERE prediction_id = :late_id;

-- The daily report.
SELECT model, version, day, predictions, units, round(mean_confidence::numeric, 4) AS mean_confidence,
       round(mean_latency_ms::numeric, 3) AS mean_latency_ms, p95_latency_ms, p99_latency_ms,
       round(error_rate::numeric, 4) AS error_rate, round(labelled_share::numeric, 4) AS labelled_share,
       metric, round(metric_value::numeric, 6) AS metric_value
  FROM retrain.version_stats ORDER BY model, version, day;

-- The request queue: one open request per model; new reasons join it.
SELECT retrain.request_retrain('scorer', 'PSI 0.31 on amount') AS first;
SELECT retrain.request_retrain('scorer', 'F1 dropped by 0.06') AS joined;
SELECT id, model, status, jsonb_path_query_array(reasons, '$[*].reason') AS reasons, requested_by
  FROM retrain.requests ORDER BY id;
SELECT retrain.request_retrain('scorer', NULL);
SELECT retrain.request_retrain('nope', 'x');

-- A trainer claims it, registers what it trained, and finishes it.
SELECT id, model, status, claimed_by FROM retrain.claim_request('trainer-1');
SELECT count(*) AS nothing_left FROM retrain.claim_request('trainer-2');
SELECT retrain.register_version('scorer', 'v2', 's3://m/v2', repeat('d', 64), '{"auc": 0.8}');
SELECT id, status, version, message FROM retrain.finish_request(
    (SELECT max(id) FROM retrain.requests), 'done', 'v2', 'trained on the last 90 days');
SELECT retrain.finish_request((SELECT max(id) FROM retrain.requests), 'done');
SELECT retrain.finish_request(424242, 'done');
-- A new request after the last was finished; cancel it.
SELECT retrain.request_retrain('scorer', 'weekly') > (SELECT min(id) FROM retrain.requests) AS new_request;
SELECT retrain.finish_request((SELECT max(id) FROM retrain.requests), 'failed');
SELECT status FROM retrain.finish_request((SELECT max(id) FROM retrain.requests), 'cancelled', message => 'not needed');
SELECT retrain.finish_request((SELECT max(id) FROM retrain.requests), 'finished');

-- A claim that times out goes back to the queue at the next claim.
-- (requests.cooldown is a positive interval too; what it does: triggers.sql)
SELECT retrain.set_policy('pricer', '{"requests": {"cooldown": "-1 day"}}');
SELECT retrain.set_policy('pricer', '{"requests": {"cooldown": null}}');
SELECT retrain.set_policy('pricer', '{"requests": {"cooldown": "2 days"}}')->'requests' AS requests_policy;
SELECT retrain.set_policy('pricer', '{"requests": {"claim_timeout": "1 second"}}') -> 'requests' AS requests_policy;
SELECT retrain.set_policy('pricer', '{"requests": {"claim_timeout": "never"}}');
SELECT retrain.request_retrain('pricer', 'manual') IS NOT NULL AS requested;
SELECT claimed_by FROM retrain.claim_request('slow-trainer');
SELECT pg_sleep(1.1);
SELECT claimed_by FROM retrain.claim_request('fast-trainer');
SELECT event FROM retrain.log WHERE model = 'pricer' AND event LIKE 'retrain%' ORDER BY id;

-- The constraint holds even when the function is bypassed.
INSERT INTO retrain.requests (model, requested_by) VALUES ('pricer', 'x');

-- Privileges.
CREATE ROLE retrain_regress_app;
SET SESSION AUTHORIZATION retrain_regress_app;
SELECT retrain.log_prediction('scorer', 'v1', 'u', 0.5);
SELECT count(*) FROM retrain.predictions;
SELECT count(*) >= 0 AS can_read_requests FROM retrain.requests;
SELECT retrain.request_retrain('scorer', 'x');
SELECT * FROM retrain.claim_request('me');
RESET SESSION AUTHORIZATION;
GRANT EXECUTE ON FUNCTION retrain.log_prediction(text, text, text, float8, float8, boolean, jsonb, timestamptz),
                          retrain.log_outcome(bigint, boolean, timestamptz)
   TO retrain_regress_app;
SET SESSION AUTHORIZATION retrain_regress_app;
SELECT retrain.log_prediction('scorer', 'v1', 'u', 0.5) > 0 AS app_may_log;
RESET SESSION AUTHORIZATION;
REVOKE ALL ON FUNCTION retrain.log_prediction(text, text, text, float8, float8, boolean, jsonb, timestamptz),
                       retrain.log_outcome(bigint, boolean, timestamptz)
    FROM retrain_regress_app;
DROP ROLE retrain_regress_app;

-- The log on Citus (docs/scaling.md) needs Citus: without it, distribute()
-- says so, whatever the shard count (NULL: Citus's own), and the log is
-- neither distributed nor on a worker node.  Not for PUBLIC.  (SQLSTATEs
-- only: the message names the database, which is the test runner's.)
\set VERBOSITY sqlstate
SELECT retrain.distribute();
SELECT retrain.distribute(NULL);
SELECT retrain.distribute(0);
\set VERBOSITY default
SELECT retrain._log_distributed() AS distributed, retrain._on_citus_worker() AS on_worker;
SELECT has_function_privilege('public', 'retrain.distribute(integer)', 'EXECUTE') AS public_may_distribute;
-- and nothing was logged
SELECT count(*) AS distributed_logged FROM retrain.log WHERE event = 'log_distributed';

-- Clean up (the log keeps its rows).
DELETE FROM retrain.requests; DELETE FROM retrain.outcomes; DELETE FROM retrain.predictions;
DELETE FROM retrain.model_versions WHERE model IN ('scorer', 'pricer');
DELETE FROM retrain.deployments WHERE model IN ('scorer', 'pricer');
DELETE FROM retrain.models WHERE name IN ('scorer', 'pricer');
