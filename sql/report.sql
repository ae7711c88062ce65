--
-- The daily and weekly report over any source (issue 14, item 13):
-- report() gives version_stats' figures for retrain.predictions and for a
-- set_source relation alike.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- version_stats buckets days in the session's time zone, report() in UTC
SET TIME ZONE 'UTC';

SELECT retrain.register_model(m, 'binary_classification') FROM unnest('{rep_log, rep_src}'::text[]) m;
SELECT retrain.register_version(m, v, 's3://m/' || v, encode(sha256((m || v)::bytea), 'hex'), '{}')
  FROM unnest('{rep_log, rep_src}'::text[]) m, unnest('{v1, v2}'::text[]) v;

-- Three days of predictions of two versions, a third labelled, some slow,
-- some failed; the same rows in the log and in a team's own table.
CREATE TABLE rep_rows AS
SELECT i, CASE WHEN i % 4 = 0 THEN 'v2' ELSE 'v1' END AS version, 'u' || (i % 37) AS unit_key,
       '2026-05-04 00:00+00'::timestamptz + i * interval '17 minutes' AS predicted_at,
       ((i * 7919) % 1000) / 1000.0 AS score, (5 + (i * 31) % 200)::float8 AS latency_ms,
       i % 50 = 0 AS error,
       CASE WHEN i % 3 = 0 THEN ((i * 7919) % 1000) / 1000.0 + (i % 5) / 10.0 > 0.7 END AS label
  FROM generate_series(1, 250) i;
SELECT count(*) FROM (
  SELECT retrain.log_prediction('rep_log', version, unit_key, score, latency_ms, error, NULL, predicted_at) AS id, label
    FROM rep_rows ORDER BY i) x, LATERAL (SELECT retrain.log_outcome(x.id, x.label, '2026-05-08 00:00+00')
                                           WHERE x.label IS NOT NULL) o;
CREATE TABLE rep_source AS
SELECT version, unit_key, predicted_at, score, latency_ms, error, label,
       CASE WHEN label IS NOT NULL THEN '2026-05-08 00:00+00'::timestamptz END AS observed_at
  FROM rep_rows;
SELECT retrain.set_source('rep_src', 'rep_source');

-- The daily report equals version_stats, figure by figure, for both.
SELECT r.version, r.bucket_start, r.predictions, r.units, r.labelled_share, r.invalid_rows, r.metric,
       round(r.metric_value::numeric, 6) AS metric_value
  FROM retrain.report('rep_log', '2026-05-04', '2026-05-10') r ORDER BY 1, 2;
-- (to 12 significant digits: a parallel plan may add the means' terms in
-- another order)
CREATE FUNCTION pg_temp.r12(x float8) RETURNS numeric LANGUAGE sql
    RETURN CASE WHEN x = 0 THEN 0 ELSE round(x::numeric, 11 - floor(log(abs(x::numeric)))::integer) END;
SELECT count(*) AS rows_differing
  FROM (SELECT version, bucket_start, predictions, units, pg_temp.r12(mean_confidence), pg_temp.r12(mean_latency_ms),
               pg_temp.r12(p95_latency_ms), pg_temp.r12(p99_latency_ms), pg_temp.r12(error_rate),
               pg_temp.r12(labelled_share), metric, pg_temp.r12(metric_value)
          FROM retrain.report('rep_log', '2026-05-04', '2026-05-10')
        EXCEPT
        SELECT version, day, predictions, units, pg_temp.r12(mean_confidence), pg_temp.r12(mean_latency_ms),
               pg_temp.r12(p95_latency_ms), pg_temp.r12(p99_latency_ms), pg_temp.r12(error_rate),
               pg_temp.r12(labelled_share), metric, pg_temp.r12(metric_value)
          FROM retrain.version_stats WHERE model = 'rep_log') d;
CREATE FUNCTION pg_temp.rounded(m text) RETURNS TABLE (v text, b timestamptz, n bigint, u bigint, c numeric, l numeric,
                                                       p95 numeric, p99 numeric, e numeric, s numeric, i bigint,
                                                       metric text, mv numeric) LANGUAGE sql
    AS $$ SELECT version, bucket_start, predictions, units, pg_temp.r12(mean_confidence), pg_temp.r12(mean_latency_ms),
                 pg_temp.r12(p95_latency_ms), pg_temp.r12(p99_latency_ms), pg_temp.r12(error_rate),
                 pg_temp.r12(labelled_share), invalid_rows, metric, pg_temp.r12(metric_value)
            FROM retrain.report(m, '2026-05-04', '2026-05-10') $$;
SELECT count(*) AS rows_differing
  FROM (SELECT * FROM pg_temp.rounded('rep_log') EXCEPT SELECT * FROM pg_temp.rounded('rep_src')) d;

-- "The 7-day report" is one call: weekly buckets start on Mondays (UTC).
SELECT version, bucket_start, predictions, round(metric_value::numeric, 6) AS auc
  FROM retrain.report('rep_src', '2026-05-04', '2026-05-11', '7 days');
-- hourly, a window that cuts a bucket: only rows in [since, until) count
SELECT sum(predictions) AS in_window FROM retrain.report('rep_log', '2026-05-04 10:30+00', '2026-05-04 12:00+00', '1 hour');
SELECT count(*) AS rows FROM rep_rows WHERE predicted_at >= '2026-05-04 10:30+00' AND predicted_at < '2026-05-04 12:00+00';
-- outcomes as known at until: none were observed before 8 May
SELECT sum(labelled_share) AS labelled, max(metric_value) AS metric FROM retrain.report('rep_src', '2026-05-04', '2026-05-07');
-- an invalid score is counted, and left out of the metric
INSERT INTO rep_source VALUES ('v1', 'bad', '2026-05-04 00:05+00', 1.5, 1, false, true, '2026-05-08 00:00+00');
SELECT version, predictions, invalid_rows, round(metric_value::numeric, 6) AS auc
  FROM retrain.report('rep_src', '2026-05-04', '2026-05-09') WHERE version = 'v1' AND bucket_start = '2026-05-04';

-- Bad arguments.
SELECT * FROM retrain.report('rep_log', '2026-05-04', '2026-05-04');
SELECT * FROM retrain.report('rep_log', '-infinity', '2026-05-04');
SELECT * FROM retrain.report('rep_log', '2026-05-04', '2026-05-05', '1 month');
SELECT * FROM retrain.report('rep_log', '2026-05-04', '2026-05-05', '0');
SELECT * FROM retrain.report('rep_log', '2026-05-04', '2026-05-05', '-1 day');
SELECT * FROM retrain.report('rep_log', '2026-05-04', '2026-05-05', NULL);
SELECT * FROM retrain.report('nosuch', '2026-05-04');
-- Who may read: the owner's members; for the log, its readers too.
CREATE ROLE rep_nobody;
CREATE ROLE rep_analyst;
GRANT SELECT ON retrain.predictions, retrain.outcomes TO rep_analyst;
GRANT SELECT ON rep_source TO rep_analyst;
SET SESSION AUTHORIZATION rep_nobody;
SELECT count(*) FROM retrain.report('rep_log', '2026-05-04');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION rep_analyst;
SELECT count(*) FROM retrain.report('rep_log', '2026-05-04', '2026-05-10');
SELECT count(*) FROM retrain.report('rep_src', '2026-05-04', '2026-05-10');
RESET SESSION AUTHORIZATION;

-- Clean up.
SELECT retrain.set_source('rep_src', NULL);
DROP TABLE rep_source, rep_rows;
REVOKE ALL ON retrain.predictions, retrain.outcomes FROM rep_analyst;
DROP ROLE rep_nobody;
DROP ROLE rep_analyst;
RESET TIME ZONE;
