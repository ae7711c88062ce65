-- The prediction log's partitions: retrain.predictions by day of
-- predicted_at (UTC), retrain.outcomes by ranges of prediction_id.  The
-- check cycle makes the coming days' partitions and drops those older than
-- retrain.prediction_retention; every partition made or dropped is logged.
--
-- A partition is made apart and then attached: CREATE TABLE ... PARTITION
-- OF would hold an ACCESS EXCLUSIVE lock on the parent, and so stop every
-- application's inserts, while ATTACH PARTITION takes one that inserts and
-- reads pass.  Dropping does take the parent's ACCESS EXCLUSIVE lock, for a
-- moment; both under a short lock_timeout, so that a long report holding
-- the table makes the cycle try again later instead of queueing the
-- applications behind it.

-- @replace

-- A table's partitions and their bounds, as text (a time for predictions,
-- printed in UTC; an id for outcomes), NULL for MINVALUE or MAXVALUE.
CREATE OR REPLACE FUNCTION @extschema@._log_partitions(parent pg_catalog.regclass)
    RETURNS TABLE (part pg_catalog.regclass, lo text, hi text, is_default boolean)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET DateStyle = 'ISO, YMD'
AS $$
    SELECT c.oid::regclass,
           nullif(btrim(b[1], ''''), 'MINVALUE'),
           nullif(btrim(b[2], ''''), 'MAXVALUE'),
           b IS NULL
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') b ON true
     WHERE i.inhparent = parent
$$;
COMMENT ON FUNCTION @extschema@._log_partitions(pg_catalog.regclass) IS
    'The partitions of retrain.predictions or retrain.outcomes with their bounds as text (NULL: unbounded) and whether each is the default (internal)';

-- A partition's key and indexes, as monitoring.sql gives the default
-- partitions (and says why they are not the parent's).
CREATE OR REPLACE FUNCTION @extschema@._index_log_partition(parent text, name text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- on a log distributed with Citus the key holds the model (see
    -- _key_log_partitions_by_model)
    by_model text := CASE WHEN @extschema@._log_distributed() THEN ', model' ELSE '' END;
BEGIN
    IF parent = 'predictions' THEN
        EXECUTE format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I PRIMARY KEY (id%s)', name, name || '_pkey', by_model);
        EXECUTE format('CREATE INDEX %I ON @extschema@.%I (model, predicted_at, logged_at)', name || '_model_time', name);
        EXECUTE format('CREATE INDEX %I ON @extschema@.%I (model, logged_at) '
                       'WHERE pg_catalog.timezone(interval ''0'', logged_at) > '
                       'pg_catalog.timezone(interval ''0'', predicted_at) + interval ''10 minutes''',
                       name || '_logged_late', name);
        EXECUTE format('CREATE UNIQUE INDEX %I ON @extschema@.%I (model, request_id) WHERE request_id IS NOT NULL',
                       name || '_model_request', name);
    ELSE
        EXECUTE format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I PRIMARY KEY (prediction_id%s)', name, name || '_pkey',
                       by_model);
        EXECUTE format('CREATE INDEX %I ON @extschema@.%I (observed_at)', name || '_observed_at', name);
        EXECUTE format('CREATE INDEX %I ON @extschema@.%I (model, logged_at)', name || '_model_logged', name);
        EXECUTE format('CREATE INDEX %I ON @extschema@.%I (model, observed_at)', name || '_model_observed', name);
        EXECUTE format('CREATE INDEX %I ON @extschema@.%I (observed_at) WHERE observed_at > coalesce(logged_at, ''-infinity'')',
                       name || '_observed_later', name);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._index_log_partition(text, text) IS
    'Give a new partition of retrain.predictions or retrain.outcomes its key and indexes (internal)';

-- Make one partition of the log: a table like the parent, the rows of its
-- range moved in from the default partition (which could not take the
-- partition otherwise), its key and indexes, attached.  Returns the rows
-- moved.
CREATE OR REPLACE FUNCTION @extschema@._make_log_partition(parent text, name text, lo text, hi text)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text := CASE parent WHEN 'predictions' THEN 'predicted_at' ELSE 'prediction_id' END;
    moved bigint;
BEGIN
    EXECUTE format('CREATE TABLE @extschema@.%I (LIKE @extschema@.%I INCLUDING CONSTRAINTS)', name, parent);
    EXECUTE format('WITH m AS (DELETE FROM ONLY @extschema@.%2$I d WHERE d.%3$I >= %4$L AND d.%3$I < %5$L RETURNING d.*) '
                   'INSERT INTO @extschema@.%1$I SELECT * FROM m', name, parent || '_default', key, lo, hi);
    GET DIAGNOSTICS moved = ROW_COUNT;
    PERFORM @extschema@._index_log_partition(parent, name);
    EXECUTE format('ALTER TABLE @extschema@.%I ATTACH PARTITION @extschema@.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, name, lo, hi);
    EXECUTE format('COMMENT ON TABLE @extschema@.%I IS %L', name,
                   format('Partition of retrain.%s: %s from %s to %s (made by the check cycle)', parent, key, lo, hi));
    -- a partition made by an install or update script would be a member of
    -- the extension, left out of dumps with its rows: it is the site's data
    IF EXISTS (SELECT 1 FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = format('@extschema@.%I', name)::regclass
                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') THEN
        EXECUTE format('ALTER EXTENSION retrain DROP TABLE @extschema@.%I', name);
    END IF;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION @extschema@._make_log_partition(text, text, text, text) IS
    'Make a partition of retrain.predictions or retrain.outcomes over [lo, hi), moving in the default partition''s rows of that range (internal)';

-- Whether [lo, hi) overlaps a partition the table has (a day made before,
-- the rows 0.1.0 logged, a partition the site attached itself).
CREATE OR REPLACE FUNCTION @extschema@._log_range_taken(parent pg_catalog.regclass, lo text, hi text, cast_to text)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    taken boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM @extschema@._log_partitions($1) p '
                   'WHERE NOT p.is_default AND (p.lo IS NULL OR p.lo::%1$s < $3::%1$s) '
                   'AND (p.hi IS NULL OR p.hi::%1$s > $2::%1$s))', cast_to)
        INTO taken USING parent, lo, hi;
    RETURN taken;
END
$$;
COMMENT ON FUNCTION @extschema@._log_range_taken(pg_catalog.regclass, text, text, text) IS
    'Whether a range overlaps a partition of the table (internal)';

-- Ids an outcomes partition spans: at a million predictions a day, ten days.
CREATE OR REPLACE FUNCTION @extschema@._outcome_range_width()
    RETURNS bigint LANGUAGE sql IMMUTABLE
    RETURN 10000000;
COMMENT ON FUNCTION @extschema@._outcome_range_width() IS
    'How many prediction ids one partition of retrain.outcomes spans (internal)';

-- The partitions to make as of a time: the day of at and the seven after
-- it; of outcomes, the range of the next prediction id and the one after (a
-- range holds the ids of _outcome_range_width() from a multiple of it).
-- Days and ranges a partition already covers are skipped.  Earlier days
-- are not made for rows that went to the default partition: finding them
-- would read the default partition every cycle, and with days made a week
-- ahead only a cycle stopped for longer leaves any there.
CREATE OR REPLACE FUNCTION @extschema@._log_partitions_due(at timestamptz)
    RETURNS TABLE (parent text, name text, lo text, hi text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    today timestamptz := date_trunc('day', at);
    d timestamptz;
    w bigint := @extschema@._outcome_range_width();
    next_id bigint;
    k bigint;
    first_id bigint;
BEGIN
    FOR d IN SELECT g FROM generate_series(today, today + interval '7 days', interval '1 day') g LOOP
        IF NOT @extschema@._log_range_taken('@extschema@.predictions', d::text, (d + interval '1 day')::text, 'timestamptz') THEN
            parent := 'predictions';
            name := 'predictions_p' || to_char(d, 'YYYYMMDD');
            lo := d::text;
            hi := (d + interval '1 day')::text;
            RETURN NEXT;
        END IF;
    END LOOP;
    SELECT CASE WHEN s.is_called THEN s.last_value + 1 ELSE s.last_value END INTO next_id
      FROM @extschema@.predictions_id_seq s;
    FOR k IN SELECT g FROM generate_series(next_id / w, next_id / w + 1) g LOOP
        -- a range begins where a partition ending inside it ends (the
        -- outcomes retrain 0.1.0 logged end at the ids it had handed out)
        SELECT greatest(k * w, max(p.hi::bigint)) INTO first_id
          FROM @extschema@._log_partitions('@extschema@.outcomes') p
         WHERE NOT p.is_default AND p.hi::bigint > k * w AND p.hi::bigint < (k + 1) * w;
        IF NOT @extschema@._log_range_taken('@extschema@.outcomes', first_id::text, ((k + 1) * w)::text, 'bigint') THEN
            parent := 'outcomes';
            name := 'outcomes_p' || first_id::text;
            lo := first_id::text;
            hi := ((k + 1) * w)::text;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._log_partitions_due(timestamptz) IS
    'The partitions of retrain.predictions and retrain.outcomes that maintenance as of a time would make (internal)';

-- Drop a table's partitions whose upper bound is at or before a bound,
-- oldest first, one row each.
CREATE OR REPLACE FUNCTION @extschema@._drop_log_partitions(parent text, bound text, cast_to text)
    RETURNS TABLE (action text, partition text, detail jsonb)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    p record;
BEGIN
    FOR p IN EXECUTE format('SELECT x.part, x.lo, x.hi, c.reltuples '
                            'FROM @extschema@._log_partitions($1) x JOIN pg_class c ON c.oid = x.part '
                            'WHERE NOT x.is_default AND x.hi IS NOT NULL AND x.hi::%1$s <= $2::%1$s '
                            'ORDER BY x.hi::%1$s', cast_to)
               USING format('@extschema@.%I', parent)::regclass, bound LOOP
        -- its name before it goes (a dropped relation's regclass is a number)
        partition := p.part::text;
        EXECUTE format('DROP TABLE %s', p.part);
        action := 'dropped';
        detail := jsonb_build_object('table', parent, 'from', p.lo, 'to', p.hi,
                                     'rows_estimated', CASE WHEN p.reltuples >= 0 THEN p.reltuples::bigint END);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._drop_log_partitions(text, text, text) IS
    'Drop the partitions of retrain.predictions or retrain.outcomes that end at or before a bound (internal)';

-- Retention: the partitions of predictions wholly older than the retention
-- (their upper bound at or before at - retention), the default partition's
-- rows that old, and the outcomes of predictions no longer kept (ranges of
-- ids below the smallest id left, and the default partition's outcomes
-- whose prediction is gone).  A partition's rows are counted from the
-- statistics (reltuples; NULL before it was ever analyzed), not read.
CREATE OR REPLACE FUNCTION @extschema@._expire_log(at timestamptz, retention interval)
    RETURNS TABLE (action text, partition text, detail jsonb)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cutoff timestamptz := at - retention;
    n bigint;
    min_id bigint;
BEGIN
    RETURN QUERY SELECT * FROM @extschema@._drop_log_partitions('predictions', cutoff::text, 'timestamptz');
    DELETE FROM ONLY @extschema@.predictions_default x WHERE x.predicted_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN QUERY SELECT 'deleted'::text, '@extschema@.predictions_default'::text,
                        jsonb_build_object('table', 'predictions', 'before', cutoff, 'rows', n) WHERE n > 0;
    SELECT min(x.id) INTO min_id FROM @extschema@.predictions x;
    IF min_id IS NULL THEN
        SELECT CASE WHEN s.is_called THEN s.last_value + 1 ELSE s.last_value END INTO min_id
          FROM @extschema@.predictions_id_seq s;
    END IF;
    RETURN QUERY SELECT * FROM @extschema@._drop_log_partitions('outcomes', min_id::text, 'bigint');
    DELETE FROM ONLY @extschema@.outcomes_default x WHERE x.prediction_id < min_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN QUERY SELECT 'deleted'::text, '@extschema@.outcomes_default'::text,
                        jsonb_build_object('table', 'outcomes', 'below_prediction_id', min_id, 'rows', n) WHERE n > 0;
    -- The default partition's outcomes of predictions gone whose ids are
    -- not below the smallest left.  On a Citus cluster these are the
    -- outcomes of predictions written through a worker: their ids come from
    -- the worker's own range, above every id the coordinator hands out, so
    -- no range's partition holds them and the smallest id left never
    -- passes them.  An outcome carries its prediction's time: the index on
    -- it finds those older than the retention, and the prediction is looked
    -- for in its own day's partition.  (An outcome without that time, which
    -- only the tables' owner can write into a distributed log, is left to
    -- the ids.)
    DELETE FROM ONLY @extschema@.outcomes_default x
     WHERE x.predicted_at < cutoff
       AND NOT EXISTS (SELECT 1 FROM @extschema@.predictions p
                        WHERE p.predicted_at = x.predicted_at AND p.id = x.prediction_id AND p.model = x.model);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN QUERY SELECT 'deleted'::text, '@extschema@.outcomes_default'::text,
                        jsonb_build_object('table', 'outcomes', 'predicted_before', cutoff, 'rows', n) WHERE n > 0;
END
$$;
COMMENT ON FUNCTION @extschema@._expire_log(timestamptz, interval) IS
    'Drop the prediction log''s partitions older than a retention, and the outcomes of predictions no longer kept (internal)';

-- The retention the server's configuration sets (0: none).
CREATE OR REPLACE FUNCTION @extschema@._prediction_retention()
    RETURNS interval
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nullif(s.setting::bigint, 0) * interval '1 minute'
      FROM pg_settings s WHERE s.name = 'retrain.prediction_retention'
$$;
COMMENT ON FUNCTION @extschema@._prediction_retention() IS
    'retrain.prediction_retention as an interval; NULL when predictions are kept for ever (internal)';

-- Maintenance as of a time: make what is due, expire what is older than
-- the retention, log each change.  A step that cannot have its lock within
-- a second is reported as skipped and the next cycle tries again: while it
-- waits, the statements that would read the partitions it waits for queue
-- behind it (attaching locks the default partition, which a read of the
-- whole log also locks; dropping locks the parent), and days are made a
-- week ahead, so a skip costs nothing.  The log's write lock is taken only
-- after the DDL, so that no other change waits behind a lock this waits
-- for.
CREATE OR REPLACE FUNCTION @extschema@._maintain_partitions(at timestamptz)
    RETURNS TABLE (action text, partition text, detail jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET lock_timeout = '1s'
AS $$
DECLARE
    due record;
    moved bigint;
    retention interval := @extschema@._prediction_retention();
    done jsonb[] := '{}';
    e record;
BEGIN
    PERFORM @extschema@._refuse_in_owner_code('maintain_partitions');
    -- a Citus worker's log is the coordinator's, shown there: its
    -- partitions are made by the coordinator's cycle
    IF @extschema@._on_citus_worker() THEN
        RAISE EXCEPTION 'retrain.maintain_partitions: this node is a Citus worker; the coordinator maintains the log''s partitions'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'retrain.maintain_partitions: the time must be finite, not %', coalesce(at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR due IN SELECT * FROM @extschema@._log_partitions_due(at) LOOP
        BEGIN
            moved := @extschema@._make_log_partition(due.parent, due.name, due.lo, due.hi);
            done := done || jsonb_build_object('action', 'created', 'partition', '@extschema@.' || quote_ident(due.name),
                                               'detail', jsonb_build_object('table', due.parent, 'from', due.lo,
                                                                            'to', due.hi, 'rows_moved', moved));
        EXCEPTION WHEN lock_not_available THEN
            done := done || jsonb_build_object('action', 'skipped', 'partition', '@extschema@.' || quote_ident(due.name),
                                               'detail', jsonb_build_object('table', due.parent, 'from', due.lo,
                                                                            'to', due.hi, 'reason', SQLERRM));
        END;
    END LOOP;
    IF retention IS NOT NULL THEN
        BEGIN
            FOR e IN SELECT * FROM @extschema@._expire_log(at, retention) LOOP
                done := done || jsonb_build_object('action', e.action, 'partition', e.partition, 'detail', e.detail);
            END LOOP;
        EXCEPTION WHEN lock_not_available THEN
            done := done || jsonb_build_object('action', 'skipped', 'partition', NULL,
                                               'detail', jsonb_build_object('retention', retention::text, 'reason', SQLERRM));
        END;
    END IF;
    FOR e IN SELECT x FROM unnest(done) x LOOP
        action := e.x->>'action';
        partition := e.x->>'partition';
        detail := e.x->'detail';
        IF action <> 'skipped' THEN
            PERFORM @extschema@._log(NULL, NULL,
                                     CASE action WHEN 'deleted' THEN 'predictions_expired' ELSE 'partition_' || action END,
                                     detail || jsonb_build_object('partition', partition));
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._maintain_partitions(timestamptz) IS
    'Make the prediction log''s partitions due as of a time and drop those older than retrain.prediction_retention, logging each (internal; the time is for tests)';

CREATE OR REPLACE FUNCTION @extschema@.maintain_partitions()
    RETURNS TABLE (action text, partition text, detail jsonb)
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@._maintain_partitions(pg_catalog.now())
$$;
COMMENT ON FUNCTION @extschema@.maintain_partitions() IS
    'Make the prediction log''s partitions for today and the next seven days, and drop those older than retrain.prediction_retention; what the check cycle runs after its checks';
