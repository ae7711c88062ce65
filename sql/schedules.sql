--
-- Schedules with phases, several at once, and reminders (issue 14, items 7
-- and 8): "weekly for the first 3 months, then monthly", a quarterly
-- retraining beside them, and "a reminder 24 hours before the window".
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

SELECT retrain.register_model('sch', 'binary_classification');
SELECT retrain.register_version('sch', 'v1', 's3://m/v1', repeat('a', 64), '{}', data_range => '[2025-12-01 00:00+00, 2026-01-01 00:00+00)');
SELECT retrain.promote('sch', 'v1', 'blue_green', override_reason => 'first release');
-- registered on 1 January, first released on Monday 5 January (UTC)
UPDATE retrain.models SET created_at = '2026-01-01 00:00+00' WHERE name = 'sch';
UPDATE retrain.production_history SET started_at = '2026-01-05 00:00+00' WHERE model = 'sch';
SELECT retrain.set_policy('sch', $${"triggers": {"schedule": [
    {"name": "weekly", "every": "week", "weekday": "sunday", "at": "02:00", "until": "3 months",
     "remind_before": "24 hours"},
    {"name": "monthly", "every": "month", "day": 1, "at": "02:00", "from": "3 months", "remind_before": "24 hours"},
    {"name": "quarterly", "interval": "3 months", "priority": "high"}]}}$$) -> 'triggers' -> 'schedule' AS schedules;

-- What will fire, and why: weekly until 5 April 00:00 (3 months after the
-- first release), then monthly; every 3 months since the training.
SELECT occurrence AT TIME ZONE 'UTC' AS occurrence_utc, trigger, priority, remind_at AT TIME ZONE 'UTC' AS remind_utc, why
  FROM retrain.next_occurrences('sch', 6, '2026-03-27 00:00+00');
SELECT occurrence AT TIME ZONE 'UTC' AS occurrence_utc, trigger
  FROM retrain.next_occurrences('sch', 2, '2026-03-29 02:00+00');
SELECT count(*) FROM retrain.next_occurrences('sch', 0);
SELECT * FROM retrain.next_occurrences('sch', -1);
SELECT * FROM retrain.next_occurrences('sch', 1001);
SELECT * FROM retrain.next_occurrences('nosuch');
SELECT * FROM retrain.next_occurrences(NULL);

-- The cycle, as of chosen times.  Each schedule fires once per occurrence,
-- on its own; the "checked" row names what fired.
CREATE FUNCTION pg_temp.cycle(at timestamptz) RETURNS jsonb LANGUAGE sql AS $$
    SELECT retrain.run_checks(at);
    SELECT jsonb_build_object('fired', details->'fired')
      FROM retrain.log WHERE model = 'sch' AND event = 'checked' ORDER BY id DESC LIMIT 1;
$$;
-- Sunday 22 March 02:00 has passed: weekly fires, once
SELECT pg_temp.cycle('2026-03-22 03:00+00') AS at_mar22_0300;
SELECT pg_temp.cycle('2026-03-22 04:00+00') AS at_mar22_0400;
-- the reminder of Sunday 29 March 02:00 goes out 24 hours before: not at
-- 01:59:59 on the 28th, at 02:00, and once
CREATE FUNCTION pg_temp.reminders() RETURNS bigint LANGUAGE sql
    RETURN (SELECT count(*) FROM retrain.log WHERE model = 'sch' AND event = 'reminder');
SELECT pg_temp.cycle('2026-03-28 01:59:59+00') IS NOT NULL AS ran;
SELECT pg_temp.reminders();
SELECT pg_temp.cycle('2026-03-28 02:00+00') IS NOT NULL AS ran;
SELECT pg_temp.reminders();
SELECT pg_temp.cycle('2026-03-28 03:00+00') IS NOT NULL AS ran;
SELECT pg_temp.reminders();
SELECT details FROM retrain.log WHERE model = 'sch' AND event = 'reminder';
-- the occurrence itself: not a second early, then at the minute
SELECT pg_temp.cycle('2026-03-29 01:59:59+00') AS at_mar29_015959;
SELECT pg_temp.cycle('2026-03-29 02:00+00') AS at_mar29_0200;
-- 1 April 00:00: three months since the training (the quarterly schedule,
-- high priority); the monthly phase has not begun, its 1 April does not count
SELECT pg_temp.cycle('2026-04-01 00:00+00') AS at_apr01;
SELECT priority FROM retrain.requests WHERE model = 'sch' ORDER BY id DESC LIMIT 1;
-- 5 April 02:00 would be a Sunday of the weekly phase, which ended at 00:00
SELECT pg_temp.cycle('2026-04-05 02:00+00') AS at_apr05;
SELECT trigger, fired, detail->>'phase' AS phase FROM retrain.check('sch', '2026-04-05 02:00+00') ORDER BY trigger;
-- the monthly phase: a reminder on 30 April 02:00, the occurrence on 1 May
SELECT pg_temp.cycle('2026-04-30 01:59+00') IS NOT NULL AS ran;
SELECT pg_temp.reminders();
SELECT pg_temp.cycle('2026-04-30 02:00+00') IS NOT NULL AS ran;
SELECT details->>'trigger' AS reminded FROM retrain.log WHERE model = 'sch' AND event = 'reminder' ORDER BY id DESC LIMIT 1;
SELECT pg_temp.cycle('2026-05-01 02:00+00') AS at_may01;
SELECT trigger, last_occurrence AT TIME ZONE 'UTC' AS last_fired_utc, last_reminded AT TIME ZONE 'UTC' AS last_reminded_utc
  FROM retrain.trigger_state WHERE model = 'sch' ORDER BY trigger;

-- A phase counted from the first release waits for one.
SELECT retrain.register_model('sch_new', 'regression');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "until": "3 months"},
                                                                {"every": "month", "day": 1, "from": "2026-01-01"}]}}') IS NOT NULL AS set;
SELECT trigger, fired, detail->>'phase' AS phase FROM retrain.check('sch_new', '2026-03-02 00:00+00');
SELECT occurrence AT TIME ZONE 'UTC' AS occurrence_utc, trigger FROM retrain.next_occurrences('sch_new', 2, '2026-03-02 00:00+00');
-- a single schedule keeps its name and its state
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": {"every": "week", "weekday": "monday", "remind_before": "1 day"}}}') IS NOT NULL AS set;
SELECT trigger, fired, detail->>'next_occurrence' IS NOT NULL AS knows_next FROM retrain.check('sch_new', '2026-03-02 00:00+00');

-- Invalid schedules are refused, each with the reason.
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": []}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": "weekly"}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "from": "yesterday"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "from": "2026-13-01"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "from": "6 months", "until": "3 months"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "from": "2026-06-01", "until": "2026-06-01"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "remind_before": "soon"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "week", "weekday": "monday", "priority": "urgent"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"name": "a", "every": "week", "weekday": "monday"},
                                                                {"name": "a", "every": "month", "day": 1}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"name": "Weekly!", "every": "week", "weekday": "monday"}]}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": {"name": "solo", "every": "week", "weekday": "monday"}}}');
SELECT retrain.set_policy('sch_new', '{"triggers": {"schedule": [{"every": "fortnight"}]}}');

-- Clean up: the requests these cycles made.
SELECT count(retrain.finish_request(id, 'cancelled', message => 'schedules test over')) AS cancelled
  FROM retrain.requests WHERE model = 'sch' AND status IN ('open', 'claimed');
