-- The confusion family (src/metrics_confusion.c): confusion, precision,
-- recall, f1 and accuracy over (predicted, actual) or (score, label,
-- threshold), the same metrics over a stored retrain.confusion, and its +
-- operator.

-- @once

CREATE TYPE @extschema@.confusion AS (tp bigint, fp bigint, fn bigint, tn bigint);
COMMENT ON TYPE @extschema@.confusion IS
    'A binary confusion matrix: true positives, false positives, false negatives, true negatives';

-- @replace

-- The confusion family: one four-counter state for every aggregate, a
-- retrain.agg_state (src/agg_state.h), so Citus can push them down.

CREATE OR REPLACE FUNCTION @extschema@._confusion_accum(@extschema@.agg_state, boolean, boolean)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_accum';
CREATE OR REPLACE FUNCTION @extschema@._confusion_score_accum(@extschema@.agg_state, pg_catalog.float8, boolean, pg_catalog.float8)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_score_accum';
CREATE OR REPLACE FUNCTION @extschema@._confusion_combine(@extschema@.agg_state, @extschema@.agg_state)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_combine';
CREATE OR REPLACE FUNCTION @extschema@._confusion_final(@extschema@.agg_state)
    RETURNS @extschema@.confusion LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_final';
CREATE OR REPLACE FUNCTION @extschema@._precision_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_precision_final';
CREATE OR REPLACE FUNCTION @extschema@._recall_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_recall_final';
CREATE OR REPLACE FUNCTION @extschema@._f1_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_f1_final';
CREATE OR REPLACE FUNCTION @extschema@._accuracy_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_accuracy_final';

COMMENT ON FUNCTION @extschema@._confusion_accum(@extschema@.agg_state, boolean, boolean) IS
    'Transition function of the confusion family over (predicted, actual) (internal)';
COMMENT ON FUNCTION @extschema@._confusion_score_accum(@extschema@.agg_state, pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Transition function of the confusion family over (score, label, threshold) (internal)';
COMMENT ON FUNCTION @extschema@._confusion_combine(@extschema@.agg_state, @extschema@.agg_state) IS
    'Combine function of the confusion family (internal)';
COMMENT ON FUNCTION @extschema@._confusion_final(@extschema@.agg_state) IS
    'Final function of confusion (internal)';
COMMENT ON FUNCTION @extschema@._precision_final(@extschema@.agg_state) IS
    'Final function of precision (internal)';
COMMENT ON FUNCTION @extschema@._recall_final(@extschema@.agg_state) IS
    'Final function of recall (internal)';
COMMENT ON FUNCTION @extschema@._f1_final(@extschema@.agg_state) IS
    'Final function of f1 (internal)';
COMMENT ON FUNCTION @extschema@._accuracy_final(@extschema@.agg_state) IS
    'Final function of accuracy (internal)';

CREATE OR REPLACE AGGREGATE @extschema@.confusion(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._confusion_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.confusion(boolean, boolean) IS
    'Confusion matrix (tp, fp, fn, tn), over (predicted, actual) booleans';

CREATE OR REPLACE AGGREGATE @extschema@.confusion(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._confusion_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE,
    -- four counters: a group's hash entry, not the 8 kB the planner
    -- counts for an internal state it knows nothing of
    SSPACE = 64
);
COMMENT ON AGGREGATE @extschema@.confusion(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Confusion matrix (tp, fp, fn, tn), over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE OR REPLACE AGGREGATE @extschema@.precision(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._precision_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.precision(boolean, boolean) IS
    'Precision tp / (tp + fp); NULL when nothing is predicted positive, over (predicted, actual) booleans';

CREATE OR REPLACE AGGREGATE @extschema@.precision(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._precision_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.precision(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Precision tp / (tp + fp); NULL when nothing is predicted positive, over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE OR REPLACE AGGREGATE @extschema@.recall(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._recall_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.recall(boolean, boolean) IS
    'Recall tp / (tp + fn); NULL when nothing is actually positive, over (predicted, actual) booleans';

CREATE OR REPLACE AGGREGATE @extschema@.recall(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._recall_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.recall(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Recall tp / (tp + fn); NULL when nothing is actually positive, over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE OR REPLACE AGGREGATE @extschema@.f1(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._f1_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.f1(boolean, boolean) IS
    'F1 2tp / (2tp + fp + fn); NULL when tp + fp + fn = 0, over (predicted, actual) booleans';

CREATE OR REPLACE AGGREGATE @extschema@.f1(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._f1_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.f1(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'F1 2tp / (2tp + fp + fn); NULL when tp + fp + fn = 0, over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE OR REPLACE AGGREGATE @extschema@.accuracy(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._accuracy_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.accuracy(boolean, boolean) IS
    'Accuracy (tp + tn) / n, over (predicted, actual) booleans';

CREATE OR REPLACE AGGREGATE @extschema@.accuracy(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._accuracy_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.accuracy(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Accuracy (tp + tn) / n, over scores, labels and a threshold (score >= threshold predicts positive)';

-- The same metrics over a retrain.confusion value, e.g. one stored per day.
-- A NULL field gives NULL; a negative count is an error.

CREATE OR REPLACE FUNCTION @extschema@.precision(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_precision';
COMMENT ON FUNCTION @extschema@.precision(@extschema@.confusion) IS
    'Precision tp / (tp + fp) of a confusion matrix; NULL when tp + fp = 0';

CREATE OR REPLACE FUNCTION @extschema@.recall(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_recall';
COMMENT ON FUNCTION @extschema@.recall(@extschema@.confusion) IS
    'Recall tp / (tp + fn) of a confusion matrix; NULL when tp + fn = 0';

CREATE OR REPLACE FUNCTION @extschema@.f1(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_f1';
COMMENT ON FUNCTION @extschema@.f1(@extschema@.confusion) IS
    'F1 2tp / (2tp + fp + fn) of a confusion matrix; NULL when tp + fp + fn = 0';

CREATE OR REPLACE FUNCTION @extschema@.fbeta(c @extschema@.confusion, beta pg_catalog.float8)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_fbeta';
COMMENT ON FUNCTION @extschema@.fbeta(@extschema@.confusion, pg_catalog.float8) IS
    'F-beta (1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp) of a confusion matrix; NULL when tp + fp + fn = 0';

CREATE OR REPLACE FUNCTION @extschema@.accuracy(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_accuracy';
COMMENT ON FUNCTION @extschema@.accuracy(@extschema@.confusion) IS
    'Accuracy (tp + tn) / n of a confusion matrix; NULL when it has no rows';

-- Not an internal helper: the + operator runs it with the caller's rights.
CREATE OR REPLACE FUNCTION @extschema@.confusion_add(a @extschema@.confusion, b @extschema@.confusion)
    RETURNS @extschema@.confusion LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_add';
COMMENT ON FUNCTION @extschema@.confusion_add(@extschema@.confusion, @extschema@.confusion) IS
    'The sum of two confusion matrices, field by field (the + operator)';

-- @once

CREATE OPERATOR @extschema@.+ (
    LEFTARG = @extschema@.confusion,
    RIGHTARG = @extschema@.confusion,
    FUNCTION = @extschema@.confusion_add,
    COMMUTATOR = OPERATOR(@extschema@.+)
);
COMMENT ON OPERATOR @extschema@.+ (@extschema@.confusion, @extschema@.confusion) IS
    'The sum of two confusion matrices, field by field';
