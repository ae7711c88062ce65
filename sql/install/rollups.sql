-- Rollups: the aggregates' partial states kept per model, version and time
-- bucket (see src/rollup.c).  In progress: check() and the cycle do not use
-- them yet (see docs/monitoring.md, "Rollups"): folded by time, they would
-- miss rows logged later with earlier times, until folding goes by arrival.  This part: the aggregates that make a state
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

-- The states.
CREATE OR REPLACE AGGREGATE @extschema@._rank_state(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._rank_accum, STYPE = internal, FINALFUNC = @extschema@._rank_serial,
    COMBINEFUNC = @extschema@._rank_combine, SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._rank_state(pg_catalog.float8, boolean) IS
    'The serialized state of auc and average_precision over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._brier_state(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._brier_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._brier_state(pg_catalog.float8, boolean) IS
    'The serialized state of brier over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._log_loss_state(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._log_loss_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._log_loss_state(pg_catalog.float8, boolean) IS
    'The serialized state of log_loss over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._mae_state(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._mae_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._mae_state(pg_catalog.float8, pg_catalog.float8) IS
    'The serialized state of mae over a group, for a rollup (internal)';
CREATE OR REPLACE AGGREGATE @extschema@._rmse_state(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._rmse_accum, STYPE = internal, FINALFUNC = @extschema@._loss_serial,
    COMBINEFUNC = @extschema@._loss_combine, SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@._rmse_state(pg_catalog.float8, pg_catalog.float8) IS
    'The serialized state of rmse over a group, for a rollup (internal)';

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
    features     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (model, version, bucket_start)
);
COMMENT ON TABLE @extschema@.rollups IS
    'Per model, version and time bucket: counts and the aggregates'' serialized states of its predictions and their outcomes (internal state of the check cycle; rebuild_rollups() recomputes it)';
-- How far each model's rollups reach, and what they were made with: a
-- change of bucket width, threshold or baseline starts them again.
CREATE TABLE @extschema@.rollup_marks (
    model          text PRIMARY KEY,
    bucket         interval NOT NULL,
    threshold      pg_catalog.float8 NOT NULL,
    baselines      jsonb NOT NULL,
    computed_from  timestamptz NOT NULL,
    computed_until timestamptz NOT NULL,
    outcomes_until timestamptz NOT NULL
);
COMMENT ON TABLE @extschema@.rollup_marks IS
    'Per model: the buckets its rollups hold ([computed_from, computed_until)), the outcomes folded (observed up to outcomes_until), and the bucket width, threshold and baselines they were made with (internal)';
-- Derived from the prediction log: not for every role.  A cache, not data:
-- pg_dump leaves them out, and after a restore the next cycle folds the
-- windows again.
REVOKE ALL ON @extschema@.rollups, @extschema@.rollup_marks FROM PUBLIC;

-- @replace

-- The SELECT list of a version's states over rows p (predictions) and o
-- (outcomes), as _source_from() names them: the same figures as _window(),
-- kept as states.
CREATE OR REPLACE FUNCTION @extschema@._state_list(m @extschema@.models, version text, threshold pg_catalog.float8)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    valid text := @extschema@._valid_row(m.task);
    cls boolean := m.task = 'binary_classification';
    wide text[] := @extschema@._source_features(m);
    feats text[] := '{}';
    fexpr text;
    b @extschema@.baselines;
BEGIN
    FOR b IN SELECT * FROM @extschema@.baselines bl
              WHERE bl.model = m.name AND bl.version = _state_list.version ORDER BY bl.feature LOOP
        fexpr := @extschema@._feature_expr(wide, b.feature);
        feats := feats || format('%L, %s', b.feature,
            CASE WHEN b.kind = 'numeric'
                 THEN format('to_jsonb(@extschema@.histogram_missing(@extschema@._as_float8(%s), %L::float8[]))', fexpr, coalesce(b.edges, '{}'))
                 ELSE format('to_jsonb(@extschema@.category_counts(%s))', fexpr) END);
    END LOOP;
    RETURN format(
        'count(*) AS predictions, count(*) FILTER (WHERE NOT %1$s) AS invalid, '
        'count(o.prediction_id) FILTER (WHERE %1$s) AS labelled, %2$s AS confidence, '
        '%3$s AS rank_state, %4$s AS confusion, %5$s AS brier, %6$s AS log_loss, %7$s AS mae, %8$s AS rmse, '
        '%9$s AS features',
        valid,
        CASE WHEN cls THEN format('@extschema@._mae_state(greatest(p.score, 1 - p.score), 0) FILTER (WHERE %s)', valid)
             ELSE 'NULL::bytea' END,
        CASE WHEN cls THEN format('@extschema@._rank_state(p.score, o.label) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN cls THEN format('@extschema@.confusion(p.score, o.label, %s) FILTER (WHERE %s AND o.label IS NOT NULL)',
                                  threshold, valid)
             ELSE 'NULL::@extschema@.confusion' END,
        CASE WHEN cls THEN format('@extschema@._brier_state(p.score, o.label) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN cls THEN format('@extschema@._log_loss_state(p.score, o.label) FILTER (WHERE %s)', valid) ELSE 'NULL::bytea' END,
        CASE WHEN cls THEN 'NULL::bytea' ELSE format('@extschema@._mae_state(p.score, o.actual) FILTER (WHERE %s)', valid) END,
        CASE WHEN cls THEN 'NULL::bytea' ELSE format('@extschema@._rmse_state(p.score, o.actual) FILTER (WHERE %s)', valid) END,
        CASE WHEN cardinality(feats) = 0 THEN '''{}''::jsonb'
             ELSE format('jsonb_build_object(%s)', array_to_string(feats, ', ')) END);
END
$$;
COMMENT ON FUNCTION @extschema@._state_list(@extschema@.models, text, pg_catalog.float8) IS
    'The SELECT list of a version''s rollup states over p and o (internal)';

-- A version's states over its predictions made in [lo, hi), with the
-- outcomes observed in (after, upto], grouped by bucket (bucket NULL: one
-- group).  Read with the rights the model's source calls for (_read).
CREATE OR REPLACE FUNCTION @extschema@._states(m @extschema@.models, version text, lo timestamptz, hi timestamptz,
                                               after timestamptz, upto timestamptz, threshold pg_catalog.float8,
                                               bucket interval)
    RETURNS SETOF @extschema@.rollups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lo >= hi THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT m.name, version, r.bucket_start, r.predictions, r.invalid, r.labelled,
           decode(substr(r.confidence, 3), 'hex'), decode(substr(r.rank_state, 3), 'hex'), r.confusion,
           decode(substr(r.brier, 3), 'hex'), decode(substr(r.log_loss, 3), 'hex'), decode(substr(r.mae, 3), 'hex'),
           decode(substr(r.rmse, 3), 'hex'), r.features
      FROM jsonb_to_recordset(@extschema@._read(m, format(
               'SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM ('
               'SELECT %s AS bucket_start, %s FROM %s '
               'WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at < %L%s GROUP BY 1) s',
               CASE WHEN bucket IS NULL THEN '''-infinity''::timestamptz'
                    ELSE format('date_bin(%L::interval, p.predicted_at, ''2001-01-01 00:00+00'')', bucket) END,
               @extschema@._state_list(m, version, threshold), @extschema@._source_from('rollups', m, upto),
               m.name, version, lo, hi,
               -- only the outcomes observed since: a late-outcome delta
               CASE WHEN after IS NULL THEN '' ELSE format(' AND o.observed_at > %L', after) END)))
           AS r(bucket_start timestamptz, predictions bigint, invalid bigint, labelled bigint, confidence text,
                rank_state text, confusion @extschema@.confusion, brier text, log_loss text, mae text, rmse text,
                features jsonb);
END
$$;
COMMENT ON FUNCTION @extschema@._states(@extschema@.models, text, timestamptz, timestamptz, timestamptz, timestamptz, pg_catalog.float8, interval) IS
    'A version''s rollup states over predictions made in [lo, hi) and outcomes observed in (after, upto], by bucket (internal)';

-- Two rows of states as one: counts added, states merged, feature counts
-- added key by key (a histogram's array element by element).
CREATE OR REPLACE FUNCTION @extschema@._add_features(a jsonb, b jsonb)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT coalesce(jsonb_object_agg(k, CASE
               WHEN a->k IS NULL OR jsonb_typeof(a->k) = 'null' THEN b->k
               WHEN b->k IS NULL OR jsonb_typeof(b->k) = 'null' THEN a->k
               WHEN jsonb_typeof(a->k) = 'array'
                   THEN (SELECT jsonb_agg((x.v)::numeric + (y.v)::numeric ORDER BY x.o)
                           FROM jsonb_array_elements_text(a->k) WITH ORDINALITY x(v, o)
                           JOIN jsonb_array_elements_text(b->k) WITH ORDINALITY y(v, o) ON x.o = y.o)
               ELSE (SELECT jsonb_object_agg(c, coalesce((a->k->>c)::numeric, 0) + coalesce((b->k->>c)::numeric, 0))
                       FROM (SELECT jsonb_object_keys(a->k) UNION SELECT jsonb_object_keys(b->k)) kk(c)) END), '{}')
              FROM (SELECT jsonb_object_keys(a) UNION SELECT jsonb_object_keys(b)) keys(k));
COMMENT ON FUNCTION @extschema@._add_features(jsonb, jsonb) IS
    'Feature counts of two rollup rows added, feature by feature (internal)';

-- Fold what has not been folded yet: the buckets closed since
-- the last fold (a bucket is closed once its end is rollups.settle in the
-- past), and the outcomes observed since, into the buckets of their
-- predictions.  A change of bucket width, threshold or the versions'
-- baselines starts the model's rollups again.  Returns the buckets written.
CREATE OR REPLACE FUNCTION @extschema@._fold_rollups(model text, at timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    pol jsonb := @extschema@.effective_policy(model);
    width interval := (pol->'rollups'->>'bucket')::interval;
    threshold_ pg_catalog.float8 := coalesce((pol->'triggers'->'performance'->>'threshold')::float8, 0.5);
    span interval := greatest(interval '1 day', coalesce((SELECT max((t.value->>'window')::interval)
                                                           FROM jsonb_each(pol->'triggers') t
                                                          WHERE jsonb_typeof(t.value) = 'object'
                                                            AND t.value ? 'window'), interval '0'));
    sig jsonb;
    mk @extschema@.rollup_marks;
    closed timestamptz;
    upto timestamptz := at - (pol->'rollups'->>'settle')::interval;
    v text;
    n integer := 0;
    k integer;
BEGIN
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = _fold_rollups.model;
    closed := date_bin(width, upto, '2001-01-01 00:00+00');
    SELECT coalesce(jsonb_object_agg(bl.version, bl.captured_at), '{}') INTO sig
      FROM (SELECT b.version, max(b.captured_at) AS captured_at FROM @extschema@.baselines b
             WHERE b.model = _fold_rollups.model GROUP BY b.version) bl;
    -- One fold of a model at a time (the worker, pg_cron, a person), and
    -- none waits: a cycle that holds retrain's write lock across models
    -- (run_checks() in one transaction) would otherwise deadlock with one
    -- that folds first and changes state after.  A cycle that finds the
    -- model being folded reads its rollups as they were committed, and the
    -- rows for the rest.
    IF NOT pg_try_advisory_xact_lock(hashtext('retrain rollups'), hashtext(model)) THEN
        RETURN 0;
    END IF;
    INSERT INTO @extschema@.rollup_marks
    VALUES (model, width, threshold_, sig, date_bin(width, closed - span, '2001-01-01 00:00+00'),
            date_bin(width, closed - span, '2001-01-01 00:00+00'), upto)
    ON CONFLICT ON CONSTRAINT rollup_marks_pkey DO NOTHING;
    SELECT * INTO mk FROM @extschema@.rollup_marks r WHERE r.model = _fold_rollups.model;
    IF mk.computed_until > closed OR mk.outcomes_until > upto THEN
        -- asked about a time before the last fold (run_checks(at)): the
        -- rows answer that, the rollups stay as they are
        RETURN 0;
    END IF;
    IF mk.bucket <> width OR mk.threshold <> threshold_ OR mk.baselines <> sig OR mk.computed_until < closed - span THEN
        -- made otherwise, or too far behind to catch up by increments: again
        DELETE FROM @extschema@.rollups r WHERE r.model = _fold_rollups.model;
        mk := ROW(model, width, threshold_, sig, date_bin(width, closed - span, '2001-01-01 00:00+00'),
                  date_bin(width, closed - span, '2001-01-01 00:00+00'), upto);
        UPDATE @extschema@.rollup_marks r SET bucket = mk.bucket, threshold = mk.threshold, baselines = mk.baselines,
                                               computed_from = mk.computed_from, computed_until = mk.computed_until,
                                               outcomes_until = mk.outcomes_until
         WHERE r.model = _fold_rollups.model;
    END IF;
    FOR v IN SELECT DISTINCT mv.version FROM @extschema@.model_versions mv WHERE mv.model = _fold_rollups.model LOOP
        -- the buckets closed since: their predictions, with every outcome known
        INSERT INTO @extschema@.rollups
        SELECT * FROM @extschema@._states(m, v, mk.computed_until, closed, NULL, upto, threshold_, width);
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
        -- outcomes observed since the last fold, of predictions in buckets folded before
        UPDATE @extschema@.rollups r
           SET labelled = r.labelled + d.labelled,
               rank_state = (SELECT @extschema@._rank_union(x) FROM (VALUES (r.rank_state), (d.rank_state)) s(x)),
               confusion = (SELECT @extschema@._confusion_sum(x) FROM (VALUES (r.confusion), (d.confusion)) s(x)),
               brier = (SELECT @extschema@._loss_union(x) FROM (VALUES (r.brier), (d.brier)) s(x)),
               log_loss = (SELECT @extschema@._loss_union(x) FROM (VALUES (r.log_loss), (d.log_loss)) s(x)),
               mae = (SELECT @extschema@._loss_union(x) FROM (VALUES (r.mae), (d.mae)) s(x)),
               rmse = (SELECT @extschema@._loss_union(x) FROM (VALUES (r.rmse), (d.rmse)) s(x))
          FROM @extschema@._states(m, v, mk.computed_from, mk.computed_until, mk.outcomes_until, upto,
                                   threshold_, width) d
         WHERE r.model = _fold_rollups.model AND r.version = v AND r.bucket_start = d.bucket_start
           AND d.labelled > 0;
    END LOOP;
    -- buckets older than every window are no longer read
    DELETE FROM @extschema@.rollups r
     WHERE r.model = _fold_rollups.model AND r.bucket_start < date_bin(width, closed - span, '2001-01-01 00:00+00');
    UPDATE @extschema@.rollup_marks r
       SET computed_from = greatest(r.computed_from, date_bin(width, closed - span, '2001-01-01 00:00+00')),
           computed_until = greatest(r.computed_until, closed), outcomes_until = greatest(r.outcomes_until, upto)
     WHERE r.model = _fold_rollups.model;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@._fold_rollups(text, timestamptz) IS
    'Fold a model''s closed buckets and newly observed outcomes into its rollups (internal)';

-- A version's states over predictions made in [since, at], as of at, in one
-- row: the whole buckets from the rollups, the partial ones at the edges
-- read from the rows, and the outcomes observed since the last fold added
-- to the buckets' labelled states.
CREATE OR REPLACE FUNCTION @extschema@._rollup_sum(m @extschema@.models, version text, since timestamptz,
                                                   at timestamptz, mk @extschema@.rollup_marks)
    RETURNS @extschema@.rollups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_ timestamptz := date_bin(mk.bucket, since, '2001-01-01 00:00+00');
    lo timestamptz;
    hi timestamptz := mk.computed_until;
    parts @extschema@.rollups[];
    late @extschema@.rollups[];
    part @extschema@.rollups;
    result @extschema@.rollups;
BEGIN
    -- the first whole bucket at or after since, within the rollups
    lo := least(CASE WHEN first_ < since THEN first_ + mk.bucket ELSE first_ END, hi);
    SELECT array_agg(x) INTO parts FROM (
        SELECT r FROM @extschema@.rollups r
         WHERE r.model = m.name AND r.version = _rollup_sum.version AND r.bucket_start >= lo AND r.bucket_start < hi
        UNION ALL
        SELECT s FROM @extschema@._states(m, version, since, lo, NULL, at, mk.threshold, NULL) s
        UNION ALL
        SELECT s FROM @extschema@._states(m, version, hi, at + interval '1 microsecond', NULL, at, mk.threshold, NULL) s
    ) y(x);
    -- outcomes observed since the last fold: their predictions are counted
    -- in the buckets already, their labels are not
    IF at > mk.outcomes_until THEN
        SELECT array_agg(s) INTO late
          FROM @extschema@._states(m, version, lo, hi, mk.outcomes_until, at, mk.threshold, NULL) s;
    END IF;
    SELECT m.name, _rollup_sum.version, since,
           coalesce(sum(p.predictions) FILTER (WHERE NOT p.late), 0), coalesce(sum(p.invalid) FILTER (WHERE NOT p.late), 0),
           coalesce(sum(p.labelled), 0),
           @extschema@._loss_union(p.confidence) FILTER (WHERE NOT p.late), @extschema@._rank_union(p.rank_state),
           @extschema@._confusion_sum(p.confusion), @extschema@._loss_union(p.brier), @extschema@._loss_union(p.log_loss),
           @extschema@._loss_union(p.mae), @extschema@._loss_union(p.rmse), '{}'
      INTO result
      FROM (SELECT u.*, false AS late FROM unnest(parts) u
            UNION ALL SELECT u.*, true FROM unnest(late) u) p;
    FOREACH part IN ARRAY coalesce(parts, '{}') LOOP
        result.features := @extschema@._add_features(result.features, part.features);
    END LOOP;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@._rollup_sum(@extschema@.models, text, timestamptz, timestamptz, @extschema@.rollup_marks) IS
    'A version''s states over [since, at] as of at: whole buckets from the rollups, the edges and later outcomes from the rows (internal)';

-- What _window() computes, from the rollups: the same jsonb, or NULL when
-- they cannot answer (no rollups yet; a question about a time before
-- the outcomes their last fold took in; a window reaching before them;
-- another threshold).
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
    SELECT * INTO mk FROM @extschema@.rollup_marks rm WHERE rm.model = m.name;
    widest := (SELECT max((t.value->>'window')::interval) FROM jsonb_each(trg) t
                WHERE t.key IN ('drift', 'performance', 'confidence'));
    IF mk.model IS NULL OR at < mk.outcomes_until OR at - widest < mk.computed_from
       OR (trg ? 'performance' AND mk.threshold <> (trg->'performance'->>'threshold')::float8) THEN
        RETURN NULL;
    END IF;
    s := @extschema@._rollup_sum(m, version, at - widest, at, mk);
    r := jsonb_build_object('predictions', s.predictions);
    IF trg ? 'confidence' THEN
        IF (trg->'confidence'->>'window')::interval <> widest THEN
            s := @extschema@._rollup_sum(m, version, at - (trg->'confidence'->>'window')::interval, at, mk);
        END IF;
        r := r || jsonb_build_object('confidence', (SELECT @extschema@._mean_loss_merged(x) FROM (VALUES (s.confidence)) v(x)),
                                     'confidence_invalid', s.invalid);
    END IF;
    IF trg ? 'performance' THEN
        IF (trg->'performance'->>'window')::interval <> widest THEN
            s := @extschema@._rollup_sum(m, version, at - (trg->'performance'->>'window')::interval, at, mk);
        END IF;
        r := r || jsonb_build_object('labelled', s.labelled, 'performance_invalid', s.invalid, 'metric', CASE metric
            WHEN 'auc' THEN (SELECT to_jsonb(@extschema@._auc_merged(x)) FROM (VALUES (s.rank_state)) v(x))
            WHEN 'f1' THEN to_jsonb(@extschema@.f1(s.confusion))
            WHEN 'precision' THEN to_jsonb(@extschema@.precision(s.confusion))
            WHEN 'recall' THEN to_jsonb(@extschema@.recall(s.confusion))
            WHEN 'accuracy' THEN to_jsonb(@extschema@.accuracy(s.confusion))
            WHEN 'brier' THEN (SELECT to_jsonb(@extschema@._mean_loss_merged(x)) FROM (VALUES (s.brier)) v(x))
            WHEN 'log_loss' THEN (SELECT to_jsonb(@extschema@._mean_loss_merged(x)) FROM (VALUES (s.log_loss)) v(x))
            WHEN 'mae' THEN (SELECT to_jsonb(@extschema@._mean_loss_merged(x)) FROM (VALUES (s.mae)) v(x))
            WHEN 'rmse' THEN (SELECT to_jsonb(@extschema@._rmse_merged(x)) FROM (VALUES (s.rmse)) v(x)) END);
    END IF;
    IF trg ? 'drift' THEN
        IF (trg->'drift'->>'window')::interval <> widest THEN
            s := @extschema@._rollup_sum(m, version, at - (trg->'drift'->>'window')::interval, at, mk);
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

-- After a backfill, a deleted partition or rows corrected by hand: the
-- buckets of [from, to) (by default all) computed again from the rows, with
-- the outcomes the rollups had taken in.  Logged.
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
    k integer;
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
        hi := least(mk.computed_until, coalesce(date_bin(mk.bucket, $3 - interval '1 microsecond', '2001-01-01 00:00+00')
                                                + mk.bucket, 'infinity'));
        IF $2 IS NULL THEN
            lo := mk.computed_from;
        END IF;
        IF lo < hi THEN
            DELETE FROM @extschema@.rollups r
             WHERE r.model = m.name AND r.bucket_start >= lo AND r.bucket_start < hi;
            FOR v IN SELECT mv.version FROM @extschema@.model_versions mv WHERE mv.model = m.name LOOP
                INSERT INTO @extschema@.rollups
                SELECT * FROM @extschema@._states(m, v, lo, hi, NULL, mk.outcomes_until, mk.threshold, mk.bucket);
                GET DIAGNOSTICS k = ROW_COUNT;
                n := n + k;
            END LOOP;
        END IF;
    END IF;
    PERFORM @extschema@._log(m.name, NULL, 'rollups_rebuilt',
                             jsonb_build_object('from', lo, 'to', hi, 'buckets', n));
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.rebuild_rollups(text, timestamptz, timestamptz) IS
    'Compute a model''s rollup buckets in [from, to) (default: all) again from its rows, after a backfill, a deleted partition or corrected rows; returns the buckets written';
