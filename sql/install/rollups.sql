-- Rollups: the aggregates' partial states kept per model, version and time
-- bucket (see src/rollup.c), which the check cycle folds and check() merges
-- (see docs/monitoring.md, "Rollups").  First the aggregates that make a state
-- (the aggregate's transition functions, finished by its serial function)
-- and those that merge states (the aggregate's combine step over each
-- deserialized state, finished by its final function).  A figure merged
-- from the states of any partition of the rows is the figure over the rows:
-- exactly for the ranking metrics, whose states keep every key; for the
-- mean losses, whose states are compensated sums, to the last bits.

-- @replace

CREATE OR REPLACE FUNCTION @extschema@._rank_merge(internal, bytea)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_merge';
COMMENT ON FUNCTION @extschema@._rank_merge(internal, bytea) IS
    'Transition function of the merges of ranking states: combine a serialized state into the state (internal)';
CREATE OR REPLACE FUNCTION @extschema@._loss_merge(internal, bytea)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_loss_merge';
COMMENT ON FUNCTION @extschema@._loss_merge(internal, bytea) IS
    'Transition function of the merges of mean-loss states: combine a serialized state into the state (internal)';

-- The latency distribution (src/rollup_latency.c): counts in logarithmic
-- buckets, a percentile within 1% of percentile_cont's.
CREATE OR REPLACE FUNCTION @extschema@._latency_accum(internal, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_latency_accum';
COMMENT ON FUNCTION @extschema@._latency_accum(internal, pg_catalog.float8) IS
    'Transition function of _latency_state: count a latency in its bucket (internal)';
CREATE OR REPLACE FUNCTION @extschema@._latency_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_latency_combine';
COMMENT ON FUNCTION @extschema@._latency_combine(internal, internal) IS
    'Combine function of the latency distributions (internal)';
CREATE OR REPLACE FUNCTION @extschema@._latency_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_latency_serial';
COMMENT ON FUNCTION @extschema@._latency_serial(internal) IS
    'Serialization function of the latency distributions (internal)';
CREATE OR REPLACE FUNCTION @extschema@._latency_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_latency_deserial';
COMMENT ON FUNCTION @extschema@._latency_deserial(bytea, internal) IS
    'Deserialization function of the latency distributions (internal)';
CREATE OR REPLACE FUNCTION @extschema@._latency_merge(internal, bytea)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_latency_merge';
COMMENT ON FUNCTION @extschema@._latency_merge(internal, bytea) IS
    'Transition function of _latency_union: add a serialized latency distribution into the state (internal)';
CREATE OR REPLACE FUNCTION @extschema@._latency_percentile(state bytea, fraction pg_catalog.float8)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_latency_percentile';
COMMENT ON FUNCTION @extschema@._latency_percentile(bytea, pg_catalog.float8) IS
    'percentile_cont(fraction) of the latencies a serialized distribution counts, within 1% (1/101) relatively for values of one sign (internal)';

-- The states.  SSPACE: about what each takes in memory (a rank state
-- grows with the labelled rows), which the planner counts to size a hash
-- table of groups; left out, it counts 8 kB for each, so that the groups
-- of one parallel read of many models' windows (_first_states) would be
-- spilled to disk at a tenth of what fits.
CREATE OR REPLACE AGGREGATE @extschema@._rank_state(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._rank_accum, STYPE = internal, FINALFUNC = @extschema@._rank_serial,
    COMBINEFUNC = @extschema@._rank_combine, SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial, PARALLEL = SAFE, SSPACE = 1024);
COMMENT ON AGGREGATE @extschema@._rank_state(pg_catalog.float8, boolean) IS
    'The serialized state of auc and average_precision over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._brier_state(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._brier_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE, SSPACE = 64);
COMMENT ON AGGREGATE @extschema@._brier_state(pg_catalog.float8, boolean) IS
    'The serialized state of brier over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._log_loss_state(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._log_loss_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE, SSPACE = 64);
COMMENT ON AGGREGATE @extschema@._log_loss_state(pg_catalog.float8, boolean) IS
    'The serialized state of log_loss over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._mae_state(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._mae_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE, SSPACE = 64);
COMMENT ON AGGREGATE @extschema@._mae_state(pg_catalog.float8, pg_catalog.float8) IS
    'The serialized state of mae over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._rmse_state(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._rmse_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE, SSPACE = 64);
COMMENT ON AGGREGATE @extschema@._rmse_state(pg_catalog.float8, pg_catalog.float8) IS
    'The serialized state of rmse over a group, for a rollup (internal)';

CREATE OR REPLACE AGGREGATE @extschema@._latency_state(latency pg_catalog.float8) (
    SFUNC = @extschema@._latency_accum, STYPE = internal, FINALFUNC = @extschema@._latency_serial,
    COMBINEFUNC = @extschema@._latency_combine, SERIALFUNC = @extschema@._latency_serial,
    DESERIALFUNC = @extschema@._latency_deserial, PARALLEL = SAFE, SSPACE = 640);
COMMENT ON AGGREGATE @extschema@._latency_state(pg_catalog.float8) IS
    'The serialized latency distribution of a group, for a rollup (internal)';

-- The merges, finished as the metric is.
CREATE OR REPLACE AGGREGATE @extschema@._auc_merged(state bytea) (
    SFUNC = @extschema@._rank_merge, STYPE = internal, FINALFUNC = @extschema@._auc_final,
    FINALFUNC_MODIFY = READ_ONLY, COMBINEFUNC = @extschema@._rank_combine,
    SERIALFUNC = @extschema@._rank_serial, DESERIALFUNC = @extschema@._rank_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._auc_merged(bytea) IS
    'AUC of the rows whose ranking states are merged (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._average_precision_merged(state bytea) (
    SFUNC = @extschema@._rank_merge, STYPE = internal, FINALFUNC = @extschema@._average_precision_final,
    FINALFUNC_MODIFY = READ_ONLY, COMBINEFUNC = @extschema@._rank_combine,
    SERIALFUNC = @extschema@._rank_serial, DESERIALFUNC = @extschema@._rank_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._average_precision_merged(bytea) IS
    'Average precision of the rows whose ranking states are merged (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._mean_loss_merged(state bytea) (
    SFUNC = @extschema@._loss_merge, STYPE = internal, FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._mean_loss_merged(bytea) IS
    'brier, log_loss or mae of the rows whose states are merged (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._rmse_merged(state bytea) (
    SFUNC = @extschema@._loss_merge, STYPE = internal, FINALFUNC = @extschema@._rmse_final,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._rmse_merged(bytea) IS
    'rmse of the rows whose states are merged (internal)';

-- Merging two serialized states into one (a bucket's state and a late
-- outcome's), and summing confusion matrices.
CREATE OR REPLACE AGGREGATE @extschema@._rank_union(state bytea) (
    SFUNC = @extschema@._rank_merge, STYPE = internal, FINALFUNC = @extschema@._rank_serial,
    COMBINEFUNC = @extschema@._rank_combine, SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._rank_union(bytea) IS 'One serialized ranking state of the merged ones (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._loss_union(state bytea) (
    SFUNC = @extschema@._loss_merge, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._loss_union(bytea) IS 'One serialized mean-loss state of the merged ones (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._latency_union(state bytea) (
    SFUNC = @extschema@._latency_merge, STYPE = internal, FINALFUNC = @extschema@._latency_serial,
    COMBINEFUNC = @extschema@._latency_combine, SERIALFUNC = @extschema@._latency_serial,
    DESERIALFUNC = @extschema@._latency_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._latency_union(bytea) IS 'One serialized latency distribution of the merged ones (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._confusion_sum(@extschema@.confusion) (
    SFUNC = @extschema@.confusion_add, STYPE = @extschema@.confusion, COMBINEFUNC = @extschema@.confusion_add,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._confusion_sum(@extschema@.confusion) IS 'The sum of confusion matrices (internal)';

-- @once

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

-- @replace

-- The SELECT list of rollup states over rows p (predictions) and o
-- (outcomes), as _source_from() names them: the same figures as _window(),
-- kept as states.  threshold: the SQL of the confusion matrix's threshold;
-- counts: the SQL of the feature counts (a jsonb object).  labels_only:
-- only what an outcome adds to a prediction already counted (labelled, the
-- labelled states), for a late outcome.  parts: the state columns wanted
-- (NULL: all), the others NULL; the counts always.  One text for a
-- version's read (_state_list) and for the cycle's fold of many models in
-- one statement (_fold_logged), whose thresholds and features are columns.
CREATE OR REPLACE FUNCTION @extschema@._state_columns(task text, threshold text, counts text, labels_only boolean,
                                                      parts text[])
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    valid text := @extschema@._valid_row(task);
    cls boolean := task = 'binary_classification';
BEGIN
    RETURN format(
        '%10$s AS predictions, %11$s AS invalid, '
        'count(o.prediction_id) FILTER (WHERE %1$s) AS labelled, %2$s AS confidence, '
        '%3$s AS rank_state, %4$s AS confusion, %5$s AS brier, %6$s AS log_loss, %7$s AS mae, %8$s AS rmse, '
        '%13$s AS latency, %14$s AS errors, %15$s AS error_known, %16$s AS bad_scores, '
        '%9$s AS features, %12$s AS last_predicted_at',
        valid,
        CASE WHEN cls AND NOT labels_only AND (parts IS NULL OR 'confidence' = ANY (parts))
             THEN format('@extschema@._mae_state(greatest(p.score, 1 - p.score), 0) FILTER (WHERE %s)', valid)
             ELSE 'NULL::bytea' END,
        CASE WHEN cls AND (parts IS NULL OR 'rank_state' = ANY (parts))
             THEN format('@extschema@._rank_state(p.score, o.label) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN cls AND (parts IS NULL OR 'confusion' = ANY (parts))
             THEN format('@extschema@.confusion(p.score, o.label, %s) FILTER (WHERE %s AND o.label IS NOT NULL)',
                         threshold, valid)
             ELSE 'NULL::@extschema@.confusion' END,
        CASE WHEN cls AND (parts IS NULL OR 'brier' = ANY (parts))
             THEN format('@extschema@._brier_state(p.score, o.label) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN cls AND (parts IS NULL OR 'log_loss' = ANY (parts))
             THEN format('@extschema@._log_loss_state(p.score, o.label) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN NOT cls AND (parts IS NULL OR 'mae' = ANY (parts))
             THEN format('@extschema@._mae_state(p.score, o.actual) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN NOT cls AND (parts IS NULL OR 'rmse' = ANY (parts))
             THEN format('@extschema@._rmse_state(p.score, o.actual) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        counts,
        CASE WHEN labels_only THEN '0::bigint' ELSE 'count(*)' END,
        -- an outcome no metric can take (a source's NaN actual) makes a
        -- prediction counted valid without it invalid
        CASE WHEN labels_only THEN format('count(*) FILTER (WHERE NOT %s AND %s)', valid, @extschema@._valid_score(task))
             ELSE format('count(*) FILTER (WHERE NOT %s)', valid) END,
        CASE WHEN labels_only THEN 'NULL::timestamptz' ELSE 'max(p.predicted_at)' END,
        CASE WHEN labels_only OR NOT (parts IS NULL OR 'latency' = ANY (parts)) THEN 'NULL::bytea'
             ELSE '@extschema@._latency_state(p.latency_ms)' END,
        CASE WHEN labels_only THEN '0::bigint' ELSE 'count(*) FILTER (WHERE p.error)' END,
        CASE WHEN labels_only THEN '0::bigint' ELSE 'count(p.error)' END,
        CASE WHEN labels_only THEN '0::bigint'
             ELSE format('count(*) FILTER (WHERE p.score IS NOT NULL AND NOT %s)', @extschema@._valid_score(task)) END);
END
$$;
COMMENT ON FUNCTION @extschema@._state_columns(text, text, text, boolean, text[]) IS
    'The SELECT list of rollup states over p and o, given the SQL of the threshold and of the feature counts (internal)';

-- The SELECT list of a version's states (_state_columns), with its
-- threshold and the counts of its baselined features (those of a jsonb
-- column by one aggregate, the others one by one).
CREATE OR REPLACE FUNCTION @extschema@._state_list(m @extschema@.models, version text, threshold pg_catalog.float8,
                                                   labels_only boolean, parts text[] DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wide text[] := @extschema@._source_features(m);
    feats text[] := '{}';
    fexpr text;
    b @extschema@.baselines;
    names text[] := '{}';
    edges pg_catalog.float8[] := '{}';
    ends integer[] := '{}';
    counts text;
BEGIN
    IF NOT labels_only AND (parts IS NULL OR 'features' = ANY (parts)) THEN
        IF wide IS NULL THEN
            -- the numeric features of the jsonb column
            SELECT f.names, f.edges, f.ends INTO names, edges, ends
              FROM @extschema@._feature_spec(m.name, version) f;
        END IF;
        FOR b IN SELECT * FROM @extschema@.baselines bl
                  WHERE bl.model = m.name AND bl.version = _state_list.version
                    AND (wide IS NOT NULL OR bl.kind <> 'numeric') ORDER BY bl.feature LOOP
            fexpr := @extschema@._feature_expr(wide, b.feature);
            feats := feats || format('%L, %s', b.feature,
                CASE WHEN b.kind = 'numeric'
                     THEN format('to_jsonb(@extschema@.histogram_missing(@extschema@._as_float8(%s), %L::float8[]))', fexpr, coalesce(b.edges, '{}'))
                     ELSE format('to_jsonb(@extschema@.category_counts(%s))', fexpr) END);
        END LOOP;
    END IF;
    counts := CASE WHEN cardinality(feats) = 0 THEN '''{}''::jsonb'
                   ELSE format('jsonb_build_object(%s)', array_to_string(feats, ', ')) END;
    IF cardinality(names) > 0 THEN
        -- the same counts as histogram_missing(_as_float8(features->>f), edges)
        counts := format('%s || coalesce(@extschema@._feature_histograms(p.features, %L::text[], %L::float8[], %L::integer[]), ''{}'')',
                         counts, names, edges, ends);
    END IF;
    RETURN @extschema@._state_columns(m.task, format('%s', threshold), counts, labels_only, parts);
END
$$;
COMMENT ON FUNCTION @extschema@._state_list(@extschema@.models, text, pg_catalog.float8, boolean, text[]) IS
    'The SELECT list of a version''s rollup states (those named, or all) over p and o, or of what late outcomes add (internal)';

-- Reads of retrain.predictions in the order rows arrived (logged_at): p
-- and o as _source_from() names them, with the outcomes observed by
-- observed_upto and logged by logged_upto.  A row logged before 0.2.0 has
-- no logged_at and counts as logged before any fold.
CREATE OR REPLACE FUNCTION @extschema@._arrival_from(observed_upto timestamptz, logged_upto timestamptz)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN format('@extschema@.predictions p '
                  'LEFT JOIN @extschema@.outcomes o '
                  '       ON o.prediction_id = p.id AND o.model = p.model AND o.observed_at <= %L '
                  '      AND coalesce(o.logged_at, ''-infinity'') <= %L',
                  observed_upto, logged_upto);
COMMENT ON FUNCTION @extschema@._arrival_from(timestamptz, timestamptz) IS
    'The FROM clause (p, o) over retrain.predictions with the outcomes observed and logged by given times (internal)';

-- Late outcomes with their predictions: o, and p looked up by its key in
-- the one partition o.predicted_at names.  p is a fenced LATERAL (OFFSET 0)
-- so that no plan but that probe is possible, whatever the estimates.
-- Joined openly, the planner chose either a hash join over the whole log
-- (when it expected more outcomes than came, as from a partition not yet
-- analyzed) or, given p.model, the (model, predicted_at) index, which
-- matches every prediction of a batch logged at one time (1,000 rows read
-- per outcome in the bench).  Late outcomes are few by definition: the
-- ones that arrived since the last fold.  The model is compared outside
-- the fence, where it cannot choose the index.
CREATE OR REPLACE FUNCTION @extschema@._late_outcomes_from()
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN '@extschema@.outcomes o '
           'CROSS JOIN LATERAL (SELECT * FROM @extschema@.predictions p '
           '                     WHERE p.id = o.prediction_id AND p.predicted_at = o.predicted_at OFFSET 0) p';
COMMENT ON FUNCTION @extschema@._late_outcomes_from() IS
    'The FROM clause (o, p) of outcomes joined to their predictions by key, one probe each (internal)';

-- A version's states (the SELECT list of _state_list) over the rows of
-- from_ (p, o) that meet cond, grouped by bucket (bucket NULL: one group).
-- Read with the rights the model's source calls for (_read); or, given
-- times, as a planned read of retrain.predictions (_read_planned: list,
-- from_ and cond from _planned_state_list and $1, and the model, version
-- and threshold as $2 to $4).
--
-- span: the times the rows' buckets lie in, for a read of many rows
-- (_states_whole).  The planner cannot tell how many buckets
-- date_bin(p.predicted_at) makes of them: it counts one a row, a hash
-- table of 100,000 groups of internal states would not fit in memory, so
-- the workers only read and the process that gathers them aggregates (or
-- they sort every row by bucket first).  Grouped instead by the buckets
-- of span, joined to the rows on date_bin(), the planner counts the
-- groups as a few, and each worker aggregates its own rows by hashing.  A
-- row outside span (a prediction made ahead of the clock) finds no
-- bucket: the rows are then read again without span, so the states are
-- the same either way.
CREATE OR REPLACE FUNCTION @extschema@._states(m @extschema@.models, version text, list text, from_ text, cond text,
                                               bucket interval, times timestamptz[] DEFAULT NULL,
                                               threshold pg_catalog.float8 DEFAULT NULL,
                                               span tstzrange DEFAULT NULL)
    RETURNS SETOF @extschema@.rollups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    by_span boolean := bucket IS NOT NULL AND span IS NOT NULL AND NOT isempty(span)
                       AND NOT lower_inf(span) AND NOT upper_inf(span);
    bin text := format('date_bin(%L::interval, p.predicted_at, ''2001-01-01 00:00+00'')', bucket);
    query text := format(
        'SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM ('
        'SELECT %s AS bucket_start, %s FROM %s %s WHERE p.model = %s AND p.version = %s AND (%s) GROUP BY 1) s',
        CASE WHEN bucket IS NULL THEN '''-infinity''::timestamptz' WHEN by_span THEN 'b.bucket_start' ELSE bin END,
        list, from_,
        CASE WHEN by_span
             THEN format('LEFT JOIN unnest((SELECT array_agg(g) FROM generate_series(date_bin(%1$L::interval, '
                         '%2$L::timestamptz, ''2001-01-01 00:00+00''), %3$L::timestamptz, %1$L::interval) g)) '
                         'b(bucket_start) ON b.bucket_start = %4$s',
                         bucket, lower(span), upper(span), bin)
             ELSE '' END,
        CASE WHEN times IS NULL THEN quote_literal(m.name) ELSE '$2' END,
        CASE WHEN times IS NULL THEN quote_literal(version) ELSE '$3' END, cond);
    states jsonb;
    f record;
BEGIN
    IF times IS NULL THEN
        states := @extschema@._read(m, query);
    ELSE
        f := @extschema@._feature_spec(m.name, version);
        states := @extschema@._read_planned(query, times, m.name, version, threshold, f.names, f.edges, f.ends);
    END IF;
    IF by_span AND jsonb_path_exists(states, '$[*] ? (@.bucket_start == null)') THEN
        -- rows outside span: read again, grouped by their own buckets
        RETURN QUERY SELECT * FROM @extschema@._states(m, version, list, from_, cond, bucket, times, threshold);
        RETURN;
    END IF;
    RETURN QUERY
    SELECT m.name, version, r.bucket_start, r.predictions, r.invalid, r.labelled,
           decode(substr(r.confidence, 3), 'hex'), decode(substr(r.rank_state, 3), 'hex'), r.confusion,
           decode(substr(r.brier, 3), 'hex'), decode(substr(r.log_loss, 3), 'hex'), decode(substr(r.mae, 3), 'hex'),
           decode(substr(r.rmse, 3), 'hex'), decode(substr(r.latency, 3), 'hex'), r.errors, r.error_known,
           r.bad_scores, r.features, r.last_predicted_at, NULL::jsonb
      FROM jsonb_to_recordset(states)
           AS r(bucket_start timestamptz, predictions bigint, invalid bigint, labelled bigint, confidence text,
                rank_state text, confusion @extschema@.confusion, brier text, log_loss text, mae text, rmse text,
                latency text, errors bigint, error_known bigint, bad_scores bigint, features jsonb,
                last_predicted_at timestamptz)
     WHERE r.predictions > 0 OR r.labelled > 0 OR r.invalid > 0;
END
$$;
COMMENT ON FUNCTION @extschema@._states(@extschema@.models, text, text, text, text, interval, timestamptz[], pg_catalog.float8, tstzrange) IS
    'A version''s rollup states over the rows of a FROM clause that meet a condition, by bucket (internal)';

-- _states() over a model's whole window, as its first fold (a cold start)
-- reads it: 100,000 rows and more, whose states cost microseconds a row,
-- the scan a fraction of that.  The planner's defaults rate such a read as
-- not worth workers (they price a row at a few operator calls, not at ten
-- histograms), and would JIT-compile a few hundred expressions in each
-- process.  With workers, each aggregating its rows by the buckets of
-- span (see _states), and no JIT, the read takes about 0.6 of the time on
-- two cores (measured on the bench's models: 225 ms against 370 ms
-- serially, 295 ms with workers that sort the rows by bucket).  The
-- settings hold for this read alone; the rows' owner is retrain, no
-- owner's code runs here.
CREATE OR REPLACE FUNCTION @extschema@._states_whole(m @extschema@.models, version text, list text, from_ text,
                                                     cond text, bucket interval, span tstzrange)
    RETURNS SETOF @extschema@.rollups
    -- STRICT: a NULL argument reads nothing
    LANGUAGE sql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
    SET jit = off
    SET parallel_setup_cost = 0
    SET parallel_tuple_cost = 0
    SET min_parallel_table_scan_size = 0
    SET min_parallel_index_scan_size = 0
    -- grouped by hashing in each worker, the rows never sorted (the
    -- planner would sort them where it expects fewer)
    SET enable_sort = off
AS $$
    SELECT * FROM @extschema@._states(m, version, list, from_, cond, bucket, span => span)
$$;
COMMENT ON FUNCTION @extschema@._states_whole(@extschema@.models, text, text, text, text, interval, tstzrange) IS
    '_states() over a model''s whole window (its first fold), with parallel workers and without JIT; no rows for a NULL argument (internal)';

-- A version's numeric baselined features as _feature_histograms takes
-- them (in the order _state_list counts them), and whether all its
-- baselined features are numeric.
CREATE OR REPLACE FUNCTION @extschema@._feature_spec(model text, version text, OUT names text[],
                                                     OUT edges pg_catalog.float8[], OUT ends integer[],
                                                     OUT numeric_only boolean)
    LANGUAGE plpgsql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b record;
BEGIN
    names := '{}';
    edges := '{}';
    ends := '{}';
    numeric_only := true;
    FOR b IN SELECT bl.feature, bl.kind, bl.edges FROM @extschema@.baselines bl
              WHERE bl.model = _feature_spec.model AND bl.version = _feature_spec.version ORDER BY bl.feature LOOP
        IF b.kind <> 'numeric' THEN
            numeric_only := false;
            CONTINUE;
        END IF;
        names := names || b.feature;
        edges := edges || coalesce(b.edges, '{}');
        ends := ends || cardinality(edges);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._feature_spec(text, text) IS
    'A version''s numeric features as _feature_histograms takes them, and whether it has no other (internal)';

-- The SELECT list of _state_list for a planned read of a version whose
-- baselined features are all numeric, with its threshold and features as
-- parameters ($4 to $7 of _read_planned): the same text for every model
-- of a task.
CREATE OR REPLACE FUNCTION @extschema@._planned_state_list(task text, labels_only boolean, parts text[])
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._state_columns(task, '$4',
        CASE WHEN NOT labels_only AND (parts IS NULL OR 'features' = ANY (parts))
             THEN '''{}''::jsonb || coalesce(@extschema@._feature_histograms(p.features, $5, $6, $7), ''{}'')'
             ELSE '''{}''::jsonb' END,
        labels_only, parts);
END
$$;
COMMENT ON FUNCTION @extschema@._planned_state_list(text, boolean, text[]) IS
    'The SELECT list of a version''s rollup states with its threshold and numeric features as parameters (internal)';

-- A read of retrain.predictions whose plan is kept for the session (C):
-- times as $1, then model, version, threshold and the features' names,
-- edges and ends.
CREATE OR REPLACE FUNCTION @extschema@._read_planned(query text, times timestamptz[], model text, version text,
                                                     threshold pg_catalog.float8, names text[],
                                                     edges pg_catalog.float8[], ends integer[])
    RETURNS jsonb
    LANGUAGE C VOLATILE
    AS 'MODULE_PATHNAME', 'retrain_read_planned';
COMMENT ON FUNCTION @extschema@._read_planned(text, timestamptz[], text, text, pg_catalog.float8, text[], pg_catalog.float8[], integer[]) IS
    'A one-value read of retrain.predictions with parameters, its plan kept for the session (internal)';

-- Two serialized states as one (either may be NULL: no such rows).
-- plpgsql: planned once a session (a SQL function with SET is planned at
-- every call, and a fold merges into a few hundred buckets)
CREATE OR REPLACE FUNCTION @extschema@._rank_add(a bytea, b bytea)
    RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                ELSE (SELECT @extschema@._rank_union(x) FROM (VALUES (a), (b)) v(x)) END;
END
$$;
COMMENT ON FUNCTION @extschema@._rank_add(bytea, bytea) IS 'Two serialized ranking states merged (internal)';
CREATE OR REPLACE FUNCTION @extschema@._loss_add(a bytea, b bytea)
    RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                ELSE (SELECT @extschema@._loss_union(x) FROM (VALUES (a), (b)) v(x)) END;
END
$$;
COMMENT ON FUNCTION @extschema@._loss_add(bytea, bytea) IS 'Two serialized mean-loss states merged (internal)';
CREATE OR REPLACE FUNCTION @extschema@._latency_add(a bytea, b bytea)
    RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                ELSE (SELECT @extschema@._latency_union(x) FROM (VALUES (a), (b)) v(x)) END;
END
$$;
COMMENT ON FUNCTION @extschema@._latency_add(bytea, bytea) IS 'Two serialized latency distributions merged (internal)';

-- Feature counts of several rollup rows added, feature by feature: a
-- histogram's array element by element, category counts key by key (in
-- C: check() adds a window's buckets with it).  A feature no row counted
-- stays out (NULL, as an aggregate over no rows).
CREATE OR REPLACE FUNCTION @extschema@._sum_features(parts jsonb[])
    RETURNS jsonb
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_sum_features';
COMMENT ON FUNCTION @extschema@._sum_features(jsonb[]) IS
    'Feature counts of rollup rows added, feature by feature (internal)';

-- The same over a window's buckets, row by row (no array of them built).
CREATE OR REPLACE FUNCTION @extschema@._features_accum(internal, jsonb)
    RETURNS internal LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_features_accum';
COMMENT ON FUNCTION @extschema@._features_accum(internal, jsonb) IS
    'Transition function of _features_union: add a rollup row''s feature counts (internal)';
CREATE OR REPLACE FUNCTION @extschema@._features_combine(internal, internal)
    RETURNS internal LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_features_combine';
COMMENT ON FUNCTION @extschema@._features_combine(internal, internal) IS
    'Combine function of _features_union (internal)';
CREATE OR REPLACE FUNCTION @extschema@._features_serial(internal)
    RETURNS bytea LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_features_serial';
COMMENT ON FUNCTION @extschema@._features_serial(internal) IS
    'Serial function of _features_union: the counts as a jsonb document''s bytes (internal)';
CREATE OR REPLACE FUNCTION @extschema@._features_deserial(bytea, internal)
    RETURNS internal LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_features_deserial';
COMMENT ON FUNCTION @extschema@._features_deserial(bytea, internal) IS
    'Deserial function of _features_union (internal)';
CREATE OR REPLACE FUNCTION @extschema@._features_final(internal)
    RETURNS jsonb LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_features_final';
COMMENT ON FUNCTION @extschema@._features_final(internal) IS
    'Final function of _features_union: the counts as jsonb (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._features_union(features jsonb) (
    SFUNC = @extschema@._features_accum, STYPE = internal, FINALFUNC = @extschema@._features_final,
    FINALFUNC_MODIFY = READ_ONLY, COMBINEFUNC = @extschema@._features_combine,
    SERIALFUNC = @extschema@._features_serial, DESERIALFUNC = @extschema@._features_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._features_union(jsonb) IS
    'Feature counts of rollup rows added, feature by feature, as _sum_features() adds them (internal)';

-- The counts of one document less those of a part of it (C): a window's
-- whole buckets from two running sums (rollups.features_before).
CREATE OR REPLACE FUNCTION @extschema@._features_diff(total jsonb, part jsonb)
    RETURNS jsonb
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_features_diff';
COMMENT ON FUNCTION @extschema@._features_diff(jsonb, jsonb) IS
    'Feature counts of rollup rows less those of a part of them, feature by feature; an error if the part counts more (internal)';

-- The running sums of feature counts (features_before) made again, per
-- model and version, from a bucket on: from the first bucket whose
-- counts changed, or the first row that has none yet, whichever is
-- earlier (no bucket given: the latter).  A row whose sum is right is not
-- written.
CREATE OR REPLACE FUNCTION @extschema@._prefix_features(models text[], versions text[], starts timestamptz[])
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
BEGIN
    -- each model's rows from the first made again, from the primary key
    -- (LATERAL ... OFFSET 0: never a join over every model's rows), and
    -- each written by its key, one by one: a join of the rows to write
    -- with the table could be planned as a scan of every model's rollups
    FOR w IN
        WITH s AS MATERIALIZED (
            SELECT u.model, u.version,
                   least(u.start, (SELECT min(z.bucket_start) FROM @extschema@.rollups z
                                    WHERE z.model = u.model AND z.version = u.version
                                      AND z.features_before IS NULL)) AS start
              FROM unnest(models, versions, starts) u(model, version, start))
        SELECT r.model, r.version, r.bucket_start,
               -- the sum up to the bucket before the first made again,
               -- then each bucket's counts
               @extschema@._sum_features(ARRAY[b.before_next, @extschema@._features_union(r.features) OVER (
                   PARTITION BY r.model, r.version ORDER BY r.bucket_start
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)]) AS before,
               r.features_before AS was
          FROM s
          CROSS JOIN LATERAL (SELECT * FROM @extschema@.rollups y
                               WHERE y.model = s.model AND y.version = s.version AND y.bucket_start >= s.start
                              OFFSET 0) r
          LEFT JOIN LATERAL (SELECT @extschema@._sum_features(ARRAY[p.features_before, p.features]) AS before_next
                               FROM @extschema@.rollups p
                              WHERE p.model = s.model AND p.version = s.version AND p.bucket_start < s.start
                              ORDER BY p.bucket_start DESC LIMIT 1) b ON true
    LOOP
        IF w.was IS DISTINCT FROM w.before THEN
            UPDATE @extschema@.rollups r SET features_before = w.before
             WHERE r.model = w.model AND r.version = w.version AND r.bucket_start = w.bucket_start;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._prefix_features(text[], text[], timestamptz[]) IS
    'Make the running sums of feature counts of rollup rows again, per model and version, from a bucket on (internal)';

-- Add states to the rollups, merging into a bucket that has some.
CREATE OR REPLACE FUNCTION @extschema@._add_rollups(parts @extschema@.rollups[])
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO @extschema@.rollups AS r SELECT * FROM unnest(parts)
    ON CONFLICT ON CONSTRAINT rollups_pkey DO UPDATE
       SET predictions = r.predictions + excluded.predictions, invalid = r.invalid + excluded.invalid,
           labelled = r.labelled + excluded.labelled,
           confidence = @extschema@._loss_add(r.confidence, excluded.confidence),
           rank_state = @extschema@._rank_add(r.rank_state, excluded.rank_state),
           confusion = CASE WHEN r.confusion IS NULL THEN excluded.confusion WHEN excluded.confusion IS NULL THEN r.confusion
                            ELSE @extschema@.confusion_add(r.confusion, excluded.confusion) END,
           brier = @extschema@._loss_add(r.brier, excluded.brier),
           log_loss = @extschema@._loss_add(r.log_loss, excluded.log_loss),
           mae = @extschema@._loss_add(r.mae, excluded.mae), rmse = @extschema@._loss_add(r.rmse, excluded.rmse),
           latency = @extschema@._latency_add(r.latency, excluded.latency), errors = r.errors + excluded.errors,
           error_known = r.error_known + excluded.error_known, bad_scores = r.bad_scores + excluded.bad_scores,
           features = CASE WHEN excluded.features = '{}' THEN r.features WHEN r.features = '{}' THEN excluded.features
                           ELSE @extschema@._sum_features(ARRAY[r.features, excluded.features]) END,
           last_predicted_at = greatest(r.last_predicted_at, excluded.last_predicted_at);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- the running sums after each bucket whose feature counts grew (late
    -- outcomes add none), and of the rows just made
    PERFORM @extschema@._prefix_features(array_agg(x.model), array_agg(x.version), array_agg(x.start))
       FROM (SELECT p.model, p.version, min(p.bucket_start) FILTER (WHERE p.features <> '{}') AS start
               FROM unnest(parts) p GROUP BY 1, 2) x;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._add_rollups(@extschema@.rollups[]) IS
    'Add rows of states to the rollups, merged into the buckets that have some (internal)';

-- The rows of retrain.predictions are folded in the order they arrived
-- (logged_at, the start of the statement that wrote them), so that a
-- backfill (predictions or outcomes logged today with yesterday's times)
-- is folded too, into its buckets.  A row counts as arrived once committed:
-- a statement still running, or a transaction that wrote and has not yet
-- committed, may yet commit rows logged as early as it began, so the fold
-- stops short of the oldest of them (and of rollups.settle before at).  A
-- long statement in the database holds folding back to its start: the
-- rows since are read directly until it ends, slower but the same figures.
CREATE OR REPLACE FUNCTION @extschema@._arrival_horizon(at timestamptz, settle interval)
    RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    oldest timestamptz;
BEGIN
    PERFORM pg_stat_clear_snapshot();
    SELECT min(CASE WHEN a.backend_xid IS NOT NULL THEN a.xact_start ELSE a.query_start END) INTO oldest
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.backend_type IN ('client backend', 'background worker')
       AND a.pid <> pg_backend_pid() AND a.leader_pid IS DISTINCT FROM pg_backend_pid()
       AND (a.backend_xid IS NOT NULL OR a.state = 'active');
    RETURN least(at - settle, oldest - interval '1 microsecond');
END
$$;
COMMENT ON FUNCTION @extschema@._arrival_horizon(timestamptz, interval) IS
    'How far the rows of retrain.predictions have arrived: at - settle, or just before the oldest statement or writing transaction still running (internal)';

-- The outcomes of retrain.predictions that arrived after a time: known at
-- greatest(logged_at, observed_at).  Two conditions over o and p, each
-- served by an index of retrain.outcomes: logged since, and logged before
-- but observed since (a time that was ahead).
-- Only outcomes of predictions logged by after: the others come with
-- their predictions.  The arguments are SQL: literals for one model, a
-- row's columns for the cycle's fold of many (_fold_logged).
CREATE OR REPLACE FUNCTION @extschema@._arrived_outcomes_sql(model text, after text, logged_upto text,
                                                             observed_upto text)
    RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
    RETURN ARRAY[format('o.model = %1$s AND o.logged_at > %2$s AND o.logged_at <= %3$s AND o.observed_at <= %4$s '
                        'AND coalesce(p.logged_at, ''-infinity'') <= %2$s', model, after, logged_upto, observed_upto),
                 format('o.observed_at > coalesce(o.logged_at, ''-infinity'') AND o.observed_at > %2$s '
                        'AND o.observed_at <= %4$s AND coalesce(o.logged_at, ''-infinity'') <= %2$s '
                        'AND coalesce(p.logged_at, ''-infinity'') <= %2$s', model, after, logged_upto, observed_upto)];
COMMENT ON FUNCTION @extschema@._arrived_outcomes_sql(text, text, text, text) IS
    'The conditions on o and p of outcomes that arrived after a time (logged by one, observed by another), for predictions that arrived before it, over SQL bounds (internal)';

CREATE OR REPLACE FUNCTION @extschema@._arrived_outcomes(model text, after timestamptz, logged_upto timestamptz,
                                                         observed_upto timestamptz)
    RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN @extschema@._arrived_outcomes_sql(quote_literal(model), quote_literal(after), quote_literal(logged_upto),
                                             quote_literal(observed_upto));
COMMENT ON FUNCTION @extschema@._arrived_outcomes(text, timestamptz, timestamptz, timestamptz) IS
    'The conditions on o and p of a model''s outcomes that arrived after a time (logged by one, observed by another), for predictions that arrived before it (internal)';

-- Whether any outcome of the model may have arrived after a time: the two
-- conditions of _arrived_outcomes() (with the same bounds) on the outcome
-- alone, each from an index.  A cheap question that spares the cycle a
-- read of the rows in the common case of no late outcome.
CREATE OR REPLACE FUNCTION @extschema@._outcomes_arrived(model text, after timestamptz, logged_upto timestamptz,
                                                         observed_upto timestamptz)
    RETURNS boolean
    -- plpgsql: planned once a session (see _training_failures)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM @extschema@.outcomes o
                    WHERE o.model = _outcomes_arrived.model AND o.logged_at > _outcomes_arrived.after
                      AND o.logged_at <= _outcomes_arrived.logged_upto
                      AND o.observed_at <= _outcomes_arrived.observed_upto)
        OR EXISTS (SELECT 1 FROM @extschema@.outcomes o
                    WHERE o.observed_at > coalesce(o.logged_at, '-infinity') AND o.observed_at > _outcomes_arrived.after
                      AND o.observed_at <= _outcomes_arrived.observed_upto AND o.model = _outcomes_arrived.model);
END
$$;
COMMENT ON FUNCTION @extschema@._outcomes_arrived(text, timestamptz, timestamptz, timestamptz) IS
    'Whether any outcome of a model may have arrived after a time, logged and observed by others (internal)';

-- One fold of retrain.predictions: the predictions logged in (after, upto]
-- with their outcomes known by upto, and the outcomes that arrived in
-- (after, upto] for predictions folded before, into the buckets of their
-- predictions from keep on.
CREATE OR REPLACE FUNCTION @extschema@._fold_arrived(m @extschema@.models, after timestamptz, upto timestamptz,
                                                     keep timestamptz, threshold pg_catalog.float8, width interval)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
    n integer := 0;
    late boolean;
BEGIN
    late := after > '-infinity' AND @extschema@._outcomes_arrived(m.name, after, upto, upto);
    FOR v IN SELECT mv.version FROM @extschema@.model_versions mv WHERE mv.model = m.name LOOP
        -- after the first fold, only versions with new predictions are read
        IF after = '-infinity' THEN
            -- the first fold: the whole window, with workers (_states_whole)
            n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._states_whole(m, v,
                @extschema@._state_list(m, v, threshold, false), @extschema@._arrival_from(upto, upto),
                format('p.predicted_at >= %L AND coalesce(p.logged_at, ''-infinity'') <= %L', keep, upto),
                width, tstzrange(keep, upto + width, '[]')) s));
        -- (the rows logged since the last fold: those predicted since ten
        -- minutes before it, found inside predictions_model_time, and
        -- those logged later than that after their prediction, in
        -- predictions_logged_late; see _fold_new_rows)
        ELSIF EXISTS (SELECT 1 FROM @extschema@.predictions p
                       WHERE p.model = m.name AND p.predicted_at >= after - interval '10 minutes'
                         AND p.logged_at > after AND p.logged_at <= upto AND p.version = v)
              OR EXISTS (SELECT 1 FROM @extschema@.predictions p
                          WHERE p.model = m.name AND timezone(interval '0', p.logged_at) > timezone(interval '0', p.predicted_at) + interval '10 minutes'
                            AND p.logged_at > after AND p.logged_at <= upto AND p.version = v) THEN
            n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._states(m, v,
                @extschema@._state_list(m, v, threshold, false), @extschema@._arrival_from(upto, upto),
                format('p.predicted_at >= %L AND p.logged_at > %L AND p.logged_at <= %L '
                       'AND (p.predicted_at >= %L OR timezone(interval ''0'', p.logged_at) > timezone(interval ''0'', p.predicted_at) + interval ''10 minutes'')',
                       keep, after, upto, after - interval '10 minutes'),
                width) s));
        END IF;
        IF late THEN
            -- both kinds of late outcome in one query (each served by an
            -- index of retrain.outcomes)
            n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._states(m, v,
                @extschema@._state_list(m, v, threshold, true),
                @extschema@._late_outcomes_from(),
                format('p.model = o.model AND p.predicted_at >= %L AND ((%s))', keep,
                       array_to_string(@extschema@._arrived_outcomes(m.name, after, upto, upto), ') OR (')),
                width) s));
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_arrived(@extschema@.models, timestamptz, timestamptz, timestamptz, pg_catalog.float8, interval) IS
    'Fold the predictions and outcomes of retrain.predictions that arrived in (after, upto] into a model''s rollups (internal)';

-- One fold of a source relation (set_source), which has no arrival time:
-- the buckets closed since (a bucket is closed once its end is
-- rollups.settle in the past) with the outcomes observed by upto, and the
-- outcomes observed in (after, upto] of predictions in buckets folded
-- before.  A row written later with an earlier time is folded by
-- rebuild_rollups().
CREATE OR REPLACE FUNCTION @extschema@._fold_by_time(m @extschema@.models, mk @extschema@.rollup_marks,
                                                     closed timestamptz, upto timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
    n integer := 0;
BEGIN
    FOR v IN SELECT mv.version FROM @extschema@.model_versions mv WHERE mv.model = m.name LOOP
        IF mk.computed_until < closed THEN
            n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._states(m, v,
                @extschema@._state_list(m, v, mk.threshold, false), @extschema@._source_from('rollups', m, upto),
                format('p.predicted_at >= %L AND p.predicted_at < %L', mk.computed_until, closed), mk.bucket) s));
        END IF;
        IF mk.computed_from < mk.computed_until AND upto > mk.outcomes_until THEN
            n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._states(m, v,
                @extschema@._state_list(m, v, mk.threshold, true), @extschema@._source_from('rollups', m, upto),
                format('p.predicted_at >= %L AND p.predicted_at < %L AND o.observed_at > %L',
                       mk.computed_from, mk.computed_until, mk.outcomes_until), mk.bucket) s));
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_by_time(@extschema@.models, @extschema@.rollup_marks, timestamptz, timestamptz) IS
    'Fold a source relation''s closed buckets and newly observed outcomes into a model''s rollups (internal)';

-- What a model's rollups are made with besides its policy: its source and
-- its versions' baselines.  A change of either starts them again.
CREATE OR REPLACE FUNCTION @extschema@._rollup_made_with(model text, source text)
    RETURNS jsonb
    -- plpgsql: planned once a session (see _training_failures)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT jsonb_build_object('source', _rollup_made_with.source,
                                      'baselines', coalesce(jsonb_object_agg(bl.version, bl.captured_at), '{}'))
              FROM (SELECT b.version, max(b.captured_at) AS captured_at FROM @extschema@.baselines b
                     WHERE b.model = _rollup_made_with.model GROUP BY b.version) bl);
END
$$;
COMMENT ON FUNCTION @extschema@._rollup_made_with(text, text) IS
    'The source and the versions'' baselines a model''s rollups are made with (internal)';

-- How a model's rollups are made, from its policy: bucket width, settle
-- time, threshold, the first bucket kept (keep), and made_with.
CREATE OR REPLACE FUNCTION @extschema@._fold_settings(model text, source text, pol jsonb, at timestamptz,
                                                      OUT width interval, OUT settle interval,
                                                      OUT threshold pg_catalog.float8, OUT keep timestamptz,
                                                      OUT made_with jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- kept: the widest window, and twice the guard's watch (a new
    -- production version is compared with the one before it over as long
    -- before the swap as it has run since)
    span interval := greatest(interval '1 day', 2 * (pol->'rollback'->>'watch')::interval,
                              coalesce((SELECT max((t.value->>'window')::interval)
                                          FROM jsonb_each(pol->'triggers') t
                                         WHERE jsonb_typeof(t.value) = 'object'
                                           AND t.value ? 'window'), interval '0'));
BEGIN
    width := (pol->'rollups'->>'bucket')::interval;
    settle := (pol->'rollups'->>'settle')::interval;
    threshold := coalesce((pol->'triggers'->'performance'->>'threshold')::float8, 0.5);
    keep := date_bin(width, at - span, '2001-01-01 00:00+00');
    -- and a running canary's time since its promotion, which the rollout
    -- guard reads however long the canary runs (least() passes over NULL:
    -- no canary)
    keep := least(keep, (SELECT date_bin(width, max(l.at), '2001-01-01 00:00+00')
                           FROM @extschema@.deployments d
                           JOIN @extschema@.log l ON l.model = d.model AND l.version = d.canary_version
                          WHERE d.model = _fold_settings.model AND l.event = 'promoted'));
    made_with := @extschema@._rollup_made_with(model, source);
END
$$;
COMMENT ON FUNCTION @extschema@._fold_settings(text, text, jsonb, timestamptz) IS
    'How a model''s rollups are made at a time: bucket width, settle time, threshold, first bucket kept, source and baselines (internal)';

-- Fold what has arrived since the last fold into the model's rollups
-- (_fold_arrived for retrain.predictions, _fold_by_time for a source).  A
-- change of bucket width, threshold, source or the versions' baselines
-- starts them again; buckets older than every window go.  Returns the
-- bucket rows written.
CREATE OR REPLACE FUNCTION @extschema@._fold_rollups(model text, at timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    pol jsonb := @extschema@.effective_policy(model);
    f record;
    mk @extschema@.rollup_marks;
    upto timestamptz;
    closed timestamptz;
    n integer;
BEGIN
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = _fold_rollups.model;
    -- One fold of a model at a time (the worker, pg_cron, a person), and
    -- none waits: a cycle that holds retrain's write lock across models
    -- (run_checks() in one transaction) would otherwise deadlock with one
    -- that folds first and changes state after.  A cycle that finds the
    -- model being folded reads the rollups as they were committed, and
    -- the rows for the rest.
    IF NOT FOUND OR NOT pg_try_advisory_xact_lock(hashtext('retrain rollups'), hashtext(model)) THEN
        RETURN 0;
    END IF;
    IF NOT (pol->'rollups'->>'enabled')::boolean THEN
        -- switched off: check() reads the rows
        DELETE FROM @extschema@.rollups r WHERE r.model = _fold_rollups.model;
        DELETE FROM @extschema@.rollup_marks r WHERE r.model = _fold_rollups.model;
        RETURN 0;
    END IF;
    f := @extschema@._fold_settings(model, m.source, pol, at);
    upto := CASE WHEN m.source IS NULL THEN @extschema@._arrival_horizon(at, f.settle) ELSE at - f.settle END;
    closed := date_bin(f.width, upto, '2001-01-01 00:00+00');
    SELECT * INTO mk FROM @extschema@.rollup_marks r WHERE r.model = _fold_rollups.model;
    IF mk.model IS NOT NULL AND (mk.computed_until > upto OR mk.outcomes_until > upto) THEN
        -- asked about a time before the last fold (run_checks(at)): the
        -- rows answer that, the rollups stay as they are
        RETURN 0;
    END IF;
    IF mk.model IS NULL OR mk.bucket <> f.width OR mk.threshold <> f.threshold OR mk.made_with <> f.made_with
       OR (m.source IS NOT NULL AND mk.computed_until < f.keep) THEN
        -- made otherwise, or (a source's) too far behind to catch up by
        -- increments: from the start
        DELETE FROM @extschema@.rollups r WHERE r.model = _fold_rollups.model;
        mk := ROW(model, f.width, f.threshold, f.made_with, f.keep,
                  CASE WHEN m.source IS NULL THEN '-infinity' ELSE f.keep END, '-infinity');
        INSERT INTO @extschema@.rollup_marks AS r VALUES (mk.*)
        ON CONFLICT ON CONSTRAINT rollup_marks_pkey DO UPDATE
           SET bucket = excluded.bucket, threshold = excluded.threshold, made_with = excluded.made_with,
               computed_from = excluded.computed_from, computed_until = excluded.computed_until,
               outcomes_until = excluded.outcomes_until;
    END IF;
    IF m.source IS NULL THEN
        n := @extschema@._fold_arrived(m, mk.computed_until, upto, greatest(f.keep, mk.computed_from), f.threshold,
                                       f.width);
    ELSE
        n := @extschema@._fold_by_time(m, mk, closed, upto);
    END IF;
    -- buckets older than every window are no longer read
    DELETE FROM @extschema@.rollups r WHERE r.model = _fold_rollups.model AND r.bucket_start < f.keep;
    UPDATE @extschema@.rollup_marks r
       SET computed_from = greatest(r.computed_from, f.keep),
           computed_until = CASE WHEN m.source IS NULL THEN upto ELSE greatest(r.computed_until, closed) END,
           outcomes_until = upto
     WHERE r.model = _fold_rollups.model;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_rollups(text, timestamptz) IS
    'Fold what has arrived since the last fold into a model''s rollups (internal)';

-- The arguments of the cycle's fold statements (_fold_new_rows,
-- _fold_late_outcomes): given any model, a task the registry knows and one
-- element of each array per model.  Checked, not trusted: unnest() pads arrays of unequal
-- length with NULLs, and _state_columns() reads an unknown task as
-- regression, so either would fold silently wrong figures.
CREATE OR REPLACE FUNCTION @extschema@._check_fold_arguments(fn text, task text, models text[], afters timestamptz[],
                                                            uptos timestamptz[], keeps timestamptz[],
                                                            thresholds pg_catalog.float8[], widths interval[])
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := coalesce(cardinality(models), 0);
BEGIN
    IF n = 0 THEN
        RETURN;  -- no models (NULL or empty): nothing is folded
    END IF;
    IF task IS NULL OR task NOT IN ('binary_classification', 'regression') THEN
        RAISE EXCEPTION 'retrain.%: unknown task %', fn, coalesce(quote_literal(task), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n <> coalesce(cardinality(afters), 0) OR n <> coalesce(cardinality(uptos), 0)
       OR n <> coalesce(cardinality(keeps), 0) OR n <> coalesce(cardinality(thresholds), 0)
       OR n <> coalesce(cardinality(widths), 0) THEN
        RAISE EXCEPTION 'retrain.%: the arrays have % models and %, %, %, % and % times, thresholds and widths',
            fn, n, coalesce(cardinality(afters), 0), coalesce(cardinality(uptos), 0),
            coalesce(cardinality(keeps), 0), coalesce(cardinality(thresholds), 0), coalesce(cardinality(widths), 0)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass one after, upto, keep, threshold and width for each model.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_fold_arguments(text, text, text[], timestamptz[], timestamptz[], timestamptz[],
                                                      pg_catalog.float8[], interval[]) IS
    'Raise 22023 unless a fold statement''s task is known and its arrays have one element a model (internal)';

-- _fold_logged's first statement: the new predictions of one task's
-- models, with the outcomes known by the horizon, merged into their
-- buckets.  Its own function for the planner settings below, which the
-- other statements of the fold must not have.
CREATE OR REPLACE FUNCTION @extschema@._fold_new_rows(task text, models text[], afters timestamptz[],
                                                      uptos timestamptz[], keeps timestamptz[],
                                                      thresholds pg_catalog.float8[], widths interval[])
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET jit = off
    -- grouped by hashing (as _fold_logged)
    SET enable_sort = off
    -- the new rows and their outcomes read by bitmap, each page of the log
    -- visited once: never by an index scan, which the planner takes where
    -- the log's history was written model by model (its statistics then
    -- say the index's order is the table's) and which then visits a page
    -- for every row it returns (100 models x 1,000 new rows: 230 ms by
    -- index scan, 43 ms by bitmap, even with each model's rows together)
    SET enable_indexscan = off
    -- and joined by hash, never in a loop: the planner cannot estimate
    -- each model's own times, takes a few rows where 100,000 arrive, and
    -- would then match every new row to every new outcome (seen: 50 s
    -- instead of 0.3 s)
    SET enable_nestloop = off
AS $$
DECLARE
    -- each model's registered versions (those a fold of the model alone
    -- reads), with the arguments of _feature_histograms as _feature_spec()
    -- gives them: per model, once (joined to the rows instead, the planner
    -- may make them again for every model: a million calls for 1,000)
    spec text := 'CROSS JOIN LATERAL (SELECT v.version, f.names, f.edges, f.ends '
                 '                    FROM @extschema@.model_versions v, @extschema@._feature_spec(v.model, v.version) f '
                 '                   WHERE v.model = x.model OFFSET 0) fs ';
BEGIN
    PERFORM @extschema@._check_fold_arguments('_fold_new_rows', task, models, afters, uptos, keeps, thresholds,
                                              widths);
    EXECUTE format(
        'WITH x AS MATERIALIZED (SELECT x.*, fs.version, fs.names, fs.edges, fs.ends '
        '                          FROM unnest($1, $2, $3, $4, $5, $6) x(model, after, upto, keep, threshold, width) '
        '                        %s) '
        'SELECT @extschema@._add_rollups(ARRAY(SELECT ROW(s.*)::@extschema@.rollups FROM ('
        'SELECT p.model, p.version, date_bin(x.width, p.predicted_at, ''2001-01-01 00:00+00'') AS bucket_start, %s, '
        'NULL::jsonb AS features_before '
        -- the models' new rows in one read, logged from the earliest
        -- model's last fold to the latest horizon (the models were folded
        -- together: the same times, or close), so that each page of the
        -- log is read once however many models' rows it holds: those
        -- predicted since ten minutes before that fold from the ranges of
        -- predictions_model_time (the arrival time is its last key
        -- column, so the rows that arrived before are passed over inside
        -- the index), and the rest, logged more than ten minutes after
        -- their prediction, from predictions_logged_late.  The two are
        -- disjoint, and together every row logged in the range.  The
        -- times are subqueries: the new rows are newer than the planner's
        -- statistics, so with the times as values it expects none and
        -- plans a loop over them; as subqueries it expects a share of the
        -- models' rows and joins them to the models by hash.  OFFSET 0:
        -- not flattened into a join it could choose to run as a scan of
        -- the whole log.
        'FROM x JOIN (SELECT * FROM @extschema@.predictions p '
        '              WHERE p.model = ANY ($1) AND p.predicted_at >= (SELECT $7) - interval ''10 minutes'' '
        '                AND p.logged_at > (SELECT $7) AND p.logged_at <= (SELECT $8) '
        '             UNION ALL '
        '             SELECT * FROM @extschema@.predictions p '
        '              WHERE p.model = ANY ($1) AND timezone(interval ''0'', p.logged_at) > timezone(interval ''0'', p.predicted_at) + interval ''10 minutes'' '
        '                AND p.predicted_at < (SELECT $7) - interval ''10 minutes'' '
        '                AND p.logged_at > (SELECT $7) AND p.logged_at <= (SELECT $8) '
        '             OFFSET 0) p '
        '  ON p.model = x.model AND p.version = x.version AND p.logged_at > x.after '
        ' AND p.logged_at <= x.upto AND p.predicted_at >= x.keep '
        -- their outcomes known by the horizon.  An outcome is never logged
        -- before its prediction (_outcome_model), so they are among the
        -- models' outcomes logged in the same range, read as the rows are
        -- and joined by hash (looked up by key, a probe of the index per
        -- row, they cost a fifth of the fold)
        'LEFT JOIN (SELECT * FROM @extschema@.outcomes o '
        '            WHERE o.model = ANY ($1) AND o.logged_at > (SELECT $7) AND o.logged_at <= (SELECT $8) '
        '           OFFSET 0) o '
        '  ON o.prediction_id = p.id AND o.model = p.model AND o.observed_at <= x.upto AND o.logged_at <= x.upto '
        'GROUP BY 1, 2, 3) s))',
        spec,
        @extschema@._state_columns(task, 'x.threshold',
            '''{}''::jsonb || coalesce(@extschema@._feature_histograms(p.features, x.names, x.edges, x.ends), ''{}'')',
            false, NULL))
    USING models, afters, uptos, keeps, thresholds, widths,
          (SELECT min(a) FROM unnest(afters) a), (SELECT max(u) FROM unnest(uptos) u);
END
$$;
COMMENT ON FUNCTION @extschema@._fold_new_rows(text, text[], timestamptz[], timestamptz[], timestamptz[],
                                               pg_catalog.float8[], interval[]) IS
    'The cycle''s fold of the predictions that arrived since the last fold, with their outcomes, for models of one task (internal)';

-- The cycle's fold of the outcomes that arrived since the last fold for
-- predictions folded before, for models of one task: each model's new
-- outcomes from its (model, logged_at) and (model, observed_at) indexes,
-- each joined to its prediction by key.  Never by a scan of a whole
-- partition of outcomes: the model here is a parameter, which the planner
-- rates by the partition's statistics, and those may be a past load's.  In
-- the bench, a partition analyzed while it held one model's outcomes (so
-- "every row is this model's") was read whole for each of 101 models:
-- 0.55 s of a 0.9 s fold, where the indexes take a few milliseconds.
CREATE OR REPLACE FUNCTION @extschema@._fold_late_outcomes(task text, models text[], afters timestamptz[],
                                                          uptos timestamptz[], keeps timestamptz[],
                                                          thresholds pg_catalog.float8[], widths interval[])
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET jit = off
    SET enable_seqscan = off
AS $$
BEGIN
    PERFORM @extschema@._check_fold_arguments('_fold_late_outcomes', task, models, afters, uptos, keeps,
                                              thresholds, widths);
    EXECUTE format(
        'SELECT @extschema@._add_rollups(ARRAY(SELECT ROW(s.*)::@extschema@.rollups FROM ('
        'SELECT p.model, p.version, date_bin(x.width, p.predicted_at, ''2001-01-01 00:00+00'') AS bucket_start, %s, '
        'NULL::jsonb AS features_before '
        -- a task's models (the planner then knows how many); each
        -- model's outcomes logged or observed since, from its indexes
        'FROM unnest($1, $2, $3, $4, $5, $6) x(model, after, upto, keep, threshold, width) '
        'CROSS JOIN LATERAL (SELECT * FROM @extschema@.outcomes o '
        '                       WHERE o.model = x.model AND (o.logged_at > x.after OR o.observed_at > x.after) '
        '                       OFFSET 0) o '
        -- each one's prediction by its key (see _late_outcomes_from)
        'CROSS JOIN LATERAL (SELECT * FROM @extschema@.predictions p '
        '                     WHERE p.id = o.prediction_id AND p.predicted_at = o.predicted_at OFFSET 0) p '
        -- of the registered versions, as a model's own fold reads them
        'WHERE p.model = o.model AND p.predicted_at >= x.keep AND ((%s)) '
        '  AND EXISTS (SELECT 1 FROM @extschema@.model_versions v '
        '               WHERE v.model = p.model AND v.version = p.version) '
        'GROUP BY 1, 2, 3) s))',
        @extschema@._state_columns(task, 'x.threshold', '''{}''::jsonb', true, NULL),
        array_to_string(@extschema@._arrived_outcomes_sql('x.model', 'x.after', 'x.upto', 'x.upto'), ') OR ('))
    USING models, afters, uptos, keeps, thresholds, widths;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_late_outcomes(text, text[], timestamptz[], timestamptz[], timestamptz[],
                                                    pg_catalog.float8[], interval[]) IS
    'The cycle''s fold of outcomes that arrived since the last fold for predictions folded before, for models of one task (internal)';

-- First folds (a cold start: the whole windows) of models kept from
-- retrain.predictions, many in one read.  Folded one by one, each model's
-- window is read through its index, and where the log interleaves the
-- models (rows written as they are served) every page holds a few rows of
-- each: 100 models read each page a hundred times over, and the pages
-- mostly from the OS's cache.  Read together, each page is read once, by
-- the workers of one parallel scan, each aggregating its share by (model,
-- version, bucket) in a hash table.  The buckets are the rows of an array
-- the planner cannot see into (as in _states: it then counts the groups
-- as a few, not one a row, and lets each worker aggregate); a row whose
-- bucket is past the array's last (a prediction made ahead of the clock:
-- at or after x.ahead) is read by a second call, with ahead, grouped by
-- its own bucket.  spec: per registered version, its model's horizon
-- (upto), first bucket kept (keep), ahead, threshold, bucket width and
-- _feature_spec(); the same rows and states as _fold_arrived's first fold.
CREATE OR REPLACE FUNCTION @extschema@._first_states(task text, spec jsonb, models text[], buckets timestamptz[],
                                                     ahead boolean)
    RETURNS SETOF @extschema@.rollups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    -- as _states_whole: workers, however the planner rates the read, and
    -- no JIT
    SET jit = off
    SET parallel_setup_cost = 0
    SET parallel_tuple_cost = 0
    SET min_parallel_table_scan_size = 0
    SET min_parallel_index_scan_size = 0
    SET enable_sort = off
    -- the outcomes joined by hash, never looked up row by row (the
    -- planner cannot estimate each model's own times, and expects a few
    -- rows where millions come)
    SET enable_nestloop = off
    -- each process's hash table holds every group of the models it reads
    -- (about 9 kB a group with ten features): room for the groups
    -- _fold_first gives one call, which a default work_mem would spill to
    -- disk row by row
    SET work_mem = '64MB'
    SET hash_mem_multiplier = 2
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT p.model, p.version, %s AS bucket_start, %s, NULL::jsonb AS features_before '
        '  FROM jsonb_to_recordset($1) x(model text, version text, upto timestamptz, keep timestamptz, '
        '                                ahead timestamptz, threshold pg_catalog.float8, width interval, '
        '                                names text[], edges pg_catalog.float8[], ends integer[]) '
        '  JOIN @extschema@.predictions p ON p.model = x.model AND p.version = x.version '
        '  %s '
        '  LEFT JOIN @extschema@.outcomes o '
        '         ON o.prediction_id = p.id AND o.model = p.model AND o.model = ANY ($2) AND o.observed_at <= x.upto '
        '        AND coalesce(o.logged_at, ''-infinity'') <= x.upto '
        ' WHERE p.model = ANY ($2) AND p.predicted_at >= x.keep AND p.predicted_at %s x.ahead '
        '   AND coalesce(p.logged_at, ''-infinity'') <= x.upto '
        ' GROUP BY 1, 2, 3',
        CASE WHEN ahead THEN 'date_bin(x.width, p.predicted_at, ''2001-01-01 00:00+00'')' ELSE 'b.bucket_start' END,
        @extschema@._state_columns(task, 'x.threshold',
            '''{}''::jsonb || coalesce(@extschema@._feature_histograms(p.features, x.names, x.edges, x.ends), ''{}'')',
            false, NULL),
        CASE WHEN ahead THEN ''
             ELSE 'JOIN unnest((SELECT $3)) b(bucket_start) '
                  '  ON b.bucket_start = date_bin(x.width, p.predicted_at, ''2001-01-01 00:00+00'')' END,
        CASE WHEN ahead THEN '>=' ELSE '<' END)
    USING spec, models, buckets;
END
$$;
COMMENT ON FUNCTION @extschema@._first_states(text, jsonb, text[], timestamptz[], boolean) IS
    'The states of many models'' whole windows (their first folds) in one parallel read of retrain.predictions (internal)';

-- One call of _first_states (and a second for rows ahead of the clock)
-- for models of one task, their rollups started again, and their marks
-- set as _fold_rollups() sets them after a first fold.
CREATE OR REPLACE FUNCTION @extschema@._fold_first_chunk(task text, models text[], uptos timestamptz[],
                                                         keeps timestamptz[], thresholds pg_catalog.float8[],
                                                         widths interval[], made_withs jsonb[])
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec jsonb;
    buckets timestamptz[];
    n integer;
BEGIN
    -- x.ahead: the end of the bucket after the horizon's, which the
    -- per-model first fold's span also ends with
    SELECT jsonb_agg(jsonb_build_object('model', x.model, 'version', v.version, 'upto', x.upto, 'keep', x.keep,
                                        'ahead', date_bin(x.width, x.upto + x.width, '2001-01-01 00:00+00') + x.width,
                                        'threshold', x.threshold, 'width', x.width,
                                        'names', f.names, 'edges', f.edges, 'ends', f.ends))
      INTO spec
      FROM unnest(models, uptos, keeps, thresholds, widths) x(model, upto, keep, threshold, width)
      JOIN @extschema@.model_versions v ON v.model = x.model
     CROSS JOIN LATERAL @extschema@._feature_spec(v.model, v.version) f;
    SELECT array_agg(DISTINCT g) INTO buckets
      FROM unnest(keeps, uptos, widths) x(keep, upto, width)
     CROSS JOIN LATERAL generate_series(date_bin(x.width, x.keep, '2001-01-01 00:00+00'),
                                        date_bin(x.width, x.upto + x.width, '2001-01-01 00:00+00'), x.width) g;
    DELETE FROM @extschema@.rollups r WHERE r.model = ANY (models);
    n := 0;
    IF spec IS NOT NULL THEN
        n := @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._first_states(task, spec, models, buckets, false) s));
        -- predictions made ahead of the clock: seldom, probed by index,
        -- one version at a time (LATERAL ... LIMIT 1).  As a semi-join the
        -- planner hashed the whole of retrain.predictions for it: 5 s of
        -- a 16 s first fold of 60 bench models.
        IF EXISTS (SELECT 1 FROM jsonb_to_recordset(spec) x(model text, version text, ahead timestamptz)
                    CROSS JOIN LATERAL (SELECT 1 FROM @extschema@.predictions p
                                         WHERE p.model = x.model AND p.predicted_at >= x.ahead
                                           AND p.version = x.version
                                         LIMIT 1) p) THEN
            n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._first_states(task, spec, models, buckets,
                                                                                            true) s));
        END IF;
    END IF;
    INSERT INTO @extschema@.rollup_marks AS r
    SELECT * FROM unnest(models, widths, thresholds, made_withs, keeps, uptos, uptos)
    ON CONFLICT ON CONSTRAINT rollup_marks_pkey DO UPDATE
       SET bucket = excluded.bucket, threshold = excluded.threshold, made_with = excluded.made_with,
           computed_from = excluded.computed_from, computed_until = excluded.computed_until,
           outcomes_until = excluded.outcomes_until;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_first_chunk(text, text[], timestamptz[], timestamptz[], pg_catalog.float8[], interval[], jsonb[]) IS
    'Start the rollups of models of one task again from their whole windows, read together (internal)';

-- The cycle's first folds: the models kept from retrain.predictions with
-- no rollups yet, or rollups made otherwise (bucket width, threshold,
-- baselines), whose baselines are all numeric and which no one else is
-- folding, read a few at a time (_fold_first_chunk): as many as keep each
-- process's hash table of groups within _first_states' work_mem (a group
-- is a version's bucket; its size grows with the features counted).  The
-- rest start by _fold_rollups(), one by one.  Returns the models folded.
CREATE OR REPLACE FUNCTION @extschema@._fold_first(at timestamptz, oldest timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- groups of ten features that fit in _first_states' hash memory
    budget constant pg_catalog.float8 := 10000;
    c record;
    task_ text;
    weight pg_catalog.float8 := 0;
    models text[] := '{}';
    uptos timestamptz[] := '{}';
    keeps timestamptz[] := '{}';
    thresholds pg_catalog.float8[] := '{}';
    widths interval[] := '{}';
    made_withs jsonb[] := '{}';
    n integer := 0;
BEGIN
    FOR c IN
        SELECT * FROM (
        SELECT m.name AS model, m.task, least(at - f.settle, oldest) AS upto, f.keep, f.threshold, f.width,
               f.made_with,
               -- groups: versions x buckets, in units of ten features
               (SELECT count(*) FROM @extschema@.model_versions v WHERE v.model = m.name)
               * (extract(epoch FROM least(at - f.settle, oldest) - f.keep) / extract(epoch FROM f.width) + 3)
               * (4 + (SELECT count(*) FROM @extschema@.baselines b WHERE b.model = m.name)) / 14 AS groups
          FROM @extschema@.models m
         CROSS JOIN LATERAL (SELECT @extschema@.effective_policy(m.name) AS pol) p
         CROSS JOIN LATERAL @extschema@._fold_settings(m.name, m.source, p.pol, at) f
          LEFT JOIN @extschema@.rollup_marks mk ON mk.model = m.name
         WHERE m.source IS NULL AND (p.pol->'rollups'->>'enabled')::boolean
           AND (mk.model IS NULL OR mk.computed_until = '-infinity' OR mk.bucket <> f.width
                OR mk.threshold <> f.threshold OR mk.made_with <> f.made_with)
           AND NOT EXISTS (SELECT 1 FROM @extschema@.baselines b WHERE b.model = m.name AND b.kind <> 'numeric')
        OFFSET 0) cand
        -- as _fold_rollups(): a model being folded elsewhere is left to it
        WHERE pg_try_advisory_xact_lock(hashtext('retrain rollups'), hashtext(cand.model))
        ORDER BY cand.task, cand.model
    LOOP
        IF cardinality(models) > 0 AND (c.task <> task_ OR weight + c.groups > budget) THEN
            PERFORM @extschema@._fold_first_chunk(task_, models, uptos, keeps, thresholds, widths, made_withs);
            models := '{}'; uptos := '{}'; keeps := '{}'; thresholds := '{}'; widths := '{}'; made_withs := '{}';
            weight := 0;
        END IF;
        task_ := c.task;
        weight := weight + c.groups;
        models := models || c.model;
        uptos := uptos || c.upto;
        keeps := keeps || c.keep;
        thresholds := thresholds || c.threshold;
        widths := widths || c.width;
        made_withs := made_withs || c.made_with;
        n := n + 1;
    END LOOP;
    IF cardinality(models) > 0 THEN
        PERFORM @extschema@._fold_first_chunk(task_, models, uptos, keeps, thresholds, widths, made_withs);
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_first(timestamptz, timestamptz) IS
    'The cycle''s first folds of the models kept from retrain.predictions whose rollups start (again), read a few models at a time (internal)';

-- The cycle's fold of every model kept from retrain.predictions, in a few
-- statements rather than a few per model: a model costs the cycle its new
-- rows, not the planning and bookkeeping of its own queries.  The models
-- taken are those folded before with the settings they have now (width,
-- threshold, baselines), whose baselines are all numeric (a categorical
-- feature's counts are a query of their own), and which no one else is
-- folding; then those whose rollups start, from their whole windows
-- (_fold_first: no rollups yet, or made with other settings).  The rest
-- are folded one by one by _fold_rollups() when their checks run (a
-- source, a categorical baseline, a model far behind the others).  The
-- same rows and the same states as _fold_rollups(): the new predictions
-- (logged after the last fold, up to the model's arrival horizon) with
-- their outcomes, and the outcomes that arrived meanwhile for predictions
-- folded before.  Returns the models folded.
CREATE OR REPLACE FUNCTION @extschema@._fold_logged(at timestamptz)
    RETURNS integer
    -- no time, no fold (least() would pass over a NULL horizon)
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
    SET jit = off
    -- the new rows are grouped by (model, version, bucket) in a hash table:
    -- a few hundred groups, where sorting rows with their features would
    -- spill to disk under a default work_mem
    SET enable_sort = off
AS $$
DECLARE
    -- just before the oldest statement or writing transaction still
    -- running ('infinity': none): each model's horizon is at most it
    oldest timestamptz := @extschema@._arrival_horizon('infinity', interval '0');
    models text[];
    tasks text[];
    afters timestamptz[];
    uptos timestamptz[];
    keeps timestamptz[];
    drops timestamptz[];
    thresholds pg_catalog.float8[];
    widths interval[];
    task_ text;
    t_models text[];
    t_afters timestamptz[];
    t_uptos timestamptz[];
    t_keeps timestamptz[];
    t_thresholds pg_catalog.float8[];
    t_widths interval[];
    n integer := 0;
BEGIN
    WITH candidates AS MATERIALIZED (
        SELECT m.name AS model, m.task, mk.computed_until AS after, h.upto,
               greatest(f.keep, mk.computed_from) AS keep, f.keep AS drop_before, f.threshold, f.width
          FROM @extschema@.models m
          JOIN @extschema@.rollup_marks mk ON mk.model = m.name
          CROSS JOIN LATERAL (SELECT @extschema@.effective_policy(m.name) AS pol) p
          CROSS JOIN LATERAL @extschema@._fold_settings(m.name, m.source, p.pol, at) f
          CROSS JOIN LATERAL (SELECT least(at - f.settle, oldest) AS upto) h
         WHERE m.source IS NULL AND (p.pol->'rollups'->>'enabled')::boolean
           AND mk.computed_until > '-infinity' AND mk.bucket = f.width AND mk.threshold = f.threshold
           AND mk.made_with = f.made_with AND mk.computed_until <= h.upto AND mk.outcomes_until <= h.upto
           AND NOT EXISTS (SELECT 1 FROM @extschema@.baselines b WHERE b.model = m.name AND b.kind <> 'numeric')
         ORDER BY m.name)
    SELECT array_agg(c.model), array_agg(c.task), array_agg(c.after), array_agg(c.upto), array_agg(c.keep),
           array_agg(c.drop_before), array_agg(c.threshold), array_agg(c.width)
      INTO models, tasks, afters, uptos, keeps, drops, thresholds, widths
      FROM (SELECT * FROM candidates c
             -- The new rows are read from the earliest of the models' last
             -- folds: a model far behind the others (its rollups switched
             -- back on after a week, a first fold long ago) would make
             -- every model's rows since then read again.  It is left to a
             -- fold of its own (_fold_rollups, when its checks run), which
             -- reads only its rows; the rest are read from at most 15
             -- minutes before the latest last fold.
             WHERE c.after >= (SELECT max(z.after) FROM candidates z) - interval '15 minutes'
            OFFSET 0) c
     -- as _fold_rollups(): a model being folded or read elsewhere is left
     -- to it
     WHERE pg_try_advisory_xact_lock(hashtext('retrain rollups'), hashtext(c.model));
    IF models IS NULL THEN
        RETURN @extschema@._fold_first(at, oldest);
    END IF;
    FOREACH task_ IN ARRAY ARRAY['binary_classification', 'regression'] LOOP
        CONTINUE WHEN NOT task_ = ANY (tasks);
        SELECT array_agg(u.model), array_agg(u.after), array_agg(u.upto), array_agg(u.keep), array_agg(u.threshold),
               array_agg(u.width)
          INTO t_models, t_afters, t_uptos, t_keeps, t_thresholds, t_widths
          FROM unnest(models, tasks, afters, uptos, keeps, thresholds, widths)
               u(model, task, after, upto, keep, threshold, width)
         WHERE u.task = task_;
        PERFORM @extschema@._fold_new_rows(task_, t_models, t_afters, t_uptos, t_keeps, t_thresholds, t_widths);
        -- the outcomes that arrived for predictions folded before
        PERFORM @extschema@._fold_late_outcomes(task_, t_models, t_afters, t_uptos, t_keeps, t_thresholds, t_widths);
    END LOOP;
    -- buckets older than every window are no longer read
    -- (a model has some only once keep has passed where its rollups begin:
    -- about once a bucket)
    DELETE FROM @extschema@.rollups r
     USING unnest(models, drops) d(model, drop_before)
      JOIN @extschema@.rollup_marks mk ON mk.model = d.model AND mk.computed_from < d.drop_before
     WHERE r.model = d.model AND r.bucket_start < d.drop_before;
    UPDATE @extschema@.rollup_marks r
       SET computed_from = greatest(r.computed_from, d.drop_before), computed_until = d.upto, outcomes_until = d.upto
      FROM unnest(models, drops, uptos) d(model, drop_before, upto)
     WHERE r.model = d.model;
    -- then the models whose rollups start: after the others, which are
    -- thus not among them
    RETURN cardinality(models) + @extschema@._fold_first(at, oldest);
END
$$;
COMMENT ON FUNCTION @extschema@._fold_logged(timestamptz) IS
    'The cycle''s fold, in a few statements, of the models kept from retrain.predictions whose rollups can be carried on as they are (internal)';

-- A version's states (the columns parts names, or all) over predictions
-- made in [since, until], with the outcomes known at at (until <= at), in
-- one row: the whole buckets from
-- the rollups; read from the rows, the partial buckets at the edges and
-- what arrived after the last fold (predictions with their outcomes, and
-- outcomes of predictions folded without them).
CREATE OR REPLACE FUNCTION @extschema@._rollup_sum(m @extschema@.models, version text, since timestamptz,
                                                   until timestamptz, at timestamptz, mk @extschema@.rollup_marks,
                                                   parts text[] DEFAULT NULL)
    RETURNS @extschema@.rollups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_ timestamptz := date_bin(mk.bucket, since, '2001-01-01 00:00+00');
    lo timestamptz;
    hi timestamptz := date_bin(mk.bucket, until, '2001-01-01 00:00+00');
    rows_ text := @extschema@._source_from('rollups', m, at);
    full_ text;
    edges text;
    -- rows of retrain.predictions that arrived after the last fold (the
    -- cycle's fold has just run: seldom), asked of the indexes alone:
    -- predictions_model_time for those predicted since ten minutes before
    -- the fold, predictions_logged_late for the rest (see _fold_new_rows)
    late_rows boolean := m.source IS NULL
                         AND (EXISTS (SELECT 1 FROM @extschema@.predictions p
                                       WHERE p.model = m.name
                                         AND p.predicted_at >= mk.computed_until - interval '10 minutes'
                                         AND p.logged_at > mk.computed_until)
                              OR EXISTS (SELECT 1 FROM @extschema@.predictions p
                                          WHERE p.model = m.name
                                            AND timezone(interval '0', p.logged_at) > timezone(interval '0', p.predicted_at) + interval '10 minutes'
                                            AND p.logged_at > mk.computed_until));
    -- retrain.predictions with numeric features only, and no such rows:
    -- the edges are read with a plan kept for the session, the times as
    -- $1.  (A generic plan cannot know that few rows arrived after the
    -- fold, and would read the window's index range for them.)
    planned boolean := m.source IS NULL AND NOT late_rows
                       AND NOT EXISTS (SELECT 1 FROM @extschema@.baselines b
                                        WHERE b.model = m.name AND b.version = _rollup_sum.version
                                          AND b.kind <> 'numeric');
    times timestamptz[];
    late @extschema@.rollups[] := '{}';
    result @extschema@.rollups;
    -- the states asked for (NULL: all): merging a state the caller does
    -- not read costs, the ranking state most (every labelled score)
    want text[] := coalesce(parts, ARRAY['confidence', 'rank_state', 'confusion', 'brier', 'log_loss', 'mae', 'rmse',
                                         'latency', 'features']);
    -- the whole buckets' feature counts from the running sums of their
    -- first and last rows, when both have one
    first_before jsonb;
    last_before jsonb;
    last_features jsonb;
    whole_features jsonb;
BEGIN
    full_ := CASE WHEN planned THEN @extschema@._planned_state_list(m.task, false, want)
                  ELSE @extschema@._state_list(m, version, mk.threshold, false, want) END;
    -- [lo, hi): the buckets of the range the rollups answer for: from the
    -- first that starts in it, to the one it ends in, unless that one
    -- holds predictions made after until (a range ending in the past, a
    -- clock ahead); a source's only as far as they are folded
    lo := CASE WHEN first_ < since THEN first_ + mk.bucket ELSE first_ END;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.rollups r
                    WHERE r.model = m.name AND r.version = _rollup_sum.version AND r.bucket_start = hi
                      AND r.last_predicted_at > until) THEN
        hi := hi + mk.bucket;
    END IF;
    IF m.source IS NOT NULL THEN
        hi := least(hi, mk.computed_until);
    END IF;
    IF lo >= hi THEN
        lo := since;
        hi := since;
    END IF;
    -- the buckets from the rollups; then, read from the rows in one query
    -- (each branch served by an index): the partial buckets at the edges,
    -- and in the buckets between, predictions that arrived after the last
    -- fold
    times := ARRAY[since, lo, hi, until, mk.computed_until, at];
    edges := '(p.predicted_at >= %1$s AND p.predicted_at < %2$s) OR (p.predicted_at >= %3$s AND p.predicted_at <= %4$s)';
    IF lo < hi AND late_rows THEN
        -- (in two parts, each served by one index, as late_rows is)
        edges := edges || ' OR (p.predicted_at >= %2$s AND p.predicted_at < %3$s AND p.predicted_at <= %4$s '
                          'AND p.predicted_at >= %5$s::timestamptz - interval ''10 minutes'' AND p.logged_at > %5$s)'
                          ' OR (timezone(interval ''0'', p.logged_at) > timezone(interval ''0'', p.predicted_at) + interval ''10 minutes'' AND p.predicted_at >= %2$s '
                          'AND p.predicted_at < %3$s AND p.predicted_at <= %4$s AND p.logged_at > %5$s)';
    END IF;
    IF planned THEN
        edges := format(edges, '$1[1]', '$1[2]', '$1[3]', '$1[4]', '$1[5]');
        rows_ := @extschema@._logged_from('$1[6]');
    ELSE
        edges := format(edges, quote_literal(since), quote_literal(lo), quote_literal(hi), quote_literal(until),
                        quote_literal(mk.computed_until));
        times := NULL;
    END IF;
    IF lo < hi AND m.source IS NULL AND @extschema@._outcomes_arrived(m.name, mk.computed_until, 'infinity', at) THEN
        -- outcomes that arrived after the last fold for predictions folded
        -- before
        late := ARRAY(
            SELECT s FROM @extschema@._states(m, version, @extschema@._state_list(m, version, mk.threshold, true, want),
                                              @extschema@._late_outcomes_from(),
                                              format('p.model = o.model AND p.predicted_at >= %L AND p.predicted_at < %L '
                                                     'AND p.predicted_at <= %L AND ((%s))',
                                                     lo, hi, until,
                                                     array_to_string(@extschema@._arrived_outcomes(m.name, mk.computed_until,
                                                                                                   'infinity', at),
                                                                     ') OR (')), NULL) s);
    ELSIF lo < hi AND m.source IS NOT NULL AND at > mk.outcomes_until THEN
        -- a source: outcomes observed after the last fold
        late := ARRAY(
            SELECT s FROM @extschema@._states(m, version, @extschema@._state_list(m, version, mk.threshold, true, want), rows_,
                                              format('p.predicted_at >= %L AND p.predicted_at < %L AND p.predicted_at <= %L '
                                                     'AND o.observed_at > %L', lo, hi, until, mk.outcomes_until), NULL) s);
    END IF;
    IF lo < hi AND 'features' = ANY (want) THEN
        SELECT r.features_before INTO first_before FROM @extschema@.rollups r
         WHERE r.model = m.name AND r.version = _rollup_sum.version AND r.bucket_start >= lo AND r.bucket_start < hi
         ORDER BY r.bucket_start LIMIT 1;
        SELECT r.features_before, r.features INTO last_before, last_features FROM @extschema@.rollups r
         WHERE r.model = m.name AND r.version = _rollup_sum.version AND r.bucket_start >= lo AND r.bucket_start < hi
         ORDER BY r.bucket_start DESC LIMIT 1;
        IF first_before IS NOT NULL AND last_before IS NOT NULL THEN
            whole_features := @extschema@._features_diff(@extschema@._sum_features(ARRAY[last_before, last_features]),
                                                         first_before);
        END IF;
    END IF;
    SELECT m.name, _rollup_sum.version, since, coalesce(sum(p.predictions), 0), coalesce(sum(p.invalid), 0),
           coalesce(sum(p.labelled), 0),
           @extschema@._loss_union(p.confidence) FILTER (WHERE 'confidence' = ANY (want)),
           @extschema@._rank_union(p.rank_state) FILTER (WHERE 'rank_state' = ANY (want)),
           @extschema@._confusion_sum(p.confusion) FILTER (WHERE 'confusion' = ANY (want)),
           @extschema@._loss_union(p.brier) FILTER (WHERE 'brier' = ANY (want)),
           @extschema@._loss_union(p.log_loss) FILTER (WHERE 'log_loss' = ANY (want)),
           @extschema@._loss_union(p.mae) FILTER (WHERE 'mae' = ANY (want)),
           @extschema@._loss_union(p.rmse) FILTER (WHERE 'rmse' = ANY (want)),
           @extschema@._latency_union(p.latency) FILTER (WHERE 'latency' = ANY (want)),
           coalesce(sum(p.errors), 0), coalesce(sum(p.error_known), 0), coalesce(sum(p.bad_scores), 0),
           -- (no test of each bucket's counts for '{}': that would
           -- decompress them once more)
           nullif(@extschema@._sum_features(ARRAY[whole_features, @extschema@._features_union(p.features)
                      FILTER (WHERE 'features' = ANY (want) AND NOT (p.whole AND whole_features IS NOT NULL))]), '{}'),
           NULL::jsonb
      INTO result
      FROM (SELECT *, true AS whole FROM @extschema@.rollups r
             WHERE r.model = m.name AND r.version = _rollup_sum.version AND r.bucket_start >= lo AND r.bucket_start < hi
            UNION ALL
            SELECT *, false FROM @extschema@._states(m, version, full_, rows_, edges, NULL, times, mk.threshold)
            UNION ALL
            SELECT *, false FROM unnest(late)) p;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@._rollup_sum(@extschema@.models, text, timestamptz, timestamptz, timestamptz, @extschema@.rollup_marks, text[]) IS
    'A version''s states (those named, or all) over [since, until] with the outcomes known at at: whole buckets from the rollups, the edges and what arrived since the last fold from the rows (internal)';

-- The rollup column a metric is merged from.
CREATE OR REPLACE FUNCTION @extschema@._metric_state(metric text)
    RETURNS text
    -- plpgsql: planned once a session (a SQL function with SET is planned
    -- at every call)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE WHEN metric = 'auc' THEN 'rank_state'
                WHEN metric IN ('f1', 'precision', 'recall', 'accuracy') THEN 'confusion'
                ELSE metric END;
END
$$;
COMMENT ON FUNCTION @extschema@._metric_state(text) IS 'The rollup column a metric is merged from (internal)';

-- A metric of the rows whose states s holds (a sum of rollups), as the
-- aggregate over the rows gives it: NULL for a metric the rollups do not
-- keep.
CREATE OR REPLACE FUNCTION @extschema@._merged_metric(metric text, s @extschema@.rollups)
    RETURNS jsonb
    -- plpgsql: planned once a session (see _training_failures)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE metric
        WHEN 'auc' THEN (SELECT to_jsonb(@extschema@._auc_merged(x)) FROM (VALUES (s.rank_state)) v(x))
        WHEN 'f1' THEN to_jsonb(@extschema@.f1(s.confusion))
        WHEN 'precision' THEN to_jsonb(@extschema@.precision(s.confusion))
        WHEN 'recall' THEN to_jsonb(@extschema@.recall(s.confusion))
        WHEN 'accuracy' THEN to_jsonb(@extschema@.accuracy(s.confusion))
        WHEN 'brier' THEN (SELECT to_jsonb(@extschema@._mean_loss_merged(x)) FROM (VALUES (s.brier)) v(x))
        WHEN 'log_loss' THEN (SELECT to_jsonb(@extschema@._mean_loss_merged(x)) FROM (VALUES (s.log_loss)) v(x))
        WHEN 'mae' THEN (SELECT to_jsonb(@extschema@._mean_loss_merged(x)) FROM (VALUES (s.mae)) v(x))
        WHEN 'rmse' THEN (SELECT to_jsonb(@extschema@._rmse_merged(x)) FROM (VALUES (s.rmse)) v(x)) END;
END
$$;
COMMENT ON FUNCTION @extschema@._merged_metric(text, @extschema@.rollups) IS
    'A metric merged from a sum of rollup states, as the aggregate over the rows gives it (internal)';

-- What _window() computes, from the rollups: the same jsonb, or NULL when
-- they cannot answer (no rollups yet, or switched off; a question about a
-- time before their last fold; a window reaching before them; another
-- threshold).
CREATE OR REPLACE FUNCTION @extschema@._rollup_window(m @extschema@.models, trg jsonb, version text, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mk @extschema@.rollup_marks;
    widest interval;
    s @extschema@.rollups;
    r jsonb;
    metric text := trg->'performance'->>'metric';
BEGIN
    IF version IS NULL OR NOT trg ?| ARRAY['drift', 'performance', 'confidence'] THEN
        RETURN '{}';
    END IF;
    -- The marks say which rows the rollups hold; the rows after them are
    -- read directly.  A fold committing between reading the one and the
    -- other would count its rows twice, so none may commit meanwhile: a
    -- fold takes this lock exclusively (and skips a model whose rollups
    -- are being read).  While another transaction folds the model, the
    -- rows answer: waiting could deadlock with a run_checks() that holds
    -- retrain's write lock across models.  A fold of this transaction
    -- holds the lock already.
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('retrain rollups'), hashtext(m.name)) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO mk FROM @extschema@.rollup_marks rm WHERE rm.model = m.name;
    widest := (SELECT max((t.value->>'window')::interval) FROM jsonb_each(trg) t
                WHERE t.key IN ('drift', 'performance', 'confidence'));
    IF mk.model IS NULL OR NOT (@extschema@.effective_policy(m.name)->'rollups'->>'enabled')::boolean
       OR at < mk.outcomes_until OR at < mk.computed_until OR at - widest < mk.computed_from
       OR mk.made_with->>'source' IS DISTINCT FROM m.source
       OR (trg ? 'performance' AND mk.threshold <> (trg->'performance'->>'threshold')::float8) THEN
        RETURN NULL;
    END IF;
    s := @extschema@._rollup_sum(m, version, at - widest, at, at, mk,
        CASE WHEN trg ? 'confidence' THEN ARRAY['confidence'] ELSE '{}' END
        || CASE WHEN trg ? 'performance' THEN ARRAY[@extschema@._metric_state(metric)] ELSE '{}' END
        || CASE WHEN trg ? 'drift' THEN ARRAY['features'] ELSE '{}' END);
    r := jsonb_build_object('predictions', s.predictions);
    IF trg ? 'confidence' THEN
        IF (trg->'confidence'->>'window')::interval <> widest THEN
            s := @extschema@._rollup_sum(m, version, at - (trg->'confidence'->>'window')::interval, at, at, mk,
                                         ARRAY['confidence']);
        END IF;
        r := r || jsonb_build_object('confidence', (SELECT @extschema@._mean_loss_merged(x) FROM (VALUES (s.confidence)) v(x)),
                                     'confidence_invalid', s.invalid);
    END IF;
    IF trg ? 'performance' THEN
        IF (trg->'performance'->>'window')::interval <> widest THEN
            s := @extschema@._rollup_sum(m, version, at - (trg->'performance'->>'window')::interval, at, at, mk,
                                         ARRAY[@extschema@._metric_state(metric)]);
        END IF;
        r := r || jsonb_build_object('labelled', s.labelled, 'performance_invalid', s.invalid,
                                     'metric', @extschema@._merged_metric(metric, s));
    END IF;
    IF trg ? 'drift' THEN
        IF (trg->'drift'->>'window')::interval <> widest THEN
            s := @extschema@._rollup_sum(m, version, at - (trg->'drift'->>'window')::interval, at, at, mk,
                                         ARRAY['features']);
        END IF;
        r := r || jsonb_build_object('drift', coalesce(
            (SELECT jsonb_agg(jsonb_build_object('feature', b.feature, 'kind', b.kind, 'expected', b.expected,
                                                 'categories', b.categories, 'counts', s.features->b.feature)
                              ORDER BY b.feature)
               FROM @extschema@.baselines b WHERE b.model = m.name AND b.version = _rollup_window.version), '[]'));
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION @extschema@._rollup_window(@extschema@.models, jsonb, text, timestamptz) IS
    'The window figures check() judges, merged from the rollups, or NULL when they cannot answer (internal)';

-- What _guard_figures() reads from the rows, from the rollups: the count,
-- invalid scores, error rate, labelled count and metric the same as over
-- the rows; the latency percentile from the buckets' latency
-- distributions, within 1/101 of percentile_cont's relatively, marked
-- latency_approx (the guard reads it from the rows when it is near its
-- limit).  NULL when they cannot answer: no rollups (or switched off), a
-- question about a time before their last fold, a range reaching before
-- them, another threshold or source.
CREATE OR REPLACE FUNCTION @extschema@._guard_rolled_figures(m @extschema@.models, version text, pol jsonb,
                                                             since timestamptz, until timestamptz, at timestamptz)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gm record := @extschema@._guard_metric(m.task, pol);
    mk @extschema@.rollup_marks;
    s @extschema@.rollups;
BEGIN
    -- as _rollup_window(): no fold may commit between reading the marks
    -- and the rows after them
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('retrain rollups'), hashtext(m.name)) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO mk FROM @extschema@.rollup_marks rm WHERE rm.model = m.name;
    IF mk.model IS NULL OR NOT (pol->'rollups'->>'enabled')::boolean
       OR NOT coalesce(since >= mk.computed_from AND since <= until AND until <= at
                       AND at >= mk.computed_until AND at >= mk.outcomes_until, false)
       OR mk.made_with->>'source' IS DISTINCT FROM m.source OR mk.threshold <> gm.threshold THEN
        RETURN NULL;
    END IF;
    BEGIN
        s := @extschema@._rollup_sum(m, version, since, until, at, mk,
                                     ARRAY['latency', @extschema@._metric_state(gm.metric)]);
    EXCEPTION
        WHEN invalid_binary_representation OR data_corrupted THEN
            -- damaged states: the guard must still decide, from the rows;
            -- the server log says why
            RAISE WARNING 'retrain.guard_rollouts: the rollups of model "%" are damaged, the rows are read instead: %',
                          m.name, SQLERRM
                USING HINT = 'Rebuild them with retrain.rebuild_rollups().';
            RETURN NULL;
        WHEN OTHERS THEN
            -- the rows then answer, figure by figure, and say what failed
            -- (a source that cannot be read, say)
            RETURN NULL;
    END;
    RETURN jsonb_build_object(
        'n', s.predictions, 'invalid', s.bad_scores,
        -- as avg(error::integer)::float8 computes it
        'error_rate', CASE WHEN s.error_known > 0 THEN (s.errors::numeric / s.error_known)::pg_catalog.float8 END,
        'latency', @extschema@._latency_percentile(s.latency,
                                                   ((pol->'rollback'->>'latency_percentile')::numeric / 100)::pg_catalog.float8),
        'latency_approx', true,
        'metric', @extschema@._merged_metric(gm.metric, s), 'labelled', s.labelled, 'metric_name', gm.metric);
END
$$;
COMMENT ON FUNCTION @extschema@._guard_rolled_figures(@extschema@.models, text, jsonb, timestamptz, timestamptz, timestamptz) IS
    'The rollout guard''s figures of a version over a time range from the rollups (latency within 1/101), or NULL when they cannot answer (internal)';

-- After a backfill into a source, a deleted partition or rows corrected by
-- hand: the buckets of [from, to) (by default all) computed again from the
-- rows, with the rows and outcomes the last fold had taken in.  Logged.
CREATE OR REPLACE FUNCTION @extschema@.rebuild_rollups(model text, "from" timestamptz DEFAULT NULL,
                                                       "to" timestamptz DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    mk @extschema@.rollup_marks;
    lo timestamptz;
    hi timestamptz;
    v text;
    n integer := 0;
BEGIN
    m := @extschema@._model_to_read('rebuild_rollups', model);
    IF $2 >= $3 THEN
        RAISE EXCEPTION 'retrain.rebuild_rollups: from (%) must come before to (%)', $2, $3
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- not while the cycle folds the model
    PERFORM pg_advisory_xact_lock(hashtext('retrain rollups'), hashtext(m.name));
    SELECT * INTO mk FROM @extschema@.rollup_marks r WHERE r.model = m.name;
    IF FOUND THEN
        -- whole buckets: every bucket [from, to) touches
        lo := greatest(mk.computed_from, date_bin(mk.bucket, coalesce($2, '-infinity'), '2001-01-01 00:00+00'));
        hi := coalesce(date_bin(mk.bucket, $3 - interval '1 microsecond', '2001-01-01 00:00+00') + mk.bucket, 'infinity');
        IF m.source IS NOT NULL THEN
            hi := least(hi, mk.computed_until);
        END IF;
        IF lo < hi THEN
            DELETE FROM @extschema@.rollups r
             WHERE r.model = m.name AND r.bucket_start >= lo AND r.bucket_start < hi;
            -- the running sums of the buckets after are made again below
            UPDATE @extschema@.rollups r SET features_before = NULL
             WHERE r.model = m.name AND r.bucket_start >= hi AND r.features_before IS NOT NULL;
            FOR v IN SELECT mv.version FROM @extschema@.model_versions mv WHERE mv.model = m.name LOOP
                n := n + @extschema@._add_rollups(ARRAY(SELECT s FROM @extschema@._states(m, v,
                    @extschema@._state_list(m, v, mk.threshold, false),
                    CASE WHEN m.source IS NULL THEN @extschema@._arrival_from(mk.outcomes_until, mk.computed_until)
                         ELSE @extschema@._source_from('rebuild_rollups', m, mk.outcomes_until) END,
                    format('p.predicted_at >= %L AND p.predicted_at < %L', lo, hi)
                    || CASE WHEN m.source IS NULL
                            THEN format(' AND coalesce(p.logged_at, ''-infinity'') <= %L', mk.computed_until) ELSE '' END,
                    mk.bucket) s));
            END LOOP;
            PERFORM @extschema@._prefix_features(array_agg(m.name), array_agg(mv.version), array_agg(NULL::timestamptz))
               FROM @extschema@.model_versions mv WHERE mv.model = m.name;
        END IF;
    END IF;
    PERFORM @extschema@._log(m.name, NULL, 'rollups_rebuilt',
                             jsonb_build_object('from', lo, 'to', CASE WHEN hi < 'infinity' THEN hi END, 'buckets', n));
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.rebuild_rollups(text, timestamptz, timestamptz) IS
    'Compute a model''s rollup buckets in [from, to) (default: all) again from its rows, after a backfill into a source, a deleted partition or corrected rows; returns the buckets written';

-- A model's version_health rows, replaced: from the rollups alone (the
-- cycle has just folded what arrived), so a cycle pays for a few rollup
-- rows per version, never for the rows of the log.  Without rollups (off,
-- or not made yet) the model has no rows.
CREATE OR REPLACE FUNCTION @extschema@._record_health(model text, at timestamptz, pol jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- two statements a model: the cycle pays this for every model
    DELETE FROM @extschema@.version_health h WHERE h.model = _record_health.model;
    IF NOT (pol->'rollups'->>'enabled')::boolean THEN
        RETURN;
    END IF;
    INSERT INTO @extschema@.version_health (model, version, checked_at, window_start, window_end, predictions,
                                            labelled, invalid, error_rate, latency_p50_ms, latency_p95_ms,
                                            latency_p99_ms, metric, metric_value)
    SELECT mk.model, s.version, at, w.since, least(at, mk.computed_until), (s.st).predictions, (s.st).labelled,
           (s.st).bad_scores,
           CASE WHEN (s.st).error_known > 0
                THEN ((s.st).errors::numeric / (s.st).error_known)::pg_catalog.float8 END,
           @extschema@._latency_percentile((s.st).latency, 0.5), @extschema@._latency_percentile((s.st).latency, 0.95),
           @extschema@._latency_percentile((s.st).latency, 0.99), gm.metric,
           (@extschema@._merged_metric(gm.metric, s.st) #>> '{}')::pg_catalog.float8
      FROM @extschema@.rollup_marks mk
      JOIN @extschema@.models m ON m.name = mk.model
     CROSS JOIN LATERAL @extschema@._guard_metric(m.task, pol) gm
     CROSS JOIN LATERAL (SELECT date_bin(mk.bucket, at - (pol->'results'->>'health_window')::interval,
                                         '2001-01-01 00:00+00') AS since,
                                @extschema@._metric_state(gm.metric) AS state) w
     -- each version's whole buckets summed as _rollup_sum() sums them, as
     -- one rollups row (only the metric's state merged)
     CROSS JOIN LATERAL (
            SELECT r.version,
                   ROW(mk.model, r.version, w.since, sum(r.predictions)::bigint, sum(r.invalid)::bigint,
                       sum(r.labelled)::bigint, NULL::bytea,
                       @extschema@._rank_union(r.rank_state) FILTER (WHERE w.state = 'rank_state'),
                       @extschema@._confusion_sum(r.confusion) FILTER (WHERE w.state = 'confusion'),
                       @extschema@._loss_union(r.brier) FILTER (WHERE w.state = 'brier'),
                       @extschema@._loss_union(r.log_loss) FILTER (WHERE w.state = 'log_loss'),
                       @extschema@._loss_union(r.mae) FILTER (WHERE w.state = 'mae'),
                       @extschema@._loss_union(r.rmse) FILTER (WHERE w.state = 'rmse'),
                       @extschema@._latency_union(r.latency), sum(r.errors)::bigint, sum(r.error_known)::bigint,
                       sum(r.bad_scores)::bigint, '{}'::jsonb, max(r.last_predicted_at), NULL::jsonb
                   )::@extschema@.rollups AS st
              FROM @extschema@.rollups r
             WHERE r.model = mk.model AND r.bucket_start >= w.since AND r.bucket_start <= at
             GROUP BY r.version) s
     WHERE mk.model = _record_health.model;
END
$$;
COMMENT ON FUNCTION @extschema@._record_health(text, timestamptz, jsonb) IS
    'Replace a model''s version_health rows with the figures of its rollups over the policy''s results.health_window (internal)';
