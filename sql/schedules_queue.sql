--
-- Triggers, schedules and the queue (issue 14, items 7 to 13): here,
-- priorities (item 9).
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- A clean queue: the suites before this one leave requests open.
SELECT count(retrain.finish_request(id, 'cancelled', message => 'clean slate for schedules_queue')) >= 0 AS cleaned
  FROM retrain.requests WHERE status IN ('open', 'claimed');

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

-- Item 10: a queue that backs off.  After a failed training the next
-- automatic request waits requests.retry_backoff, doubled for each failure
-- in a row; after requests.max_failures in a row the model stops making
-- automatic requests (retrain_failing, once) until a training succeeds or a
-- person resets the failures; a person's own request is always taken.
CREATE FUNCTION pg_temp.fail_next(m text, why text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r retrain.requests;
BEGIN
    -- claim until this model's request comes (other suites leave requests open)
    FOR i IN 1 .. 100 LOOP
        SELECT * INTO r FROM retrain.claim_request('pq-trainer');
        EXIT WHEN r.id IS NULL OR r.model = m;
    END LOOP;
    IF r.model IS DISTINCT FROM m THEN
        RETURN 'no request of ' || m;
    END IF;
    RETURN (retrain.finish_request(r.id, 'failed', message => why)).status;
END
$$;
SELECT retrain.register_model('pq_fail', 'regression');
SELECT retrain.register_version('pq_fail', 'v1', 's3://m', repeat('a', 64), '{}', data_range => '[2026-01-01, 2026-02-01)');
SELECT retrain.promote('pq_fail', 'v1', 'blue_green', override_reason => 't');
SELECT retrain.set_policy('pq_fail', '{"triggers": {"data_growth": {"count": 1}},
                                       "requests": {"retry_backoff": "1 hour", "max_failures": 3}}') -> 'requests' AS requests;
SELECT retrain.set_policy('pq_fail', '{"requests": {"max_failures": 0}}');
SELECT retrain.set_policy('pq_fail', '{"requests": {"retry_backoff": "soon"}}');
SELECT retrain.set_policy('pq_fail', '{"triggers": {"data_growth": {"count": 1}},
                                       "requests": {"retry_backoff": "1 hour", "max_failures": 3}}') IS NOT NULL AS set;
SELECT retrain.log_outcome(retrain.log_prediction('pq_fail', 'v1', 'u', 1, predicted_at => '2026-03-01'), 1.0, '2026-03-01');
SELECT retrain.run_checks(now()) AS new_requests;
SELECT pg_temp.fail_next('pq_fail', 'out of memory');
-- 30 minutes later: backing off (1 hour); after the hour: asked again
SELECT eligible, detail->'eligibility'->'training_failures'->'failures' AS failures,
       (detail->'eligibility'->'training_failures'->>'retry_after')::timestamptz - now() BETWEEN interval '59 minutes' AND interval '61 minutes' AS retry_in_an_hour
  FROM retrain.check('pq_fail', now() + interval '30 minutes');
SELECT retrain.run_checks(now() + interval '30 minutes') AS new_requests;
SELECT retrain.run_checks(now() + interval '61 minutes') AS new_requests;
SELECT pg_temp.fail_next('pq_fail', 'out of memory again');
-- the second failure doubles the wait: 2 hours
SELECT retrain.run_checks(now() + interval '90 minutes') AS new_requests;
SELECT retrain.run_checks(now() + interval '121 minutes') AS new_requests;
SELECT pg_temp.fail_next('pq_fail', 'disk full');
SELECT event, details->>'reason' AS reason FROM retrain.log WHERE model = 'pq_fail' AND event = 'retrain_failing';
-- failing: no automatic request, however long one waits
SELECT eligible, detail->'eligibility'->'training_failures'->'failing' AS failing
  FROM retrain.check('pq_fail', now() + interval '30 days');
SELECT retrain.run_checks(now() + interval '30 days') AS new_requests;
-- a person may still ask
SELECT retrain.request_retrain('pq_fail', 'fixed the memory limit, try again') > 0 AS asked;
SELECT pg_temp.fail_next('pq_fail', 'still failing');
SELECT count(*) AS failing_logged_once FROM retrain.log WHERE model = 'pq_fail' AND event = 'retrain_failing';
-- reset: automatic requests resume
SELECT retrain.reset_failures('pq_fail', NULL);
SELECT retrain.reset_failures('pq_fail', 'the trainer image is fixed');
SELECT retrain.run_checks(now() + interval '1 second') AS new_requests;
SELECT status, priority FROM retrain.requests WHERE model = 'pq_fail' ORDER BY id DESC LIMIT 1;
SELECT retrain.reset_failures(NULL, 'x');
SELECT retrain.reset_failures('pq_nosuch', 'x');
