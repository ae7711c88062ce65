--
-- Versions (issue 14, item 5): naming patterns, required lineage, seeds and
-- named artifacts, duplicate SHA-256s, keeping the last N out of the archive.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

SELECT retrain.register_model('vs', 'binary_classification');
SELECT retrain.set_policy('vs', $${
  "versions": {"pattern": "^v[0-9]+\\.[0-9]+\\.[0-9]+$",
               "artifact_pattern": "^model_churn_v[0-9]+\\.[0-9]{8}T[0-9]{6}Z\\.joblib$"},
  "lineage": {"required": ["code_commit", "seed", "data_snapshot"]}}$$) -> 'versions' AS versions;

-- The version name and the artifact's file name follow the team's patterns.
SELECT retrain.register_version('vs', 'v1.0', 's3://m/model_churn_v1.20260601T120000Z.joblib', repeat('a', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1');
SELECT retrain.register_version('vs', 'v1.0.0', 's3://m/model_churn_v1.joblib', repeat('a', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1');
\set VERBOSITY default
-- Lineage: each missing item named, as the regulated runbook requires.
SELECT retrain.register_version('vs', 'v1.0.0', 's3://m/model_churn_v1.20260601T120000Z.joblib', repeat('a', 64), '{}',
                                code_commit => '');
\set VERBOSITY terse
-- several seeds satisfy "seed"; named artifacts each with their SHA-256
SELECT retrain.register_version('vs', 'v1.0.0', 's3://m/model_churn_v1.20260601T120000Z.joblib', repeat('a', 64), '{"auc": 0.8}',
                                code_commit => 'c1', seeds => '{7, 11, 13}', dataset_snapshot => 's3://snap/1',
                                artifacts => ('{"metrics": {"uri": "s3://m/metrics_v1.20260601T120000Z.json", "sha256": "'
                                              || repeat('b', 64) || '"}}')::jsonb);
SELECT version, seed, seeds, artifacts->'metrics'->>'uri' AS metrics_uri FROM retrain.model_versions WHERE model = 'vs';
SELECT details->'seeds' AS seeds, details->'artifacts' ? 'metrics' AS artifacts FROM retrain.log
 WHERE model = 'vs' AND event = 'registered';
-- malformed artifacts and seeds
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('c', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1',
                                artifacts => '{"metrics": {"uri": "s3://x", "sha256": "nothex"}}');
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('c', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1',
                                artifacts => ('{"metrics": {"uri": "s3://x", "sha256": "' || repeat('b', 64) || '", "size": 3}}')::jsonb);
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('c', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1', artifacts => '["x"]');
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('c', 64), '{}',
                                code_commit => 'c1', seeds => '{1, NULL}', dataset_snapshot => 's3://snap/1');
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('c', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1', artifacts => NULL);

-- The same SHA-256 for two versions is refused, unless the caller says so.
\set VERBOSITY default
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('a', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1');
\set VERBOSITY terse
SELECT retrain.register_version('vs', 'v1.0.1', 's3://m/model_churn_v1.20260602T120000Z.joblib', repeat('a', 64), '{}',
                                code_commit => 'c1', seed => 1, dataset_snapshot => 's3://snap/1',
                                allow_duplicate_sha => true);
SELECT details->>'duplicate_of' AS duplicate_of FROM retrain.log WHERE model = 'vs' AND version = 'v1.0.1' AND event = 'registered';

-- Bad rules are refused by set_policy.
SELECT retrain.set_policy('vs', '{"versions": {"pattern": "(unclosed"}}');
SELECT retrain.set_policy('vs', '{"versions": {"pattern": 5}}');
SELECT retrain.set_policy('vs', '{"versions": {"keep": 0}}');
SELECT retrain.set_policy('vs', '{"versions": {"keep": 2.5}}');
SELECT retrain.set_policy('vs', '{"versions": {"kept": 2}}');
SELECT retrain.set_policy('vs', '{"lineage": {"required": ["commit"]}}');
SELECT retrain.set_policy('vs', '{"lineage": {"required": "seed"}}');

-- versions.keep: "keep the last 3 versions".  What serves or stands by is
-- never archived; the rest beyond the newest 3 is, at each registration.
SELECT retrain.register_model('vk', 'regression');
SELECT retrain.set_policy('vk', '{"versions": {"keep": 3}}') -> 'versions' AS versions;
SELECT retrain.register_version('vk', 'v' || i, 's3://m/v' || i, lpad(to_hex(i), 64, '0'), '{}')
  FROM generate_series(1, 3) i;
SELECT retrain.promote('vk', 'v1', 'blue_green', override_reason => 'first'),
       retrain.promote('vk', 'v2', 'blue_green', override_reason => 'second');
-- four versions: v1 is the standby (previous), v2 production: neither goes
SELECT retrain.register_version('vk', 'v4', 's3://m/v4', lpad(to_hex(4), 64, '0'), '{}');
SELECT version, stage FROM retrain.model_versions WHERE model = 'vk' ORDER BY version;
-- v3 (registered) is beyond the newest 3 once v5 and v6 arrive
SELECT retrain.register_version('vk', 'v5', 's3://m/v5', lpad(to_hex(5), 64, '0'), '{}');
SELECT version, stage FROM retrain.model_versions WHERE model = 'vk' ORDER BY version;
SELECT retrain.register_version('vk', 'v6', 's3://m/v6', lpad(to_hex(6), 64, '0'), '{}');
SELECT version, stage FROM retrain.model_versions WHERE model = 'vk' ORDER BY version;
SELECT version, details FROM retrain.log WHERE model = 'vk' AND event = 'archived' ORDER BY id;

-- retire(): by hand, for what neither serves nor stands by; idempotent.
SELECT retrain.retire('vk', 'v5');
SELECT retrain.retire('vk', 'v5');
SELECT count(*) AS archived_logged FROM retrain.log WHERE model = 'vk' AND version = 'v5' AND event = 'archived';
SELECT retrain.retire('vk', 'v2');
SELECT retrain.retire('vk', 'v1');
SELECT retrain.retire('vk', 'v9');
SELECT retrain.retire(NULL, 'v1');
-- an archived version is never promoted, nor returned to
\set VERBOSITY default
SELECT retrain.promote('vk', 'v5', 'canary', override_reason => 'no');
\set VERBOSITY terse
SELECT retrain.promote('vk', 'v6', 'blue_green', override_reason => 'third');
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'vk';
SELECT retrain.retire('vk', 'v1') AS v1_retired_then_archived;
SELECT retrain.rollback('vk', 'v6 misbehaves');
SELECT production_version, previous_version FROM retrain.deployments WHERE model = 'vk';
-- lineage and log stay
SELECT version, artifact_uri, stage FROM retrain.model_versions WHERE model = 'vk' AND stage = 'archived' ORDER BY version;
-- Not for PUBLIC.
CREATE ROLE vs_nobody;
SET SESSION AUTHORIZATION vs_nobody;
SELECT retrain.retire('vk', 'v4');
RESET SESSION AUTHORIZATION;
DROP ROLE vs_nobody;
