-- The check cycle as a pg_cron job (the background worker runs the same).

-- @replace

CREATE OR REPLACE FUNCTION @extschema@._require_pg_cron(fn text)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'retrain.%: pg_cron is not installed in database "%"', fn, current_database()
            USING ERRCODE = 'undefined_object',
                  HINT = 'Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name to this database and CREATE EXTENSION pg_cron; or let retrain''s background worker run the checks (retrain.naptime).';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._require_pg_cron(text) IS 'Fail with a hint when pg_cron is missing (internal)';

CREATE OR REPLACE FUNCTION @extschema@.schedule_checks(cron text DEFAULT '*/15 * * * *')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM @extschema@._require_pg_cron('schedule_checks');
    PERFORM @extschema@._begin_change();
    IF cron IS NULL THEN
        RAISE EXCEPTION 'retrain.schedule_checks: cron must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A job of the same name is replaced.  pg_cron runs a job as the role
    -- that scheduled it: this function's owner, the extension's (a
    -- superuser).  The command is fixed, and the owner code the cycle runs
    -- is confined to its owners' rights (docs/operations.md, "Security
    -- model").
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
      USING 'retrain-checks', cron, 'CALL @extschema@.run_cycle()';
    PERFORM @extschema@._log(NULL, NULL, 'checks_scheduled', jsonb_build_object('cron', cron, 'job', job));
    RETURN job;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_checks(text) IS
    'Create (or replace) the pg_cron job "retrain-checks" that runs the check cycle (CALL retrain.run_cycle()) on a cron schedule, as the extension''s owner; returns the job id';

CREATE OR REPLACE FUNCTION @extschema@.unschedule_checks()
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_ boolean;
BEGIN
    PERFORM @extschema@._require_pg_cron('unschedule_checks');
    PERFORM @extschema@._begin_change();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO found_ USING 'retrain-checks';
    IF found_ THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING 'retrain-checks';
        PERFORM @extschema@._log(NULL, NULL, 'checks_unscheduled', '{}');
    END IF;
    RETURN found_;
END
$$;
COMMENT ON FUNCTION @extschema@.unschedule_checks() IS
    'Remove the pg_cron job "retrain-checks"; false if there was none';
