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
