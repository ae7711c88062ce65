-- Retraining triggers: check() evaluates them (one function per trigger
-- kind over the window's figures, and one for eligibility); run_checks()
-- acts on them for every model.

-- @once

-- The last occurrence of each model's schedule that made a request, so that
-- an occurrence fires once however often checks run; and why a trigger
-- cannot be evaluated, so that it is logged once, not every cycle.
CREATE TABLE @extschema@.trigger_state (
    model           text NOT NULL REFERENCES @extschema@.models (name),
    trigger         text NOT NULL,
    last_occurrence timestamptz,
    PRIMARY KEY (model, trigger),
    unusable        text,
    last_reminded   timestamptz
);
COMMENT ON TABLE @extschema@.trigger_state IS 'Per model and trigger, the last schedule occurrence that fired, and why the trigger cannot be evaluated (internal state of run_checks)';
COMMENT ON COLUMN @extschema@.trigger_state.last_reminded IS 'the last schedule occurrence a reminder was sent for (remind_before)';
COMMENT ON COLUMN @extschema@.trigger_state.unusable IS 'why the trigger cannot be evaluated, as last logged (trigger_unusable); NULL when it can';
GRANT SELECT ON @extschema@.trigger_state TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.trigger_state', '');

-- @replace

-- The latest occurrence of a schedule at or before at (UTC), or NULL.
CREATE OR REPLACE FUNCTION @extschema@.schedule_occurrence(schedule jsonb, at timestamptz, last_training timestamptz DEFAULT NULL)
    RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamp := at AT TIME ZONE 'UTC';
    lt timestamp;
    tod interval;
    dow integer := array_position(ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'],
                                  schedule->>'weekday') - 1;
    month_start timestamp;
    candidate timestamp;
    i integer;
    n float8;
BEGIN
    IF schedule IS NULL OR at IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT @extschema@._valid_schedule(schedule) THEN
        RAISE EXCEPTION 'retrain.schedule_occurrence: invalid schedule %', schedule
            USING ERRCODE = 'invalid_parameter_value', HINT = @extschema@._schedule_hint();
    END IF;
    tod := coalesce((schedule->>'at')::time, '00:00')::interval;
    IF schedule ? 'interval' THEN
        -- every interval since the last training: estimate how many fit
        -- (months count as 30 days in the estimate), then step to the
        -- exact last one, which calendar arithmetic in UTC decides (in the
        -- session's time zone a month may be an hour longer or shorter)
        lt := last_training AT TIME ZONE 'UTC';
        IF last_training IS NULL OR lt + (schedule->>'interval')::interval > t THEN
            RETURN NULL;
        END IF;
        n := greatest(1, floor(extract(epoch FROM t - lt)
                               / extract(epoch FROM (schedule->>'interval')::interval)));
        WHILE n > 1 AND lt + n * (schedule->>'interval')::interval > t LOOP
            n := n - 1;
        END LOOP;
        WHILE lt + (n + 1) * (schedule->>'interval')::interval <= t LOOP
            n := n + 1;
        END LOOP;
        RETURN (lt + n * (schedule->>'interval')::interval) AT TIME ZONE 'UTC';
    END IF;
    IF schedule->>'every' = 'week' THEN
        candidate := date_trunc('day', t) - ((extract(dow FROM t)::integer - dow + 7) % 7) * interval '1 day' + tod;
        IF candidate > t THEN
            candidate := candidate - interval '7 days';
        END IF;
        RETURN candidate AT TIME ZONE 'UTC';
    END IF;
    -- every month: this month's occurrence, else the one before (a fifth
    -- weekday is missing in some months: look further back)
    month_start := date_trunc('month', t);
    FOR i IN 0 .. 12 LOOP
        IF schedule ? 'day' THEN
            candidate := month_start + ((schedule->>'day')::numeric::integer - 1) * interval '1 day' + tod;
        ELSE
            candidate := month_start + ((dow - extract(dow FROM month_start)::integer + 7) % 7) * interval '1 day'
                         + ((schedule->>'nth')::numeric::integer - 1) * interval '7 days' + tod;
            IF date_trunc('month', candidate) <> month_start THEN
                candidate := NULL;
            END IF;
        END IF;
        IF candidate IS NOT NULL AND candidate <= t THEN
            RETURN candidate AT TIME ZONE 'UTC';
        END IF;
        month_start := month_start - interval '1 month';
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_occurrence(jsonb, timestamptz, timestamptz) IS
    'The latest occurrence at or before at of a schedule trigger (weekly, monthly on a day or the nth weekday, or an interval since the last training); times are UTC';

-- What a model's schedules will fire next, and why, as the policy stands:
-- up to n occurrences after a time, merged over all its schedules, each
-- within its phase.  An interval schedule counts from the production
-- version's training, as if no other training came first.
CREATE OR REPLACE FUNCTION @extschema@.next_occurrences(model text, n integer DEFAULT 5, after timestamptz DEFAULT now())
    RETURNS TABLE (occurrence timestamptz, trigger text, priority text, remind_at timestamptz, why text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol jsonb;
    last_training timestamptz;
    first_release timestamptz;
    e record;
    sched jsonb;
    lo timestamptz;
    hi timestamptz;
    t timestamptz;
    c timestamptz;
    k integer;
    found_ jsonb := '[]';
BEGIN
    IF model IS NULL OR n IS NULL OR after IS NULL THEN
        RAISE EXCEPTION 'retrain.next_occurrences: model, n and after must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF n < 0 OR n > 1000 THEN
        RAISE EXCEPTION 'retrain.next_occurrences: n must be between 0 and 1000, not %', n USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pol := @extschema@.effective_policy(model);
    IF pol IS NULL THEN
        RAISE EXCEPTION 'retrain.next_occurrences: unknown model "%"', model USING ERRCODE = 'undefined_object';
    END IF;
    SELECT coalesce(upper(mv.data_range), mv.registered_at) INTO last_training
      FROM @extschema@.deployments d
      JOIN @extschema@.model_versions mv ON mv.model = d.model AND mv.version = d.production_version
     WHERE d.model = next_occurrences.model;
    SELECT min(h.started_at) INTO first_release FROM @extschema@.production_history h
     WHERE h.model = next_occurrences.model;
    FOR e IN SELECT * FROM @extschema@._schedule_entries(pol->'triggers'->'schedule') LOOP
        sched := @extschema@._bare_schedule(e.entry);
        lo := @extschema@._phase_bound(e.entry->>'from', first_release);
        hi := @extschema@._phase_bound(e.entry->>'until', first_release);
        -- a phase counted from a first release that has not happened
        CONTINUE WHEN (e.entry ? 'from' AND lo IS NULL) OR (e.entry ? 'until' AND hi IS NULL);
        t := after;
        FOR k IN 1 .. n LOOP
            c := @extschema@._next_occurrence(sched, t, last_training, lo, hi);
            EXIT WHEN c IS NULL;
            found_ := found_ || jsonb_build_object(
                'occurrence', c, 'trigger', e.label, 'priority', e.entry->>'priority',
                'remind_at', c - (e.entry->>'remind_before')::interval,
                'why', concat_ws(', ', format('%s %s', e.label, sched),
                                 'from ' || @extschema@._utc(lo) || CASE WHEN e.entry->>'from' !~ '^[0-9]{4}-'
                                                                        THEN format(' (%s after the first release)', e.entry->>'from') END,
                                 'until ' || @extschema@._utc(hi) || CASE WHEN e.entry->>'until' !~ '^[0-9]{4}-'
                                                                          THEN format(' (%s after the first release)', e.entry->>'until') END));
            t := c;
        END LOOP;
    END LOOP;
    RETURN QUERY SELECT (f->>'occurrence')::timestamptz, f->>'trigger', f->>'priority', (f->>'remind_at')::timestamptz,
                        f->>'why'
                   FROM jsonb_array_elements(found_) f
                  ORDER BY (f->>'occurrence')::timestamptz, f->>'trigger'
                  LIMIT n;
END
$$;
COMMENT ON FUNCTION @extschema@.next_occurrences(text, integer, timestamptz) IS
    'The next occurrences of a model''s schedules after a time (up to n, over all its schedules, each within its phase): when, which schedule, its priority, when its reminder goes out, and why';

-- What check() judges
-- ===================
--
-- check() gathers the figures of a model once (_figures: one scan of the
-- production version's window, the labels since the last training, the
-- schedule's state) and hands them, with each trigger's settings from the
-- effective policy, to one function per trigger kind.  Each of those,
-- _trigger_<kind>(settings jsonb, figures jsonb), returns whether it fired,
-- what it observed against which threshold, and its detail; it reads
-- nothing else, so each can be read, and tested, on its own.

-- Labels that arrived since the last training and by at: data growth and
-- eligibility count them.  Over retrain's own tables, by the outcome's
-- model, which is its prediction's (_outcome_model): an outcome counts
-- even once its prediction has been dropped.  The count is one range of
-- outcomes_model_observed, scanned in C (_labels_observed, which says
-- why); when that cannot answer (row-level security on the table, the
-- index missing), the query, through EXECUTE and planned for this model's
-- values each time: the generic plan PL/pgSQL settles on after five calls
-- hash-joins every model's outcomes.
CREATE OR REPLACE FUNCTION @extschema@._new_labels(m @extschema@.models, since timestamptz, at timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    delay interval;
BEGIN
    IF since IS NULL THEN
        RETURN 0;
    END IF;
    IF m.source IS NOT NULL THEN
        -- a source keeps a label beside its prediction: a label observed
        -- after since is of a prediction made after since minus the longest
        -- a label takes, when the policy says how long that is, and a source
        -- partitioned by prediction time is then read from those days only
        delay := (@extschema@.effective_policy(m.name)->'eligibility'->>'max_label_delay')::interval;
        RETURN @extschema@._read(m, format('SELECT to_jsonb(count(*)) FROM %s '
                                           'WHERE o.prediction_id IS NOT NULL AND o.observed_at > %L AND o.observed_at <= %L%s',
                                           @extschema@._source_from('check', m, at), since, at,
                                           CASE WHEN delay IS NOT NULL
                                                THEN format(' AND p.predicted_at >= %L', since - delay) ELSE '' END));
    END IF;
    n := @extschema@._labels_observed(m.name, since, at);
    IF n IS NULL THEN
        EXECUTE 'SELECT count(*) FROM @extschema@.outcomes o '
                'WHERE o.model = $1 AND o.observed_at > $2 AND o.observed_at <= $3'
           INTO n USING m.name, since, at;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._new_labels(@extschema@.models, timestamptz, timestamptz) IS
    'How many outcomes of a model were observed after since and by at (internal)';

-- The count of _new_labels over retrain.outcomes as an index-only scan of
-- one range of outcomes_model_observed, whatever the planner would choose
-- (C: src/labels.c); NULL when it cannot answer as the query would.
CREATE OR REPLACE FUNCTION @extschema@._labels_observed(model text, since timestamptz, at timestamptz)
    RETURNS bigint
    LANGUAGE C STABLE STRICT
    AS 'MODULE_PATHNAME', 'retrain_labels_observed';
COMMENT ON FUNCTION @extschema@._labels_observed(text, timestamptz, timestamptz) IS
    'How many of a model''s outcomes in retrain.outcomes were observed after since and by at, from one range of outcomes_model_observed; NULL when row-level security or a missing index leaves it to the query (internal)';

-- The aggregate a performance trigger's metric is computed with, over the
-- FROM clause of _source_from (p: predictions, o: outcomes).
CREATE OR REPLACE FUNCTION @extschema@._metric_expression(metric text, threshold pg_catalog.float8)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN metric IN ('f1', 'precision', 'recall', 'accuracy')
                    THEN format('@extschema@.%I(p.score, o.label, %s)', metric, threshold)
                WHEN metric IN ('auc', 'brier', 'log_loss') THEN format('@extschema@.%I(p.score, o.label)', metric)
                ELSE format('@extschema@.%I(p.score, o.actual)', metric) END;
COMMENT ON FUNCTION @extschema@._metric_expression(text, pg_catalog.float8) IS
    'The aggregate call that computes a metric over predictions p and outcomes o (internal)';

-- Which rows of a source an aggregate can take: a classifier's score is a
-- probability in [0, 1], a regressor's score and actual value are finite.
-- retrain.predictions and outcomes refuse anything else when it is logged;
-- a team's own relation (set_source) may hold it, and those rows are left
-- out of a figure and counted ("invalid_rows"), never raised: one NaN must
-- not switch the model's monitoring off.  NULL (no score, no outcome yet)
-- is neither.
CREATE OR REPLACE FUNCTION @extschema@._valid_row(task text)
    RETURNS text
    -- plpgsql: planned once a session (a SQL function with SET is planned
    -- at every call)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE task WHEN 'binary_classification' THEN '(p.score >= 0 AND p.score <= 1)'
                     ELSE '(p.score > ''-Infinity'' AND p.score < ''Infinity'' '
                          'AND (o.actual IS NULL OR (o.actual > ''-Infinity'' AND o.actual < ''Infinity'')))' END;
END
$$;
COMMENT ON FUNCTION @extschema@._valid_row(text) IS
    'The condition on p (predictions) and o (outcomes) under which a row''s score and outcome are ones the metrics can take (internal)';

-- The part of _valid_row() that is the model's doing: its score.  The
-- rollout guard rolls back on scores no metric can take; an outcome no
-- metric can take is the labeller's fault, not the version's.
CREATE OR REPLACE FUNCTION @extschema@._valid_score(task text)
    RETURNS text
    -- plpgsql: planned once a session (a SQL function with SET is planned
    -- at every call)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE task WHEN 'binary_classification' THEN '(p.score >= 0 AND p.score <= 1)'
                     ELSE '(p.score > ''-Infinity'' AND p.score < ''Infinity'')' END;
END
$$;
COMMENT ON FUNCTION @extschema@._valid_score(text) IS
    'The condition on p (predictions) under which a score is one the metrics can take (internal)';

-- One scan of the production version's predictions up to at serves drift,
-- performance and confidence, each over its own window: the figures
-- predictions, confidence, labelled, metric, the rows each left out as
-- invalid, and per baselined feature its baseline with the window's counts
-- ("drift").  Outcomes count as known when observed by at.
CREATE OR REPLACE FUNCTION @extschema@._window(m @extschema@.models, trg jsonb, version text, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wide text[] := @extschema@._source_features(m);
    valid text := @extschema@._valid_row(m.task);
    parts text[] := ARRAY['jsonb_build_object(''predictions'', count(*))'];
    counts text[] := '{}';
    feats @extschema@.baselines[] := '{}';
    b @extschema@.baselines;
    fexpr text;
    since_ timestamptz;
    r jsonb;
BEGIN
    IF version IS NULL OR NOT trg ?| ARRAY['drift', 'performance', 'confidence'] THEN
        RETURN '{}';
    END IF;
    IF trg ? 'confidence' THEN
        since_ := at - (trg->'confidence'->>'window')::interval;
        -- a compensated mean, as the rollups' merged states give it
        parts := parts || format('jsonb_build_object(''confidence'', @extschema@.mae(greatest(p.score, 1 - p.score), 0) '
                                 'FILTER (WHERE p.predicted_at >= %1$L AND %2$s), '
                                 '''confidence_invalid'', count(*) FILTER (WHERE p.predicted_at >= %1$L AND NOT %2$s))',
                                 since_, valid);
    END IF;
    IF trg ? 'performance' THEN
        since_ := at - (trg->'performance'->>'window')::interval;
        parts := parts || format('jsonb_build_object(''labelled'', count(o.prediction_id) FILTER (WHERE p.predicted_at >= %1$L AND %3$s), '
                                 '''metric'', %2$s FILTER (WHERE p.predicted_at >= %1$L AND %3$s), '
                                 '''performance_invalid'', count(*) FILTER (WHERE p.predicted_at >= %1$L AND NOT %3$s))',
                                 since_,
                                 @extschema@._metric_expression(trg->'performance'->>'metric',
                                                                (trg->'performance'->>'threshold')::float8),
                                 valid);
    END IF;
    IF trg ? 'drift' THEN
        since_ := at - (trg->'drift'->>'window')::interval;
        FOR b IN SELECT * FROM @extschema@.baselines bl
                  WHERE bl.model = m.name AND bl.version = _window.version ORDER BY bl.feature LOOP
            feats := feats || b;
            -- a feature the wide source no longer has counts as missing,
            -- and so does a value that is not a number in a numeric feature
            fexpr := @extschema@._feature_expr(wide, b.feature);
            counts := counts || CASE WHEN b.kind = 'numeric' THEN
                format('to_jsonb(@extschema@.histogram_missing(@extschema@._as_float8(%s), %L::float8[]) FILTER (WHERE p.predicted_at >= %L))',
                       fexpr, coalesce(b.edges, '{}'), since_)
              ELSE
                format('to_jsonb(@extschema@.category_counts(%s) FILTER (WHERE p.predicted_at >= %L))', fexpr, since_)
              END;
        END LOOP;
        IF cardinality(counts) > 0 THEN
            -- an array, not arguments: a source may have more features than a function has arguments
            parts := parts || format('jsonb_build_object(''counts'', to_jsonb(ARRAY[%s]))', array_to_string(counts, ', '));
        END IF;
    END IF;
    r := @extschema@._read(m, format(
        'SELECT %s FROM %s WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at <= %L',
        array_to_string(parts, ' || '), @extschema@._source_from('check', m, at), m.name, version,
        at - (SELECT max((t.value->>'window')::interval) FROM jsonb_each(trg) t
               WHERE t.key IN ('drift', 'performance', 'confidence')),
        at));
    -- each baselined feature beside its counts
    RETURN (r - 'counts') || jsonb_build_object('drift', coalesce(
        (SELECT jsonb_agg(jsonb_build_object('feature', f.feature, 'kind', f.kind, 'expected', f.expected,
                                             'categories', f.categories, 'counts', r->'counts'->(f.i::integer - 1))
                          ORDER BY f.i)
           FROM unnest(feats) WITH ORDINALITY AS f(model, version, feature, kind, edges, expected, categories,
                                                     row_count, missing_share, captured_at, min_value, max_value,
                                                     i)), '[]'));
END
$$;
COMMENT ON FUNCTION @extschema@._window(@extschema@.models, jsonb, text, timestamptz) IS
    'The figures of one scan of a version''s predictions up to a time for the drift, performance and confidence triggers (internal)';

-- Which features the predictions of a window were served with: how many
-- predictions carry features at all ("rows"), and for each key how many
-- carry it ("keys").  A wide source's rows carry every column.  A key
-- counts when present, whatever its value: one request that omits a null
-- value does not drop a feature; the trigger judges the shares.
CREATE OR REPLACE FUNCTION @extschema@._feature_usage(m @extschema@.models, version text, since timestamptz,
                                                      at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wide text[] := @extschema@._source_features(m);
    rows_ bigint;
    filter text := format('p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at <= %L',
                          m.name, version, since, at);
BEGIN
    IF wide IS NOT NULL THEN
        rows_ := @extschema@._read(m, format('SELECT to_jsonb(count(*)) FROM %s WHERE %s',
                                             @extschema@._source_from('check', m, at), filter));
        RETURN jsonb_build_object('rows', rows_, 'keys',
                                  (SELECT coalesce(jsonb_object_agg(f, rows_), '{}') FROM unnest(wide) f));
    END IF;
    RETURN @extschema@._read(m, format(
        'SELECT jsonb_build_object(''rows'', (SELECT count(*) FROM %1$s WHERE %2$s AND jsonb_typeof(p.features) = ''object''), '
        '''keys'', (SELECT coalesce(jsonb_object_agg(k, n), ''{}'') FROM (SELECT k, count(*) AS n FROM %1$s '
        'CROSS JOIN LATERAL jsonb_object_keys(p.features) k '
        'WHERE %2$s AND jsonb_typeof(p.features) = ''object'' GROUP BY k) x))',
        @extschema@._source_from('check', m, at), filter));
END
$$;
COMMENT ON FUNCTION @extschema@._feature_usage(@extschema@.models, text, timestamptz, timestamptz) IS
    'How many of a window''s predictions carry features, and how many carry each key (internal)';

-- Everything the triggers judge, in one document.
CREATE OR REPLACE FUNCTION @extschema@._figures(m @extschema@.models, trg jsonb, prod @extschema@.model_versions,
                                                at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last_training timestamptz := coalesce(upper(prod.data_range), prod.registered_at);
    figures jsonb;
BEGIN
    -- from the rollups the cycle keeps when they can answer, else the rows
    figures := coalesce(@extschema@._rollup_window(m, trg, prod.version, at),
                        @extschema@._window(m, trg, prod.version, at)) || jsonb_build_object(
        'at', at,
        'version', prod.version,
        'created_at', m.created_at,
        'last_training', last_training,
        'new_labels', @extschema@._new_labels(m, last_training, at),
        'registered', prod.metrics,
        'trained_on', to_jsonb(prod.features),
        'training_rows', (SELECT max(bl.row_count) FROM @extschema@.baselines bl
                           WHERE bl.model = m.name AND bl.version = prod.version),
        -- per schedule: the last occurrence that fired and the last one reminded of
        'schedules', (SELECT coalesce(jsonb_object_agg(ts.trigger, jsonb_build_object(
                                          'last_fired', ts.last_occurrence, 'last_reminded', ts.last_reminded)), '{}')
                        FROM @extschema@.trigger_state ts
                       WHERE ts.model = m.name AND ts.trigger LIKE 'schedule%'),
        'first_release', (SELECT min(h.started_at) FROM @extschema@.production_history h WHERE h.model = m.name));
    IF trg ? 'feature_change' AND prod.version IS NOT NULL THEN
        figures := figures || jsonb_build_object('feature_usage', @extschema@._feature_usage(
            m, prod.version, at - (trg->'feature_change'->>'window')::interval, at));
    END IF;
    RETURN figures;
END
$$;
COMMENT ON FUNCTION @extschema@._figures(@extschema@.models, jsonb, @extschema@.model_versions, timestamptz) IS
    'The figures a model''s triggers are judged on at a time (internal)';

-- The triggers, one function each: (settings, figures) -> fired, observed,
-- threshold, detail.  Settings carry their defaults (effective_policy).
-- A trigger that cannot be evaluated (a metric the version never
-- registered, no baseline, no feature list; check() itself answers for the
-- triggers that measure a production version when there is none) says so:
-- fired NULL and detail->>'unusable' saying why, never a quiet false.  Figures
-- meet thresholds in decimal (_decimal, see docs/policy.md).

-- Why a trigger that needs the production version cannot be evaluated.
CREATE OR REPLACE FUNCTION @extschema@._unusable(why text, OUT fired boolean, OUT observed pg_catalog.float8,
                                                 OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    detail := jsonb_build_object('unusable', why);
END
$$;
COMMENT ON FUNCTION @extschema@._unusable(text) IS
    'A trigger''s result when it cannot be evaluated: fired NULL and the reason (internal)';

CREATE OR REPLACE FUNCTION @extschema@._trigger_confidence(settings jsonb, figures jsonb,
                                                           OUT fired boolean, OUT observed pg_catalog.float8,
                                                           OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    observed := (figures->>'confidence')::float8;
    threshold := (settings->>'min')::float8;
    fired := coalesce(observed::numeric < (settings->>'min')::numeric, false);
    detail := jsonb_build_object('window', settings->>'window', 'predictions', figures->'predictions',
                                 'invalid_rows', figures->'confidence_invalid');
END
$$;
COMMENT ON FUNCTION @extschema@._trigger_confidence(jsonb, jsonb) IS
    'The confidence trigger: mean max(p, 1 - p) over its window below min (internal)';

CREATE OR REPLACE FUNCTION @extschema@._trigger_performance(settings jsonb, figures jsonb,
                                                            OUT fired boolean, OUT observed pg_catalog.float8,
                                                            OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    metric text := settings->>'metric';
    registered numeric := @extschema@._decimal(figures->'registered'->metric);
    value numeric := @extschema@._decimal(figures->'metric');
    drop_ numeric;
BEGIN
    IF registered IS NULL THEN
        SELECT * INTO fired, observed, threshold, detail FROM @extschema@._unusable(
            format('the production version "%s" registered no metric "%s"', figures->>'version', metric));
        detail := detail || jsonb_build_object('metric', metric,
                                               'registered', coalesce(figures->'registered', '{}'));
        RETURN;
    END IF;
    -- a drop is a fall of a score, or a rise of a loss; in decimal, so that
    -- 0.87 -> 0.82 drops by 0.05, not by 0.050000000000000044
    drop_ := CASE WHEN metric IN ('auc', 'f1', 'precision', 'recall', 'accuracy') THEN registered - value
                  ELSE value - registered END;
    observed := drop_::float8;
    threshold := (settings->>'max_drop')::float8;
    fired := coalesce((figures->>'labelled')::numeric, 0) >= (settings->>'min_labels')::numeric
             AND (coalesce(drop_ > (settings->>'max_drop')::numeric, false)
                  OR coalesce(drop_ / nullif(abs(registered), 0) > (settings->>'max_relative_drop')::numeric, false));
    detail := jsonb_build_object('metric', metric, 'value', figures->'metric', 'registered', registered,
                                 'relative_drop', (drop_ / nullif(abs(registered), 0))::float8,
                                 'max_relative_drop', settings->'max_relative_drop',
                                 'labelled', figures->'labelled', 'min_labels', settings->'min_labels',
                                 'invalid_rows', figures->'performance_invalid');
END
$$;
COMMENT ON FUNCTION @extschema@._trigger_performance(jsonb, jsonb) IS
    'The performance trigger: the metric over its window against the production version''s registered one (internal)';

CREATE OR REPLACE FUNCTION @extschema@._trigger_drift(settings jsonb, figures jsonb,
                                                      OUT fired boolean, OUT observed pg_catalog.float8,
                                                      OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb;
    psi float8;
    psis float8[] := '{}';
    by_feature jsonb := '{}';
    limit_ numeric := (settings->>'psi')::numeric;
    observed_ numeric;
BEGIN
    IF jsonb_array_length(coalesce(figures->'drift', '[]')) = 0 THEN
        SELECT * INTO fired, observed, threshold, detail FROM @extschema@._unusable(
            format('no baseline for the production version "%s": capture one with retrain.capture_baseline()',
                   figures->>'version'));
        RETURN;
    END IF;
    FOR f IN SELECT * FROM jsonb_array_elements(figures->'drift') LOOP
        psi := NULL;
        IF f->>'kind' = 'numeric' AND jsonb_typeof(f->'counts') = 'array' AND jsonb_typeof(f->'expected') = 'array' THEN
            -- the counts end with the missing values' count, which PSI
            -- leaves out; none counted, no PSI
            psi := @extschema@._counts_psi(f->'expected', f->'counts');
        ELSIF f->>'kind' = 'categorical' AND jsonb_typeof(f->'counts') = 'object'
              AND jsonb_typeof(f->'categories') = 'object' THEN
            psi := @extschema@.psi(f->'categories', f->'counts');
        END IF;
        IF psi IS NOT NULL THEN
            psis := psis || psi;
            by_feature := by_feature || jsonb_build_object(f->>'feature', psi);
        END IF;
    END LOOP;
    threshold := limit_::float8;
    observed_ := CASE settings->>'aggregate'
                     WHEN 'max' THEN (SELECT max(x::numeric) FROM unnest(psis) x)
                     WHEN 'mean' THEN (SELECT avg(x)::numeric FROM unnest(psis) x)
                     ELSE (SELECT avg((x::numeric > limit_)::integer) FROM unnest(psis) x) END;
    observed := observed_::float8;
    fired := CASE settings->>'aggregate'
                 WHEN 'share' THEN coalesce(observed_ >= (settings->>'share')::numeric, false)
                 ELSE coalesce(observed_ > limit_, false) END;
    detail := jsonb_build_object('aggregate', settings->>'aggregate', 'features', cardinality(psis),
                                 'psi', to_jsonb(psis), 'by_feature', by_feature, 'window', settings->>'window');
END
$$;
COMMENT ON FUNCTION @extschema@._trigger_drift(jsonb, jsonb) IS
    'The drift trigger: PSI of each baselined feature over its window, aggregated by max, mean or share (internal)';

CREATE OR REPLACE FUNCTION @extschema@._trigger_data_growth(settings jsonb, figures jsonb,
                                                            OUT fired boolean, OUT observed pg_catalog.float8,
                                                            OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    limit_ numeric := least((settings->>'count')::numeric,
                            (settings->>'share')::numeric * (figures->>'training_rows')::numeric);
BEGIN
    IF figures->>'last_training' IS NULL THEN
        SELECT * INTO fired, observed, threshold, detail FROM @extschema@._unusable(
            'no production version: no training to count labels since');
        RETURN;
    END IF;
    IF limit_ IS NULL THEN
        SELECT * INTO fired, observed, threshold, detail FROM @extschema@._unusable(
            format('a share of the training rows, but the production version "%s" has no baseline to count them',
                   figures->>'version'));
        RETURN;
    END IF;
    observed := (figures->>'new_labels')::float8;
    threshold := limit_::float8;
    fired := coalesce((figures->>'new_labels')::numeric >= limit_, false);
    detail := jsonb_build_object('new_labels', figures->'new_labels', 'since', figures->'last_training',
                                 'training_rows', figures->'training_rows');
END
$$;
COMMENT ON FUNCTION @extschema@._trigger_data_growth(jsonb, jsonb) IS
    'The data growth trigger: labels since the last training against a count or a share of the training rows (internal)';

CREATE OR REPLACE FUNCTION @extschema@._trigger_schedule(settings jsonb, figures jsonb,
                                                         OUT fired boolean, OUT observed pg_catalog.float8,
                                                         OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    label text := coalesce(settings->>'label', 'schedule');
    sched jsonb := @extschema@._bare_schedule(settings) - 'label';
    at_ timestamptz := (figures->>'at')::timestamptz;
    last_training timestamptz := (figures->>'last_training')::timestamptz;
    first_release timestamptz := (figures->>'first_release')::timestamptz;
    state jsonb := figures->'schedules'->label;
    lo timestamptz := @extschema@._phase_bound(settings->>'from', first_release);
    hi timestamptz := @extschema@._phase_bound(settings->>'until', first_release);
    occurrence timestamptz;
    next_ timestamptz;
BEGIN
    IF sched ? 'interval' AND last_training IS NULL THEN
        SELECT * INTO fired, observed, threshold, detail FROM @extschema@._unusable(
            'no production version: no training to count the interval from');
        RETURN;
    END IF;
    fired := false;
    detail := jsonb_strip_nulls(jsonb_build_object('from', lo, 'until', hi, 'priority', settings->'priority',
                                                   'last_fired', state->'last_fired'));
    IF (settings ? 'from' AND lo IS NULL) OR (settings ? 'until' AND hi IS NULL) THEN
        -- a phase counted from the first release: there has been none
        detail := detail || '{"phase": "waiting for the first production release"}';
        RETURN;
    END IF;
    IF hi IS NOT NULL AND at_ >= hi THEN
        -- the phase is over: its occurrences are the next phase's business
        detail := detail || '{"phase": "ended"}';
        RETURN;
    END IF;
    occurrence := @extschema@.schedule_occurrence(sched, at_, last_training);
    -- once per occurrence, none from before the model was registered or
    -- before the phase began
    fired := occurrence IS NOT NULL AND occurrence >= (figures->>'created_at')::timestamptz
             AND occurrence >= coalesce(lo, '-infinity')
             AND occurrence > coalesce((state->>'last_fired')::timestamptz, '-infinity');
    detail := detail || jsonb_build_object('phase', CASE WHEN at_ < lo THEN 'not started' ELSE 'active' END,
                                           'occurrence', occurrence);
    IF settings ? 'remind_before' THEN
        next_ := @extschema@._next_occurrence(sched, at_, last_training, lo, hi);
        -- one reminder per occurrence, once it is remind_before away
        detail := detail || jsonb_build_object(
            'next_occurrence', next_,
            'remind', next_ IS NOT NULL AND next_ - (settings->>'remind_before')::interval <= at_
                      AND next_ > coalesce((state->>'last_reminded')::timestamptz, '-infinity'));
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._trigger_schedule(jsonb, jsonb) IS
    'One schedule of the schedule trigger: an occurrence within its phase that has not fired yet, and whether its next occurrence is due a reminder (internal)';

-- The first occurrence of a schedule after a time and within a phase, or
-- NULL.  schedule_occurrence() gives the latest at or before a time: take
-- it a span ahead (longer than any gap between occurrences) and step back
-- while an earlier one is still after the time.
CREATE OR REPLACE FUNCTION @extschema@._next_occurrence(schedule jsonb, after timestamptz, last_training timestamptz,
                                                        lo timestamptz DEFAULT NULL, hi timestamptz DEFAULT NULL)
    RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start_ timestamptz := greatest(after, lo - interval '1 microsecond');
    span interval := CASE WHEN schedule ? 'interval' THEN (schedule->>'interval')::interval + interval '1 day'
                          WHEN schedule->>'every' = 'week' THEN interval '8 days'
                          ELSE interval '400 days' END;
    c timestamptz;
    p timestamptz;
BEGIN
    IF schedule ? 'interval' AND last_training IS NULL THEN
        RETURN NULL;
    END IF;
    c := @extschema@.schedule_occurrence(schedule, start_ + span, last_training);
    IF c IS NULL OR c <= start_ THEN
        RETURN NULL;
    END IF;
    LOOP
        p := @extschema@.schedule_occurrence(schedule, c - interval '1 microsecond', last_training);
        EXIT WHEN p IS NULL OR p <= start_;
        c := p;
    END LOOP;
    RETURN CASE WHEN c < coalesce(hi, 'infinity') THEN c END;
END
$$;
COMMENT ON FUNCTION @extschema@._next_occurrence(jsonb, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'The first occurrence of a schedule after a time, within a phase (internal)';

-- A feature is dropped when no prediction of the window carries it, added
-- when at least min_share of them carry a key the version was not trained
-- on.
CREATE OR REPLACE FUNCTION @extschema@._trigger_feature_change(settings jsonb, figures jsonb,
                                                               OUT fired boolean, OUT observed pg_catalog.float8,
                                                               OUT threshold pg_catalog.float8, OUT detail jsonb)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trained_on text[];
    usage jsonb := figures->'feature_usage';
    rows_ numeric := (figures->'feature_usage'->>'rows')::numeric;
    added jsonb;
    dropped jsonb;
BEGIN
    IF jsonb_typeof(figures->'trained_on') IS DISTINCT FROM 'array' THEN
        SELECT * INTO fired, observed, threshold, detail FROM @extschema@._unusable(
            format('the production version "%s" was registered without its features (register_version(..., features => ...))',
                   figures->>'version'));
        RETURN;
    END IF;
    trained_on := ARRAY(SELECT jsonb_array_elements_text(figures->'trained_on'));
    threshold := (settings->>'min_share')::float8;
    IF coalesce(rows_, 0) = 0 THEN
        -- nothing served in the window: nothing to compare
        fired := false;
        observed := 0;
        detail := jsonb_build_object('trained_on', to_jsonb(trained_on), 'predictions', 0,
                                     'window', settings->>'window');
        RETURN;
    END IF;
    SELECT jsonb_agg(k ORDER BY k) INTO added
      FROM jsonb_each_text(usage->'keys') AS u(k, n)
     WHERE NOT k = ANY (trained_on) AND n::numeric / rows_ >= (settings->>'min_share')::numeric;
    SELECT jsonb_agg(f ORDER BY f) INTO dropped
      FROM unnest(trained_on) f
     WHERE NOT usage->'keys' ? f;
    fired := added IS NOT NULL OR dropped IS NOT NULL;
    observed := coalesce(jsonb_array_length(added), 0) + coalesce(jsonb_array_length(dropped), 0);
    detail := jsonb_build_object('trained_on', to_jsonb(trained_on), 'predictions', rows_,
                                 'served', (SELECT jsonb_object_agg(k, (n::numeric / rows_)::float8)
                                              FROM jsonb_each_text(usage->'keys') AS u(k, n)),
                                 'added', added, 'dropped', dropped, 'window', settings->>'window');
END
$$;
COMMENT ON FUNCTION @extschema@._trigger_feature_change(jsonb, jsonb) IS
    'The feature change trigger: a feature the production version was trained on that no prediction of the window carries, or a new key at least min_share of them carry (internal)';

-- Whether a fired trigger may make a request: enough new labels, every one
-- of the owner's named checks true, and no retrain in flight.
-- A feature value as a number, or NULL when it is none ("abc", "", NULL):
-- a value that is not a number, in a feature trained on numbers, is out of
-- the training range, not an error that stops the check.
CREATE OR REPLACE FUNCTION @extschema@._as_float8(v text)
    RETURNS pg_catalog.float8
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_as_float8';
COMMENT ON FUNCTION @extschema@._as_float8(text) IS 'A text feature value as float8, NULL when it is not a decimal number or is beyond float8''s range (internal)';

-- Data quality before training (eligibility.data_quality): over the
-- window, per feature, the share of predictions missing it and the share of
-- its values outside what the production version was trained on (a numeric
-- baseline's [min_value, max_value], a categorical baseline's categories),
-- each judged against its limit (exceeding it fails; exactly at it passes)
-- and, by the limit's action, blocking eligibility or only warning.
CREATE OR REPLACE FUNCTION @extschema@._data_quality(m @extschema@.models, dq jsonb, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prod_version text := (SELECT d.production_version FROM @extschema@.deployments d WHERE d.model = m.name);
    wide text[] := @extschema@._source_features(m);
    since_ timestamptz := at - (dq->>'window')::interval;
    f record;
    fexpr text;
    parts text[] := '{}';
    counts jsonb;
    feats jsonb := '{}';
    limits jsonb;
    missing numeric;
    outside numeric;
    total numeric;
    blocking text[] := '{}';
    warnings text[] := '{}';
    why text;
BEGIN
    IF prod_version IS NULL THEN
        RETURN jsonb_build_object('unusable', 'no production version', 'blocked', false);
    END IF;
    -- the baselined features, and those the policy names
    FOR f IN SELECT coalesce(b.feature, n.name) AS feature, b.kind, b.min_value, b.max_value, b.categories,
                    b.feature IS NOT NULL AS baselined
               FROM (SELECT * FROM @extschema@.baselines bl WHERE bl.model = m.name AND bl.version = prod_version) b
               FULL JOIN (SELECT jsonb_object_keys(coalesce(dq->'features', '{}')) AS name) n ON n.name = b.feature
              ORDER BY 1 LOOP
        fexpr := @extschema@._feature_expr(wide, f.feature);
        parts := parts || format('%L, jsonb_build_array(count(*) FILTER (WHERE %s), %s)', f.feature,
            CASE WHEN f.kind = 'numeric' THEN format('%1$s IS NULL OR @extschema@._as_float8(%1$s) = ''NaN''', fexpr)
                 ELSE format('%s IS NULL', fexpr) END,
            CASE WHEN f.kind = 'numeric' AND f.min_value IS NOT NULL THEN
                     format('count(*) FILTER (WHERE %1$s IS NOT NULL AND (@extschema@._as_float8(%1$s) IS NULL '
                            'OR @extschema@._as_float8(%1$s) < %2$L OR @extschema@._as_float8(%1$s) > %3$L))',
                            fexpr, f.min_value, f.max_value)
                 WHEN f.kind = 'categorical' AND f.categories IS NOT NULL THEN
                     format('count(*) FILTER (WHERE %s IS NOT NULL AND NOT %L::jsonb ? %1$s)', fexpr, f.categories)
                 ELSE 'NULL' END);
    END LOOP;
    counts := @extschema@._read(m, format(
        'SELECT jsonb_build_object(''predictions'', count(*)%s) FROM %s '
        'WHERE p.model = %L AND p.version = %L AND p.predicted_at > %L AND p.predicted_at <= %L',
        CASE WHEN cardinality(parts) > 0 THEN ', ' || array_to_string(parts, ', ') ELSE '' END,
        @extschema@._source_from('check', m, at), m.name, prod_version, since_, at));
    total := (counts->>'predictions')::numeric;
    FOR f IN SELECT e.key AS feature, e.value AS c FROM jsonb_each(counts - 'predictions') e ORDER BY e.key LOOP
        limits := (dq - 'features' - 'window') || coalesce(dq->'features'->f.feature, '{}');
        missing := CASE WHEN total > 0 THEN (f.c->>0)::numeric / total END;
        outside := CASE WHEN total - (f.c->>0)::numeric > 0 AND f.c->1 <> 'null'
                        THEN (f.c->>1)::numeric / (total - (f.c->>0)::numeric) END;
        feats := feats || jsonb_build_object(f.feature, jsonb_strip_nulls(jsonb_build_object(
            'missing_share', missing::float8, 'out_of_range_share', outside::float8,
            'out_of_range', CASE WHEN f.c->1 = 'null' THEN 'no training range in the baseline' END,
            'action', limits->'action')));
        why := NULL;
        IF round(missing, 15) > (limits->>'max_missing_share')::numeric THEN
            why := format('%s: %s%% missing > %s%%', f.feature, round(missing * 100, 2)::float8,
                          ((limits->>'max_missing_share')::numeric * 100)::float8);
        END IF;
        IF round(outside, 15) > (limits->>'max_out_of_range_share')::numeric THEN
            why := concat_ws('; ', why, format('%s: %s%% outside the training range > %s%%', f.feature,
                                               round(outside * 100, 2)::float8,
                                               ((limits->>'max_out_of_range_share')::numeric * 100)::float8));
        END IF;
        IF why IS NOT NULL AND limits->>'action' = 'warn' THEN
            warnings := warnings || why;
        ELSIF why IS NOT NULL THEN
            blocking := blocking || why;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('window', dq->'window', 'predictions', total, 'features', feats,
                              'blocked', cardinality(blocking) > 0, 'blocking', to_jsonb(blocking),
                              'warnings', to_jsonb(warnings));
END
$$;
COMMENT ON FUNCTION @extschema@._data_quality(@extschema@.models, jsonb, timestamptz) IS
    'Per feature over the window: missing share and share outside the training range, against the policy''s limits; which block and which warn (internal)';

CREATE OR REPLACE FUNCTION @extschema@._eligibility(m @extschema@.models, pol jsonb, new_labels bigint, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    failed jsonb;
    in_flight jsonb;
    failures jsonb;
    quality jsonb;
BEGIN
    -- the owner's named checks that did not return true, and why
    SELECT coalesce(jsonb_object_agg(c.name, coalesce(c.error, format('returned %s', coalesce(c.result::text, 'NULL or no row'))))
                        FILTER (WHERE c.result IS NOT TRUE), '{}')
      INTO failed
      FROM @extschema@._run_owner_checks(m, pol->'eligibility'->'checks', at) c;
    -- The answer to the last request may be on its way: a version trained
    -- for it and not yet released or discarded.  Until it is (or the
    -- cooldown passes), the production version's drift or metric drop that
    -- made the request would only make the same request again.  Asked about
    -- the present, an answer committed after this transaction began (its
    -- finished_at later than now()) is in flight too: the cycle reads it.
    SELECT jsonb_build_object('request', q.id, 'version', q.version, 'stage', mv.stage,
                              'until', q.finished_at + (pol->'requests'->>'cooldown')::interval)
      INTO in_flight
      FROM @extschema@.requests q
      JOIN @extschema@.model_versions mv ON mv.model = q.model AND mv.version = q.version
     WHERE q.model = m.name AND q.status = 'done' AND (q.finished_at <= at OR at >= pg_catalog.now())
       AND q.finished_at > at - (pol->'requests'->>'cooldown')::interval
       AND mv.stage IN ('registered', 'shadow', 'canary')
     ORDER BY q.finished_at DESC LIMIT 1;
    -- after failed trainings, back off; after too many in a row, stop
    failures := @extschema@._training_failures(m.name, pol, at);
    -- data that would train a bad model: fix the data first
    IF pol->'eligibility' ? 'data_quality' THEN
        quality := @extschema@._data_quality(m, '{"window": "7 days", "action": "block"}'::jsonb
                                                || (pol->'eligibility'->'data_quality'), at);
    END IF;
    RETURN jsonb_build_object('eligible', new_labels >= (pol->'eligibility'->>'min_new_labels')::numeric
                                          AND failed = '{}' AND in_flight IS NULL
                                          AND NOT (failures->>'failing')::boolean
                                          AND coalesce((failures->>'retry_after')::timestamptz <= at, true)
                                          AND NOT coalesce((quality->>'blocked')::boolean, false),
                              'new_labels', new_labels, 'min_new_labels', pol->'eligibility'->'min_new_labels',
                              'failed_checks', failed, 'in_flight', in_flight)
           || CASE WHEN (failures->>'failures')::integer > 0 THEN jsonb_build_object('training_failures', failures)
                   ELSE '{}' END
           || CASE WHEN quality IS NOT NULL THEN jsonb_build_object('data_quality', quality) ELSE '{}' END;
END
$$;
COMMENT ON FUNCTION @extschema@._eligibility(@extschema@.models, jsonb, bigint, timestamptz) IS
    'Whether a model may make a retrain request now, and why not (internal)';

CREATE OR REPLACE FUNCTION @extschema@.check(model text, at timestamptz DEFAULT now())
    RETURNS TABLE (trigger text, fired boolean, observed pg_catalog.float8, threshold pg_catalog.float8,
                   eligible boolean, detail jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- one query per model, of moderate size: compiling it costs more than it saves
    SET jit = off
    -- the figures pass through jsonb, whose numbers are float8's text: from
    -- 1 up that text is float8's shortest exact form, whatever the caller set
    SET extra_float_digits = 3
AS $$
DECLARE
    -- "check" is a reserved word: the model argument is named $1 below
    m @extschema@.models;
    pol jsonb;
    prod @extschema@.model_versions;
    figures jsonb;
    elig jsonb;
    kind text;
    e record;
    r record;
BEGIN
    IF $1 IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'retrain.check: model and at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.check: unknown model "%"', model USING ERRCODE = 'undefined_object';
    END IF;
    -- the owner's checks run, and their errors show: not for another team
    IF NOT @extschema@._may_act(m.owner) THEN
        RAISE EXCEPTION 'retrain.check: % may not check model "%", which belongs to %', @extschema@._actor(), m.name, m.owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only members of a model''s owner role, or a superuser, may.';
    END IF;
    pol := @extschema@.effective_policy($1);
    SELECT mv.* INTO prod
      FROM @extschema@.deployments d
      JOIN @extschema@.model_versions mv ON mv.model = d.model AND mv.version = d.production_version
     WHERE d.model = $1;
    figures := @extschema@._figures(m, pol->'triggers', prod, at);
    elig := @extschema@._eligibility(m, pol, (figures->>'new_labels')::bigint, at);
    -- in the order check() has always reported them; a row per schedule
    FOREACH kind IN ARRAY ARRAY['confidence', 'performance', 'drift', 'data_growth', 'schedule', 'feature_change'] LOOP
        FOR e IN SELECT x.label, x.entry || jsonb_build_object('label', x.label) AS settings
                   FROM @extschema@._schedule_entries(pol->'triggers'->'schedule') x WHERE kind = 'schedule'
                 UNION ALL
                 SELECT kind, pol->'triggers'->kind WHERE kind <> 'schedule' AND pol->'triggers' ? kind LOOP
            IF prod.version IS NULL AND kind IN ('confidence', 'performance', 'drift', 'feature_change') THEN
                -- they measure the production version: there is none yet
                r := @extschema@._unusable('no production version');
            ELSE
                -- one static call per kind, so that each is planned once
                -- a session, not once a check
                CASE kind
                    WHEN 'confidence' THEN r := @extschema@._trigger_confidence(e.settings, figures);
                    WHEN 'performance' THEN r := @extschema@._trigger_performance(e.settings, figures);
                    WHEN 'drift' THEN r := @extschema@._trigger_drift(e.settings, figures);
                    WHEN 'data_growth' THEN r := @extschema@._trigger_data_growth(e.settings, figures);
                    WHEN 'schedule' THEN r := @extschema@._trigger_schedule(e.settings, figures);
                    WHEN 'feature_change' THEN r := @extschema@._trigger_feature_change(e.settings, figures);
                END CASE;
            END IF;
            trigger := e.label;
            fired := r.fired;
            observed := r.observed;
            threshold := r.threshold;
            eligible := (elig->>'eligible')::boolean;
            detail := r.detail || jsonb_build_object('eligibility', elig - 'eligible');
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.check(text, timestamptz) IS
    'Evaluate a model''s retraining triggers at a time without changing anything: per trigger, whether it fired, what was observed against what threshold, and whether the model is eligible (min_new_labels and the owner''s named checks)';

-- A trigger that cannot be evaluated is logged once per reason: when it
-- becomes unusable, when its reason changes, and when it can be evaluated
-- again; not at every cycle.
CREATE OR REPLACE FUNCTION @extschema@._note_unusable(model text, trigger text, unusable text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    before text;
BEGIN
    SELECT ts.unusable INTO before FROM @extschema@.trigger_state ts
     WHERE ts.model = _note_unusable.model AND ts.trigger = _note_unusable.trigger;
    IF before IS NOT DISTINCT FROM unusable THEN
        RETURN;
    END IF;
    INSERT INTO @extschema@.trigger_state AS ts (model, trigger, unusable) VALUES (model, trigger, unusable)
    ON CONFLICT ON CONSTRAINT trigger_state_pkey DO UPDATE SET unusable = excluded.unusable;
    IF unusable IS NOT NULL THEN
        PERFORM @extschema@._log(model, NULL, 'trigger_unusable', jsonb_build_object('trigger', trigger, 'reason', unusable));
    ELSE
        PERFORM @extschema@._log(model, NULL, 'trigger_usable', jsonb_build_object('trigger', trigger, 'was', before));
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._note_unusable(text, text, text) IS
    'Record and log, once per reason, that a trigger cannot be evaluated, or can again (internal)';

-- A reminder of a schedule's next occurrence ("PagerDuty receives a
-- reminder 24 hours before the window"): logged, and so sent on the event
-- stream, once per occurrence.
CREATE OR REPLACE FUNCTION @extschema@._remind(model text, trigger text, occurrence timestamptz, at timestamptz)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.trigger_state AS ts (model, trigger, last_reminded) VALUES (model, trigger, occurrence)
    ON CONFLICT ON CONSTRAINT trigger_state_pkey
    DO UPDATE SET last_reminded = greatest(ts.last_reminded, excluded.last_reminded);
    PERFORM @extschema@._log(model, NULL, 'reminder',
                             jsonb_build_object('trigger', trigger, 'occurrence', occurrence,
                                                'in', date_trunc('second', occurrence - at)::text));
END
$$;
COMMENT ON FUNCTION @extschema@._remind(text, text, timestamptz, timestamptz) IS
    'Log (and announce) a reminder of a schedule''s next occurrence, once per occurrence (internal)';

-- The start of a cycle: what arrived since the last one folded into the
-- rollups of every model _fold_logged() can take together.  A failure is
-- logged; the models' checks then fold them one by one.
CREATE OR REPLACE FUNCTION @extschema@._fold_cycle(at timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- On a log distributed with Citus each model's checks fold it alone:
    -- a fold of one model reads one shard, while this one's joins of many
    -- models through the registry cannot be planned by Citus.
    IF @extschema@._log_distributed() THEN
        RETURN 0;
    END IF;
    RETURN @extschema@._fold_logged(at);
EXCEPTION WHEN OTHERS THEN
    PERFORM @extschema@._log(NULL, NULL, 'rollups_failed', jsonb_build_object('sqlstate', SQLSTATE, 'reason', SQLERRM));
    RETURN 0;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_cycle(timestamptz) IS
    'Fold, at the start of a cycle, the new rows of every model that can be folded together; log a failure (internal)';

-- Whether a model's rollups are as current as a fold at would make them,
-- within its settle time (the cycle's fold of many models has just run),
-- and made with its baselines and source: its checks then need not fold
-- it again.  The rows since are read directly, as those of the last
-- settle time always are.
CREATE OR REPLACE FUNCTION @extschema@._rollups_current(model text, at timestamptz)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mk @extschema@.rollup_marks;
    since timestamptz;
BEGIN
    SELECT * INTO mk FROM @extschema@.rollup_marks r WHERE r.model = _rollups_current.model;
    IF NOT FOUND OR mk.computed_until = '-infinity' OR mk.computed_until > at OR mk.outcomes_until > at THEN
        RETURN false;
    END IF;
    since := at - 2 * (@extschema@.effective_policy(model)->'rollups'->>'settle')::interval;
    RETURN mk.computed_until >= since AND mk.outcomes_until >= since
       AND mk.made_with = @extschema@._rollup_made_with(model, (SELECT m.source FROM @extschema@.models m
                                                                  WHERE m.name = _rollups_current.model));
END
$$;
COMMENT ON FUNCTION @extschema@._rollups_current(text, timestamptz) IS
    'Whether a model''s rollups are within its settle time of a fold at a time, and made with its baselines and source (internal)';

-- One model's checks as the cycle runs them: what arrived folded into the
-- rollups, check() (which takes no lock, however long the owner's checks
-- take), then, for fired and eligible
-- triggers, the model's request made or joined under its lock, and the
-- decision logged: which fired, which of those were held back by
-- eligibility, which could not be evaluated.  A failure is logged as
-- check_failed; the caller goes on with the next model.  Returns whether a
-- new request was made.
CREATE OR REPLACE FUNCTION @extschema@._check_model(model text, at timestamptz)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    reasons text[] := '{}';
    fired_triggers text[] := '{}';
    held text[] := '{}';
    unusable text[] := '{}';
    failed_checks jsonb := '{}';
    occurrences jsonb := '{}';
    checked jsonb := '[]';
    request_id bigint;
    created boolean := false;
    priority text := 'low';
    pol jsonb;
BEGIN
    -- what arrived since the last cycle into the rollups check() reads,
    -- unless the cycle's fold of many models (_fold_logged) has just
    -- done it; if that fails, check() reads the rows, and the failure is
    -- on record
    BEGIN
        IF NOT @extschema@._rollups_current(model, at) THEN
            PERFORM @extschema@._fold_rollups(model, at);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        PERFORM @extschema@._log(model, NULL, 'rollups_failed',
                                 jsonb_build_object('sqlstate', SQLSTATE, 'reason', SQLERRM));
    END;
    FOR c IN SELECT * FROM @extschema@.check(model, at) LOOP
        checked := checked || to_jsonb(c);
        failed_checks := coalesce(c.detail->'eligibility'->'failed_checks', '{}');
        PERFORM @extschema@._note_unusable(model, c.trigger, c.detail->>'unusable');
        IF (c.detail->>'remind')::boolean THEN
            PERFORM @extschema@._remind(model, c.trigger, (c.detail->>'next_occurrence')::timestamptz, at);
        END IF;
        IF c.fired IS NULL THEN
            unusable := unusable || c.trigger;
        ELSIF c.fired AND NOT c.eligible THEN
            held := held || c.trigger;
        ELSIF c.fired AND c.eligible THEN
            fired_triggers := fired_triggers || c.trigger;
            pol := coalesce(pol, @extschema@.effective_policy(model));
            -- a schedule of several carries its own
            priority := @extschema@._higher_priority(priority, coalesce(c.detail->>'priority',
                                                                        pol->'triggers'->c.trigger->>'priority'));
            reasons := reasons || format('%s: %s', c.trigger,
                CASE WHEN c.observed IS NOT NULL
                     THEN format('%s against %s', round(c.observed::numeric, 4), round(c.threshold::numeric, 4))
                     ELSE coalesce(c.detail->>'occurrence', c.detail::text) END);
            IF c.trigger LIKE 'schedule%' THEN
                occurrences := occurrences || jsonb_build_object(c.trigger, c.detail->'occurrence');
            END IF;
        END IF;
    END LOOP;
    IF cardinality(reasons) > 0 THEN
        SELECT q.id, q.created INTO request_id, created
          FROM @extschema@._request(model, jsonb_build_object('trigger', array_to_string(fired_triggers, ', '),
                                                              'reason', array_to_string(reasons, '; '),
                                                              'by', @extschema@._actor(),
                                                              'priority', priority)) q;
        INSERT INTO @extschema@.trigger_state AS ts (model, trigger, last_occurrence)
        SELECT model, o.key, (o.value #>> '{}')::timestamptz FROM jsonb_each(occurrences) o
        -- never back: run_checks(at) about an earlier time must not let
        -- an occurrence that already fired fire again
        ON CONFLICT ON CONSTRAINT trigger_state_pkey
        DO UPDATE SET last_occurrence = greatest(ts.last_occurrence, excluded.last_occurrence);
    END IF;
    PERFORM @extschema@._record_results(model, at, checked, request_id);
    -- the owner's checks that failed are on record, refusals included
    PERFORM @extschema@._log(model, NULL, 'checked',
                             jsonb_build_object('fired', fired_triggers, 'request', request_id)
                             || CASE WHEN at < pg_catalog.now() THEN jsonb_build_object('at', at) ELSE '{}' END
                             || CASE WHEN cardinality(held) = 0 THEN '{}' ELSE jsonb_build_object('held', held) END
                             || CASE WHEN cardinality(unusable) = 0 THEN '{}' ELSE jsonb_build_object('unusable', unusable) END
                             || CASE WHEN failed_checks = '{}' THEN '{}'
                                     ELSE jsonb_build_object('failed_checks',
                                              (SELECT jsonb_object_agg(f.key, @extschema@._redact(f.value))
                                                 FROM jsonb_each_text(failed_checks) f)) END);
    RETURN created;
EXCEPTION WHEN OTHERS THEN
    PERFORM @extschema@._log(model, NULL, 'check_failed', jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
    RETURN false;
END
$$;
COMMENT ON FUNCTION @extschema@._check_model(text, timestamptz) IS
    'One model''s checks: make or join its request for fired and eligible triggers, keep the results, log the decision (internal)';

-- All in the caller's transaction: for a person or a test.  The worker and
-- the pg_cron job run the same per model, each in its own transaction
-- (run_cycle), so that no transaction holds the write lock across models.
-- Asked about another time than now, it decides as a cycle at that time
-- would have (schedules, the once-per-occurrence rule, windows), so that a
-- policy can be tested without waiting.
CREATE OR REPLACE FUNCTION @extschema@.run_checks(at timestamptz)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text;
    made integer := 0;
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'retrain.run_checks: at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@._fold_cycle(at);
    FOR m IN SELECT mm.name FROM @extschema@.models mm WHERE @extschema@._may_act(mm.owner) ORDER BY mm.name LOOP
        IF @extschema@._check_model(m, at) THEN
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION @extschema@.run_checks(timestamptz) IS
    'Check, as of a time, the triggers of every model the caller may act on, in the caller''s transaction; for fired and eligible ones make (or join) the model''s retrain request; log each decision; returns the number of new requests';

-- run_checks(now()).  Two functions rather than one with a default: the
-- grants a site gave run_checks() stay where they are.
CREATE OR REPLACE FUNCTION @extschema@.run_checks()
    RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN @extschema@.run_checks(pg_catalog.now());
COMMENT ON FUNCTION @extschema@.run_checks() IS
    'Check the triggers of every model the caller may act on, now, in the caller''s transaction; for fired and eligible ones make (or join) the model''s retrain request; log each decision; returns the number of new requests';

-- Where the log's chain ends, written where an edit of retrain's tables
-- cannot reach it: the server log (kept by log shipping and log
-- collectors) and a NOTIFY on channel retrain_log_head.  Compare with
-- verify_log(expected_head_id, expected_hash).  The rows added since the
-- cycle's last check of the chain are checked and the check recorded
-- (log_verifications), so that a broken link shows within a cycle; after a
-- broken check the next one reads the whole chain again.
CREATE OR REPLACE FUNCTION @extschema@._anchor_log(OUT head_id bigint, OUT head_hash text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last @extschema@.log_verifications;
    c record;
BEGIN
    SELECT h.last_id, h.last_hash INTO head_id, head_hash FROM @extschema@.log_head h;
    head_id := coalesce(head_id, 0);
    head_hash := coalesce(head_hash, repeat('0', 64));
    PERFORM @extschema@._announce_log_head(head_id, head_hash, 'check cycle');
    PERFORM pg_notify('retrain_log_head', jsonb_build_object('id', head_id, 'hash', head_hash)::text);
    SELECT * INTO last FROM @extschema@.log_verifications v WHERE v.kind = 'cycle' ORDER BY v.id DESC LIMIT 1;
    c := @extschema@._verify_chain(CASE WHEN last.ok THEN last.upto_id ELSE 0 END);
    PERFORM @extschema@._note_verification('cycle', c.ok, c.first_bad_id, c.upto_id, c.rows_checked);
END
$$;
COMMENT ON FUNCTION @extschema@._anchor_log() IS
    'Write the log''s head (id and hash) to the server log and NOTIFY retrain_log_head, and check the rows of the chain added since the last cycle (internal)';

-- What a check cycle visits, in order: the guard of every running canary
-- and of every production version under watch, then every model's checks.
-- One list for the procedure and the worker (C).
CREATE OR REPLACE FUNCTION @extschema@._cycle_plan()
    RETURNS TABLE (model text, guard boolean)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT g.g, true FROM @extschema@._guarded(pg_catalog.now()) g(g)
    UNION ALL
    SELECT mm.name, false FROM @extschema@.models mm
    ORDER BY 2 DESC, 1
$$;
COMMENT ON FUNCTION @extschema@._cycle_plan() IS
    'What a check cycle visits, in order: the guard of each running canary and each production version under watch, then each model''s checks (internal)';

-- The check cycle as the pg_cron job runs it (the background worker runs
-- the same, from C): what arrived folded for the models that can be folded
-- together, every running canary's guard, then every model's checks, each model in its own transaction under retrain.check_timeout,
-- and the log's head anchored at the end.  A procedure, for its COMMITs;
-- not SECURITY DEFINER, since such a procedure may not commit: it is for
-- the job's role (see docs/operations.md), and names everything it uses
-- with its schema.
CREATE OR REPLACE PROCEDURE @extschema@.run_cycle()
    LANGUAGE plpgsql
AS $$
DECLARE
    m text;
    guard boolean;
BEGIN
    -- on a Citus worker the registry is empty and the log the
    -- coordinator's: its cycle runs there
    IF @extschema@._on_citus_worker() THEN
        RAISE NOTICE 'retrain.run_cycle: this node is a Citus worker; the check cycle runs on the coordinator';
        RETURN;
    END IF;
    PERFORM @extschema@._fold_cycle(pg_catalog.now());
    COMMIT;
    FOR m, guard IN SELECT p.model, p.guard FROM @extschema@._cycle_plan() WITH ORDINALITY p ORDER BY p.ordinality LOOP
        BEGIN
            PERFORM @extschema@._cycle_model(m, pg_catalog.now(), guard);
        EXCEPTION WHEN query_canceled THEN
            -- a model that ran out of time is logged and skipped; a cancel
            -- asked for by a person stops the cycle
            IF NOT @extschema@._timed_out() THEN
                RAISE;
            END IF;
            PERFORM @extschema@._log(m, NULL, CASE WHEN guard THEN 'guard_failed' ELSE 'check_failed' END,
                                     pg_catalog.jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
        END;
        COMMIT;
    END LOOP;
    -- the coming days' partitions, and retention; a failure here is the
    -- server log's, not a reason to leave the log's head unanchored
    BEGIN
        PERFORM @extschema@.maintain_partitions();
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE = '57014' THEN
            RAISE;
        END IF;
        RAISE WARNING 'retrain.run_cycle: maintaining the prediction log''s partitions failed: %', SQLERRM;
    END;
    COMMIT;
    PERFORM @extschema@._anchor_log();
    COMMIT;
END
$$;
COMMENT ON PROCEDURE @extschema@.run_cycle() IS
    'The check cycle: what arrived folded for the models that can be folded together, each running canary''s guard, then each model''s checks, every model in its own transaction under retrain.check_timeout; then the prediction log''s partitions maintained and the log''s head written to the server log';

-- The C side of the cycle: a model's part under retrain.check_timeout.
CREATE OR REPLACE FUNCTION @extschema@._cycle_model(model text, at timestamptz, guard boolean)
    RETURNS void LANGUAGE C VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'retrain_cycle_model';
COMMENT ON FUNCTION @extschema@._cycle_model(text, timestamptz, boolean) IS
    'Run one model''s checks or guard under retrain.check_timeout (internal)';

CREATE OR REPLACE FUNCTION @extschema@._timed_out()
    RETURNS boolean LANGUAGE C VOLATILE
    AS 'MODULE_PATHNAME', 'retrain_timed_out';
COMMENT ON FUNCTION @extschema@._timed_out() IS
    'Whether the last model of the cycle ran out of retrain.check_timeout (internal)';
