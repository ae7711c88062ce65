-- The rollout guard: each running canary against production over the
-- canary's time so far, and each new production version, for
-- rollback.watch after its release, against the version it replaced; one
-- function per limit, composed by guard_rollouts(), which rolls back,
-- advances, holds or waits.

-- @replace

-- A duration for a message, whatever the session's IntervalStyle: seconds,
-- minutes, hours or days, in the largest unit that keeps it readable.
CREATE OR REPLACE FUNCTION @extschema@._duration(d interval)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s < 120 THEN round(s)::text || ' s'
                WHEN s < 7200 THEN round(s / 60, 1)::text || ' min'
                WHEN s < 172800 THEN round(s / 3600, 1)::text || ' h'
                ELSE round(s / 86400, 1)::text || ' days' END
      FROM (SELECT extract(epoch FROM d) AS s) x
$$;
COMMENT ON FUNCTION @extschema@._duration(interval) IS
    'An interval as "12 s", "4.5 min", "25.0 h" or "3.0 days" for messages (internal)';

-- The metric the guard compares (rollback.metric), and whether higher is
-- better: AUC for a classifier, RMSE for a regression model unless the
-- policy names another; F1 and the other confusion metrics at the
-- performance trigger's threshold (default 0.5).
CREATE OR REPLACE FUNCTION @extschema@._guard_metric(task text, pol jsonb, OUT metric text, OUT higher_is_better boolean,
                                                     OUT threshold pg_catalog.float8)
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m, m IN ('auc', 'f1', 'precision', 'recall', 'accuracy'),
           coalesce((pol->'triggers'->'performance'->>'threshold')::pg_catalog.float8, 0.5)
      FROM (SELECT coalesce(pol->'rollback'->>'metric',
                            CASE task WHEN 'binary_classification' THEN 'auc' ELSE 'rmse' END) AS m) x
$$;
COMMENT ON FUNCTION @extschema@._guard_metric(text, jsonb) IS
    'The metric the rollout guard compares, its direction and threshold (internal)';

-- The rows of a version's predictions made in [since, until] and their
-- outcomes known at at: the FROM and WHERE of the guard's reads.
CREATE OR REPLACE FUNCTION @extschema@._guard_rows(m @extschema@.models, version text, since timestamptz,
                                                   until timestamptz, at timestamptz)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format('FROM %s WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at <= %L',
                  @extschema@._source_from('guard_rollouts', m, at), m.name, version, since, until);
END
$$;
COMMENT ON FUNCTION @extschema@._guard_rows(@extschema@.models, text, timestamptz, timestamptz, timestamptz) IS
    'The FROM and WHERE clauses of a version''s predictions over a time range with the outcomes known at a time (internal)';

-- The latency percentile the guard compares, as percentile_cont over the
-- rows.
CREATE OR REPLACE FUNCTION @extschema@._guard_latency_expr(pol jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN format('percentile_cont(%s) WITHIN GROUP (ORDER BY p.latency_ms)',
                  (pol->'rollback'->>'latency_percentile')::numeric / 100);
COMMENT ON FUNCTION @extschema@._guard_latency_expr(jsonb) IS
    'The SQL of the rollout guard''s latency percentile over predictions p (internal)';

-- That percentile of a version over a time range, read from the rows.
CREATE OR REPLACE FUNCTION @extschema@._guard_latency(m @extschema@.models, version text, pol jsonb,
                                                      since timestamptz, until timestamptz, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._read(m, format('SELECT to_jsonb(%s) %s', @extschema@._guard_latency_expr(pol),
                                       @extschema@._guard_rows(m, version, since, until, at)));
END
$$;
COMMENT ON FUNCTION @extschema@._guard_latency(@extschema@.models, text, jsonb, timestamptz, timestamptz, timestamptz) IS
    'The rollout guard''s latency percentile of a version over a time range, percentile_cont over the rows (internal)';

-- A version's figures over a time range, read from the rows: {n, invalid
-- (scores no metric can take: NaN, infinite, outside [0, 1] for a
-- classifier), error_rate, latency (the policy's percentile), metric (over
-- the valid rows)}.  One scan; should it fail, each figure is computed on
-- its own, so that one failing figure (a source whose column cannot be
-- read, say) leaves the others, and the failure is reported under
-- "errors".  _guard_rolled_figures() gives the same from the rollups.
CREATE OR REPLACE FUNCTION @extschema@._guard_figures(m @extschema@.models, version text, pol jsonb,
                                                      since timestamptz, until timestamptz, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    valid text := @extschema@._valid_row(m.task);
    gm record := @extschema@._guard_metric(m.task, pol);
    figures text[][] := ARRAY[
        ARRAY['n', 'count(*)'],
        ARRAY['invalid', format('count(*) FILTER (WHERE p.score IS NOT NULL AND NOT %s)', @extschema@._valid_score(m.task))],
        ARRAY['error_rate', 'avg(p.error::integer)::float8'],
        ARRAY['latency', @extschema@._guard_latency_expr(pol)],
        ARRAY['metric', format('%s FILTER (WHERE %s)', @extschema@._metric_expression(gm.metric, gm.threshold), valid)],
        ARRAY['labelled', format('count(o.prediction_id) FILTER (WHERE %s)', valid)]];
    from_where text := @extschema@._guard_rows(m, version, since, until, at);
    result jsonb := '{}';
    errors jsonb := '{}';
    i integer;
BEGIN
    BEGIN
        RETURN @extschema@._read(m, format('SELECT jsonb_build_object(%s) %s',
            (SELECT string_agg(format('%L, %s', figures[k][1], figures[k][2]), ', ')
               FROM generate_subscripts(figures, 1) k), from_where))
            || jsonb_build_object('metric_name', gm.metric);
    EXCEPTION WHEN OTHERS THEN
        NULL;  -- each on its own, below
    END;
    FOR i IN 1 .. array_length(figures, 1) LOOP
        BEGIN
            result := result || jsonb_build_object(figures[i][1],
                @extschema@._read(m, format('SELECT to_jsonb(%s) %s', figures[i][2], from_where)));
        EXCEPTION WHEN OTHERS THEN
            errors := errors || jsonb_build_object(figures[i][1],
                CASE WHEN SQLERRM LIKE '%(SQLSTATE %' THEN SQLERRM ELSE format('%s (SQLSTATE %s)', SQLERRM, SQLSTATE) END);
        END;
    END LOOP;
    RETURN result || jsonb_build_object('metric_name', gm.metric, 'errors', errors);
END
$$;
COMMENT ON FUNCTION @extschema@._guard_figures(@extschema@.models, text, jsonb, timestamptz, timestamptz, timestamptz) IS
    'A version''s prediction count, invalid scores, error rate, latency percentile and metric over a time range, read from the rows, each figure on its own if need be (internal)';

-- An approximate latency (from the rollups) near its limit or over it is
-- read again from the rows, so that the decision and the figures a
-- rollback quotes are percentile_cont's: each approximation is within
-- 1/101 of it, so the limit cannot be crossed by less than 2/101 (2.5%
-- here) without this.
CREATE OR REPLACE FUNCTION @extschema@._latency_near_limit(rollback jsonb, judged jsonb, reference jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (judged ? 'latency_approx' OR reference ? 'latency_approx')
       AND @extschema@._decimal(reference->'latency') > 0
       AND @extschema@._decimal(judged->'latency') >= 0.975 * @extschema@._decimal(reference->'latency')
                                                          * (1 + (rollback->>'max_latency_increase')::numeric);
COMMENT ON FUNCTION @extschema@._latency_near_limit(jsonb, jsonb, jsonb) IS
    'Whether an approximate latency percentile is over its limit or within the approximation''s reach of it (internal)';

-- The limits, one function each: (rollback policy, judged figures,
-- reference figures) -> why the judged version must roll back, or NULL.
-- Compared in decimal, as the policy writes its limits.

CREATE OR REPLACE FUNCTION @extschema@._limit_invalid(rollback jsonb, judged jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN (judged->>'n')::numeric > 0
                 AND (judged->>'invalid')::numeric / (judged->>'n')::numeric > (rollback->>'max_invalid_rate')::numeric
                THEN format('invalid scores: %s of %s', judged->>'invalid', judged->>'n') END;
COMMENT ON FUNCTION @extschema@._limit_invalid(jsonb, jsonb) IS
    'The rollout guard''s invalid-score limit: NaN, infinite or out-of-range scores above max_invalid_rate (internal)';

CREATE OR REPLACE FUNCTION @extschema@._limit_error_rate(rollback jsonb, judged jsonb, reference jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN @extschema@._decimal(judged->'error_rate') > (rollback->>'max_error_rate')::numeric
                THEN format('error rate %s > %s', round(@extschema@._decimal(judged->'error_rate'), 4),
                            rollback->>'max_error_rate') END;
COMMENT ON FUNCTION @extschema@._limit_error_rate(jsonb, jsonb, jsonb) IS
    'The rollout guard''s error rate limit: the error rate above max_error_rate (internal)';

CREATE OR REPLACE FUNCTION @extschema@._limit_latency(rollback jsonb, judged jsonb, reference jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE WHEN p > 0 AND c > p * (1 + increase)
                        THEN format('p%s latency %s ms > %s ms (%s %s ms + %s%%)', rollback->>'latency_percentile',
                                    round(c, 1), round(p * (1 + increase), 1),
                                    coalesce(reference->>'label', 'production'), round(p, 1),
                                    round(100 * increase)) END
              FROM (SELECT @extschema@._decimal(judged->'latency') AS c, @extschema@._decimal(reference->'latency') AS p,
                           (rollback->>'max_latency_increase')::numeric AS increase) x);
COMMENT ON FUNCTION @extschema@._limit_latency(jsonb, jsonb, jsonb) IS
    'The rollout guard''s latency limit: the latency percentile above the reference''s by more than max_latency_increase (internal)';

CREATE OR REPLACE FUNCTION @extschema@._limit_metric_drop(rollback jsonb, judged jsonb, reference jsonb,
                                                          higher_is_better boolean)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE WHEN rollback ? 'max_metric_drop'
                         AND CASE WHEN higher_is_better THEN p - c ELSE c - p END > (rollback->>'max_metric_drop')::numeric
                        THEN format('%s %s %s %s %s by more than %s', upper(judged->>'metric_name'), round(c, 4),
                                    CASE WHEN higher_is_better THEN 'below' ELSE 'above' END,
                                    coalesce(reference->>'label', 'production'), round(p, 4),
                                    rollback->>'max_metric_drop') END
              FROM (SELECT @extschema@._decimal(judged->'metric') AS c, @extschema@._decimal(reference->'metric') AS p) x);
COMMENT ON FUNCTION @extschema@._limit_metric_drop(jsonb, jsonb, jsonb, boolean) IS
    'The rollout guard''s metric limit: the metric worse than the reference''s by more than max_metric_drop (internal)';

-- The owner's rollback checks ("three critical feedback labels within an
-- hour"), each run with the owner's privileges and asked about at: the
-- first that returned true, and those that failed.
CREATE OR REPLACE FUNCTION @extschema@._guard_owner_checks(m @extschema@.models, checks jsonb, at timestamptz,
                                                           OUT why text, OUT failed text)
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (array_agg(format('rollback check %s returned true', c.name) ORDER BY c.name)
                FILTER (WHERE c.error IS NULL AND c.result))[1],
           string_agg(format('rollback check %s %s', c.name, c.error), '; ' ORDER BY c.name)
                FILTER (WHERE c.error IS NOT NULL)
      FROM @extschema@._run_owner_checks(m, checks, at) c
$$;
COMMENT ON FUNCTION @extschema@._guard_owner_checks(@extschema@.models, jsonb, timestamptz) IS
    'Run the owner''s rollback checks: the first that returned true, and the errors of those that failed (internal)';

-- A healthy canary advances once its step has lasted the step's dwell
-- (without dwell, at the next healthy cycle), else holds.
CREATE OR REPLACE FUNCTION @extschema@._guard_step(rollout jsonb, percent numeric, step_since timestamptz, at timestamptz,
                                                   OUT decision text, OUT reason text)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    step_index integer;
    dwell interval;
BEGIN
    SELECT min(i) - 1 INTO step_index
      FROM jsonb_array_elements_text(rollout->'steps') WITH ORDINALITY AS s(v, i) WHERE v::numeric >= percent;
    dwell := coalesce((rollout->'dwell'->>step_index)::interval, interval '0');
    IF at - step_since >= dwell THEN
        decision := 'advance';
        reason := format('healthy for %s at %s%%', @extschema@._duration(at - step_since), trim_scale(percent));
    ELSE
        decision := 'hold';
        reason := format('healthy; %s of %s at %s%% so far',
                         @extschema@._duration(at - step_since), @extschema@._duration(dwell), trim_scale(percent));
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._guard_step(jsonb, numeric, timestamptz, timestamptz) IS
    'Whether a healthy canary has stayed its step''s dwell: advance, or hold (internal)';

-- What the guard holds a version to, canary or production under watch, in
-- this order: the owner's rollback checks first (they act at once, and
-- they run before anything that reads the version's predictions, which a
-- bad version may have made unreadable); invalid scores (at once too: a
-- model that emits NaN is broken, however few predictions it made); a
-- failed owner check holds; too few predictions wait; then error rate,
-- latency and metric against the reference version (its figures over
-- ref_since .. ref_until, with ref_extra laid over them: a label, or a
-- registered metric).  decision NULL: healthy.  Without a lock: the
-- figures and the checks take as long as they take.
CREATE OR REPLACE FUNCTION @extschema@._guard_verdict(m @extschema@.models, pol jsonb, judged text, since timestamptz,
                                                      ref text, ref_since timestamptz, ref_until timestamptz,
                                                      ref_extra jsonb, at timestamptz,
                                                      OUT decision text, OUT reason text, OUT figures jsonb,
                                                      OUT reference jsonb)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- first: before anything reads a version's predictions
    checks record := @extschema@._guard_owner_checks(m, pol->'rollback'->'checks', at);
    gm record := @extschema@._guard_metric(m.task, pol);
BEGIN
    -- from the rollups where they can answer, else from the rows
    figures := coalesce(@extschema@._guard_rolled_figures(m, judged, pol, since, at, at),
                        @extschema@._guard_figures(m, judged, pol, since, at, at));
    IF ref IS NOT NULL THEN
        reference := coalesce(@extschema@._guard_rolled_figures(m, ref, pol, ref_since, ref_until, at),
                              @extschema@._guard_figures(m, ref, pol, ref_since, ref_until, at))
                     || coalesce(ref_extra, '{}');
    END IF;
    reason := coalesce(checks.why, @extschema@._limit_invalid(pol->'rollback', figures));
    IF reason IS NOT NULL THEN
        decision := 'rollback';
    ELSIF checks.failed IS NOT NULL THEN
        decision := 'hold';
        reason := checks.failed;
    ELSIF coalesce((figures->>'n')::numeric, 0) < (pol->'rollback'->>'min_predictions')::numeric THEN
        decision := 'wait';
        reason := format('%s of %s predictions needed to judge %s', coalesce(figures->>'n', '?'),
                         pol->'rollback'->>'min_predictions', judged);
    ELSE
        reason := @extschema@._limit_error_rate(pol->'rollback', figures, reference);
        IF reason IS NULL AND @extschema@._latency_near_limit(pol->'rollback', figures, reference) THEN
            figures := figures - 'latency_approx'
                       || jsonb_build_object('latency', @extschema@._guard_latency(m, judged, pol, since, at, at));
            reference := reference - 'latency_approx'
                         || jsonb_build_object('latency', @extschema@._guard_latency(m, ref, pol, ref_since, ref_until, at));
        END IF;
        reason := coalesce(reason, @extschema@._limit_latency(pol->'rollback', figures, reference),
                           @extschema@._limit_metric_drop(pol->'rollback', figures, reference, gm.higher_is_better));
        IF reason IS NOT NULL THEN
            decision := 'rollback';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._guard_verdict(@extschema@.models, jsonb, text, timestamptz, text, timestamptz, timestamptz, jsonb, timestamptz) IS
    'Hold a version to the rollback checks and limits against a reference: rollback, hold, wait, or NULL when healthy (internal)';

-- A running canary, judged against production over the canary's time so
-- far; healthy, it advances after its step's dwell.
CREATE OR REPLACE FUNCTION @extschema@._guard_judge(m @extschema@.models, d @extschema@.deployments, at timestamptz,
                                                    OUT decision text, OUT reason text,
                                                    OUT canary_figures jsonb, OUT production_figures jsonb)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    -- figures pass through jsonb: exact at 3, whatever the caller set
    SET extra_float_digits = 3
AS $$
DECLARE
    pol jsonb := @extschema@.effective_policy(m.name);
    since timestamptz;
    step_since timestamptz;
    v record;
BEGIN
    -- the canary's time: since it was promoted; the step's: since the last change of traffic
    SELECT max(l.at) FILTER (WHERE l.event = 'promoted'), max(l.at) INTO since, step_since
      FROM @extschema@.log l
     WHERE l.model = m.name AND l.version = d.canary_version AND l.event IN ('promoted', 'advanced', 'traffic_changed');
    v := @extschema@._guard_verdict(m, pol, d.canary_version, since, d.production_version, since, at, NULL, at);
    canary_figures := v.figures;
    production_figures := v.reference;
    decision := v.decision;
    reason := v.reason;
    IF decision IS NULL THEN
        SELECT * INTO decision, reason FROM @extschema@._guard_step(pol->'rollout', d.canary_percent, step_since, at);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._guard_judge(@extschema@.models, @extschema@.deployments, timestamptz) IS
    'Judge a running canary without acting: rollback, hold, wait or advance, and why (internal)';

-- The production version under watch: for rollback.watch after it became
-- production (by a promotion or a canary's last step, not by a rollback,
-- which returns to a version already judged), with the version it
-- replaced and when.  No row once the watch is over.
CREATE OR REPLACE FUNCTION @extschema@._watched(model text, at timestamptz,
                                                OUT version text, OUT started_at timestamptz, OUT replaced text,
                                                OUT watch interval)
    RETURNS SETOF record
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.version, h.started_at, before.version, w.watch
      FROM @extschema@.production_history h
      LEFT JOIN @extschema@.production_history before ON before.model = h.model AND before.seq = h.seq - 1
      CROSS JOIN LATERAL (SELECT (@extschema@.effective_policy(h.model)->'rollback'->>'watch')::interval AS watch) w
     WHERE h.model = _watched.model AND h.ended_at IS NULL
       AND before.ended_by IS DISTINCT FROM 'rolled_back'
       AND h.started_at <= at AND at < h.started_at + w.watch
$$;
COMMENT ON FUNCTION @extschema@._watched(text, timestamptz) IS
    'The production version a model''s guard watches at a time, the version it replaced, and the watch (internal)';

-- A production version under watch, judged as a canary is: against the
-- version it replaced over the same length of time before the swap
-- (error rate, latency), and against that version's registered metric.
-- Healthy, it is held until the watch ends.
CREATE OR REPLACE FUNCTION @extschema@._guard_watch(m @extschema@.models, w record, at timestamptz,
                                                    OUT decision text, OUT reason text,
                                                    OUT production_figures jsonb, OUT previous_figures jsonb)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET extra_float_digits = 3
AS $$
DECLARE
    pol jsonb := @extschema@.effective_policy(m.name);
    gm record := @extschema@._guard_metric(m.task, pol);
    elapsed interval := at - w.started_at;
    v record;
BEGIN
    v := @extschema@._guard_verdict(m, pol, w.version, w.started_at, w.replaced, w.started_at - elapsed, w.started_at,
        jsonb_build_object('label', format('previous version %s', w.replaced),
                           'metric', (SELECT mv.metrics->gm.metric FROM @extschema@.model_versions mv
                                       WHERE mv.model = m.name AND mv.version = w.replaced),
                           'metric_source', 'registered'),
        at);
    production_figures := v.figures;
    previous_figures := v.reference;
    decision := coalesce(v.decision, 'hold');
    reason := coalesce(v.reason, format('healthy; watched %s of %s since it became production',
                                        @extschema@._duration(elapsed), @extschema@._duration(w.watch)));
END
$$;
COMMENT ON FUNCTION @extschema@._guard_watch(@extschema@.models, record, timestamptz) IS
    'Judge a production version under watch without acting: rollback, hold or wait, and why (internal)';

-- One model: its running canary, or else its production version under
-- watch; judged without the write lock, then acted on under it, on the
-- facts judged (a deployment that moved meanwhile is judged again next
-- time).  Every decision is logged with the figures.
CREATE OR REPLACE FUNCTION @extschema@._guard_canary(model text, at timestamptz, OUT canary text,
                                                     OUT decision text, OUT reason text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    d @extschema@.deployments;
    now_d @extschema@.deployments;
    w record;
    judged record;
    figures jsonb;
BEGIN
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.guard_rollouts: unknown model "%"', model USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = m.name;
    IF d.canary_version IS NOT NULL THEN
        canary := d.canary_version;
        judged := @extschema@._guard_judge(m, d, at);
        figures := jsonb_build_object('canary', judged.canary_figures, 'production', judged.production_figures);
    ELSE
        SELECT * INTO w FROM @extschema@._watched(m.name, at) x;
        IF w.version IS NULL OR w.version IS DISTINCT FROM d.production_version THEN
            RETURN;
        END IF;
        canary := w.version;
        judged := @extschema@._guard_watch(m, w, at);
        figures := jsonb_build_object('watch', true, 'production', judged.production_figures,
                                      'previous', judged.previous_figures);
    END IF;

    PERFORM @extschema@._lock_model('guard_rollouts', m.name);
    SELECT * INTO now_d FROM @extschema@.deployments dd WHERE dd.model = m.name;
    decision := judged.decision;
    reason := judged.reason;
    IF (now_d.canary_version, now_d.canary_percent, now_d.production_version)
       IS DISTINCT FROM (d.canary_version, d.canary_percent, d.production_version) THEN
        decision := 'hold';
        reason := 'the deployment changed while it was judged; it is judged again at the next cycle';
    ELSIF decision = 'rollback' AND d.canary_version IS NULL AND now_d.previous_version IS NULL THEN
        -- nothing to return to: say so, loudly, and leave the choice to a person
        decision := 'hold';
        reason := format('would roll back (%s), but there is no earlier good version to return to; '
                         'retrain.force(%L, ''fallback'') serves no model', reason, m.name);
    ELSIF decision = 'rollback' THEN
        PERFORM @extschema@.rollback(m.name, 'rollout guard: ' || reason);
    ELSIF decision = 'advance' AND @extschema@._freeze_of(now_d, at) IS NOT NULL THEN
        -- a freeze halts the rollout where it is; the guard still rolls back
        decision := 'hold';
        reason := format('%s, but the model is frozen: %s', reason, @extschema@._freeze_of(now_d, at)->>'reason');
    ELSIF decision = 'advance' THEN
        PERFORM @extschema@.advance(m.name);
    END IF;
    PERFORM @extschema@._log(m.name, canary, 'guard',
        jsonb_build_object('decision', decision, 'reason', @extschema@._redact(reason)) || figures);
END
$$;
COMMENT ON FUNCTION @extschema@._guard_canary(text, timestamptz) IS
    'Judge a model''s running canary, or its production version under watch, then act on the decision under the model''s lock (internal)';

-- One model's guard as the cycle runs it: a failure is logged and reported
-- as the decision "error", and the other models go on.
CREATE OR REPLACE FUNCTION @extschema@._guard_model(model text, at timestamptz, OUT canary text,
                                                    OUT decision text, OUT reason text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT * INTO canary, decision, reason FROM @extschema@._guard_canary(model, at) g;
EXCEPTION WHEN OTHERS THEN
    canary := (SELECT coalesce(d.canary_version, d.production_version) FROM @extschema@.deployments d
                WHERE d.model = _guard_model.model);
    decision := 'error';
    reason := SQLERRM;
    PERFORM @extschema@._log(model, canary, 'guard_failed', jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
END
$$;
COMMENT ON FUNCTION @extschema@._guard_model(text, timestamptz) IS
    'The rollout guard of one model, a failure logged as guard_failed (internal)';

-- The models the guard visits: a running canary, or a production version
-- under watch.
CREATE OR REPLACE FUNCTION @extschema@._guarded(at timestamptz)
    RETURNS SETOF text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.model FROM @extschema@.deployments d
     WHERE d.canary_version IS NOT NULL
        OR EXISTS (SELECT 1 FROM @extschema@._watched(d.model, at))
     ORDER BY d.model
$$;
COMMENT ON FUNCTION @extschema@._guarded(timestamptz) IS
    'The models with a running canary or a production version under watch (internal)';

CREATE OR REPLACE FUNCTION @extschema@.guard_rollouts(at timestamptz DEFAULT now())
    RETURNS TABLE (model text, canary text, decision text, reason text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off
AS $$
BEGIN
    -- the guarded models the caller may act on
    FOR model IN SELECT g.g FROM @extschema@._guarded(at) g(g) JOIN @extschema@.models m ON m.name = g.g
                  WHERE @extschema@._may_act(m.owner)
                  ORDER BY g.g LOOP
        SELECT * INTO canary, decision, reason FROM @extschema@._guard_model(model, at) g;
        -- the canary may have ended before it was judged
        CONTINUE WHEN canary IS NULL AND decision IS NULL;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.guard_rollouts(timestamptz) IS
    'For each running canary, and each production version within rollback.watch of its release, of the models the caller may act on: roll back on invalid scores, error rate, latency or metric limits of the policy or when one of the owner''s rollback checks returns true; advance a healthy canary after its step''s dwell, else hold; every decision logged (the column canary names the version judged)';
