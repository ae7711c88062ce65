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
    -- serialise captures of one model version
    PERFORM pg_advisory_xact_lock(hashtext('retrain.baselines'), hashtext(model || ':' || version));
    DELETE FROM @extschema@.baselines b WHERE b.model = _store_baseline.model AND b.version = _store_baseline.version;
    INSERT INTO @extschema@.baselines (model, version, feature, kind, edges, expected, categories,
                                       row_count, missing_share)
    SELECT _store_baseline.model, _store_baseline.version, p.feature, p.kind, p.edges, p.expected,
           p.categories, p.row_count, p.missing_share
      FROM jsonb_to_recordset(profile) AS p(feature text, kind text, edges float8[], expected float8[],
                                           categories jsonb, row_count bigint, missing_share float8);
    GET DIAGNOSTICS stored = ROW_COUNT;
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
