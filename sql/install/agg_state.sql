-- retrain.agg_state (src/agg_state.c): the transition type of the
-- aggregates whose state has a fixed shape (the confusion family, the
-- mean-loss metrics, histogram, histogram_missing and the psi aggregate).
-- A real type with text input and output, so that Citus can run these
-- aggregates on its workers and ship their partial states as text.

-- @once

CREATE TYPE @extschema@.agg_state;
CREATE FUNCTION @extschema@.agg_state_in(cstring)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_in';
CREATE FUNCTION @extschema@.agg_state_out(@extschema@.agg_state)
    RETURNS cstring LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_out';
CREATE FUNCTION @extschema@.agg_state_recv(internal)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_recv';
CREATE FUNCTION @extschema@.agg_state_send(@extschema@.agg_state)
    RETURNS bytea LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_agg_state_send';
CREATE TYPE @extschema@.agg_state (
    INPUT = @extschema@.agg_state_in,
    OUTPUT = @extschema@.agg_state_out,
    RECEIVE = @extschema@.agg_state_recv,
    SEND = @extschema@.agg_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = main
);
COMMENT ON TYPE @extschema@.agg_state IS
    'A partial state of a retrain aggregate (confusion family, mean-loss metrics, histograms, psi); its text form, <kind>:<version>:<hex>, is what Citus ships between nodes';
COMMENT ON FUNCTION @extschema@.agg_state_in(cstring) IS
    'Input function of retrain.agg_state: checks the state completely';
COMMENT ON FUNCTION @extschema@.agg_state_out(@extschema@.agg_state) IS
    'Output function of retrain.agg_state: <kind>:<version>:<hexadecimal big-endian bytes>';
COMMENT ON FUNCTION @extschema@.agg_state_recv(internal) IS
    'Binary input function of retrain.agg_state';
COMMENT ON FUNCTION @extschema@.agg_state_send(@extschema@.agg_state) IS
    'Binary output function of retrain.agg_state';
