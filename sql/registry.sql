--
-- Model registry, evaluation gates, sign-offs, rollout, rollback, override,
-- the retraining log and routing.
--
\set SHOW_CONTEXT never

CREATE ROLE retrain_regress_owner;
CREATE ROLE retrain_regress_reviewers;
CREATE ROLE retrain_regress_approvers;
CREATE ROLE retrain_regress_alice IN ROLE retrain_regress_reviewers;
CREATE ROLE retrain_regress_bob IN ROLE retrain_regress_approvers;
CREATE ROLE retrain_regress_reader;
GRANT EXECUTE ON FUNCTION retrain.register_model(text, text, text),
                          retrain.set_policy(text, jsonb),
                          retrain.register_version(text, text, text, text, jsonb, jsonb, text, bigint, text, tstzrange, text[], bigint[], jsonb, boolean),
                          retrain.evaluate(text, text), retrain.promote(text, text, text, text),
                          retrain.set_traffic(text, numeric), retrain.advance(text),
                          retrain.rollback(text, text), retrain.force(text, text, timestamptz)
   TO retrain_regress_owner;
GRANT EXECUTE ON FUNCTION retrain.approve(text, text, text, text), retrain.set_owner(text, name)
   TO retrain_regress_alice, retrain_regress_bob, retrain_regress_owner;

-- Registration.  The calling role owns the model.
SET SESSION AUTHORIZATION retrain_regress_owner;
SELECT retrain.register_model('churn', 'binary_classification', 'member churn, monthly');
SELECT name, task, owner, description, policy FROM retrain.models;
SELECT retrain.register_model('churn', 'binary_classification');
SELECT retrain.register_model('other', 'ranking');
SELECT retrain.register_model(NULL, 'regression');

-- Policy: gates from the runbooks, two sign-off capacities, canary steps.
SELECT retrain.set_policy('churn', '{
  "gates": [{"metric": "f1", "op": ">=", "relative": -0.01},
            {"metric": "auc", "op": ">=", "relative": -0.005},
            {"metric": "precision", "op": ">=", "value": 0.85},
            {"metric": "recall", "op": ">=", "value": 0.80},
            {"metric": "latency_p99_ms", "op": "<", "value": 1000}],
  "approvals": {"reviewer": "retrain_regress_reviewers", "approver": "retrain_regress_approvers"},
  "rollout": {"steps": [10, 50, 100], "dwell": ["1 day", "2 days"]}}') -> 'rollout' AS rollout;
SELECT retrain.set_policy('churn', '{"gate": []}');
SELECT retrain.set_policy('churn', '{"gates": [{"metric": "f1", "op": "=", "value": 1}]}');
SELECT retrain.set_policy('churn', '{"gates": [{"metric": "f1", "op": ">=", "value": 1, "relative": 0}]}');
SELECT retrain.set_policy('churn', '{"approvals": {"cfo": "no_such_role_anywhere"}}');
SELECT retrain.set_policy('churn', '{"rollout": {"steps": [50, 10, 100]}}');
SELECT retrain.set_policy('churn', '{"rollout": {"steps": [10, 50]}}');
SELECT retrain.set_policy('churn', '{"rollout": {"steps": [10, 50, 100], "dwell": ["1 day"]}}');
SELECT retrain.set_policy('churn', '{"rollout": {"steps": [10, 50, 100], "dwell": ["1 day", "soon"]}}');
SELECT retrain.set_policy('churn', '[]');
SELECT retrain.set_policy('nope', '{}');
-- The refused policies changed nothing.
SELECT jsonb_array_length(retrain.effective_policy('churn') -> 'gates') AS gates;

-- Versions, with lineage; bad ones refused.
SELECT retrain.register_version('churn', 'v1', 's3://models/churn/v1.joblib', repeat('a', 64),
                                '{"f1": 0.81, "auc": 0.90, "precision": 0.88, "recall": 0.82, "latency_p99_ms": 120}',
                                '{"max_depth": 6}', 'abc123', 42, 'snap-2026-01',
                                '[2025-10-01, 2026-01-01)', '{tenure, amount, plan}');
SELECT version, stage, artifact_sha256 = repeat('a', 64) AS sha_ok, code_commit, seed, dataset_snapshot,
       data_range, features, metrics, registered_by
  FROM retrain.model_versions;
SELECT retrain.register_version('churn', 'v1', 'x', repeat('a', 64), '{}');
SELECT retrain.register_version('churn', 'bad', 'x', 'ABC', '{}');
SELECT retrain.register_version('churn', 'bad', 'x', repeat('a', 64), '{"f1": "high"}');
SELECT retrain.register_version('nope', 'v1', 'x', repeat('a', 64), '{}');

-- The first release: relative gates have no production to compare with.
SELECT * FROM retrain.evaluate('churn', 'v1');
-- Not signed yet: refused, with everything missing listed.
SELECT retrain.promote('churn', 'v1', 'blue_green');
RESET SESSION AUTHORIZATION;

-- Sign-offs: by members of the capacity's role, once per person.
SET SESSION AUTHORIZATION retrain_regress_alice;
SELECT retrain.approve('churn', 'v1', 'approver');
SELECT retrain.approve('churn', 'v1', 'cfo');
SELECT retrain.approve('churn', 'v1', 'reviewer', 'reproduced from abc123');
SELECT retrain.approve('churn', 'v1', 'reviewer');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION retrain_regress_bob;
SELECT retrain.approve('churn', 'v1', 'approver', 'ship it');
RESET SESSION AUTHORIZATION;
SELECT version, capacity, approver, comment FROM retrain.approvals ORDER BY capacity;

-- Blue-green: production at once.
SET SESSION AUTHORIZATION retrain_regress_owner;
SELECT retrain.promote('churn', 'v1', 'blue_green');
SELECT production_version, previous_version, canary_version, canary_percent, shadow_version, mode
  FROM retrain.deployments;

-- v2 is worse than production by more than the gates allow.
SELECT retrain.register_version('churn', 'v2', 's3://models/churn/v2.joblib', repeat('b', 64),
                                '{"f1": 0.79, "auc": 0.897, "precision": 0.86, "recall": 0.81}');
SELECT * FROM retrain.evaluate('churn', 'v2');
RESET SESSION AUTHORIZATION;
GRANT retrain_regress_reviewers TO retrain_regress_owner;
SET SESSION AUTHORIZATION retrain_regress_owner;
-- The owner registered v2, so may not sign it even as a reviewer; the owner
-- may override, with a reason.
SELECT retrain.approve('churn', 'v2', 'reviewer');
RESET SESSION AUTHORIZATION;
REVOKE retrain_regress_reviewers FROM retrain_regress_owner;
SET SESSION AUTHORIZATION retrain_regress_owner;
SELECT retrain.promote('churn', 'v2', 'canary');
SELECT retrain.promote('churn', 'v2', 'shadow', override_reason => 'shadow only: compare online');
SELECT production_version, canary_version, shadow_version FROM retrain.deployments;
SELECT (retrain.route_detail('churn', 'member-7')).*;
SELECT retrain.promote('churn', 'v1', 'canary');
SELECT retrain.promote('churn', 'v2', 'rainbow', override_reason => 'x');
SELECT retrain.promote('churn', 'v9');
SELECT ev.event, ev.details->>'override' AS override, ev.details->>'override_reason' AS reason
  FROM retrain.log ev WHERE ev.model = 'churn' AND ev.event = 'promoted' ORDER BY ev.id;

-- v3 passes the gates: canary 10% -> 50% -> 100% (production).
SELECT retrain.register_version('churn', 'v3', 's3://models/churn/v3.joblib', repeat('c', 64),
                                '{"f1": 0.83, "auc": 0.91, "precision": 0.89, "recall": 0.84, "latency_p99_ms": 140}');
SELECT gate, passed FROM retrain.evaluate('churn', 'v3');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION retrain_regress_alice;
SELECT retrain.approve('churn', 'v3', 'reviewer');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION retrain_regress_bob;
SELECT retrain.approve('churn', 'v3', 'approver');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION retrain_regress_owner;
SELECT retrain.promote('churn', 'v3');
SELECT retrain.promote('churn', 'v3');
SELECT production_version, canary_version, canary_percent FROM retrain.deployments;

-- Sticky, monotone routing: a unit in the canary at 10% stays in at 50%.
CREATE TEMP TABLE at10 AS
SELECT i, retrain.route('churn', 'member-' || i) AS v FROM generate_series(1, 2000) i;
SELECT v, count(*) FROM at10 GROUP BY v ORDER BY v;
SELECT count(*) = sum((retrain.bucket('churn', 'member-' || i) < 1000)::int) AS canary_is_bucket_below_1000
  FROM at10 WHERE v = 'v3';
SELECT retrain.advance('churn');
SELECT count(*) AS left_the_canary
  FROM at10 WHERE v = 'v3' AND retrain.route('churn', 'member-' || i) <> 'v3';
SELECT retrain.set_traffic('churn', 25.5);
SELECT retrain.set_traffic('churn', 101);
SELECT retrain.advance('churn');
SELECT retrain.advance('churn');
SELECT production_version, previous_version, canary_version, canary_percent FROM retrain.deployments;
SELECT version, stage FROM retrain.model_versions ORDER BY version;
SELECT retrain.advance('churn');
SELECT retrain.set_traffic('churn', 10);

-- Overrides of routing, and their expiry.
SELECT retrain.force('churn', 'fallback');
SELECT retrain.route('churn', 'member-1') AS fallback_route, (retrain.route_detail('churn', 'member-1')).arm;
SELECT retrain.force('churn', 'production', now() + interval '1 hour');
SELECT (retrain.route_detail('churn', 'member-1')).arm;
SELECT retrain.force('churn', 'auto');
SELECT retrain.force('churn', 'sometimes');
SELECT retrain.force('churn', 'fallback', '2000-01-01');

-- Rollback: back to v1, then nothing earlier to return to (v3 was rolled back from).
SELECT retrain.rollback('churn', 'p99 latency +60%');
SELECT retrain.rollback('churn', 'again');
SELECT retrain.rollback('churn', NULL);
SELECT production_version, previous_version FROM retrain.deployments;

-- The manifest: production and its history, oldest first.
SELECT m->'production'->>'version' AS production,
       jsonb_path_query_array(m, '$.history[*].version') AS history,
       jsonb_path_query_array(m, '$.history[*].ended_by') AS ended_by
  FROM retrain.manifest('churn') m;
RESET SESSION AUTHORIZATION;

-- The log: every change, by whom, chained.
SELECT row_number() OVER (ORDER BY id) AS n, event, version, actor
  FROM retrain.log WHERE model = 'churn' ORDER BY id;
SELECT ok, first_bad_id, rows_checked = (SELECT count(*) FROM retrain.log) AS checked_all
  FROM retrain.verify_log();
UPDATE retrain.log SET actor = 'someone' WHERE id = 3;
DELETE FROM retrain.log WHERE id = 3;
TRUNCATE retrain.log;
-- With the guard switched off, tampering is detected.
ALTER TABLE retrain.log DISABLE TRIGGER log_append_only;
CREATE TEMP TABLE forged AS
SELECT id FROM retrain.log WHERE model = 'churn' AND event = 'evaluated' AND version = 'v2';
UPDATE retrain.log SET details = details || '{"comment": "forged"}' WHERE id = (SELECT id FROM forged);
SELECT ok, first_bad_id = (SELECT id FROM forged) AS found_the_forged_row FROM retrain.verify_log();
UPDATE retrain.log SET details = details - 'comment' WHERE id = (SELECT id FROM forged);
SELECT ok FROM retrain.verify_log();
-- A row deleted in the middle, and the last row deleted.
CREATE TEMP TABLE saved AS SELECT * FROM retrain.log WHERE id = (SELECT id FROM forged);
DELETE FROM retrain.log WHERE id = (SELECT id FROM forged);
SELECT ok, first_bad_id = (SELECT id FROM forged) AS found_the_gap FROM retrain.verify_log();
INSERT INTO retrain.log SELECT * FROM saved;
-- Two rows swapped (their contents exchanged between ids).
CREATE TEMP TABLE pair AS SELECT * FROM retrain.log WHERE id IN ((SELECT id FROM forged), (SELECT id FROM forged) + 1);
UPDATE retrain.log l SET event = p.event, version = p.version, details = p.details
  FROM pair p WHERE (l.id = (SELECT id FROM forged) AND p.id = l.id + 1)
                 OR (l.id = (SELECT id FROM forged) + 1 AND p.id = l.id - 1);
SELECT ok, first_bad_id = (SELECT id FROM forged) AS found_the_swap FROM retrain.verify_log();
UPDATE retrain.log l SET event = p.event, version = p.version, details = p.details
  FROM pair p WHERE p.id = l.id;
SELECT ok FROM retrain.verify_log();
-- The chain against a head recorded elsewhere: the head it has, one it
-- never had, a hash that is not the head's.
SELECT ok FROM retrain.verify_log((SELECT last_id FROM retrain.log_head), (SELECT last_hash FROM retrain.log_head));
SELECT ok, first_bad_id = (SELECT last_id + 1 FROM retrain.log_head) AS at_the_end
  FROM retrain.verify_log((SELECT last_id + 5 FROM retrain.log_head), repeat('a', 64));
SELECT ok FROM retrain.verify_log((SELECT last_id FROM retrain.log_head), repeat('a', 64));
SELECT ok FROM retrain.verify_log(0, repeat('0', 64)) AS the_empty_head;
SELECT * FROM retrain.verify_log(NULL, NULL);
SELECT * FROM retrain.verify_log(-1, repeat('0', 64));

DELETE FROM retrain.log WHERE id = (SELECT max(id) FROM retrain.log);
SELECT ok, first_bad_id = (SELECT last_id FROM retrain.log_head) AS found_the_missing_tail FROM retrain.verify_log();
ALTER TABLE retrain.log ENABLE TRIGGER log_append_only;

-- Privileges: readers read, and are refused every state change.
SET SESSION AUTHORIZATION retrain_regress_reader;
SELECT count(*) > 0 AS can_read FROM retrain.deployments;
SELECT retrain.effective_policy('churn') -> 'rollout' AS reader_sees_policy,
       retrain.manifest('churn') ->> 'model' AS reader_sees_manifest,
       (retrain.verify_log()).ok IS NOT NULL AS reader_verifies;
SELECT retrain.route('churn', 'member-1') IS NOT NULL AS can_route;
SELECT retrain.register_model('x', 'regression');
SELECT retrain.set_policy('churn', '{}');
SELECT retrain.register_version('churn', 'v9', 'x', repeat('a', 64), '{}');
SELECT * FROM retrain.evaluate('churn', 'v3');
SELECT retrain.approve('churn', 'v3', 'reviewer');
SELECT retrain.promote('churn', 'v3');
SELECT retrain.set_traffic('churn', 10);
SELECT retrain.advance('churn');
SELECT retrain.rollback('churn', 'x');
SELECT retrain.force('churn', 'auto');
UPDATE retrain.deployments SET canary_percent = 100;
INSERT INTO retrain.log (id, at, event, actor, prev_hash, hash) VALUES (1000, now(), 'x', 'x', 'x', 'x');
RESET SESSION AUTHORIZATION;

-- route() for a model that is not registered (an error, not a silent
-- fallback), and bucket() test vectors (see docs).
SELECT retrain.route('no-such-model', 'u') AS unknown_model;
SELECT retrain.bucket('churn', 'member-1'), retrain.bucket('', ''), retrain.bucket('model', 'ünïcode');

-- A model name of 128 bytes or more is too long for the route cache's key,
-- so route() reads its deployment at every call; the session-long cache
-- must not grow for it (it kept about 24 bytes a call: 2.4 MB after
-- 100,000 calls).  The short name beside it is cached as before.
SELECT retrain.register_model(repeat('m', 200), 'binary_classification');
SELECT retrain.register_version(repeat('m', 200), 'v1', 's3://m/v1', repeat('a', 64), '{}');
SELECT retrain.promote(repeat('m', 200), 'v1', 'blue_green', override_reason => 'regress');
SELECT retrain.route(repeat('m', 200), 'u') AS long_name_routes, retrain.route('churn', 'u') IS NOT NULL AS short_name_routes;
SELECT total_bytes AS cache_before FROM pg_backend_memory_contexts WHERE name = 'retrain route cache' \gset
SELECT count(retrain.route(repeat('m', 200), i::text)) AS routed FROM generate_series(1, 20000) i;
SELECT total_bytes - :cache_before = 0 AS cache_did_not_grow
  FROM pg_backend_memory_contexts WHERE name = 'retrain route cache';

-- Ownership: only a member of both the current and the new owner role.
SELECT retrain.set_owner('churn', 'retrain_regress_reviewers') AS new_owner;
SELECT owner FROM retrain.models WHERE name = 'churn';
SET SESSION AUTHORIZATION retrain_regress_alice;
SELECT retrain.set_owner('churn', 'retrain_regress_owner');
RESET SESSION AUTHORIZATION;
SELECT retrain.set_owner('churn', 'retrain_regress_owner') AS back_to;
SELECT retrain.set_owner('churn', NULL);
SELECT retrain.set_owner('churn', 'no_such_role');
SELECT retrain.set_owner('nope', 'retrain_regress_owner');
SELECT retrain.set_owner(NULL, 'retrain_regress_owner');
SELECT event, details FROM retrain.log WHERE event = 'owner_set' AND model = 'churn' ORDER BY id;

-- Clean up.
DELETE FROM retrain.approvals; DELETE FROM retrain.evaluations; DELETE FROM retrain.production_history;
UPDATE retrain.deployments SET production_version = NULL, previous_version = NULL, canary_version = NULL,
       shadow_version = NULL;
DELETE FROM retrain.model_versions; DELETE FROM retrain.deployments; DELETE FROM retrain.models;
DROP OWNED BY retrain_regress_owner, retrain_regress_alice, retrain_regress_bob, retrain_regress_reader;
DROP ROLE retrain_regress_owner, retrain_regress_alice, retrain_regress_bob, retrain_regress_reader,
          retrain_regress_reviewers, retrain_regress_approvers;

-- The merge of a policy under the defaults (in C) gives what the rules of
-- docs/policy.md give, written out in SQL here: sections merged or
-- replaced, only the named triggers with their defaults, several schedules
-- each with theirs, JSON null kept, sections the defaults lack kept.
CREATE FUNCTION pg_temp.merge_ref(defaults jsonb, policy jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_object_agg(k, CASE
               WHEN k = 'triggers' THEN
                   coalesce((SELECT jsonb_object_agg(t.key, CASE
                                 WHEN jsonb_typeof(t.value) = 'array' THEN
                                     (SELECT coalesce(jsonb_agg(coalesce(defaults->'triggers'->t.key, '{}') || e
                                                                ORDER BY o), '[]')
                                        FROM jsonb_array_elements(t.value) WITH ORDINALITY x(e, o))
                                 ELSE coalesce(defaults->'triggers'->t.key, '{}') || t.value END)
                               FROM jsonb_each(policy->'triggers') t), '{}')
               WHEN jsonb_typeof(defaults->k) = 'object' AND jsonb_typeof(policy->k) = 'object'
                   THEN (defaults->k) || (policy->k)
               ELSE coalesce(policy->k, defaults->k) END)
      FROM (SELECT jsonb_object_keys(defaults) UNION SELECT jsonb_object_keys(policy)) AS keys(k)
$$;
SELECT count(*) AS policies,
       count(*) FILTER (WHERE retrain._merge_policy(retrain._policy_defaults(), p)
                              IS NOT DISTINCT FROM pg_temp.merge_ref(retrain._policy_defaults(), p)) AS same
  FROM unnest(ARRAY['{}', '{"gates": [{"metric": "auc", "op": ">=", "value": 0.8}]}',
                    '{"rollout": {"steps": [5, 100]}, "rollback": null, "extra": {"a": 1}}',
                    '{"triggers": {"drift": {"psi": 0.1}, "schedule": [{"cron": "0 3 * * 1"}, {"every": "1 day", "priority": "high"}]}}',
                    '{"triggers": {"data_growth": {"min_rows": 5}, "unknown": {"x": 1}, "schedule": []}}',
                    '{"rollups": {"enabled": false}, "search_path": ["team"], "versions": 7, "approvals": []}',
                    '{"triggers": {}}', '{"triggers": {"schedule": [5]}}']::jsonb[]
              || ARRAY(SELECT policy FROM retrain.models)) p;
-- a policy that is no object (set_policy refuses one) adds nothing
SELECT retrain._merge_policy('{"a": {"b": 1}}', '[1]') AS not_an_object;
SELECT retrain._merge_policy('{}', '{}') IS NULL AS no_sections, retrain._merge_policy(NULL, '{"a": 1}') AS no_defaults,
       retrain._merge_policy('{"a": {"b": 1}, "triggers": {"t": {"w": 1}}}', NULL) AS no_policy;
