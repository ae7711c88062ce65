--
-- retrain.version() and the library's settings prefix.
--

-- "retrain X.Y.Z (built against PostgreSQL 15.N)"
SELECT retrain.version() ~ '^retrain \d+\.\d+\.\d+ \(built against PostgreSQL \d+\.\d+\)$'
       AS well_formed;

-- The library and the SQL script installed are the same version.
SELECT split_part(retrain.version(), ' ', 2) = extversion AS library_matches_sql
  FROM pg_extension WHERE extname = 'retrain';

-- Built against the major version that runs it.
SELECT substring(retrain.version() FROM 'PostgreSQL (\d+)\.')::int
       = current_setting('server_version_num')::int / 10000 AS same_major;

-- Stable (it names the library loaded now), strict, parallel safe.
SELECT provolatile, proisstrict, proparallel, prorettype::regtype
  FROM pg_proc WHERE oid = 'retrain.version()'::regprocedure;

-- Any role may call it.
CREATE ROLE retrain_regress_reader;
SET SESSION AUTHORIZATION retrain_regress_reader;
SELECT retrain.version() IS NOT NULL AS callable_by_anyone;
RESET SESSION AUTHORIZATION;
DROP ROLE retrain_regress_reader;

-- The retrain.* prefix is reserved: a misspelt setting is an error, not a
-- silently ignored placeholder.
SET retrain.no_such_setting = on;
SHOW retrain.no_such_setting;
