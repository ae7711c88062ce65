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


--------------------------------------------------------------------------
-- Drift statistics (src/drift_*.c)
--
-- The aggregates skip NULL and NaN values (drift reports count them as
-- missing); bad edges, distributions or parameters are errors (22023).
--------------------------------------------------------------------------

-- quantile_edges: every value kept until the final function.
CREATE FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8, integer)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_accum';
CREATE FUNCTION @extschema@._quantile_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_combine';
CREATE FUNCTION @extschema@._quantile_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_serial';
CREATE FUNCTION @extschema@._quantile_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_deserial';
CREATE FUNCTION @extschema@._quantile_edges_final(internal)
    RETURNS pg_catalog.float8[] LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_edges_final';
COMMENT ON FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8, integer) IS
    'Transition function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_combine(internal, internal) IS
    'Combine function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_serial(internal) IS
    'Serialization function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_deserial(bytea, internal) IS
    'Deserialization function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_edges_final(internal) IS
    'Final function of quantile_edges (internal)';

-- The final function sorts the state in place, keeping its multiset.
CREATE AGGREGATE @extschema@.quantile_edges(value pg_catalog.float8, bins integer) (
    SFUNC = @extschema@._quantile_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._quantile_edges_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._quantile_combine,
    SERIALFUNC = @extschema@._quantile_serial,
    DESERIALFUNC = @extschema@._quantile_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.quantile_edges(pg_catalog.float8, integer) IS
    'Interior bin edges at the quantiles k/bins, k = 1..bins-1, interpolated as percentile_cont does, ascending, duplicates removed';

-- An aggregate cannot have a defaulted argument: the one-argument form
-- takes deciles (the C function reads bins when it has the argument).
CREATE FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_accum';
COMMENT ON FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8) IS
    'Transition function of quantile_edges(value), bins = 10 (internal)';
CREATE AGGREGATE @extschema@.quantile_edges(value pg_catalog.float8) (
    SFUNC = @extschema@._quantile_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._quantile_edges_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._quantile_combine,
    SERIALFUNC = @extschema@._quantile_serial,
    DESERIALFUNC = @extschema@._quantile_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.quantile_edges(pg_catalog.float8) IS
    'Interior decile edges: quantile_edges(value, 10)';

-- histogram and the psi aggregate: one count per bucket.
CREATE FUNCTION @extschema@._histogram_accum(internal, pg_catalog.float8, pg_catalog.float8[])
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_accum';
CREATE FUNCTION @extschema@._psi_accum(internal, pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[])
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_accum';
CREATE FUNCTION @extschema@._hist_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_hist_combine';
CREATE FUNCTION @extschema@._hist_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_hist_serial';
CREATE FUNCTION @extschema@._hist_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_hist_deserial';
CREATE FUNCTION @extschema@._histogram_final(internal)
    RETURNS bigint[] LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_final';
CREATE FUNCTION @extschema@._psi_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_final';
COMMENT ON FUNCTION @extschema@._histogram_accum(internal, pg_catalog.float8, pg_catalog.float8[]) IS
    'Transition function of histogram (internal)';
COMMENT ON FUNCTION @extschema@._psi_accum(internal, pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[]) IS
    'Transition function of the psi aggregate (internal)';
COMMENT ON FUNCTION @extschema@._hist_combine(internal, internal) IS
    'Combine function of histogram and the psi aggregate (internal)';
COMMENT ON FUNCTION @extschema@._hist_serial(internal) IS
    'Serialization function of histogram and the psi aggregate (internal)';
COMMENT ON FUNCTION @extschema@._hist_deserial(bytea, internal) IS
    'Deserialization function of histogram and the psi aggregate (internal)';
COMMENT ON FUNCTION @extschema@._histogram_final(internal) IS
    'Final function of histogram (internal)';
COMMENT ON FUNCTION @extschema@._psi_final(internal) IS
    'Final function of the psi aggregate (internal)';

CREATE AGGREGATE @extschema@.histogram(value pg_catalog.float8, edges pg_catalog.float8[]) (
    SFUNC = @extschema@._histogram_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._histogram_final,
    COMBINEFUNC = @extschema@._hist_combine,
    SERIALFUNC = @extschema@._hist_serial,
    DESERIALFUNC = @extschema@._hist_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.histogram(pg_catalog.float8, pg_catalog.float8[]) IS
    'Counts per bucket, length(edges) + 1 of them; a value is in bucket i when exactly i edges are <= it (width_bucket)';

CREATE FUNCTION @extschema@._histogram_missing_accum(internal, pg_catalog.float8, pg_catalog.float8[])
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_missing_accum';
CREATE FUNCTION @extschema@._histogram_missing_final(internal)
    RETURNS bigint[] LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_missing_final';
COMMENT ON FUNCTION @extschema@._histogram_missing_accum(internal, pg_catalog.float8, pg_catalog.float8[]) IS
    'Transition function of histogram_missing (internal)';
COMMENT ON FUNCTION @extschema@._histogram_missing_final(internal) IS
    'Final function of histogram_missing (internal)';

-- What a drift report needs of a numeric feature in one aggregate: the
-- histogram and, after it, how many values were missing.
CREATE AGGREGATE @extschema@.histogram_missing(value pg_catalog.float8, edges pg_catalog.float8[]) (
    SFUNC = @extschema@._histogram_missing_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._histogram_missing_final,
    COMBINEFUNC = @extschema@._hist_combine,
    SERIALFUNC = @extschema@._hist_serial,
    DESERIALFUNC = @extschema@._hist_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.histogram_missing(pg_catalog.float8, pg_catalog.float8[]) IS
    'histogram(value, edges) followed by one more count: the NULL and NaN values';

CREATE AGGREGATE @extschema@.psi(value pg_catalog.float8, edges pg_catalog.float8[], expected pg_catalog.float8[]) (
    SFUNC = @extschema@._psi_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._psi_final,
    COMBINEFUNC = @extschema@._hist_combine,
    SERIALFUNC = @extschema@._hist_serial,
    DESERIALFUNC = @extschema@._hist_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.psi(pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[]) IS
    'Population stability index of the values, binned by edges, against an expected distribution (epsilon 0.0001)';

CREATE FUNCTION @extschema@.psi(expected pg_catalog.float8[], actual pg_catalog.float8[],
                                epsilon pg_catalog.float8 DEFAULT 0.0001)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_arrays';
COMMENT ON FUNCTION @extschema@.psi(pg_catalog.float8[], pg_catalog.float8[], pg_catalog.float8) IS
    'Population stability index sum((a - e) ln(a / e)) of two distributions (counts or proportions); empty buckets count epsilon';

CREATE FUNCTION @extschema@.js_distance(expected pg_catalog.float8[], actual pg_catalog.float8[],
                                        base pg_catalog.float8 DEFAULT NULL)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_js_distance';
COMMENT ON FUNCTION @extschema@.js_distance(pg_catalog.float8[], pg_catalog.float8[], pg_catalog.float8) IS
    'Jensen-Shannon distance of two distributions (scipy.spatial.distance.jensenshannon); natural logarithms unless base is given';

-- Categorical values.
CREATE FUNCTION @extschema@._category_accum(internal, pg_catalog.text)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_accum';
CREATE FUNCTION @extschema@._category_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_combine';
CREATE FUNCTION @extschema@._category_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_serial';
CREATE FUNCTION @extschema@._category_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_deserial';
CREATE FUNCTION @extschema@._category_counts_final(internal)
    RETURNS jsonb LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_counts_final';
COMMENT ON FUNCTION @extschema@._category_accum(internal, pg_catalog.text) IS
    'Transition function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_combine(internal, internal) IS
    'Combine function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_serial(internal) IS
    'Serialization function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_deserial(bytea, internal) IS
    'Deserialization function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_counts_final(internal) IS
    'Final function of category_counts (internal)';

CREATE AGGREGATE @extschema@.category_counts(value pg_catalog.text) (
    SFUNC = @extschema@._category_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._category_counts_final,
    COMBINEFUNC = @extschema@._category_combine,
    SERIALFUNC = @extschema@._category_serial,
    DESERIALFUNC = @extschema@._category_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.category_counts(pg_catalog.text) IS
    'Counts of each distinct value as a jsonb object {"category": count, ...}; NULL values are skipped';

CREATE FUNCTION @extschema@.psi(expected jsonb, actual jsonb, epsilon pg_catalog.float8 DEFAULT 0.0001)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_jsonb';
COMMENT ON FUNCTION @extschema@.psi(jsonb, jsonb, pg_catalog.float8) IS
    'Population stability index of two category distributions (jsonb objects of counts or proportions) over the union of their categories';

-- Kolmogorov-Smirnov: the ranking state of auc, reference values first.
CREATE FUNCTION @extschema@._ks_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_ks_accum';
CREATE FUNCTION @extschema@._ks_2samp_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_ks_2samp_final';
COMMENT ON FUNCTION @extschema@._ks_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of ks_2samp (internal)';
COMMENT ON FUNCTION @extschema@._ks_2samp_final(internal) IS
    'Final function of ks_2samp (internal)';

CREATE AGGREGATE @extschema@.ks_2samp(value pg_catalog.float8, is_reference boolean) (
    SFUNC = @extschema@._ks_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._ks_2samp_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._rank_combine,
    SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial,
    PARALLEL = SAFE
);
CREATE FUNCTION @extschema@.ks_pvalue(d pg_catalog.float8, n1 bigint, n2 bigint)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_ks_pvalue';
COMMENT ON FUNCTION @extschema@.ks_pvalue(pg_catalog.float8, bigint, bigint) IS
    'Asymptotic two-sided p-value of a two-sample Kolmogorov-Smirnov statistic d between samples of n1 and n2 values (scipy.stats.ks_2samp, method asymp)';

COMMENT ON AGGREGATE @extschema@.ks_2samp(pg_catalog.float8, boolean) IS
    'Two-sample Kolmogorov-Smirnov statistic D between the reference values and the others (scipy.stats.ks_2samp)';

--------------------------------------------------------------------------
-- Feature baselines and drift reports (layer 2: SQL over tables)
--------------------------------------------------------------------------

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
    PRIMARY KEY (model, version, feature),
    -- a feature whose values were all missing has no distribution
    CHECK (kind = 'numeric' OR (edges IS NULL AND expected IS NULL)),
    CHECK (kind = 'categorical' OR categories IS NULL),
    CHECK ((edges IS NULL) = (expected IS NULL)),
    CHECK (expected IS NULL OR pg_catalog.array_length(expected, 1) = COALESCE(pg_catalog.array_length(edges, 1), 0) + 1)
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

-- Readers (analysts, applications) may see what a model was trained on;
-- only capture_baseline writes.
REVOKE ALL ON @extschema@.baselines FROM PUBLIC;
GRANT SELECT ON @extschema@.baselines TO PUBLIC;

-- Writing baselines needs rights the caller of capture_baseline need not
-- have; reading the source must use the caller's own.  So the reading
-- function is SECURITY INVOKER and hands the profile to this one.
CREATE FUNCTION @extschema@._store_baseline(model text, version text, profile jsonb)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored integer;
BEGIN
    PERFORM @extschema@._begin_change();
    DELETE FROM @extschema@.baselines b WHERE b.model = _store_baseline.model AND b.version = _store_baseline.version;
    INSERT INTO @extschema@.baselines (model, version, feature, kind, edges, expected, categories,
                                       row_count, missing_share)
    SELECT _store_baseline.model, _store_baseline.version, p.feature, p.kind, p.edges, p.expected,
           p.categories, p.row_count, p.missing_share
      FROM jsonb_to_recordset(profile) AS p(feature text, kind text, edges float8[], expected float8[],
                                           categories jsonb, row_count bigint, missing_share float8);
    GET DIAGNOSTICS stored = ROW_COUNT;
    PERFORM @extschema@._log(model, version, 'baseline_captured',
                             jsonb_build_object('features', stored,
                                                'names', (SELECT jsonb_agg(p->>'feature') FROM jsonb_array_elements(profile) p)));
    RETURN stored;
END
$$;
COMMENT ON FUNCTION @extschema@._store_baseline(text, text, jsonb) IS
    'Replace the baseline of a model version by a profile computed by capture_baseline (internal)';

CREATE FUNCTION @extschema@.capture_baseline(model text, version text, source pg_catalog.regclass,
                                             features text[] DEFAULT NULL, bins integer DEFAULT 10)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
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
    -- is an error.
    FOR cols IN
        SELECT f.name, a.atttypid::regtype AS type
          FROM unnest(coalesce(features, ARRAY(
                   SELECT a2.attname::text FROM pg_attribute a2
                    WHERE a2.attrelid = source AND a2.attnum > 0 AND NOT a2.attisdropped
                      AND a2.atttypid = ANY (numeric_types || text_types)
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

    -- First scan: edges and missing counts of numbers, category counts.
    FOREACH f IN ARRAY numeric_cols LOOP
        select_list := select_list
            || format('@extschema@.quantile_edges(%I::float8, %s)', f, bins)
            || format('count(*) FILTER (WHERE %1$I IS NULL OR %1$I::float8 = ''NaN'')', f);
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
        profile := profile || jsonb_build_object(
            'feature', f, 'kind', 'numeric', 'row_count', total,
            'missing_share', CASE WHEN total = 0 THEN 0 ELSE (r->>(i + 1))::float8 / total END);
        i := i + 2;
    END LOOP;
    FOREACH f IN ARRAY categorical_cols LOOP
        counts := r->i;
        profile := profile || jsonb_build_object(
            'feature', f, 'kind', 'categorical', 'row_count', total,
            'missing_share', CASE WHEN total = 0 THEN 0 ELSE (r->>(i + 1))::float8 / total END,
            'categories', (SELECT jsonb_object_agg(key, c / t)
                             FROM (SELECT key, value::float8 AS c, sum(value::float8) OVER () AS t
                                     FROM jsonb_each_text(counts)) x));
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
    'Profile the named (default: all numeric and text) columns of source as the baseline of a model version, replacing an earlier one; returns the number of features stored';

CREATE FUNCTION @extschema@.drift(model text, version text, current pg_catalog.regclass,
                                  since timestamptz DEFAULT NULL, time_column text DEFAULT NULL,
                                  psi_threshold pg_catalog.float8 DEFAULT 0.25)
    RETURNS TABLE (feature text, kind text, psi pg_catalog.float8, js pg_catalog.float8,
                   missing_share pg_catalog.float8, n bigint, drifted boolean)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
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

    FOR b IN SELECT * FROM @extschema@.baselines bl
              WHERE bl.model = drift.model AND bl.version = drift.version
              ORDER BY bl.feature
    LOOP
        PERFORM 1 FROM pg_attribute a
          WHERE a.attrelid = current AND a.attname = b.feature AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'retrain.drift: baselined feature "%" is not a column of %', b.feature, current
                USING ERRCODE = 'undefined_column';
        END IF;
        feats := feats || b;
        IF b.kind = 'numeric' THEN
            -- bucket counts and the missing count from one aggregate
            select_list := select_list
                || format('to_jsonb(@extschema@.histogram_missing(%I::float8, %L::float8[]))',
                          b.feature, coalesce(b.edges, '{}'));
        ELSE
            select_list := select_list
                || format('to_jsonb(@extschema@.category_counts(%I::text))', b.feature)
                || format('to_jsonb(count(*) FILTER (WHERE %I IS NULL))', b.feature);
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

CREATE FUNCTION @extschema@.drift_summary(model text, version text, current pg_catalog.regclass,
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

-- capture_baseline changes state: not for PUBLIC (see docs/drift.md for the
-- GRANT an operator role needs).
REVOKE ALL ON FUNCTION @extschema@.capture_baseline(text, text, pg_catalog.regclass, text[], integer) FROM PUBLIC;

--------------------------------------------------------------------------
-- Model registry, approvals, deployments, the retraining log (layer 2)
--
-- Tables are changed only by the functions below; each state change locks
-- the model's row, checks the transition, changes state and appends its log
-- row in the caller's transaction.
--------------------------------------------------------------------------

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

-- metrics must be a flat object of numbers
CREATE FUNCTION @extschema@._numbers_only(doc jsonb)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jsonb_typeof(doc) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(doc) e WHERE jsonb_typeof(e.value) <> 'number');
COMMENT ON FUNCTION @extschema@._numbers_only(jsonb) IS
    'Whether a jsonb document is an object whose values are all numbers (internal)';

CREATE TABLE @extschema@.model_versions (
    model            text NOT NULL REFERENCES @extschema@.models (name),
    version          text NOT NULL CHECK (version <> ''),
    stage            text NOT NULL DEFAULT 'registered'
                     CHECK (stage IN ('registered', 'shadow', 'canary', 'production', 'previous',
                                      'retired', 'rolled_back')),
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
    PRIMARY KEY (model, version)
);
COMMENT ON TABLE @extschema@.model_versions IS 'Versions of each model with their lineage, metrics and stage';
COMMENT ON COLUMN @extschema@.model_versions.stage IS 'registered, shadow, canary, production, previous (the standby after a swap), retired, rolled_back';
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
    FOREIGN KEY (model, production_version) REFERENCES @extschema@.model_versions (model, version),
    FOREIGN KEY (model, canary_version) REFERENCES @extschema@.model_versions (model, version),
    FOREIGN KEY (model, shadow_version) REFERENCES @extschema@.model_versions (model, version),
    CHECK (canary_version IS NULL OR canary_version IS DISTINCT FROM production_version)
);
COMMENT ON TABLE @extschema@.deployments IS 'What each model serves now: one row per model; applications read it (or call route())';
COMMENT ON COLUMN @extschema@.deployments.canary_percent IS 'share of units routed to the canary, 0 to 100 (ML_ROLLOUT_PCT)';
COMMENT ON COLUMN @extschema@.deployments.mode IS 'auto, or forced: production, candidate (the canary for everyone), fallback (no model)';
COMMENT ON COLUMN @extschema@.deployments.mode_until IS 'when a forced mode expires by itself (NULL: until changed)';

CREATE FUNCTION @extschema@._deployments_changed()
    RETURNS trigger LANGUAGE C
    AS 'MODULE_PATHNAME', 'retrain_deployments_changed';
COMMENT ON FUNCTION @extschema@._deployments_changed() IS
    'Invalidates every backend''s route cache and sends NOTIFY retrain_deployments at commit (internal)';
CREATE TRIGGER deployments_changed
    AFTER INSERT OR UPDATE OR DELETE ON @extschema@.deployments
    FOR EACH ROW EXECUTE FUNCTION @extschema@._deployments_changed();
COMMENT ON TRIGGER deployments_changed ON @extschema@.deployments IS
    'Keeps route() caches current and notifies listening applications';

-- Routing for applications.
CREATE FUNCTION @extschema@.bucket(model text, unit_key text)
    RETURNS integer LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_bucket';
COMMENT ON FUNCTION @extschema@.bucket(text, text) IS
    'The routing bucket 0..9999 of a unit: murmur3_x86_32(utf8(model || '':'' || unit_key), seed 0) mod 10000';

CREATE FUNCTION @extschema@.route(model text, unit_key text)
    RETURNS text LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'retrain_route';
COMMENT ON FUNCTION @extschema@.route(text, text) IS
    'The model version to serve this unit (canary when its bucket < canary_percent * 100); NULL: serve no model';

CREATE FUNCTION @extschema@.route_detail(model text, unit_key text,
                                         OUT version text, OUT arm text, OUT shadow_version text,
                                         OUT bucket integer)
    RETURNS record LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'retrain_route_detail';
COMMENT ON FUNCTION @extschema@.route_detail(text, text) IS
    'route() with the arm (production, canary, forced, fallback), the shadow version to score alongside, and the bucket';


CREATE FUNCTION @extschema@._actor()
    RETURNS name LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_actor';
COMMENT ON FUNCTION @extschema@._actor() IS
    'The role a state change is made by: the session''s current role outside security-definer functions (internal)';

-- Every state change first takes this one transaction-scoped lock, before
-- any row lock.  Changes to retrain's tables are thereby serialised in one
-- order (the log's order is commit order, and its chain needs that anyway),
-- and no two of them can deadlock on each other's row locks, whatever rows
-- they touch in whatever order (run_checks() touches every model).
CREATE FUNCTION @extschema@._begin_change()
    RETURNS void
    LANGUAGE sql
    -- 'retrain' as a 64-bit key: 0x7265747261696e
    RETURN pg_catalog.pg_advisory_xact_lock(32199484592351598);
COMMENT ON FUNCTION @extschema@._begin_change() IS
    'Take the lock that serialises retrain''s state changes (internal)';

-- The retraining log: append-only, hash-chained.
CREATE TABLE @extschema@.log (
    id        bigint PRIMARY KEY,
    at        timestamptz NOT NULL,
    model     text,
    version   text,
    event     text NOT NULL,
    actor     name NOT NULL,
    details   jsonb NOT NULL DEFAULT '{}',
    prev_hash text NOT NULL,
    hash      text NOT NULL
);
CREATE INDEX log_model_at ON @extschema@.log (model, at);
COMMENT ON TABLE @extschema@.log IS
    'The retraining log: one row per event, written only by retrain''s functions in the transaction of the change; each row''s hash covers its content and the previous row''s hash';
COMMENT ON COLUMN @extschema@.log.event IS 'registered, policy_set, evaluated, approved, promoted, traffic_changed, advanced, rolled_back, forced, baseline_captured, ...';
COMMENT ON COLUMN @extschema@.log.actor IS 'the role that made the change';
COMMENT ON COLUMN @extschema@.log.hash IS 'SHA-256 (hex) of the row''s content and prev_hash';

-- The end of the chain, so that deleting the last rows is detected too.
CREATE TABLE @extschema@.log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id   bigint NOT NULL,
    last_hash text NOT NULL
);
COMMENT ON TABLE @extschema@.log_head IS 'The id and hash of the last log row (internal)';

CREATE FUNCTION @extschema@._log_hash(id bigint, at timestamptz, model text, version text, event text,
                                      actor name, details jsonb, prev_hash text)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    -- a canonical text: a JSON array, with the time as microseconds since 1970
    RETURN encode(sha256(convert_to(jsonb_build_array(id, (extract(epoch FROM at) * 1000000)::bigint,
                                                      model, version, event, actor::text, details,
                                                      prev_hash)::text, 'UTF8')), 'hex');
COMMENT ON FUNCTION @extschema@._log_hash(bigint, timestamptz, text, text, text, name, jsonb, text) IS
    'The hash of a log row (internal)';

CREATE FUNCTION @extschema@._log(model text, version text, event text, details jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head @extschema@.log_head;
    new_id bigint;
    now_ timestamptz := clock_timestamp();
    actor_ name := @extschema@._actor();
    h text;
BEGIN
    -- appends are serialised on the head row until commit, so the chain
    -- follows commit order; the row is made on first use (not by the
    -- install script, so that a restored dump does not collide with it)
    PERFORM @extschema@._begin_change();
    INSERT INTO @extschema@.log_head VALUES (true, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
    SELECT * INTO head FROM @extschema@.log_head FOR UPDATE;
    new_id := head.last_id + 1;
    h := @extschema@._log_hash(new_id, now_, model, version, event, actor_, coalesce(details, '{}'), head.last_hash);
    INSERT INTO @extschema@.log (id, at, model, version, event, actor, details, prev_hash, hash)
    VALUES (new_id, now_, model, version, event, actor_, coalesce(details, '{}'), head.last_hash, h);
    UPDATE @extschema@.log_head SET last_id = new_id, last_hash = h;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION @extschema@._log(text, text, text, jsonb) IS
    'Append a row to the retraining log (internal: the one way rows get there)';

CREATE FUNCTION @extschema@._log_is_append_only()
    RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'retrain.log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION @extschema@._log_is_append_only() IS
    'Refuses UPDATE, DELETE and TRUNCATE of retrain.log (internal)';
CREATE TRIGGER log_append_only BEFORE UPDATE OR DELETE ON @extschema@.log
    FOR EACH ROW EXECUTE FUNCTION @extschema@._log_is_append_only();
CREATE TRIGGER log_no_truncate BEFORE TRUNCATE ON @extschema@.log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._log_is_append_only();
COMMENT ON TRIGGER log_append_only ON @extschema@.log IS 'The log is append-only';
COMMENT ON TRIGGER log_no_truncate ON @extschema@.log IS 'The log is append-only';

-- SECURITY DEFINER only to call the internal hash function; it reads
-- nothing a reader may not read.
CREATE FUNCTION @extschema@.verify_log(OUT ok boolean, OUT first_bad_id bigint, OUT rows_checked bigint)
    RETURNS record
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.log;
    expect_id bigint := 1;
    prev text := repeat('0', 64);
    head @extschema@.log_head;
BEGIN
    ok := true;
    first_bad_id := NULL;
    rows_checked := 0;
    FOR r IN SELECT * FROM @extschema@.log ORDER BY id LOOP
        rows_checked := rows_checked + 1;
        -- a gap (deleted row), a broken link, or content that no longer
        -- matches its hash
        IF r.id <> expect_id OR r.prev_hash <> prev
           OR r.hash <> @extschema@._log_hash(r.id, r.at, r.model, r.version, r.event, r.actor,
                                              r.details, r.prev_hash) THEN
            ok := false;
            first_bad_id := least(r.id, expect_id);
            RETURN;
        END IF;
        prev := r.hash;
        expect_id := r.id + 1;
    END LOOP;
    SELECT * INTO head FROM @extschema@.log_head;
    IF coalesce(head.last_id, 0) <> expect_id - 1 OR coalesce(head.last_hash, repeat('0', 64)) <> prev THEN
        -- rows missing at the end
        ok := false;
        first_bad_id := expect_id;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.verify_log() IS
    'Check the hash chain of retrain.log: ok, the first id where it breaks (edited, deleted or reordered rows), and how many rows were checked';


CREATE TABLE @extschema@.approvals (
    model       text NOT NULL,
    version     text NOT NULL,
    capacity    text NOT NULL,
    approver    name NOT NULL,
    approved_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    comment     text,
    PRIMARY KEY (model, version, capacity),
    UNIQUE (model, version, approver),
    FOREIGN KEY (model, version) REFERENCES @extschema@.model_versions (model, version)
);
COMMENT ON TABLE @extschema@.approvals IS 'Sign-offs: who signed which version in which capacity, when, with what comment';

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

-- Policy: one document per model, one validator, defaults merged on read.
-- The defaults live here, in one place: a key added later has a default
-- for every existing model.
CREATE FUNCTION @extschema@.effective_policy(model text)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT d || (m.policy - 'rollout' - 'requests' - 'rollback')
                   || jsonb_build_object('rollout', (d->'rollout') || coalesce(m.policy->'rollout', '{}'),
                                         'requests', (d->'requests') || coalesce(m.policy->'requests', '{}'),
                                         'rollback', (d->'rollback') || coalesce(m.policy->'rollback', '{}'))
              FROM @extschema@.models m,
                   (SELECT '{"gates": [], "approvals": {}, "rollout": {"steps": [10, 50, 100]},
                             "requests": {"claim_timeout": "1 hour", "cooldown": "7 days"},
                             "rollback": {"max_error_rate": 0.02, "max_latency_increase": 0.5,
                                          "latency_percentile": 99, "min_predictions": 100}}'::jsonb AS d) defaults
             WHERE m.name = effective_policy.model);
COMMENT ON FUNCTION @extschema@.effective_policy(text) IS
    'A model''s policy with the defaults filled in for every key it does not set';

CREATE FUNCTION @extschema@._positive_interval(value text)
    RETURNS boolean LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN value::interval > interval '0';
EXCEPTION WHEN others THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION @extschema@._positive_interval(text) IS
    'Whether text is a positive interval (internal)';

-- A schedule is one of four shapes (see docs/triggers.md), with valid
-- values: set_policy() refuses others, and schedule_occurrence() too.
-- Plain SQL, no exception handler: schedule_occurrence() is PARALLEL SAFE,
-- and a parallel worker may not start the subtransaction a handler needs.
-- (Interval text that is no interval at all fails in its cast, with
-- PostgreSQL's own message; set_policy() has refused it before.)
CREATE FUNCTION @extschema@._valid_schedule(schedule jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN jsonb_typeof(schedule) IS DISTINCT FROM 'object'
          OR EXISTS (SELECT 1 FROM jsonb_each(schedule) k
                      WHERE k.key NOT IN ('every', 'weekday', 'nth', 'day', 'at', 'interval')
                         OR (k.key IN ('nth', 'day') AND jsonb_typeof(k.value) <> 'number')
                         OR (k.key IN ('every', 'weekday', 'at', 'interval') AND jsonb_typeof(k.value) <> 'string'))
          OR (schedule ? 'weekday' AND NOT schedule->>'weekday' = ANY (ARRAY['sunday', 'monday', 'tuesday', 'wednesday',
                                                                           'thursday', 'friday', 'saturday']))
          OR (schedule ? 'at' AND schedule->>'at' !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$')
            THEN false
        WHEN schedule ? 'interval'
            THEN NOT schedule ?| ARRAY['every', 'weekday', 'nth', 'day', 'at']
                 AND (schedule->>'interval')::interval > interval '0'
        WHEN schedule->>'every' = 'week'
            THEN schedule ? 'weekday' AND NOT schedule ?| ARRAY['nth', 'day']
        WHEN schedule->>'every' = 'month'
            THEN (schedule ? 'weekday' AND schedule ? 'nth' AND NOT schedule ? 'day'
                  AND (schedule->>'nth')::numeric IN (1, 2, 3, 4, 5))
              OR (schedule ? 'day' AND NOT schedule ?| ARRAY['weekday', 'nth']
                  AND (schedule->>'day')::numeric BETWEEN 1 AND 28 AND (schedule->>'day')::numeric % 1 = 0)
        ELSE false
    END
$$;
COMMENT ON FUNCTION @extschema@._valid_schedule(jsonb) IS 'Whether a schedule document is valid (internal)';

CREATE FUNCTION @extschema@._schedule_hint()
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 'A schedule is {"every": "week", "weekday": "sunday", "at": "02:00"}, {"every": "month", "weekday": "tuesday", "nth": 2, "at": "02:00"}, {"every": "month", "day": 1}, or {"interval": "3 months"} (since the last training); times are UTC.';
COMMENT ON FUNCTION @extschema@._schedule_hint() IS 'The hint of an invalid schedule''s error (internal)';

-- The triggers of a policy: which keys each takes, and of what kind.
CREATE FUNCTION @extschema@._check_triggers(triggers jsonb)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec jsonb := '{
      "drift":          {"psi": "positive", "aggregate": ["max", "mean", "share"], "share": "fraction", "window": "interval"},
      "performance":    {"metric": ["auc", "f1", "precision", "recall", "accuracy", "brier", "log_loss", "mae", "rmse"],
                         "max_drop": "number", "max_relative_drop": "number", "min_labels": "number",
                         "window": "interval", "threshold": "fraction"},
      "data_growth":    {"share": "positive", "count": "positive"},
      "schedule":       {"every": ["week", "month"], "weekday": ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
                         "nth": "positive", "day": "positive", "at": "time", "interval": "interval"},
      "confidence":     {"min": "fraction", "window": "interval"},
      "feature_change": {}
    }';
    t record;
    k record;
    kind jsonb;
    ok boolean;
BEGIN
    IF jsonb_typeof(triggers) <> 'object' THEN
        RAISE EXCEPTION 'retrain.set_policy: triggers must be an object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR t IN SELECT * FROM jsonb_each(triggers) LOOP
        IF NOT spec ? t.key THEN
            RAISE EXCEPTION 'retrain.set_policy: unknown trigger "%"', t.key
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Valid triggers: %s.', (SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(spec) x));
        END IF;
        IF jsonb_typeof(t.value) <> 'object' THEN
            RAISE EXCEPTION 'retrain.set_policy: trigger "%" must be an object', t.key USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR k IN SELECT * FROM jsonb_each(t.value) LOOP
            kind := spec->t.key->k.key;
            ok := CASE
                WHEN kind IS NULL THEN false
                WHEN jsonb_typeof(kind) = 'array' THEN kind @> jsonb_build_array(k.value)
                WHEN kind #>> '{}' = 'number' THEN jsonb_typeof(k.value) = 'number' AND (k.value #>> '{}')::numeric >= 0
                WHEN kind #>> '{}' = 'positive' THEN jsonb_typeof(k.value) = 'number' AND (k.value #>> '{}')::numeric > 0
                WHEN kind #>> '{}' = 'fraction' THEN jsonb_typeof(k.value) = 'number' AND (k.value #>> '{}')::numeric BETWEEN 0 AND 1
                WHEN kind #>> '{}' = 'interval' THEN jsonb_typeof(k.value) = 'string' AND @extschema@._positive_interval(k.value #>> '{}')
                WHEN kind #>> '{}' = 'time' THEN jsonb_typeof(k.value) = 'string' AND k.value #>> '{}' ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
            END;
            IF NOT coalesce(ok, false) THEN
                RAISE EXCEPTION 'retrain.set_policy: trigger "%": invalid % %', t.key, k.key, k.value
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = format('Valid keys of "%s": %s.', t.key,
                                          coalesce((SELECT string_agg(x.key || ' (' || (x.value #>> '{}') || ')', ', ' ORDER BY x.key)
                                                      FROM jsonb_each(spec->t.key) x), 'none'));
            END IF;
        END LOOP;
    END LOOP;
    IF triggers ? 'performance' AND NOT (triggers->'performance' ? 'metric'
           AND (triggers->'performance' ? 'max_drop' OR triggers->'performance' ? 'max_relative_drop')) THEN
        RAISE EXCEPTION 'retrain.set_policy: trigger "performance" needs a metric and max_drop or max_relative_drop'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF triggers ? 'data_growth' AND NOT (triggers->'data_growth' ?| ARRAY['share', 'count']) THEN
        RAISE EXCEPTION 'retrain.set_policy: trigger "data_growth" needs share or count' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF triggers ? 'schedule' AND NOT @extschema@._valid_schedule(triggers->'schedule') THEN
        RAISE EXCEPTION 'retrain.set_policy: invalid schedule %', triggers->'schedule'
            USING ERRCODE = 'invalid_parameter_value', HINT = @extschema@._schedule_hint();
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_triggers(jsonb) IS 'The validator of a policy''s triggers (internal)';

CREATE FUNCTION @extschema@._check_policy(policy jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    valid_keys text[] := ARRAY['approvals', 'eligibility', 'gates', 'requests', 'rollback', 'rollout', 'triggers'];
    k text;
    g jsonb;
    c record;
    steps jsonb;
    i integer;
BEGIN
    IF policy IS NULL OR jsonb_typeof(policy) <> 'object' THEN
        RAISE EXCEPTION 'retrain.set_policy: the policy must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(policy) LOOP
        IF NOT k = ANY (valid_keys) THEN
            RAISE EXCEPTION 'retrain.set_policy: unknown policy key "%"', k
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Valid keys: %s.', array_to_string(valid_keys, ', '));
        END IF;
    END LOOP;

    IF policy ? 'gates' THEN
        IF jsonb_typeof(policy->'gates') <> 'array' THEN
            RAISE EXCEPTION 'retrain.set_policy: gates must be an array of gates'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR g IN SELECT * FROM jsonb_array_elements(policy->'gates') LOOP
            IF jsonb_typeof(g) <> 'object'
               OR EXISTS (SELECT 1 FROM jsonb_object_keys(g) x WHERE x NOT IN ('metric', 'op', 'value', 'relative'))
               OR jsonb_typeof(g->'metric') IS DISTINCT FROM 'string'
               OR NOT coalesce(g->>'op', '') IN ('>=', '>', '<=', '<')
               OR ((g ? 'value') = (g ? 'relative'))
               OR jsonb_typeof(coalesce(g->'value', g->'relative')) <> 'number' THEN
                RAISE EXCEPTION 'retrain.set_policy: invalid gate %', g
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'A gate is {"metric": name, "op": ">=" | ">" | "<=" | "<", and "value": number (absolute) or "relative": number (added to production''s metric)}.';
            END IF;
        END LOOP;
    END IF;

    IF policy ? 'approvals' THEN
        IF jsonb_typeof(policy->'approvals') <> 'object' THEN
            RAISE EXCEPTION 'retrain.set_policy: approvals must map each capacity to a role'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR c IN SELECT * FROM jsonb_each(policy->'approvals') LOOP
            IF jsonb_typeof(c.value) <> 'string' OR to_regrole(quote_ident(c.value #>> '{}')) IS NULL THEN
                RAISE EXCEPTION 'retrain.set_policy: the role of capacity "%" must be an existing role, not %', c.key, c.value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
    END IF;

    IF policy ? 'rollout' THEN
        IF jsonb_typeof(policy->'rollout') <> 'object'
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(policy->'rollout') x WHERE x NOT IN ('steps', 'dwell')) THEN
            RAISE EXCEPTION 'retrain.set_policy: rollout must be an object with steps (and dwell)'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Valid keys: steps, dwell.';
        END IF;
        steps := policy->'rollout'->'steps';
        IF steps IS NOT NULL THEN
            IF jsonb_typeof(steps) <> 'array' OR jsonb_array_length(steps) = 0
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(steps) e
                           WHERE jsonb_typeof(e) <> 'number' OR (e #>> '{}')::numeric <= 0
                              OR (e #>> '{}')::numeric > 100)
               OR (steps->-1 #>> '{}')::numeric <> 100 THEN
                RAISE EXCEPTION 'retrain.set_policy: rollout steps must be percentages in (0, 100], rising, ending at 100, not %', steps
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            FOR i IN 1 .. jsonb_array_length(steps) - 1 LOOP
                IF (steps->i #>> '{}')::numeric <= (steps->(i - 1) #>> '{}')::numeric THEN
                    RAISE EXCEPTION 'retrain.set_policy: rollout steps must rise, not %', steps
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END LOOP;
        END IF;
        -- dwell: how long each step before the last must stay healthy
        IF policy->'rollout' ? 'dwell' THEN
            steps := coalesce(policy->'rollout'->'steps', '[10, 50, 100]');
            IF jsonb_typeof(policy->'rollout'->'dwell') <> 'array'
               OR jsonb_array_length(policy->'rollout'->'dwell') <> jsonb_array_length(steps) - 1
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(policy->'rollout'->'dwell') e
                           WHERE jsonb_typeof(e) <> 'string'
                              OR @extschema@._positive_interval(e #>> '{}') IS NOT TRUE) THEN
                RAISE EXCEPTION 'retrain.set_policy: rollout dwell must give an interval for each step before the last, not %',
                    policy->'rollout'->'dwell'
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'For steps [10, 50, 100]: "dwell": ["1 day", "2 days"].';
            END IF;
        END IF;
    END IF;

    IF policy ? 'triggers' THEN
        PERFORM @extschema@._check_triggers(policy->'triggers');
    END IF;
    IF policy ? 'eligibility' THEN
        IF jsonb_typeof(policy->'eligibility') <> 'object'
           OR EXISTS (SELECT 1 FROM jsonb_each(policy->'eligibility') e
                       WHERE e.key NOT IN ('min_new_labels', 'checks')
                          OR (e.key = 'min_new_labels'
                              AND (jsonb_typeof(e.value) <> 'number' OR (e.value #>> '{}')::numeric < 0))
                          OR (e.key = 'checks' AND NOT @extschema@._valid_checks(e.value))) THEN
            RAISE EXCEPTION 'retrain.set_policy: invalid eligibility %', policy->'eligibility'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Valid keys: min_new_labels (a number >= 0), checks (an object of lower-case names to boolean queries).';
        END IF;
    END IF;

    IF policy ? 'rollback' THEN
        IF jsonb_typeof(policy->'rollback') <> 'object'
           OR EXISTS (SELECT 1 FROM jsonb_each(policy->'rollback') e
                       WHERE CASE e.key
                             WHEN 'checks' THEN NOT @extschema@._valid_checks(e.value)
                             ELSE e.key NOT IN ('max_error_rate', 'max_latency_increase', 'latency_percentile',
                                                'max_metric_drop', 'min_predictions')
                                  OR jsonb_typeof(e.value) <> 'number' OR (e.value #>> '{}')::numeric < 0 END)
           OR coalesce((policy->'rollback'->>'latency_percentile')::numeric, 99) NOT BETWEEN 50 AND 100 THEN
            RAISE EXCEPTION 'retrain.set_policy: invalid rollback limits %', policy->'rollback'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Valid keys (numbers >= 0): max_error_rate, max_latency_increase, latency_percentile (50 to 100), max_metric_drop, min_predictions; and checks (an object of lower-case names to boolean queries).';
        END IF;
    END IF;

    IF policy ? 'requests' THEN
        IF jsonb_typeof(policy->'requests') <> 'object'
           OR EXISTS (SELECT 1 FROM jsonb_each(policy->'requests') x
                       WHERE x.key NOT IN ('claim_timeout', 'cooldown')
                          OR jsonb_typeof(x.value) <> 'string'
                          OR @extschema@._positive_interval(x.value #>> '{}') IS NOT TRUE) THEN
            RAISE EXCEPTION 'retrain.set_policy: requests must be {"claim_timeout": interval, "cooldown": interval}, not %', policy->'requests'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Valid keys (positive intervals): claim_timeout, cooldown.';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._check_policy(jsonb) IS 'The policy validator (internal)';

-- The model's row, locked: every state change starts here.
CREATE FUNCTION @extschema@._lock_model(fn text, model text)
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
    PERFORM 1 FROM @extschema@.deployments d WHERE d.model = _lock_model.model FOR UPDATE;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@._lock_model(text, text) IS 'Lock a model''s rows for a state change, or fail with 42704 (internal)';

CREATE FUNCTION @extschema@._version(fn text, model text, version text)
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

CREATE FUNCTION @extschema@.register_model(name text, task text, description text DEFAULT NULL)
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
    PERFORM @extschema@._begin_change();
    BEGIN
        INSERT INTO @extschema@.models (name, task, owner, description)
        VALUES (register_model.name, task, @extschema@._actor(), description);
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
    'Register a model (binary_classification or regression); the calling role becomes its owner';

CREATE FUNCTION @extschema@.set_policy(model text, policy jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
BEGIN
    m := @extschema@._lock_model('set_policy', model);
    PERFORM @extschema@._check_policy(policy);
    -- The eligibility and rollback checks run with the owner's privileges:
    -- only who may act as the owner may write or change them.
    IF ARRAY[m.policy->'eligibility'->'checks', m.policy->'rollback'->'checks']
       IS DISTINCT FROM ARRAY[policy->'eligibility'->'checks', policy->'rollback'->'checks']
       AND NOT pg_has_role(@extschema@._actor(), m.owner, 'MEMBER') THEN
        RAISE EXCEPTION 'retrain.set_policy: only members of the owner role of model "%" may change its eligibility or rollback checks', model
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The checks run with the owner''s privileges.';
    END IF;
    UPDATE @extschema@.models mm SET policy = set_policy.policy WHERE mm.name = set_policy.model;
    PERFORM @extschema@._log(model, NULL, 'policy_set', jsonb_build_object('policy', policy));
    RETURN @extschema@.effective_policy(model);
END
$$;
COMMENT ON FUNCTION @extschema@.set_policy(text, jsonb) IS
    'Validate and set a model''s policy document (gates, approvals, rollout, rollback, triggers, eligibility, requests); only members of the owner role may change its checks; returns the effective policy';

CREATE FUNCTION @extschema@.register_version(model text, version text, artifact_uri text, artifact_sha256 text,
                                             metrics jsonb, params jsonb DEFAULT '{}', code_commit text DEFAULT NULL,
                                             seed bigint DEFAULT NULL, dataset_snapshot text DEFAULT NULL,
                                             data_range tstzrange DEFAULT NULL, features text[] DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._lock_model('register_version', model);
    IF version IS NULL OR artifact_uri IS NULL OR artifact_sha256 IS NULL OR metrics IS NULL THEN
        RAISE EXCEPTION 'retrain.register_version: version, artifact_uri, artifact_sha256 and metrics must not be NULL'
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
    BEGIN
        INSERT INTO @extschema@.model_versions (model, version, artifact_uri, artifact_sha256, code_commit, params,
                                                seed, dataset_snapshot, data_range, features, metrics, registered_by)
        VALUES (model, version, artifact_uri, artifact_sha256, code_commit, params, seed, dataset_snapshot,
                data_range, features, metrics, @extschema@._actor());
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'retrain.register_version: model "%" already has a version "%"', model, version
            USING ERRCODE = 'unique_violation';
    END;
    PERFORM @extschema@._log(model, version, 'registered',
        jsonb_build_object('artifact_uri', artifact_uri, 'artifact_sha256', artifact_sha256, 'metrics', metrics,
                           'params', params, 'code_commit', code_commit, 'seed', seed,
                           'dataset_snapshot', dataset_snapshot, 'data_range', data_range::text,
                           'features', features));
END
$$;
COMMENT ON FUNCTION @extschema@.register_version(text, text, text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[]) IS
    'Register a version with everything needed to reproduce it (artifact, SHA-256, code commit, hyperparameters, seed, data snapshot and range, features) and its offline metrics';

CREATE FUNCTION @extschema@.evaluate(model text, version text)
    RETURNS TABLE (gate text, required pg_catalog.float8, observed pg_catalog.float8, passed boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
    prod @extschema@.model_versions;
    d @extschema@.deployments;
    g jsonb;
    at_ timestamptz := clock_timestamp();
    results jsonb := '[]';
BEGIN
    PERFORM @extschema@._lock_model('evaluate', model);
    v := @extschema@._version('evaluate', model, version);
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = evaluate.model;
    IF d.production_version IS NOT NULL THEN
        SELECT * INTO prod FROM @extschema@.model_versions mv
         WHERE mv.model = evaluate.model AND mv.version = d.production_version;
    END IF;
    FOR g IN SELECT * FROM jsonb_array_elements(@extschema@.effective_policy(model)->'gates') LOOP
        observed := (v.metrics->>(g->>'metric'))::float8;
        IF g ? 'value' THEN
            required := (g->>'value')::float8;
            gate := format('%s %s %s', g->>'metric', g->>'op', g->>'value');
        ELSE
            required := (prod.metrics->>(g->>'metric'))::float8 + (g->>'relative')::float8;
            gate := format('%s %s production %s %s', g->>'metric', g->>'op',
                           CASE WHEN (g->>'relative')::float8 < 0 THEN '-' ELSE '+' END,
                           abs((g->>'relative')::float8));
        END IF;
        -- A missing metric fails its gate, and so does a relative gate when
        -- production lacks the metric.  With no production version at all
        -- (the first release) a relative gate has nothing to compare with:
        -- it asks only that the metric be there.
        IF NOT g ? 'value' AND d.production_version IS NULL THEN
            passed := observed IS NOT NULL;
            gate := gate || ' (no production version)';
            INSERT INTO @extschema@.evaluations VALUES (model, version, at_, gate, NULL, observed, passed);
            results := results || jsonb_build_object('gate', gate, 'required', NULL, 'observed', observed,
                                                     'passed', passed);
            required := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        passed := CASE g->>'op'
                      WHEN '>=' THEN observed >= required
                      WHEN '>' THEN observed > required
                      WHEN '<=' THEN observed <= required
                      WHEN '<' THEN observed < required
                  END;
        passed := coalesce(passed, false);
        INSERT INTO @extschema@.evaluations VALUES (model, version, at_, gate, required, observed, passed);
        results := results || jsonb_build_object('gate', gate, 'required', required, 'observed', observed,
                                                 'passed', passed);
        RETURN NEXT;
    END LOOP;
    PERFORM @extschema@._log(model, version, 'evaluated',
        jsonb_build_object('passed', NOT EXISTS (SELECT 1 FROM jsonb_array_elements(results) r
                                                  WHERE NOT (r->>'passed')::boolean),
                           'gates', results, 'against', d.production_version));
END
$$;
COMMENT ON FUNCTION @extschema@.evaluate(text, text) IS
    'Check a version against the policy''s gates (absolute, or relative to the production version''s metrics); stores and logs the result';


CREATE FUNCTION @extschema@.approve(model text, version text, capacity text, comment text DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v @extschema@.model_versions;
    role_ text;
    actor_ name := @extschema@._actor();
BEGIN
    PERFORM @extschema@._lock_model('approve', model);
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
                WHERE a.model = approve.model AND a.version = approve.version AND a.approver = actor_) THEN
        RAISE EXCEPTION 'retrain.approve: % has already signed version "%" of model "%"', actor_, version, model
            USING ERRCODE = 'unique_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.approvals a
                WHERE a.model = approve.model AND a.version = approve.version AND a.capacity = approve.capacity) THEN
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

-- What stands between a version and promotion: failed or missing gates,
-- missing sign-offs.
CREATE FUNCTION @extschema@._missing_for_promotion(model text, version text)
    RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH policy AS (SELECT @extschema@.effective_policy(model) AS p),
    latest AS (
        SELECT max(e.evaluated_at) AS at FROM @extschema@.evaluations e
         WHERE e.model = _missing_for_promotion.model AND e.version = _missing_for_promotion.version
    )
    SELECT coalesce(array_agg(item ORDER BY ord, item), '{}') FROM (
        SELECT 1 AS ord, 'not evaluated' AS item
          FROM policy, latest WHERE jsonb_array_length(p->'gates') > 0 AND latest.at IS NULL
        UNION ALL
        SELECT 2, format('gate failed: %s (required %s, observed %s)', e.gate, e.required,
                         coalesce(e.observed::text, 'missing'))
          FROM @extschema@.evaluations e, latest
         WHERE e.model = _missing_for_promotion.model AND e.version = _missing_for_promotion.version
           AND e.evaluated_at = latest.at AND NOT e.passed
        UNION ALL
        SELECT 3, format('approval missing: %s (role %s)', c.key, c.value #>> '{}')
          FROM policy, jsonb_each(p->'approvals') c
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.approvals a
                            WHERE a.model = _missing_for_promotion.model
                              AND a.version = _missing_for_promotion.version AND a.capacity = c.key)
    ) missing
$$;
COMMENT ON FUNCTION @extschema@._missing_for_promotion(text, text) IS
    'The failed gates and missing approvals of a version (internal)';

CREATE FUNCTION @extschema@._set_production(model text, version text, how text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    now_ timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = _set_production.model;
    UPDATE @extschema@.production_history h SET ended_at = now_, ended_by = how
     WHERE h.model = _set_production.model AND h.ended_at IS NULL;
    INSERT INTO @extschema@.production_history
    SELECT _set_production.model, coalesce(max(h.seq), 0) + 1, _set_production.version, now_, NULL, NULL
      FROM @extschema@.production_history h WHERE h.model = _set_production.model;
    IF d.production_version IS NOT NULL THEN
        UPDATE @extschema@.model_versions mv
           SET stage = CASE WHEN how = 'rolled_back' THEN 'rolled_back' ELSE 'previous' END
         WHERE mv.model = _set_production.model AND mv.version = d.production_version;
        -- only one standby
        UPDATE @extschema@.model_versions mv SET stage = 'retired'
         WHERE mv.model = _set_production.model AND mv.stage = 'previous'
           AND mv.version <> d.production_version;
    END IF;
    UPDATE @extschema@.model_versions mv SET stage = 'production'
     WHERE mv.model = _set_production.model AND mv.version = _set_production.version;
    UPDATE @extschema@.deployments dd
       SET previous_version = d.production_version, production_version = _set_production.version,
           canary_version = CASE WHEN d.canary_version = _set_production.version THEN NULL ELSE d.canary_version END,
           canary_percent = CASE WHEN d.canary_version = _set_production.version THEN 0 ELSE d.canary_percent END,
           shadow_version = CASE WHEN d.shadow_version = _set_production.version THEN NULL ELSE d.shadow_version END,
           updated_at = now_
     WHERE dd.model = _set_production.model;
END
$$;
COMMENT ON FUNCTION @extschema@._set_production(text, text, text) IS
    'Make a version production, keeping the one before as previous and the history (internal)';

CREATE FUNCTION @extschema@.promote(model text, version text, strategy text DEFAULT 'canary',
                                    override_reason text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m @extschema@.models;
    v @extschema@.model_versions;
    d @extschema@.deployments;
    missing text[];
    first_step numeric;
    actor_ name := @extschema@._actor();
BEGIN
    m := @extschema@._lock_model('promote', model);
    v := @extschema@._version('promote', model, version);
    IF strategy IS NULL OR strategy NOT IN ('canary', 'blue_green', 'shadow') THEN
        RAISE EXCEPTION 'retrain.promote: strategy must be canary, blue_green or shadow, not %', coalesce(strategy, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = promote.model;
    IF d.production_version = version THEN
        RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is already in production', version, model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF strategy IN ('canary', 'blue_green') AND d.canary_version IS NOT NULL THEN
        RAISE EXCEPTION 'retrain.promote: model "%" already has version "%" in canary', model, d.canary_version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Advance it to production or roll it back first.';
    END IF;

    missing := @extschema@._missing_for_promotion(model, version);
    IF cardinality(missing) > 0 THEN
        IF override_reason IS NULL THEN
            RAISE EXCEPTION 'retrain.promote: version "%" of model "%" is not cleared for promotion', version, model
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = array_to_string(missing, '; '),
                      HINT = 'The model''s owner may override with a reason: promote(model, version, strategy, override_reason => ''...'').';
        END IF;
        IF NOT pg_has_role(actor_, m.owner, 'MEMBER') THEN
            RAISE EXCEPTION 'retrain.promote: only the owner of model "%" (%) may override, not %', model, m.owner, actor_
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;

    IF strategy = 'canary' THEN
        first_step := (@extschema@.effective_policy(model)->'rollout'->'steps'->>0)::numeric;
        IF first_step >= 100 THEN
            PERFORM @extschema@._set_production(model, version, 'replaced');
        ELSE
            UPDATE @extschema@.model_versions mv SET stage = 'canary'
             WHERE mv.model = promote.model AND mv.version = promote.version;
            UPDATE @extschema@.deployments dd
               SET canary_version = promote.version, canary_percent = first_step,
                   shadow_version = CASE WHEN dd.shadow_version = promote.version THEN NULL ELSE dd.shadow_version END,
                   updated_at = clock_timestamp()
             WHERE dd.model = promote.model;
        END IF;
    ELSIF strategy = 'blue_green' THEN
        PERFORM @extschema@._set_production(model, version, 'replaced');
    ELSE
        UPDATE @extschema@.model_versions mv SET stage = 'shadow'
         WHERE mv.model = promote.model AND mv.version = promote.version;
        UPDATE @extschema@.deployments dd SET shadow_version = promote.version, updated_at = clock_timestamp()
         WHERE dd.model = promote.model;
    END IF;

    PERFORM @extschema@._log(model, version, 'promoted',
        jsonb_build_object('strategy', strategy, 'canary_percent', first_step,
                           'override', cardinality(missing) > 0, 'override_reason', override_reason,
                           'missing', missing));
    RETURN strategy;
END
$$;
COMMENT ON FUNCTION @extschema@.promote(text, text, text, text) IS
    'Start a canary at the first rollout step, swap production at once (blue_green, the old version kept as previous), or start shadow scoring; refused until all gates passed and all capacities signed, unless the owner overrides with a reason';

CREATE FUNCTION @extschema@.set_traffic(model text, percent numeric)
    RETURNS numeric
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
BEGIN
    PERFORM @extschema@._lock_model('set_traffic', model);
    IF percent IS NULL OR percent < 0 OR percent > 100 THEN
        RAISE EXCEPTION 'retrain.set_traffic: percent must be between 0 and 100, not %', coalesce(percent::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = set_traffic.model;
    IF d.canary_version IS NULL THEN
        RAISE EXCEPTION 'retrain.set_traffic: model "%" has no canary', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE @extschema@.deployments dd SET canary_percent = round(percent, 2), updated_at = clock_timestamp()
     WHERE dd.model = set_traffic.model;
    PERFORM @extschema@._log(model, d.canary_version, 'traffic_changed',
                             jsonb_build_object('from', d.canary_percent, 'to', round(percent, 2)));
    RETURN round(percent, 2);
END
$$;
COMMENT ON FUNCTION @extschema@.set_traffic(text, numeric) IS
    'Set the share of units routed to the canary (0 to 100, two decimals): the runbooks'' ML_ROLLOUT_PCT';

CREATE FUNCTION @extschema@.advance(model text)
    RETURNS numeric
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    next_step numeric;
BEGIN
    PERFORM @extschema@._lock_model('advance', model);
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = advance.model;
    IF d.canary_version IS NULL THEN
        RAISE EXCEPTION 'retrain.advance: model "%" has no canary to advance', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT min(s::numeric) INTO next_step
      FROM jsonb_array_elements_text(@extschema@.effective_policy(model)->'rollout'->'steps') s
     WHERE s::numeric > d.canary_percent;
    IF next_step IS NULL OR next_step >= 100 THEN
        -- the last step: the canary becomes production
        PERFORM @extschema@._set_production(model, d.canary_version, 'replaced');
        next_step := 100;
    ELSE
        UPDATE @extschema@.deployments dd SET canary_percent = next_step, updated_at = clock_timestamp()
         WHERE dd.model = advance.model;
    END IF;
    PERFORM @extschema@._log(model, d.canary_version, 'advanced',
                             jsonb_build_object('from', d.canary_percent, 'to', next_step,
                                                'production', next_step >= 100));
    RETURN next_step;
END
$$;
COMMENT ON FUNCTION @extschema@.advance(text) IS
    'Move the canary to the policy''s next traffic step; past the last one (100) the canary becomes production. Returns the new percentage';

CREATE FUNCTION @extschema@.rollback(model text, reason text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d @extschema@.deployments;
    target text;
BEGIN
    PERFORM @extschema@._lock_model('rollback', model);
    IF reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'retrain.rollback: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = rollback.model;
    IF d.canary_version IS NOT NULL THEN
        -- stop the running canary; production stays
        UPDATE @extschema@.model_versions mv SET stage = 'rolled_back'
         WHERE mv.model = rollback.model AND mv.version = d.canary_version;
        UPDATE @extschema@.deployments dd SET canary_version = NULL, canary_percent = 0, updated_at = clock_timestamp()
         WHERE dd.model = rollback.model;
        PERFORM @extschema@._log(model, d.canary_version, 'rolled_back',
                                 jsonb_build_object('reason', reason, 'what', 'canary', 'canary_percent', d.canary_percent,
                                                    'production', d.production_version));
        RETURN d.production_version;
    END IF;
    IF d.production_version IS NULL THEN
        RAISE EXCEPTION 'retrain.rollback: model "%" has nothing in production or canary to roll back', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the latest earlier production version not rolled back from
    SELECT h.version INTO target
      FROM @extschema@.production_history h
      JOIN @extschema@.model_versions mv ON mv.model = h.model AND mv.version = h.version
     WHERE h.model = rollback.model AND h.ended_at IS NOT NULL AND h.version <> d.production_version
       AND mv.stage <> 'rolled_back'
     ORDER BY h.seq DESC LIMIT 1;
    IF target IS NULL THEN
        RAISE EXCEPTION 'retrain.rollback: model "%" has no earlier production version to return to', model
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM @extschema@._set_production(model, target, 'rolled_back');
    PERFORM @extschema@._log(model, d.production_version, 'rolled_back',
                             jsonb_build_object('reason', reason, 'what', 'production', 'to', target));
    RETURN target;
END
$$;
COMMENT ON FUNCTION @extschema@.rollback(text, text) IS
    'Stop a running canary, or else return production to the version before it (repeatable, never to a version rolled back from); returns the version now in production';

CREATE FUNCTION @extschema@.force(model text, mode text, until timestamptz DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._lock_model('force', model);
    IF mode IS NULL OR mode NOT IN ('auto', 'production', 'candidate', 'fallback') THEN
        RAISE EXCEPTION 'retrain.force: mode must be auto, production, candidate or fallback, not %', coalesce(mode, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF until IS NOT NULL AND until <= now() THEN
        RAISE EXCEPTION 'retrain.force: until (%) is not in the future', until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE @extschema@.deployments d
       SET mode = force.mode, mode_until = CASE WHEN force.mode = 'auto' THEN NULL ELSE force.until END,
           updated_at = clock_timestamp()
     WHERE d.model = force.model;
    PERFORM @extschema@._log(model, NULL, 'forced', jsonb_build_object('mode', mode, 'until', until));
    RETURN mode;
END
$$;
COMMENT ON FUNCTION @extschema@.force(text, text, timestamptz) IS
    'Override routing: auto, production (everyone gets production), candidate (everyone gets the canary), fallback (route() returns NULL); expires by itself at until';

CREATE FUNCTION @extschema@.manifest(model text)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'model', m.name,
        'production', (SELECT jsonb_build_object('version', v.version, 'artifact_uri', v.artifact_uri,
                                                 'artifact_sha256', v.artifact_sha256, 'code_commit', v.code_commit,
                                                 'metrics', v.metrics)
                         FROM @extschema@.deployments d
                         JOIN @extschema@.model_versions v ON v.model = d.model AND v.version = d.production_version
                        WHERE d.model = m.name),
        'history', coalesce((SELECT jsonb_agg(jsonb_build_object('version', h.version,
                                                                 'artifact_sha256', v.artifact_sha256,
                                                                 'from', h.started_at, 'to', h.ended_at,
                                                                 'ended_by', h.ended_by) ORDER BY h.seq)
                               FROM @extschema@.production_history h
                               JOIN @extschema@.model_versions v ON v.model = h.model AND v.version = h.version
                              WHERE h.model = m.name), '[]'))
      FROM @extschema@.models m WHERE m.name = manifest.model
$$;
COMMENT ON FUNCTION @extschema@.manifest(text) IS
    'The production entry and the history of production versions with their SHA-256s, oldest first (manifest.history[n-1] is the one before the last)';

--------------------------------------------------------------------------
-- Monitoring data: the prediction log and its outcomes
--------------------------------------------------------------------------

-- Append-only and COPY-friendly: no foreign keys (so the tables can be
-- partitioned by time and loaded in bulk), indexed for time windows.
CREATE TABLE @extschema@.predictions (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model        text NOT NULL,
    version      text NOT NULL,
    unit_key     text,
    predicted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    score        pg_catalog.float8,
    latency_ms   pg_catalog.float8 CHECK (latency_ms >= 0),
    error        boolean NOT NULL DEFAULT false,
    features     jsonb
);
CREATE INDEX predictions_model_time ON @extschema@.predictions (model, predicted_at);
COMMENT ON SEQUENCE @extschema@.predictions_id_seq IS 'Ids of logged predictions';
COMMENT ON TABLE @extschema@.predictions IS
    'The prediction log: one row per prediction served (score: probability of the positive class, or the predicted value)';
COMMENT ON COLUMN @extschema@.predictions.score IS 'probability of the positive class (classification) or predicted value (regression)';
COMMENT ON COLUMN @extschema@.predictions.error IS 'the prediction failed (the application served its fallback)';
COMMENT ON COLUMN @extschema@.predictions.features IS 'the feature values scored, for drift checks';

CREATE TABLE @extschema@.outcomes (
    prediction_id bigint PRIMARY KEY,
    label         boolean,
    actual        pg_catalog.float8,
    observed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((label IS NULL) <> (actual IS NULL))
);
CREATE INDEX outcomes_observed_at ON @extschema@.outcomes (observed_at);
COMMENT ON TABLE @extschema@.outcomes IS
    'What happened: the label (classification) or actual value (regression) of a logged prediction';

CREATE FUNCTION @extschema@.log_prediction(model text, version text, unit_key text, score pg_catalog.float8,
                                           latency_ms pg_catalog.float8 DEFAULT NULL, error boolean DEFAULT false,
                                           features jsonb DEFAULT NULL,
                                           predicted_at timestamptz DEFAULT pg_catalog.now())
    RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        INSERT INTO @extschema@.predictions (model, version, unit_key, predicted_at, score, latency_ms, error, features)
        VALUES (model, version, unit_key, predicted_at, score, latency_ms, coalesce(error, false), features)
        RETURNING id;
    END;
COMMENT ON FUNCTION @extschema@.log_prediction(text, text, text, pg_catalog.float8, pg_catalog.float8, boolean, jsonb, timestamptz) IS
    'Log a prediction served; returns its id, for log_outcome()';

CREATE FUNCTION @extschema@._log_outcome(prediction_id bigint, label boolean, actual pg_catalog.float8,
                                         observed_at timestamptz)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    predicted timestamptz;
BEGIN
    IF prediction_id IS NULL OR observed_at IS NULL THEN
        RAISE EXCEPTION 'retrain.log_outcome: prediction_id and observed_at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF label IS NULL AND actual IS NULL THEN
        RAISE EXCEPTION 'retrain.log_outcome: the outcome must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF actual = 'NaN' OR actual IN ('Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'retrain.log_outcome: actual must be finite, not %', actual USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT p.predicted_at INTO predicted FROM @extschema@.predictions p WHERE p.id = _log_outcome.prediction_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.log_outcome: no prediction %', prediction_id USING ERRCODE = 'undefined_object';
    END IF;
    -- an outcome known before its prediction was made is a clock or join error
    IF observed_at < predicted THEN
        RAISE EXCEPTION 'retrain.log_outcome: observed_at % is before prediction %''s predicted_at %',
                        observed_at, prediction_id, predicted
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        INSERT INTO @extschema@.outcomes (prediction_id, label, actual, observed_at)
        VALUES (prediction_id, label, actual, observed_at);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'retrain.log_outcome: prediction % already has an outcome', prediction_id
            USING ERRCODE = 'unique_violation';
    END;
END
$$;
COMMENT ON FUNCTION @extschema@._log_outcome(bigint, boolean, pg_catalog.float8, timestamptz) IS
    'The body of both log_outcome() forms (internal)';

CREATE FUNCTION @extschema@.log_outcome(prediction_id bigint, label boolean,
                                        observed_at timestamptz DEFAULT pg_catalog.now())
    RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT @extschema@._log_outcome(prediction_id, label, NULL, observed_at);
    END;
COMMENT ON FUNCTION @extschema@.log_outcome(bigint, boolean, timestamptz) IS
    'Record the label of a logged prediction (classification), observed now or at observed_at (backfills)';

CREATE FUNCTION @extschema@.log_outcome(prediction_id bigint, actual pg_catalog.float8,
                                        observed_at timestamptz DEFAULT pg_catalog.now())
    RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT @extschema@._log_outcome(prediction_id, NULL, actual, observed_at);
    END;
COMMENT ON FUNCTION @extschema@.log_outcome(bigint, pg_catalog.float8, timestamptz) IS
    'Record the actual value of a logged prediction (regression), observed now or at observed_at (backfills)';

-- The daily report of the runbooks, as one query.
CREATE VIEW @extschema@.version_stats AS
SELECT p.model, p.version, date_trunc('day', p.predicted_at) AS day,
       count(*) AS predictions,
       count(DISTINCT p.unit_key) AS units,
       avg(greatest(p.score, 1 - p.score)) FILTER (WHERE m.task = 'binary_classification') AS mean_confidence,
       avg(p.latency_ms) AS mean_latency_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY p.latency_ms) AS p95_latency_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY p.latency_ms) AS p99_latency_ms,
       avg(p.error::integer)::pg_catalog.float8 AS error_rate,
       avg((o.prediction_id IS NOT NULL)::integer)::pg_catalog.float8 AS labelled_share,
       CASE m.task WHEN 'binary_classification' THEN 'auc' ELSE 'rmse' END AS metric,
       CASE m.task WHEN 'binary_classification' THEN @extschema@.auc(p.score, o.label)
                   ELSE @extschema@.rmse(p.score, o.actual) END AS metric_value
  FROM @extschema@.predictions p
  JOIN @extschema@.models m ON m.name = p.model
  LEFT JOIN @extschema@.outcomes o ON o.prediction_id = p.id
 GROUP BY p.model, p.version, date_trunc('day', p.predicted_at), m.task;
COMMENT ON VIEW @extschema@.version_stats IS
    'Per model, version and day: predictions, distinct units, mean confidence max(p, 1 - p), mean/p95/p99 latency, error rate, labelled share, and the main metric (AUC, or RMSE for regression)';

--------------------------------------------------------------------------
-- The retrain request queue
--------------------------------------------------------------------------

CREATE TABLE @extschema@.requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text NOT NULL REFERENCES @extschema@.models (name),
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'claimed', 'done', 'failed', 'cancelled')),
    reasons      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reasons) = 'array'),
    requested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    requested_by name NOT NULL,
    claimed_by   text,
    claimed_at   timestamptz,
    finished_at  timestamptz,
    version      text,
    message      text,
    CHECK ((status = 'claimed') = (claimed_at IS NOT NULL AND finished_at IS NULL) OR status <> 'claimed')
);
COMMENT ON SEQUENCE @extschema@.requests_id_seq IS 'Ids of retrain requests';
-- at most one open (or claimed) request per model, whoever races to make one
CREATE UNIQUE INDEX requests_one_open_per_model ON @extschema@.requests (model)
    WHERE status IN ('open', 'claimed');
COMMENT ON TABLE @extschema@.requests IS
    'Retraining requests: why, by whom, who trains it, and what came of it; at most one open request per model';
COMMENT ON INDEX @extschema@.requests_one_open_per_model IS 'At most one open or claimed request per model';

-- The one write path of the queue: make the model's request, or add the
-- reason to the open one.  why is {"trigger", "reason", "by"}; created says
-- which of the two happened, decided under the model's lock.
CREATE FUNCTION @extschema@._request(model text, why jsonb, OUT id bigint, OUT created boolean)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.requests;
BEGIN
    PERFORM @extschema@._lock_model('request_retrain', model);
    SELECT * INTO r FROM @extschema@.requests q
     WHERE q.model = _request.model AND q.status IN ('open', 'claimed');
    IF FOUND THEN
        -- one open request per model: the new reason joins it
        UPDATE @extschema@.requests q SET reasons = q.reasons || why WHERE q.id = r.id;
        PERFORM @extschema@._log(model, NULL, 'retrain_request_joined', jsonb_build_object('request', r.id, 'reason', why));
        id := r.id;
        created := false;
        RETURN;
    END IF;
    INSERT INTO @extschema@.requests (model, reasons, requested_by)
    VALUES (model, jsonb_build_array(why), @extschema@._actor())
    RETURNING * INTO r;
    PERFORM @extschema@._log(model, NULL, 'retrain_requested', jsonb_build_object('request', r.id, 'reasons', r.reasons));
    PERFORM pg_notify('retrain_requests',
                      jsonb_build_object('request_id', r.id, 'model', model, 'reasons', r.reasons)::text);
    id := r.id;
    created := true;
END
$$;
COMMENT ON FUNCTION @extschema@._request(text, jsonb) IS
    'Make the model''s retrain request or join its open one with a reason (internal)';

CREATE FUNCTION @extschema@.request_retrain(model text, reason text)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'retrain.request_retrain: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN (@extschema@._request(model, jsonb_build_object('trigger', 'manual', 'reason', reason,
                                                           'by', @extschema@._actor()))).id;
END
$$;COMMENT ON FUNCTION @extschema@.request_retrain(text, text) IS
    'Ask for a model to be retrained, with a reason; joins the model''s open request if there is one; returns the request id and sends NOTIFY retrain_requests';

CREATE FUNCTION @extschema@.claim_request(worker text)
    RETURNS SETOF @extschema@.requests
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.requests;
BEGIN
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'retrain.claim_request: worker must name the claimant' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@._begin_change();
    -- claims not finished within the model's claim_timeout go back to the queue
    FOR r IN
        SELECT q.* FROM @extschema@.requests q
         WHERE q.status = 'claimed'
           AND q.claimed_at < now() - (@extschema@.effective_policy(q.model)->'requests'->>'claim_timeout')::interval
         FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE @extschema@.requests q SET status = 'open', claimed_by = NULL, claimed_at = NULL WHERE q.id = r.id;
        PERFORM @extschema@._log(r.model, NULL, 'retrain_claim_expired',
                                 jsonb_build_object('request', r.id, 'worker', r.claimed_by));
    END LOOP;

    SELECT q.* INTO r FROM @extschema@.requests q
     WHERE q.status = 'open' ORDER BY q.id
     FOR UPDATE SKIP LOCKED LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE @extschema@.requests q SET status = 'claimed', claimed_by = worker, claimed_at = now()
     WHERE q.id = r.id RETURNING q.* INTO r;
    PERFORM @extschema@._log(r.model, NULL, 'retrain_claimed', jsonb_build_object('request', r.id, 'worker', worker));
    RETURN NEXT r;
END
$$;
COMMENT ON FUNCTION @extschema@.claim_request(text) IS
    'Take the oldest open retrain request for a trainer (FOR UPDATE SKIP LOCKED); claims older than the policy''s claim_timeout return to the queue first. Returns no row when there is nothing to do';

CREATE FUNCTION @extschema@.finish_request(id bigint, status text, version text DEFAULT NULL, message text DEFAULT NULL)
    RETURNS @extschema@.requests
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.requests;
BEGIN
    SELECT q.* INTO r FROM @extschema@.requests q WHERE q.id = finish_request.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.finish_request: no request %', coalesce(id::text, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM @extschema@._lock_model('finish_request', r.model);
    SELECT q.* INTO r FROM @extschema@.requests q WHERE q.id = finish_request.id FOR UPDATE;
    IF status IS NULL OR status NOT IN ('done', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'retrain.finish_request: status must be done, failed or cancelled, not %', coalesce(status, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.status NOT IN ('open', 'claimed') OR (status <> 'cancelled' AND r.status <> 'claimed') THEN
        RAISE EXCEPTION 'retrain.finish_request: request % is %, not %', id, r.status,
            CASE WHEN status = 'cancelled' THEN 'open or claimed' ELSE 'claimed' END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF version IS NOT NULL THEN
        PERFORM @extschema@._version('finish_request', r.model, version);
    END IF;
    UPDATE @extschema@.requests q
       SET status = finish_request.status, finished_at = now(), version = finish_request.version,
           message = finish_request.message
     WHERE q.id = r.id RETURNING q.* INTO r;
    PERFORM @extschema@._log(r.model, version, 'retrain_finished',
                             jsonb_build_object('request', r.id, 'status', status, 'message', message,
                                                'worker', r.claimed_by));
    RETURN r;
END
$$;
COMMENT ON FUNCTION @extschema@.finish_request(bigint, text, text, text) IS
    'Close a claimed request as done (with the version it produced) or failed, or cancel an open one';

--------------------------------------------------------------------------
-- The rollout guard
--------------------------------------------------------------------------

-- Canary against production over the canary's time so far.
-- Run a query as a role and never as more: the query becomes the body of a
-- temporary SECURITY DEFINER function owned by that role, called and
-- dropped at once.  Inside a SECURITY DEFINER function SET ROLE and SET
-- SESSION AUTHORIZATION are refused, so the query cannot climb back to the
-- privileges of the caller (the extension's owner); the function is STABLE,
-- so it cannot write either.  pg_temp comes last in its search_path, so a
-- caller's temporary table cannot stand in for one the query names.  The
-- result comes back as text of the given type; errors propagate, and the
-- rollback of the caller's (sub)transaction drops the function with it.
CREATE FUNCTION @extschema@._as_owner(owner name, returns regtype, search_path text, query text)
    RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = owner) THEN
        RAISE EXCEPTION 'the model''s owner "%" is not a role', owner USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('CREATE FUNCTION pg_temp._retrain_as_owner() RETURNS %s '
                   'LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %s AS %L', returns, search_path, query);
    EXECUTE format('ALTER FUNCTION pg_temp._retrain_as_owner() OWNER TO %I', owner);
    EXECUTE 'SELECT pg_temp._retrain_as_owner()::text' INTO result;
    DROP FUNCTION pg_temp._retrain_as_owner();
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@._as_owner(name, regtype, text, text) IS
    'Run a query with the privileges of a role and no more: its one value as text (internal)';

-- One of the owner's checks (eligibility or rollback): its boolean, or why
-- it has none.
CREATE FUNCTION @extschema@._run_owner_check(owner name, query text, OUT result boolean, OUT error text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    result := @extschema@._as_owner(owner, 'boolean', 'public, pg_catalog, pg_temp', query)::boolean;
EXCEPTION WHEN OTHERS THEN
    result := NULL;
    error := format('failed: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
END
$$;
COMMENT ON FUNCTION @extschema@._run_owner_check(name, text) IS
    'Run one owner-supplied check query with the owner''s privileges: its boolean, or the error (internal)';

--------------------------------------------------------------------------
-- Where a model's predictions are read from: retrain.predictions and
-- retrain.outcomes, or the model's own relation (set_source)
--------------------------------------------------------------------------

-- The columns a source relation may have.  Features come from a jsonb
-- column "features" or, without one, from every column not listed here
-- (the wide layout of most existing prediction logs).
CREATE FUNCTION @extschema@._source_layout()
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
CREATE FUNCTION @extschema@._qualified(relation regclass)
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
CREATE FUNCTION @extschema@._source_columns(fn text, relation regclass)
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

-- The FROM clause every read of a model's predictions uses: predictions as
-- p (model, version, predicted_at, score, latency_ms, error, features) and
-- their outcomes as o (prediction_id, set when labelled; label, actual,
-- observed_at).  The source is looked up and checked again at each read: it
-- may have been dropped, renamed or altered since set_source().
CREATE FUNCTION @extschema@._source_from(fn text, m @extschema@.models)
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
        -- an index probe per prediction (LIMIT keeps the planner from
        -- flattening it into a hash join that reads every model's
        -- outcomes for each model)
        RETURN '@extschema@.predictions p '
               'LEFT JOIN LATERAL (SELECT o.prediction_id, o.label, o.actual, o.observed_at FROM @extschema@.outcomes o '
               '                    WHERE o.prediction_id = p.id LIMIT 1) o ON true';
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
                  '%s AS latency_ms, %s AS error, %s AS features, %s AS label, %s AS actual, %s AS observed_at, s AS src '
                  'FROM %s s%s) p '
                  'CROSS JOIN LATERAL (SELECT CASE WHEN p.label IS NOT NULL OR p.actual IS NOT NULL THEN 0 END AS prediction_id, '
                  'p.label, p.actual, p.observed_at) o',
                  m.name,
                  CASE WHEN 'latency_ms' = ANY (cols) THEN 's.latency_ms::float8' ELSE 'NULL::float8' END,
                  CASE WHEN 'error' = ANY (cols) THEN 's.error' ELSE 'NULL::boolean' END,
                  features,
                  CASE WHEN 'label' = ANY (cols) THEN 's.label' ELSE 'NULL::boolean' END,
                  CASE WHEN 'actual' = ANY (cols) THEN 's.actual::float8' ELSE 'NULL::float8' END,
                  -- without observed_at, a label counts as known when its prediction was made
                  CASE WHEN 'observed_at' = ANY (cols) THEN 's.observed_at' ELSE 's.predicted_at' END,
                  @extschema@._qualified(rel),
                  CASE WHEN 'model' = ANY (cols) THEN format(' WHERE s.model = %L', m.name) ELSE '' END);
END
$$;
COMMENT ON FUNCTION @extschema@._source_from(text, @extschema@.models) IS
    'The FROM clause (p: predictions, o: outcomes) that reads a model''s predictions from its source (internal)';

-- The feature columns of a source in the wide layout (no jsonb column
-- "features"): every column that is not a documented one, in table order.
-- NULL when features come from a jsonb column.
CREATE FUNCTION @extschema@._source_features(m @extschema@.models)
    RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT a.attname::text FROM pg_attribute a
                  WHERE a.attrelid = to_regclass(m.source) AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attname::text NOT IN (SELECT l.name FROM @extschema@._source_layout() l)
                  ORDER BY a.attnum)
     WHERE m.source IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = to_regclass(m.source) AND a.attname = 'features' AND NOT a.attisdropped)
$$;
COMMENT ON FUNCTION @extschema@._source_features(@extschema@.models) IS
    'A wide source''s feature columns, or NULL when features come from retrain.predictions or a jsonb column (internal)';

-- Run a read of a model's predictions that yields one jsonb value: as the
-- extension over retrain's own tables, as the model's owner over its own
-- source, so that set_source() gives nobody more than the owner may read.
CREATE FUNCTION @extschema@._read(m @extschema@.models, query text)
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
    RETURN @extschema@._as_owner(m.owner, 'jsonb', 'pg_catalog, pg_temp', query)::jsonb;
END
$$;
COMMENT ON FUNCTION @extschema@._read(@extschema@.models, text) IS
    'Run a one-value read of a model''s predictions with the privileges its source calls for (internal)';

CREATE FUNCTION @extschema@.set_source(model text, relation regclass)
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
    m := @extschema@._lock_model('set_source', model);
    -- The source is read with the owner's privileges: only who may act as
    -- the owner may choose what the owner's privileges read.
    IF NOT pg_has_role(@extschema@._actor(), m.owner, 'MEMBER') THEN
        RAISE EXCEPTION 'retrain.set_source: only members of the owner role of model "%" may set its source', model
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The source is read with the owner''s privileges.';
    END IF;
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

-- A policy's named checks: lower-case names to non-empty query strings.
CREATE FUNCTION @extschema@._valid_checks(checks jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_typeof(checks) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(checks) q
                        WHERE q.key !~ '^[a-z][a-z0-9_]*$'
                           OR jsonb_typeof(q.value) <> 'string'
                           OR btrim(q.value #>> '{}') = '')
$$;
COMMENT ON FUNCTION @extschema@._valid_checks(jsonb) IS
    'Whether a policy''s named checks are an object of lower-case names to non-empty queries (internal)';

-- A duration for a message, whatever the session's IntervalStyle: seconds,
-- minutes, hours or days, in the largest unit that keeps it readable.
CREATE FUNCTION @extschema@._duration(d interval)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s < 120 THEN round(s)::text || ' s'
                WHEN s < 7200 THEN round(s / 60, 1)::text || ' min'
                WHEN s < 172800 THEN round(s / 3600, 1)::text || ' h'
                ELSE round(s / 86400, 1)::text || ' days' END
      FROM (SELECT extract(epoch FROM d) AS s) x
$$;
COMMENT ON FUNCTION @extschema@._duration(interval) IS
    'An interval as "12 s", "4.5 min", "25.0 h" or "3.0 days" for messages (internal)';

CREATE FUNCTION @extschema@.guard_rollouts(at timestamptz DEFAULT now())
    RETURNS TABLE (model text, canary text, decision text, reason text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off
AS $$
DECLARE
    d @extschema@.deployments;
    m @extschema@.models;
    pol jsonb;
    since timestamptz;
    step_since timestamptz;
    pct float8;
    c record;
    p record;
    steps jsonb;
    step_index integer;
    dwell interval;
    why text;
    owner_check record;
    outcome record;
    check_failed text;
    src text;
    metric text;
    -- canary or production over the canary's time so far
    query constant text := 'SELECT to_jsonb(x) FROM (SELECT count(*) AS n, avg(p.error::integer)::float8 AS error_rate, '
                           'percentile_cont(%s) WITHIN GROUP (ORDER BY p.latency_ms) AS latency, %s AS metric '
                           'FROM %s WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at < %L) x';
BEGIN
    FOR d IN SELECT * FROM @extschema@.deployments dd WHERE dd.canary_version IS NOT NULL ORDER BY dd.model LOOP
        BEGIN
            m := @extschema@._lock_model('guard_rollouts', d.model);
            -- re-read under the lock: another session may have moved it
            SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = m.name;
            CONTINUE WHEN d.canary_version IS NULL;
            pol := @extschema@.effective_policy(m.name);
            pct := (pol->'rollback'->>'latency_percentile')::float8 / 100;
            -- the canary's time: since it was promoted; the step's: since the last change of traffic
            SELECT max(l.at) INTO since FROM @extschema@.log l
             WHERE l.model = m.name AND l.version = d.canary_version AND l.event = 'promoted';
            SELECT max(l.at) INTO step_since FROM @extschema@.log l
             WHERE l.model = m.name AND l.version = d.canary_version
               AND l.event IN ('promoted', 'advanced', 'traffic_changed');

            -- canary and production over the canary's time so far, each row
            -- {n, error_rate, latency, metric}
            src := @extschema@._source_from('guard_rollouts', m);
            metric := CASE m.task WHEN 'binary_classification' THEN '@extschema@.auc(p.score, o.label)'
                                  ELSE '-@extschema@.rmse(p.score, o.actual)' END;
            SELECT * INTO c FROM jsonb_to_record(@extschema@._read(m, format(query, pct, metric, src, m.name, d.canary_version, since, at)))
                AS x(n bigint, error_rate float8, latency float8, metric float8);
            SELECT * INTO p FROM jsonb_to_record(@extschema@._read(m, format(query, pct, metric, src, m.name, d.production_version, since, at)))
                AS x(n bigint, error_rate float8, latency float8, metric float8);

            model := m.name;
            canary := d.canary_version;
            why := NULL;
            -- The owner's rollback checks ("three critical feedback labels
            -- within an hour") act at once, however few predictions the
            -- canary has; one that fails keeps the canary where it is.
            check_failed := NULL;
            FOR owner_check IN SELECT e.key, e.value #>> '{}' AS query
                                 FROM jsonb_each(coalesce(pol->'rollback'->'checks', '{}')) e ORDER BY e.key LOOP
                SELECT * INTO outcome FROM @extschema@._run_owner_check(m.owner, owner_check.query);
                IF outcome.error IS NOT NULL THEN
                    check_failed := coalesce(check_failed || '; ', '')
                                    || format('rollback check %s %s', owner_check.key, outcome.error);
                ELSIF outcome.result AND why IS NULL THEN
                    why := format('rollback check %s returned true', owner_check.key);
                END IF;
            END LOOP;
            IF why IS NOT NULL THEN
                decision := 'rollback';
                reason := why;
                PERFORM @extschema@.rollback(m.name, 'rollout guard: ' || why);
            ELSIF check_failed IS NOT NULL THEN
                decision := 'hold';
                reason := check_failed;
            ELSIF c.n < (pol->'rollback'->>'min_predictions')::float8 THEN
                decision := 'wait';
                reason := format('%s of %s predictions needed to judge the canary', c.n, pol->'rollback'->>'min_predictions');
            ELSE
                IF c.error_rate > (pol->'rollback'->>'max_error_rate')::float8 THEN
                    why := format('error rate %s > %s', round(c.error_rate::numeric, 4), pol->'rollback'->>'max_error_rate');
                ELSIF p.latency > 0 AND c.latency > p.latency * (1 + (pol->'rollback'->>'max_latency_increase')::float8) THEN
                    why := format('p%s latency %s ms > %s ms (production %s ms + %s%%)', pol->'rollback'->>'latency_percentile',
                                  round(c.latency::numeric, 1),
                                  round((p.latency * (1 + (pol->'rollback'->>'max_latency_increase')::float8))::numeric, 1),
                                  round(p.latency::numeric, 1),
                                  round(100 * (pol->'rollback'->>'max_latency_increase')::numeric));
                ELSIF pol->'rollback' ? 'max_metric_drop' AND c.metric IS NOT NULL AND p.metric IS NOT NULL
                      AND c.metric < p.metric - (pol->'rollback'->>'max_metric_drop')::float8 THEN
                    why := format('%s %s below production %s by more than %s',
                                  CASE m.task WHEN 'binary_classification' THEN 'AUC' ELSE '-RMSE' END,
                                  round(c.metric::numeric, 4), round(p.metric::numeric, 4),
                                  pol->'rollback'->>'max_metric_drop');
                END IF;
                IF why IS NOT NULL THEN
                    decision := 'rollback';
                    reason := why;
                    PERFORM @extschema@.rollback(m.name, 'rollout guard: ' || why);
                ELSE
                    steps := pol->'rollout'->'steps';
                    SELECT min(i) - 1 INTO step_index
                      FROM jsonb_array_elements_text(steps) WITH ORDINALITY AS s(v, i) WHERE v::numeric >= d.canary_percent;
                    dwell := coalesce((pol->'rollout'->'dwell'->>step_index)::interval, interval '0');
                    IF at - step_since >= dwell THEN
                        decision := 'advance';
                        reason := format('healthy for %s at %s%%',
                                         @extschema@._duration(at - step_since), trim_scale(d.canary_percent));
                        PERFORM @extschema@.advance(m.name);
                    ELSE
                        decision := 'hold';
                        reason := format('healthy; %s of %s at %s%% so far',
                                         @extschema@._duration(at - step_since), @extschema@._duration(dwell),
                                         trim_scale(d.canary_percent));
                    END IF;
                END IF;
            END IF;
            PERFORM @extschema@._log(m.name, d.canary_version, 'guard',
                jsonb_build_object('decision', decision, 'reason', reason,
                                   'canary', jsonb_build_object('n', c.n, 'error_rate', c.error_rate, 'latency', c.latency, 'metric', c.metric),
                                   'production', jsonb_build_object('n', p.n, 'error_rate', p.error_rate, 'latency', p.latency, 'metric', p.metric)));
            RETURN NEXT;
        EXCEPTION WHEN OTHERS THEN
            -- one model's failure is logged and skipped; the others go on
            model := d.model;
            canary := d.canary_version;
            decision := 'error';
            reason := SQLERRM;
            PERFORM @extschema@._log(d.model, d.canary_version, 'guard_failed',
                                     jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
            RETURN NEXT;
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.guard_rollouts(timestamptz) IS
    'For each running canary: roll back on error rate, latency or metric limits of the policy or when one of the owner''s rollback checks returns true, advance after the step''s dwell time when healthy, else hold; every decision logged';

--------------------------------------------------------------------------
-- Retraining triggers: check() evaluates, run_checks() acts
--------------------------------------------------------------------------

-- The last occurrence of each model's schedule that made a request, so that
-- an occurrence fires once however often checks run.
CREATE TABLE @extschema@.trigger_state (
    model           text NOT NULL REFERENCES @extschema@.models (name),
    trigger         text NOT NULL,
    last_occurrence timestamptz NOT NULL,
    PRIMARY KEY (model, trigger)
);
COMMENT ON TABLE @extschema@.trigger_state IS 'Per model and trigger, the last schedule occurrence that fired (internal state of run_checks)';

-- The latest occurrence of a schedule at or before at (UTC), or NULL.
CREATE FUNCTION @extschema@.schedule_occurrence(schedule jsonb, at timestamptz, last_training timestamptz DEFAULT NULL)
    RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamp := at AT TIME ZONE 'UTC';
    tod interval;
    dow integer := array_position(ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'],
                                  schedule->>'weekday') - 1;
    month_start timestamp;
    candidate timestamp;
    i integer;
    n float8;
BEGIN
    IF schedule IS NULL OR at IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT @extschema@._valid_schedule(schedule) THEN
        RAISE EXCEPTION 'retrain.schedule_occurrence: invalid schedule %', schedule
            USING ERRCODE = 'invalid_parameter_value', HINT = @extschema@._schedule_hint();
    END IF;
    tod := coalesce((schedule->>'at')::time, '00:00')::interval;
    IF schedule ? 'interval' THEN
        -- every interval since the last training: estimate how many fit
        -- (months count as 30 days in the estimate), then step to the
        -- exact last one, which calendar arithmetic decides
        IF last_training IS NULL OR last_training + (schedule->>'interval')::interval > at THEN
            RETURN NULL;
        END IF;
        n := greatest(1, floor(extract(epoch FROM at - last_training)
                               / extract(epoch FROM (schedule->>'interval')::interval)));
        WHILE n > 1 AND last_training + n * (schedule->>'interval')::interval > at LOOP
            n := n - 1;
        END LOOP;
        WHILE last_training + (n + 1) * (schedule->>'interval')::interval <= at LOOP
            n := n + 1;
        END LOOP;
        RETURN last_training + n * (schedule->>'interval')::interval;
    END IF;
    IF schedule->>'every' = 'week' THEN
        candidate := date_trunc('day', t) - ((extract(dow FROM t)::integer - dow + 7) % 7) * interval '1 day' + tod;
        IF candidate > t THEN
            candidate := candidate - interval '7 days';
        END IF;
        RETURN candidate AT TIME ZONE 'UTC';
    END IF;
    -- every month: this month's occurrence, else the one before (a fifth
    -- weekday is missing in some months: look further back)
    month_start := date_trunc('month', t);
    FOR i IN 0 .. 12 LOOP
        IF schedule ? 'day' THEN
            candidate := month_start + ((schedule->>'day')::numeric::integer - 1) * interval '1 day' + tod;
        ELSE
            candidate := month_start + ((dow - extract(dow FROM month_start)::integer + 7) % 7) * interval '1 day'
                         + ((schedule->>'nth')::numeric::integer - 1) * interval '7 days' + tod;
            IF date_trunc('month', candidate) <> month_start THEN
                candidate := NULL;
            END IF;
        END IF;
        IF candidate IS NOT NULL AND candidate <= t THEN
            RETURN candidate AT TIME ZONE 'UTC';
        END IF;
        month_start := month_start - interval '1 month';
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_occurrence(jsonb, timestamptz, timestamptz) IS
    'The latest occurrence at or before at of a schedule trigger (weekly, monthly on a day or the nth weekday, or an interval since the last training); times are UTC';

CREATE FUNCTION @extschema@.check(model text, at timestamptz DEFAULT now())
    RETURNS TABLE (trigger text, fired boolean, observed pg_catalog.float8, threshold pg_catalog.float8,
                   eligible boolean, detail jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- one query per model, of moderate size: compiling it costs more than it saves
    SET jit = off
AS $$
DECLARE
    -- "check" is a reserved word: the model argument is named $1 below
    m @extschema@.models;
    pol jsonb;
    trg jsonb;
    d @extschema@.deployments;
    prod @extschema@.model_versions;
    last_training timestamptz;
    new_labels bigint := 0;
    training_rows bigint;
    is_eligible boolean;
    min_labels numeric;
    windows interval[];
    max_window interval;
    select_list text[] := '{}';
    b @extschema@.baselines;
    feats @extschema@.baselines[] := '{}';
    r jsonb;
    psis float8[] := '{}';
    psi float8;
    counts jsonb;
    actual float8[];
    metric text;
    higher_better boolean;
    registered float8;
    value float8;
    drop_ float8;
    occurrence timestamptz;
    last_fired timestamptz;
    latest_features text[];
    idx integer;
    eligibility jsonb;
    failed jsonb := '{}';
    owner_check record;
    outcome record;
    src text;
    wide text[];
    fexpr text;
    in_flight jsonb;
    by_feature jsonb := '{}';
BEGIN
    IF $1 IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'retrain.check: model and at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.check: unknown model "%"', model USING ERRCODE = 'undefined_object';
    END IF;
    pol := @extschema@.effective_policy(model);
    trg := coalesce(pol->'triggers', '{}');
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = $1;
    IF d.production_version IS NOT NULL THEN
        SELECT * INTO prod FROM @extschema@.model_versions mv
         WHERE mv.model = $1 AND mv.version = d.production_version;
        last_training := coalesce(upper(prod.data_range), prod.registered_at);
    END IF;

    -- Labels that arrived since the last training: data growth and
    -- eligibility.  EXECUTE plans it for this model's values each time: the
    -- generic plan PL/pgSQL settles on after five calls hash-joins every
    -- model's outcomes, three times slower on a busy table.
    src := @extschema@._source_from('check', m);
    wide := @extschema@._source_features(m);
    IF last_training IS NOT NULL AND m.source IS NOT NULL THEN
        new_labels := @extschema@._read(m, format('SELECT to_jsonb(count(*)) FROM %s '
                                                  'WHERE o.prediction_id IS NOT NULL AND o.observed_at > %L AND o.observed_at <= %L',
                                                  src, last_training, at));
    ELSIF last_training IS NOT NULL THEN
        EXECUTE 'SELECT count(*) FROM @extschema@.outcomes o '
                'JOIN @extschema@.predictions p ON p.id = o.prediction_id '
                'WHERE p.model = $1 AND o.observed_at > $2 AND o.observed_at <= $3'
           INTO new_labels USING $1, last_training, at;
    END IF;
    min_labels := coalesce((pol->'eligibility'->>'min_new_labels')::numeric, 0);
    -- the owner's named checks, each run with the owner's privileges
    FOR owner_check IN SELECT e.key, e.value #>> '{}' AS query
                         FROM jsonb_each(coalesce(pol->'eligibility'->'checks', '{}')) e ORDER BY e.key LOOP
        SELECT * INTO outcome FROM @extschema@._run_owner_check(m.owner, owner_check.query);
        IF outcome.result IS NOT TRUE THEN
            failed := failed || jsonb_build_object(owner_check.key,
                                                   coalesce(outcome.error,
                                                            format('returned %s', coalesce(outcome.result::text, 'NULL or no row'))));
        END IF;
    END LOOP;
    -- The answer to the last request may be on its way: a version trained
    -- for it and not yet released or discarded.  Until it is (or the
    -- cooldown passes), the production version's drift or metric drop that
    -- made the request would only make the same request again.
    SELECT jsonb_build_object('request', q.id, 'version', q.version, 'stage', mv.stage,
                              'until', q.finished_at + (pol->'requests'->>'cooldown')::interval)
      INTO in_flight
      FROM @extschema@.requests q
      JOIN @extschema@.model_versions mv ON mv.model = q.model AND mv.version = q.version
     WHERE q.model = $1 AND q.status = 'done' AND q.finished_at <= at
       AND q.finished_at > at - (pol->'requests'->>'cooldown')::interval
       AND mv.stage IN ('registered', 'shadow', 'canary')
     ORDER BY q.finished_at DESC LIMIT 1;
    is_eligible := new_labels >= min_labels AND failed = '{}' AND in_flight IS NULL;
    eligibility := jsonb_build_object('eligibility',
                                      jsonb_build_object('new_labels', new_labels, 'min_new_labels', min_labels,
                                                         'failed_checks', failed, 'in_flight', in_flight));

    -- One scan of the production version's recent predictions serves
    -- drift, performance and confidence, each with its own window.
    IF prod.version IS NOT NULL AND trg ?| ARRAY['drift', 'performance', 'confidence'] THEN
        select_list := select_list || 'to_jsonb(count(*))'::text;
        IF trg ? 'confidence' THEN
            select_list := select_list || format(
                'to_jsonb(avg(greatest(p.score, 1 - p.score)) FILTER (WHERE p.predicted_at >= %L))',
                at - coalesce(trg->'confidence'->>'window', '7 days')::interval);
        END IF;
        IF trg ? 'performance' THEN
            metric := trg->'performance'->>'metric';
            select_list := select_list
                || format('to_jsonb(count(o.prediction_id) FILTER (WHERE p.predicted_at >= %L))',
                          at - coalesce(trg->'performance'->>'window', '7 days')::interval)
                || format('to_jsonb(%s FILTER (WHERE p.predicted_at >= %L))',
                          CASE WHEN metric IN ('f1', 'precision', 'recall', 'accuracy')
                                   THEN format('@extschema@.%I(p.score, o.label, %s)', metric,
                                               coalesce(trg->'performance'->>'threshold', '0.5'))
                               WHEN metric IN ('auc', 'brier', 'log_loss') THEN format('@extschema@.%I(p.score, o.label)', metric)
                               ELSE format('@extschema@.%I(p.score, o.actual)', metric) END,
                          at - coalesce(trg->'performance'->>'window', '7 days')::interval);
        END IF;
        IF trg ? 'drift' THEN
            FOR b IN SELECT * FROM @extschema@.baselines bl
                      WHERE bl.model = $1 AND bl.version = prod.version ORDER BY bl.feature LOOP
                feats := feats || b;
                -- a feature the wide source no longer has counts as missing
                fexpr := CASE WHEN wide IS NULL THEN format('(p.features->>%L)', b.feature)
                              WHEN b.feature = ANY (wide) THEN format('(p.src).%I::text', b.feature)
                              ELSE 'NULL::text' END;
                select_list := select_list || CASE WHEN b.kind = 'numeric' THEN
                    format('to_jsonb(@extschema@.histogram_missing(%s::float8, %L::float8[]) FILTER (WHERE p.predicted_at >= %L))',
                           fexpr, coalesce(b.edges, '{}'),
                           at - coalesce(trg->'drift'->>'window', '7 days')::interval)
                  ELSE
                    format('to_jsonb(@extschema@.category_counts(%s) FILTER (WHERE p.predicted_at >= %L))',
                           fexpr, at - coalesce(trg->'drift'->>'window', '7 days')::interval)
                  END;
            END LOOP;
        END IF;
        SELECT max(w) INTO max_window FROM unnest(ARRAY[
            CASE WHEN trg ? 'confidence' THEN coalesce(trg->'confidence'->>'window', '7 days')::interval END,
            CASE WHEN trg ? 'performance' THEN coalesce(trg->'performance'->>'window', '7 days')::interval END,
            CASE WHEN trg ? 'drift' THEN coalesce(trg->'drift'->>'window', '7 days')::interval END]) w;
        r := @extschema@._read(m, format('SELECT to_jsonb(ARRAY[%s]) FROM %s '
                                         'WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at < %L',
                                         array_to_string(select_list, ', '), src, model, prod.version, at - max_window, at));
    END IF;
    idx := 1;

    IF trg ? 'confidence' THEN
        trigger := 'confidence';
        observed := (r->>idx)::float8;
        threshold := (trg->'confidence'->>'min')::float8;
        fired := coalesce(observed < threshold, false);
        eligible := is_eligible;
        detail := jsonb_build_object('window', coalesce(trg->'confidence'->>'window', '7 days'), 'predictions', r->0);
        idx := idx + 1;
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'performance' THEN
        trigger := 'performance';
        metric := trg->'performance'->>'metric';
        higher_better := metric IN ('auc', 'f1', 'precision', 'recall', 'accuracy');
        registered := (prod.metrics->>metric)::float8;
        value := (r->>(idx + 1))::float8;
        drop_ := CASE WHEN higher_better THEN registered - value ELSE value - registered END;
        observed := drop_;
        threshold := (trg->'performance'->>'max_drop')::float8;
        fired := coalesce((r->>idx)::numeric, 0) >= coalesce((trg->'performance'->>'min_labels')::numeric, 100)
                 AND (coalesce(drop_ > (trg->'performance'->>'max_drop')::float8, false)
                      OR coalesce(drop_ / nullif(abs(registered), 0) > (trg->'performance'->>'max_relative_drop')::float8, false));
        eligible := is_eligible;
        detail := jsonb_build_object('metric', metric, 'value', value, 'registered', registered,
                                     'relative_drop', drop_ / nullif(abs(registered), 0),
                                     'max_relative_drop', trg->'performance'->'max_relative_drop',
                                     'labelled', r->idx, 'min_labels', coalesce(trg->'performance'->'min_labels', '100'));
        idx := idx + 2;
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'drift' THEN
        FOR i IN 1 .. cardinality(feats) LOOP
            b := feats[i];
            counts := r->idx;
            idx := idx + 1;
            psi := NULL;
            IF b.kind = 'numeric' AND jsonb_typeof(counts) = 'array' AND b.expected IS NOT NULL THEN
                actual := ARRAY(SELECT c::float8 FROM jsonb_array_elements_text(counts) WITH ORDINALITY AS e(c, o) ORDER BY o);
                actual := actual[1:cardinality(actual) - 1];
                IF (SELECT sum(c) FROM unnest(actual) c) > 0 THEN
                    psi := @extschema@.psi(b.expected, actual);
                END IF;
            ELSIF b.kind = 'categorical' AND jsonb_typeof(counts) = 'object' AND b.categories IS NOT NULL THEN
                psi := @extschema@.psi(b.categories, counts);
            END IF;
            IF psi IS NOT NULL THEN
                psis := psis || psi;
                by_feature := by_feature || jsonb_build_object(b.feature, psi);
            END IF;
        END LOOP;
        trigger := 'drift';
        threshold := coalesce((trg->'drift'->>'psi')::float8, 0.25);
        observed := CASE coalesce(trg->'drift'->>'aggregate', 'max')
                        WHEN 'max' THEN (SELECT max(x) FROM unnest(psis) x)
                        WHEN 'mean' THEN (SELECT avg(x) FROM unnest(psis) x)
                        ELSE (SELECT avg((x > threshold)::integer) FROM unnest(psis) x) END;
        fired := CASE coalesce(trg->'drift'->>'aggregate', 'max')
                     WHEN 'share' THEN coalesce(observed >= coalesce((trg->'drift'->>'share')::float8, 0.5), false)
                     ELSE coalesce(observed > threshold, false) END;
        eligible := is_eligible;
        detail := jsonb_build_object('aggregate', coalesce(trg->'drift'->>'aggregate', 'max'), 'features', cardinality(psis),
                                     'psi', to_jsonb(psis), 'by_feature', by_feature,
                                     'window', coalesce(trg->'drift'->>'window', '7 days'));
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'data_growth' THEN
        SELECT max(bl.row_count) INTO training_rows FROM @extschema@.baselines bl
         WHERE bl.model = $1 AND bl.version = prod.version;
        trigger := 'data_growth';
        observed := new_labels;
        threshold := least((trg->'data_growth'->>'count')::float8,
                           (trg->'data_growth'->>'share')::float8 * training_rows);
        fired := last_training IS NOT NULL AND coalesce(observed >= threshold, false);
        eligible := is_eligible;
        detail := jsonb_build_object('new_labels', new_labels, 'since', last_training, 'training_rows', training_rows);
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'schedule' THEN
        occurrence := @extschema@.schedule_occurrence(trg->'schedule', at, last_training);
        SELECT ts.last_occurrence INTO last_fired FROM @extschema@.trigger_state ts
         WHERE ts.model = $1 AND ts.trigger = 'schedule';
        trigger := 'schedule';
        observed := NULL;
        threshold := NULL;
        fired := occurrence IS NOT NULL AND occurrence >= m.created_at
                 AND occurrence > coalesce(last_fired, '-infinity');
        eligible := is_eligible;
        detail := jsonb_build_object('occurrence', occurrence, 'last_fired', last_fired);
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'feature_change' THEN
        IF wide IS NOT NULL THEN
            -- the wide source's columns are its features
            latest_features := ARRAY(SELECT f FROM unnest(wide) f ORDER BY 1);
        ELSE
            -- the features of the latest prediction served
            latest_features := ARRAY(SELECT jsonb_array_elements_text(@extschema@._read(m, format(
                'SELECT to_jsonb(ARRAY(SELECT jsonb_object_keys(p.features) ORDER BY 1)) FROM %s '
                'WHERE p.model = %L AND p.version = %L AND p.predicted_at < %L AND p.features IS NOT NULL '
                'ORDER BY p.predicted_at DESC LIMIT 1', src, model, prod.version, at))));
            IF cardinality(latest_features) = 0 THEN
                latest_features := NULL;
            END IF;
        END IF;
        trigger := 'feature_change';
        observed := NULL;
        threshold := NULL;
        fired := prod.features IS NOT NULL AND latest_features IS NOT NULL
                 AND NOT (prod.features @> latest_features AND latest_features @> prod.features);
        eligible := is_eligible;
        detail := jsonb_build_object('trained_on', prod.features, 'served',
                                     latest_features,
                                     'added', (SELECT jsonb_agg(f) FROM unnest(latest_features) f WHERE NOT f = ANY (prod.features)),
                                     'dropped', (SELECT jsonb_agg(f) FROM unnest(prod.features) f WHERE NOT f = ANY (latest_features)));
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.check(text, timestamptz) IS
    'Evaluate a model''s retraining triggers at a time without changing anything: per trigger, whether it fired, what was observed against what threshold, and whether the model is eligible (min_new_labels and the owner''s named checks)';

CREATE FUNCTION @extschema@.run_checks()
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text;
    c record;
    reasons text[];
    fired_triggers text[];
    schedule_occurrence_ timestamptz;
    request_id bigint;
    created boolean;
    made integer := 0;
BEGIN
    FOR m IN SELECT name FROM @extschema@.models ORDER BY name LOOP
        BEGIN
            reasons := '{}';
            fired_triggers := '{}';
            schedule_occurrence_ := NULL;
            request_id := NULL;
            FOR c IN SELECT * FROM @extschema@.check(m, now()) LOOP
                IF c.fired AND c.eligible THEN
                    fired_triggers := fired_triggers || c.trigger;
                    reasons := reasons || format('%s: %s', c.trigger,
                        CASE WHEN c.observed IS NOT NULL
                             THEN format('%s against %s', round(c.observed::numeric, 4), round(c.threshold::numeric, 4))
                             ELSE coalesce(c.detail->>'occurrence', c.detail::text) END);
                    IF c.trigger = 'schedule' THEN
                        schedule_occurrence_ := (c.detail->>'occurrence')::timestamptz;
                    END IF;
                END IF;
            END LOOP;
            IF cardinality(reasons) > 0 THEN
                SELECT q.id, q.created INTO request_id, created
                  FROM @extschema@._request(m, jsonb_build_object('trigger', array_to_string(fired_triggers, ', '),
                                                                  'reason', array_to_string(reasons, '; '),
                                                                  'by', @extschema@._actor())) q;
                IF created THEN
                    made := made + 1;
                END IF;
                IF schedule_occurrence_ IS NOT NULL THEN
                    INSERT INTO @extschema@.trigger_state VALUES (m, 'schedule', schedule_occurrence_)
                    ON CONFLICT (model, trigger) DO UPDATE SET last_occurrence = excluded.last_occurrence;
                END IF;
            END IF;
            PERFORM @extschema@._log(m, NULL, 'checked',
                                     jsonb_build_object('fired', fired_triggers, 'request', request_id));
        EXCEPTION WHEN OTHERS THEN
            -- one model's failure is logged and skipped; the others go on
            PERFORM @extschema@._log(m, NULL, 'check_failed', jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
        END;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION @extschema@.run_checks() IS
    'Check every model''s triggers now; for fired and eligible ones make (or join) the model''s retrain request; log each decision; returns the number of new requests';

--------------------------------------------------------------------------
-- The check cycle as a pg_cron job (the background worker runs the same)
--------------------------------------------------------------------------

CREATE FUNCTION @extschema@._require_pg_cron(fn text)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'retrain.%: pg_cron is not installed in database "%"', fn, current_database()
            USING ERRCODE = 'undefined_object',
                  HINT = 'Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name to this database and CREATE EXTENSION pg_cron; or let retrain''s background worker run the checks (retrain.naptime).';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._require_pg_cron(text) IS 'Fail with a hint when pg_cron is missing (internal)';

CREATE FUNCTION @extschema@.schedule_checks(cron text DEFAULT '*/15 * * * *')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM @extschema@._require_pg_cron('schedule_checks');
    PERFORM @extschema@._begin_change();
    IF cron IS NULL THEN
        RAISE EXCEPTION 'retrain.schedule_checks: cron must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a job of the same name is replaced
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
      USING 'retrain-checks', cron, 'SELECT retrain.run_checks(); SELECT count(*) FROM retrain.guard_rollouts()';
    PERFORM @extschema@._log(NULL, NULL, 'checks_scheduled', jsonb_build_object('cron', cron, 'job', job));
    RETURN job;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_checks(text) IS
    'Create (or replace) the pg_cron job "retrain-checks" that runs run_checks() and guard_rollouts() on a cron schedule; returns the job id';

CREATE FUNCTION @extschema@.unschedule_checks()
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_ boolean;
BEGIN
    PERFORM @extschema@._require_pg_cron('unschedule_checks');
    PERFORM @extschema@._begin_change();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO found_ USING 'retrain-checks';
    IF found_ THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING 'retrain-checks';
        PERFORM @extschema@._log(NULL, NULL, 'checks_unscheduled', '{}');
    END IF;
    RETURN found_;
END
$$;
COMMENT ON FUNCTION @extschema@.unschedule_checks() IS
    'Remove the pg_cron job "retrain-checks"; false if there was none';

-- Privileges: readers see everything; only granted roles change state.
REVOKE ALL ON @extschema@.models, @extschema@.model_versions, @extschema@.approvals, @extschema@.evaluations,
              @extschema@.deployments, @extschema@.production_history, @extschema@.log, @extschema@.log_head
    FROM PUBLIC;
GRANT SELECT ON @extschema@.models, @extschema@.model_versions, @extschema@.approvals, @extschema@.evaluations,
                @extschema@.deployments, @extschema@.production_history, @extschema@.log
    TO PUBLIC;
REVOKE ALL ON FUNCTION
    @extschema@.register_model(text, text, text),
    @extschema@.set_policy(text, jsonb),
    @extschema@.set_source(text, regclass),
    @extschema@.register_version(text, text, text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[]),
    @extschema@.evaluate(text, text),
    @extschema@.approve(text, text, text, text),
    @extschema@.promote(text, text, text, text),
    @extschema@.set_traffic(text, numeric),
    @extschema@.advance(text),
    @extschema@.rollback(text, text),
    @extschema@.force(text, text, timestamptz),
    @extschema@.log_prediction(text, text, text, pg_catalog.float8, pg_catalog.float8, boolean, jsonb, timestamptz),
    @extschema@.log_outcome(bigint, boolean, timestamptz),
    @extschema@.log_outcome(bigint, pg_catalog.float8, timestamptz),
    @extschema@.request_retrain(text, text),
    @extschema@.claim_request(text),
    @extschema@.finish_request(bigint, text, text, text),
    @extschema@.guard_rollouts(timestamptz),
    @extschema@.check(text, timestamptz),
    @extschema@.run_checks(),
    @extschema@.schedule_checks(text),
    @extschema@.unschedule_checks()
    FROM PUBLIC;
GRANT SELECT ON @extschema@.trigger_state TO PUBLIC;
-- The prediction log is application data: not for every role.
REVOKE ALL ON @extschema@.predictions, @extschema@.outcomes, @extschema@.version_stats FROM PUBLIC;
REVOKE ALL ON @extschema@.requests FROM PUBLIC;
GRANT SELECT ON @extschema@.requests TO PUBLIC;

-- pg_dump keeps the data of these tables (they belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.approvals', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.evaluations', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.production_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_head', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.baselines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.predictions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outcomes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.requests', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.trigger_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.predictions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.requests_id_seq', '');


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
