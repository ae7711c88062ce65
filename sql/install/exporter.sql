-- What monitoring scrapes: argument-free views, one row per series, that
-- read what the check cycle wrote (check_results, version_health,
-- log_verifications) and the registry, and compute nothing over the
-- prediction log, so that a scrape of hundreds of models stays in
-- milliseconds and works on a hot standby.  They run with their owner's
-- rights (figures of every model, never a prediction or a label): not for
-- PUBLIC; the GRANT recipe's retrain_monitor role reads them
-- (docs/monitoring.md has the exporter's queries file).

-- @replace

-- The latest result of each model and trigger, as check_results_latest,
-- but with the view owner's rights: check_results_latest applies the
-- table's row security as whoever reads (security_invoker), also inside
-- these views.
CREATE OR REPLACE VIEW @extschema@._latest_results AS
SELECT DISTINCT ON (r.model, r.trigger) r.*
  FROM @extschema@.check_results r
 ORDER BY r.model, r.trigger, r.checked_at DESC, r.id DESC;
COMMENT ON VIEW @extschema@._latest_results IS
    'The latest check result of each model and trigger, read with the view owner''s rights, for the metrics_* views (internal)';

CREATE OR REPLACE VIEW @extschema@.metrics_versions AS
SELECT h.model, h.version, coalesce(v.stage, 'unknown') AS stage, h.predictions, h.labelled, h.invalid,
       h.error_rate, h.latency_p50_ms, h.latency_p95_ms, h.latency_p99_ms, h.metric, h.metric_value,
       extract(epoch FROM h.window_end - h.window_start)::pg_catalog.float8 AS window_seconds,
       extract(epoch FROM pg_catalog.now() - h.checked_at)::pg_catalog.float8 AS age_seconds
  FROM @extschema@.version_health h
  LEFT JOIN @extschema@.model_versions v ON v.model = h.model AND v.version = h.version;
COMMENT ON VIEW @extschema@.metrics_versions IS
    'For monitoring: per model and version, the last cycle''s predictions, labelled and invalid counts, error rate, latency percentiles and main metric over results.health_window, with the version''s stage and the figures'' age';

CREATE OR REPLACE VIEW @extschema@.metrics_triggers AS
SELECT r.model, r.trigger,
       CASE WHEN r.fired THEN 1 WHEN NOT r.fired THEN 0 END AS fired,
       (r.fired IS NOT NULL)::integer AS usable,
       CASE WHEN r.eligible THEN 1 WHEN NOT r.eligible THEN 0 END AS eligible,
       r.observed, r.threshold,
       extract(epoch FROM pg_catalog.now() - r.checked_at)::pg_catalog.float8 AS age_seconds
  FROM @extschema@._latest_results r;
COMMENT ON VIEW @extschema@.metrics_triggers IS
    'For monitoring: per model and trigger, the last cycle''s decision (fired 1/0, NULL when it could not be evaluated), eligibility, observed value, threshold and age';

CREATE OR REPLACE VIEW @extschema@.metrics_features AS
SELECT r.model, r.trigger, f.key AS feature, (f.value #>> '{}')::pg_catalog.float8 AS psi
  FROM @extschema@._latest_results r
 CROSS JOIN LATERAL jsonb_each(r.detail->'by_feature') f
 WHERE jsonb_typeof(r.detail->'by_feature') = 'object' AND jsonb_typeof(f.value) = 'number';
COMMENT ON VIEW @extschema@.metrics_features IS
    'For monitoring: per model, drift trigger and feature, the PSI of the last cycle';

CREATE OR REPLACE VIEW @extschema@.metrics_models AS
SELECT m.name AS model, m.task, d.production_version, d.canary_version, d.shadow_version,
       coalesce(d.canary_percent, 0)::pg_catalog.float8 / 100 AS canary_share,
       coalesce(d.mode, 'auto') AS mode,
       (d.frozen_reason IS NOT NULL AND (d.frozen_until IS NULL OR d.frozen_until > pg_catalog.now()))::integer AS frozen,
       coalesce(q.open, 0) AS open_requests, coalesce(q.claimed, 0) AS claimed_requests,
       (f.n >= (@extschema@.effective_policy(m.name)->'requests'->>'max_failures')::numeric)::integer
           AS training_failing,
       f.n AS training_failures,
       (c.event = 'check_failed')::integer AS check_failing,
       extract(epoch FROM pg_catalog.now() - c.at)::pg_catalog.float8 AS checked_age_seconds
  FROM @extschema@.models m
  LEFT JOIN @extschema@.deployments d ON d.model = m.name
  LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE r.status = 'open') AS open,
                            count(*) FILTER (WHERE r.status = 'claimed') AS claimed
                       FROM @extschema@.requests r
                      WHERE r.model = m.name AND r.status IN ('open', 'claimed')) q ON true
  -- failed trainings since the last that succeeded or the last
  -- reset_failures(), as _training_failures() counts them (a view's
  -- functions run with the reader's rights: no internal one here)
  LEFT JOIN LATERAL (SELECT count(*) AS n
                       FROM @extschema@.requests r
                      WHERE r.model = m.name AND r.status = 'failed'
                        AND r.finished_at > coalesce(greatest(
                                (SELECT max(d.finished_at) FROM @extschema@.requests d
                                  WHERE d.model = m.name AND d.status = 'done'),
                                (SELECT max(l.at) FROM @extschema@.log l
                                  WHERE l.model = m.name AND l.event = 'failures_reset')), '-infinity')) f ON true
  -- the model's last check, by the cycle's index of events
  LEFT JOIN LATERAL (SELECT l.event, l.at
                       FROM (SELECT l1.event, l1.at FROM @extschema@.log l1
                              WHERE l1.model = m.name AND l1.event = 'checked' ORDER BY l1.at DESC LIMIT 1) l
                     UNION ALL
                     SELECT l.event, l.at
                       FROM (SELECT l2.event, l2.at FROM @extschema@.log l2
                              WHERE l2.model = m.name AND l2.event = 'check_failed' ORDER BY l2.at DESC LIMIT 1) l
                     ORDER BY at DESC LIMIT 1) c ON true;
COMMENT ON VIEW @extschema@.metrics_models IS
    'For monitoring: per model, its deployment (versions, canary share, mode, freeze), open and claimed requests, failed trainings, and whether its last check failed, with that check''s age';

CREATE OR REPLACE VIEW @extschema@.metrics_log AS
SELECT k.kind, (v.ok IS TRUE)::integer AS ok, (v.id IS NOT NULL)::integer AS verified,
       extract(epoch FROM pg_catalog.now() - v.verified_at)::pg_catalog.float8 AS age_seconds,
       coalesce(h.last_id, 0) AS head_id,
       coalesce(h.last_id, 0) - v.upto_id AS rows_unverified
  FROM (VALUES ('cycle'), ('full')) k(kind)
  LEFT JOIN LATERAL (SELECT * FROM @extschema@.log_verifications x WHERE x.kind = k.kind
                      ORDER BY x.id DESC LIMIT 1) v ON true
  LEFT JOIN @extschema@.log_head h ON true;
COMMENT ON VIEW @extschema@.metrics_log IS
    'For monitoring: per kind of check of the log''s hash chain (each cycle''s, verify_log()''s), whether the latest found it whole, its age, and the rows added since';

-- @once
-- Figures of every model: for the monitoring role the GRANT recipe makes.
REVOKE ALL ON @extschema@._latest_results, @extschema@.metrics_versions, @extschema@.metrics_triggers,
              @extschema@.metrics_features, @extschema@.metrics_models, @extschema@.metrics_log FROM PUBLIC;
