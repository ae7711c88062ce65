-- The retraining log: append-only and hash-chained, written by _log() in
-- the transaction of each change; who acts (_actor) and the one write lock
-- every state change takes first (_begin_change).

-- @replace

-- Who makes a change: the session's user, the login (or the role a
-- superuser took with SET SESSION AUTHORIZATION).  A person who SET ROLEs
-- to a group is still that person, for the log and for the rule that
-- nobody signs what they registered; the group is recorded beside (_log).
-- Inside code a model's owner supplied it refuses: the session that runs a
-- check is not the owner's to act as.
CREATE OR REPLACE FUNCTION @extschema@._actor()
    RETURNS name LANGUAGE C STABLE
    AS 'MODULE_PATHNAME', 'retrain_actor';
COMMENT ON FUNCTION @extschema@._actor() IS
    'Who makes a state change: the session''s user (the login), never inside owner code (internal)';

CREATE OR REPLACE FUNCTION @extschema@._acting_role()
    RETURNS name LANGUAGE C STABLE
    AS 'MODULE_PATHNAME', 'retrain_acting_role';
COMMENT ON FUNCTION @extschema@._acting_role() IS
    'The role the session acts as (after SET ROLE), never inside owner code (internal)';

-- For the state changes that take no lock (logging predictions and
-- outcomes): refused inside code a model's owner supplied, as every other
-- state change is by _begin_change().
CREATE OR REPLACE FUNCTION @extschema@._refuse_in_owner_code(fn text)
    RETURNS void LANGUAGE C VOLATILE
    AS 'MODULE_PATHNAME', 'retrain_refuse_in_owner_code';
COMMENT ON FUNCTION @extschema@._refuse_in_owner_code(text) IS
    'Refuse a state change inside code a model''s owner supplied (internal)';

-- Every state change first takes this one transaction-scoped lock, before
-- any row lock.  Changes to retrain's tables are thereby serialised in one
-- order (the log's order is commit order, and its chain needs that anyway),
-- and no two of them can deadlock on each other's row locks, whatever rows
-- they touch in whatever order.  Refused inside owner code.
CREATE OR REPLACE FUNCTION @extschema@._begin_change()
    RETURNS void LANGUAGE C VOLATILE
    AS 'MODULE_PATHNAME', 'retrain_begin_change';
COMMENT ON FUNCTION @extschema@._begin_change() IS
    'Take the lock that serialises retrain''s state changes, refused inside owner code (internal)';

-- @once

-- The retraining log: append-only, hash-chained.
CREATE TABLE @extschema@.log (
    id        bigint PRIMARY KEY,
    at        timestamptz NOT NULL,
    model     text,
    version   text,
    event     text NOT NULL,
    actor     name NOT NULL,
    details   jsonb NOT NULL DEFAULT '{}',
    prev_hash text NOT NULL,
    hash      text NOT NULL
);
CREATE INDEX log_model_at ON @extschema@.log (model, at);
-- The cycle asks, a model at a time, for the last event of a kind
-- (failures_reset; the guard: promoted, advanced, traffic_changed): by
-- model alone that read every event of the model, a number that grows
-- with every cycle.
CREATE INDEX log_model_event_at ON @extschema@.log (model, event, at);
COMMENT ON INDEX @extschema@.log_model_event_at IS 'A model''s events of one kind in time order, for the cycle';
COMMENT ON TABLE @extschema@.log IS
    'The retraining log: one row per event, written only by retrain''s functions in the transaction of the change; each row''s hash covers its content and the previous row''s hash';
COMMENT ON COLUMN @extschema@.log.event IS 'registered, policy_set, evaluated, approved, promoted, traffic_changed, advanced, rolled_back, forced, baseline_captured, ...';
COMMENT ON COLUMN @extschema@.log.actor IS
    'the login that made the change (the session''s user); details->>''role'' names the role it acted as, when another';
COMMENT ON COLUMN @extschema@.log.hash IS 'SHA-256 (hex) of the row''s content and prev_hash';

-- The end of the chain, so that deleting the last rows is detected too.
CREATE TABLE @extschema@.log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id   bigint NOT NULL,
    last_hash text NOT NULL
);
COMMENT ON TABLE @extschema@.log_head IS 'The id and hash of the last log row (internal)';

-- Readers may see the log (and check it with verify_log()); nobody but
-- retrain's functions writes it, and the head is retrain's own.
REVOKE ALL ON @extschema@.log, @extschema@.log_head FROM PUBLIC;
GRANT SELECT ON @extschema@.log TO PUBLIC;
-- pg_dump keeps their rows: they belong to the extension, the data to you.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_head', '');

-- When the chain was last found whole: each check cycle checks the rows
-- added since its previous check ("cycle"), verify_log() the whole chain
-- ("full"); monitoring reads the latest of each.  A transaction that
-- cannot write (a hot standby, a read-only one) checks without a record.
CREATE TABLE @extschema@.log_verifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    verified_at  timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('full', 'cycle')),
    ok           boolean NOT NULL,
    first_bad_id bigint,
    upto_id      bigint NOT NULL,
    rows_checked bigint NOT NULL,
    verified_by  name NOT NULL
);
COMMENT ON TABLE @extschema@.log_verifications IS
    'Checks of retrain.log''s hash chain: by each check cycle, of the rows added since its last check (kind cycle), and by verify_log(), of the whole chain (kind full); the latest 100 of each kind are kept';
COMMENT ON COLUMN @extschema@.log_verifications.upto_id IS 'the last row the check reached (the head, when whole)';
COMMENT ON COLUMN @extschema@.log_verifications.first_bad_id IS 'where the chain breaks, when not ok';
COMMENT ON SEQUENCE @extschema@.log_verifications_id_seq IS 'Ids of log verifications';
REVOKE ALL ON @extschema@.log_verifications FROM PUBLIC;
GRANT SELECT ON @extschema@.log_verifications TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_verifications', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_verifications_id_seq', '');

-- @replace

CREATE OR REPLACE FUNCTION @extschema@._log_hash(id bigint, at timestamptz, model text, version text, event text,
                                      actor name, details jsonb, prev_hash text)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    -- a canonical text: a JSON array, with the time as microseconds since 1970
    RETURN encode(sha256(convert_to(jsonb_build_array(id, (extract(epoch FROM at) * 1000000)::bigint,
                                                      model, version, event, actor::text, details,
                                                      prev_hash)::text, 'UTF8')), 'hex');
COMMENT ON FUNCTION @extschema@._log_hash(bigint, timestamptz, text, text, text, name, jsonb, text) IS
    'The hash of a log row (internal)';

CREATE OR REPLACE FUNCTION @extschema@._log(model text, version text, event text, details jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head_id bigint;
    new_id bigint;
    prev_hash text;
    now_ timestamptz := clock_timestamp();
    actor_ name := @extschema@._actor();
    role_ name := @extschema@._acting_role();
    h text;
BEGIN
    -- a person acting as a group: both are on record
    IF role_ <> actor_ THEN
        details := coalesce(details, '{}') || jsonb_build_object('role', role_);
    END IF;
    -- Appends are serialised by retrain's write lock (_begin_change) until
    -- commit, so the chain follows commit order and the head read here is
    -- the last one committed.  It is moved on only from the value read: a
    -- guard (under REPEATABLE READ the read is the transaction's snapshot,
    -- and the UPDATE of a head moved since fails to serialise).  One row
    -- version per append, and no row lock besides the UPDATE's: a SELECT
    -- ... FOR UPDATE of a row that another subtransaction of the same
    -- transaction updated makes its locker a multixact that grows with
    -- every append (run_checks() appends for every model, each in a
    -- subtransaction: quadratic).  The row is made on first use (not by
    -- the install script, so that a restored dump does not collide with
    -- it).
    PERFORM @extschema@._begin_change();
    LOOP
        SELECT hd.last_id, hd.last_hash INTO head_id, prev_hash FROM @extschema@.log_head hd;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.log_head VALUES (true, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
            CONTINUE;
        END IF;
        new_id := head_id + 1;
        h := @extschema@._log_hash(new_id, now_, model, version, event, actor_, coalesce(details, '{}'), prev_hash);
        UPDATE @extschema@.log_head hd SET last_id = new_id, last_hash = h WHERE hd.last_id = head_id;
        EXIT WHEN FOUND;
    END LOOP;
    INSERT INTO @extschema@.log (id, at, model, version, event, actor, details, prev_hash, hash)
    VALUES (new_id, now_, model, version, event, actor_, coalesce(details, '{}'), prev_hash, h);
    PERFORM @extschema@._notify_event(new_id, now_, model, version, event, actor_, coalesce(details, '{}'));
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION @extschema@._log(text, text, text, jsonb) IS
    'Append a row to the retraining log (internal: the one way rows get there)';

-- One event stream for people: NOTIFY retrain_events, at commit, for every
-- logged event someone may need to act on (a request made, taken, finished;
-- a promotion, advance, rollback, freeze, override, forced mode; a check or
-- guard that failed; a trigger that cannot be evaluated).  A Slack or
-- PagerDuty bridge is one LISTEN (docs/apps.md).  The payload is JSON:
-- {"id", "event", "model", "version", "actor", "reason", "at"}, the log
-- row's id first, so that a bridge can read the whole row; a reason is cut
-- to 1,000 characters to stay far within NOTIFY's 8,000 bytes.
CREATE OR REPLACE FUNCTION @extschema@._event_reason(event text, details jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE event
        WHEN 'retrain_requested' THEN details->'reasons'->-1->>'reason'
        WHEN 'retrain_claimed' THEN format('request %s by %s', details->>'request', details->>'worker')
        WHEN 'retrain_finished' THEN format('request %s %s%s', details->>'request', details->>'status',
                                            coalesce(': ' || (details->>'message'), ''))
        WHEN 'promoted' THEN CASE WHEN (details->>'override')::boolean
                                  THEN format('%s, override: %s', details->>'strategy', details->>'override_reason')
                                  ELSE details->>'strategy' END
        WHEN 'advanced' THEN format('%s%% -> %s%%', details->>'from', details->>'to')
        WHEN 'forced' THEN format('mode %s%s', details->>'mode', coalesce(' until ' || (details->>'until'), ''))
        WHEN 'trigger_unusable' THEN format('%s: %s', details->>'trigger', details->>'reason')
        WHEN 'reminder' THEN format('%s at %s', details->>'trigger', details->>'occurrence')
        WHEN 'check_failed' THEN format('%s (SQLSTATE %s)', details->>'message', details->>'sqlstate')
        WHEN 'guard_failed' THEN format('%s (SQLSTATE %s)', details->>'message', details->>'sqlstate')
        ELSE details->>'reason' END;
COMMENT ON FUNCTION @extschema@._event_reason(text, jsonb) IS
    'The one-line reason of a log event for the event stream (internal)';

CREATE OR REPLACE FUNCTION @extschema@._notify_event(id bigint, at timestamptz, model text, version text, event text,
                                                     actor name, details jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF event IN ('retrain_requested', 'retrain_claimed', 'retrain_finished', 'retrain_failing', 'failures_reset',
                 'promoted', 'advanced', 'rolled_back', 'frozen', 'unfrozen', 'forced', 'trigger_unusable',
                 'check_failed', 'guard_failed', 'reminder') THEN
        PERFORM pg_notify('retrain_events', jsonb_build_object(
            'id', id, 'event', event, 'model', model, 'version', version, 'actor', actor,
            'reason', left(@extschema@._event_reason(event, details), 1000), 'at', at)::text);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._notify_event(bigint, timestamptz, text, text, text, name, jsonb) IS
    'Send NOTIFY retrain_events for a log event a person may need to act on (internal)';

CREATE OR REPLACE FUNCTION @extschema@._log_is_append_only()
    RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'retrain.log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION @extschema@._log_is_append_only() IS
    'Refuses UPDATE, DELETE and TRUNCATE of retrain.log (internal)';
CREATE OR REPLACE TRIGGER log_append_only BEFORE UPDATE OR DELETE ON @extschema@.log
    FOR EACH ROW EXECUTE FUNCTION @extschema@._log_is_append_only();
CREATE OR REPLACE TRIGGER log_no_truncate BEFORE TRUNCATE ON @extschema@.log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._log_is_append_only();
COMMENT ON TRIGGER log_append_only ON @extschema@.log IS 'The log is append-only';
COMMENT ON TRIGGER log_no_truncate ON @extschema@.log IS 'The log is append-only';

-- SECURITY DEFINER only to call the internal hash function; it reads
-- nothing a reader may not read.
-- One server log line with the log's head: where an edit of the tables
-- cannot reach it (see src/log.c).
CREATE OR REPLACE FUNCTION @extschema@._announce_log_head(head_id bigint, head_hash text, how text)
    RETURNS void LANGUAGE C VOLATILE
    AS 'MODULE_PATHNAME', 'retrain_announce_log_head';
COMMENT ON FUNCTION @extschema@._announce_log_head(bigint, text, text) IS
    'Write the log''s head (id and hash) to the server log (internal)';

-- The chain after row after_id (0: all of it): each row numbered next,
-- linked to the one before and hashing to its hash, up to the head.
CREATE OR REPLACE FUNCTION @extschema@._verify_chain(after_id bigint, OUT ok boolean, OUT first_bad_id bigint,
                                                     OUT rows_checked bigint, OUT upto_id bigint)
    RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.log;
    expect_id bigint := after_id + 1;
    prev text;
    head @extschema@.log_head;
BEGIN
    ok := true;
    first_bad_id := NULL;
    rows_checked := 0;
    prev := CASE WHEN after_id = 0 THEN repeat('0', 64)
                 ELSE (SELECT l.hash FROM @extschema@.log l WHERE l.id = after_id) END;
    IF prev IS NULL THEN
        -- the row the last check ended at is gone
        ok := false;
        first_bad_id := after_id;
        upto_id := after_id;
        RETURN;
    END IF;
    FOR r IN SELECT * FROM @extschema@.log l WHERE l.id > after_id ORDER BY l.id LOOP
        rows_checked := rows_checked + 1;
        -- a gap (deleted row), a broken link, or content that no longer
        -- matches its hash
        IF r.id <> expect_id OR r.prev_hash <> prev
           OR r.hash <> @extschema@._log_hash(r.id, r.at, r.model, r.version, r.event, r.actor,
                                              r.details, r.prev_hash) THEN
            ok := false;
            first_bad_id := least(r.id, expect_id);
            upto_id := expect_id - 1;
            RETURN;
        END IF;
        prev := r.hash;
        expect_id := r.id + 1;
    END LOOP;
    upto_id := expect_id - 1;
    SELECT * INTO head FROM @extschema@.log_head;
    IF coalesce(head.last_id, 0) <> expect_id - 1 OR coalesce(head.last_hash, repeat('0', 64)) <> prev THEN
        -- rows missing at the end
        ok := false;
        first_bad_id := expect_id;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._verify_chain(bigint) IS
    'Check the log''s hash chain after a row (0: all of it) up to the head (internal)';

-- A check of the chain on record, where the transaction can write; the
-- latest 100 of each kind are kept.
CREATE OR REPLACE FUNCTION @extschema@._note_verification(kind text, ok boolean, first_bad_id bigint, upto_id bigint,
                                                          rows_checked bigint)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean THEN
        RETURN;
    END IF;
    INSERT INTO @extschema@.log_verifications (verified_at, kind, ok, first_bad_id, upto_id, rows_checked, verified_by)
    VALUES (clock_timestamp(), kind, ok, first_bad_id, upto_id, rows_checked, session_user);
    DELETE FROM @extschema@.log_verifications v
     WHERE v.kind = _note_verification.kind
       AND v.id <= (SELECT x.id FROM @extschema@.log_verifications x WHERE x.kind = _note_verification.kind
                     ORDER BY x.id DESC OFFSET 100 LIMIT 1);
END
$$;
COMMENT ON FUNCTION @extschema@._note_verification(text, boolean, bigint, bigint, bigint) IS
    'Record a check of the log''s chain, unless the transaction cannot write (internal)';

CREATE OR REPLACE FUNCTION @extschema@.verify_log(OUT ok boolean, OUT first_bad_id bigint, OUT rows_checked bigint)
    RETURNS record
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    c := @extschema@._verify_chain(0);
    ok := c.ok;
    first_bad_id := c.first_bad_id;
    rows_checked := c.rows_checked;
    -- the head, where an edit of the tables cannot reach it: compare it
    -- later with verify_log(expected_head_id, expected_hash)
    PERFORM @extschema@._announce_log_head(c.upto_id, coalesce((SELECT l.hash FROM @extschema@.log l WHERE l.id = c.upto_id),
                                                               repeat('0', 64)),
                                           CASE WHEN ok THEN 'verify_log: ok' ELSE 'verify_log: broken' END);
    PERFORM @extschema@._note_verification('full', ok, first_bad_id, c.upto_id, rows_checked);
END
$$;
COMMENT ON FUNCTION @extschema@.verify_log() IS
    'Check the hash chain of retrain.log: ok, the first id where it breaks (edited, deleted or reordered rows), and how many rows were checked; writes the head to the server log';

-- The chain checked against a head recorded outside the database (from the
-- server log, a NOTIFY, or an earlier call): a chain cut after that head and
-- rewritten since verifies on its own, but not against it.
CREATE OR REPLACE FUNCTION @extschema@.verify_log(expected_head_id bigint, expected_hash text,
                                                  OUT ok boolean, OUT first_bad_id bigint, OUT rows_checked bigint)
    RETURNS record
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    recorded text;
BEGIN
    IF expected_head_id IS NULL OR expected_hash IS NULL OR expected_head_id < 0 THEN
        RAISE EXCEPTION 'retrain.verify_log: expected_head_id (>= 0) and expected_hash must be given'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT v.ok, v.first_bad_id, v.rows_checked INTO ok, first_bad_id, rows_checked FROM @extschema@.verify_log() v;
    IF NOT ok THEN
        RETURN;
    END IF;
    recorded := CASE WHEN expected_head_id = 0 THEN repeat('0', 64)
                     ELSE (SELECT l.hash FROM @extschema@.log l WHERE l.id = expected_head_id) END;
    IF recorded IS DISTINCT FROM lower(expected_hash) THEN
        -- the row is gone, or the chain up to it is another one
        ok := false;
        first_bad_id := least(expected_head_id, rows_checked + 1);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.verify_log(bigint, text) IS
    'verify_log() and, beyond it, whether the chain still holds the head recorded elsewhere (its id and hash): false when rows were cut and rewritten';
