-- The schema and the library's version.
--
-- CREATE EXTENSION makes the schema named in retrain.control before this
-- script runs; every name in these files is qualified with @extschema@.

-- @once
-- Readers (applications, analysts) need to look up objects in the schema;
-- what they may do with each object is granted object by object.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- @replace
COMMENT ON SCHEMA @extschema@ IS
    'retrain: model quality and drift aggregates, model registry, gated rollouts and retraining triggers';

CREATE OR REPLACE FUNCTION @extschema@.version()
    RETURNS pg_catalog.text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_version';
COMMENT ON FUNCTION @extschema@.version() IS
    'The retrain library''s version and the PostgreSQL version it was built against';
