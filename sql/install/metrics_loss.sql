-- Mean-loss metrics (src/metrics_loss.c): brier and log_loss over
-- (score, label); mae, rmse and r2 over (predicted, actual).

-- @replace

-- Mean-loss metrics: one state (row count, compensated loss sum, and for r2
-- the variance accumulators of the actual values).  The aggregates keep it
-- as a retrain.agg_state (src/agg_state.h), so Citus can push them down;
-- the rollups' partial aggregates (rollups.sql) keep the same C state as
-- internal, serialized into their rows.  SSPACE is the state's size, which
-- the planner cannot know of a varlena type.

CREATE OR REPLACE FUNCTION @extschema@._brier_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_brier_accum';
CREATE OR REPLACE FUNCTION @extschema@._log_loss_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_log_loss_accum';
CREATE OR REPLACE FUNCTION @extschema@._mae_accum(internal, pg_catalog.float8, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_mae_accum';
CREATE OR REPLACE FUNCTION @extschema@._rmse_accum(internal, pg_catalog.float8, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rmse_accum';
CREATE OR REPLACE FUNCTION @extschema@._loss_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_loss_combine';
CREATE OR REPLACE FUNCTION @extschema@._loss_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_loss_serial';
CREATE OR REPLACE FUNCTION @extschema@._loss_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_loss_deserial';
CREATE OR REPLACE FUNCTION @extschema@._mean_loss_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_mean_loss_final';
CREATE OR REPLACE FUNCTION @extschema@._rmse_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rmse_final';

COMMENT ON FUNCTION @extschema@._brier_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of the rollups'' brier state (internal)';
COMMENT ON FUNCTION @extschema@._log_loss_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of the rollups'' log_loss state (internal)';
COMMENT ON FUNCTION @extschema@._mae_accum(internal, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of the rollups'' mae state (internal)';
COMMENT ON FUNCTION @extschema@._rmse_accum(internal, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of the rollups'' rmse state (internal)';
COMMENT ON FUNCTION @extschema@._loss_combine(internal, internal) IS
    'Combine function of the rollups'' mean-loss states (internal)';
COMMENT ON FUNCTION @extschema@._loss_serial(internal) IS
    'Serialization function of the mean-loss metrics (internal)';
COMMENT ON FUNCTION @extschema@._loss_deserial(bytea, internal) IS
    'Deserialization function of the mean-loss metrics (internal)';
COMMENT ON FUNCTION @extschema@._mean_loss_final(internal) IS
    'Final function of the rollups'' merged brier, log_loss and mae states (internal)';
COMMENT ON FUNCTION @extschema@._rmse_final(internal) IS
    'Final function of the rollups'' merged rmse states (internal)';

-- The aggregates' support functions: the same C, over retrain.agg_state.
CREATE OR REPLACE FUNCTION @extschema@._brier_accum(@extschema@.agg_state, pg_catalog.float8, boolean)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_brier_accum';
CREATE OR REPLACE FUNCTION @extschema@._log_loss_accum(@extschema@.agg_state, pg_catalog.float8, boolean)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_log_loss_accum';
CREATE OR REPLACE FUNCTION @extschema@._mae_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_mae_accum';
CREATE OR REPLACE FUNCTION @extschema@._rmse_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rmse_accum';
CREATE OR REPLACE FUNCTION @extschema@._r2_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_r2_accum';
CREATE OR REPLACE FUNCTION @extschema@._loss_combine(@extschema@.agg_state, @extschema@.agg_state)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_loss_combine';
CREATE OR REPLACE FUNCTION @extschema@._mean_loss_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_mean_loss_final';
CREATE OR REPLACE FUNCTION @extschema@._rmse_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rmse_final';
CREATE OR REPLACE FUNCTION @extschema@._r2_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_r2_final';

COMMENT ON FUNCTION @extschema@._brier_accum(@extschema@.agg_state, pg_catalog.float8, boolean) IS
    'Transition function of brier (internal)';
COMMENT ON FUNCTION @extschema@._log_loss_accum(@extschema@.agg_state, pg_catalog.float8, boolean) IS
    'Transition function of log_loss (internal)';
COMMENT ON FUNCTION @extschema@._mae_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of mae (internal)';
COMMENT ON FUNCTION @extschema@._rmse_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of rmse (internal)';
COMMENT ON FUNCTION @extschema@._r2_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8) IS
    'Transition function of r2 (internal)';
COMMENT ON FUNCTION @extschema@._loss_combine(@extschema@.agg_state, @extschema@.agg_state) IS
    'Combine function of the mean-loss metrics (internal)';
COMMENT ON FUNCTION @extschema@._mean_loss_final(@extschema@.agg_state) IS
    'Final function of brier, log_loss and mae (internal)';
COMMENT ON FUNCTION @extschema@._rmse_final(@extschema@.agg_state) IS
    'Final function of rmse (internal)';
COMMENT ON FUNCTION @extschema@._r2_final(@extschema@.agg_state) IS
    'Final function of r2 (internal)';

CREATE OR REPLACE AGGREGATE @extschema@.brier(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._brier_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine,
    PARALLEL = SAFE,
    SSPACE = 128
);
COMMENT ON AGGREGATE @extschema@.brier(pg_catalog.float8, boolean) IS
    'Brier score: mean of (score - label)^2; scores must lie in [0, 1] (scikit-learn brier_score_loss)';

CREATE OR REPLACE AGGREGATE @extschema@.log_loss(score pg_catalog.float8, label boolean) (
    SFUNC = @extschema@._log_loss_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine,
    PARALLEL = SAFE,
    SSPACE = 128
);
COMMENT ON AGGREGATE @extschema@.log_loss(pg_catalog.float8, boolean) IS
    'Log loss: mean of -ln(p) for positives and -ln(1 - p) for negatives, p clipped to [1e-15, 1 - 1e-15] (scikit-learn log_loss)';

CREATE OR REPLACE AGGREGATE @extschema@.mae(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._mae_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._mean_loss_final,
    COMBINEFUNC = @extschema@._loss_combine,
    PARALLEL = SAFE,
    SSPACE = 128
);
COMMENT ON AGGREGATE @extschema@.mae(pg_catalog.float8, pg_catalog.float8) IS
    'Mean absolute error of predictions against actual values (scikit-learn mean_absolute_error)';

CREATE OR REPLACE AGGREGATE @extschema@.rmse(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._rmse_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._rmse_final,
    COMBINEFUNC = @extschema@._loss_combine,
    PARALLEL = SAFE,
    SSPACE = 128
);
COMMENT ON AGGREGATE @extschema@.rmse(pg_catalog.float8, pg_catalog.float8) IS
    'Root mean squared error of predictions against actual values (scikit-learn root of mean_squared_error)';

CREATE OR REPLACE AGGREGATE @extschema@.r2(predicted pg_catalog.float8, actual pg_catalog.float8) (
    SFUNC = @extschema@._r2_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._r2_final,
    COMBINEFUNC = @extschema@._loss_combine,
    PARALLEL = SAFE,
    SSPACE = 128
);
COMMENT ON AGGREGATE @extschema@.r2(pg_catalog.float8, pg_catalog.float8) IS
    'Coefficient of determination R^2 of predictions against actual values; NULL when the actual values are constant (scikit-learn r2_score)';
