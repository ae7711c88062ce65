-- Rollups: the aggregates' partial states kept per model, version and time
-- bucket (see src/rollup.c).  This part: the aggregates that make a state
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
