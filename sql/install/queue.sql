-- The retrain request queue: at most one open request per model, made or
-- joined through _request(); trainers claim (SKIP LOCKED) and finish them;
-- NOTIFY retrain_requests at commit.

-- @once

CREATE TABLE @extschema@.requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text NOT NULL REFERENCES @extschema@.models (name),
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'claimed', 'done', 'failed', 'cancelled')),
    reasons      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reasons) = 'array'),
    requested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    requested_by name NOT NULL,
    claimed_by   text,
    claimed_at   timestamptz,
    finished_at  timestamptz,
    version      text,
    message      text,
    CHECK ((status = 'claimed') = (claimed_at IS NOT NULL AND finished_at IS NULL) OR status <> 'claimed'),
    priority     text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low'))
);
COMMENT ON SEQUENCE @extschema@.requests_id_seq IS 'Ids of retrain requests';
-- at most one open (or claimed) request per model, whoever races to make one
CREATE UNIQUE INDEX requests_one_open_per_model ON @extschema@.requests (model)
    WHERE status IN ('open', 'claimed');
COMMENT ON TABLE @extschema@.requests IS
    'Retraining requests: why, by whom, who trains it, and what came of it; at most one open request per model';
COMMENT ON INDEX @extschema@.requests_one_open_per_model IS 'At most one open or claimed request per model';
-- A model's finished requests by status, for every check (cooldown,
-- failed trainings in a row): without it each check read every request of
-- every model.
CREATE INDEX requests_model_status ON @extschema@.requests (model, status, finished_at);
COMMENT ON INDEX @extschema@.requests_model_status IS 'A model''s requests by status and end, for the cycle';
COMMENT ON COLUMN @extschema@.requests.priority IS 'high, normal or low: the highest of its reasons'' triggers; claim_request() hands out high first';

-- Anyone may see what is asked for; only retrain's functions change it.
REVOKE ALL ON @extschema@.requests FROM PUBLIC;
GRANT SELECT ON @extschema@.requests TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.requests', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.requests_id_seq', '');

-- @replace

-- Of two priorities, the more urgent.
CREATE OR REPLACE FUNCTION @extschema@._higher_priority(a text, b text)
    RETURNS text
    -- plpgsql: planned once a session (a SQL function with SET is planned
    -- at every call)
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE WHEN 'high' IN (a, b) THEN 'high' WHEN 'normal' IN (a, b) THEN 'normal' ELSE 'low' END;
END
$$;
COMMENT ON FUNCTION @extschema@._higher_priority(text, text) IS
    'The more urgent of two request priorities: high, normal, low (internal)';

-- The one write path of the queue: make the model's request, or add the
-- reason to the open one.  why is {"trigger", "reason", "by"}, kept with
-- when it was first and last given and how often ("first_at", "last_at",
-- "count"); created says
-- which of the two happened, decided under the model's lock.
CREATE OR REPLACE FUNCTION @extschema@._request(model text, why jsonb, OUT id bigint, OUT created boolean)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.requests;
    same integer;
    now_ timestamptz := pg_catalog.now();
BEGIN
    PERFORM @extschema@._lock_model('request_retrain', model);
    why := why || jsonb_build_object('first_at', now_, 'last_at', now_, 'count', 1);
    SELECT * INTO r FROM @extschema@.requests q
     WHERE q.model = _request.model AND q.status IN ('open', 'claimed');
    IF FOUND THEN
        -- One open request per model: the new reason joins it.  A reason
        -- already there (the same trigger seen again by the same role at
        -- the next cycle, or the same words asked again) is counted, not
        -- repeated: a trigger that stays fired adds no entry per cycle.
        SELECT e.o - 1 INTO same
          FROM jsonb_array_elements(r.reasons) WITH ORDINALITY AS e(v, o)
         WHERE e.v->>'trigger' = why->>'trigger' AND e.v->>'by' IS NOT DISTINCT FROM why->>'by'
           AND (why->>'trigger' <> 'manual' OR e.v->>'reason' = why->>'reason')
         ORDER BY e.o LIMIT 1;
        IF same IS NULL THEN
            UPDATE @extschema@.requests q SET reasons = q.reasons || why WHERE q.id = r.id;
        ELSE
            why := (r.reasons->same) || jsonb_build_object('reason', why->'reason', 'last_at', now_,
                                                           'count', coalesce((r.reasons->same->>'count')::bigint, 1) + 1,
                                                           'priority', why->'priority');
            UPDATE @extschema@.requests q SET reasons = jsonb_set(q.reasons, ARRAY[same::text], why) WHERE q.id = r.id;
        END IF;
        -- a more urgent reason raises the request's priority, never lowers it
        UPDATE @extschema@.requests q
           SET priority = @extschema@._higher_priority(q.priority, coalesce(why->>'priority', 'normal'))
         WHERE q.id = r.id;
        PERFORM @extschema@._log(model, NULL, 'retrain_request_joined',
                                 jsonb_build_object('request', r.id, 'reason', why, 'repeated', same IS NOT NULL));
        id := r.id;
        created := false;
        RETURN;
    END IF;
    INSERT INTO @extschema@.requests (model, reasons, requested_by, priority)
    VALUES (model, jsonb_build_array(why), @extschema@._actor(), coalesce(why->>'priority', 'normal'))
    RETURNING * INTO r;
    PERFORM @extschema@._log(model, NULL, 'retrain_requested', jsonb_build_object('request', r.id, 'reasons', r.reasons));
    PERFORM pg_notify('retrain_requests',
                      jsonb_build_object('request_id', r.id, 'model', model, 'reasons', r.reasons)::text);
    id := r.id;
    created := true;
END
$$;
COMMENT ON FUNCTION @extschema@._request(text, jsonb) IS
    'Make the model''s retrain request or join its open one with a reason (internal)';

CREATE OR REPLACE FUNCTION @extschema@.request_retrain(model text, reason text)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'retrain.request_retrain: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN (@extschema@._request(model, jsonb_build_object('trigger', 'manual', 'reason', reason,
                                                           'by', @extschema@._actor(), 'priority', 'normal'))).id;
END
$$;
COMMENT ON FUNCTION @extschema@.request_retrain(text, text) IS
    'Ask for a model to be retrained, with a reason; joins the model''s open request if there is one; returns the request id and sends NOTIFY retrain_requests';

CREATE OR REPLACE FUNCTION @extschema@.claim_request(worker text)
    RETURNS SETOF @extschema@.requests
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.requests;
BEGIN
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'retrain.claim_request: worker must name the claimant' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@._begin_change();
    -- claims not finished within the model's claim_timeout go back to the queue
    -- (a trainer sees the requests of the models it may act on, its team's)
    FOR r IN
        SELECT q.* FROM @extschema@.requests q
         WHERE q.status = 'claimed'
           AND q.claimed_at < now() - (@extschema@.effective_policy(q.model)->'requests'->>'claim_timeout')::interval
           AND @extschema@._may_act((SELECT m.owner FROM @extschema@.models m WHERE m.name = q.model))
         FOR UPDATE OF q SKIP LOCKED
    LOOP
        UPDATE @extschema@.requests q SET status = 'open', claimed_by = NULL, claimed_at = NULL WHERE q.id = r.id;
        PERFORM @extschema@._log(r.model, NULL, 'retrain_claim_expired',
                                 jsonb_build_object('request', r.id, 'worker', r.claimed_by));
    END LOOP;

    -- the most urgent first, then the oldest
    SELECT q.* INTO r FROM @extschema@.requests q
     WHERE q.status = 'open'
       AND @extschema@._may_act((SELECT m.owner FROM @extschema@.models m WHERE m.name = q.model))
     ORDER BY CASE q.priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, q.id
     FOR UPDATE OF q SKIP LOCKED LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE @extschema@.requests q SET status = 'claimed', claimed_by = worker, claimed_at = now()
     WHERE q.id = r.id RETURNING q.* INTO r;
    PERFORM @extschema@._log(r.model, NULL, 'retrain_claimed', jsonb_build_object('request', r.id, 'worker', worker));
    RETURN NEXT r;
END
$$;
COMMENT ON FUNCTION @extschema@.claim_request(text) IS
    'Take the most urgent (then the oldest) open retrain request of the models the caller may act on (FOR UPDATE SKIP LOCKED); claims older than the policy''s claim_timeout return to the queue first. Returns no row when there is nothing to do';

CREATE OR REPLACE FUNCTION @extschema@.finish_request(id bigint, status text, version text DEFAULT NULL, message text DEFAULT NULL)
    RETURNS @extschema@.requests
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.requests;
    failures jsonb;
BEGIN
    SELECT q.* INTO r FROM @extschema@.requests q WHERE q.id = finish_request.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.finish_request: no request %', coalesce(id::text, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM @extschema@._lock_model('finish_request', r.model);
    SELECT q.* INTO r FROM @extschema@.requests q WHERE q.id = finish_request.id FOR UPDATE;
    IF status IS NULL OR status NOT IN ('done', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'retrain.finish_request: status must be done, failed or cancelled, not %', coalesce(status, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.status NOT IN ('open', 'claimed') OR (status <> 'cancelled' AND r.status <> 'claimed') THEN
        RAISE EXCEPTION 'retrain.finish_request: request % is %, not %', id, r.status,
            CASE WHEN status = 'cancelled' THEN 'open or claimed' ELSE 'claimed' END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF version IS NOT NULL THEN
        PERFORM @extschema@._version('finish_request', r.model, version);
    END IF;
    UPDATE @extschema@.requests q
       SET status = finish_request.status, finished_at = now(), version = finish_request.version,
           message = finish_request.message
     WHERE q.id = r.id RETURNING q.* INTO r;
    PERFORM @extschema@._log(r.model, version, 'retrain_finished',
                             jsonb_build_object('request', r.id, 'status', status, 'message', message,
                                                'worker', r.claimed_by));
    -- the failure that makes the model failing is announced, once
    IF status = 'failed' THEN
        failures := @extschema@._training_failures(r.model, @extschema@.effective_policy(r.model), pg_catalog.now());
        IF (failures->>'failures')::numeric = (failures->>'max_failures')::numeric THEN
            PERFORM @extschema@._log(r.model, NULL, 'retrain_failing',
                                     jsonb_build_object('reason', format('%s trainings failed in a row; last: %s',
                                                                         failures->>'failures', message),
                                                        'failures', failures->'failures'));
        END IF;
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION @extschema@.finish_request(bigint, text, text, text) IS
    'Close a claimed request as done (with the version it produced) or failed, or cancel an open one';

-- A queue that backs off: a model's failed trainings in a row (since its
-- last successful one, or since a person reset them), and when the next
-- automatic request may be made: requests.retry_backoff after the last
-- failure, doubled for each failure before it; none at all once
-- requests.max_failures have failed in a row ("repeated failures: create
-- an incident"), until a training succeeds or a person calls
-- reset_failures().  A person's request_retrain() is always taken.
CREATE OR REPLACE FUNCTION @extschema@._training_failures(model text, pol jsonb, at timestamptz)
    RETURNS jsonb
    -- plpgsql, not sql: its queries are planned once a session, not once a
    -- call (the cycle asks for every model)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since timestamptz;
    n bigint;
    last timestamptz;
BEGIN
    since := greatest((SELECT max(q.finished_at) FROM @extschema@.requests q
                        WHERE q.model = _training_failures.model AND q.status = 'done'
                          AND q.finished_at <= _training_failures.at),
                      (SELECT max(l.at) FROM @extschema@.log l
                        WHERE l.model = _training_failures.model AND l.event = 'failures_reset'
                          AND l.at <= _training_failures.at));
    SELECT count(*), max(q.finished_at) INTO n, last
      FROM @extschema@.requests q
     WHERE q.model = _training_failures.model AND q.status = 'failed' AND q.finished_at <= _training_failures.at
       AND q.finished_at > coalesce(since, '-infinity');
    RETURN jsonb_build_object(
        'failures', n,
        'max_failures', pol->'requests'->'max_failures',
        'failing', n >= (pol->'requests'->>'max_failures')::numeric,
        'retry_after', CASE WHEN n > 0
                            THEN last + (pol->'requests'->>'retry_backoff')::interval * power(2, least(n, 30) - 1) END);
END
$$;
COMMENT ON FUNCTION @extschema@._training_failures(text, jsonb, timestamptz) IS
    'A model''s failed trainings in a row, whether it is failing, and when the next automatic request may be made (internal)';

CREATE OR REPLACE FUNCTION @extschema@.reset_failures(model text, reason text)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb;
BEGIN
    PERFORM @extschema@._lock_model('reset_failures', model);
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'retrain.reset_failures: a reason is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    f := @extschema@._training_failures(model, @extschema@.effective_policy(model), pg_catalog.now());
    PERFORM @extschema@._log(model, NULL, 'failures_reset',
                             jsonb_build_object('reason', reason, 'failures', f->'failures'));
END
$$;
COMMENT ON FUNCTION @extschema@.reset_failures(text, text) IS
    'Forget a model''s failed trainings in a row, with a reason: automatic retrain requests resume without back-off; only members of the owner role may';
