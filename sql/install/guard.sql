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

CREATE OR REPLACE FUNCTION @extschema@.guard_rollouts(at timestamptz DEFAULT now())
    RETURNS TABLE (model text, canary text, decision text, reason text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off
AS $$
DECLARE
    d @extschema@.deployments;
    m @extschema@.models;
    pol jsonb;
    since timestamptz;
    step_since timestamptz;
    pct float8;
    c record;
    p record;
    steps jsonb;
    step_index integer;
    dwell interval;
    why text;
    owner_check record;
    outcome record;
    check_failed text;
    src text;
    metric text;
    -- canary or production over the canary's time so far
    query constant text := 'SELECT to_jsonb(x) FROM (SELECT count(*) AS n, avg(p.error::integer)::float8 AS error_rate, '
                           'percentile_cont(%s) WITHIN GROUP (ORDER BY p.latency_ms) AS latency, %s AS metric '
                           'FROM %s WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at < %L) x';
BEGIN
    FOR d IN SELECT * FROM @extschema@.deployments dd WHERE dd.canary_version IS NOT NULL ORDER BY dd.model LOOP
        BEGIN
            m := @extschema@._lock_model('guard_rollouts', d.model);
            -- re-read under the lock: another session may have moved it
            SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = m.name;
            CONTINUE WHEN d.canary_version IS NULL;
            pol := @extschema@.effective_policy(m.name);
            pct := (pol->'rollback'->>'latency_percentile')::float8 / 100;
            -- the canary's time: since it was promoted; the step's: since the last change of traffic
            SELECT max(l.at) INTO since FROM @extschema@.log l
             WHERE l.model = m.name AND l.version = d.canary_version AND l.event = 'promoted';
            SELECT max(l.at) INTO step_since FROM @extschema@.log l
             WHERE l.model = m.name AND l.version = d.canary_version
               AND l.event IN ('promoted', 'advanced', 'traffic_changed');

            -- canary and production over the canary's time so far, each row
            -- {n, error_rate, latency, metric}
            src := @extschema@._source_from('guard_rollouts', m);
            metric := CASE m.task WHEN 'binary_classification' THEN '@extschema@.auc(p.score, o.label)'
                                  ELSE '-@extschema@.rmse(p.score, o.actual)' END;
            SELECT * INTO c FROM jsonb_to_record(@extschema@._read(m, format(query, pct, metric, src, m.name, d.canary_version, since, at)))
                AS x(n bigint, error_rate float8, latency float8, metric float8);
            SELECT * INTO p FROM jsonb_to_record(@extschema@._read(m, format(query, pct, metric, src, m.name, d.production_version, since, at)))
                AS x(n bigint, error_rate float8, latency float8, metric float8);

            model := m.name;
            canary := d.canary_version;
            why := NULL;
            -- The owner's rollback checks ("three critical feedback labels
            -- within an hour") act at once, however few predictions the
            -- canary has; one that fails keeps the canary where it is.
            check_failed := NULL;
            FOR owner_check IN SELECT e.key, e.value #>> '{}' AS query
                                 FROM jsonb_each(coalesce(pol->'rollback'->'checks', '{}')) e ORDER BY e.key LOOP
                SELECT * INTO outcome FROM @extschema@._run_owner_check(m.owner, owner_check.query);
                IF outcome.error IS NOT NULL THEN
                    check_failed := coalesce(check_failed || '; ', '')
                                    || format('rollback check %s %s', owner_check.key, outcome.error);
                ELSIF outcome.result AND why IS NULL THEN
                    why := format('rollback check %s returned true', owner_check.key);
                END IF;
            END LOOP;
            IF why IS NOT NULL THEN
                decision := 'rollback';
                reason := why;
                PERFORM @extschema@.rollback(m.name, 'rollout guard: ' || why);
            ELSIF check_failed IS NOT NULL THEN
                decision := 'hold';
                reason := check_failed;
            ELSIF c.n < (pol->'rollback'->>'min_predictions')::float8 THEN
                decision := 'wait';
                reason := format('%s of %s predictions needed to judge the canary', c.n, pol->'rollback'->>'min_predictions');
            ELSE
                IF c.error_rate > (pol->'rollback'->>'max_error_rate')::float8 THEN
                    why := format('error rate %s > %s', round(c.error_rate::numeric, 4), pol->'rollback'->>'max_error_rate');
                ELSIF p.latency > 0 AND c.latency > p.latency * (1 + (pol->'rollback'->>'max_latency_increase')::float8) THEN
                    why := format('p%s latency %s ms > %s ms (production %s ms + %s%%)', pol->'rollback'->>'latency_percentile',
                                  round(c.latency::numeric, 1),
                                  round((p.latency * (1 + (pol->'rollback'->>'max_latency_increase')::float8))::numeric, 1),
                                  round(p.latency::numeric, 1),
                                  round(100 * (pol->'rollback'->>'max_latency_increase')::numeric));
                ELSIF pol->'rollback' ? 'max_metric_drop' AND c.metric IS NOT NULL AND p.metric IS NOT NULL
                      AND c.metric < p.metric - (pol->'rollback'->>'max_metric_drop')::float8 THEN
                    why := format('%s %s below production %s by more than %s',
                                  CASE m.task WHEN 'binary_classification' THEN 'AUC' ELSE '-RMSE' END,
                                  round(c.metric::numeric, 4), round(p.metric::numeric, 4),
                                  pol->'rollback'->>'max_metric_drop');
                END IF;
                IF why IS NOT NULL THEN
                    decision := 'rollback';
                    reason := why;
                    PERFORM @extschema@.rollback(m.name, 'rollout guard: ' || why);
                ELSE
                    steps := pol->'rollout'->'steps';
                    SELECT min(i) - 1 INTO step_index
                      FROM jsonb_array_elements_text(steps) WITH ORDINALITY AS s(v, i) WHERE v::numeric >= d.canary_percent;
                    dwell := coalesce((pol->'rollout'->'dwell'->>step_index)::interval, interval '0');
                    IF at - step_since >= dwell THEN
                        decision := 'advance';
                        reason := format('healthy for %s at %s%%',
                                         @extschema@._duration(at - step_since), trim_scale(d.canary_percent));
                        PERFORM @extschema@.advance(m.name);
                    ELSE
                        decision := 'hold';
                        reason := format('healthy; %s of %s at %s%% so far',
                                         @extschema@._duration(at - step_since), @extschema@._duration(dwell),
                                         trim_scale(d.canary_percent));
                    END IF;
                END IF;
            END IF;
            PERFORM @extschema@._log(m.name, d.canary_version, 'guard',
                jsonb_build_object('decision', decision, 'reason', reason,
                                   'canary', jsonb_build_object('n', c.n, 'error_rate', c.error_rate, 'latency', c.latency, 'metric', c.metric),
                                   'production', jsonb_build_object('n', p.n, 'error_rate', p.error_rate, 'latency', p.latency, 'metric', p.metric)));
            RETURN NEXT;
        EXCEPTION WHEN OTHERS THEN
            -- one model's failure is logged and skipped; the others go on
            model := d.model;
            canary := d.canary_version;
            decision := 'error';
            reason := SQLERRM;
            PERFORM @extschema@._log(d.model, d.canary_version, 'guard_failed',
                                     jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
            RETURN NEXT;
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.guard_rollouts(timestamptz) IS
    'For each running canary: roll back on error rate, latency or metric limits of the policy or when one of the owner''s rollback checks returns true, advance after the step''s dwell time when healthy, else hold; every decision logged';
