-- The rollout guard: each running canary against production over the
-- canary's time so far; one function per limit, composed by
-- guard_rollouts(), which rolls back, advances, holds or waits.

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

-- A version's figures over the canary's time so far: {n, error_rate,
-- latency (the policy's percentile), metric (AUC, or -RMSE: higher is
-- better either way)}.
CREATE OR REPLACE FUNCTION @extschema@._guard_figures(m @extschema@.models, version text, percentile pg_catalog.float8,
                                                      since timestamptz, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._read(m, format(
        'SELECT to_jsonb(x) FROM (SELECT count(*) AS n, avg(p.error::integer)::float8 AS error_rate, '
        'percentile_cont(%s) WITHIN GROUP (ORDER BY p.latency_ms) AS latency, %s AS metric '
        'FROM %s WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at < %L) x',
        percentile / 100,
        CASE m.task WHEN 'binary_classification' THEN '@extschema@.auc(p.score, o.label)'
                    ELSE '-@extschema@.rmse(p.score, o.actual)' END,
        @extschema@._source_from('guard_rollouts', m), m.name, version, since, at));
END
$$;
COMMENT ON FUNCTION @extschema@._guard_figures(@extschema@.models, text, pg_catalog.float8, timestamptz, timestamptz) IS
    'A version''s prediction count, error rate, latency percentile and main metric over a time range (internal)';

-- The limits, one function each: (rollback policy, canary figures,
-- production figures) -> why the canary must roll back, or NULL.

CREATE OR REPLACE FUNCTION @extschema@._limit_error_rate(rollback jsonb, canary jsonb, production jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN (canary->>'error_rate')::float8 > (rollback->>'max_error_rate')::float8
                THEN format('error rate %s > %s', round((canary->>'error_rate')::float8::numeric, 4),
                            rollback->>'max_error_rate') END;
COMMENT ON FUNCTION @extschema@._limit_error_rate(jsonb, jsonb, jsonb) IS
    'The rollout guard''s error rate limit: the canary''s error rate above max_error_rate (internal)';

CREATE OR REPLACE FUNCTION @extschema@._limit_latency(rollback jsonb, canary jsonb, production jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE WHEN p > 0 AND c > p * (1 + increase)
                        THEN format('p%s latency %s ms > %s ms (production %s ms + %s%%)', rollback->>'latency_percentile',
                                    round(c::numeric, 1), round((p * (1 + increase))::numeric, 1), round(p::numeric, 1),
                                    round(100 * (rollback->>'max_latency_increase')::numeric)) END
              FROM (SELECT (canary->>'latency')::float8 AS c, (production->>'latency')::float8 AS p,
                           (rollback->>'max_latency_increase')::float8 AS increase) x);
COMMENT ON FUNCTION @extschema@._limit_latency(jsonb, jsonb, jsonb) IS
    'The rollout guard''s latency limit: the canary''s latency percentile above production''s by more than max_latency_increase (internal)';

CREATE OR REPLACE FUNCTION @extschema@._limit_metric_drop(rollback jsonb, canary jsonb, production jsonb, task text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE WHEN rollback ? 'max_metric_drop' AND c < p - (rollback->>'max_metric_drop')::float8
                        THEN format('%s %s below production %s by more than %s',
                                    CASE task WHEN 'binary_classification' THEN 'AUC' ELSE '-RMSE' END,
                                    round(c::numeric, 4), round(p::numeric, 4), rollback->>'max_metric_drop') END
              FROM (SELECT (canary->>'metric')::float8 AS c, (production->>'metric')::float8 AS p) x);
COMMENT ON FUNCTION @extschema@._limit_metric_drop(jsonb, jsonb, jsonb, text) IS
    'The rollout guard''s metric limit: the canary''s AUC (or -RMSE) below production''s by more than max_metric_drop (internal)';

-- The owner's rollback checks ("three critical feedback labels within an
-- hour"), each run with the owner's privileges: the first that returned
-- true, and those that failed.
CREATE OR REPLACE FUNCTION @extschema@._guard_owner_checks(m @extschema@.models, checks jsonb,
                                                           OUT why text, OUT failed text)
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (array_agg(format('rollback check %s returned true', c.name) ORDER BY c.name)
                FILTER (WHERE c.error IS NULL AND c.result))[1],
           string_agg(format('rollback check %s %s', c.name, c.error), '; ' ORDER BY c.name)
                FILTER (WHERE c.error IS NOT NULL)
      FROM @extschema@._run_owner_checks(m, checks) c
$$;
COMMENT ON FUNCTION @extschema@._guard_owner_checks(@extschema@.models, jsonb) IS
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

-- What the guard decides about a canary, without acting on it: roll back at
-- once when an owner's check says so; hold when one failed; wait for
-- enough predictions; roll back on the first limit crossed; else advance or
-- hold.  It takes no lock: the figures and the owner's checks take as long
-- as they take, and no other session waits for them.
CREATE OR REPLACE FUNCTION @extschema@._guard_judge(m @extschema@.models, d @extschema@.deployments, at timestamptz,
                                                    OUT decision text, OUT reason text,
                                                    OUT canary_figures jsonb, OUT production_figures jsonb)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol jsonb := @extschema@.effective_policy(m.name);
    since timestamptz;
    step_since timestamptz;
    c jsonb;
    p jsonb;
    checks record;
BEGIN
    -- the canary's time: since it was promoted; the step's: since the last change of traffic
    SELECT max(l.at) FILTER (WHERE l.event = 'promoted'), max(l.at) INTO since, step_since
      FROM @extschema@.log l
     WHERE l.model = m.name AND l.version = d.canary_version AND l.event IN ('promoted', 'advanced', 'traffic_changed');
    c := @extschema@._guard_figures(m, d.canary_version, (pol->'rollback'->>'latency_percentile')::float8, since, at);
    p := @extschema@._guard_figures(m, d.production_version, (pol->'rollback'->>'latency_percentile')::float8, since, at);
    canary_figures := c;
    production_figures := p;

    -- the owner's checks act at once, however few predictions the canary has
    checks := @extschema@._guard_owner_checks(m, pol->'rollback'->'checks');
    IF checks.why IS NOT NULL THEN
        decision := 'rollback';
        reason := checks.why;
    ELSIF checks.failed IS NOT NULL THEN
        decision := 'hold';
        reason := checks.failed;
    ELSIF (c->>'n')::float8 < (pol->'rollback'->>'min_predictions')::float8 THEN
        decision := 'wait';
        reason := format('%s of %s predictions needed to judge the canary', c->>'n', pol->'rollback'->>'min_predictions');
    ELSE
        reason := coalesce(@extschema@._limit_error_rate(pol->'rollback', c, p),
                           @extschema@._limit_latency(pol->'rollback', c, p),
                           @extschema@._limit_metric_drop(pol->'rollback', c, p, m.task));
        IF reason IS NOT NULL THEN
            decision := 'rollback';
        ELSE
            SELECT * INTO decision, reason FROM @extschema@._guard_step(pol->'rollout', d.canary_percent, step_since, at);
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._guard_judge(@extschema@.models, @extschema@.deployments, timestamptz) IS
    'Judge a running canary without acting: rollback, hold, wait or advance, and why (internal)';

-- One canary: judged without the write lock, then acted on under it, on the
-- facts judged (a canary that moved meanwhile is judged again next time).
-- Every decision is logged with both versions' figures.
CREATE OR REPLACE FUNCTION @extschema@._guard_canary(model text, at timestamptz, OUT canary text,
                                                     OUT decision text, OUT reason text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    d @extschema@.deployments;
    now_d @extschema@.deployments;
    judged record;
BEGIN
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.guard_rollouts: unknown model "%"', model USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = m.name;
    canary := d.canary_version;
    IF canary IS NULL THEN
        RETURN;
    END IF;
    judged := @extschema@._guard_judge(m, d, at);

    PERFORM @extschema@._lock_model('guard_rollouts', m.name);
    SELECT * INTO now_d FROM @extschema@.deployments dd WHERE dd.model = m.name;
    IF (now_d.canary_version, now_d.canary_percent) IS DISTINCT FROM (d.canary_version, d.canary_percent) THEN
        decision := 'hold';
        reason := 'the canary changed while it was judged; it is judged again at the next cycle';
    ELSE
        decision := judged.decision;
        reason := judged.reason;
        IF decision = 'rollback' THEN
            PERFORM @extschema@.rollback(m.name, 'rollout guard: ' || reason);
        ELSIF decision = 'advance' THEN
            PERFORM @extschema@.advance(m.name);
        END IF;
    END IF;
    PERFORM @extschema@._log(m.name, canary, 'guard',
        jsonb_build_object('decision', decision, 'reason', @extschema@._redact(reason),
                           'canary', judged.canary_figures, 'production', judged.production_figures));
END
$$;
COMMENT ON FUNCTION @extschema@._guard_canary(text, timestamptz) IS
    'Judge a model''s running canary, then act on the decision under the model''s lock (internal)';

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
    canary := (SELECT d.canary_version FROM @extschema@.deployments d WHERE d.model = _guard_model.model);
    decision := 'error';
    reason := SQLERRM;
    PERFORM @extschema@._log(model, canary, 'guard_failed', jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
END
$$;
COMMENT ON FUNCTION @extschema@._guard_model(text, timestamptz) IS
    'The rollout guard of one model, a failure logged as guard_failed (internal)';

CREATE OR REPLACE FUNCTION @extschema@.guard_rollouts(at timestamptz DEFAULT now())
    RETURNS TABLE (model text, canary text, decision text, reason text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off
AS $$
BEGIN
    -- the running canaries of the models the caller may act on
    FOR model IN SELECT d.model FROM @extschema@.deployments d JOIN @extschema@.models m ON m.name = d.model
                  WHERE d.canary_version IS NOT NULL AND @extschema@._may_act(m.owner)
                  ORDER BY d.model LOOP
        SELECT * INTO canary, decision, reason FROM @extschema@._guard_model(model, at) g;
        -- the canary may have ended before it was judged
        CONTINUE WHEN canary IS NULL AND decision IS NULL;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.guard_rollouts(timestamptz) IS
    'For each running canary of the models the caller may act on: roll back on error rate, latency or metric limits of the policy or when one of the owner''s rollback checks returns true, advance after the step''s dwell time when healthy, else hold; every decision logged';
