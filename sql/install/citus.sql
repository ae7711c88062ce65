-- The prediction log on Citus (docs/scaling.md): retrain.predictions and
-- retrain.outcomes distributed by model and co-located, so that a model's
-- predictions and their outcomes sit on one node and every join of the
-- checks and rollups (on prediction id and model) runs there.  The registry,
-- the rollups and the retraining log stay ordinary tables of the
-- coordinator, where the check cycle runs.  Nothing here needs Citus to be
-- installed: the functions look for it when they run.

-- @replace

-- Whether the prediction log is a Citus distributed table.  Read from
-- Citus's catalog by name, since it exists only where Citus is installed.
CREATE OR REPLACE FUNCTION @extschema@._log_distributed()
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    distributed boolean;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = $1)'
       INTO distributed USING '@extschema@.predictions'::pg_catalog.regclass;
    RETURN distributed;
END
$$;
COMMENT ON FUNCTION @extschema@._log_distributed() IS
    'Whether retrain.predictions is distributed with Citus (internal)';

-- Whether this database is a Citus worker node: Citus installed, and this
-- node not its coordinator.  Citus creates retrain on every worker, with a
-- registry of its own that stays empty; the check cycle, partition
-- maintenance and distribute() run on the coordinator only, where the
-- registry and the log's partitions are.
CREATE OR REPLACE FUNCTION @extschema@._on_citus_worker()
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coordinator boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    RETURN NOT coordinator;
END
$$;
COMMENT ON FUNCTION @extschema@._on_citus_worker() IS
    'Whether this database is a Citus worker node, where the check cycle does not run (internal)';

-- Each partition of the log keyed by its id and the model: Citus requires
-- the distribution column in every unique constraint.  The id stays first,
-- for the lookups by id (log_outcome), and unique across nodes by the
-- ranges _spread_prediction_ids() gives each node.
CREATE OR REPLACE FUNCTION @extschema@._key_log_partitions_by_model()
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    n integer := 0;
BEGIN
    FOR p IN SELECT l.part, c.relname, con.conname,
                    CASE WHEN l.parent = 'predictions' THEN 'id' ELSE 'prediction_id' END AS key
               FROM (SELECT x.part, 'predictions' AS parent FROM @extschema@._log_partitions('@extschema@.predictions') x
                     UNION ALL
                     SELECT x.part, 'outcomes' FROM @extschema@._log_partitions('@extschema@.outcomes') x) l
               JOIN pg_class c ON c.oid = l.part
               LEFT JOIN pg_constraint con ON con.conrelid = l.part AND con.contype = 'p' LOOP
        IF p.conname IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', p.part, p.conname);
        END IF;
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (%I, model)', p.part,
                       coalesce(p.conname, p.relname || '_pkey'), p.key);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._key_log_partitions_by_model() IS
    'Key every partition of the prediction log by its id and the model, as Citus requires; returns the partitions keyed (internal)';

-- What the log's triggers guarantee on one node, kept on a distributed log
-- by privileges instead (a trigger there would run on a worker's shard,
-- reading the other table across nodes, and Citus routes a row by its model
-- before any trigger could set it): an outcome is written by log_outcome(),
-- which files it under its prediction's model and time; a prediction's
-- model and time do not change (Citus refuses a change of the model).  So
-- no role but the tables' owner keeps INSERT or UPDATE on
-- retrain.outcomes, or UPDATE on retrain.predictions, table or column.
-- Returns the privileges taken, as "role: PRIVILEGE on table".
CREATE OR REPLACE FUNCTION @extschema@._revoke_log_writes()
    RETURNS text[]
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    grantee text;
    taken text[] := '{}';
BEGIN
    FOR g IN SELECT DISTINCT t.relid, a.grantee, a.privilege_type
               FROM (VALUES ('@extschema@.outcomes'::regclass, ARRAY['INSERT', 'UPDATE']),
                            ('@extschema@.predictions'::regclass, ARRAY['UPDATE'])) t(relid, privs)
               JOIN pg_class c ON c.oid = t.relid
               CROSS JOIN LATERAL (SELECT x.grantee, x.privilege_type FROM aclexplode(c.relacl) x
                                   UNION ALL
                                   SELECT x.grantee, x.privilege_type
                                     FROM pg_attribute att, aclexplode(att.attacl) x
                                    WHERE att.attrelid = t.relid AND att.attacl IS NOT NULL) a
              WHERE a.privilege_type = ANY (t.privs) AND a.grantee <> c.relowner
              ORDER BY 1, 2, 3 LOOP
        -- a table's REVOKE takes the column privileges with it
        -- (a role's name as regrole prints it is already quoted as needed)
        grantee := CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END;
        EXECUTE format('REVOKE %s ON %s FROM %s', g.privilege_type, g.relid, grantee);
        taken := taken || format('%s: %s on %s', grantee, g.privilege_type, g.relid);
    END LOOP;
    RETURN taken;
END
$$;
COMMENT ON FUNCTION @extschema@._revoke_log_writes() IS
    'Take INSERT and UPDATE on retrain.outcomes and UPDATE on retrain.predictions from every role but their owner; returns what was taken (internal)';

-- The workers' own copies of the log's partitions that are not the
-- extension's: an update from 0.1.0 run on a worker (Citus runs ALTER
-- EXTENSION on every node) attached its empty old tables there as
-- partitions (predictions_0_1_0, outcomes_0_1_0), and Citus, making the
-- coordinator's partitions of the same names on the workers, would find
-- them taken.  Dropped when empty; a worker whose copy holds rows (logged
-- on the worker before the log was distributed, where no check ever read
-- them) stops the distribution, for an operator to look at.  Returns the
-- partitions dropped, per worker.
CREATE OR REPLACE FUNCTION @extschema@._drop_workers_stray_partitions()
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- a worker's partitions of the log that are not the extension's
    stray constant text := $s$
        SELECT i.inhrelid::pg_catalog.regclass AS part
          FROM pg_catalog.pg_inherits i
         WHERE i.inhparent IN ('@extschema@.predictions'::pg_catalog.regclass, '@extschema@.outcomes'::pg_catalog.regclass)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND d.objid = i.inhrelid AND d.deptype = 'e')$s$;
    found jsonb;
    failed jsonb;
BEGIN
    SELECT coalesce(jsonb_object_agg(w.nodename || ':' || w.nodeport,
                                     CASE WHEN w.success THEN w.result::jsonb ELSE to_jsonb(w.result) END), '{}')
      INTO found
      FROM pg_catalog.run_command_on_workers(
             format('SELECT COALESCE(pg_catalog.jsonb_agg(s.part::text ORDER BY s.part::text), ''[]'') FROM (%s) s', stray)) w
     WHERE w.result <> '[]';
    IF EXISTS (SELECT 1 FROM jsonb_each(found) e WHERE jsonb_typeof(e.value) <> 'array') THEN
        RAISE EXCEPTION 'retrain.distribute: a worker''s own partitions of the log could not be listed: %', found
            USING ERRCODE = 'connection_failure';
    END IF;
    SELECT jsonb_object_agg(w.nodename || ':' || w.nodeport, w.result)
      INTO failed
      FROM pg_catalog.run_command_on_workers(format(
             'DO $w$ DECLARE r record; held boolean; BEGIN FOR r IN %s LOOP '
             'EXECUTE pg_catalog.format(''SELECT EXISTS (SELECT 1 FROM %%s)'', r.part) INTO held; '
             'IF held THEN RAISE EXCEPTION ''%%: rows logged on this worker before the log was distributed'', r.part '
             'USING ERRCODE = ''object_not_in_prerequisite_state''; END IF; '
             'EXECUTE pg_catalog.format(''DROP TABLE %%s'', r.part); END LOOP; END $w$', stray)) w
     WHERE NOT w.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.distribute: a worker''s own partitions of the log could not be dropped: %', failed
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION @extschema@._drop_workers_stray_partitions() IS
    'Drop the empty partitions of the log that a worker made itself (an update from 0.1.0 run there), before distributing it (internal)';

-- A prediction's id comes from the identity's sequence of the node that
-- takes the row, and each node has its own copy of it (Citus does not
-- share a sequence an extension made): each worker draws from a range of
-- its own, 2^48 ids from its group id times 2^48, as Citus does for the
-- sequences it distributes itself; the coordinator (group 0) keeps the ids
-- below 2^48.  Only moved forward, never back.  Returns each worker and
-- its next id.
CREATE OR REPLACE FUNCTION @extschema@._spread_prediction_ids()
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spread jsonb;
BEGIN
    EXECUTE $q$
        SELECT coalesce(jsonb_object_agg(w.nodename || ':' || w.nodeport,
                                         CASE WHEN w.success THEN to_jsonb(w.result::bigint + 1)
                                              ELSE to_jsonb(w.result) END), '{}')
          FROM pg_catalog.run_command_on_workers(
                 'SELECT CASE WHEN s.last_value < g.lo THEN pg_catalog.setval(''@extschema@.predictions_id_seq'', g.lo) '
                 'ELSE s.last_value END FROM @extschema@.predictions_id_seq s, '
                 '(SELECT l.groupid::bigint << 48 AS lo FROM pg_catalog.pg_dist_local_group l) g') w
    $q$ INTO spread;
    IF EXISTS (SELECT 1 FROM jsonb_each(spread) e WHERE jsonb_typeof(e.value) <> 'number') THEN
        RAISE EXCEPTION 'retrain.distribute: a worker''s prediction ids could not be given their range: %', spread
            USING ERRCODE = 'connection_failure';
    END IF;
    RETURN spread;
END
$$;
COMMENT ON FUNCTION @extschema@._spread_prediction_ids() IS
    'Move each Citus worker''s sequence of prediction ids into a range of its own (group id times 2^48); returns each worker''s next id (internal)';

-- Distribute the prediction log with Citus, in one call on the
-- coordinator, after CREATE EXTENSION citus and adding the workers: the
-- partitions keyed with the model, the triggers replaced by privileges,
-- retrain.predictions distributed by model and retrain.outcomes co-located
-- with it, and each worker's ids given their own range.  Called again
-- (after a node was added) it gives the new workers their ranges.  For a
-- superuser (not PUBLIC): it changes the extension's own tables.
CREATE OR REPLACE FUNCTION @extschema@.distribute(shard_count integer DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done jsonb := '{}';
BEGIN
    PERFORM @extschema@._refuse_in_owner_code('distribute');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'retrain.distribute: the citus extension is not installed in database "%"', current_database()
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'CREATE EXTENSION citus, add the workers (citus_add_node), then call retrain.distribute().';
    END IF;
    IF @extschema@._on_citus_worker() THEN
        RAISE EXCEPTION 'retrain.distribute: this node is a Citus worker; call it on the coordinator'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF shard_count IS NOT NULL AND (shard_count < 1 OR shard_count > 64000) THEN
        RAISE EXCEPTION 'retrain.distribute: shard_count must be between 1 and 64000, not %', shard_count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT @extschema@._log_distributed() THEN
        -- no row written while the keys change and the rows move
        LOCK TABLE @extschema@.predictions, @extschema@.outcomes IN ACCESS EXCLUSIVE MODE;
        DROP TRIGGER IF EXISTS outcomes_model ON @extschema@.outcomes;
        DROP TRIGGER IF EXISTS predictions_model_moved ON @extschema@.predictions;
        DROP TRIGGER IF EXISTS predictions_time_kept ON @extschema@.predictions;
        done := jsonb_build_object('partitions_keyed', @extschema@._key_log_partitions_by_model(),
                                   'privileges_taken', to_jsonb(@extschema@._revoke_log_writes()));
        -- (what this does on the workers is not undone if this transaction
        -- fails, so it comes as late as it can: just before the
        -- distribution that needs it)
        done := done || jsonb_strip_nulls(jsonb_build_object(
            'worker_partitions_dropped', nullif(@extschema@._drop_workers_stray_partitions(), '{}')));
        EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''model'', shard_count => $2)'
          USING '@extschema@.predictions'::regclass,
                coalesce(shard_count, current_setting('citus.shard_count')::integer);
        EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''model'', colocate_with => $2)'
          USING '@extschema@.outcomes'::regclass, '@extschema@.predictions'::text;
        done := done || jsonb_build_object('distributed', jsonb_build_array('retrain.predictions', 'retrain.outcomes'));
    END IF;
    done := done || jsonb_build_object('worker_ids_from', @extschema@._spread_prediction_ids());
    PERFORM @extschema@._log(NULL, NULL, 'log_distributed', done);
    RETURN done;
END
$$;
COMMENT ON FUNCTION @extschema@.distribute(integer) IS
    'Distribute the prediction log with Citus by model (retrain.outcomes co-located), on the coordinator; again after adding a node, to give it its range of prediction ids; returns what it did';
