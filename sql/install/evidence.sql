-- Evidence that arrives after a version is registered: smoke tests, shadow
-- comparisons, business KPIs, CI results.  Each record is kept with its
-- source, actor and time; a version's metrics are its registered figures
-- overlaid, metric by metric, by the latest record (registration counts as
-- the first record), and the gates judge those.

-- @once

CREATE TABLE @extschema@.metric_records (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model       text NOT NULL,
    version     text NOT NULL,
    metrics     jsonb NOT NULL CHECK (@extschema@._numbers_only(metrics) AND metrics <> '{}'),
    source      text NOT NULL CHECK (source <> ''),
    recorded_by name NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    FOREIGN KEY (model, version) REFERENCES @extschema@.model_versions (model, version)
);
CREATE INDEX metric_records_version ON @extschema@.metric_records (model, version, id);
COMMENT ON TABLE @extschema@.metric_records IS
    'Figures measured after registration (record_metrics, smoke_test, shadow_report): every record kept, with its source, who recorded it and when';
COMMENT ON COLUMN @extschema@.metric_records.metrics IS 'the figures measured, numbers only; a later record of a metric supersedes an earlier one (and the registered figure) for the gates';
COMMENT ON COLUMN @extschema@.metric_records.source IS 'where the figures come from: "smoke_test", "shadow_report", "ci: governance workflow", "kpi dashboard", ...';
COMMENT ON INDEX @extschema@.metric_records_version IS 'A version''s records in the order they were made';
COMMENT ON SEQUENCE @extschema@.metric_records_id_seq IS 'Ids of metric records';
REVOKE ALL ON @extschema@.metric_records FROM PUBLIC;
GRANT SELECT ON @extschema@.metric_records TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.metric_records', '');

-- @replace

-- A version's metrics as the gates see them: the registered figures, each
-- replaced by its latest record.  jsonb keeps the last of duplicate keys,
-- and the records are aggregated in the order they were made.
CREATE OR REPLACE FUNCTION @extschema@._metrics_of(model text, version text)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT mv.metrics || coalesce((SELECT jsonb_object_agg(e.key, e.value ORDER BY r.id)
                                     FROM @extschema@.metric_records r, jsonb_each(r.metrics) e
                                    WHERE r.model = mv.model AND r.version = mv.version), '{}')
      FROM @extschema@.model_versions mv
     WHERE mv.model = _metrics_of.model AND mv.version = _metrics_of.version
$$;
COMMENT ON FUNCTION @extschema@._metrics_of(text, text) IS
    'A version''s current metrics: the registered figures overlaid by the latest record of each (internal)';

-- A time as sources and messages write it: ISO 8601 in UTC, whatever the
-- session's TimeZone and DateStyle.
CREATE OR REPLACE FUNCTION @extschema@._utc(t timestamptz)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
COMMENT ON FUNCTION @extschema@._utc(timestamptz) IS 'A time as ISO 8601 text in UTC, to the second (internal)';

-- Adding a record, for the functions that measure (smoke_test,
-- shadow_report) and for record_metrics: the model is locked by the caller.
CREATE OR REPLACE FUNCTION @extschema@._record_metrics(fn text, model text, version text, metrics jsonb, source text)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF metrics IS NULL OR NOT @extschema@._numbers_only(metrics) OR metrics = '{}' THEN
        RAISE EXCEPTION 'retrain.%: metrics must be a non-empty JSON object of numbers, not %', fn, coalesce(metrics::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF source IS NULL OR btrim(source) = '' THEN
        RAISE EXCEPTION 'retrain.%: the source of the figures must be named', fn
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say where they come from: "smoke_test", "ci: governance workflow", "kpi dashboard", ...';
    END IF;
    INSERT INTO @extschema@.metric_records (model, version, metrics, source, recorded_by)
    VALUES (model, version, metrics, source, @extschema@._actor());
    PERFORM @extschema@._log(model, version, 'metrics_recorded',
                             jsonb_build_object('metrics', metrics, 'source', source));
    RETURN @extschema@._metrics_of(model, version);
END
$$;
COMMENT ON FUNCTION @extschema@._record_metrics(text, text, text, jsonb, text) IS
    'Keep and log a record of figures measured for a version (internal)';

CREATE OR REPLACE FUNCTION @extschema@.record_metrics(model text, version text, metrics jsonb, source text)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._lock_model('record_metrics', model);
    PERFORM @extschema@._version('record_metrics', model, version);
    RETURN @extschema@._record_metrics('record_metrics', model, version, metrics, source);
END
$$;
COMMENT ON FUNCTION @extschema@.record_metrics(text, text, jsonb, text) IS
    'Record figures measured after registration (KPIs, CI results, ...) with their source; the gates read each metric''s latest record, registered figures are kept; returns the version''s current metrics';

-- The runbook's smoke figures, from the version's logged predictions since
-- a time: how many, the share of scores in [0, 1] (classification), the
-- 99th percentile of latency, the error rate.  Rows with an invalid score
-- count: finding them is what a smoke test is for.
CREATE OR REPLACE FUNCTION @extschema@.smoke_test(model text, version text, since timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    at_ timestamptz := now();
    figures jsonb;
BEGIN
    -- read first, without the write lock: a long read must not hold up
    -- every other change; then record under the lock
    m := @extschema@._model_to_read('smoke_test', model);
    IF NOT EXISTS (SELECT 1 FROM @extschema@.model_versions mv
                    WHERE mv.model = smoke_test.model AND mv.version = smoke_test.version) THEN
        RAISE EXCEPTION 'retrain.smoke_test: model "%" has no version "%"', model, coalesce(version, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    IF since IS NULL OR since > at_ THEN
        RAISE EXCEPTION 'retrain.smoke_test: since must be a time not after now, not %', coalesce(since::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    figures := @extschema@._read(m, format(
        'SELECT jsonb_strip_nulls(jsonb_build_object('
        '''smoke_count'', count(*), '
        '''smoke_in_range_share'', CASE WHEN %L AND count(*) > 0 '
        '    THEN (count(*) FILTER (WHERE p.score >= 0 AND p.score <= 1))::float8 / count(*) END, '
        '''smoke_latency_p99_ms'', percentile_cont(0.99) WITHIN GROUP (ORDER BY p.latency_ms), '
        '''smoke_error_rate'', CASE WHEN count(*) > 0 THEN (count(*) FILTER (WHERE p.error))::float8 / count(*) END)) '
        'FROM %s WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at <= %L',
        m.task = 'binary_classification', @extschema@._source_from('smoke_test', m, at_), m.name, version,
        since, at_));
    PERFORM @extschema@._lock_model('smoke_test', model);
    PERFORM @extschema@._record_metrics('smoke_test', model, version, figures,
                                        format('smoke_test since %s', @extschema@._utc(since)));
    RETURN figures;
END
$$;
COMMENT ON FUNCTION @extschema@.smoke_test(text, text, timestamptz) IS
    'Compute the smoke figures of a version from its logged predictions since a time (smoke_count, smoke_in_range_share, smoke_latency_p99_ms, smoke_error_rate) and record them as evidence';

-- The model's row for a report that reads its predictions (no lock): the
-- source is read with the owner's rights, so only who may act on the model
-- may ask.
CREATE OR REPLACE FUNCTION @extschema@._model_to_read(fn text, model text)
    RETURNS @extschema@.models
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'retrain.%: model must not be NULL', fn USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.%: unknown model "%"', fn, model USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT @extschema@._may_act(m.owner) THEN
        RAISE EXCEPTION 'retrain.%: % may not read model "%", which belongs to %', fn, @extschema@._actor(), model, m.owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only members of a model''s owner role, or a superuser, may.';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@._model_to_read(text, text) IS
    'A model''s row for a report on its predictions, for who may act on it, or 42704 or 42501 (internal)';

-- The shadow beside production on the same units: a shadow prediction and a
-- production prediction pair when they have the same unit_key and the same
-- predicted_at (log both in one transaction, or pass predicted_at).  An
-- outcome of either prediction labels the pair.
CREATE OR REPLACE FUNCTION @extschema@._shadow_figures(m @extschema@.models, shadow text, production text,
                                                       since timestamptz, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    threshold numeric := coalesce((@extschema@.effective_policy(m.name)->'triggers'->'performance'->>'threshold')::numeric,
                                  0.5);
    classification boolean := m.task = 'binary_classification';
BEGIN
    RETURN @extschema@._read(m, format(
        'WITH r AS (SELECT p.version, p.unit_key, p.predicted_at, p.score, o.label, o.actual FROM %s '
        '           WHERE p.model = %L AND p.version IN (%L, %L) AND p.unit_key IS NOT NULL '
        '             AND p.predicted_at >= %L AND p.predicted_at <= %L AND %s), '
        'pairs AS (SELECT s.score AS s, p.score AS p, coalesce(p.label, s.label) AS label, '
        '                 coalesce(p.actual, s.actual) AS actual '
        '            FROM r s JOIN r p ON p.unit_key = s.unit_key AND p.predicted_at = s.predicted_at '
        '           WHERE s.version = %L AND p.version = %L), '
        -- average ranks for ties, as Spearman''s coefficient takes them
        'ranked AS (SELECT *, rank() OVER (ORDER BY s) + (count(*) OVER (PARTITION BY s) - 1) / 2.0 AS rs, '
        '                     rank() OVER (ORDER BY p) + (count(*) OVER (PARTITION BY p) - 1) / 2.0 AS rp FROM pairs) '
        'SELECT jsonb_strip_nulls(jsonb_build_object('
        '  ''shadow_pairs'', count(*), '
        '  ''shadow_labelled_pairs'', count(*) FILTER (WHERE label IS NOT NULL OR actual IS NOT NULL), '
        '  ''shadow_agreement'', CASE WHEN %L AND count(*) > 0 '
        '      THEN avg(((s >= %s) = (p >= %s))::int)::float8 END, '
        '  ''shadow_mean_abs_diff'', avg(abs(s - p)), '
        '  ''shadow_spearman'', corr(rs, rp), '
        '  ''shadow_%s'', %s, '
        '  ''production_%s'', %s)) '
        'FROM ranked',
        @extschema@._source_from('shadow_report', m, at), m.name, shadow, production, since, at,
        @extschema@._valid_row(m.task), shadow, production, classification, threshold, threshold,
        CASE WHEN classification THEN 'auc' ELSE 'rmse' END,
        CASE WHEN classification THEN '@extschema@.auc(s, label)' ELSE '@extschema@.rmse(s, actual)' END,
        CASE WHEN classification THEN 'auc' ELSE 'rmse' END,
        CASE WHEN classification THEN '@extschema@.auc(p, label)' ELSE '@extschema@.rmse(p, actual)' END));
END
$$;
COMMENT ON FUNCTION @extschema@._shadow_figures(@extschema@.models, text, text, timestamptz, timestamptz) IS
    'The shadow-against-production figures over paired predictions (internal)';

CREATE OR REPLACE FUNCTION @extschema@.shadow_report(model text, since timestamptz DEFAULT NULL, record boolean DEFAULT false)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    d @extschema@.deployments;
    from_ timestamptz;
    at_ timestamptz := now();
    figures jsonb;
BEGIN
    IF record IS NULL THEN
        RAISE EXCEPTION 'retrain.shadow_report: record must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- read without the write lock (a long read must not hold up every
    -- other change); recording takes it afterwards
    m := @extschema@._model_to_read('shadow_report', model);
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = shadow_report.model;
    IF d.shadow_version IS NULL OR d.production_version IS NULL THEN
        RAISE EXCEPTION 'retrain.shadow_report: model "%" has no %', model,
                        CASE WHEN d.shadow_version IS NULL THEN 'version in shadow' ELSE 'production version' END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    from_ := coalesce(since, d.shadow_since, '-infinity');
    figures := @extschema@._shadow_figures(m, d.shadow_version, d.production_version, from_, at_);
    IF record THEN
        PERFORM @extschema@._lock_model('shadow_report', model);
        IF NOT EXISTS (SELECT 1 FROM @extschema@.deployments dd
                        WHERE dd.model = shadow_report.model AND dd.shadow_version = d.shadow_version
                          AND dd.production_version = d.production_version) THEN
            RAISE EXCEPTION 'retrain.shadow_report: the shadow or production version of model "%" changed while it was read', model
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Run the report again.';
        END IF;
        PERFORM @extschema@._record_metrics('shadow_report', model, d.shadow_version, figures,
                                            format('shadow_report against %s since %s', d.production_version, @extschema@._utc(from_)));
    END IF;
    RETURN jsonb_build_object('shadow', d.shadow_version, 'production', d.production_version,
                              'since', from_, 'until', at_) || figures;
END
$$;
COMMENT ON FUNCTION @extschema@.shadow_report(text, timestamptz, boolean) IS
    'Compare the shadow version with production on the same units since the shadow started (or since): pairs, agreement at the policy''s threshold, mean absolute score difference, Spearman rank correlation, both versions'' AUC (RMSE) on labelled pairs; record => true keeps the figures as the shadow''s evidence';
