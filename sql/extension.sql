--
-- The extension as a whole: its control file, dropping and re-creating it,
-- its upgrade paths, and conventions every object must follow.
--

-- Installed in schema retrain, at the default version, not relocatable.
SELECT e.extname, e.extversion = a.default_version AS at_default_version,
       n.nspname, e.extrelocatable
  FROM pg_extension e
  JOIN pg_namespace n ON n.oid = e.extnamespace
  JOIN pg_available_extensions a ON a.name = e.extname
 WHERE e.extname = 'retrain';

-- Needs a superuser, is not trusted, and does not require pg_cron (which can
-- only be created in cron.database_name; retrain finds it at run time).
SELECT DISTINCT superuser, trusted, relocatable, schema, requires
  FROM pg_available_extension_versions
 WHERE name = 'retrain';

-- An ordinary role cannot create it.
CREATE ROLE retrain_regress_plain;
DROP EXTENSION retrain;
SET SESSION AUTHORIZATION retrain_regress_plain;
CREATE EXTENSION retrain;
RESET SESSION AUTHORIZATION;
DROP ROLE retrain_regress_plain;

-- Dropping it removed every object.  The schema stays, as for any extension
-- whose control file names its schema (CREATE EXTENSION made it before the
-- extension existed, so it is no member); it is empty.
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'retrain'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'retrain'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'retrain'::regnamespace)
       AS objects_left;
-- It can be created again.
CREATE EXTENSION retrain;
SELECT retrain.version() IS NOT NULL AS works_again;
DROP EXTENSION retrain;
CREATE EXTENSION retrain;

-- Updating to the version already installed is a no-op (its NOTICE names
-- the version, which this file does not hard-code).
SET client_min_messages = warning;
ALTER EXTENSION retrain UPDATE;
RESET client_min_messages;
SELECT e.extversion = a.default_version AS still_at_default_version
  FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
 WHERE e.extname = 'retrain';

-- Every version that can be installed has an update path to the default
-- version: the list of stranded versions is empty.
SELECT v.version AS stranded_version
  FROM pg_available_extension_versions v
  JOIN pg_available_extensions a ON a.name = v.name
 WHERE v.name = 'retrain'
   AND v.version <> a.default_version
   AND NOT EXISTS (SELECT 1
                     FROM pg_extension_update_paths('retrain') p
                    WHERE p.source = v.version
                      AND p.target = a.default_version
                      AND p.path IS NOT NULL);

-- No update path leads away from the default version (no downgrades and no
-- newer scripts than the control file announces).
SELECT p.source, p.target, p.path
  FROM pg_extension_update_paths('retrain') p
  JOIN pg_available_extensions a ON a.name = 'retrain'
 WHERE p.source = a.default_version AND p.path IS NOT NULL;
