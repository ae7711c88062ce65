--
-- retrain.auc and retrain.average_precision: exact ranking metrics.
--

-- scikit-learn's documented example: roc_auc_score([0, 0, 1, 1],
-- [0.1, 0.4, 0.35, 0.8]) = 0.75, average_precision_score = 0.8333...
SELECT retrain.auc(score, label), retrain.average_precision(score, label)
  FROM (VALUES (0.1, false), (0.4, false), (0.35, true), (0.8, true)) v(score, label);

-- Perfect, inverted and uninformative rankings.
SELECT retrain.auc(score, label) AS perfect FROM (VALUES (0.9, true), (0.2, false), (0.8, true), (0.1, false)) v(score, label);
SELECT retrain.auc(score, label) AS inverted FROM (VALUES (0.1, true), (0.9, false)) v(score, label);
SELECT retrain.auc(score, label) AS all_tied, retrain.average_precision(score, label) AS ap_all_tied
  FROM (VALUES (0.5, true), (0.5, false), (0.5, false), (0.5, false)) v(score, label);

-- A tie between a positive and a negative counts one half.  Here the
-- positive at 0.5 beats one negative and ties one: (1 + 0.5 + 2) / 4.
SELECT retrain.auc(score, label)
  FROM (VALUES (0.5, true), (0.5, false), (0.9, true), (0.1, false)) v(score, label);
-- Tied scores form one threshold for average precision: at 0.5 tp = 2,
-- fp = 1, so AP = (1/2)(1/1) + (1/2)(2/3).
SELECT retrain.average_precision(score, label)
  FROM (VALUES (0.9, true), (0.5, true), (0.5, false), (0.1, false)) v(score, label);

-- -0 and +0 are the same score.
SELECT retrain.auc(score, label) AS signed_zeros
  FROM (VALUES ('-0'::float8, true), ('0'::float8, false)) v(score, label);

-- Infinities are ordered like any other score.
SELECT retrain.auc(score, label), retrain.average_precision(score, label)
  FROM (VALUES ('Infinity'::float8, true), ('-Infinity'::float8, false), (0, true), (1, false)) v(score, label);

-- Rows with a NULL argument are skipped.
SELECT retrain.auc(score, label)
  FROM (VALUES (0.9, true), (NULL, false), (0.2, NULL), (0.1, false)) v(score, label);

-- Undefined, so NULL: no rows, only NULL rows, one class only.
SELECT retrain.auc(score, label) AS no_rows FROM (VALUES (0.5::float8, true)) v(score, label) WHERE false;
SELECT retrain.auc(score, label) AS only_nulls FROM (VALUES (NULL::float8, true)) v(score, label);
SELECT retrain.auc(score, label) AS only_positives, retrain.average_precision(score, label) AS ap_only_positives
  FROM (VALUES (0.3, true), (0.7, true)) v(score, label);
SELECT retrain.auc(score, label) AS only_negatives FROM (VALUES (0.3, false)) v(score, label);

-- NaN has no rank: an error naming the function.
SELECT retrain.auc(score, label) FROM (VALUES (0.3, true), ('NaN'::float8, false)) v(score, label);
SELECT retrain.average_precision(score, label) FROM (VALUES ('NaN'::float8, false)) v(score, label);

-- Per group, as analysts use it.
SELECT g, retrain.auc(score, label), retrain.average_precision(score, label)
  FROM (VALUES ('a', 0.1, false), ('a', 0.9, true), ('b', 0.9, false), ('b', 0.1, true),
               ('c', 0.5, true)) v(g, score, label)
 GROUP BY g ORDER BY g;

-- As a window aggregate the state grows after each final call; every
-- running value must equal the aggregate over its prefix.
SELECT i, retrain.auc(score, label) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING)
  FROM (VALUES (1, 0.2, false), (2, 0.8, true), (3, 0.6, false), (4, 0.6, true), (5, 0.1, true)) v(i, score, label);

-- 30,000 rows with heavy ties and imbalance, checked against the rank-sum
-- AUC written in plain SQL.
CREATE TEMP TABLE ranked AS
SELECT (i * 7919 % 1000) / 1000.0 AS score, (i * 7919 % 1000) + (i % 13) * 60 > 900 AS label
  FROM generate_series(1, 30000) i;
WITH r AS (
    SELECT label, avg(rn) OVER (PARTITION BY score) AS midrank
      FROM (SELECT score, label, row_number() OVER (ORDER BY score) AS rn FROM ranked) s
), t AS (
    SELECT count(*) FILTER (WHERE label) AS n1, count(*) FILTER (WHERE NOT label) AS n0,
           sum(midrank) FILTER (WHERE label) AS rank_sum
      FROM r
)
SELECT n1, n0, abs((SELECT retrain.auc(score, label) FROM ranked)
                   - ((rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0))::float8) < 1e-15 AS matches_rank_sum
  FROM t;

-- The support functions are not for PUBLIC.
SELECT has_function_privilege('public', 'retrain._rank_accum(internal, float8, boolean)', 'EXECUTE') AS public_may_call;
