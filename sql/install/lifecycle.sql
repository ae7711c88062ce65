-- The release lifecycle: what stands between a version and promotion,
-- promote (canary, blue-green, shadow), set_traffic, advance, rollback,
-- force, and the manifest of what serves.

-- @replace

-- What stands between a version and promotion: failed or missing gates,
-- missing sign-offs.
CREATE OR REPLACE FUNCTION @extschema@._missing_for_promotion(model text, version text)
    RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH policy AS (SELECT @extschema@.effective_policy(model) AS p),
    latest AS (
        SELECT max(e.evaluated_at) AS at FROM @extschema@.evaluations e
         WHERE e.model = _missing_for_promotion.model AND e.version = _missing_for_promotion.version
    )
    SELECT coalesce(array_agg(item ORDER BY ord, item), '{}') FROM (
        SELECT 1 AS ord, 'not evaluated' AS item
          FROM policy, latest WHERE jsonb_array_length(p->'gates') > 0 AND latest.at IS NULL
        UNION ALL
        SELECT 2, format('gate failed: %s (required %s, observed %s)', e.gate, e.required,
                         coalesce(e.observed::text, 'missing'))
          FROM @extschema@.evaluations e, latest
         WHERE e.model = _missing_for_promotion.model AND e.version = _missing_for_promotion.version
           AND e.evaluated_at = latest.at AND NOT e.passed
        UNION ALL
        SELECT 3, format('approval missing: %s (role %s)', c.key, c.value #>> '{}')
          FROM policy, jsonb_each(p->'approvals') c
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.approvals a
                            WHERE a.model = _missing_for_promotion.model
                              AND a.version = _missing_for_promotion.version AND a.capacity = c.key)
    ) missing
$$;
COMMENT ON FUNCTION @extschema@._missing_for_promotion(text, text) IS
    'The failed gates and missing approvals of a version (internal)';

CREATE OR REPLACE FUNCTION @extschema@._set_production(model text, version text, how text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    now_ timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = _set_production.model;
    UPDATE @extschema@.production_history h SET ended_at = now_, ended_by = how
     WHERE h.model = _set_production.model AND h.ended_at IS NULL;
    INSERT INTO @extschema@.production_history
    SELECT _set_production.model, coalesce(max(h.seq), 0) + 1, _set_production.version, now_, NULL, NULL
      FROM @extschema@.production_history h WHERE h.model = _set_production.model;
    IF d.production_version IS NOT NULL THEN
        UPDATE @extschema@.model_versions mv
           SET stage = CASE WHEN how = 'rolled_back' THEN 'rolled_back' ELSE 'previous' END
         WHERE mv.model = _set_production.model AND mv.version = d.production_version;
        -- only one standby
        UPDATE @extschema@.model_versions mv SET stage = 'retired'
         WHERE mv.model = _set_production.model AND mv.stage = 'previous'
           AND mv.version <> d.production_version;
    END IF;
    UPDATE @extschema@.model_versions mv SET stage = 'production'
     WHERE mv.model = _set_production.model AND mv.version = _set_production.version;
    UPDATE @extschema@.deployments dd
       SET previous_version = d.production_version, production_version = _set_production.version,
           canary_version = CASE WHEN d.canary_version = _set_production.version THEN NULL ELSE d.canary_version END,
           canary_percent = CASE WHEN d.canary_version = _set_production.version THEN 0 ELSE d.canary_percent END,
           shadow_version = CASE WHEN d.shadow_version = _set_production.version THEN NULL ELSE d.shadow_version END,
           updated_at = now_
     WHERE dd.model = _set_production.model;
END
$$;
COMMENT ON FUNCTION @extschema@._set_production(text, text, text) IS
    'Make a version production, keeping the one before as previous and the history (internal)';

CREATE OR REPLACE FUNCTION @extschema@.promote(model text, version text, strategy text DEFAULT 'canary',
                                    override_reason text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    v @extschema@.model_versions;
    d @extschema@.deployments;
    missing text[];
    first_step numeric;
    actor_ name := @extschema@._actor();
BEGIN
    m := @extschema@._lock_model('promote', model);
    v := @extschema@._version('promote', model, version);
    IF strategy IS NULL OR strategy NOT IN ('canary', 'blue_green', 'shadow') THEN
        RAISE EXCEPTION 'retrain.promote: strategy must be canary, blue_green or shadow, not %', coalesce(strategy, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = promote.model;
    IF d.production_version = version THEN
        RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is already in production', version, model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF strategy IN ('canary', 'blue_green') AND d.canary_version IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.promote: model "%" already has version "%" in canary', model, d.canary_version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Advance it to production or roll it back first.';
    END IF;

    missing := @extschema@._missing_for_promotion(model, version);
    IF cardinality(missing) > 0 THEN
        IF override_reason IS NULL THEN
            RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is not cleared for promotion', version, model
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = array_to_string(missing, '; '),
                      HINT = 'The model''s owner may override with a reason: promote(model, version, strategy, override_reason => ''...'').';
        END IF;
        IF NOT pg_has_role(actor_, m.owner, 'MEMBER') THEN
            RAISE EXCEPTION 'retrain.promote: only the owner of model "%" (%) may override, not %', model, m.owner, actor_
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;

    IF strategy = 'canary' THEN
        first_step := (@extschema@.effective_policy(model)->'rollout'->'steps'->>0)::numeric;
        IF first_step >= 100 THEN
            PERFORM @extschema@._set_production(model, version, 'replaced');
        ELSE
            UPDATE @extschema@.model_versions mv SET stage = 'canary'
             WHERE mv.model = promote.model AND mv.version = promote.version;
            UPDATE @extschema@.deployments dd
               SET canary_version = promote.version, canary_percent = first_step,
                   shadow_version = CASE WHEN dd.shadow_version = promote.version THEN NULL ELSE dd.shadow_version END,
                   updated_at = clock_timestamp()
             WHERE dd.model = promote.model;
        END IF;
    ELSIF strategy = 'blue_green' THEN
        PERFORM @extschema@._set_production(model, version, 'replaced');
    ELSE
        UPDATE @extschema@.model_versions mv SET stage = 'shadow'
         WHERE mv.model = promote.model AND mv.version = promote.version;
        UPDATE @extschema@.deployments dd SET shadow_version = promote.version, updated_at = clock_timestamp()
         WHERE dd.model = promote.model;
    END IF;

    PERFORM @extschema@._log(model, version, 'promoted',
        jsonb_build_object('strategy', strategy, 'canary_percent', first_step,
                           'override', cardinality(missing) > 0, 'override_reason', override_reason,
                           'missing', missing));
    RETURN strategy;
END
$$;
COMMENT ON FUNCTION @extschema@.promote(text, text, text, text) IS
    'Start a canary at the first rollout step, swap production at once (blue_green, the old version kept as previous), or start shadow scoring; refused until all gates passed and all capacities signed, unless the owner overrides with a reason';

CREATE OR REPLACE FUNCTION @extschema@.set_traffic(model text, percent numeric)
    RETURNS numeric
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
BEGIN
    PERFORM @extschema@._lock_model('set_traffic', model);
    IF percent IS NULL OR percent < 0 OR percent > 100 THEN
        RAISE EXCEPTION 'retrain.set_traffic: percent must be between 0 and 100, not %', coalesce(percent::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = set_traffic.model;
    IF d.canary_version IS NULL THEN
        RAISE EXCEPTION 'retrain.set_traffic: model "%" has no canary', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE @extschema@.deployments dd SET canary_percent = round(percent, 2), updated_at = clock_timestamp()
     WHERE dd.model = set_traffic.model;
    PERFORM @extschema@._log(model, d.canary_version, 'traffic_changed',
                             jsonb_build_object('from', d.canary_percent, 'to', round(percent, 2)));
    RETURN round(percent, 2);
END
$$;
COMMENT ON FUNCTION @extschema@.set_traffic(text, numeric) IS
    'Set the share of units routed to the canary (0 to 100, two decimals): the runbooks'' ML_ROLLOUT_PCT';

CREATE OR REPLACE FUNCTION @extschema@.advance(model text)
    RETURNS numeric
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    next_step numeric;
BEGIN
    PERFORM @extschema@._lock_model('advance', model);
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = advance.model;
    IF d.canary_version IS NULL THEN
        RAISE EXCEPTION 'retrain.advance: model "%" has no canary to advance', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT min(s::numeric) INTO next_step
      FROM jsonb_array_elements_text(@extschema@.effective_policy(model)->'rollout'->'steps') s
     WHERE s::numeric > d.canary_percent;
    IF next_step IS NULL OR next_step >= 100 THEN
        -- the last step: the canary becomes production
        PERFORM @extschema@._set_production(model, d.canary_version, 'replaced');
        next_step := 100;
    ELSE
        UPDATE @extschema@.deployments dd SET canary_percent = next_step, updated_at = clock_timestamp()
         WHERE dd.model = advance.model;
    END IF;
    PERFORM @extschema@._log(model, d.canary_version, 'advanced',
                             jsonb_build_object('from', d.canary_percent, 'to', next_step,
                                                'production', next_step >= 100));
    RETURN next_step;
END
$$;
COMMENT ON FUNCTION @extschema@.advance(text) IS
    'Move the canary to the policy''s next traffic step; past the last one (100) the canary becomes production. Returns the new percentage';

CREATE OR REPLACE FUNCTION @extschema@.rollback(model text, reason text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    target text;
BEGIN
    PERFORM @extschema@._lock_model('rollback', model);
    IF reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'retrain.rollback: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = rollback.model;
    IF d.canary_version IS NOT NULL THEN
        -- stop the running canary; production stays
        UPDATE @extschema@.model_versions mv SET stage = 'rolled_back'
         WHERE mv.model = rollback.model AND mv.version = d.canary_version;
        UPDATE @extschema@.deployments dd SET canary_version = NULL, canary_percent = 0, updated_at = clock_timestamp()
         WHERE dd.model = rollback.model;
        PERFORM @extschema@._log(model, d.canary_version, 'rolled_back',
                                 jsonb_build_object('reason', reason, 'what', 'canary', 'canary_percent', d.canary_percent,
                                                    'production', d.production_version));
        RETURN d.production_version;
    END IF;
    IF d.production_version IS NULL THEN
        RAISE EXCEPTION 'retrain.rollback: model "%" has nothing in production or canary to roll back', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the latest earlier production version not rolled back from
    SELECT h.version INTO target
      FROM @extschema@.production_history h
      JOIN @extschema@.model_versions mv ON mv.model = h.model AND mv.version = h.version
     WHERE h.model = rollback.model AND h.ended_at IS NOT NULL AND h.version <> d.production_version
       AND mv.stage <> 'rolled_back'
     ORDER BY h.seq DESC LIMIT 1;
    IF target IS NULL THEN
        RAISE EXCEPTION 'retrain.rollback: model "%" has no earlier production version to return to', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM @extschema@._set_production(model, target, 'rolled_back');
    PERFORM @extschema@._log(model, d.production_version, 'rolled_back',
                             jsonb_build_object('reason', reason, 'what', 'production', 'to', target));
    RETURN target;
END
$$;
COMMENT ON FUNCTION @extschema@.rollback(text, text) IS
    'Stop a running canary, or else return production to the version before it (repeatable, never to a version rolled back from); returns the version now in production';

CREATE OR REPLACE FUNCTION @extschema@.force(model text, mode text, until timestamptz DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._lock_model('force', model);
    IF mode IS NULL OR mode NOT IN ('auto', 'production', 'candidate', 'fallback') THEN
        RAISE EXCEPTION 'retrain.force: mode must be auto, production, candidate or fallback, not %', coalesce(mode, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF until IS NOT NULL AND until <= now() THEN
        RAISE EXCEPTION 'retrain.force: until (%) is not in the future', until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE @extschema@.deployments d
       SET mode = force.mode, mode_until = CASE WHEN force.mode = 'auto' THEN NULL ELSE force.until END,
           updated_at = clock_timestamp()
     WHERE d.model = force.model;
    PERFORM @extschema@._log(model, NULL, 'forced', jsonb_build_object('mode', mode, 'until', until));
    RETURN mode;
END
$$;
COMMENT ON FUNCTION @extschema@.force(text, text, timestamptz) IS
    'Override routing: auto, production (everyone gets production), candidate (everyone gets the canary), fallback (route() returns NULL); expires by itself at until';

CREATE OR REPLACE FUNCTION @extschema@.manifest(model text)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'model', m.name,
        'production', (SELECT jsonb_build_object('version', v.version, 'artifact_uri', v.artifact_uri,
                                                 'artifact_sha256', v.artifact_sha256, 'code_commit', v.code_commit,
                                                 'metrics', v.metrics)
                         FROM @extschema@.deployments d
                         JOIN @extschema@.model_versions v ON v.model = d.model AND v.version = d.production_version
                        WHERE d.model = m.name),
        'history', coalesce((SELECT jsonb_agg(jsonb_build_object('version', h.version,
                                                                 'artifact_sha256', v.artifact_sha256,
                                                                 'from', h.started_at, 'to', h.ended_at,
                                                                 'ended_by', h.ended_by) ORDER BY h.seq)
                               FROM @extschema@.production_history h
                               JOIN @extschema@.model_versions v ON v.model = h.model AND v.version = h.version
                              WHERE h.model = m.name), '[]'))
      FROM @extschema@.models m WHERE m.name = manifest.model
$$;
COMMENT ON FUNCTION @extschema@.manifest(text) IS
    'The production entry and the history of production versions with their SHA-256s, oldest first (manifest.history[n-1] is the one before the last)';
