-- retrain 0.1.0 to 0.2.0: what the @replace sections of sql/install/ cannot
-- do by themselves (they follow this file in the built upgrade script).

-- retrain.agg_state, the new transition type of the aggregates with a
-- state of fixed shape (sql/install/agg_state.sql); the @replace sections
-- then replace those aggregates in place, and the .post.sql file drops the
-- support functions over internal they no longer use.
CREATE TYPE @extschema@.agg_state;
CREATE FUNCTION @extschema@.agg_state_in(cstring)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_in';
CREATE FUNCTION @extschema@.agg_state_out(@extschema@.agg_state)
    RETURNS cstring LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_out';
CREATE FUNCTION @extschema@.agg_state_recv(internal)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_recv';
CREATE FUNCTION @extschema@.agg_state_send(@extschema@.agg_state)
    RETURNS bytea LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_send';
CREATE TYPE @extschema@.agg_state (
    INPUT = @extschema@.agg_state_in,
    OUTPUT = @extschema@.agg_state_out,
    RECEIVE = @extschema@.agg_state_recv,
    SEND = @extschema@.agg_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = main
);
COMMENT ON TYPE @extschema@.agg_state IS
    'A partial state of a retrain aggregate (confusion family, mean-loss metrics, histograms, psi); its text form, <kind>:<version>:<hex>, is what Citus ships between nodes';
COMMENT ON FUNCTION @extschema@.agg_state_in(cstring) IS
    'Input function of retrain.agg_state: checks the state completely';
COMMENT ON FUNCTION @extschema@.agg_state_out(@extschema@.agg_state) IS
    'Output function of retrain.agg_state: <kind>:<version>:<hexadecimal big-endian bytes>';
COMMENT ON FUNCTION @extschema@.agg_state_recv(internal) IS
    'Binary input function of retrain.agg_state';
COMMENT ON FUNCTION @extschema@.agg_state_send(@extschema@.agg_state) IS
    'Binary output function of retrain.agg_state';

-- Functions whose arguments changed: the new ones are created by the
-- feature files.  (Internal functions: no site grants to keep.)
DROP FUNCTION @extschema@._run_owner_check(name, text);
DROP FUNCTION @extschema@._lock_model(text, text);
-- reads as of a time: outcomes observed later are not known yet
DROP FUNCTION @extschema@._source_from(text, @extschema@.models);
-- renamed: intervals are bounded now, not only positive
DROP FUNCTION @extschema@._positive_interval(text);
-- says whether sign-offs count (not for shadow)
DROP FUNCTION @extschema@._missing_for_promotion(text, text);
-- register_version() takes seeds, named artifacts and allow_duplicate_sha
-- now.  A site's own grants on it cannot be carried over by this script
-- (a GRANT here would become an initial privilege, which pg_dump leaves
-- out): each is named in a warning, to be given again after the update.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT pg_catalog.quote_ident(r.rolname) AS grantee, a.is_grantable
               FROM pg_catalog.pg_proc p,
                    LATERAL pg_catalog.aclexplode(p.proacl) a
                    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
              WHERE p.oid = '@extschema@.register_version(text, text, text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[])'::pg_catalog.regprocedure
                AND a.grantee <> p.proowner
    LOOP
        RAISE WARNING '%', pg_catalog.format(
                'retrain: register_version() has new arguments; after the update, run: GRANT EXECUTE ON FUNCTION @extschema@.register_version TO %s%s;',
                g.grantee, CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
            USING DETAIL = 'An extension update cannot carry a site''s grants over to a function it creates again.';
    END LOOP;
END
$$;
DROP FUNCTION @extschema@.register_version(text, text, text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[]);
-- PUBLIC may run schedule_occurrence(), so also the pure helpers it calls
-- (0.1.0 revoked them): made again, they get the epilogue's rule for new
-- functions, as in a fresh install
DROP FUNCTION @extschema@._valid_schedule(jsonb);
DROP FUNCTION @extschema@._schedule_hint();

COMMENT ON COLUMN @extschema@.log.actor IS
    'the login that made the change (the session''s user); details->>''role'' names the role it acted as, when another';

-- A pg_cron job scheduled by 0.1.0 ran the whole cycle in one transaction;
-- it runs the cycle procedure now, one model per transaction.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'UPDATE cron.job SET command = $1 WHERE jobname = $2 AND command = $3'
          USING 'CALL @extschema@.run_cycle()', 'retrain-checks',
                'SELECT retrain.run_checks(); SELECT count(*) FROM retrain.guard_rollouts()';
    END IF;
END
$$;

-- A baseline is derived from a model's data (bin edges are quantiles of
-- its values, categories are its values): its rows are for the model's
-- owner and for whoever may read the prediction log (the analysts of the
-- GRANT recipe), not for every role.  Superusers and retrain's own
-- functions (the tables' owner) are not subject to it.
ALTER TABLE @extschema@.baselines ENABLE ROW LEVEL SECURITY;
CREATE POLICY baselines_readers ON @extschema@.baselines FOR SELECT
    USING (pg_catalog.has_table_privilege('@extschema@.predictions', 'SELECT')
           OR EXISTS (SELECT 1 FROM @extschema@.models m JOIN pg_catalog.pg_roles r ON r.rolname = m.owner
                       WHERE m.name = baselines.model AND pg_catalog.pg_has_role(r.oid, 'MEMBER')));
COMMENT ON POLICY baselines_readers ON @extschema@.baselines IS
    'Baselines are readable by members of the model''s owner role and by roles that may read retrain.predictions';

-- A rollback revokes a version's sign-offs: they are kept, marked, and no
-- longer count; the version may be signed again.
ALTER TABLE @extschema@.approvals ADD COLUMN revoked_at timestamptz;
ALTER TABLE @extschema@.approvals DROP CONSTRAINT approvals_pkey, DROP CONSTRAINT approvals_model_version_approver_key;
COMMENT ON TABLE @extschema@.approvals IS 'Sign-offs: who signed which version in which capacity, when, with what comment; a rollback of the version revokes them';
COMMENT ON COLUMN @extschema@.approvals.revoked_at IS 'when the sign-off stopped counting (the version was rolled back); NULL while it counts';
-- One sign-off per capacity and one per signer, among those that count: a
-- version rolled back is signed again.
CREATE UNIQUE INDEX approvals_capacity ON @extschema@.approvals (model, version, capacity) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX approvals_approver ON @extschema@.approvals (model, version, approver) WHERE revoked_at IS NULL;
COMMENT ON INDEX @extschema@.approvals_capacity IS 'One sign-off that counts per version and capacity';
COMMENT ON INDEX @extschema@.approvals_approver IS 'One sign-off that counts per version and signer';

-- trigger_state also remembers why a trigger cannot be evaluated (logged
-- once, not every cycle); a row need not hold a schedule occurrence.
ALTER TABLE @extschema@.trigger_state ALTER COLUMN last_occurrence DROP NOT NULL, ADD COLUMN unusable text;
COMMENT ON TABLE @extschema@.trigger_state IS 'Per model and trigger, the last schedule occurrence that fired, and why the trigger cannot be evaluated (internal state of run_checks)';
COMMENT ON COLUMN @extschema@.trigger_state.unusable IS 'why the trigger cannot be evaluated, as last logged (trigger_unusable); NULL when it can';

-- The prediction log becomes partitioned (monitoring.sql, partitions.sql):
-- retrain.predictions by day of predicted_at, retrain.outcomes by ranges of
-- prediction_id.  A table cannot be made partitioned in place, so 0.1.0's
-- two tables are renamed, given 0.2.0's columns and constraints, and
-- attached whole to the new parents as one partition each, of everything
-- before tomorrow (UTC) and of every prediction id so far: every row is
-- kept and none is copied; the rows 0.1.0 took in with a time ahead move to
-- the default partition.  The attached tables stop being the extension's:
-- they are the site's data, dumped as ordinary tables, as the partitions the
-- check cycle makes are.  What cannot be carried over is said: the site's
-- grants on the two tables and the sequence (a GRANT made by this script
-- would count as the extension's own and be left out of the next dump), and
-- objects of the site's that depend on the old tables stop the update (a
-- view would go on reading the old rows only).
DO $$
DECLARE
    deps text;
    bad bigint;
BEGIN
    SELECT string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), ', ') INTO deps
      FROM pg_depend d
      LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
     WHERE d.refclassid = 'pg_class'::regclass
       AND d.refobjid IN ('@extschema@.predictions'::regclass, '@extschema@.outcomes'::regclass)
       AND d.deptype = 'n'
       -- the tables' own check constraints go with them
       AND NOT (d.classid = 'pg_constraint'::regclass
                AND (SELECT c.conrelid FROM pg_constraint c WHERE c.oid = d.objid) = d.refobjid)
       -- the extension's own views and functions are made again below
       AND NOT EXISTS (SELECT 1 FROM pg_depend e
                        WHERE e.refclassid = 'pg_extension'::regclass AND e.deptype = 'e'
                          AND e.classid = CASE WHEN r.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END
                          AND e.objid = coalesce(r.ev_class, d.objid));
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'retrain: the 0.2.0 update makes retrain.predictions and retrain.outcomes partitioned, and these objects depend on the old tables: %', deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop them, update, and make them again (their definitions: pg_get_viewdef, pg_get_functiondef).';
    END IF;
    SELECT count(*) INTO bad FROM @extschema@.predictions p
     WHERE NOT (p.score > '-Infinity' AND p.score < 'Infinity') OR NOT (p.latency_ms < 'Infinity');
    IF bad > 0 THEN
        RAISE EXCEPTION 'retrain: % rows of retrain.predictions hold a NaN or infinite score or latency, which 0.2.0 refuses', bad
            USING ERRCODE = 'check_violation',
                  HINT = 'Correct or delete them, then update: SELECT * FROM retrain.predictions WHERE NOT (score > ''-Infinity'' AND score < ''Infinity'') OR NOT (latency_ms < ''Infinity'');';
    END IF;
    SELECT count(*) INTO bad FROM @extschema@.outcomes o WHERE NOT (o.actual > '-Infinity' AND o.actual < 'Infinity');
    IF bad > 0 THEN
        RAISE EXCEPTION 'retrain: % rows of retrain.outcomes hold a NaN or infinite actual value, which 0.2.0 refuses', bad
            USING ERRCODE = 'check_violation',
                  HINT = 'Correct or delete them, then update: SELECT * FROM retrain.outcomes WHERE NOT (actual > ''-Infinity'' AND actual < ''Infinity'');';
    END IF;
END
$$;

-- the site's grants, said again after the update.  Kept until then in a
-- setting local to the update's transaction, not a temporary table: Citus
-- runs the update on its workers in a prepared transaction, which may not
-- touch temporary objects.
SELECT pg_catalog.set_config('retrain_update.grants', coalesce(pg_catalog.jsonb_agg(g.statement ORDER BY g.statement), '[]')::text, true)
  FROM (SELECT format('GRANT %s ON %s %s TO %s;', string_agg(DISTINCT a.privilege_type, ', '),
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                      CASE c.relname WHEN 'predictions_0_1_0' THEN '@extschema@.predictions'
                                     WHEN 'outcomes_0_1_0' THEN '@extschema@.outcomes'
                                     ELSE '@extschema@.' || c.relname END,
                      CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END) AS statement
          FROM pg_class c, LATERAL aclexplode(c.relacl) a
         WHERE c.oid IN ('@extschema@.predictions'::regclass, '@extschema@.outcomes'::regclass, '@extschema@.predictions_id_seq'::regclass)
           AND a.grantee <> c.relowner
         GROUP BY c.relkind, c.relname, a.grantee) g;

-- 0.2.0's columns, constraints and indexes on the old tables (the
-- constraints are checked above: no row fails them)
ALTER TABLE @extschema@.predictions
    ADD CONSTRAINT predictions_score_finite CHECK (score > '-Infinity' AND score < 'Infinity'),
    ADD CONSTRAINT predictions_latency_finite CHECK (latency_ms < 'Infinity'),
    ADD COLUMN logged_at timestamptz,
    ADD COLUMN request_id text CONSTRAINT predictions_request_id_not_empty CHECK (request_id <> '');
ALTER TABLE @extschema@.outcomes
    ADD CONSTRAINT outcomes_actual_finite CHECK (actual > '-Infinity' AND actual < 'Infinity'),
    ADD COLUMN logged_at timestamptz,
    ADD COLUMN model text,
    ADD COLUMN predicted_at timestamptz;
-- An outcome's model and prediction time, set from its prediction by a
-- trigger (monitoring.sql), filled in here for the outcomes 0.1.0 logged.
UPDATE @extschema@.outcomes o SET model = p.model, predicted_at = p.predicted_at
  FROM @extschema@.predictions p WHERE p.id = o.prediction_id;
ALTER TABLE @extschema@.predictions RENAME TO predictions_0_1_0;
ALTER TABLE @extschema@.outcomes RENAME TO outcomes_0_1_0;
-- (PostgreSQL 18 names a NOT NULL constraint after its table, and the old
-- names would make the new tables' take others)
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT co.conrelid::regclass AS rel, co.conname, r.relname
               FROM pg_constraint co JOIN pg_class r ON r.oid = co.conrelid
              WHERE co.conrelid IN ('@extschema@.predictions_0_1_0'::regclass, '@extschema@.outcomes_0_1_0'::regclass)
                AND co.contype = 'n' LOOP
        EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', c.rel, c.conname,
                       c.relname || substr(c.conname, length(split_part(c.relname, '_0_1_0', 1)) + 1));
    END LOOP;
END
$$;
ALTER INDEX @extschema@.predictions_pkey RENAME TO predictions_0_1_0_pkey;
ALTER INDEX @extschema@.outcomes_pkey RENAME TO outcomes_0_1_0_pkey;
ALTER INDEX @extschema@.outcomes_observed_at RENAME TO outcomes_0_1_0_observed_at;
-- (model, predicted_at) made again with logged_at as a key column, and the
-- late rows by arrival (see monitoring.sql): the index is rebuilt, which on
-- a large log takes about as long as building it did
DROP INDEX @extschema@.predictions_model_time;
CREATE INDEX predictions_0_1_0_model_time ON @extschema@.predictions_0_1_0 (model, predicted_at, logged_at);
CREATE INDEX predictions_0_1_0_logged_late ON @extschema@.predictions_0_1_0 (model, logged_at)
    WHERE pg_catalog.timezone(interval '0', logged_at) > pg_catalog.timezone(interval '0', predicted_at) + interval '10 minutes';
CREATE UNIQUE INDEX predictions_0_1_0_model_request ON @extschema@.predictions_0_1_0 (model, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX outcomes_0_1_0_model_logged ON @extschema@.outcomes_0_1_0 (model, logged_at);
CREATE INDEX outcomes_0_1_0_model_observed ON @extschema@.outcomes_0_1_0 (model, observed_at);
CREATE INDEX outcomes_0_1_0_observed_later ON @extschema@.outcomes_0_1_0 (observed_at)
    WHERE observed_at > coalesce(logged_at, '-infinity');
-- the identity goes with the old table; the new one goes on from its value
-- (kept as the grants are: the next id it would hand out)
SELECT pg_catalog.set_config('retrain_update.next_id',
                             (CASE WHEN s.is_called THEN s.last_value + 1 ELSE s.last_value END)::text, true)
  FROM @extschema@.predictions_id_seq s;
-- (and out of the extension's configuration first: a sequence dropped there
-- would stay in its list)
ALTER EXTENSION retrain DROP SEQUENCE @extschema@.predictions_id_seq;
ALTER TABLE @extschema@.predictions_0_1_0 ALTER COLUMN id DROP IDENTITY;
ALTER TABLE @extschema@.predictions_0_1_0 ALTER COLUMN predicted_at DROP DEFAULT, ALTER COLUMN error DROP DEFAULT;
ALTER TABLE @extschema@.outcomes_0_1_0 ALTER COLUMN observed_at DROP DEFAULT;
DROP TRIGGER IF EXISTS outcomes_model ON @extschema@.outcomes_0_1_0;
DROP TRIGGER IF EXISTS predictions_model_moved ON @extschema@.predictions_0_1_0;

-- 0.2.0's tables, as monitoring.sql makes them
CREATE TABLE @extschema@.predictions (
    id           bigint GENERATED BY DEFAULT AS IDENTITY,
    model        text NOT NULL,
    version      text NOT NULL,
    unit_key     text,
    predicted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    score        pg_catalog.float8,
    latency_ms   pg_catalog.float8 CONSTRAINT predictions_latency_ms_check CHECK (latency_ms >= 0),
    error        boolean NOT NULL DEFAULT false,
    features     jsonb,
    -- when the row arrived (not when the prediction was made): the check
    -- cycle folds rows into its rollups in this order.  The start of the
    -- statement that wrote it: a volatile default (clock_timestamp) would
    -- cost COPY its batched inserts.
    logged_at    timestamptz DEFAULT pg_catalog.statement_timestamp(),
    -- the application's own id of the request it scored, unique per model:
    -- outcomes are logged by it (log_outcome(model, request_id, ...)), so a
    -- bulk COPY of predictions needs no ids back
    request_id   text CONSTRAINT predictions_request_id_not_empty CHECK (request_id <> ''),
    -- a figure the checks aggregate is a number they can take, whatever
    -- writes the row (log_prediction, INSERT, COPY)
    CONSTRAINT predictions_score_finite CHECK (score > '-Infinity' AND score < 'Infinity'),
    CONSTRAINT predictions_latency_finite CHECK (latency_ms < 'Infinity')
) PARTITION BY RANGE (predicted_at);
CREATE TABLE @extschema@.predictions_default PARTITION OF @extschema@.predictions DEFAULT;
-- Every partition's key and indexes (partitions.sql makes the same for
-- each day):
--
-- A model's rows by prediction time (its windows), with the time each
-- arrived as a key column: the cycle's question "what arrived since the
-- last fold" is then answered inside this index for the rows predicted
-- since a little before that fold, and a second index on arrival, which
-- every insert would pay for (a fifth of a COPY), is needed only for the
-- rows logged long after their prediction (a backfill, a batch loaded
-- late).  The ten minutes are part of the cycle's queries (rollups.sql).
-- The times are compared as timestamps at a fixed offset of zero: their
-- difference would raise an error on an infinite time (and so refuse the
-- row), adding an interval to a timestamptz is not immutable, and a zone
-- given by name would be looked up for every row.
--
-- The request ids, unique in the partition (a unique index of the parent
-- would have to hold the time): a second row of the same id in the same
-- day is refused, two sessions racing included, and log_prediction() looks
-- in every partition before it inserts.  Only the rows that carry a
-- request id: a prediction without one costs the index nothing.
ALTER TABLE @extschema@.predictions_default ADD CONSTRAINT predictions_default_pkey PRIMARY KEY (id);
CREATE INDEX predictions_default_model_time ON @extschema@.predictions_default (model, predicted_at, logged_at);
CREATE INDEX predictions_default_logged_late ON @extschema@.predictions_default (model, logged_at)
    WHERE pg_catalog.timezone(interval '0', logged_at) > pg_catalog.timezone(interval '0', predicted_at) + interval '10 minutes';
CREATE UNIQUE INDEX predictions_default_model_request ON @extschema@.predictions_default (model, request_id)
    WHERE request_id IS NOT NULL;
COMMENT ON INDEX @extschema@.predictions_default_model_time IS
    'A model''s predictions by time, and when each arrived: its windows, and what arrived since a fold among those predicted lately';
COMMENT ON INDEX @extschema@.predictions_default_logged_late IS
    'A model''s predictions logged more than ten minutes after their prediction time, by arrival';
COMMENT ON INDEX @extschema@.predictions_default_model_request IS
    'A model''s predictions by the application''s request id, unique in the partition, for log_outcome(model, request_id, ...)';
COMMENT ON SEQUENCE @extschema@.predictions_id_seq IS 'Ids of logged predictions';
COMMENT ON TABLE @extschema@.predictions IS
    'The prediction log: one row per prediction served (score: probability of the positive class, or the predicted value), partitioned by day of predicted_at';
COMMENT ON TABLE @extschema@.predictions_default IS
    'The prediction log''s rows that no day''s partition holds';
COMMENT ON COLUMN @extschema@.predictions.score IS 'probability of the positive class (classification) or predicted value (regression)';
COMMENT ON COLUMN @extschema@.predictions.error IS 'the prediction failed (the application served its fallback)';
COMMENT ON COLUMN @extschema@.predictions.features IS 'the feature values scored, for drift checks';
COMMENT ON COLUMN @extschema@.predictions.logged_at IS
    'when the statement that wrote the row began (left to its default); NULL for rows logged before retrain 0.2.0';
COMMENT ON COLUMN @extschema@.predictions.request_id IS
    'the application''s id of the request it scored (unique per model; NULL when it gives none), for log_outcome(model, request_id, ...)';

-- Outcomes are partitioned by their prediction's id, in ranges
-- (partitions.sql): the key stays the prediction alone, so that a
-- prediction has one outcome, which a key with a time in it could not
-- promise; and ids are handed out in the order predictions arrive, so a
-- range is a span of time all the same, dropped once none of its
-- predictions is left.
CREATE TABLE @extschema@.outcomes (
    prediction_id bigint NOT NULL,
    label         boolean,
    actual        pg_catalog.float8,
    observed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    logged_at     timestamptz DEFAULT pg_catalog.statement_timestamp(),
    -- its prediction's, set by a trigger however the row is written
    model         text,
    -- its prediction's time, set by the same trigger: the cycle finds the
    -- prediction of an outcome that arrived late in that day's partition
    -- alone (a join by id alone would look in every partition)
    predicted_at  timestamptz,
    CONSTRAINT outcomes_check CHECK ((label IS NULL) <> (actual IS NULL)),
    CONSTRAINT outcomes_actual_finite CHECK (actual > '-Infinity' AND actual < 'Infinity')
) PARTITION BY RANGE (prediction_id);
CREATE TABLE @extschema@.outcomes_default PARTITION OF @extschema@.outcomes DEFAULT;
-- Every partition's key and indexes: the check cycle's reads are, per
-- model, what arrived since it last folded, the labels observed since the
-- last training, and those observed after they arrived (a time that was
-- ahead).
ALTER TABLE @extschema@.outcomes_default ADD CONSTRAINT outcomes_default_pkey PRIMARY KEY (prediction_id);
CREATE INDEX outcomes_default_observed_at ON @extschema@.outcomes_default (observed_at);
CREATE INDEX outcomes_default_model_logged ON @extschema@.outcomes_default (model, logged_at);
CREATE INDEX outcomes_default_model_observed ON @extschema@.outcomes_default (model, observed_at);
CREATE INDEX outcomes_default_observed_later ON @extschema@.outcomes_default (observed_at)
    WHERE observed_at > coalesce(logged_at, '-infinity');
COMMENT ON INDEX @extschema@.outcomes_default_observed_at IS 'Outcomes by the time they were observed';
COMMENT ON INDEX @extschema@.outcomes_default_model_logged IS 'A model''s outcomes by arrival, for the cycle''s fold';
COMMENT ON INDEX @extschema@.outcomes_default_model_observed IS 'A model''s outcomes by the time they were observed, for label counts';
COMMENT ON INDEX @extschema@.outcomes_default_observed_later IS 'Outcomes observed after they were logged (a time that was ahead)';
-- the default partition alone: retention finds there the outcomes whose
-- predictions are gone and that no range of ids will take (partitions.sql)
CREATE INDEX outcomes_default_predicted_at ON @extschema@.outcomes_default (predicted_at);
COMMENT ON INDEX @extschema@.outcomes_default_predicted_at IS
    'The default partition''s outcomes by their prediction''s time, for retention';
COMMENT ON TABLE @extschema@.outcomes IS
    'What happened: the label (classification) or actual value (regression) of a logged prediction, partitioned by ranges of prediction_id';
COMMENT ON TABLE @extschema@.outcomes_default IS
    'The outcomes that no range''s partition holds';
COMMENT ON COLUMN @extschema@.outcomes.logged_at IS
    'when the statement that wrote the row began (left to its default); NULL for rows logged before retrain 0.2.0';
COMMENT ON COLUMN @extschema@.outcomes.model IS
    'the model of the prediction, set from it whenever the row is written';
COMMENT ON COLUMN @extschema@.outcomes.predicted_at IS
    'the predicted_at of the prediction, set from it whenever the row is written';

REVOKE ALL ON @extschema@.predictions, @extschema@.outcomes,
              @extschema@.predictions_default, @extschema@.outcomes_default FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.predictions_default', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.predictions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outcomes_default', '');
SELECT pg_catalog.setval('@extschema@.predictions_id_seq',
                         pg_catalog.current_setting('retrain_update.next_id')::bigint, false);

-- The old tables attached: everything predicted before tomorrow (UTC), and
-- the outcomes of every prediction id handed out so far.  Rows beyond move
-- to the default partitions first (a prediction time ahead; an outcome of
-- an id not handed out yet, which only a hand-written row can have).
DO $$
DECLARE
    tomorrow timestamptz := date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day';
    next_id bigint := pg_catalog.current_setting('retrain_update.next_id')::bigint;
    g text;
BEGIN
    WITH m AS (DELETE FROM @extschema@.predictions_0_1_0 p WHERE p.predicted_at >= tomorrow RETURNING p.*)
    INSERT INTO @extschema@.predictions_default SELECT * FROM m;
    WITH m AS (DELETE FROM @extschema@.outcomes_0_1_0 o WHERE o.prediction_id >= next_id RETURNING o.*)
    INSERT INTO @extschema@.outcomes_default SELECT * FROM m;
    EXECUTE format('ALTER TABLE @extschema@.predictions ATTACH PARTITION @extschema@.predictions_0_1_0 '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', tomorrow);
    EXECUTE format('ALTER TABLE @extschema@.outcomes ATTACH PARTITION @extschema@.outcomes_0_1_0 '
                   'FOR VALUES FROM (MINVALUE) TO (%s)', next_id);
    EXECUTE format('COMMENT ON TABLE @extschema@.predictions_0_1_0 IS %L',
                   format('Partition of retrain.predictions: the rows logged before retrain 0.2.0, predicted before %s', tomorrow));
    EXECUTE format('COMMENT ON TABLE @extschema@.outcomes_0_1_0 IS %L',
                   format('Partition of retrain.outcomes: the rows logged before retrain 0.2.0, of predictions before id %s', next_id));
    ALTER EXTENSION retrain DROP TABLE @extschema@.predictions_0_1_0;
    ALTER EXTENSION retrain DROP TABLE @extschema@.outcomes_0_1_0;
    FOR g IN SELECT u.statement FROM jsonb_array_elements_text(pg_catalog.current_setting('retrain_update.grants')::jsonb) u (statement)
              ORDER BY 1 LOOP
        RAISE WARNING 'retrain: retrain.predictions and retrain.outcomes are new, partitioned tables; after the update, run: %', g;
    END LOOP;
END
$$;

-- A freeze halts new deployments of a model (freeze(), unfreeze()).
ALTER TABLE @extschema@.deployments
    ADD COLUMN frozen_reason text, ADD COLUMN frozen_by name, ADD COLUMN frozen_at timestamptz,
    ADD COLUMN frozen_until timestamptz;
COMMENT ON COLUMN @extschema@.deployments.frozen_reason IS 'why new deployments are halted (freeze()); NULL when not frozen';
COMMENT ON COLUMN @extschema@.deployments.frozen_by IS 'who froze the model';
COMMENT ON COLUMN @extschema@.deployments.frozen_at IS 'when the model was frozen';
COMMENT ON COLUMN @extschema@.deployments.frozen_until IS 'when the freeze ends by itself (NULL: until unfreeze())';

-- A request's priority: the highest of its reasons' triggers.
ALTER TABLE @extschema@.requests
    ADD COLUMN priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low'));
COMMENT ON COLUMN @extschema@.requests.priority IS 'high, normal or low: the highest of its reasons'' triggers; claim_request() hands out high first';

-- Shadow scoring starts at a time: rollout.shadow_min counts from it.
ALTER TABLE @extschema@.deployments ADD COLUMN shadow_since timestamptz;
COMMENT ON COLUMN @extschema@.deployments.shadow_since IS 'when the version in shadow started shadow scoring (rollout.shadow_min counts from here)';
-- A shadow of 0.1.0 started when it was promoted to shadow, as its log says.
UPDATE @extschema@.deployments d
   SET shadow_since = (SELECT max(l.at) FROM @extschema@.log l
                        WHERE l.model = d.model AND l.version = d.shadow_version AND l.event = 'promoted'
                          AND l.details->>'strategy' = 'shadow')
 WHERE d.shadow_version IS NOT NULL;

-- Evidence recorded after registration (record_metrics, smoke_test,
-- shadow_report).
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

-- Versions: several seeds, named artifacts, and the stage archived
-- (retire(), versions.keep).
ALTER TABLE @extschema@.model_versions
    ADD COLUMN seeds bigint[],
    ADD COLUMN artifacts jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(artifacts) = 'object'),
    DROP CONSTRAINT model_versions_stage_check,
    ADD CONSTRAINT model_versions_stage_check
        CHECK (stage IN ('registered', 'shadow', 'canary', 'production', 'previous', 'retired', 'rolled_back', 'archived'));
COMMENT ON COLUMN @extschema@.model_versions.stage IS 'registered, shadow, canary, production, previous (the standby after a swap), retired, rolled_back, archived (retire() or versions.keep: kept for lineage, never promoted)';
COMMENT ON COLUMN @extschema@.model_versions.seeds IS 'every random seed of the training run, when there is more than one (seed holds the main one)';
COMMENT ON COLUMN @extschema@.model_versions.artifacts IS 'named artifacts besides the model: name -> {"uri", "sha256"} (metrics file, manifest, reports)';

-- A reminder per schedule occurrence (remind_before): the last one sent.
ALTER TABLE @extschema@.trigger_state ADD COLUMN last_reminded timestamptz;
COMMENT ON COLUMN @extschema@.trigger_state.last_reminded IS 'the last schedule occurrence a reminder was sent for (remind_before)';

-- A numeric baseline keeps its training range (eligibility.data_quality):
-- baselines captured by 0.1.0 have none until captured again.
ALTER TABLE @extschema@.baselines
    ADD COLUMN min_value pg_catalog.float8,
    ADD COLUMN max_value pg_catalog.float8,
    ADD CONSTRAINT baselines_range CHECK ((kind = 'numeric' OR (min_value IS NULL AND max_value IS NULL))
                                         AND (min_value IS NULL) = (max_value IS NULL) AND min_value <= max_value);
COMMENT ON COLUMN @extschema@.baselines.min_value IS 'numeric: the smallest training value (the training range''s low end; NULL for a baseline captured before 0.2.0)';
COMMENT ON COLUMN @extschema@.baselines.max_value IS 'numeric: the largest training value';

-- What each check cycle decided, kept (check_results; its view comes with
-- the @replace sections).
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

-- Rollups: the window's states per model, version and bucket (rollups.sql).
-- Per model, version and time bucket, the states of a bucket's predictions
-- (and of the outcomes known when it was folded, and of later ones folded
-- since): what check()'s window figures merge instead of reading rows.
CREATE TABLE @extschema@.rollups (
    model        text NOT NULL,
    version      text NOT NULL,
    bucket_start timestamptz NOT NULL,
    predictions  bigint NOT NULL,
    invalid      bigint NOT NULL,
    labelled     bigint NOT NULL,
    confidence   bytea,
    rank_state   bytea,
    confusion    @extschema@.confusion,
    brier        bytea,
    log_loss     bytea,
    mae          bytea,
    rmse         bytea,
    -- what the rollout guard reads: latencies (_latency_state), errors
    -- among the predictions that say (error not NULL), and scores no
    -- metric can take whatever the outcome (NaN, infinite, outside [0, 1]
    -- for a classifier)
    latency      bytea,
    errors       bigint NOT NULL DEFAULT 0,
    error_known  bigint NOT NULL DEFAULT 0,
    bad_scores   bigint NOT NULL DEFAULT 0,
    features     jsonb NOT NULL DEFAULT '{}',
    -- the latest prediction folded in: a bucket a window ends in is whole
    -- for it up to there
    last_predicted_at timestamptz,
    -- the feature counts of the model's earlier buckets (those kept and
    -- those dropped since): a window's counts are then the difference of
    -- two rows' rather than the sum of every bucket's.  NULL until the
    -- fold that wrote the row has made it (_prefix_features); a reader
    -- adds the buckets up instead.
    features_before jsonb,
    PRIMARY KEY (model, version, bucket_start)
);
COMMENT ON TABLE @extschema@.rollups IS
    'Per model, version and time bucket: counts and the aggregates'' serialized states of its predictions and their outcomes (internal state of the check cycle; rebuild_rollups() recomputes it)';
COMMENT ON COLUMN @extschema@.rollups.features_before IS
    'the feature counts of the earlier buckets of the model and version, as a running sum (NULL: not yet made)';
-- the rows whose running sum is still to be made: few, and found at once
CREATE INDEX rollups_features_unmade ON @extschema@.rollups (model, version, bucket_start)
    WHERE features_before IS NULL;
COMMENT ON INDEX @extschema@.rollups_features_unmade IS 'Rollup rows whose running sum of feature counts is still to be made';
-- How far each model's rollups reach, and what they were made with: a
-- change of bucket width, threshold, source or baseline starts them again.
CREATE TABLE @extschema@.rollup_marks (
    model          text PRIMARY KEY,
    bucket         interval NOT NULL,
    threshold      pg_catalog.float8 NOT NULL,
    made_with      jsonb NOT NULL,
    computed_from  timestamptz NOT NULL,
    computed_until timestamptz NOT NULL,
    outcomes_until timestamptz NOT NULL
);
COMMENT ON TABLE @extschema@.rollup_marks IS
    'Per model: the rows its rollups hold (of retrain.predictions: logged up to computed_until; of a source: predicted in [computed_from, computed_until), outcomes observed up to outcomes_until), and the bucket width, threshold, source and baselines (made_with) they were made with (internal)';
-- Derived from the prediction log: not for every role.  A cache, not data:
-- pg_dump leaves them out, and after a restore the next cycle folds the
-- windows again.
REVOKE ALL ON @extschema@.rollups, @extschema@.rollup_marks FROM PUBLIC;

-- The cycle asks, a model at a time, for the last event of a kind
-- (failures_reset; the guard: promoted, advanced, traffic_changed): by
-- model alone that read every event of the model, a number that grows
-- with every cycle.
CREATE INDEX log_model_event_at ON @extschema@.log (model, event, at);
COMMENT ON INDEX @extschema@.log_model_event_at IS 'A model''s events of one kind in time order, for the cycle';

-- A model's finished requests by status, for every check (cooldown,
-- failed trainings in a row): without it each check read every request of
-- every model.
CREATE INDEX requests_model_status ON @extschema@.requests (model, status, finished_at);
COMMENT ON INDEX @extschema@.requests_model_status IS 'A model''s requests by status and end, for the cycle';

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

-- When the chain was last found whole: each check cycle checks the rows
-- added since its previous check ("cycle"), verify_log() the whole chain
-- ("full"); monitoring reads the latest of each.  A transaction that
-- cannot write (a hot standby, a read-only one) checks without a record.
CREATE TABLE @extschema@.log_verifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    verified_at  timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('full', 'cycle')),
    ok           boolean NOT NULL,
    first_bad_id bigint,
    upto_id      bigint NOT NULL,
    rows_checked bigint NOT NULL,
    verified_by  name NOT NULL
);
COMMENT ON TABLE @extschema@.log_verifications IS
    'Checks of retrain.log''s hash chain: by each check cycle, of the rows added since its last check (kind cycle), and by verify_log(), of the whole chain (kind full); the latest 100 of each kind are kept';
COMMENT ON COLUMN @extschema@.log_verifications.upto_id IS 'the last row the check reached (the head, when whole)';
COMMENT ON COLUMN @extschema@.log_verifications.first_bad_id IS 'where the chain breaks, when not ok';
COMMENT ON SEQUENCE @extschema@.log_verifications_id_seq IS 'Ids of log verifications';
REVOKE ALL ON @extschema@.log_verifications FROM PUBLIC;
GRANT SELECT ON @extschema@.log_verifications TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_verifications', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_verifications_id_seq', '');
