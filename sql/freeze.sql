--
-- Release controls: a freeze halts new deployments (issue 14, item 1).
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE frz_team;
CREATE ROLE frz_owner IN ROLE frz_team;
CREATE ROLE frz_oncall;
GRANT EXECUTE ON FUNCTION retrain.freeze(text, text, timestamptz), retrain.unfreeze(text, text) TO frz_oncall;
GRANT EXECUTE ON FUNCTION retrain.freeze(text, text, timestamptz), retrain.unfreeze(text, text) TO frz_owner;
SELECT retrain.register_model('frz', 'binary_classification');
SELECT retrain.set_owner('frz', 'frz_team');
SELECT retrain.register_version('frz', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), '{}') FROM unnest('{v1, v2, v3}'::text[]) v;
SELECT retrain.promote('frz', 'v1', 'blue_green', override_reason => 't'),
       retrain.promote('frz', 'v2', 'canary', override_reason => 't');

-- The on-call operator of another team freezes it during an incident.
SET SESSION AUTHORIZATION frz_oncall;
SELECT retrain.freeze('frz', 'incident 4711: payments degraded') ->> 'reason' AS frozen;
RESET SESSION AUTHORIZATION;
SELECT frozen_reason, frozen_by, frozen_until FROM retrain.deployments WHERE model = 'frz';
SELECT retrain.manifest('frz')->'frozen'->>'reason' AS manifest_frozen;

-- While frozen: no promote, no advance, no traffic up, no candidate for all.
\set VERBOSITY default
SELECT retrain.advance('frz');
\set VERBOSITY terse
SELECT retrain.promote('frz', 'v3', 'blue_green', override_reason => 'capacity');
SELECT retrain.set_traffic('frz', 50);
SELECT retrain.force('frz', 'candidate');
-- Down, back and away still work.
SELECT retrain.set_traffic('frz', 5);
SELECT retrain.force('frz', 'production'), retrain.force('frz', 'fallback'), retrain.force('frz', 'auto');
-- The guard does not advance a healthy canary while frozen: it holds, and says why.
SELECT count(retrain.log_prediction('frz', v, 'u' || i, 0.5, 10, false, predicted_at => now() + i * interval '1 second'))
  FROM generate_series(1, 200) i, unnest('{v1, v2}'::text[]) v;
SELECT model, canary, decision, reason FROM retrain.guard_rollouts(now() + interval '1 hour') WHERE model = 'frz';
SELECT canary_version, canary_percent FROM retrain.deployments WHERE model = 'frz';
-- and still rolls back
SELECT retrain.rollback('frz', 'the incident is the canary');
SELECT production_version, canary_version FROM retrain.deployments WHERE model = 'frz';

-- Only the owner's members unfreeze early, with a reason; logged.
SET SESSION AUTHORIZATION frz_oncall;
SELECT retrain.unfreeze('frz', 'resolved');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION frz_owner;
SELECT retrain.unfreeze('frz', NULL);
SELECT retrain.unfreeze('frz', 'incident 4711 resolved');
SELECT retrain.unfreeze('frz', 'again');
RESET SESSION AUTHORIZATION;
SELECT retrain.promote('frz', 'v3', 'canary', override_reason => 'after the incident');
SELECT event, details->>'reason' AS reason FROM retrain.log
 WHERE model = 'frz' AND event IN ('frozen', 'unfrozen') ORDER BY id;

-- A freeze with an end ends by itself; a past end is refused.
SELECT retrain.freeze('frz', 'change window', now() + interval '1 hour') IS NOT NULL AS frozen;
SELECT retrain._freeze_of(d, now() + interval '2 hours') IS NULL AS over_after_its_end,
       retrain._freeze_of(d) IS NOT NULL AS in_force_now
  FROM retrain.deployments d WHERE model = 'frz';
SELECT retrain.freeze('frz', 'too late', '2020-01-01 00:00+00');
SELECT retrain.freeze('frz', '');
SELECT retrain.freeze(NULL, 'x');
SELECT retrain.freeze('nosuch', 'x');
SELECT retrain.unfreeze(NULL, 'x');
SELECT retrain.unfreeze('nosuch', 'x');
-- Not for PUBLIC.
CREATE ROLE frz_nobody;
SET SESSION AUTHORIZATION frz_nobody;
SELECT retrain.freeze('frz', 'x');
SELECT retrain.unfreeze('frz', 'x');
RESET SESSION AUTHORIZATION;

-- Clean up.
SELECT retrain.rollback('frz', 'clean up');
SELECT retrain.set_owner('frz', current_user);
REVOKE ALL ON FUNCTION retrain.freeze(text, text, timestamptz), retrain.unfreeze(text, text) FROM frz_owner, frz_oncall;
DROP ROLE frz_nobody;
DROP ROLE frz_oncall;
DROP ROLE frz_owner;
DROP ROLE frz_team;
