--
-- Conventions every object of the installed extension follows, whatever
-- version it was installed at and whatever upgrades it went through: the
-- upgrade test (test/test_upgrade.py) runs this file against an updated
-- database too, so it checks state, never creates or drops the extension.
--

-- Every object of the extension lives in schema retrain ...
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS outside_schema
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'retrain'
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND (pg_identify_object(d.classid, d.objid, d.objsubid)).schema IS DISTINCT FROM 'retrain'
   AND d.classid <> 'pg_namespace'::regclass;

-- ... and has a COMMENT.  PostgreSQL 17 also records a table's or view's
-- row type and every type's array type as members; they come with their
-- table or type, whose comment covers them.
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS without_comment
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'retrain'
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND obj_description(d.objid, d.classid::regclass::name) IS NULL
   AND NOT EXISTS (SELECT FROM pg_type t
                    WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                      AND (EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
                           OR EXISTS (SELECT FROM pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid)));

-- Any role may look up objects in the schema.
SELECT has_schema_privilege('public', 'retrain', 'USAGE') AS public_usage;

-- Every aggregate is parallel safe, with a combine function, and with
-- serialization functions where its state is internal: the list of
-- offenders is empty.
SELECT p.oid::regprocedure AS aggregate_without_parallel_support
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
 WHERE p.pronamespace = 'retrain'::regnamespace
   AND (p.proparallel <> 's' OR a.aggcombinefn = 0
        OR (a.aggtranstype = 'internal'::regtype AND (a.aggserialfn = 0 OR a.aggdeserialfn = 0)));

-- And there are aggregates to check.
SELECT count(*) > 20 AS has_aggregates
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
 WHERE p.pronamespace = 'retrain'::regnamespace;

-- Support functions (names starting with "_") are not executable by PUBLIC,
-- but for the pure ones schedule_occurrence() and manifest() call as their
-- caller, those a read of a model's source calls as its owner (the
-- rollups' internal aggregates, _as_float8), and the support functions of
-- aggregates over retrain.agg_state, which Citus's workers call as the
-- querying role (they only read and build states, which are checked).
SELECT p.oid::regprocedure AS public_support_function
  FROM pg_proc p
 WHERE p.pronamespace = 'retrain'::regnamespace AND p.proname LIKE '\_%'
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

-- Every SECURITY DEFINER function pins its search_path, so that a caller's
-- objects cannot stand in for the ones it names.
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'retrain'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%');

-- What PUBLIC may run that acts with the extension's rights or may change
-- something: reviewed, and a new entry here is a decision (the rest of
-- PUBLIC's functions are the aggregates and pure functions).
SELECT p.oid::regprocedure AS public_definer_or_volatile,
       p.prosecdef AS security_definer, p.provolatile AS volatility
  FROM pg_proc p
 WHERE p.pronamespace = 'retrain'::regnamespace AND p.prokind = 'f'
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND (p.prosecdef OR p.provolatile = 'v')
 ORDER BY p.oid::regprocedure::text;

-- PUBLIC may change no table of the extension.
SELECT c.oid::regclass AS public_may_write, x.privilege_type
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS x(privilege_type)
 WHERE c.relnamespace = 'retrain'::regnamespace AND c.relkind IN ('r', 'p', 'v')
   AND has_table_privilege('public', c.oid, x.privilege_type);
