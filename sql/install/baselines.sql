-- Feature baselines and drift reports (SQL over tables): what a model
-- version was trained on (retrain.baselines, written by capture_baseline),
-- and drift() / drift_summary() of current data against it.

-- @once

CREATE TABLE @extschema@.baselines (
    model         text NOT NULL,
    version       text NOT NULL,
    feature       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('numeric', 'categorical')),
    edges         pg_catalog.float8[],
    expected      pg_catalog.float8[],
    categories    jsonb,
    row_count     bigint NOT NULL CHECK (row_count >= 0),
    missing_share pg_catalog.float8 NOT NULL CHECK (missing_share BETWEEN 0 AND 1),
    captured_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    min_value     pg_catalog.float8,
    max_value     pg_catalog.float8,
    PRIMARY KEY (model, version, feature),
    -- a feature whose values were all missing has no distribution
    CHECK (kind = 'numeric' OR (edges IS NULL AND expected IS NULL)),
    CHECK (kind = 'categorical' OR categories IS NULL),
    CHECK ((edges IS NULL) = (expected IS NULL)),
    CHECK (expected IS NULL OR pg_catalog.array_length(expected, 1) = COALESCE(pg_catalog.array_length(edges, 1), 0) + 1),
    CONSTRAINT baselines_range CHECK ((kind = 'numeric' OR (min_value IS NULL AND max_value IS NULL))
                                      AND (min_value IS NULL) = (max_value IS NULL) AND min_value <= max_value)
);
COMMENT ON TABLE @extschema@.baselines IS
    'Per model version and feature, the distribution the model was trained on: bin edges and expected proportions, or category proportions';
COMMENT ON COLUMN @extschema@.baselines.kind IS 'numeric (binned) or categorical';
COMMENT ON COLUMN @extschema@.baselines.edges IS 'numeric: interior bin edges (quantile_edges of the training values)';
COMMENT ON COLUMN @extschema@.baselines.expected IS 'numeric: proportion of non-missing values per bucket, length(edges) + 1 of them';
COMMENT ON COLUMN @extschema@.baselines.categories IS 'categorical: {"category": proportion, ...} of non-missing values';
COMMENT ON COLUMN @extschema@.baselines.row_count IS 'rows profiled';
COMMENT ON COLUMN @extschema@.baselines.missing_share IS 'share of rows where the value was NULL (or NaN)';
COMMENT ON COLUMN @extschema@.baselines.captured_at IS 'when the profile was captured';
COMMENT ON COLUMN @extschema@.baselines.min_value IS 'numeric: the smallest training value (the training range''s low end; NULL for a baseline captured before 0.2.0)';
COMMENT ON COLUMN @extschema@.baselines.max_value IS 'numeric: the largest training value';

-- Only capture_baseline writes.
REVOKE ALL ON @extschema@.baselines FROM PUBLIC;
GRANT SELECT ON @extschema@.baselines TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.baselines', '');
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

-- @replace

-- Writing baselines needs rights the caller of capture_baseline need not
-- have; reading the source must use the caller's own.  So the reading
-- function is SECURITY INVOKER and hands the profile to this one, which
-- trusts nothing of it: the model and version must exist, the caller must
-- be allowed to act on the model, and every distribution must be one
-- (check() would otherwise fail on it, or find drift where there is none).
CREATE OR REPLACE FUNCTION @extschema@._check_profile(profile jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p jsonb;
    why text;
BEGIN
    IF jsonb_typeof(profile) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'retrain._store_baseline: the profile must be an array of features'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN SELECT * FROM jsonb_array_elements(profile) LOOP
        why := CASE
            WHEN jsonb_typeof(p) <> 'object' OR jsonb_typeof(p->'feature') IS DISTINCT FROM 'string' OR p->>'feature' = ''
                THEN 'a feature needs a non-empty name'
            WHEN NOT coalesce(p->>'kind', '') IN ('numeric', 'categorical')
                THEN 'kind must be numeric or categorical'
            WHEN jsonb_typeof(p->'row_count') IS DISTINCT FROM 'number' OR (p->>'row_count')::numeric < 0
                 OR (p->>'row_count')::numeric % 1 <> 0
                THEN 'row_count must be a whole number >= 0'
            WHEN jsonb_typeof(p->'missing_share') IS DISTINCT FROM 'number'
                 OR (p->>'missing_share')::numeric NOT BETWEEN 0 AND 1
                THEN 'missing_share must be a number in [0, 1]'
            WHEN p->>'kind' = 'numeric' AND (p ? 'edges') <> (p ? 'expected')
                THEN 'edges and expected go together'
            WHEN p->>'kind' = 'numeric' AND p ? 'edges' AND (
                     jsonb_typeof(p->'edges') <> 'array' OR jsonb_typeof(p->'expected') <> 'array'
                     OR jsonb_array_length(p->'expected') <> jsonb_array_length(p->'edges') + 1
                     OR EXISTS (SELECT 1 FROM jsonb_array_elements(p->'edges') e WHERE jsonb_typeof(e) <> 'number')
                     OR EXISTS (SELECT 1 FROM jsonb_array_elements(p->'edges') WITH ORDINALITY e(v, o)
                                 WHERE o > 1 AND (e.v #>> '{}')::numeric <= (p->'edges'->>(o::integer - 2))::numeric))
                THEN 'edges must be rising numbers and expected one share more'
            WHEN p->>'kind' = 'numeric' AND p ? 'expected' AND NOT @extschema@._is_distribution(p->'expected')
                THEN 'expected must be shares >= 0 that add up to 1'
            WHEN p->>'kind' = 'categorical' AND p ? 'categories' AND jsonb_typeof(p->'categories') <> 'null'
                 AND (jsonb_typeof(p->'categories') <> 'object'
                      OR NOT @extschema@._is_distribution((SELECT jsonb_agg(c.value) FROM jsonb_each(p->'categories') c)))
                THEN 'categories must map each category to a share >= 0, adding up to 1'
            WHEN p->>'kind' = 'categorical' AND p ? 'edges'
                THEN 'a categorical feature has no edges'
            WHEN (p ? 'min') <> (p ? 'max') OR (p ? 'min' AND (p->>'kind' <> 'numeric'
                     OR jsonb_typeof(p->'min') <> 'number' OR jsonb_typeof(p->'max') <> 'number'
                     OR (p->>'min')::numeric > (p->>'max')::numeric))
                THEN 'min and max go together, numbers of a numeric feature, min <= max'
        END;
        IF why IS NOT NULL THEN
            RAISE EXCEPTION 'retrain._store_baseline: feature %: %', coalesce(p->>'feature', p::text), why
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF (SELECT count(*) <> count(DISTINCT e->>'feature') FROM jsonb_array_elements(profile) e) THEN
        RAISE EXCEPTION 'retrain._store_baseline: a feature is named twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_profile(jsonb) IS
    'Refuse a baseline profile that is not one: kinds, counts, shares, rising edges, distributions (internal)';

-- Shares of a distribution: numbers >= 0 that add up to 1 (to rounding).
CREATE OR REPLACE FUNCTION @extschema@._is_distribution(shares jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN jsonb_typeof(shares) = 'array' AND jsonb_array_length(shares) > 0
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(shares) s
                        WHERE jsonb_typeof(s) <> 'number' OR (s #>> '{}')::numeric < 0)
       AND abs((SELECT sum((s #>> '{}')::numeric) FROM jsonb_array_elements(shares) s) - 1) <= 1e-9;
COMMENT ON FUNCTION @extschema@._is_distribution(jsonb) IS
    'Whether a jsonb array holds shares >= 0 adding up to 1 (internal)';

CREATE OR REPLACE FUNCTION @extschema@._store_baseline(model text, version text, profile jsonb)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored integer;
BEGIN
    PERFORM @extschema@._lock_model('capture_baseline', model);
    PERFORM @extschema@._version('capture_baseline', model, version);
    PERFORM @extschema@._check_profile(profile);
    DELETE FROM @extschema@.baselines b WHERE b.model = _store_baseline.model AND b.version = _store_baseline.version;
    INSERT INTO @extschema@.baselines (model, version, feature, kind, edges, expected, categories,
                                       row_count, missing_share, min_value, max_value)
    SELECT _store_baseline.model, _store_baseline.version, p.feature, p.kind, p.edges, p.expected,
           p.categories, p.row_count, p.missing_share, p.min, p.max
      FROM jsonb_to_recordset(profile) AS p(feature text, kind text, edges float8[], expected float8[],
                                           categories jsonb, row_count bigint, missing_share float8,
                                           min float8, max float8);
    GET DIAGNOSTICS stored = ROW_COUNT;
    PERFORM @extschema@._log(model, version, 'baseline_captured',
                             jsonb_build_object('features', stored,
                                                'names', (SELECT jsonb_agg(p->>'feature') FROM jsonb_array_elements(profile) p)));
    RETURN stored;
END
$$;
COMMENT ON FUNCTION @extschema@._store_baseline(text, text, jsonb) IS
    'Replace the baseline of a model version by a profile computed by capture_baseline, checked first (internal)';

CREATE OR REPLACE FUNCTION @extschema@.capture_baseline(model text, version text, source pg_catalog.regclass,
                                             features text[] DEFAULT NULL, bins integer DEFAULT 10)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- edges and shares pass through jsonb and SQL text: at 3, float8's text
    -- is its shortest exact form, whatever the caller set
    SET extra_float_digits = 3
AS $$
DECLARE
    numeric_types regtype[] := '{int2, int4, int8, float4, float8, numeric}';
    text_types regtype[] := '{text, varchar, bpchar}';
    cols record;
    numeric_cols text[] := '{}';
    categorical_cols text[] := '{}';
    select_list text[] := ARRAY['count(*)'];
    first_pass record;
    second_list text[] := ARRAY['count(*)'];
    edges_by_feature jsonb := '{}';
    profile jsonb := '[]';
    counts jsonb;
    total bigint;
    f text;
    i integer;
    result record;
    r jsonb;
BEGIN
    IF model IS NULL OR version IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'retrain.capture_baseline: model, version and source must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF bins IS NULL OR bins < 2 THEN
        RAISE EXCEPTION 'retrain.capture_baseline: bins must be at least 2, not %', coalesce(bins::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The columns to profile: numbers as numeric features, text as
    -- categorical ones; a named column that is missing or of another type
    -- is an error.  Unnamed, only numbers: a category's name is the value
    -- itself (a text column may hold names or identifiers), and it is kept
    -- only for columns the caller chose.
    FOR cols IN
        SELECT f.name, a.atttypid::regtype AS type
          FROM unnest(coalesce(features, ARRAY(
                   SELECT a2.attname::text FROM pg_attribute a2
                    WHERE a2.attrelid = source AND a2.attnum > 0 AND NOT a2.attisdropped
                      AND a2.atttypid = ANY (numeric_types)
                    ORDER BY a2.attnum))) WITH ORDINALITY AS f(name, ord)
          LEFT JOIN pg_attribute a
            ON a.attrelid = source AND a.attname = f.name AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY f.ord
    LOOP
        IF cols.type IS NULL THEN
            RAISE EXCEPTION 'retrain.capture_baseline: column "%" does not exist in %', cols.name, source
                USING ERRCODE = 'undefined_column';
        ELSIF cols.type = ANY (numeric_types) THEN
            numeric_cols := numeric_cols || cols.name;
        ELSIF cols.type = ANY (text_types) THEN
            categorical_cols := categorical_cols || cols.name;
        ELSE
            RAISE EXCEPTION 'retrain.capture_baseline: column "%" of % has type %, which is neither numeric nor text',
                cols.name, source, cols.type
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;
    IF cardinality(numeric_cols) + cardinality(categorical_cols) = 0 THEN
        RAISE EXCEPTION 'retrain.capture_baseline: % has no numeric or text column to profile', source
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- First scan: edges, missing counts and the range of numbers, category
    -- counts.
    FOREACH f IN ARRAY numeric_cols LOOP
        select_list := select_list
            || format('@extschema@.quantile_edges(%I::float8, %s)', f, bins)
            || format('count(*) FILTER (WHERE %1$I IS NULL OR %1$I::float8 = ''NaN'')', f)
            || format('min(%1$I::float8) FILTER (WHERE %1$I::float8 <> ''NaN'')', f)
            || format('max(%1$I::float8) FILTER (WHERE %1$I::float8 <> ''NaN'')', f);
    END LOOP;
    FOREACH f IN ARRAY categorical_cols LOOP
        select_list := select_list
            || format('@extschema@.category_counts(%I::text)', f)
            || format('count(*) FILTER (WHERE %I IS NULL)', f);
    END LOOP;
    EXECUTE format('SELECT to_jsonb(ARRAY[%s]) FROM %s', array_to_string(
                       (SELECT array_agg(format('to_jsonb(%s)', e)) FROM unnest(select_list) e), ', '),
                   source)
       INTO r;
    total := (r->>0)::bigint;

    i := 1;
    FOREACH f IN ARRAY numeric_cols LOOP
        edges_by_feature := edges_by_feature || jsonb_build_object(f, r->i);
        profile := profile || jsonb_strip_nulls(jsonb_build_object(
            'feature', f, 'kind', 'numeric', 'row_count', total,
            'missing_share', CASE WHEN total = 0 THEN 0 ELSE (r->>(i + 1))::float8 / total END,
            'min', r->(i + 2), 'max', r->(i + 3)));
        i := i + 4;
    END LOOP;
    FOREACH f IN ARRAY categorical_cols LOOP
        counts := r->i;
        profile := profile || jsonb_build_object(
            'feature', f, 'kind', 'categorical', 'row_count', total,
            'missing_share', CASE WHEN total = 0 THEN 0 ELSE (r->>(i + 1))::float8 / total END,
            -- an empty table or a column never filled: no distribution
            'categories', CASE WHEN jsonb_typeof(counts) = 'object' THEN
                            (SELECT jsonb_object_agg(key, c / t)
                               FROM (SELECT key, value::float8 AS c, sum(value::float8) OVER () AS t
                                       FROM jsonb_each_text(counts)) x) END);
        i := i + 2;
    END LOOP;

    -- Second scan: the histograms over the edges just found.
    IF cardinality(numeric_cols) > 0 THEN
        select_list := '{}';
        FOREACH f IN ARRAY numeric_cols LOOP
            IF jsonb_typeof(edges_by_feature->f) = 'array' THEN
                select_list := select_list || format('to_jsonb(@extschema@.histogram(%I::float8, %L::float8[]))',
                    f, translate((edges_by_feature->f)::text, '[]', '{}'));
            ELSE
                select_list := select_list || 'NULL::jsonb'::text;
            END IF;
        END LOOP;
        EXECUTE format('SELECT to_jsonb(ARRAY[%s]) FROM %s', array_to_string(select_list, ', '), source)
           INTO r;
        FOR i IN 0 .. cardinality(numeric_cols) - 1 LOOP
            f := numeric_cols[i + 1];
            IF r->i IS NOT NULL AND jsonb_typeof(r->i) = 'array' THEN
                profile := jsonb_set(profile, ARRAY[i::text],
                    (profile->i) || jsonb_build_object(
                        'edges', edges_by_feature->f,
                        'expected', (SELECT jsonb_agg(c / t ORDER BY ord)
                                       FROM (SELECT c::float8 AS c, sum(c::float8) OVER () AS t, ord
                                               FROM jsonb_array_elements_text(r->i) WITH ORDINALITY AS e(c, ord)) x)));
            END IF;
        END LOOP;
    END IF;

    RETURN @extschema@._store_baseline(model, version, profile);
END
$$;
COMMENT ON FUNCTION @extschema@.capture_baseline(text, text, pg_catalog.regclass, text[], integer) IS
    'Profile the named (default: all numeric) columns of source as the baseline of a model version, replacing an earlier one; returns the number of features stored';

CREATE OR REPLACE FUNCTION @extschema@.drift(model text, version text, current pg_catalog.regclass,
                                  since timestamptz DEFAULT NULL, time_column text DEFAULT NULL,
                                  psi_threshold pg_catalog.float8 DEFAULT 0.25)
    RETURNS TABLE (feature text, kind text, psi pg_catalog.float8, js pg_catalog.float8,
                   missing_share pg_catalog.float8, n bigint, drifted boolean)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    -- counts and edges pass through jsonb and SQL text: exact at 3
    SET extra_float_digits = 3
AS $$
DECLARE
    b @extschema@.baselines;
    feats @extschema@.baselines[] := '{}';
    select_list text[] := ARRAY['to_jsonb(count(*))'];
    where_clause text := '';
    r jsonb;
    counts jsonb;
    actual float8[];
    total bigint;
    idx integer;
    i integer;
    -- a feature without a column of its name is read from a jsonb column
    -- "features", as retrain.predictions and a source keep them
    has_features boolean;
    fexpr text;
BEGIN
    IF model IS NULL OR version IS NULL OR current IS NULL THEN
        RAISE EXCEPTION 'retrain.drift: model, version and current must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF psi_threshold IS NULL OR psi_threshold = 'NaN' THEN
        RAISE EXCEPTION 'retrain.drift: psi_threshold must be a number, not %', coalesce(psi_threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (since IS NULL) <> (time_column IS NULL) THEN
        RAISE EXCEPTION 'retrain.drift: since and time_column go together'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give both to measure rows with time_column >= since, or neither for all rows.';
    END IF;
    IF time_column IS NOT NULL THEN
        PERFORM 1 FROM pg_attribute a
          WHERE a.attrelid = current AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'retrain.drift: column "%" does not exist in %', time_column, current
                USING ERRCODE = 'undefined_column';
        END IF;
        where_clause := format(' WHERE %I >= %L', time_column, since);
    END IF;

    has_features := EXISTS (SELECT 1 FROM pg_attribute a
                             WHERE a.attrelid = current AND a.attname = 'features' AND a.attnum > 0
                               AND NOT a.attisdropped AND a.atttypid = 'jsonb'::regtype);
    FOR b IN SELECT * FROM @extschema@.baselines bl
              WHERE bl.model = drift.model AND bl.version = drift.version
              ORDER BY bl.feature
    LOOP
        PERFORM 1 FROM pg_attribute a
          WHERE a.attrelid = current AND a.attname = b.feature AND a.attnum > 0 AND NOT a.attisdropped;
        IF FOUND THEN
            fexpr := CASE b.kind WHEN 'numeric' THEN format('%I::float8', b.feature)
                                 ELSE format('%I::text', b.feature) END;
        ELSIF has_features THEN
            -- as the check cycle reads a jsonb feature: a value that is no
            -- number, in a numeric feature, counts as missing
            fexpr := CASE b.kind WHEN 'numeric' THEN format('@extschema@._as_float8(features->>%L)', b.feature)
                                 ELSE format('(features->>%L)', b.feature) END;
        ELSE
            RAISE EXCEPTION 'retrain.drift: baselined feature "%" is not a column of %', b.feature, current
                USING ERRCODE = 'undefined_column',
                      HINT = 'Features are read from columns of their names, or from a jsonb column "features".';
        END IF;
        feats := feats || b;
        IF b.kind = 'numeric' THEN
            -- bucket counts and the missing count from one aggregate
            select_list := select_list
                || format('to_jsonb(@extschema@.histogram_missing(%s, %L::float8[]))',
                          fexpr, coalesce(b.edges, '{}'));
        ELSE
            select_list := select_list
                || format('to_jsonb(@extschema@.category_counts(%s))', fexpr)
                || format('to_jsonb(count(*) FILTER (WHERE %s IS NULL))', fexpr);
        END IF;
    END LOOP;
    IF cardinality(feats) = 0 THEN
        RAISE EXCEPTION 'retrain.drift: no baseline for model "%" version "%"', model, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'Capture one with retrain.capture_baseline().';
    END IF;

    -- One scan of current, whatever the number of features.
    EXECUTE format('SELECT to_jsonb(ARRAY[%s]) FROM %s%s',
                   array_to_string(select_list, ', '), current, where_clause)
       INTO r;
    total := (r->>0)::bigint;

    idx := 1;
    FOR i IN 1 .. cardinality(feats) LOOP
        b := feats[i];
        feature := b.feature;
        kind := b.kind;
        n := total;
        psi := NULL;
        js := NULL;
        missing_share := NULL;
        IF b.kind = 'numeric' THEN
            -- [bucket counts..., missing]; NULL without rows
            counts := r->idx;
            idx := idx + 1;
            IF jsonb_typeof(counts) = 'array' THEN
                actual := ARRAY(SELECT c::float8
                                  FROM jsonb_array_elements_text(counts) WITH ORDINALITY AS e(c, o)
                                 ORDER BY o);
                missing_share := actual[cardinality(actual)] / total;
                actual := actual[1:cardinality(actual) - 1];
            ELSE
                actual := NULL;
            END IF;
            IF b.expected IS NOT NULL AND (SELECT sum(c) FROM unnest(actual) c) > 0 THEN
                psi := @extschema@.psi(b.expected, actual);
                js := @extschema@.js_distance(b.expected, actual);
            END IF;
        ELSE
            counts := r->idx;
            IF total > 0 THEN
                missing_share := (r->>(idx + 1))::float8 / total;
            END IF;
            idx := idx + 2;
            IF jsonb_typeof(counts) = 'object' AND b.categories IS NOT NULL THEN
                psi := @extschema@.psi(b.categories, counts);
                SELECT @extschema@.js_distance(array_agg(coalesce((b.categories->>k)::float8, 0) ORDER BY k),
                                               array_agg(coalesce((counts->>k)::float8, 0) ORDER BY k))
                  INTO js
                  FROM (SELECT jsonb_object_keys(b.categories) UNION SELECT jsonb_object_keys(counts)) AS keys(k);
            END IF;
        END IF;
        drifted := psi > psi_threshold;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.drift(text, text, pg_catalog.regclass, timestamptz, text, pg_catalog.float8) IS
    'Per baselined feature: PSI and Jensen-Shannon distance of the current values against the baseline, missing share, rows, and whether PSI exceeds psi_threshold; one scan of current';

CREATE OR REPLACE FUNCTION @extschema@.drift_summary(model text, version text, current pg_catalog.regclass,
                                          since timestamptz DEFAULT NULL, time_column text DEFAULT NULL,
                                          psi_threshold pg_catalog.float8 DEFAULT 0.25,
                                          drift_share pg_catalog.float8 DEFAULT 0.5)
    RETURNS TABLE (mean_psi pg_catalog.float8, max_psi pg_catalog.float8,
                   drifted_share pg_catalog.float8, dataset_drift boolean, features integer)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF drift_share IS NULL OR NOT (drift_share >= 0 AND drift_share <= 1) THEN
        RAISE EXCEPTION 'retrain.drift_summary: drift_share must be between 0 and 1, not %', coalesce(drift_share::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- features without a PSI (no values on one side) do not vote
    RETURN QUERY
    SELECT avg(d.psi), max(d.psi),
           avg(d.drifted::integer)::float8,
           avg(d.drifted::integer) >= drift_share,
           count(d.psi)::integer
      FROM @extschema@.drift(model, version, current, since, time_column, psi_threshold) d
     WHERE d.psi IS NOT NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.drift_summary(text, text, pg_catalog.regclass, timestamptz, text, pg_catalog.float8, pg_catalog.float8) IS
    'Dataset drift in one row: mean and max PSI over the features, the share that drifted, and whether that share reaches drift_share (as Evidently defines dataset drift)';

