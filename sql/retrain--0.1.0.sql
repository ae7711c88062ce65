-- retrain 0.1.0: install script.  Loaded by CREATE EXTENSION retrain, which
-- creates the schema named in retrain.control; every name below is qualified.
\echo Use "CREATE EXTENSION retrain" to load this file. \quit

COMMENT ON SCHEMA @extschema@ IS
    'retrain: model quality and drift aggregates, model registry, gated rollouts and retraining triggers';

-- Readers (applications, analysts) need to look up objects in the schema;
-- what they may do with each object is granted object by object.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

CREATE FUNCTION @extschema@.version()
    RETURNS pg_catalog.text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_version';

COMMENT ON FUNCTION @extschema@.version() IS
    'The retrain library''s version and the PostgreSQL version it was built against';

--------------------------------------------------------------------------
-- Model-quality metrics (src/metrics_*.c)
--
-- Aggregates skip rows with a NULL argument and return NULL for a group
-- without rows or where the metric is undefined.  Their support functions
-- (names starting with "_") take or return internal and are not for direct
-- use; aggregates run them with their owner's rights, so PUBLIC needs no
-- EXECUTE on them.
--------------------------------------------------------------------------

CREATE TYPE @extschema@.confusion AS (tp bigint, fp bigint, fn bigint, tn bigint);
COMMENT ON TYPE @extschema@.confusion IS
    'A binary confusion matrix: true positives, false positives, false negatives, true negatives';

-- Ranking metrics: every (score, label) pair is kept until the final function.

CREATE FUNCTION @extschema@._rank_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_accum';
CREATE FUNCTION @extschema@._rank_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_combine';
CREATE FUNCTION @extschema@._rank_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_serial';
CREATE FUNCTION @extschema@._rank_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_deserial';
CREATE FUNCTION @extschema@._auc_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_auc_final';
CREATE FUNCTION @extschema@._average_precision_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_average_precision_final';

COMMENT ON FUNCTION @extschema@._rank_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of auc and average_precision (internal)';
COMMENT ON FUNCTION @extschema@._rank_combine(internal, internal) IS
    'Combine function of auc and average_precision (internal)';
COMMENT ON FUNCTION @extschema@._rank_serial(internal) IS
    'Serialization function of auc and average_precision (internal)';
COMMENT ON FUNCTION @extschema@._rank_deserial(bytea, internal) IS
    'Deserialization function of auc and average_precision (internal)';
COMMENT ON FUNCTION @extschema@._auc_final(internal) IS
    'Final function of auc (internal)';
COMMENT ON FUNCTION @extschema@._average_precision_final(internal) IS
    'Final function of average_precision (internal)';

-- The final functions sort the state in place, which keeps its multiset of
-- scores (see metrics_rank.c): READ_ONLY is true to what they leave behind.
CREATE AGGREGATE @extschema@.auc(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._rank_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._auc_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._rank_combine,
    SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.auc(pg_catalog.float8, boolean) IS
    'Exact ROC AUC of scores against boolean labels; tied scores count one half (scikit-learn roc_auc_score)';

CREATE AGGREGATE @extschema@.average_precision(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._rank_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._average_precision_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._rank_combine,
    SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.average_precision(pg_catalog.float8, boolean) IS
    'Average precision of scores against boolean labels, step-wise, tied scores one threshold (scikit-learn average_precision_score)';

-- The confusion family: one four-counter state for every aggregate.

CREATE FUNCTION @extschema@._confusion_accum(internal, boolean, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_accum';
CREATE FUNCTION @extschema@._confusion_score_accum(internal, pg_catalog.float8, boolean, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_score_accum';
CREATE FUNCTION @extschema@._confusion_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_combine';
CREATE FUNCTION @extschema@._confusion_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_serial';
CREATE FUNCTION @extschema@._confusion_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_deserial';
CREATE FUNCTION @extschema@._confusion_final(internal)
    RETURNS @extschema@.confusion LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_final';
CREATE FUNCTION @extschema@._precision_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_precision_final';
CREATE FUNCTION @extschema@._recall_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_recall_final';
CREATE FUNCTION @extschema@._f1_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_f1_final';
CREATE FUNCTION @extschema@._accuracy_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_accuracy_final';

COMMENT ON FUNCTION @extschema@._confusion_accum(internal, boolean, boolean) IS
    'Transition function of the confusion family over (predicted, actual) (internal)';
COMMENT ON FUNCTION @extschema@._confusion_score_accum(internal, pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Transition function of the confusion family over (score, label, threshold) (internal)';
COMMENT ON FUNCTION @extschema@._confusion_combine(internal, internal) IS
    'Combine function of the confusion family (internal)';
COMMENT ON FUNCTION @extschema@._confusion_serial(internal) IS
    'Serialization function of the confusion family (internal)';
COMMENT ON FUNCTION @extschema@._confusion_deserial(bytea, internal) IS
    'Deserialization function of the confusion family (internal)';
COMMENT ON FUNCTION @extschema@._confusion_final(internal) IS
    'Final function of confusion (internal)';
COMMENT ON FUNCTION @extschema@._precision_final(internal) IS
    'Final function of precision (internal)';
COMMENT ON FUNCTION @extschema@._recall_final(internal) IS
    'Final function of recall (internal)';
COMMENT ON FUNCTION @extschema@._f1_final(internal) IS
    'Final function of f1 (internal)';
COMMENT ON FUNCTION @extschema@._accuracy_final(internal) IS
    'Final function of accuracy (internal)';

CREATE AGGREGATE @extschema@.confusion(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._confusion_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.confusion(boolean, boolean) IS
    'Confusion matrix (tp, fp, fn, tn), over (predicted, actual) booleans';

CREATE AGGREGATE @extschema@.confusion(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._confusion_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.confusion(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Confusion matrix (tp, fp, fn, tn), over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE AGGREGATE @extschema@.precision(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._precision_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.precision(boolean, boolean) IS
    'Precision tp / (tp + fp); NULL when nothing is predicted positive, over (predicted, actual) booleans';

CREATE AGGREGATE @extschema@.precision(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._precision_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.precision(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Precision tp / (tp + fp); NULL when nothing is predicted positive, over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE AGGREGATE @extschema@.recall(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._recall_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.recall(boolean, boolean) IS
    'Recall tp / (tp + fn); NULL when nothing is actually positive, over (predicted, actual) booleans';

CREATE AGGREGATE @extschema@.recall(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._recall_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.recall(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Recall tp / (tp + fn); NULL when nothing is actually positive, over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE AGGREGATE @extschema@.f1(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._f1_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.f1(boolean, boolean) IS
    'F1 2tp / (2tp + fp + fn); NULL when tp + fp + fn = 0, over (predicted, actual) booleans';

CREATE AGGREGATE @extschema@.f1(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._f1_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.f1(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'F1 2tp / (2tp + fp + fn); NULL when tp + fp + fn = 0, over scores, labels and a threshold (score >= threshold predicts positive)';

CREATE AGGREGATE @extschema@.accuracy(predicted boolean, actual boolean) (
    SFUNC = @extschema@._confusion_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._accuracy_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.accuracy(boolean, boolean) IS
    'Accuracy (tp + tn) / n, over (predicted, actual) booleans';

CREATE AGGREGATE @extschema@.accuracy(score pg_catalog.float8, label boolean, threshold pg_catalog.float8) (
    SFUNC = @extschema@._confusion_score_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._accuracy_final,
    COMBINEFUNC = @extschema@._confusion_combine,
    SERIALFUNC = @extschema@._confusion_serial,
    DESERIALFUNC = @extschema@._confusion_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.accuracy(pg_catalog.float8, boolean, pg_catalog.float8) IS
    'Accuracy (tp + tn) / n, over scores, labels and a threshold (score >= threshold predicts positive)';

-- The same metrics over a retrain.confusion value, e.g. one stored per day.
-- A NULL field gives NULL; a negative count is an error.

CREATE FUNCTION @extschema@.precision(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_precision';
COMMENT ON FUNCTION @extschema@.precision(@extschema@.confusion) IS
    'Precision tp / (tp + fp) of a confusion matrix; NULL when tp + fp = 0';

CREATE FUNCTION @extschema@.recall(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_recall';
COMMENT ON FUNCTION @extschema@.recall(@extschema@.confusion) IS
    'Recall tp / (tp + fn) of a confusion matrix; NULL when tp + fn = 0';

CREATE FUNCTION @extschema@.f1(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_f1';
COMMENT ON FUNCTION @extschema@.f1(@extschema@.confusion) IS
    'F1 2tp / (2tp + fp + fn) of a confusion matrix; NULL when tp + fp + fn = 0';

CREATE FUNCTION @extschema@.fbeta(c @extschema@.confusion, beta pg_catalog.float8)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_fbeta';
COMMENT ON FUNCTION @extschema@.fbeta(@extschema@.confusion, pg_catalog.float8) IS
    'F-beta (1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp) of a confusion matrix; NULL when tp + fp + fn = 0';

CREATE FUNCTION @extschema@.accuracy(c @extschema@.confusion)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_accuracy';
COMMENT ON FUNCTION @extschema@.accuracy(@extschema@.confusion) IS
    'Accuracy (tp + tn) / n of a confusion matrix; NULL when it has no rows';

-- Not an internal helper: the + operator runs it with the caller's rights.
CREATE FUNCTION @extschema@.confusion_add(a @extschema@.confusion, b @extschema@.confusion)
    RETURNS @extschema@.confusion LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_confusion_add';
COMMENT ON FUNCTION @extschema@.confusion_add(@extschema@.confusion, @extschema@.confusion) IS
    'The sum of two confusion matrices, field by field (the + operator)';

CREATE OPERATOR @extschema@.+ (
    LEFTARG = @extschema@.confusion,
    RIGHTARG = @extschema@.confusion,
    FUNCTION = @extschema@.confusion_add,
    COMMUTATOR = OPERATOR(@extschema@.+)
);
COMMENT ON OPERATOR @extschema@.+ (@extschema@.confusion, @extschema@.confusion) IS
    'The sum of two confusion matrices, field by field';

-- Mean-loss metrics: one state (row count, compensated loss sum, and for r2
-- the variance accumulators of the actual values).

CREATE FUNCTION @extschema@._brier_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_brier_accum';
CREATE FUNCTION @extschema@._log_loss_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_log_loss_accum';
CREATE FUNCTION @extschema@._mae_accum(internal, pg_catalog.float8, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_mae_accum';
CREATE FUNCTION @extschema@._rmse_accum(internal, pg_catalog.float8, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rmse_accum';
CREATE FUNCTION @extschema@._r2_accum(internal, pg_catalog.float8, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_r2_accum';
CREATE FUNCTION @extschema@._loss_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_error_combine';
CREATE FUNCTION @extschema@._loss_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_error_serial';
CREATE FUNCTION @extschema@._loss_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_error_deserial';
CREATE FUNCTION @extschema@._mean_loss_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_mean_loss_final';
CREATE FUNCTION @extschema@._rmse_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rmse_final';
CREATE FUNCTION @extschema@._r2_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_r2_final';

COMMENT ON FUNCTION @extschema@._brier_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of brier (internal)';
COMMENT ON FUNCTION @extschema@._log_loss_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of log_loss (internal)';
COMMENT ON FUNCTION @extschema@._mae_accum(internal, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of mae (internal)';
COMMENT ON FUNCTION @extschema@._rmse_accum(internal, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of rmse (internal)';
COMMENT ON FUNCTION @extschema@._r2_accum(internal, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of r2 (internal)';
COMMENT ON FUNCTION @extschema@._loss_combine(internal, internal) IS
    'Combine function of the mean-loss metrics (internal)';
COMMENT ON FUNCTION @extschema@._loss_serial(internal) IS
    'Serialization function of the mean-loss metrics (internal)';
COMMENT ON FUNCTION @extschema@._loss_deserial(bytea, internal) IS
    'Deserialization function of the mean-loss metrics (internal)';
COMMENT ON FUNCTION @extschema@._mean_loss_final(internal) IS
    'Final function of brier, log_loss and mae (internal)';
COMMENT ON FUNCTION @extschema@._rmse_final(internal) IS
    'Final function of rmse (internal)';
COMMENT ON FUNCTION @extschema@._r2_final(internal) IS
    'Final function of r2 (internal)';

CREATE AGGREGATE @extschema@.brier(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._brier_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine,
    SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.brier(pg_catalog.float8, boolean) IS
    'Brier score: mean of (score - label)^2; scores must lie in [0, 1] (scikit-learn brier_score_loss)';

CREATE AGGREGATE @extschema@.log_loss(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._log_loss_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine,
    SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.log_loss(pg_catalog.float8, boolean) IS
    'Log loss: mean of -ln(p) for positives and -ln(1 - p) for negatives, p clipped to [1e-15, 1 - 1e-15] (scikit-learn log_loss)';

CREATE AGGREGATE @extschema@.mae(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._mae_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine,
    SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.mae(pg_catalog.float8, pg_catalog.float8) IS
    'Mean absolute error of predictions against actual values (scikit-learn mean_absolute_error)';

CREATE AGGREGATE @extschema@.rmse(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._rmse_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._rmse_final,
    COMBINEFUNC = @extschema@._loss_combine,
    SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rmse(pg_catalog.float8, pg_catalog.float8) IS
    'Root mean squared error of predictions against actual values (scikit-learn root of mean_squared_error)';

CREATE AGGREGATE @extschema@.r2(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._r2_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._r2_final,
    COMBINEFUNC = @extschema@._loss_combine,
    SERIALFUNC = @extschema@._loss_serial,
    DESERIALFUNC = @extschema@._loss_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.r2(pg_catalog.float8, pg_catalog.float8) IS
    'Coefficient of determination R^2 of predictions against actual values; NULL when the actual values are constant (scikit-learn r2_score)';

-- Internal support functions are for the aggregates only.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure
               FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                AND p.proname LIKE '\_%'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
