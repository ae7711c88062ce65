-- What each check cycle decided, kept: per model and trigger, the observed
-- value against its threshold, whether it fired, whether the model was
-- eligible, the detail and the window.  Dashboards and exporters read this
-- table (or check_results_latest) instead of computing check() per scrape;
-- being a table, it is readable on a hot standby.  check() stays the
-- on-demand computation as of any time.

-- @once

CREATE TABLE @extschema@.check_results (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text NOT NULL,
    trigger      text NOT NULL,
    checked_at   timestamptz NOT NULL,
    fired        boolean,
    eligible     boolean,
    observed     pg_catalog.float8,
    threshold    pg_catalog.float8,
    window_start timestamptz,
    window_end   timestamptz NOT NULL,
    request_id   bigint,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX check_results_model_trigger ON @extschema@.check_results (model, trigger, checked_at);
CREATE INDEX check_results_model_time ON @extschema@.check_results (model, checked_at);
COMMENT ON TABLE @extschema@.check_results IS
    'What each check cycle decided, per model and trigger (run_checks, the worker, the pg_cron job); kept for the policy''s results.retention';
COMMENT ON COLUMN @extschema@.check_results.checked_at IS 'the time the cycle checked as of (now, or run_checks(at)''s at)';
COMMENT ON COLUMN @extschema@.check_results.fired IS 'whether the trigger fired; NULL when it could not be evaluated (detail->>''unusable'' says why)';
COMMENT ON COLUMN @extschema@.check_results.eligible IS 'whether the model was eligible for a retrain request (detail->''eligibility'' says why not)';
COMMENT ON COLUMN @extschema@.check_results.window_start IS 'the start of the trigger''s window (NULL for triggers without one: schedule, data growth)';
COMMENT ON COLUMN @extschema@.check_results.request_id IS 'the retrain request this trigger made or joined, when it fired on an eligible model';
COMMENT ON COLUMN @extschema@.check_results.detail IS 'check()''s detail (PSI per feature, eligibility, ...), failed owner checks with their SQLSTATE only';
COMMENT ON SEQUENCE @extschema@.check_results_id_seq IS 'Ids of check results';
COMMENT ON INDEX @extschema@.check_results_model_trigger IS 'A model''s results by trigger and time: the latest row of each trigger';
COMMENT ON INDEX @extschema@.check_results_model_time IS 'A model''s results by time: the retention''s delete at each cycle, whatever triggers the policy names now';
-- Results are derived from a model's data (a PSI, a metric): for the
-- model's owner and whoever may read the prediction log, as baselines are.
REVOKE ALL ON @extschema@.check_results FROM PUBLIC;
GRANT SELECT ON @extschema@.check_results TO PUBLIC;
ALTER TABLE @extschema@.check_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY check_results_readers ON @extschema@.check_results FOR SELECT
    USING (pg_catalog.has_table_privilege('@extschema@.predictions', 'SELECT')
           OR EXISTS (SELECT 1 FROM @extschema@.models m JOIN pg_catalog.pg_roles r ON r.rolname = m.owner
                       WHERE m.name = check_results.model AND pg_catalog.pg_has_role(r.oid, 'MEMBER')));
COMMENT ON POLICY check_results_readers ON @extschema@.check_results IS
    'Check results are readable by members of the model''s owner role and by roles that may read retrain.predictions';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.check_results', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.check_results_id_seq', '');

-- Each version's health as the last cycle saw it: what a dashboard shows
-- per version (the canary beside production), read by the exporter's
-- views without computing anything.  Whole buckets of the rollups, from
-- the one holding checked_at - results.health_window to the last row the
-- cycle folded; a version with nothing there has no row.  Rewritten by
-- every cycle, so not dumped.
CREATE TABLE @extschema@.version_health (
    model          text NOT NULL,
    version        text NOT NULL,
    checked_at     timestamptz NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    predictions    bigint NOT NULL,
    labelled       bigint NOT NULL,
    invalid        bigint NOT NULL,
    error_rate     pg_catalog.float8,
    latency_p50_ms pg_catalog.float8,
    latency_p95_ms pg_catalog.float8,
    latency_p99_ms pg_catalog.float8,
    metric         text NOT NULL,
    metric_value   pg_catalog.float8,
    PRIMARY KEY (model, version)
);
COMMENT ON TABLE @extschema@.version_health IS
    'Per model and version, as the last check cycle saw it over the policy''s results.health_window (whole rollup buckets): predictions, labelled, invalid scores, error rate, latency percentiles (within 1%), and the rollout guard''s metric';
COMMENT ON COLUMN @extschema@.version_health.window_start IS 'the start of the first bucket counted (the bucket holding checked_at - results.health_window)';
COMMENT ON COLUMN @extschema@.version_health.window_end IS 'how far the rollups reached: the arrival time up to which the cycle had folded';
COMMENT ON COLUMN @extschema@.version_health.labelled IS 'predictions with a label (or actual value) and a score the metric can take';
COMMENT ON COLUMN @extschema@.version_health.invalid IS 'predictions with a score no metric can take (outside [0, 1] for a classifier)';
COMMENT ON COLUMN @extschema@.version_health.error_rate IS 'errors among the predictions that say whether they failed; NULL when none says';
COMMENT ON COLUMN @extschema@.version_health.metric IS 'the rollout guard''s metric (rollback.metric; AUC or RMSE by default), at the performance trigger''s threshold';
COMMENT ON COLUMN @extschema@.version_health.metric_value IS 'the metric over the labelled predictions; NULL with no label (or no rank for AUC)';
REVOKE ALL ON @extschema@.version_health FROM PUBLIC;
GRANT SELECT ON @extschema@.version_health TO PUBLIC;
ALTER TABLE @extschema@.version_health ENABLE ROW LEVEL SECURITY;
CREATE POLICY version_health_readers ON @extschema@.version_health FOR SELECT
    USING (pg_catalog.has_table_privilege('@extschema@.predictions', 'SELECT')
           OR EXISTS (SELECT 1 FROM @extschema@.models m JOIN pg_catalog.pg_roles r ON r.rolname = m.owner
                       WHERE m.name = version_health.model AND pg_catalog.pg_has_role(r.oid, 'MEMBER')));
COMMENT ON POLICY version_health_readers ON @extschema@.version_health IS
    'Version health is readable by members of the model''s owner role and by roles that may read retrain.predictions';

-- @replace

-- The latest result of each model and trigger, with the caller's rights
-- (security_invoker: the table's row security applies to whoever reads).
CREATE OR REPLACE VIEW @extschema@.check_results_latest WITH (security_invoker = true) AS
SELECT DISTINCT ON (r.model, r.trigger) r.*
  FROM @extschema@.check_results r
 ORDER BY r.model, r.trigger, r.checked_at DESC, r.id DESC;
COMMENT ON VIEW @extschema@.check_results_latest IS
    'The latest check result of each model and trigger: what dashboards and exporters read';

-- @once
-- Every role may ask; the table's row security decides what it sees.
GRANT SELECT ON @extschema@.check_results_latest TO PUBLIC;

-- @replace

-- One cycle's rows of a model, written as check() gave them, then the
-- model's rows older than the policy's results.retention removed (counted
-- back from the cycle's time: run_checks(at) about the past keeps what it
-- wrote).
CREATE OR REPLACE FUNCTION @extschema@._record_results(model text, at timestamptz, checked jsonb, request_id bigint)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol jsonb := @extschema@.effective_policy(model);
BEGIN
    INSERT INTO @extschema@.check_results (model, trigger, checked_at, fired, eligible, observed, threshold,
                                           window_start, window_end, request_id, detail)
    SELECT model, c->>'trigger', at, (c->>'fired')::boolean, (c->>'eligible')::boolean,
           (c->>'observed')::pg_catalog.float8, (c->>'threshold')::pg_catalog.float8,
           at - (pol->'triggers'->(c->>'trigger')->>'window')::interval, at,
           CASE WHEN (c->>'fired')::boolean AND (c->>'eligible')::boolean THEN request_id END,
           -- every role that reads results is not the owner: failed owner
           -- checks keep their SQLSTATE, as in the log
           CASE WHEN c->'detail'->'eligibility' ? 'failed_checks'
                THEN jsonb_set(c->'detail', '{eligibility,failed_checks}',
                               coalesce((SELECT jsonb_object_agg(f.key, @extschema@._redact(f.value))
                                           FROM jsonb_each_text(c->'detail'->'eligibility'->'failed_checks') f), '{}'))
                ELSE c->'detail' END
      FROM jsonb_array_elements(checked) c;
    DELETE FROM @extschema@.check_results r
     WHERE r.model = _record_results.model
       AND r.checked_at < at - (pol->'results'->>'retention')::interval;
    PERFORM @extschema@._record_health(model, at, pol);
END
$$;
COMMENT ON FUNCTION @extschema@._record_results(text, timestamptz, jsonb, bigint) IS
    'Keep one cycle''s check results of a model, and drop those past the policy''s results.retention (internal)';

