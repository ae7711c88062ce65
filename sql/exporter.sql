--
-- What monitoring scrapes (issue 16): version_health, written by each
-- cycle from the rollups, equals the figures of the rows of the same
-- buckets; the metrics_* views give one row per series; only a role
-- granted them reads them; each cycle checks the log's chain added since
-- its last check, and a broken link shows in metrics_log.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET TIME ZONE 'UTC';

SELECT retrain.register_model('exp', 'binary_classification');
SELECT retrain.register_version('exp', 'v1', 's3://m/v1', repeat('a', 64), '{"auc": 0.8}');
SELECT retrain.register_version('exp', 'v2', 's3://m/v2', repeat('b', 64), '{"auc": 0.8}');
SELECT retrain.promote('exp', 'v1', 'blue_green', override_reason => 'first release');
SELECT retrain.promote('exp', 'v2', 'canary', override_reason => 'canary');
UPDATE retrain.models SET created_at = '2026-01-01 00:00+00' WHERE name = 'exp';
-- Three hours of traffic, a tenth on the canary: scores tied in tens,
-- latencies from 1 to 250 ms, some errors, a score no metric can take
-- (1.5), labels for a third a minute later; each row logged as it
-- happened.
INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, logged_at, score, latency_ms, error)
SELECT 'exp', CASE WHEN i % 10 = 0 THEN 'v2' ELSE 'v1' END, 'u' || i, t, t,
       CASE WHEN i = 77 THEN 1.5 ELSE (i / 7 % 10) / 10.0 END, 1 + (i * 7919) % 250, i % 37 = 0
  FROM generate_series(0, 10799) i, LATERAL (SELECT '2026-03-09 09:00+00'::timestamptz + i * interval '1 second') x(t);
INSERT INTO retrain.outcomes (prediction_id, label, observed_at, logged_at)
SELECT id, (score >= 0.5) <> (substr(unit_key, 2)::int % 5 = 0), predicted_at + interval '1 minute',
       predicted_at + interval '1 minute'
  FROM retrain.predictions WHERE model = 'exp' AND substr(unit_key, 2)::int % 3 = 0;

-- A cycle at 11:20 with a 90-minute health window: the buckets from 09:00
-- (the one holding 09:50) to the last folded row (the cycle folds what
-- was logged up to 11:15, the rollups' settle time before).
SELECT retrain.set_policy('exp', '{"results": {"health_window": "90 minutes"}}') IS NOT NULL AS set;
SELECT retrain.run_checks('2026-03-09 11:20+00');
SELECT model, version, checked_at, window_start, predictions, labelled, invalid, metric
  FROM retrain.version_health WHERE model = 'exp' ORDER BY version;
-- the same figures from the rows: counts, error rate and AUC exactly,
-- latency percentiles within 1%
SELECT window_end AS folded_until FROM retrain.version_health WHERE model = 'exp' LIMIT 1 \gset
WITH direct AS (
    SELECT p.version, count(*) AS predictions, count(o.prediction_id) FILTER (WHERE p.score <= 1) AS labelled,
           count(*) FILTER (WHERE p.score > 1) AS invalid,
           (count(*) FILTER (WHERE p.error))::float8 / count(p.error) AS error_rate,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY p.latency_ms) AS p50,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY p.latency_ms) AS p95,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY p.latency_ms) AS p99,
           retrain.auc(p.score, o.label) FILTER (WHERE p.score <= 1) AS auc
      FROM retrain.predictions p
      LEFT JOIN retrain.outcomes o ON o.prediction_id = p.id AND o.logged_at <= :'folded_until'
     WHERE p.model = 'exp' AND p.predicted_at >= '2026-03-09 09:00+00' AND p.logged_at <= :'folded_until'
     GROUP BY p.version)
SELECT d.version, h.predictions = d.predictions AS predictions, h.labelled = d.labelled AS labelled,
       h.invalid = d.invalid AS invalid, h.error_rate = d.error_rate AS error_rate,
       abs(h.latency_p50_ms / d.p50 - 1) <= 0.01 AS p50, abs(h.latency_p95_ms / d.p95 - 1) <= 0.01 AS p95,
       abs(h.latency_p99_ms / d.p99 - 1) <= 0.01 AS p99, h.metric_value = d.auc AS auc
  FROM direct d JOIN retrain.version_health h ON h.model = 'exp' AND h.version = d.version
 ORDER BY d.version;

-- The views the exporter reads: a row per series.
SELECT model, version, stage, predictions, labelled, invalid, metric, window_seconds
  FROM retrain.metrics_versions WHERE model = 'exp' ORDER BY version;
SELECT model, production_version, canary_version, canary_share, mode, frozen, open_requests, claimed_requests,
       training_failing, check_failing
  FROM retrain.metrics_models WHERE model = 'exp';
SELECT retrain.set_policy('exp', '{"results": {"health_window": "90 minutes"},
  "triggers": {"drift": {"psi": 0.2, "window": "1 day"}}}') IS NOT NULL AS set;
SELECT retrain.freeze('exp', 'INC-1') IS NOT NULL AS frozen;
SELECT retrain.run_checks('2026-03-09 11:30+00');
SELECT model, trigger, fired, usable, eligible, observed, threshold FROM retrain.metrics_triggers WHERE model = 'exp';
SELECT model, frozen FROM retrain.metrics_models WHERE model = 'exp';
-- a version without traffic in the window has no row
SELECT count(*) AS rows_at_night FROM (SELECT retrain.run_checks('2026-03-10 03:00+00')) x, retrain.version_health
 WHERE model = 'exp';

-- Not for PUBLIC: figures of every model.  A role granted the views reads
-- them, and nothing of the log's rows.
CREATE ROLE exp_monitor;
SET SESSION AUTHORIZATION exp_monitor;
SELECT count(*) FROM retrain.metrics_versions;
RESET SESSION AUTHORIZATION;
GRANT SELECT ON retrain.metrics_versions, retrain.metrics_triggers, retrain.metrics_features, retrain.metrics_models,
                retrain.metrics_log TO exp_monitor;
SET SESSION AUTHORIZATION exp_monitor;
SELECT (SELECT count(*) FROM retrain.metrics_models WHERE model = 'exp') AS models,
       (SELECT count(*) FROM retrain.metrics_triggers WHERE model = 'exp') AS triggers,
       (SELECT count(*) FROM retrain.metrics_log) AS log_kinds;
SELECT count(*) FROM retrain.predictions;
RESET SESSION AUTHORIZATION;
REVOKE ALL ON retrain.metrics_versions, retrain.metrics_triggers, retrain.metrics_features, retrain.metrics_models,
              retrain.metrics_log FROM exp_monitor;
DROP ROLE exp_monitor;

-- The policy key: an interval, like the retention.
SELECT retrain.set_policy('exp', '{"results": {"health_window": "soon"}}');
SELECT retrain.set_policy('exp', '{"results": {"health_window": 60}}');

-- The log's chain: each cycle checks what was added since its last check
-- (run_cycle, as the worker and the pg_cron job run it); verify_log() the
-- whole chain.  Both are on record for monitoring.  In a database of its
-- own: other tests leave this one's chain broken on purpose.
CREATE DATABASE retrain_exporter_log;
\c retrain_exporter_log
SET client_min_messages = warning;
CREATE EXTENSION retrain;
SELECT retrain.register_model('exp', 'binary_classification');
SELECT retrain.freeze('exp', 'INC-1') IS NOT NULL AS frozen;
SELECT kind, ok, verified, rows_unverified FROM retrain.metrics_log ORDER BY kind;
CALL retrain.run_cycle();
SELECT kind, ok, verified, rows_unverified FROM retrain.metrics_log ORDER BY kind;
SELECT ok FROM retrain.verify_log();
SELECT kind, ok, verified, rows_unverified FROM retrain.metrics_log ORDER BY kind;
-- a row edited behind retrain's back (the table's owner can): a cycle
-- checks only the rows added since its last check, so the edited row,
-- checked before, passes there; verify_log() reads the whole chain and
-- finds it, and metrics_log says so until the next whole check
ALTER TABLE retrain.log DISABLE TRIGGER USER;
UPDATE retrain.log SET actor = 'mallory' WHERE id = (SELECT max(id) FROM retrain.log);
ALTER TABLE retrain.log ENABLE TRIGGER USER;
SELECT retrain.unfreeze('exp', 'INC-1 over');
CALL retrain.run_cycle();
SELECT kind, ok, verified FROM retrain.metrics_log ORDER BY kind;
SELECT ok, first_bad_id IS NOT NULL AS names_row FROM retrain.verify_log();
SELECT kind, ok FROM retrain.metrics_log ORDER BY kind;
-- an edit of a row added since the cycle's last check: the next cycle
-- finds it
SELECT retrain.freeze('exp', 'INC-2') IS NOT NULL AS frozen;
ALTER TABLE retrain.log DISABLE TRIGGER USER;
UPDATE retrain.log SET details = '{}' WHERE id = (SELECT max(id) FROM retrain.log);
ALTER TABLE retrain.log ENABLE TRIGGER USER;
CALL retrain.run_cycle();
SELECT kind, ok, verified FROM retrain.metrics_log ORDER BY kind;
\c contrib_regression
DROP DATABASE retrain_exporter_log;
