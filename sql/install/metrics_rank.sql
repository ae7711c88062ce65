-- Ranking metrics (src/metrics_rank.c): auc and average_precision.
--
-- Aggregates skip rows with a NULL argument and return NULL for a group
-- without rows or where the metric is undefined.  Their support functions
-- (names starting with "_") take or return internal and are not for direct
-- use; aggregates run them with their owner's rights, so PUBLIC needs no
-- EXECUTE on them (privileges.sql revokes it).

-- @replace

-- Ranking metrics: every (score, label) pair is kept until the final function.

CREATE OR REPLACE FUNCTION @extschema@._rank_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_accum';
CREATE OR REPLACE FUNCTION @extschema@._rank_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_combine';
CREATE OR REPLACE FUNCTION @extschema@._rank_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_serial';
CREATE OR REPLACE FUNCTION @extschema@._rank_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_rank_deserial';
CREATE OR REPLACE FUNCTION @extschema@._auc_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_auc_final';
CREATE OR REPLACE FUNCTION @extschema@._average_precision_final(internal)
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
CREATE OR REPLACE AGGREGATE @extschema@.auc(score pg_catalog.float8, label boolean) (
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

CREATE OR REPLACE AGGREGATE @extschema@.average_precision(score pg_catalog.float8, label boolean) (
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
