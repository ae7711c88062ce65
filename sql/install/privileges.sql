-- The privileges epilogue: the last part of every built script, install and
-- upgrade alike.
--
-- Who may execute a function is decided here, for every function at once,
-- and denied by default: PUBLIC may execute the aggregates and the functions
-- listed below (pure functions of their arguments, and readers of what
-- PUBLIC may read anyway); every other function, internal ("_") or one that
-- changes state, is revoked from PUBLIC.  A new function is private until it
-- is added to the list; roles get what they need by GRANT (the recipe in
-- docs/operations.md).
--
-- The rule is applied only to functions whose privileges were never set
-- (proacl IS NULL): those the running script just created.  An upgrade must
-- not revoke again what an earlier version revoked: during ALTER EXTENSION
-- UPDATE, PostgreSQL records the whole ACL of every object a GRANT or REVOKE
-- touches as the extension's initial privileges, the site's own grants
-- included, and pg_dump leaves initial privileges out of a dump, so those
-- grants would be lost in the next dump and restore.  (Table privileges sit
-- beside their tables in @once sections, for the same reason.)

-- @replace
DO $$
DECLARE
    for_public regprocedure[] := ARRAY[
        -- the library
        '@extschema@.version()',
        -- metrics and drift statistics of the caller's own values
        '@extschema@.precision(@extschema@.confusion)',
        '@extschema@.recall(@extschema@.confusion)',
        '@extschema@.f1(@extschema@.confusion)',
        '@extschema@.fbeta(@extschema@.confusion, pg_catalog.float8)',
        '@extschema@.accuracy(@extschema@.confusion)',
        '@extschema@.confusion_add(@extschema@.confusion, @extschema@.confusion)',
        '@extschema@.psi(pg_catalog.float8[], pg_catalog.float8[], pg_catalog.float8)',
        '@extschema@.psi(jsonb, jsonb, pg_catalog.float8)',
        '@extschema@.js_distance(pg_catalog.float8[], pg_catalog.float8[], pg_catalog.float8)',
        '@extschema@.ks_pvalue(pg_catalog.float8, bigint, bigint)',
        '@extschema@.schedule_occurrence(jsonb, timestamptz, timestamptz)',
        -- what a model's schedules will fire: the registry, which PUBLIC may read
        '@extschema@.next_occurrences(text, integer, timestamptz)',
        -- and the pure helpers it calls as its caller
        '@extschema@._valid_schedule(jsonb)',
        '@extschema@._schedule_hint()',
        '@extschema@._interval_in_bounds(interval)',
        -- a feature value as a number, in reads of a source as its owner
        '@extschema@._as_float8(text)',
        -- drift reports read the relation they are given with the caller's rights
        '@extschema@.drift(text, text, pg_catalog.regclass, timestamptz, text, pg_catalog.float8)',
        '@extschema@.drift_summary(text, text, pg_catalog.regclass, timestamptz, text, pg_catalog.float8, pg_catalog.float8)',
        -- routing and the registry, which PUBLIC may read
        '@extschema@.bucket(text, text)',
        '@extschema@.route(text, text)',
        '@extschema@.route_detail(text, text)',
        '@extschema@.effective_policy(text)',
        -- the report checks who may read the model's predictions itself
        '@extschema@.report(text, timestamptz, timestamptz, interval)',
        '@extschema@.manifest(text)',
        -- and the pure function of a deployment row it calls as its caller
        '@extschema@._freeze_of(@extschema@.deployments, timestamptz)',
        '@extschema@.verify_log()',
        '@extschema@.verify_log(bigint, text)'
    ]::regprocedure[];
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure
               FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                -- aggregates, internal ones included (rollups' states
                -- and merges, which a source read runs as the model's
                -- owner), are pure functions of their arguments
                AND p.prokind <> 'a'
                -- and so are the functions of their retrain.agg_state,
                -- which Citus calls as the querying role on its workers
                AND p.prorettype <> '@extschema@.agg_state'::regtype
                AND NOT '@extschema@.agg_state'::regtype = ANY (p.proargtypes)
                AND p.proacl IS NULL
                AND p.oid <> ALL (for_public)
              ORDER BY p.oid
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', f);
    END LOOP;
END
$$;
