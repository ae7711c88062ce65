-- The release lifecycle: what stands between a version and promotion,
-- promote (canary, blue-green, shadow), set_traffic, advance, rollback,
-- force, and the manifest of what serves.

-- @replace

-- What stands between a version and promotion: no evaluation on record,
-- gates that fail now (judged against the current production version and
-- policy: a stored evaluation may be of another production version, or of
-- gates since raised), sign-offs that are missing or were revoked by a
-- rollback of the version.  Without sign_offs, the gates only (a shadow
-- serves nobody and needs no sign-off).
CREATE OR REPLACE FUNCTION @extschema@._missing_for_promotion(model text, version text, sign_offs boolean)
    RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH policy AS (SELECT @extschema@.effective_policy(model) AS p)
    SELECT coalesce(array_agg(item ORDER BY ord, item), '{}') FROM (
        SELECT 1 AS ord, 'not evaluated' AS item
          FROM policy
         WHERE jsonb_array_length(p->'gates') > 0
           AND NOT EXISTS (SELECT 1 FROM @extschema@.evaluations e
                            WHERE e.model = _missing_for_promotion.model AND e.version = _missing_for_promotion.version)
        UNION ALL
        SELECT 2, CASE WHEN j.gate LIKE '%: any of %' THEN format('gate failed: %s, none passed', j.gate)
                       ELSE format('gate failed: %s (required %s, observed %s)', j.gate,
                                   coalesce(j.required::text, 'none'), coalesce(j.observed::text, 'missing')) END
          FROM @extschema@._judge_gates(model, version) j
         WHERE NOT j.passed AND j.decides
        UNION ALL
        SELECT 3, format('approval missing: %s (role %s)%s', c.key, c.value #>> '{}',
                         CASE WHEN EXISTS (SELECT 1 FROM @extschema@.approvals a
                                            WHERE a.model = _missing_for_promotion.model
                                              AND a.version = _missing_for_promotion.version AND a.capacity = c.key)
                              THEN ', revoked by the rollback of this version' ELSE '' END)
          FROM policy, jsonb_each(p->'approvals') c
         WHERE sign_offs
           AND NOT EXISTS (SELECT 1 FROM @extschema@.approvals a
                            WHERE a.model = _missing_for_promotion.model
                              AND a.version = _missing_for_promotion.version AND a.capacity = c.key
                              AND a.revoked_at IS NULL)
    ) missing
$$;
COMMENT ON FUNCTION @extschema@._missing_for_promotion(text, text, boolean) IS
    'What stands between a version and promotion now: no evaluation, gates failing against the current production version and policy, sign-offs missing or revoked (internal)';

-- rollout.shadow_min: how long a version must have scored in shadow before
-- it may serve anyone (canary or blue-green).  Nothing when the policy does
-- not ask for it.
CREATE OR REPLACE FUNCTION @extschema@._shadow_shortfall(model text, version text, d @extschema@.deployments)
    RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
           WHEN need IS NULL THEN '{}'::text[]
           WHEN d.shadow_version IS DISTINCT FROM version OR d.shadow_since IS NULL
               THEN ARRAY[format('not in shadow (rollout.shadow_min is %s)', written)]
           WHEN clock_timestamp() - d.shadow_since < need
               THEN ARRAY[format('in shadow for %s hours of the required %s (rollout.shadow_min)',
                                 round(extract(epoch FROM clock_timestamp() - d.shadow_since) / 3600, 1), written)]
           ELSE '{}'::text[] END
      FROM (SELECT w::interval AS need, w AS written
              FROM (SELECT @extschema@.effective_policy(model)->'rollout'->>'shadow_min' AS w) x) p
$$;
COMMENT ON FUNCTION @extschema@._shadow_shortfall(text, text, @extschema@.deployments) IS
    'Why a version has not yet served long enough in shadow for rollout.shadow_min, or nothing (internal)';

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
           SET stage = CASE WHEN how = 'rolled_back' THEN 'rolled_back' ELSE 'retired' END
         WHERE mv.model = _set_production.model AND mv.version = d.production_version;
    END IF;
    UPDATE @extschema@.model_versions mv SET stage = 'production'
     WHERE mv.model = _set_production.model AND mv.version = _set_production.version;
    UPDATE @extschema@.deployments dd
       SET production_version = _set_production.version,
           canary_version = CASE WHEN d.canary_version = _set_production.version THEN NULL ELSE d.canary_version END,
           canary_percent = CASE WHEN d.canary_version = _set_production.version THEN 0 ELSE d.canary_percent END,
           shadow_version = CASE WHEN d.shadow_version = _set_production.version THEN NULL ELSE d.shadow_version END,
           shadow_since = CASE WHEN d.shadow_version = _set_production.version THEN NULL ELSE d.shadow_since END,
           updated_at = now_
     WHERE dd.model = _set_production.model;
    PERFORM @extschema@._refresh_standby(_set_production.model);
END
$$;
COMMENT ON FUNCTION @extschema@._set_production(text, text, text) IS
    'Make a version production, the last good one before it as previous, and keep the history (internal)';

-- The last version that served production, other than the one serving now,
-- whose time in production ended by being replaced (not rolled back), and
-- which has not been rolled back since (say, as a canary) nor gone to
-- canary or shadow: where a rollback goes.
CREATE OR REPLACE FUNCTION @extschema@._last_good(model text)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.version
      FROM @extschema@.production_history h
      JOIN @extschema@.model_versions mv ON mv.model = h.model AND mv.version = h.version
     WHERE h.model = _last_good.model AND h.ended_by = 'replaced'
       AND mv.stage NOT IN ('rolled_back', 'production', 'canary', 'shadow', 'archived')
     ORDER BY h.seq DESC LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@._last_good(text) IS
    'The last version that served production and was not rolled back from it, other than the current one (internal)';

-- The standby (deployments.previous_version, stage previous) is the last
-- good version: after a rollback the one before the good one, never the
-- version just rolled back, nor one that has since gone to canary or
-- shadow.  Called after every change of stages.
CREATE OR REPLACE FUNCTION @extschema@._refresh_standby(model text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    standby text := @extschema@._last_good(model);
BEGIN
    UPDATE @extschema@.model_versions mv SET stage = 'retired'
     WHERE mv.model = _refresh_standby.model AND mv.stage = 'previous' AND mv.version IS DISTINCT FROM standby;
    UPDATE @extschema@.model_versions mv SET stage = 'previous'
     WHERE mv.model = _refresh_standby.model AND mv.version = standby AND mv.stage <> 'previous';
    UPDATE @extschema@.deployments dd SET previous_version = standby
     WHERE dd.model = _refresh_standby.model AND dd.previous_version IS DISTINCT FROM standby;
END
$$;
COMMENT ON FUNCTION @extschema@._refresh_standby(text) IS
    'Make the last good version the standby: deployments.previous_version and stage previous (internal)';

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
    PERFORM @extschema@._refuse_if_frozen('promote', model);
    IF strategy IS NULL OR strategy NOT IN ('canary', 'blue_green', 'shadow') THEN
        RAISE EXCEPTION 'retrain.promote: strategy must be canary, blue_green or shadow, not %', coalesce(strategy, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = promote.model;
    IF v.stage = 'archived' THEN
        RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is archived', version, model
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'An archived version is kept for its lineage only; register the artifact again as a new version.';
    END IF;
    IF d.production_version = version THEN
        RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is already in production', version, model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF strategy IN ('canary', 'blue_green') AND d.canary_version IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.promote: model "%" already has version "%" in canary', model, d.canary_version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Advance it to production or roll it back first.';
    END IF;
    -- a version is in one stage: the running canary is not also a shadow
    IF strategy = 'shadow' AND d.canary_version = version THEN
        RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is the running canary, not a candidate for shadow',
                        version, model
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Roll the canary back first.';
    END IF;
    IF strategy = 'shadow' AND d.shadow_version = version THEN
        RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is already in shadow', version, model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- a shadow serves nobody: it needs its gates, not sign-offs
    missing := @extschema@._missing_for_promotion(model, version, sign_offs => strategy <> 'shadow');
    IF strategy <> 'shadow' THEN
        missing := missing || @extschema@._shadow_shortfall(model, version, d);
    END IF;
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
                   shadow_since = CASE WHEN dd.shadow_version = promote.version THEN NULL ELSE dd.shadow_since END,
                   updated_at = clock_timestamp()
             WHERE dd.model = promote.model;
        END IF;
    ELSIF strategy = 'blue_green' THEN
        PERFORM @extschema@._set_production(model, version, 'replaced');
    ELSE
        -- one shadow at most: the one it replaces was never released
        UPDATE @extschema@.model_versions mv SET stage = 'registered'
         WHERE mv.model = promote.model AND mv.version = d.shadow_version AND mv.stage = 'shadow';
        UPDATE @extschema@.model_versions mv SET stage = 'shadow'
         WHERE mv.model = promote.model AND mv.version = promote.version;
        UPDATE @extschema@.deployments dd
           SET shadow_version = promote.version, shadow_since = clock_timestamp(), updated_at = clock_timestamp()
         WHERE dd.model = promote.model;
    END IF;

    PERFORM @extschema@._refresh_standby(model);
    PERFORM @extschema@._log(model, version, 'promoted',
        jsonb_build_object('strategy', strategy, 'canary_percent', first_step,
                           'override', cardinality(missing) > 0, 'override_reason', override_reason,
                           'missing', missing, 'replaced_shadow',
                           CASE WHEN strategy = 'shadow' THEN d.shadow_version END));
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
    -- down is always allowed: it takes traffic from the new version
    IF round(percent, 2) > d.canary_percent THEN
        PERFORM @extschema@._refuse_if_frozen('set_traffic', model);
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
    PERFORM @extschema@._refuse_if_frozen('advance', model);
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
        PERFORM @extschema@._revoke_approvals(model, d.canary_version);
        PERFORM @extschema@._refresh_standby(model);
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
    -- the last good production version (deployments.previous_version)
    target := d.previous_version;
    IF target IS NULL THEN
        RAISE EXCEPTION 'retrain.rollback: model "%" has no earlier good production version to return to', model
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('To serve no model: SELECT retrain.force(%L, ''fallback'');', model);
    END IF;
    PERFORM @extschema@._set_production(model, target, 'rolled_back');
    PERFORM @extschema@._revoke_approvals(model, d.production_version);
    PERFORM @extschema@._log(model, d.production_version, 'rolled_back',
                             jsonb_build_object('reason', reason, 'what', 'production', 'to', target));
    RETURN target;
END
$$;
COMMENT ON FUNCTION @extschema@.rollback(text, text) IS
    'Stop a running canary, or else return production to the last good version (deployments.previous_version; repeatable, never to a version rolled back from); the version rolled back loses its sign-offs; returns the version now in production';

-- A version rolled back loses its sign-offs: promoting it again needs new
-- ones (or the owner's override with a reason).
CREATE OR REPLACE FUNCTION @extschema@._revoke_approvals(model text, version text)
    RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE @extschema@.approvals a SET revoked_at = clock_timestamp()
     WHERE a.model = _revoke_approvals.model AND a.version = _revoke_approvals.version AND a.revoked_at IS NULL
$$;
COMMENT ON FUNCTION @extschema@._revoke_approvals(text, text) IS
    'Mark a rolled-back version''s sign-offs as no longer counting (internal)';

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
    -- everyone to the canary deploys it: not while frozen
    IF mode = 'candidate' THEN
        PERFORM @extschema@._refuse_if_frozen('force', model);
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
        'frozen', (SELECT @extschema@._freeze_of(d) FROM @extschema@.deployments d WHERE d.model = m.name),
        -- what to redeploy if production misbehaves: never a version rolled back
        'last_good', (SELECT jsonb_build_object('version', v.version, 'artifact_uri', v.artifact_uri,
                                                'artifact_sha256', v.artifact_sha256, 'code_commit', v.code_commit)
                        FROM @extschema@.deployments d
                        JOIN @extschema@.model_versions v ON v.model = d.model AND v.version = d.previous_version
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
    'The production entry, the last good version to return to (last_good: never one rolled back), and the history of production versions with their SHA-256s and how each period ended, oldest first';

-- Release controls: a freeze halts new deployments ("halt new deployments",
-- the regulated runbook's first rollback step).  While frozen, promote,
-- advance, set_traffic upward, force(..., 'candidate') and the guard's
-- advances are refused; rollbacks and force(..., 'production' | 'fallback'
-- | 'auto') still work: they take traffic away from a new version, never
-- to it.

-- The freeze in force on a deployment row at a time, or NULL (a freeze with
-- an end has ended by itself once it is past).
CREATE OR REPLACE FUNCTION @extschema@._freeze_of(d @extschema@.deployments, at timestamptz DEFAULT pg_catalog.now())
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN d.frozen_reason IS NOT NULL AND (d.frozen_until IS NULL OR d.frozen_until > at)
                THEN jsonb_build_object('reason', d.frozen_reason, 'by', d.frozen_by, 'at', d.frozen_at,
                                        'until', d.frozen_until) END;
COMMENT ON FUNCTION @extschema@._freeze_of(@extschema@.deployments, timestamptz) IS
    'The freeze in force on a model''s deployment at a time: reason, by, at, until; or NULL (internal)';

-- Refuse a change that would deploy more of a new version while the model
-- is frozen: 55000, with the freeze's reason in DETAIL.
CREATE OR REPLACE FUNCTION @extschema@._refuse_if_frozen(fn text, model text)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb := (SELECT @extschema@._freeze_of(d) FROM @extschema@.deployments d WHERE d.model = _refuse_if_frozen.model);
BEGIN
    IF f IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.%: model "%" is frozen: new deployments are halted', fn, model
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Frozen by %s%s: %s', f->>'by', coalesce(' until ' || (f->>'until'), ''), f->>'reason'),
                  HINT = 'Rollbacks and force(model, ''production'' or ''fallback'') still work; the owner may unfreeze().';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._refuse_if_frozen(text, text) IS
    'Refuse a deployment step of a frozen model with 55000 and the freeze''s reason (internal)';

-- Anyone granted freeze() may freeze any model: it only takes traffic from
-- new versions, and an operator on call for every team must be able to.
-- Freezing again replaces the reason and the end.
CREATE OR REPLACE FUNCTION @extschema@.freeze(model text, reason text, until timestamptz DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
BEGIN
    PERFORM @extschema@._lock_model('freeze', model, owner_only => false);
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'retrain.freeze: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF until IS NOT NULL AND until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'retrain.freeze: until (%) is not in the future', until USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE @extschema@.deployments dd
       SET frozen_reason = reason, frozen_by = @extschema@._actor(), frozen_at = clock_timestamp(),
           frozen_until = until, updated_at = clock_timestamp()
     WHERE dd.model = $1  -- "freeze" is a keyword: freeze.model would not parse
    RETURNING * INTO d;
    PERFORM @extschema@._log(model, NULL, 'frozen', jsonb_build_object('reason', reason, 'until', until));
    RETURN @extschema@._freeze_of(d);
END
$$;
COMMENT ON FUNCTION @extschema@.freeze(text, text, timestamptz) IS
    'Halt new deployments of a model (promote, advance, set_traffic upward, force candidate, the guard''s advances) with a reason, until unfreeze() or until; rollbacks still work';

-- Only the owner's members lift a freeze before its end.
CREATE OR REPLACE FUNCTION @extschema@.unfreeze(model text, reason text)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
BEGIN
    PERFORM @extschema@._lock_model('unfreeze', model);
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'retrain.unfreeze: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = unfreeze.model;
    IF @extschema@._freeze_of(d) IS NULL THEN
        RAISE EXCEPTION 'retrain.unfreeze: model "%" is not frozen', model USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE @extschema@.deployments dd
       SET frozen_reason = NULL, frozen_by = NULL, frozen_at = NULL, frozen_until = NULL, updated_at = clock_timestamp()
     WHERE dd.model = unfreeze.model;
    PERFORM @extschema@._log(model, NULL, 'unfrozen',
                             jsonb_build_object('reason', reason, 'frozen_for', d.frozen_reason, 'frozen_by', d.frozen_by));
END
$$;
COMMENT ON FUNCTION @extschema@.unfreeze(text, text) IS
    'Lift a model''s freeze before its end, with a reason; only members of the owner role may';
