-- Where a model's predictions are read from: retrain.predictions and
-- retrain.outcomes, or the model's own relation (set_source), read through
-- one FROM clause (_source_from) with the owner's privileges (_read).

-- @replace

-- The columns a source relation may have.  Features come from a jsonb
-- column "features" or, without one, from every column not listed here
-- (the wide layout of most existing prediction logs).
CREATE OR REPLACE FUNCTION @extschema@._source_layout()
    RETURNS TABLE (name text, types regtype[], required boolean)
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('model', '{text,varchar}'::regtype[], false),
           ('version', '{text,varchar,int4,int8}', true),
           ('predicted_at', '{timestamptz}', true),
           ('score', '{float8,float4,numeric,int2,int4,int8}', true),
           ('unit_key', NULL, false),
           ('latency_ms', '{float8,float4,numeric,int2,int4,int8}', false),
           ('error', '{bool}', false),
           ('label', '{bool}', false),
           ('actual', '{float8,float4,numeric,int2,int4,int8}', false),
           ('observed_at', '{timestamptz}', false),
           ('features', '{jsonb}', false)
$$;
COMMENT ON FUNCTION @extschema@._source_layout() IS
    'The documented columns of a source relation: name, allowed types (NULL: any), required (internal)';

-- A relation's schema-qualified, quoted name, whatever the search_path.
CREATE OR REPLACE FUNCTION @extschema@._qualified(relation regclass)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = relation
$$;
COMMENT ON FUNCTION @extschema@._qualified(regclass) IS 'A relation''s schema-qualified name (internal)';

-- The documented columns a relation has, or an error saying what is wrong.
CREATE OR REPLACE FUNCTION @extschema@._source_columns(fn text, relation regclass)
    RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    col record;
    present text[] := '{}';
BEGIN
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = relation;
    IF kind IS NULL THEN
        RAISE EXCEPTION 'retrain.%: relation with OID % does not exist', fn, relation::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION 'retrain.%: "%" is not a table, view, materialized view or foreign table', fn, relation
            USING ERRCODE = 'wrong_object_type';
    END IF;
    FOR col IN SELECT l.name, l.types, l.required, a.atttypid::regtype AS type
                 FROM @extschema@._source_layout() l
                 LEFT JOIN pg_attribute a ON a.attrelid = relation AND a.attname = l.name
                                         AND a.attnum > 0 AND NOT a.attisdropped LOOP
        IF col.type IS NULL THEN
            IF col.required THEN
                RAISE EXCEPTION 'retrain.%: relation "%" has no column "%"', fn, relation, col.name
                    USING ERRCODE = 'undefined_column',
                          HINT = 'A source needs version, predicted_at (timestamptz) and score; see docs/monitoring.md.';
            END IF;
        ELSIF col.types IS NOT NULL AND NOT col.type = ANY (col.types) THEN
            RAISE EXCEPTION 'retrain.%: column "%" of "%" is %, not one of %', fn, col.name, relation, col.type,
                            array_to_string(col.types::text[], ', ')
                USING ERRCODE = 'datatype_mismatch';
        ELSE
            present := present || col.name;
        END IF;
    END LOOP;
    RETURN present;
END
$$;
COMMENT ON FUNCTION @extschema@._source_columns(text, regclass) IS
    'The documented columns of a source relation, or an error naming the missing or mistyped one (internal)';

-- The FROM clause (p, o) over retrain.predictions with the outcomes
-- observed by a time, given as SQL (a literal, or a parameter).
CREATE OR REPLACE FUNCTION @extschema@._logged_from(observed_upto text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- An outcome carries its prediction's model (_outcome_model), so the
    -- join names it: the planner then reads only this model's outcomes for
    -- a hash join over a wide window (a probe per prediction costs four
    -- times as much) and probes the key for a few new rows.
    RETURN format('@extschema@.predictions p '
                  'LEFT JOIN @extschema@.outcomes o '
                  '       ON o.prediction_id = p.id AND o.model = p.model AND o.observed_at <= %s', observed_upto);
END
$$;
COMMENT ON FUNCTION @extschema@._logged_from(text) IS
    'The FROM clause (p, o) over retrain.predictions with the outcomes observed by a time given as SQL (internal)';

-- The FROM clause every read of a model's predictions uses: predictions as
-- p (model, version, unit_key, predicted_at, score, latency_ms, error,
-- features) and
-- their outcomes as o (prediction_id, set when labelled; label, actual,
-- observed_at), as known at "at": an outcome observed later is no outcome
-- yet, so that a question about the past is answered with what was known
-- then.  The source is looked up and checked again at each read: it may
-- have been dropped, renamed or altered since set_source().
CREATE OR REPLACE FUNCTION @extschema@._source_from(fn text, m @extschema@.models, at timestamptz)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
    cols text[];
    features text;
BEGIN
    IF m.source IS NULL THEN
        RETURN @extschema@._logged_from(quote_literal(at));
    END IF;
    rel := to_regclass(m.source);
    IF rel IS NULL THEN
        RAISE EXCEPTION 'retrain.%: the source % of model "%" does not exist', fn, m.source, m.name
            USING ERRCODE = 'undefined_table', HINT = 'Point the model at its relation again with retrain.set_source().';
    END IF;
    cols := @extschema@._source_columns(fn, rel);
    -- the wide layout's features are read as columns of src (see _source_features)
    features := CASE WHEN 'features' = ANY (cols) THEN 's.features' ELSE 'NULL::jsonb' END;
    RETURN format('(SELECT %L::text AS model, s.version::text AS version, s.predicted_at, s.score::float8 AS score, '
                  '%s AS unit_key, %s AS latency_ms, %s AS error, %s AS features, %s AS label, %s AS actual, %s AS observed_at, s AS src '
                  'FROM %s s%s) p '
                  'CROSS JOIN LATERAL (SELECT CASE WHEN (p.label IS NOT NULL OR p.actual IS NOT NULL) AND p.observed_at <= %L '
                  'THEN 0 END AS prediction_id, '
                  'CASE WHEN p.observed_at <= %L THEN p.label END AS label, '
                  'CASE WHEN p.observed_at <= %L THEN p.actual END AS actual, p.observed_at) o',
                  m.name,
                  CASE WHEN 'unit_key' = ANY (cols) THEN 's.unit_key::text' ELSE 'NULL::text' END,
                  CASE WHEN 'latency_ms' = ANY (cols) THEN 's.latency_ms::float8' ELSE 'NULL::float8' END,
                  CASE WHEN 'error' = ANY (cols) THEN 's.error' ELSE 'NULL::boolean' END,
                  features,
                  CASE WHEN 'label' = ANY (cols) THEN 's.label' ELSE 'NULL::boolean' END,
                  CASE WHEN 'actual' = ANY (cols) THEN 's.actual::float8' ELSE 'NULL::float8' END,
                  -- without observed_at, a label counts as known when its prediction was made
                  CASE WHEN 'observed_at' = ANY (cols) THEN 's.observed_at' ELSE 's.predicted_at' END,
                  @extschema@._qualified(rel),
                  CASE WHEN 'model' = ANY (cols) THEN format(' WHERE s.model = %L', m.name) ELSE '' END,
                  at, at, at);
END
$$;
COMMENT ON FUNCTION @extschema@._source_from(text, @extschema@.models, timestamptz) IS
    'The FROM clause (p: predictions, o: outcomes as known at a time) that reads a model''s predictions from its source (internal)';

-- The feature columns of a source in the wide layout (no jsonb column
-- "features"): every column that is not a documented one, in table order.
-- NULL when features come from a jsonb column.
CREATE OR REPLACE FUNCTION @extschema@._source_features(m @extschema@.models)
    RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the common case first, without a query: the cycle asks for every read
    IF m.source IS NULL
       OR EXISTS (SELECT 1 FROM pg_attribute a
                   WHERE a.attrelid = to_regclass(m.source) AND a.attname = 'features' AND NOT a.attisdropped) THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(SELECT a.attname::text FROM pg_attribute a
                  WHERE a.attrelid = to_regclass(m.source) AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attname::text NOT IN (SELECT l.name FROM @extschema@._source_layout() l)
                  ORDER BY a.attnum);
END
$$;
COMMENT ON FUNCTION @extschema@._source_features(@extschema@.models) IS
    'A wide source''s feature columns, or NULL when features come from retrain.predictions or a jsonb column (internal)';

-- A feature's value as text in a read of the source: from the jsonb column
-- "features", or from the wide layout's column of that name (NULL when the
-- source no longer has it: the feature counts as missing).  wide is
-- _source_features(m).
CREATE OR REPLACE FUNCTION @extschema@._feature_expr(wide text[], feature text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN wide IS NULL THEN format('(p.features->>%L)', feature)
                WHEN feature = ANY (wide) THEN format('(p.src).%I::text', feature)
                ELSE 'NULL::text' END;
COMMENT ON FUNCTION @extschema@._feature_expr(text[], text) IS
    'The SQL of a feature''s value as text over p, from a jsonb column or a wide source''s column (internal)';

-- Run a read of a model's predictions that yields one jsonb value: as the
-- extension over retrain's own tables, as the model's owner over its own
-- source, so that set_source() gives nobody more than the owner may read.
CREATE OR REPLACE FUNCTION @extschema@._read(m @extschema@.models, query text)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
BEGIN
    IF m.source IS NULL THEN
        EXECUTE query INTO r;
        RETURN r;
    END IF;
    BEGIN
        RETURN @extschema@._as_owner(m.owner, 'jsonb', 'pg_catalog, pg_temp', query)::jsonb;
    EXCEPTION WHEN OTHERS THEN
        -- The owner's relation failed; its message may show the owner's
        -- data, and this one goes to the log, which every role reads: the
        -- message names the model, the DETAIL (for check()'s caller, a
        -- member of the owner role) keeps the original.
        RAISE EXCEPTION 'retrain: reading the source % of model "%" failed (SQLSTATE %)', m.source, m.name, SQLSTATE
            USING ERRCODE = SQLSTATE, DETAIL = SQLERRM;
    END;
END
$$;
COMMENT ON FUNCTION @extschema@._read(@extschema@.models, text) IS
    'Run a one-value read of a model''s predictions with the privileges its source calls for (internal)';

CREATE OR REPLACE FUNCTION @extschema@.set_source(model text, relation regclass)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    cols text[];
    qualified text;
    features text[];
BEGIN
    -- The source is read with the owner's privileges: only who may act on
    -- the model (a member of the owner role) chooses what they read.
    m := @extschema@._lock_model('set_source', model);
    IF relation IS NOT NULL THEN
        cols := @extschema@._source_columns('set_source', relation);
        IF NOT has_table_privilege(m.owner, relation, 'SELECT') THEN
            RAISE EXCEPTION 'retrain.set_source: the owner "%" of model "%" may not read %', m.owner, model, relation
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('GRANT SELECT ON %s TO %I;', relation, m.owner);
        END IF;
        qualified := @extschema@._qualified(relation);
    END IF;
    UPDATE @extschema@.models mm SET source = qualified WHERE mm.name = m.name RETURNING * INTO m;
    features := @extschema@._source_features(m);
    PERFORM @extschema@._log(m.name, NULL, 'source_set',
                             jsonb_build_object('source', qualified, 'columns', cols,
                                                'feature_columns', features));
END
$$;
COMMENT ON FUNCTION @extschema@.set_source(text, regclass) IS
    'Read a model''s predictions and outcomes from its own table or view (documented columns) instead of retrain.predictions; NULL goes back to retrain.predictions; only members of the owner role may';
