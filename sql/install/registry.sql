-- The model registry: models, their versions with lineage and metrics,
-- deployments (what each model serves), sign-offs, gate evaluations and the
-- production history; registering, evaluating and signing.
--
-- Tables are changed only by retrain's functions; each state change takes
-- the write lock, locks the model's row (_lock_model), checks the
-- transition, changes state and appends its log row in the caller's
-- transaction.

-- @once

CREATE TABLE @extschema@.models (
    name        text PRIMARY KEY CHECK (name <> ''),
    task        text NOT NULL CHECK (task IN ('binary_classification', 'regression')),
    owner       name NOT NULL DEFAULT session_user,
    description text,
    policy      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(policy) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- a name, not a regclass: pg_upgrade refuses reg* columns in tables
    source      text
);
COMMENT ON TABLE @extschema@.models IS 'Registered models: task, owning role, description and policy document';
COMMENT ON COLUMN @extschema@.models.owner IS 'the role that owns the model (may override gates, with a reason)';
COMMENT ON COLUMN @extschema@.models.source IS 'the model''s own prediction log (schema-qualified relation name) set by set_source(); NULL: retrain.predictions and retrain.outcomes';
COMMENT ON COLUMN @extschema@.models.policy IS 'the policy document as set; see retrain.effective_policy() for it with defaults';

-- @replace

-- metrics must be a flat object of numbers
CREATE OR REPLACE FUNCTION @extschema@._numbers_only(doc jsonb)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jsonb_typeof(doc) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(doc) e WHERE jsonb_typeof(e.value) <> 'number');
COMMENT ON FUNCTION @extschema@._numbers_only(jsonb) IS
    'Whether a jsonb document is an object whose values are all numbers (internal)';

-- @once

CREATE TABLE @extschema@.model_versions (
    model            text NOT NULL REFERENCES @extschema@.models (name),
    version          text NOT NULL CHECK (version <> ''),
    stage            text NOT NULL DEFAULT 'registered'
                     CHECK (stage IN ('registered', 'shadow', 'canary', 'production', 'previous',
                                      'retired', 'rolled_back', 'archived')),
    artifact_uri     text NOT NULL,
    artifact_sha256  text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    code_commit      text,
    params           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    seed             bigint,
    dataset_snapshot text,
    data_range       tstzrange,
    features         text[],
    metrics          jsonb NOT NULL CHECK (@extschema@._numbers_only(metrics)),
    registered_by    name NOT NULL DEFAULT session_user,
    registered_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    seeds            bigint[],
    artifacts        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(artifacts) = 'object'),
    PRIMARY KEY (model, version)
);
COMMENT ON TABLE @extschema@.model_versions IS 'Versions of each model with their lineage, metrics and stage';
COMMENT ON COLUMN @extschema@.model_versions.stage IS 'registered, shadow, canary, production, previous (the standby after a swap), retired, rolled_back, archived (retire() or versions.keep: kept for lineage, never promoted)';
COMMENT ON COLUMN @extschema@.model_versions.seeds IS 'every random seed of the training run, when there is more than one (seed holds the main one)';
COMMENT ON COLUMN @extschema@.model_versions.artifacts IS 'named artifacts besides the model: name -> {"uri", "sha256"} (metrics file, manifest, reports)';
COMMENT ON COLUMN @extschema@.model_versions.artifact_sha256 IS 'SHA-256 of the artifact, 64 lower-case hex digits';
COMMENT ON COLUMN @extschema@.model_versions.metrics IS 'offline evaluation metrics, numbers only (f1, auc, precision, recall, latency_p99_ms, ...)';

CREATE TABLE @extschema@.deployments (
    model              text PRIMARY KEY REFERENCES @extschema@.models (name),
    production_version text,
    previous_version   text,
    canary_version     text,
    canary_percent     numeric(5, 2) NOT NULL DEFAULT 0 CHECK (canary_percent BETWEEN 0 AND 100),
    shadow_version     text,
    mode               text NOT NULL DEFAULT 'auto' CHECK (mode IN ('auto', 'production', 'candidate', 'fallback')),
    mode_until         timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    frozen_reason      text,
    frozen_by          name,
    frozen_at          timestamptz,
    frozen_until       timestamptz,
    shadow_since       timestamptz,
    FOREIGN KEY (model, production_version) REFERENCES @extschema@.model_versions (model, version),
    FOREIGN KEY (model, canary_version) REFERENCES @extschema@.model_versions (model, version),
    FOREIGN KEY (model, shadow_version) REFERENCES @extschema@.model_versions (model, version),
    CHECK (canary_version IS NULL OR canary_version IS DISTINCT FROM production_version)
);
COMMENT ON TABLE @extschema@.deployments IS 'What each model serves now: one row per model; applications read it (or call route())';
COMMENT ON COLUMN @extschema@.deployments.canary_percent IS 'share of units routed to the canary, 0 to 100 (ML_ROLLOUT_PCT)';
COMMENT ON COLUMN @extschema@.deployments.mode IS 'auto, or forced: production, candidate (the canary for everyone), fallback (no model)';
COMMENT ON COLUMN @extschema@.deployments.mode_until IS 'when a forced mode expires by itself (NULL: until changed)';
COMMENT ON COLUMN @extschema@.deployments.frozen_reason IS 'why new deployments are halted (freeze()); NULL when not frozen';
COMMENT ON COLUMN @extschema@.deployments.frozen_by IS 'who froze the model';
COMMENT ON COLUMN @extschema@.deployments.frozen_at IS 'when the model was frozen';
COMMENT ON COLUMN @extschema@.deployments.frozen_until IS 'when the freeze ends by itself (NULL: until unfreeze())';
COMMENT ON COLUMN @extschema@.deployments.shadow_since IS 'when the version in shadow started shadow scoring (rollout.shadow_min counts from here)';

CREATE TABLE @extschema@.approvals (
    model       text NOT NULL,
    version     text NOT NULL,
    capacity    text NOT NULL,
    approver    name NOT NULL,
    approved_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    comment     text,
    revoked_at  timestamptz,
    FOREIGN KEY (model, version) REFERENCES @extschema@.model_versions (model, version)
);
COMMENT ON TABLE @extschema@.approvals IS 'Sign-offs: who signed which version in which capacity, when, with what comment; a rollback of the version revokes them';
COMMENT ON COLUMN @extschema@.approvals.revoked_at IS 'when the sign-off stopped counting (the version was rolled back); NULL while it counts';
-- One sign-off per capacity and one per signer, among those that count: a
-- version rolled back is signed again.
CREATE UNIQUE INDEX approvals_capacity ON @extschema@.approvals (model, version, capacity) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX approvals_approver ON @extschema@.approvals (model, version, approver) WHERE revoked_at IS NULL;
COMMENT ON INDEX @extschema@.approvals_capacity IS 'One sign-off that counts per version and capacity';
COMMENT ON INDEX @extschema@.approvals_approver IS 'One sign-off that counts per version and signer';

CREATE TABLE @extschema@.evaluations (
    model        text NOT NULL,
    version      text NOT NULL,
    evaluated_at timestamptz NOT NULL,
    gate         text NOT NULL,
    required     pg_catalog.float8,
    observed     pg_catalog.float8,
    passed       boolean NOT NULL,
    PRIMARY KEY (model, version, evaluated_at, gate),
    FOREIGN KEY (model, version) REFERENCES @extschema@.model_versions (model, version)
);
COMMENT ON TABLE @extschema@.evaluations IS 'Results of evaluate(): each gate''s requirement, observation and verdict; the latest evaluation of a version counts';

CREATE TABLE @extschema@.production_history (
    model      text NOT NULL,
    seq        integer NOT NULL,
    version    text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    ended_by   text CHECK (ended_by IN ('replaced', 'rolled_back')),
    PRIMARY KEY (model, seq),
    FOREIGN KEY (model, version) REFERENCES @extschema@.model_versions (model, version)
);
COMMENT ON TABLE @extschema@.production_history IS 'Every period a version served as production, in order (the manifest''s history)';

-- Readers see the registry; only retrain's functions change it.
REVOKE ALL ON @extschema@.models, @extschema@.model_versions, @extschema@.approvals, @extschema@.evaluations,
              @extschema@.deployments, @extschema@.production_history
    FROM PUBLIC;
GRANT SELECT ON @extschema@.models, @extschema@.model_versions, @extschema@.approvals, @extschema@.evaluations,
                @extschema@.deployments, @extschema@.production_history
    TO PUBLIC;
-- pg_dump keeps their rows: they belong to the extension, the data to you.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.approvals', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.evaluations', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.production_history', '');

-- @replace

-- The model's row, locked: every state change starts here.
-- Whether the session's user may act on a model of this owner: a member
-- of the owner role, or a superuser.  One team's people act on their
-- models; another team's, however many functions they may execute, do not.
CREATE OR REPLACE FUNCTION @extschema@._may_act(owner name)
    RETURNS boolean
    -- plpgsql: planned once a session (see _training_failures)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT a.rolsuper OR (EXISTS (SELECT 1 FROM pg_roles o WHERE o.rolname = _may_act.owner)
                                  AND pg_has_role(a.oid, _may_act.owner, 'MEMBER'))
              FROM pg_roles a WHERE a.rolname = @extschema@._actor());
END
$$;
COMMENT ON FUNCTION @extschema@._may_act(name) IS
    'Whether the session''s user is a superuser or a member of the given owner role (internal)';

-- The model's row, locked: every state change starts here.  Unless told
-- otherwise (a sign-off, whose rule is the policy's), only who may act on
-- the model gets past it.
CREATE OR REPLACE FUNCTION @extschema@._lock_model(fn text, model text, owner_only boolean DEFAULT true)
    RETURNS @extschema@.models
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'retrain.%: model must not be NULL', fn USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@._begin_change();
    SELECT * INTO m FROM @extschema@.models WHERE name = model FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.%: unknown model "%"', fn, model USING ERRCODE = 'undefined_object';
    END IF;
    IF owner_only AND NOT @extschema@._may_act(m.owner) THEN
        RAISE EXCEPTION 'retrain.%: % may not act on model "%", which belongs to %', fn, @extschema@._actor(), model, m.owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only members of a model''s owner role, or a superuser, may change it.';
    END IF;
    PERFORM 1 FROM @extschema@.deployments d WHERE d.model = _lock_model.model FOR UPDATE;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@._lock_model(text, text, boolean) IS
    'Lock a model''s rows for a state change by who may act on it, or fail with 42704 or 42501 (internal)';

CREATE OR REPLACE FUNCTION @extschema@._version(fn text, model text, version text)
    RETURNS @extschema@.model_versions
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
BEGIN
    SELECT * INTO v FROM @extschema@.model_versions mv
     WHERE mv.model = _version.model AND mv.version = _version.version FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.%: model "%" has no version "%"', fn, model, coalesce(version, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN v;
END
$$;
COMMENT ON FUNCTION @extschema@._version(text, text, text) IS 'A version''s row, locked, or 42704 (internal)';

CREATE OR REPLACE FUNCTION @extschema@.register_model(name text, task text, description text DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR task IS NULL THEN
        RAISE EXCEPTION 'retrain.register_model: name and task must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF task NOT IN ('binary_classification', 'regression') THEN
        RAISE EXCEPTION 'retrain.register_model: task must be binary_classification or regression, not "%"', task
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name = '' THEN
        RAISE EXCEPTION 'retrain.register_model: a model''s name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._begin_change();
    BEGIN
        -- the role the caller acts as owns it: SET ROLE team_a first, and
        -- team_a's members may act on the model
        INSERT INTO @extschema@.models (name, task, owner, description)
        VALUES (register_model.name, task, @extschema@._acting_role(), description);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'retrain.register_model: model "%" is already registered', register_model.name
            USING ERRCODE = 'unique_violation';
    END;
    INSERT INTO @extschema@.deployments (model) VALUES (register_model.name);
    PERFORM @extschema@._log(register_model.name, NULL, 'model_registered',
                             jsonb_build_object('task', task, 'description', description));
END
$$;
COMMENT ON FUNCTION @extschema@.register_model(text, text, text) IS
    'Register a model (binary_classification or regression); the role the caller acts as (after SET ROLE) becomes its owner';

-- Ownership decides whose rights the model's checks run with: a model may
-- only go to a role its current owner's member also belongs to (never, by
-- this path, to a role with more rights than the person giving it).
CREATE OR REPLACE FUNCTION @extschema@.set_owner(model text, owner name)
    RETURNS name
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
BEGIN
    m := @extschema@._lock_model('set_owner', model);
    IF owner IS NULL THEN
        RAISE EXCEPTION 'retrain.set_owner: owner must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = owner) THEN
        RAISE EXCEPTION 'retrain.set_owner: role "%" does not exist', owner USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT @extschema@._may_act(owner) THEN
        RAISE EXCEPTION 'retrain.set_owner: % may not give model "%" to %: not a member of that role',
                        @extschema@._actor(), model, owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The model''s checks and source run with its owner''s rights.';
    END IF;
    UPDATE @extschema@.models mm SET owner = set_owner.owner WHERE mm.name = m.name;
    PERFORM @extschema@._log(m.name, NULL, 'owner_set', jsonb_build_object('from', m.owner, 'to', owner));
    RETURN owner;
END
$$;
COMMENT ON FUNCTION @extschema@.set_owner(text, name) IS
    'Give a model to another role (whose rights its checks and source then run with); only a member of both the old and the new owner role may';

-- What a version must carry before it is registered, by the model's
-- policy: a version name and an artifact file name of the team's pattern,
-- the lineage the team requires ("all training runs must be reproducible
-- from code + seed + dataset snapshot"), well-formed named artifacts.
CREATE OR REPLACE FUNCTION @extschema@._check_version(pol jsonb, v @extschema@.model_versions)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lacking text[];
    bad text;
BEGIN
    IF pol->'versions' ? 'pattern' AND v.version !~ (pol->'versions'->>'pattern') THEN
        RAISE EXCEPTION 'retrain.register_version: version "%" does not match the model''s versions.pattern %',
                        v.version, pol->'versions'->'pattern'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pol->'versions' ? 'artifact_pattern'
       AND regexp_replace(v.artifact_uri, '^.*/', '') !~ (pol->'versions'->>'artifact_pattern') THEN
        RAISE EXCEPTION 'retrain.register_version: artifact "%" does not match the model''s versions.artifact_pattern %',
                        regexp_replace(v.artifact_uri, '^.*/', ''), pol->'versions'->'artifact_pattern'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The pattern is matched against the file name, the part of artifact_uri after the last "/".';
    END IF;
    SELECT array_agg(r ORDER BY o) INTO lacking
      FROM jsonb_array_elements_text(pol->'lineage'->'required') WITH ORDINALITY x(r, o)
     WHERE CASE r
           WHEN 'code_commit' THEN coalesce(v.code_commit, '') = ''
           WHEN 'seed' THEN v.seed IS NULL AND coalesce(cardinality(v.seeds), 0) = 0
           WHEN 'dataset_snapshot' THEN coalesce(v.dataset_snapshot, '') = ''
           WHEN 'data_snapshot' THEN coalesce(v.dataset_snapshot, '') = ''
           WHEN 'data_range' THEN v.data_range IS NULL
           WHEN 'features' THEN coalesce(cardinality(v.features), 0) = 0
           WHEN 'params' THEN v.params = '{}'
           WHEN 'artifacts' THEN v.artifacts = '{}'
           END;
    IF lacking IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.register_version: version "%" of model "%" lacks lineage the policy requires: %',
                        v.version, v.model, array_to_string(lacking, ', ')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('lineage.required is %s: every training run must be reproducible from them.',
                                  pol->'lineage'->'required');
    END IF;
    IF v.seeds IS NOT NULL AND array_position(v.seeds, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.register_version: seeds must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.key INTO bad FROM jsonb_each(v.artifacts) a
     WHERE jsonb_typeof(a.value) <> 'object' OR a.key = ''
        OR EXISTS (SELECT 1 FROM jsonb_object_keys(a.value) k WHERE k NOT IN ('uri', 'sha256'))
        OR jsonb_typeof(a.value->'uri') IS DISTINCT FROM 'string' OR a.value->>'uri' = ''
        OR coalesce(a.value->>'sha256', '') !~ '^[0-9a-f]{64}$'
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'retrain.register_version: artifact "%" must be {"uri": text, "sha256": 64 lower-case hex digits}, not %',
                        bad, v.artifacts->bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_version(jsonb, @extschema@.model_versions) IS
    'Refuse a version its model''s policy does not admit: versions.pattern, versions.artifact_pattern, lineage.required, malformed artifacts (internal)';

CREATE OR REPLACE FUNCTION @extschema@.register_version(model text, version text, artifact_uri text, artifact_sha256 text,
                                             metrics jsonb, params jsonb DEFAULT '{}', code_commit text DEFAULT NULL,
                                             seed bigint DEFAULT NULL, dataset_snapshot text DEFAULT NULL,
                                             data_range tstzrange DEFAULT NULL, features text[] DEFAULT NULL,
                                             seeds bigint[] DEFAULT NULL, artifacts jsonb DEFAULT '{}',
                                             allow_duplicate_sha boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
    twin text;
BEGIN
    PERFORM @extschema@._lock_model('register_version', model);
    IF version IS NULL OR artifact_uri IS NULL OR artifact_sha256 IS NULL OR metrics IS NULL
       OR artifacts IS NULL OR allow_duplicate_sha IS NULL THEN
        RAISE EXCEPTION 'retrain.register_version: version, artifact_uri, artifact_sha256, metrics, artifacts and allow_duplicate_sha must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF artifact_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'retrain.register_version: artifact_sha256 must be 64 lower-case hex digits, not "%"', artifact_sha256
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT @extschema@._numbers_only(metrics) THEN
        RAISE EXCEPTION 'retrain.register_version: metrics must be a JSON object of numbers, not %', metrics
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'retrain.register_version: params must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(artifacts) <> 'object' THEN
        RAISE EXCEPTION 'retrain.register_version: artifacts must be a JSON object of name -> {"uri", "sha256"}, not %', artifacts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := ROW(model, version, 'registered', artifact_uri, artifact_sha256, code_commit, params, seed, dataset_snapshot,
             data_range, features, metrics, @extschema@._actor(), now(), seeds, artifacts);
    PERFORM @extschema@._check_version(@extschema@.effective_policy(model), v);
    -- the same artifact under two names is a mistake unless the caller says so
    SELECT mv.version INTO twin FROM @extschema@.model_versions mv
     WHERE mv.model = register_version.model AND mv.artifact_sha256 = register_version.artifact_sha256
       AND mv.version <> register_version.version
     ORDER BY mv.registered_at LIMIT 1;
    IF twin IS NOT NULL AND NOT allow_duplicate_sha THEN
        RAISE EXCEPTION 'retrain.register_version: artifact_sha256 % is already registered for version "%" of model "%"',
                        artifact_sha256, twin, model
            USING ERRCODE = 'unique_violation',
                  HINT = 'If the same artifact is meant to be registered again, say so: allow_duplicate_sha => true.';
    END IF;
    BEGIN
        INSERT INTO @extschema@.model_versions (model, version, artifact_uri, artifact_sha256, code_commit, params,
                                                seed, dataset_snapshot, data_range, features, metrics, registered_by,
                                                seeds, artifacts)
        VALUES (model, version, artifact_uri, artifact_sha256, code_commit, params, seed, dataset_snapshot,
                data_range, features, metrics, v.registered_by, seeds, artifacts);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'retrain.register_version: model "%" already has a version "%"', model, version
            USING ERRCODE = 'unique_violation';
    END;
    PERFORM @extschema@._log(model, version, 'registered',
        jsonb_build_object('artifact_uri', artifact_uri, 'artifact_sha256', artifact_sha256, 'metrics', metrics,
                           'params', params, 'code_commit', code_commit, 'seed', seed, 'seeds', seeds,
                           'dataset_snapshot', dataset_snapshot, 'data_range', data_range::text,
                           'features', features, 'artifacts', artifacts, 'duplicate_of', twin));
    PERFORM @extschema@._keep_versions(model);
END
$$;
COMMENT ON FUNCTION @extschema@.register_version(text, text, text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[], bigint[], jsonb, boolean) IS
    'Register a version with everything needed to reproduce it (artifact, SHA-256, code commit, hyperparameters, seeds, data snapshot and range, features, named artifacts) and its offline metrics, as the policy''s versions and lineage rules require';

-- A version archived: out of the way of promotion and rollback, its lineage
-- and log kept.  Never one that serves or stands by.
CREATE OR REPLACE FUNCTION @extschema@._archive(model text, version text, why text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    from_ text;
BEGIN
    SELECT mv.stage INTO from_ FROM @extschema@.model_versions mv
     WHERE mv.model = _archive.model AND mv.version = _archive.version FOR UPDATE;
    UPDATE @extschema@.model_versions mv SET stage = 'archived'
     WHERE mv.model = _archive.model AND mv.version = _archive.version;
    PERFORM @extschema@._log(model, version, 'archived', jsonb_build_object('reason', why, 'from', from_));
END
$$;
COMMENT ON FUNCTION @extschema@._archive(text, text, text) IS 'Archive a version and log it (internal)';

-- versions.keep: of the newest N versions nothing is archived; older ones
-- that are registered, retired or rolled back are ("keep the last 5").
CREATE OR REPLACE FUNCTION @extschema@._keep_versions(model text)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep integer := (@extschema@.effective_policy(model)->'versions'->>'keep')::integer;
    n integer := 0;
    old text;
BEGIN
    IF keep IS NULL THEN
        RETURN 0;
    END IF;
    FOR old IN SELECT x.version
                 FROM (SELECT mv.version, mv.stage,
                              row_number() OVER (ORDER BY mv.registered_at DESC, mv.version DESC) AS newest
                         FROM @extschema@.model_versions mv WHERE mv.model = _keep_versions.model) x
                WHERE x.newest > keep AND x.stage IN ('registered', 'retired', 'rolled_back')
                ORDER BY x.newest DESC LOOP
        PERFORM @extschema@._archive(model, old, format('versions.keep is %s', keep));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._keep_versions(text) IS
    'Archive the versions beyond the policy''s versions.keep newest that neither serve nor stand by (internal)';

CREATE OR REPLACE FUNCTION @extschema@.retire(model text, version text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
BEGIN
    PERFORM @extschema@._lock_model('retire', model);
    v := @extschema@._version('retire', model, version);
    IF v.stage IN ('production', 'previous', 'canary', 'shadow') THEN
        RAISE EXCEPTION 'retrain.retire: version "%" of model "%" is %, and cannot be archived', version, model, v.stage
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE v.stage WHEN 'previous' THEN 'It is the standby a rollback returns to.'
                                      ELSE 'Roll it back or replace it first.' END;
    END IF;
    IF v.stage <> 'archived' THEN
        PERFORM @extschema@._archive(model, version, 'retire');
    END IF;
    RETURN 'archived';
END
$$;
COMMENT ON FUNCTION @extschema@.retire(text, text) IS
    'Archive a version that neither serves nor stands by: it can no longer be promoted or returned to; its lineage and log stay';

-- Figures and thresholds meet in decimal: a figure (a float8 metric, or a
-- number of a metrics document) is rounded to 15 significant digits, as
-- many as a float8 holds for sure, and compared in numeric with the
-- threshold as the policy writes it.  So "AUC must improve by 0.02" passes
-- 0.80 -> 0.82, which float8 arithmetic refuses (0.8 + 0.02 is
-- 0.8200000000000001).  Casting float8 to numeric rounds just so.
CREATE OR REPLACE FUNCTION @extschema@._decimal(figure jsonb)
    RETURNS numeric
    -- plpgsql: planned once a session (a SQL function with SET is planned
    -- at every call)
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (figure #>> '{}')::pg_catalog.float8::numeric;
END
$$;
COMMENT ON FUNCTION @extschema@._decimal(jsonb) IS
    'A jsonb figure rounded to 15 significant digits, as numeric, for comparisons with a policy''s thresholds (internal)';

-- One gate of the simple kind, judged: {"metric", "op", and "value"
-- (absolute), "relative" (production's value plus it) or "ratio"
-- (production's value times it: "+2% AUC" is 1.02)}.  A missing metric
-- fails, and so does a gate relative to production when production lacks
-- the metric; with no production version at all (the first release) such a
-- gate asks only that the metric be there.
CREATE OR REPLACE FUNCTION @extschema@._judge_gate(g jsonb, metrics jsonb, production jsonb, has_production boolean,
                                                   OUT gate text, OUT required numeric, OUT observed numeric,
                                                   OUT passed boolean)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base numeric := @extschema@._decimal(production->(g->>'metric'));
BEGIN
    observed := @extschema@._decimal(metrics->(g->>'metric'));
    IF g ? 'value' THEN
        required := (g->>'value')::numeric;
        gate := format('%s %s %s', g->>'metric', g->>'op', g->>'value');
    ELSIF g ? 'ratio' THEN
        required := base * (g->>'ratio')::numeric;
        gate := format('%s %s production x %s', g->>'metric', g->>'op', g->>'ratio');
    ELSE
        required := base + (g->>'relative')::numeric;
        gate := format('%s %s production %s %s', g->>'metric', g->>'op',
                       CASE WHEN (g->>'relative')::numeric < 0 THEN '-' ELSE '+' END, abs((g->>'relative')::numeric));
    END IF;
    IF NOT g ? 'value' AND NOT has_production THEN
        passed := observed IS NOT NULL;
        gate := gate || ' (no production version)';
        required := NULL;
        RETURN;
    END IF;
    passed := coalesce(CASE g->>'op'
                           WHEN '>=' THEN observed >= required
                           WHEN '>' THEN observed > required
                           WHEN '<=' THEN observed <= required
                           WHEN '<' THEN observed < required
                       END, false);
END
$$;
COMMENT ON FUNCTION @extschema@._judge_gate(jsonb, jsonb, jsonb, boolean) IS
    'One simple gate judged in decimal: its text, required and observed values, and verdict (internal)';

-- A version's gates judged now, against the current production version and
-- the current policy: evaluate() records them, promote() decides on them.
-- {"any": [...]} passes when one of its alternatives does ("+2% AUC or +5%
-- KPI"); each alternative is shown on a row of its own (decides false),
-- prefixed with its place, and the "any" row (decides true) names the
-- first alternative that passed.  An alternative may itself be an "any"
-- (one level).
CREATE OR REPLACE FUNCTION @extschema@._judge_gates(model text, version text)
    RETURNS TABLE (gate text, required numeric, observed numeric, passed boolean, decides boolean)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
    prod @extschema@.model_versions;
    d @extschema@.deployments;
    g jsonb;
    i integer;
BEGIN
    SELECT * INTO v FROM @extschema@.model_versions mv
     WHERE mv.model = _judge_gates.model AND mv.version = _judge_gates.version;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = _judge_gates.model;
    IF d.production_version IS NOT NULL THEN
        SELECT * INTO prod FROM @extschema@.model_versions mv
         WHERE mv.model = _judge_gates.model AND mv.version = d.production_version;
    END IF;
    -- the latest recorded value of each metric (registration is the first record)
    v.metrics := @extschema@._metrics_of(v.model, v.version);
    prod.metrics := @extschema@._metrics_of(prod.model, prod.version);
    i := 0;
    FOR g IN SELECT * FROM jsonb_array_elements(@extschema@.effective_policy(model)->'gates') LOOP
        i := i + 1;
        IF g ? 'any' THEN
            RETURN QUERY SELECT * FROM @extschema@._judge_any(g, format('gate %s', i), v.metrics, prod.metrics,
                                                               d.production_version IS NOT NULL);
        ELSE
            SELECT j.gate, j.required, j.observed, j.passed, true INTO gate, required, observed, passed, decides
              FROM @extschema@._judge_gate(g, v.metrics, prod.metrics, d.production_version IS NOT NULL) j;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._judge_gates(text, text) IS
    'A version''s gates judged now against the production version and the policy, in decimal; for "any", each alternative and the verdict (internal)';

-- An "any" gate: a row per alternative (decides false), then its verdict.
CREATE OR REPLACE FUNCTION @extschema@._judge_any(g jsonb, label text, metrics jsonb, production jsonb,
                                                  has_production boolean)
    RETURNS TABLE (gate text, required numeric, observed numeric, passed boolean, decides boolean)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    alt jsonb;
    k integer := 0;
    winner text;
    r record;
BEGIN
    FOR alt IN SELECT * FROM jsonb_array_elements(g->'any') LOOP
        k := k + 1;
        IF alt ? 'any' THEN
            FOR r IN SELECT * FROM @extschema@._judge_any(alt, format('%s.%s', label, k), metrics, production,
                                                            has_production) LOOP
                gate := r.gate;
                required := r.required;
                observed := r.observed;
                passed := r.passed;
                decides := false;
                RETURN NEXT;
                IF r.decides AND r.passed AND winner IS NULL THEN
                    winner := format('%s.%s', label, k);
                END IF;
            END LOOP;
            CONTINUE;
        END IF;
        SELECT format('%s.%s: %s', label, k, j.gate), j.required, j.observed, j.passed, false
          INTO gate, required, observed, passed, decides
          FROM @extschema@._judge_gate(alt, metrics, production, has_production) j;
        RETURN NEXT;
        IF passed AND winner IS NULL THEN
            winner := format('%s.%s', label, k);
        END IF;
    END LOOP;
    gate := format('%s: any of %s alternatives%s', label, k, coalesce(', passed by ' || winner, ''));
    required := NULL;
    observed := NULL;
    passed := winner IS NOT NULL;
    decides := true;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@._judge_any(jsonb, text, jsonb, jsonb, boolean) IS
    'An "any" gate judged: each alternative, then whether one passed and which (internal)';

CREATE OR REPLACE FUNCTION @extschema@.evaluate(model text, version text)
    RETURNS TABLE (gate text, required pg_catalog.float8, observed pg_catalog.float8, passed boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    at_ timestamptz := clock_timestamp();
    results jsonb := '[]';
    j record;
BEGIN
    PERFORM @extschema@._lock_model('evaluate', model);
    PERFORM @extschema@._version('evaluate', model, version);
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = evaluate.model;
    FOR j IN SELECT * FROM @extschema@._judge_gates(model, version) LOOP
        gate := j.gate;
        required := j.required;
        observed := j.observed;
        passed := j.passed;
        INSERT INTO @extschema@.evaluations VALUES (model, version, at_, gate, required, observed, passed);
        -- the log keeps the decimals the gate was judged on
        results := results || jsonb_build_object('gate', j.gate, 'required', j.required, 'observed', j.observed,
                                                 'passed', j.passed, 'decides', j.decides);
        RETURN NEXT;
    END LOOP;
    PERFORM @extschema@._log(model, version, 'evaluated',
        jsonb_build_object('passed', NOT EXISTS (SELECT 1 FROM jsonb_array_elements(results) r
                                                  WHERE NOT (r->>'passed')::boolean AND (r->>'decides')::boolean),
                           'gates', results, 'against', d.production_version));
END
$$;
COMMENT ON FUNCTION @extschema@.evaluate(text, text) IS
    'Check a version against the policy''s gates (absolute, or relative to the production version''s metrics, compared in decimal); stores and logs the result';

CREATE OR REPLACE FUNCTION @extschema@.approve(model text, version text, capacity text, comment text DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
    role_ text;
    actor_ name := @extschema@._actor();
BEGIN
    -- a sign-off's rule is the policy's: members of the capacity's role sign
    PERFORM @extschema@._lock_model('approve', model, owner_only => false);
    v := @extschema@._version('approve', model, version);
    role_ := @extschema@.effective_policy(model)->'approvals'->>capacity;
    IF role_ IS NULL THEN
        RAISE EXCEPTION 'retrain.approve: the policy of model "%" has no approval capacity "%"', model, capacity
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Capacities: %s.', coalesce((SELECT string_agg(k, ', ' ORDER BY k)
                      FROM jsonb_object_keys(@extschema@.effective_policy(model)->'approvals') k), 'none'));
    END IF;
    IF NOT pg_has_role(actor_, role_, 'MEMBER') THEN
        RAISE EXCEPTION 'retrain.approve: % may not sign as % of model "%": not a member of role %', actor_, capacity, model, role_
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v.registered_by = actor_ THEN
        RAISE EXCEPTION 'retrain.approve: % registered version "%" of model "%" and may not also sign it', actor_, version, model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.approvals a
                WHERE a.model = approve.model AND a.version = approve.version AND a.approver = actor_
                  AND a.revoked_at IS NULL) THEN
        RAISE EXCEPTION 'retrain.approve: % has already signed version "%" of model "%"', actor_, version, model
            USING ERRCODE = 'unique_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.approvals a
                WHERE a.model = approve.model AND a.version = approve.version AND a.capacity = approve.capacity
                  AND a.revoked_at IS NULL) THEN
        RAISE EXCEPTION 'retrain.approve: version "%" of model "%" is already signed as %', version, model, capacity
            USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO @extschema@.approvals (model, version, capacity, approver, comment)
    VALUES (model, version, capacity, actor_, comment);
    PERFORM @extschema@._log(model, version, 'approved', jsonb_build_object('capacity', capacity, 'comment', comment));
END
$$;
COMMENT ON FUNCTION @extschema@.approve(text, text, text, text) IS
    'Sign a version in one of the policy''s capacities; the signer must be a member of that capacity''s role, may sign a version once, and not one they registered';
