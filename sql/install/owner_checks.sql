-- Code a model's owner supplies (eligibility and rollback checks, reads of
-- a set_source relation) runs with the owner's privileges and no more.

-- @replace

-- Run a query as a role and never as more: the query becomes the body of a
-- temporary SECURITY DEFINER function owned by that role, called and
-- dropped at once.  Inside a SECURITY DEFINER function SET ROLE and SET
-- SESSION AUTHORIZATION are refused, so the query cannot climb back to the
-- privileges of the caller (the extension's owner); the function is STABLE,
-- so it cannot write either.  pg_temp comes last in its search_path, so a
-- caller's temporary table cannot stand in for one the query names.  The
-- result comes back as text of the given type; errors propagate, and the
-- rollback of the caller's (sub)transaction drops the function with it.
CREATE OR REPLACE FUNCTION @extschema@._as_owner(owner name, returns regtype, search_path text, query text)
    RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = owner) THEN
        RAISE EXCEPTION 'the model''s owner "%" is not a role', owner USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('CREATE FUNCTION pg_temp._retrain_as_owner() RETURNS %s '
                   'LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %s AS %L', returns, search_path, query);
    EXECUTE format('ALTER FUNCTION pg_temp._retrain_as_owner() OWNER TO %I', owner);
    EXECUTE 'SELECT pg_temp._retrain_as_owner()::text' INTO result;
    DROP FUNCTION pg_temp._retrain_as_owner();
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@._as_owner(name, regtype, text, text) IS
    'Run a query with the privileges of a role and no more: its one value as text (internal)';

-- One of the owner's checks (eligibility or rollback): its boolean, or why
-- it has none.
CREATE OR REPLACE FUNCTION @extschema@._run_owner_check(owner name, query text, OUT result boolean, OUT error text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    result := @extschema@._as_owner(owner, 'boolean', 'public, pg_catalog, pg_temp', query)::boolean;
EXCEPTION WHEN OTHERS THEN
    result := NULL;
    error := format('failed: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
END
$$;
COMMENT ON FUNCTION @extschema@._run_owner_check(name, text) IS
    'Run one owner-supplied check query with the owner''s privileges: its boolean, or the error (internal)';

-- A policy's named checks (eligibility.checks or rollback.checks), each run
-- as the model's owner, in the order of their names.
CREATE OR REPLACE FUNCTION @extschema@._run_owner_checks(m @extschema@.models, checks jsonb)
    RETURNS TABLE (name text, result boolean, error text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    query text;
BEGIN
    FOR name, query IN SELECT e.key, e.value #>> '{}' FROM jsonb_each(coalesce(checks, '{}')) e ORDER BY e.key LOOP
        SELECT c.result, c.error INTO result, error FROM @extschema@._run_owner_check(m.owner, query) c;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._run_owner_checks(@extschema@.models, jsonb) IS
    'Run each of a policy''s named checks with the model owner''s privileges: its boolean, or its error (internal)';
