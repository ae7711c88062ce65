--
-- The drift aggregates give the serial result under a parallel plan.
--

CREATE TABLE drift_parallel AS
SELECT i % 2 = 0 AS is_reference,
       (i::bigint * 104729 % 10007) / 100.0::float8 + CASE WHEN i % 2 = 0 THEN 0 ELSE 3 END AS value,
       (ARRAY['a', 'b', 'c', 'd'])[1 + (i::bigint * 7919 % 4)] AS category,
       jsonb_build_object('x', (i::bigint * 104729 % 10007) / 100.0,
                          'y', CASE i % 7 WHEN 0 THEN to_jsonb('n/a'::text) WHEN 1 THEN 'null'::jsonb
                                          ELSE to_jsonb(i % 13) END) AS features
  FROM generate_series(1, 300000) i;
ANALYZE drift_parallel;

CREATE TEMP VIEW all_drift AS
SELECT retrain.quantile_edges(value, 20) AS edges,
       retrain.histogram(value, '{10, 20, 50, 75, 100}') AS histogram,
       retrain.psi(value, '{10, 20, 50, 75, 100}', '{1, 1, 3, 2, 2, 1}') AS psi,
       retrain.category_counts(category) AS categories,
       retrain.ks_2samp(value, is_reference) AS ks,
       retrain._feature_histograms(features, '{x,y}', '{10,20,50,2,4,8}', '{3,6}') AS features
  FROM drift_parallel;

SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_result AS SELECT * FROM all_drift;

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
SELECT * FROM pg_temp.explain_analyze('SELECT * FROM all_drift') AS plan;
CREATE TEMP TABLE parallel_result AS SELECT * FROM all_drift;

SELECT s.edges = p.edges AS edges, s.histogram = p.histogram AS histogram,
       abs(s.psi - p.psi) <= 1e-15 * s.psi AS psi, s.categories = p.categories AS categories,
       s.ks = p.ks AS ks, s.features = p.features AS features
  FROM serial_result s, parallel_result p;

RESET ALL;
DROP VIEW all_drift;
DROP TABLE drift_parallel;
