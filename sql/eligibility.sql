--
-- Eligibility: the owner's named SQL checks ("no open P1 incident", "latest
-- bias report passed", "no critical data-quality run today") and
-- min_new_labels hold back a fired trigger; each check runs with the owner's
-- privileges and never more.
--
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

CREATE ROLE elig_owner;
CREATE ROLE elig_operator;
GRANT EXECUTE ON FUNCTION retrain.register_model(text, text, text), retrain.set_policy(text, jsonb)
    TO elig_owner, elig_operator;

-- The owner's team keeps its incidents, bias reports and data-quality runs
-- in its schema, which the policy names for its checks (owner code runs
-- with pg_catalog, the policy's search_path, pg_temp).
CREATE SCHEMA elig_team;
GRANT USAGE ON SCHEMA elig_team TO elig_owner;
CREATE TABLE elig_team.incidents (severity text, open boolean);
CREATE TABLE elig_team.bias_reports (reported_at timestamptz, passed boolean);
CREATE TABLE elig_team.dq_runs (ran_at timestamptz, severity text);
GRANT SELECT ON elig_team.incidents, elig_team.bias_reports, elig_team.dq_runs TO elig_owner;
-- and something the owner may not read
CREATE TABLE elig_team.secret (x integer);
INSERT INTO elig_team.secret VALUES (1);
INSERT INTO elig_team.bias_reports VALUES (now() - interval '2 days', true);

SET SESSION AUTHORIZATION elig_owner;
SELECT retrain.register_model('elig', 'binary_classification');
RESET SESSION AUTHORIZATION;
SELECT retrain.register_version('elig', 'v1', 's3://m/v1', repeat('a', 64), '{"f1": 0.80}',
                                data_range => '[2026-01-01, 2026-05-01)');
SELECT retrain.promote('elig', 'v1', 'blue_green');
-- a schedule fires only for occurrences after the model was registered
UPDATE retrain.models SET created_at = '2026-01-01' WHERE name = 'elig';

SET SESSION AUTHORIZATION elig_owner;
SELECT retrain.set_policy('elig', $${
  "search_path": ["elig_team"],
  "triggers": {"schedule": {"interval": "1 month"}},
  "eligibility": {
    "min_new_labels": 25,
    "checks": {
      "no_open_p1": "SELECT NOT EXISTS (SELECT 1 FROM incidents WHERE severity = 'P1' AND open)",
      "bias_report_passed": "SELECT coalesce((SELECT passed FROM bias_reports ORDER BY reported_at DESC LIMIT 1), false)",
      "no_critical_dq_today": "SELECT NOT EXISTS (SELECT 1 FROM dq_runs WHERE ran_at >= current_date AND severity = 'critical')"
    }
  }
}$$)->'eligibility' AS eligibility;
RESET SESSION AUTHORIZATION;

-- The schedule has fired, the checks pass, but only 10 new labels arrived.
DO $$
DECLARE
    i integer;
    id bigint;
BEGIN
    FOR i IN 1..30 LOOP
        id := retrain.log_prediction('elig', 'v1', 'u' || i, 0.9);
        IF i <= 10 THEN
            PERFORM retrain.log_outcome(id, true);
        END IF;
    END LOOP;
END
$$;
SELECT trigger, fired, eligible, detail->'eligibility' AS eligibility FROM retrain.check('elig');

-- 30 labels: eligible.
INSERT INTO retrain.outcomes (prediction_id, label)
SELECT p.id, true FROM retrain.predictions p
 WHERE p.model = 'elig' AND NOT EXISTS (SELECT 1 FROM retrain.outcomes o WHERE o.prediction_id = p.id);
SELECT trigger, fired, eligible, detail->'eligibility'->'failed_checks' AS failed FROM retrain.check('elig');

-- Each check holds the request back on its own.
INSERT INTO elig_team.incidents VALUES ('P1', true);
SELECT eligible, detail->'eligibility'->'failed_checks' AS failed FROM retrain.check('elig');
UPDATE elig_team.incidents SET open = false;
INSERT INTO elig_team.bias_reports VALUES (now() - interval '1 hour', false);
SELECT eligible, detail->'eligibility'->'failed_checks' AS failed FROM retrain.check('elig');
INSERT INTO elig_team.bias_reports VALUES (now(), true);
INSERT INTO elig_team.dq_runs VALUES (now(), 'critical');
SELECT eligible, detail->'eligibility'->'failed_checks' AS failed FROM retrain.check('elig');
-- run_checks() makes no request while a check fails, and one when all pass.
SELECT retrain.run_checks() AS new_requests;
DELETE FROM elig_team.dq_runs;
SELECT retrain.run_checks() AS new_requests;
SELECT model, status, reasons->0->>'trigger' AS trigger, reasons->0->>'reason' LIKE 'schedule: %' AS for_the_schedule
  FROM retrain.requests WHERE model = 'elig';

-- Never more than the owner: a check cannot read what the owner cannot,
-- cannot climb back to the caller's role, and cannot write.
-- (a function of the owner's that would leave a temporary table, with a
-- deferred trigger, in the session that runs the check)
CREATE FUNCTION elig_team.make_temp_table() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE elig_left_behind (x integer);
    RETURN true;
END
$$;
ALTER FUNCTION elig_team.make_temp_table() OWNER TO elig_owner;
CREATE FUNCTION elig_team.listen_for_something() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'LISTEN retrain_regress_channel';
    RETURN true;
END
$$;
ALTER FUNCTION elig_team.listen_for_something() OWNER TO elig_owner;
SET SESSION AUTHORIZATION elig_owner;
SELECT retrain.set_policy('elig', $${
  "search_path": ["elig_team"],
  "triggers": {"schedule": {"interval": "1 month"}},
  "eligibility": {"checks": {
    "peek": "SELECT count(*) = 1 FROM secret",
    "climb": "SELECT set_config('role', 'none', true) IS NOT NULL",
    "climb_too": "SELECT set_config('session_authorization', 'postgres', true) IS NOT NULL",
    "writes": "DELETE FROM incidents RETURNING true",
    "settings": "SELECT set_config('extra_float_digits', '-15', false) IS NOT NULL",
    "temp_table": "SELECT make_temp_table()",
    "session_lock": "SELECT pg_advisory_lock(4242) IS NOT NULL",
    "listen": "SELECT listen_for_something()",
    "no_row": "SELECT true WHERE false",
    "not_boolean": "SELECT 42",
    "broken": "SELECT FROM"
  }}
}$$) IS NOT NULL AS set;
RESET SESSION AUTHORIZATION;
SELECT key, value FROM retrain.check('elig') c, jsonb_each_text(c.detail->'eligibility'->'failed_checks') ORDER BY key;
SELECT count(*) AS incidents_kept FROM elig_team.incidents;
-- Nothing stays in the session that ran the checks: its settings, no
-- temporary table, no advisory lock.
SHOW extra_float_digits;
SELECT to_regclass('pg_temp.elig_left_behind') AS temp_table_left;
SELECT count(*) AS advisory_locks_left FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT count(*) AS channels_left FROM pg_listening_channels();

-- An owner that is no longer a role fails its checks, not the cycle.
BEGIN;
UPDATE retrain.models SET owner = 'elig_gone' WHERE name = 'elig';
SELECT eligible, detail->'eligibility'->'failed_checks'->>'peek' AS peek FROM retrain.check('elig');
ROLLBACK;

-- Only who may act as the owner (a member of the owner role) changes the
-- policy: its checks, and the rest of it.
SET SESSION AUTHORIZATION elig_operator;
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": {"any": "SELECT true"}}}');
SELECT retrain.set_policy('elig', (SELECT m.policy || '{"triggers": {}}' FROM retrain.models m WHERE m.name = 'elig'))
       ->'triggers' AS triggers;
RESET SESSION AUTHORIZATION;

-- Invalid checks.
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": ["SELECT true"]}}');
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": {"Bad Name": "SELECT true"}}}');
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": {"empty": " "}}}');
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": {"n": 1}}}');
SELECT retrain.set_policy('elig', '{"eligibility": {"max_labels": 1}}');
-- NULL: a JSON null is no check document, and a NULL policy is refused.
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": null}}');
SELECT retrain.set_policy('elig', '{"eligibility": {"checks": {"n": null}}}');
SELECT retrain.set_policy('elig', '{"rollback": {"checks": null}}');
SELECT retrain.set_policy('elig', NULL);


-- Clean up.
DELETE FROM retrain.requests WHERE model = 'elig';
DELETE FROM retrain.outcomes o USING retrain.predictions p WHERE p.id = o.prediction_id AND p.model = 'elig';
DELETE FROM retrain.predictions WHERE model = 'elig';
DELETE FROM retrain.trigger_state WHERE model = 'elig';
DELETE FROM retrain.production_history WHERE model = 'elig';
UPDATE retrain.deployments SET production_version = NULL, previous_version = NULL WHERE model = 'elig';
DELETE FROM retrain.model_versions WHERE model = 'elig';
DELETE FROM retrain.deployments WHERE model = 'elig';
DELETE FROM retrain.models WHERE name = 'elig';
DROP SCHEMA elig_team CASCADE;
REVOKE EXECUTE ON FUNCTION retrain.register_model(text, text, text), retrain.set_policy(text, jsonb)
    FROM elig_owner, elig_operator;
DROP ROLE elig_owner;
DROP ROLE elig_operator;
