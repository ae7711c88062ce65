--
-- Every metric aggregate gives the serial result under a parallel plan.
--

CREATE TABLE metrics_parallel AS
SELECT i % 3 AS g,
       k / 10007.0::float8 AS score,
       k + (i % 17) * 500 > 9000 AS label,
       k > 5000 AS predicted,
       k / 10007.0::float8 + (i % 11) / 22.0::float8 AS actual
  FROM generate_series(1, 300000) i, LATERAL (SELECT i::bigint * 104729 % 10007 AS k) r;
ANALYZE metrics_parallel;

CREATE TEMP VIEW all_metrics AS
SELECT retrain.auc(score, label) AS auc,
       retrain.average_precision(score, label) AS ap,
       retrain.confusion(predicted, label) AS confusion,
       retrain.f1(score, label, 0.5) AS f1,
       retrain.brier(score, label) AS brier,
       retrain.log_loss(score, label) AS log_loss,
       retrain.mae(score, actual) AS mae,
       retrain.rmse(score, actual) AS rmse,
       retrain.r2(score, actual) AS r2
  FROM metrics_parallel;

SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_result AS SELECT * FROM all_metrics;

-- EXPLAIN ANALYZE's plan, alike on every supported version: PostgreSQL 18
-- prints rows to two decimals and buffers unless told not to.
CREATE FUNCTION pg_temp.explain_analyze(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
        RETURN NEXT regexp_replace(line, 'rows=(\d+)\.00 ', 'rows=\1 ', 'g');
    END LOOP;
END
$$;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;

EXPLAIN (COSTS OFF) SELECT * FROM all_metrics;
-- The workers really run (the leader does not scan), and every partial
-- state crosses to the leader serialized.
SELECT * FROM pg_temp.explain_analyze('SELECT * FROM all_metrics') AS plan;
CREATE TEMP TABLE parallel_result AS SELECT * FROM all_metrics;

-- Counts and ranks are exact; sums agree to the last bits.
SELECT s.auc = p.auc AS auc, s.ap = p.ap AS ap, s.confusion = p.confusion AS confusion,
       s.f1 = p.f1 AS f1,
       abs(s.brier - p.brier) <= 1e-15 * s.brier AS brier,
       abs(s.log_loss - p.log_loss) <= 1e-15 * s.log_loss AS log_loss,
       abs(s.mae - p.mae) <= 1e-15 * s.mae AS mae,
       abs(s.rmse - p.rmse) <= 1e-15 * s.rmse AS rmse,
       abs(s.r2 - p.r2) <= 1e-14 * abs(s.r2) AS r2
  FROM serial_result s, parallel_result p;

-- Grouped, with partial aggregates per group.
EXPLAIN (COSTS OFF)
SELECT g, retrain.auc(score, label), retrain.r2(score, actual) FROM metrics_parallel GROUP BY g;
CREATE TEMP TABLE parallel_grouped AS
SELECT g, retrain.auc(score, label) AS auc, retrain.r2(score, actual) AS r2 FROM metrics_parallel GROUP BY g;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT g, s.auc = p.auc AS same_auc, abs(s.r2 - p.r2) <= 1e-14 * abs(s.r2) AS same_r2
  FROM (SELECT g, retrain.auc(score, label) AS auc, retrain.r2(score, actual) AS r2
          FROM metrics_parallel GROUP BY g) s
  JOIN parallel_grouped p USING (g)
 ORDER BY g;

RESET ALL;
DROP VIEW all_metrics;
DROP TABLE metrics_parallel;
