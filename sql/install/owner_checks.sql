-- Code a model's owner supplies (eligibility and rollback checks, reads of
-- a set_source relation) runs with the owner's privileges and no more, and
-- leaves nothing behind (src/owner.c says how).

-- @replace

-- The query's one value as text, computed as the owner inside a
-- security-restricted operation, under a rolled-back GUC nest level and
-- search_path, in a subtransaction that is always rolled back.
CREATE OR REPLACE FUNCTION @extschema@._as_owner(owner name, returns regtype, search_path text, query text)
    RETURNS text
    LANGUAGE C VOLATILE
    AS 'MODULE_PATHNAME', 'retrain_as_owner';
COMMENT ON FUNCTION @extschema@._as_owner(name, regtype, text, text) IS
    'Run a query with the privileges of a role and no more, leaving nothing behind: its one value as text (internal)';

-- The search_path owner code runs with: pg_catalog first (a role that may
-- create objects elsewhere cannot take over a built-in operator or
-- function), the schemas the owner names in the policy, pg_temp last.
CREATE OR REPLACE FUNCTION @extschema@._owner_search_path(policy jsonb)
    RETURNS text
    -- plpgsql: planned once a session (see _training_failures)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT string_agg(p.s, ', ' ORDER BY p.o)
              FROM (SELECT 'pg_catalog', 0
                    UNION ALL
                    SELECT quote_ident(x.e), x.o
                      FROM jsonb_array_elements_text(coalesce(_owner_search_path.policy->'search_path', '[]'))
                           WITH ORDINALITY AS x(e, o)
                    UNION ALL
                    SELECT 'pg_temp', 1000000) AS p(s, o));
END
$$;
COMMENT ON FUNCTION @extschema@._owner_search_path(jsonb) IS
    'The search_path of a model''s owner code: pg_catalog, the policy''s search_path schemas, pg_temp (internal)';

-- One of the owner's checks (eligibility or rollback): its boolean, or why
-- it has none.
CREATE OR REPLACE FUNCTION @extschema@._run_owner_check(owner name, search_path text, query text,
                                                        OUT result boolean, OUT error text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    result := @extschema@._as_owner(owner, 'boolean', search_path, query)::boolean;
EXCEPTION WHEN OTHERS THEN
    result := NULL;
    error := format('failed: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
END
$$;
COMMENT ON FUNCTION @extschema@._run_owner_check(name, text, text) IS
    'Run one owner-supplied check query with the owner''s privileges: its boolean, or the error (internal)';

-- A policy's named checks (eligibility.checks or rollback.checks), each run
-- as the model's owner, in the order of their names, asked about "at": the
-- setting retrain.check_at holds it (ISO 8601, UTC) while they run, and the
-- caller's value is put back after.  (Not a SET clause of the function: a
-- server still running the previous library, before its restart, would
-- refuse to create the function at all.)
CREATE OR REPLACE FUNCTION @extschema@._run_owner_checks(m @extschema@.models, checks jsonb, at timestamptz)
    RETURNS TABLE (name text, result boolean, error text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    query text;
    path text := @extschema@._owner_search_path(m.policy);
    before text;
BEGIN
    IF checks IS NULL OR checks = '{}' THEN
        RETURN;
    END IF;
    before := current_setting('retrain.check_at', true);
    PERFORM set_config('retrain.check_at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), true);
    FOR name, query IN SELECT e.key, e.value #>> '{}' FROM jsonb_each(checks) e ORDER BY e.key LOOP
        SELECT c.result, c.error INTO result, error FROM @extschema@._run_owner_check(m.owner, path, query) c;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('retrain.check_at', coalesce(before, ''), true);
END
$$;
COMMENT ON FUNCTION @extschema@._run_owner_checks(@extschema@.models, jsonb, timestamptz) IS
    'Run each of a policy''s named checks with the model owner''s privileges, retrain.check_at set to the time asked about: its boolean, or its error (internal)';

-- What the log keeps of a failed owner check: its SQLSTATE, not its message,
-- which may show the owner's data (an error quoting a value of the owner's
-- table) while every role reads the log.  check() shows the message to the
-- owner's members.
CREATE OR REPLACE FUNCTION @extschema@._redact(message text)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN regexp_replace(message, 'failed: .*? \(SQLSTATE ([0-9A-Z]{5})\)', 'failed (SQLSTATE \1)', 'g');
COMMENT ON FUNCTION @extschema@._redact(text) IS
    'An owner check''s failure as the log keeps it: the SQLSTATE without the message (internal)';

