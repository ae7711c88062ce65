--
-- Rollups (issue 15), the first part: the aggregates' serialized partial
-- states, kept per group and merged later, give the figure over the rows.
-- Exactly for AUC and average precision; to the last bits for the mean
-- losses, whose states are compensated sums.
--

SET client_min_messages = warning;

-- 120,000 rows in 37 "buckets", ties, NULLs, a third labelled positive.
CREATE TABLE rollup_rows AS
SELECT i % 37 AS bucket,
       CASE WHEN i % 101 = 0 THEN NULL ELSE (k % 1000) / 1000.0::float8 END AS score,
       CASE WHEN i % 89 = 0 THEN NULL ELSE k % 3 = 0 OR k % 1000 > 900 END AS label,
       (k % 1000) / 100.0::float8 + (i % 7) AS actual
  FROM generate_series(1, 120000) i, LATERAL (SELECT i::bigint * 104729 % 10007 AS k) r;
ANALYZE rollup_rows;

CREATE TEMP TABLE rollup_states AS
SELECT bucket, retrain._rank_state(score, label) AS rank_state,
       retrain._brier_state(score, label) AS brier_state,
       retrain._log_loss_state(score, label) AS log_loss_state,
       retrain._mae_state(score, actual) AS mae_state,
       retrain._rmse_state(score, actual) AS rmse_state
  FROM rollup_rows GROUP BY bucket;

CREATE TEMP VIEW rollup_merged AS
SELECT retrain._auc_merged(rank_state) AS auc, retrain._average_precision_merged(rank_state) AS ap,
       retrain._mean_loss_merged(brier_state) AS brier, retrain._mean_loss_merged(log_loss_state) AS log_loss,
       retrain._mean_loss_merged(mae_state) AS mae, retrain._rmse_merged(rmse_state) AS rmse
  FROM rollup_states;
CREATE TEMP VIEW rollup_direct AS
SELECT retrain.auc(score, label) AS auc, retrain.average_precision(score, label) AS ap,
       retrain.brier(score, label) AS brier, retrain.log_loss(score, label) AS log_loss,
       retrain.mae(score, actual) AS mae, retrain.rmse(score, actual) AS rmse
  FROM rollup_rows;

SELECT d.auc = m.auc AS auc_exact, d.ap = m.ap AS ap_exact,
       abs(d.brier - m.brier) <= 1e-15 * d.brier AS brier_same,
       abs(d.log_loss - m.log_loss) <= 1e-15 * d.log_loss AS log_loss_same,
       abs(d.mae - m.mae) <= 1e-15 * d.mae AS mae_same,
       abs(d.rmse - m.rmse) <= 1e-15 * d.rmse AS rmse_same
  FROM rollup_direct d, rollup_merged m;

-- A subset of the buckets is the figure over their rows.
SELECT retrain.auc(score, label) = (SELECT retrain._auc_merged(rank_state) FROM rollup_states WHERE bucket < 5) AS subset_exact
  FROM rollup_rows WHERE bucket < 5;

-- A bucket without rows has no state (NULL), which merges as nothing; no
-- state at all is no figure.
SELECT retrain._rank_state(score, label) IS NULL AS no_rows_no_state FROM rollup_rows WHERE false;
SELECT retrain._auc_merged(s) = (SELECT retrain.auc(score, label) FROM rollup_rows WHERE bucket = 1) AS null_skipped
  FROM (SELECT rank_state FROM rollup_states WHERE bucket = 1 UNION ALL SELECT NULL) x(s);
SELECT retrain._auc_merged(s) IS NULL AS nothing FROM (SELECT NULL::bytea) x(s);
-- a state that is not one is an error, not a figure
SELECT retrain._auc_merged(s) FROM (VALUES ('\x0001'::bytea)) x(s);
SELECT retrain._mean_loss_merged(s) FROM (VALUES ('\xdeadbeef'::bytea)) x(s);
SELECT retrain._auc_merged(s) FROM (VALUES ('\x00000000000000ff0000000000000000'::bytea)) x(s);

-- The merges run in parallel plans and give the serial result.
CREATE TABLE rollup_states_p AS SELECT * FROM rollup_states;
ANALYZE rollup_states_p;
CREATE TEMP VIEW rollup_merged_p AS
SELECT retrain._auc_merged(rank_state) AS auc, retrain._average_precision_merged(rank_state) AS ap,
       retrain._mean_loss_merged(brier_state) AS brier, retrain._mean_loss_merged(log_loss_state) AS log_loss,
       retrain._mean_loss_merged(mae_state) AS mae, retrain._rmse_merged(rmse_state) AS rmse
  FROM rollup_states_p;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE rollup_serial AS SELECT * FROM rollup_merged_p;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT * FROM rollup_merged_p;
CREATE TEMP TABLE rollup_parallel AS SELECT * FROM rollup_merged_p;
SELECT (SELECT row(p.*)::text FROM rollup_parallel p) = (SELECT row(s.*)::text FROM rollup_serial s) AS parallel_equals_serial,
       (SELECT s.auc FROM rollup_serial s) = (SELECT auc FROM rollup_direct) AS serial_equals_rows;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE rollup_rows, rollup_states_p CASCADE;
