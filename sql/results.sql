--
-- Persisted check results (issue 15, item 3): each cycle keeps what it
-- decided per model and trigger; check_results_latest is what dashboards
-- read; rows past the policy's results.retention go; the readers are the
-- owner's members and the prediction log's readers.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET TIME ZONE 'UTC';

CREATE ROLE res_team;
CREATE ROLE res_other;
CREATE ROLE res_member IN ROLE res_team;
SELECT retrain.register_model('res', 'binary_classification');
SELECT retrain.register_version('res', 'v1', 's3://m/v1', repeat('a', 64), '{"f1": 0.9}',
                                data_range => '[2026-01-01 00:00+00, 2026-02-01 00:00+00)');
SELECT retrain.promote('res', 'v1', 'blue_green', override_reason => 'first release');
UPDATE retrain.models SET created_at = '2026-01-01 00:00+00' WHERE name = 'res';
SELECT count(*) FROM (
  SELECT retrain.log_outcome(retrain.log_prediction('res', 'v1', 'u' || i, CASE WHEN i % 2 = 0 THEN 0.9 ELSE 0.2 END,
                                                    predicted_at => '2026-03-02 00:00+00'::timestamptz + i * interval '1 minute'),
                             i % 3 = 0, '2026-03-02 12:00+00')
    FROM generate_series(1, 200) i) x;
SELECT retrain.set_policy('res', $${"triggers": {
    "performance": {"metric": "f1", "max_drop": 0.05, "min_labels": 100, "window": "7 days"},
    "schedule": [{"name": "weekly", "every": "week", "weekday": "monday"}]},
  "eligibility": {"checks": {"secret": "SELECT (SELECT 1 / 0) > 0"}}}$$) IS NOT NULL AS set;
SELECT retrain.set_owner('res', 'res_team');

-- A cycle as of Monday 9 March: both triggers fire, the failing owner
-- check holds them back; each row is kept with its window.
SELECT retrain.run_checks('2026-03-09 01:00+00');
SELECT model, trigger, checked_at, fired, eligible, round(observed::numeric, 4) AS observed, threshold,
       window_start, window_end, request_id
  FROM retrain.check_results WHERE model = 'res' ORDER BY trigger;
-- the owner check's failure keeps its SQLSTATE, not its message
SELECT DISTINCT detail->'eligibility'->'failed_checks' AS failed_checks FROM retrain.check_results WHERE model = 'res';
-- without the failing check, a request: the fired rows name it
SELECT retrain.set_policy('res', retrain.effective_policy('res') #- '{eligibility,checks}') IS NOT NULL AS set;
SELECT retrain.run_checks('2026-03-09 02:00+00');
SELECT trigger, fired, eligible, request_id = (SELECT max(id) FROM retrain.requests WHERE model = 'res') AS names_request
  FROM retrain.check_results_latest WHERE model = 'res' ORDER BY trigger;
SELECT count(*) AS rows_kept FROM retrain.check_results WHERE model = 'res';

-- Who reads them: the owner's members and the prediction log's readers,
-- through the table and the view alike; nobody else.
GRANT SELECT ON retrain.predictions TO res_other;
SET SESSION AUTHORIZATION res_member;
SELECT count(*) AS member_sees FROM retrain.check_results_latest WHERE model = 'res';
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION res_other;
SELECT count(*) AS reader_sees FROM retrain.check_results WHERE model = 'res';
RESET SESSION AUTHORIZATION;
REVOKE SELECT ON retrain.predictions FROM res_other;
SET SESSION AUTHORIZATION res_other;
SELECT count(*) AS other_sees_table, (SELECT count(*) FROM retrain.check_results_latest) AS other_sees_view
  FROM retrain.check_results;
INSERT INTO retrain.check_results (model, trigger, checked_at, window_end) VALUES ('res', 'x', now(), now());
RESET SESSION AUTHORIZATION;

-- Retention: rows older than the policy's results.retention (default 30
-- days, counted back from the cycle's time) go at the model's next cycle:
-- 30 days and a second before the 8 April cycle goes, exactly 30 days stays.
UPDATE retrain.check_results SET checked_at = '2026-03-09 03:00+00'::timestamptz - interval '1 second'
 WHERE model = 'res' AND checked_at = '2026-03-09 01:00+00';
UPDATE retrain.check_results SET checked_at = '2026-03-09 03:00+00'
 WHERE model = 'res' AND checked_at = '2026-03-09 02:00+00';
SELECT retrain.run_checks('2026-04-08 03:00+00');
SELECT checked_at, count(*) FROM retrain.check_results WHERE model = 'res' GROUP BY 1 ORDER BY 1;
SELECT retrain.set_policy('res', retrain.effective_policy('res') || '{"results": {"retention": "1 day"}}') -> 'results' AS results;
SELECT retrain.run_checks('2026-04-09 04:00+00');
SELECT checked_at, count(*) FROM retrain.check_results WHERE model = 'res' GROUP BY 1 ORDER BY 1;
SELECT retrain.set_policy('res', '{"results": {"retention": "forever"}}');
SELECT retrain.set_policy('res', '{"results": {"keep": "1 day"}}');
SELECT retrain.set_policy('res', '{"results": []}');

-- check() writes nothing: it is the on-demand computation.
SELECT count(*) AS before FROM retrain.check_results WHERE model = 'res';
SELECT count(*) AS rows FROM retrain.check('res', '2026-03-09 05:00+00');
SELECT count(*) AS after FROM retrain.check_results WHERE model = 'res';

-- Clean up.
SELECT count(retrain.finish_request(id, 'cancelled', message => 'results test over')) AS cancelled
  FROM retrain.requests WHERE model = 'res' AND status IN ('open', 'claimed');
SELECT retrain.set_owner('res', current_user);
DROP ROLE res_member;
DROP ROLE res_other;
DROP ROLE res_team;
RESET TIME ZONE;
