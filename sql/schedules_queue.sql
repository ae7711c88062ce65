--
-- Triggers, schedules and the queue (issue 14, items 7 to 13): here,
-- priorities (item 9).
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- Defaults: drift and performance high, the others normal; each trigger may
-- say otherwise; nothing but high, normal or low.
SELECT retrain.register_model('pq_low', 'regression');
SELECT retrain.register_model('pq_high', 'regression');
SELECT retrain.register_model('pq_manual', 'regression');
SELECT retrain.set_policy('pq_low', '{"triggers": {"drift": {}, "schedule": {"every": "week", "weekday": "sunday"}}}')
       -> 'triggers' AS defaults;
SELECT retrain.set_policy('pq_low', '{"triggers": {"data_growth": {"count": 1, "priority": "urgent"}}}');
SELECT retrain.set_policy('pq_low', '{"triggers": {"schedule": {"every": "week", "weekday": "sunday", "priority": "soon"}}}');
SELECT retrain.set_policy('pq_low', '{"triggers": {"data_growth": {"count": 1, "priority": "low"}}}') IS NOT NULL AS set;
SELECT retrain.set_policy('pq_high', '{"triggers": {"data_growth": {"count": 1, "priority": "high"}}}') IS NOT NULL AS set;
-- a weekly schedule with a priority is still a valid schedule
SELECT retrain.schedule_occurrence('{"every": "week", "weekday": "sunday", "priority": "low"}', '2026-06-10 00:00+00');

-- pq_low's request comes first, pq_high's last; a person's request sits between.
SELECT retrain.register_version(m, 'v1', 's3://m', repeat('a', 64), '{}', data_range => '[2026-01-01, 2026-02-01)')
  FROM unnest('{pq_low, pq_high}'::text[]) m;
SELECT retrain.promote(m, 'v1', 'blue_green', override_reason => 't') FROM unnest('{pq_low, pq_high}'::text[]) m;
SELECT retrain.log_outcome(retrain.log_prediction('pq_low', 'v1', 'u', 1, predicted_at => '2026-03-01'), 1.0, '2026-03-01');
SELECT retrain.run_checks('2026-03-02') AS new_requests;
SELECT retrain.request_retrain('pq_manual', 'a person asks') > 0 AS asked;
SELECT retrain.log_outcome(retrain.log_prediction('pq_high', 'v1', 'u', 1, predicted_at => '2026-03-01'), 1.0, '2026-03-01');
SELECT retrain.run_checks('2026-03-02') AS new_requests;
SELECT model, priority, reasons->0->>'priority' AS reason_priority FROM retrain.requests
 WHERE model LIKE 'pq%' ORDER BY id;
-- claim_request() hands out the most urgent first, then the oldest
SELECT model, priority FROM retrain.claim_request('pq-trainer');
SELECT model, priority FROM retrain.claim_request('pq-trainer');
SELECT model, priority FROM retrain.claim_request('pq-trainer');
-- a more urgent reason raises an open request; a less urgent one never lowers it
SELECT (retrain.finish_request(id, 'cancelled', message => 'test')).status
  FROM retrain.requests WHERE model LIKE 'pq%' AND status = 'claimed' ORDER BY id;
SELECT retrain.run_checks('2026-03-03') AS new_requests;
SELECT model, priority FROM retrain.requests WHERE model = 'pq_low' AND status = 'open';
SELECT retrain.request_retrain('pq_low', 'a person asks too') > 0 AS joined;
SELECT model, priority, jsonb_array_length(reasons) AS reasons FROM retrain.requests WHERE model = 'pq_low' AND status = 'open';
SELECT retrain.run_checks('2026-03-04') >= 0 AS ran;
SELECT model, priority FROM retrain.requests WHERE model = 'pq_low' AND status = 'open';
