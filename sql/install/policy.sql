-- The policy document: one jsonb object per model, one validator
-- (_check_policy, one function per section), and the defaults in one place
-- (_policy_defaults), merged when read (effective_policy).

-- @replace

-- The default of every policy key, and the only place retrain keeps one:
-- effective_policy() merges them under what a model's policy sets, so a key
-- added later has its default for every existing model, and check(), the
-- rollout guard, the queue and the validators read the effective policy.
-- "triggers" holds the defaults of each trigger's settings, merged only
-- under the triggers a policy names (a trigger is on when it is named).
CREATE OR REPLACE FUNCTION @extschema@._policy_defaults()
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '{
      "gates": [],
      "approvals": {},
      "rollout": {"steps": [10, 50, 100]},
      "rollback": {"max_error_rate": 0.02, "max_latency_increase": 0.5, "latency_percentile": 99,
                   "min_predictions": 100, "max_invalid_rate": 0, "watch": "24 hours"},
      "triggers": {
        "drift": {"psi": 0.25, "aggregate": "max", "share": 0.5, "window": "7 days", "priority": "high"},
        "performance": {"min_labels": 100, "threshold": 0.5, "window": "7 days", "priority": "high"},
        "confidence": {"window": "7 days", "priority": "normal"},
        "data_growth": {"priority": "normal"},
        "schedule": {"priority": "normal"},
        "feature_change": {"min_share": 0.5, "window": "1 day", "priority": "normal"}
      },
      "eligibility": {"min_new_labels": 0},
      "requests": {"claim_timeout": "1 hour", "cooldown": "7 days", "retry_backoff": "1 hour", "max_failures": 3},
      "search_path": [],
      "versions": {},
      "lineage": {"required": []},
      "results": {"retention": "30 days", "health_window": "1 hour"},
      "rollups": {"enabled": true, "bucket": "1 hour", "settle": "5 minutes"}
    }'::jsonb;
COMMENT ON FUNCTION @extschema@._policy_defaults() IS
    'The default of every policy key, merged by effective_policy() (internal)';

-- A section of the defaults that is an object is merged key by key under
-- the same section of the policy; any other section the policy sets
-- replaces the default whole.  Each trigger the policy names gets that
-- trigger's defaults under its own settings.  In C (src/policy.c): the
-- cycle asks for a model's policy several times a model.
CREATE OR REPLACE FUNCTION @extschema@._merge_policy(defaults jsonb, policy jsonb)
    RETURNS jsonb
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_merge_policy';
COMMENT ON FUNCTION @extschema@._merge_policy(jsonb, jsonb) IS
    'A policy document with the defaults merged under it, section by section and trigger by trigger (internal)';

-- SECURITY DEFINER to call the internal functions above; it reads nothing
-- PUBLIC may not read.
-- plpgsql for the plan kept across calls.
CREATE OR REPLACE FUNCTION @extschema@.effective_policy(model text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT @extschema@._merge_policy(@extschema@._policy_defaults(), m.policy)
              FROM @extschema@.models m
             WHERE m.name = effective_policy.model);
END
$$;
COMMENT ON FUNCTION @extschema@.effective_policy(text) IS
    'A model''s policy with the defaults filled in for every key it does not set';

-- Every interval of a policy (windows, dwell, claim_timeout, cooldown, a
-- schedule's interval) lies between 1 second and 10 years, with one sign
-- throughout: "1 day -23 hours" is refused rather than read as an hour.
-- Plain SQL without an exception handler: _valid_schedule() calls it from
-- schedule_occurrence(), which is PARALLEL SAFE.
CREATE OR REPLACE FUNCTION @extschema@._interval_in_bounds(i interval)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT i BETWEEN interval '1 second' AND interval '10 years'
                   AND NOT (greatest(m, d, t) > 0 AND least(m, d, t) < 0)
              FROM (SELECT sign(extract(year FROM i) * 12 + extract(month FROM i)) AS m,
                           sign(extract(day FROM i)) AS d,
                           sign(extract(hour FROM i) * 3600 + extract(minute FROM i) * 60 + extract(second FROM i)) AS t) x);
COMMENT ON FUNCTION @extschema@._interval_in_bounds(interval) IS
    'Whether an interval lies between 1 second and 10 years with one sign throughout (internal)';

CREATE OR REPLACE FUNCTION @extschema@._valid_interval(value text)
    RETURNS boolean LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._interval_in_bounds(value::interval);
EXCEPTION WHEN others THEN
    -- text that is no interval at all
    RETURN false;
END
$$;
COMMENT ON FUNCTION @extschema@._valid_interval(text) IS
    'Whether text is an interval a policy may hold: 1 second to 10 years, one sign (internal)';

-- A schedule is one of four shapes (see docs/triggers.md), with valid
-- values: set_policy() refuses others, and schedule_occurrence() too.
-- Plain SQL, no exception handler: schedule_occurrence() is PARALLEL SAFE,
-- and a parallel worker may not start the subtransaction a handler needs.
-- (Interval text that is no interval at all fails in its cast, with
-- PostgreSQL's own message; set_policy() has refused it before.)
CREATE OR REPLACE FUNCTION @extschema@._valid_schedule(schedule jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN jsonb_typeof(schedule) IS DISTINCT FROM 'object'
          OR EXISTS (SELECT 1 FROM jsonb_each(schedule) k
                      WHERE k.key NOT IN ('every', 'weekday', 'nth', 'day', 'at', 'interval', 'priority')
                         OR (k.key IN ('nth', 'day') AND jsonb_typeof(k.value) <> 'number')
                         OR (k.key IN ('every', 'weekday', 'at', 'interval') AND jsonb_typeof(k.value) <> 'string')
                         -- the trigger's own setting beside its schedule
                         OR (k.key = 'priority' AND NOT coalesce(k.value #>> '{}', '') IN ('high', 'normal', 'low')))
          OR (schedule ? 'weekday' AND NOT schedule->>'weekday' = ANY (ARRAY['sunday', 'monday', 'tuesday', 'wednesday',
                                                                           'thursday', 'friday', 'saturday']))
          OR (schedule ? 'at' AND schedule->>'at' !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$')
            THEN false
        WHEN schedule ? 'interval'
            THEN NOT schedule ?| ARRAY['every', 'weekday', 'nth', 'day', 'at']
                 AND @extschema@._interval_in_bounds((schedule->>'interval')::interval)
        WHEN schedule->>'every' = 'week'
            THEN schedule ? 'weekday' AND NOT schedule ?| ARRAY['nth', 'day']
        WHEN schedule->>'every' = 'month'
            THEN (schedule ? 'weekday' AND schedule ? 'nth' AND NOT schedule ? 'day'
                  AND (schedule->>'nth')::numeric IN (1, 2, 3, 4, 5))
              OR (schedule ? 'day' AND NOT schedule ?| ARRAY['weekday', 'nth']
                  AND (schedule->>'day')::numeric BETWEEN 1 AND 28 AND (schedule->>'day')::numeric % 1 = 0)
        ELSE false
    END
$$;
COMMENT ON FUNCTION @extschema@._valid_schedule(jsonb) IS 'Whether a schedule document is valid (internal)';

CREATE OR REPLACE FUNCTION @extschema@._schedule_hint()
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 'A schedule is {"every": "week", "weekday": "sunday", "at": "02:00"}, {"every": "month", "weekday": "tuesday", "nth": 2, "at": "02:00"}, {"every": "month", "day": 1}, or {"interval": "3 months"} (since the last training); times are UTC. The trigger takes one or an array; each may add "from" and "until" (a time, or an interval after the first production release), "remind_before" (an interval), "priority" and, in an array, "name".';
COMMENT ON FUNCTION @extschema@._schedule_hint() IS 'The hint of an invalid schedule''s error (internal)';

-- The triggers of a policy: which keys each takes, and of what kind.
CREATE OR REPLACE FUNCTION @extschema@._check_triggers(triggers jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec jsonb := '{
      "drift":          {"psi": "positive", "aggregate": ["max", "mean", "share"], "share": "fraction", "window": "interval",
                         "priority": ["high", "normal", "low"]},
      "performance":    {"metric": ["auc", "f1", "precision", "recall", "accuracy", "brier", "log_loss", "mae", "rmse"],
                         "max_drop": "number", "max_relative_drop": "number", "min_labels": "number",
                         "window": "interval", "threshold": "fraction",
                         "priority": ["high", "normal", "low"]},
      "data_growth":    {"share": "positive", "count": "positive", "priority": ["high", "normal", "low"]},
      "schedule":       {"every": ["week", "month"], "weekday": ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
                         "nth": "positive", "day": "positive", "at": "time", "interval": "interval",
                         "priority": ["high", "normal", "low"]},
      "confidence":     {"min": "fraction", "window": "interval", "priority": ["high", "normal", "low"]},
      "feature_change": {"min_share": "fraction", "window": "interval", "priority": ["high", "normal", "low"]}
    }';
    t record;
    k record;
    kind jsonb;
    ok boolean;
BEGIN
    IF jsonb_typeof(triggers) <> 'object' THEN
        RAISE EXCEPTION 'retrain.set_policy: triggers must be an object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR t IN SELECT * FROM jsonb_each(triggers) LOOP
        IF NOT spec ? t.key THEN
            RAISE EXCEPTION 'retrain.set_policy: unknown trigger "%"', t.key
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Valid triggers: %s.', (SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(spec) x));
        END IF;
        IF t.key = 'schedule' THEN
            -- one schedule or several, each with its phase and reminder
            PERFORM @extschema@._check_schedules(t.value);
            CONTINUE;
        END IF;
        IF jsonb_typeof(t.value) <> 'object' THEN
            RAISE EXCEPTION 'retrain.set_policy: trigger "%" must be an object', t.key USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR k IN SELECT * FROM jsonb_each(t.value) LOOP
            kind := spec->t.key->k.key;
            ok := CASE
                WHEN kind IS NULL THEN false
                WHEN jsonb_typeof(kind) = 'array' THEN kind @> jsonb_build_array(k.value)
                WHEN kind #>> '{}' = 'number' THEN jsonb_typeof(k.value) = 'number' AND (k.value #>> '{}')::numeric >= 0
                WHEN kind #>> '{}' = 'positive' THEN jsonb_typeof(k.value) = 'number' AND (k.value #>> '{}')::numeric > 0
                WHEN kind #>> '{}' = 'fraction' THEN jsonb_typeof(k.value) = 'number' AND (k.value #>> '{}')::numeric BETWEEN 0 AND 1
                WHEN kind #>> '{}' = 'interval' THEN jsonb_typeof(k.value) = 'string' AND @extschema@._valid_interval(k.value #>> '{}')
                WHEN kind #>> '{}' = 'time' THEN jsonb_typeof(k.value) = 'string' AND k.value #>> '{}' ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
            END;
            IF NOT coalesce(ok, false) THEN
                RAISE EXCEPTION 'retrain.set_policy: trigger "%": invalid % %', t.key, k.key, k.value
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = format('Valid keys of "%s": %s.', t.key,
                                          coalesce((SELECT string_agg(x.key || ' (' || (x.value #>> '{}') || ')', ', ' ORDER BY x.key)
                                                      FROM jsonb_each(spec->t.key) x), 'none'));
            END IF;
        END LOOP;
    END LOOP;
    IF triggers ? 'performance' AND NOT (triggers->'performance' ? 'metric'
           AND (triggers->'performance' ? 'max_drop' OR triggers->'performance' ? 'max_relative_drop')) THEN
        RAISE EXCEPTION 'retrain.set_policy: trigger "performance" needs a metric and max_drop or max_relative_drop'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF triggers ? 'data_growth' AND NOT (triggers->'data_growth' ?| ARRAY['share', 'count']) THEN
        RAISE EXCEPTION 'retrain.set_policy: trigger "data_growth" needs share or count' USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_triggers(jsonb) IS 'The validator of a policy''s triggers (internal)';

-- The schedules of a schedule trigger, each under the name check(), the
-- log and trigger_state know it by: "schedule" for the one schedule of an
-- object; "schedule:<name>", or "schedule[<n>]" (its place, from 1) for
-- the entries of an array.
CREATE OR REPLACE FUNCTION @extschema@._schedule_entries(schedule jsonb)
    RETURNS TABLE (label text, entry jsonb)
    -- plpgsql: planned once a session (see _training_failures)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT 'schedule'::text, _schedule_entries.schedule WHERE jsonb_typeof(_schedule_entries.schedule) = 'object'
    UNION ALL
    SELECT coalesce('schedule:' || (x.e->>'name'), format('schedule[%s]', x.o)), x.e
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(_schedule_entries.schedule) = 'array'
                                     THEN _schedule_entries.schedule ELSE '[]' END)
           WITH ORDINALITY x(e, o);
END
$$;
COMMENT ON FUNCTION @extschema@._schedule_entries(jsonb) IS
    'The schedules of a schedule trigger (one object or an array) with the name each is known by (internal)';

-- Where a phase of a schedule starts or ends: a time ("2026-07-01",
-- "2026-07-01T00:00Z"), or an interval after the model's first production
-- release ("3 months").  A time starts with its year; like every time of a
-- schedule it is UTC unless it names its zone, and calendar arithmetic is
-- done in UTC, whatever the session's TimeZone.
CREATE OR REPLACE FUNCTION @extschema@._phase_bound(bound text, first_release timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN bound IS NULL THEN NULL
                WHEN bound ~ '^[0-9]{4}-' AND bound ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN bound::timestamptz
                WHEN bound ~ '^[0-9]{4}-' THEN bound::timestamp AT TIME ZONE 'UTC'
                ELSE ((first_release AT TIME ZONE 'UTC') + bound::interval) AT TIME ZONE 'UTC' END;
COMMENT ON FUNCTION @extschema@._phase_bound(text, timestamptz) IS
    'A schedule phase''s from or until as a time: absolute, or an interval after the first production release (internal)';

-- A schedule entry's own keys, beside the schedule proper.
CREATE OR REPLACE FUNCTION @extschema@._bare_schedule(entry jsonb)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN entry - 'from' - 'until' - 'remind_before' - 'name' - 'priority';
COMMENT ON FUNCTION @extschema@._bare_schedule(jsonb) IS
    'A schedule entry without its phase, reminder, name and priority: what schedule_occurrence() takes (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_schedules(schedule jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record;
    b text;
    bounds jsonb;
BEGIN
    IF jsonb_typeof(schedule) = 'array' AND jsonb_array_length(schedule) = 0
       OR jsonb_typeof(schedule) NOT IN ('object', 'array') THEN
        RAISE EXCEPTION 'retrain.set_policy: trigger "schedule" must be a schedule or a non-empty array of schedules, not %', schedule
            USING ERRCODE = 'invalid_parameter_value', HINT = @extschema@._schedule_hint();
    END IF;
    IF (SELECT count(DISTINCT x.label) <> count(*) FROM @extschema@._schedule_entries(schedule) x) THEN
        RAISE EXCEPTION 'retrain.set_policy: two schedules have the same name in %', schedule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR e IN SELECT * FROM @extschema@._schedule_entries(schedule) LOOP
        IF jsonb_typeof(e.entry) <> 'object' OR NOT @extschema@._valid_schedule(@extschema@._bare_schedule(e.entry))
           OR (e.entry ? 'priority' AND NOT coalesce(e.entry->>'priority', '') IN ('high', 'normal', 'low'))
           OR (e.entry ? 'name' AND coalesce(e.entry->>'name', '') !~ '^[a-z][a-z0-9_]*$')
           OR (e.entry ? 'name' AND jsonb_typeof(schedule) = 'object')
           OR (e.entry ? 'remind_before' AND (jsonb_typeof(e.entry->'remind_before') <> 'string'
                                              OR @extschema@._valid_interval(e.entry->>'remind_before') IS NOT TRUE)) THEN
            RAISE EXCEPTION 'retrain.set_policy: invalid schedule %', e.entry
                USING ERRCODE = 'invalid_parameter_value', HINT = @extschema@._schedule_hint();
        END IF;
        bounds := '{}';
        FOREACH b IN ARRAY ARRAY['from', 'until'] LOOP
            CONTINUE WHEN NOT e.entry ? b;
            BEGIN
                IF jsonb_typeof(e.entry->b) <> 'string'
                   OR (e.entry->>b !~ '^[0-9]{4}-' AND NOT @extschema@._valid_interval(e.entry->>b)) THEN
                    RAISE invalid_parameter_value;
                END IF;
                -- relative bounds compare as if the first release were at the epoch
                bounds := bounds || jsonb_build_object(b, @extschema@._phase_bound(e.entry->>b, 'epoch'));
            EXCEPTION WHEN invalid_parameter_value OR invalid_datetime_format OR datetime_field_overflow THEN
                RAISE EXCEPTION 'retrain.set_policy: schedule % must be a time or an interval after the first production release, not %',
                                b, e.entry->b
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'For example "from": "2026-07-01" or "until": "3 months".';
            END;
        END LOOP;
        IF (e.entry->>'from' ~ '^[0-9]{4}-') IS NOT DISTINCT FROM (e.entry->>'until' ~ '^[0-9]{4}-')
           AND (bounds->>'from')::timestamptz >= (bounds->>'until')::timestamptz THEN
            RAISE EXCEPTION 'retrain.set_policy: schedule from (%) must come before until (%)', e.entry->>'from', e.entry->>'until'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._check_schedules(jsonb) IS
    'The validator of a schedule trigger: one schedule or several, with phases (from, until), reminders and names (internal)';

-- One validator per section of the policy: each refuses what its section
-- may not hold, with the section's valid shape in the message.

-- One simple gate: a metric, an operator and exactly one of value, relative
-- (added to production's metric) or ratio (production's metric times it).
CREATE OR REPLACE FUNCTION @extschema@._valid_gate(g jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN jsonb_typeof(g) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(g) x WHERE x NOT IN ('metric', 'op', 'value', 'relative', 'ratio'))
       AND jsonb_typeof(g->'metric') = 'string'
       AND coalesce(g->>'op', '') IN ('>=', '>', '<=', '<')
       AND (g ? 'value')::integer + (g ? 'relative')::integer + (g ? 'ratio')::integer = 1
       AND jsonb_typeof(coalesce(g->'value', g->'relative', g->'ratio')) = 'number'
       AND (NOT g ? 'ratio' OR (g->>'ratio')::numeric > 0);
COMMENT ON FUNCTION @extschema@._valid_gate(jsonb) IS 'Whether a jsonb value is one simple gate (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_gates(gates jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g jsonb;
BEGIN
    IF jsonb_typeof(gates) <> 'array' THEN
        RAISE EXCEPTION 'retrain.set_policy: gates must be an array of gates'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR g IN SELECT * FROM jsonb_array_elements(gates) LOOP
        -- a simple gate; or {"any": [...]} of simple gates and at most one
        -- more level of "any"
        IF NOT (@extschema@._valid_gate(g)
                OR (jsonb_typeof(g) = 'object' AND (SELECT array_agg(k) FROM jsonb_object_keys(g) k) = '{any}'
                    AND jsonb_typeof(g->'any') = 'array' AND jsonb_array_length(g->'any') > 0
                    AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(g->'any') a
                                     WHERE NOT (@extschema@._valid_gate(a)
                                                OR (jsonb_typeof(a) = 'object'
                                                    AND (SELECT array_agg(k) FROM jsonb_object_keys(a) k) = '{any}'
                                                    AND jsonb_typeof(a->'any') = 'array' AND jsonb_array_length(a->'any') > 0
                                                    AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(a->'any') b
                                                                     WHERE NOT @extschema@._valid_gate(b))))))) THEN
            RAISE EXCEPTION 'retrain.set_policy: invalid gate %', g
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A gate is {"metric": name, "op": ">=" | ">" | "<=" | "<", and "value": number (absolute), "relative": number (added to production''s metric) or "ratio": number > 0 (times production''s metric)}, or {"any": [gate, ...]} (one passing is enough; an "any" may hold one more level of "any").';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._check_gates(jsonb) IS 'The validator of a policy''s gates (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_approvals(approvals jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    IF jsonb_typeof(approvals) <> 'object' THEN
        RAISE EXCEPTION 'retrain.set_policy: approvals must map each capacity to a role'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR c IN SELECT * FROM jsonb_each(approvals) LOOP
        IF jsonb_typeof(c.value) <> 'string' OR to_regrole(quote_ident(c.value #>> '{}')) IS NULL THEN
            RAISE EXCEPTION 'retrain.set_policy: the role of capacity "%" must be an existing role, not %', c.key, c.value
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._check_approvals(jsonb) IS 'The validator of a policy''s approvals (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_rollout(rollout jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    steps jsonb := rollout->'steps';
    i integer;
    cur numeric;
    prev numeric := 0;
BEGIN
    IF jsonb_typeof(rollout) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(rollout) x WHERE x NOT IN ('steps', 'dwell', 'shadow_min')) THEN
        RAISE EXCEPTION 'retrain.set_policy: rollout must be an object with steps (and dwell, shadow_min)'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid keys: steps, dwell, shadow_min.';
    END IF;
    IF rollout ? 'shadow_min' AND (jsonb_typeof(rollout->'shadow_min') <> 'string'
                                   OR @extschema@._valid_interval(rollout->>'shadow_min') IS NOT TRUE) THEN
        RAISE EXCEPTION 'retrain.set_policy: rollout shadow_min must be an interval, not %', rollout->'shadow_min'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For a week in shadow before any traffic: "shadow_min": "7 days".';
    END IF;
    IF steps IS NOT NULL THEN
        IF jsonb_typeof(steps) <> 'array' OR jsonb_array_length(steps) = 0
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(steps) e
                       WHERE jsonb_typeof(e) <> 'number' OR (e #>> '{}')::numeric <= 0
                          OR (e #>> '{}')::numeric > 100)
           OR (steps->-1 #>> '{}')::numeric <> 100 THEN
            RAISE EXCEPTION 'retrain.set_policy: rollout steps must be percentages in (0, 100], rising, ending at 100, not %', steps
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- traffic is kept to two decimals: steps must differ there, and the
        -- first must not round to 0
        FOR i IN 0 .. jsonb_array_length(steps) - 1 LOOP
            cur := round((steps->i #>> '{}')::numeric, 2);
            IF cur <= prev THEN
                RAISE EXCEPTION 'retrain.set_policy: rollout steps must rise by at least 0.01 (traffic is kept to two decimals), not %', steps
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            prev := cur;
        END LOOP;
    END IF;
    -- dwell: how long each step before the last must stay healthy
    IF rollout ? 'dwell' THEN
        steps := coalesce(steps, @extschema@._policy_defaults()->'rollout'->'steps');
        IF jsonb_typeof(rollout->'dwell') <> 'array'
           OR jsonb_array_length(rollout->'dwell') <> jsonb_array_length(steps) - 1
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(rollout->'dwell') e
                       WHERE jsonb_typeof(e) <> 'string'
                          OR @extschema@._valid_interval(e #>> '{}') IS NOT TRUE) THEN
            RAISE EXCEPTION 'retrain.set_policy: rollout dwell must give an interval for each step before the last, not %',
                rollout->'dwell'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For steps [10, 50, 100]: "dwell": ["1 day", "2 days"].';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_rollout(jsonb) IS 'The validator of a policy''s rollout steps and dwell (internal)';

-- Data-quality limits: shares in [0, 1] and what exceeding them does.
CREATE OR REPLACE FUNCTION @extschema@._valid_quality_limits(limits jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN jsonb_typeof(limits) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(limits) l
                        WHERE CASE l.key
                              WHEN 'action' THEN NOT coalesce(l.value #>> '{}', '') IN ('warn', 'block')
                              WHEN 'max_missing_share' THEN jsonb_typeof(l.value) <> 'number'
                                                            OR (l.value #>> '{}')::numeric NOT BETWEEN 0 AND 1
                              WHEN 'max_out_of_range_share' THEN jsonb_typeof(l.value) <> 'number'
                                                                 OR (l.value #>> '{}')::numeric NOT BETWEEN 0 AND 1
                              ELSE true END);
COMMENT ON FUNCTION @extschema@._valid_quality_limits(jsonb) IS 'Whether a jsonb value holds valid data-quality limits (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_eligibility(eligibility jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(eligibility) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(eligibility) e
                   WHERE e.key NOT IN ('min_new_labels', 'max_label_delay', 'checks', 'data_quality')
                      OR (e.key = 'min_new_labels'
                          AND (jsonb_typeof(e.value) <> 'number' OR (e.value #>> '{}')::numeric < 0))
                      OR (e.key = 'max_label_delay'
                          AND (jsonb_typeof(e.value) <> 'string' OR @extschema@._valid_interval(e.value #>> '{}') IS NOT TRUE))
                      OR (e.key = 'checks' AND NOT @extschema@._valid_checks(e.value))) THEN
        RAISE EXCEPTION 'retrain.set_policy: invalid eligibility %', eligibility
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid keys: min_new_labels (a number >= 0), max_label_delay (an interval), checks (an object of lower-case names to boolean queries), data_quality.';
    END IF;
    IF eligibility ? 'data_quality' AND NOT (@extschema@._valid_quality_limits((eligibility->'data_quality') - 'window' - 'features')
           AND (NOT eligibility->'data_quality' ? 'window'
                OR (jsonb_typeof(eligibility->'data_quality'->'window') = 'string'
                    AND @extschema@._valid_interval(eligibility->'data_quality'->>'window')))
           AND jsonb_typeof(coalesce(eligibility->'data_quality'->'features', '{}')) = 'object'
           AND NOT EXISTS (SELECT 1 FROM jsonb_each(coalesce(eligibility->'data_quality'->'features', '{}')) f
                            WHERE f.key = '' OR NOT @extschema@._valid_quality_limits(f.value))) THEN
        RAISE EXCEPTION 'retrain.set_policy: invalid eligibility data_quality %', eligibility->'data_quality'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid keys: window (an interval), max_missing_share and max_out_of_range_share (numbers in [0, 1]), action ("warn" or "block"), and features (feature name -> the same limits).';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_eligibility(jsonb) IS 'The validator of a policy''s eligibility (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_rollback(rollback jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(rollback) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(rollback) e
                   WHERE CASE e.key
                         WHEN 'checks' THEN NOT @extschema@._valid_checks(e.value)
                         WHEN 'watch' THEN jsonb_typeof(e.value) <> 'string'
                                           OR @extschema@._valid_interval(e.value #>> '{}') IS NOT TRUE
                         WHEN 'metric' THEN NOT coalesce(e.value #>> '{}', '') IN ('auc', 'f1', 'precision', 'recall',
                                                                                   'accuracy', 'brier', 'log_loss',
                                                                                   'mae', 'rmse')
                         ELSE e.key NOT IN ('max_error_rate', 'max_latency_increase', 'latency_percentile',
                                            'max_metric_drop', 'min_predictions', 'max_invalid_rate')
                              OR jsonb_typeof(e.value) <> 'number' OR (e.value #>> '{}')::numeric < 0
                              OR (e.key = 'latency_percentile' AND (e.value #>> '{}')::numeric NOT BETWEEN 50 AND 100)
                              OR (e.key = 'max_invalid_rate' AND (e.value #>> '{}')::numeric > 1)
                         END) THEN
        RAISE EXCEPTION 'retrain.set_policy: invalid rollback limits %', rollback
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid keys (numbers >= 0): max_error_rate, max_latency_increase, latency_percentile (50 to 100), max_metric_drop, min_predictions, max_invalid_rate (0 to 1); watch (an interval); metric (auc, f1, precision, recall, accuracy, brier, log_loss, mae or rmse); and checks (an object of lower-case names to boolean queries).';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_rollback(jsonb) IS 'The validator of a policy''s rollback limits and checks (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_requests(requests jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(requests) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(requests) x
                   WHERE CASE x.key
                         WHEN 'max_failures' THEN jsonb_typeof(x.value) <> 'number'
                                                  OR (x.value #>> '{}')::numeric < 1 OR (x.value #>> '{}')::numeric % 1 <> 0
                         ELSE x.key NOT IN ('claim_timeout', 'cooldown', 'retry_backoff')
                              OR jsonb_typeof(x.value) <> 'string'
                              OR @extschema@._valid_interval(x.value #>> '{}') IS NOT TRUE
                         END) THEN
        RAISE EXCEPTION 'retrain.set_policy: requests must be {"claim_timeout": interval, "cooldown": interval, "retry_backoff": interval, "max_failures": n}, not %', requests
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid keys: claim_timeout, cooldown, retry_backoff (intervals from 1 second to 10 years), max_failures (a whole number >= 1).';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_requests(jsonb) IS 'The validator of a policy''s request queue settings (internal)';

-- Naming rules for versions and artifacts (regular expressions), and how
-- many versions to keep out of the archive.
CREATE OR REPLACE FUNCTION @extschema@._check_versions(versions jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    IF jsonb_typeof(versions) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(versions) x WHERE x NOT IN ('pattern', 'artifact_pattern', 'keep'))
       OR (versions ? 'keep' AND (jsonb_typeof(versions->'keep') <> 'number' OR (versions->>'keep')::numeric < 1
                                  OR (versions->>'keep')::numeric % 1 <> 0 OR (versions->>'keep')::numeric > 1000000)) THEN
        RAISE EXCEPTION 'retrain.set_policy: versions must be {"pattern": regex, "artifact_pattern": regex, "keep": n}, not %', versions
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid keys: pattern and artifact_pattern (regular expressions), keep (a whole number from 1).';
    END IF;
    FOREACH k IN ARRAY ARRAY['pattern', 'artifact_pattern'] LOOP
        CONTINUE WHEN NOT versions ? k;
        IF jsonb_typeof(versions->k) <> 'string' OR versions->>k = '' THEN
            RAISE EXCEPTION 'retrain.set_policy: versions.% must be a regular expression, not %', k, versions->k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            PERFORM '' ~ (versions->>k);
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'retrain.set_policy: versions.% is not a valid regular expression: %', k, SQLERRM
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._check_versions(jsonb) IS 'The validator of a policy''s versions rules (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_results(results jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(results) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(results) x WHERE x NOT IN ('retention', 'health_window'))
       OR EXISTS (SELECT 1 FROM jsonb_each(results) x
                   WHERE jsonb_typeof(x.value) <> 'string' OR @extschema@._valid_interval(x.value #>> '{}') IS NOT TRUE) THEN
        RAISE EXCEPTION 'retrain.set_policy: results must be {"retention": interval, "health_window": interval}, not %', results
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'retention: how long check_results keeps a model''s rows; health_window: how far back version_health counts; each from 1 second to 10 years (defaults "30 days", "1 hour").';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_results(jsonb) IS 'The validator of a policy''s results section (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_rollups(rollups jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(rollups) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(rollups) x
                   WHERE x.key NOT IN ('enabled', 'bucket', 'settle')
                      OR (x.key = 'enabled' AND jsonb_typeof(x.value) <> 'boolean')
                      OR (x.key <> 'enabled' AND (jsonb_typeof(x.value) <> 'string'
                                                  OR @extschema@._valid_interval(x.value #>> '{}') IS NOT TRUE))
                      OR (x.key = 'bucket' AND ((x.value #>> '{}')::interval > interval '1 day'
                                                OR extract(month FROM (x.value #>> '{}')::interval) <> 0))) THEN
        RAISE EXCEPTION 'retrain.set_policy: rollups must be {"enabled": boolean, "bucket": interval, "settle": interval}, not %', rollups
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'enabled: whether the cycle keeps rollups for the model (default true); bucket: the width of a rollup bucket, 1 second to 1 day (default "1 hour"); settle: how long rows may take to arrive before they are folded (default "5 minutes").';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_rollups(jsonb) IS 'The validator of a policy''s rollup settings (internal)';

CREATE OR REPLACE FUNCTION @extschema@._check_lineage(lineage jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(lineage) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(lineage) x WHERE x <> 'required')
       OR jsonb_typeof(lineage->'required') IS DISTINCT FROM 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(lineage->'required') r
                   WHERE jsonb_typeof(r) <> 'string'
                      OR r #>> '{}' NOT IN ('code_commit', 'seed', 'dataset_snapshot', 'data_snapshot', 'data_range',
                                            'features', 'params', 'artifacts')) THEN
        RAISE EXCEPTION 'retrain.set_policy: lineage must be {"required": [...]}, not %', lineage
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'required names any of code_commit, seed (seed or seeds), dataset_snapshot (or data_snapshot), data_range, features, params, artifacts.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_lineage(jsonb) IS 'The validator of a policy''s lineage requirements (internal)';

-- The schemas owner code may name without qualification.  None in which
-- PUBLIC may create objects: anyone could put a function or operator there
-- that the owner's checks would then run with the owner's rights.
CREATE OR REPLACE FUNCTION @extschema@._check_search_path(search_path jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
BEGIN
    IF jsonb_typeof(search_path) <> 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(search_path) e WHERE jsonb_typeof(e) <> 'string') THEN
        RAISE EXCEPTION 'retrain.set_policy: search_path must be an array of schema names, not %', search_path
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR s IN SELECT jsonb_array_elements_text(search_path) LOOP
        IF s IN ('pg_catalog', 'pg_temp') OR s LIKE 'pg\_temp\_%' OR s LIKE 'pg\_toast%' THEN
            RAISE EXCEPTION 'retrain.set_policy: search_path may not name %', s
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Owner code always searches pg_catalog first and pg_temp last.';
        END IF;
        IF to_regnamespace(quote_ident(s)) IS NULL THEN
            RAISE EXCEPTION 'retrain.set_policy: search_path names schema "%", which does not exist', s
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF has_schema_privilege('public', to_regnamespace(quote_ident(s)), 'CREATE') THEN
            RAISE EXCEPTION 'retrain.set_policy: search_path may not name schema "%": every role may create objects in it', s
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Another role could put a function or operator there that the owner''s checks would run with the owner''s rights.',
                      HINT = format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC, or name a schema only your team may create in.', s);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._check_search_path(jsonb) IS 'The validator of a policy''s search_path for owner code (internal)';

-- The policy's keys are the defaults' keys; each section has its validator.
CREATE OR REPLACE FUNCTION @extschema@._check_policy(policy jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    IF policy IS NULL OR jsonb_typeof(policy) <> 'object' THEN
        RAISE EXCEPTION 'retrain.set_policy: the policy must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(policy) LOOP
        IF NOT @extschema@._policy_defaults() ? k THEN
            RAISE EXCEPTION 'retrain.set_policy: unknown policy key "%"', k
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Valid keys: %s.', (SELECT string_agg(d, ', ' ORDER BY d)
                                                            FROM jsonb_object_keys(@extschema@._policy_defaults()) d));
        END IF;
    END LOOP;
    -- in this order, so that the first error reported stays the same
    FOREACH k IN ARRAY ARRAY['gates', 'approvals', 'rollout', 'triggers', 'eligibility', 'rollback', 'requests',
                             'search_path', 'versions', 'lineage', 'results', 'rollups'] LOOP
        IF policy ? k THEN
            EXECUTE format('SELECT @extschema@.%I($1)', '_check_' || k) USING policy->k;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._check_policy(jsonb) IS 'The policy validator: the keys, then each section''s validator (internal)';

-- What a new policy takes away from the old one: removed or changed gates,
-- removed or reassigned sign-offs.  Logged with both documents, so that
-- loosening a release's controls is never silent.
CREATE OR REPLACE FUNCTION @extschema@._relaxed(before jsonb, after jsonb)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN coalesce((SELECT jsonb_agg(item ORDER BY item) FROM (
        SELECT 'gate removed or changed: ' || g::text AS item
          FROM jsonb_array_elements(coalesce(before->'gates', '[]')) g
         WHERE NOT coalesce(after->'gates', '[]') @> jsonb_build_array(g)
        UNION ALL
        SELECT format('sign-off removed or reassigned: %s (%s)', c.key, c.value #>> '{}')
          FROM jsonb_each(coalesce(before->'approvals', '{}')) c
         WHERE coalesce(after->'approvals'->c.key, 'null') <> c.value) x), '[]');
COMMENT ON FUNCTION @extschema@._relaxed(jsonb, jsonb) IS
    'The gates and sign-offs a new policy removes or changes (internal)';

-- A model's policy is its owner's: the checks in it run with the owner's
-- privileges, and its gates and sign-offs are what stands between a version
-- and production.  Only members of the owner role (or a superuser) set it
-- (_lock_model).
-- What only a model's task can tell: triggers and rollback metrics of the
-- other task would never be evaluated (a regression model has no
-- confidence, a classifier no RMSE).
CREATE OR REPLACE FUNCTION @extschema@._check_task_fit(task text, policy jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    classification text[] := '{auc, f1, precision, recall, accuracy, brier, log_loss}';
    regression text[] := '{mae, rmse, r2}';
    wrong text;
BEGIN
    wrong := CASE
        WHEN task = 'regression' AND policy->'triggers' ? 'confidence'
            THEN 'trigger "confidence" (a mean of max(p, 1 - p)) needs probabilities'
        WHEN task = 'regression' AND policy->'triggers'->'performance'->>'metric' = ANY (classification)
            THEN format('trigger "performance": metric "%s" is a classification metric',
                        policy->'triggers'->'performance'->>'metric')
        WHEN task = 'binary_classification' AND policy->'triggers'->'performance'->>'metric' = ANY (regression)
            THEN format('trigger "performance": metric "%s" is a regression metric',
                        policy->'triggers'->'performance'->>'metric')
        WHEN task = 'regression' AND policy->'rollback'->>'metric' = ANY (classification)
            THEN format('rollback.metric "%s" is a classification metric', policy->'rollback'->>'metric')
        WHEN task = 'binary_classification' AND policy->'rollback'->>'metric' = ANY (regression)
            THEN format('rollback.metric "%s" is a regression metric', policy->'rollback'->>'metric')
    END;
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.set_policy: % and the model is %', wrong,
                        replace(task, 'binary_classification', 'a binary classifier')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE task WHEN 'regression' THEN 'A regression model''s metrics: mae, rmse, r2.'
                                   ELSE 'A classifier''s metrics: auc, f1, precision, recall, accuracy, brier, log_loss.' END;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_task_fit(text, jsonb) IS
    'Refuse triggers and rollback metrics of a policy that do not fit the model''s task (internal)';

CREATE OR REPLACE FUNCTION @extschema@.set_policy(model text, policy jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    relaxed jsonb;
BEGIN
    m := @extschema@._lock_model('set_policy', model);
    PERFORM @extschema@._check_policy(policy);
    PERFORM @extschema@._check_task_fit(m.task, policy);
    relaxed := @extschema@._relaxed(m.policy, policy);
    UPDATE @extschema@.models mm SET policy = set_policy.policy WHERE mm.name = m.name;
    PERFORM @extschema@._log(m.name, NULL, 'policy_set',
                             jsonb_build_object('policy', policy, 'before', m.policy, 'relaxed', relaxed));
    RETURN @extschema@.effective_policy(m.name);
END
$$;
COMMENT ON FUNCTION @extschema@.set_policy(text, jsonb) IS
    'Validate and set a model''s policy document (gates, approvals, rollout, rollback, triggers, eligibility, requests, search_path); only members of the owner role may; returns the effective policy';

-- A policy's named checks: lower-case names to non-empty query strings.
CREATE OR REPLACE FUNCTION @extschema@._valid_checks(checks jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_typeof(checks) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(checks) q
                        WHERE q.key !~ '^[a-z][a-z0-9_]*$'
                           OR jsonb_typeof(q.value) <> 'string'
                           OR btrim(q.value #>> '{}') = '')
$$;
COMMENT ON FUNCTION @extschema@._valid_checks(jsonb) IS
    'Whether a policy''s named checks are an object of lower-case names to non-empty queries (internal)';
