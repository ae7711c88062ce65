--
-- The confusion family: retrain.confusion, precision, recall, f1, accuracy,
-- fbeta and the + operator on retrain.confusion.
--

CREATE TEMP TABLE preds (day int, score float8, label boolean, predicted boolean);
INSERT INTO preds VALUES
    (1, 0.9, true,  true),   -- tp
    (1, 0.8, true,  true),   -- tp
    (1, 0.7, false, true),   -- fp
    (1, 0.3, true,  false),  -- fn
    (2, 0.6, true,  true),   -- tp
    (2, 0.5, false, true),   -- fp (a score equal to the threshold predicts positive)
    (2, 0.2, false, false),  -- tn
    (2, 0.1, false, false),  -- tn
    (2, NULL, true, NULL);   -- skipped

-- tp = 3, fp = 2, fn = 1, tn = 2 both ways.
SELECT retrain.confusion(predicted, label) AS from_booleans,
       retrain.confusion(score, label, 0.5) AS from_scores
  FROM preds;

SELECT retrain.precision(predicted, label) AS precision,     -- 3 / 5
       retrain.recall(predicted, label) AS recall,           -- 3 / 4
       retrain.f1(predicted, label) AS f1,                   -- 6 / 9
       retrain.accuracy(predicted, label) AS accuracy        -- 5 / 8
  FROM preds;
SELECT retrain.precision(score, label, 0.5) AS precision,
       retrain.recall(score, label, 0.5) AS recall,
       retrain.f1(score, label, 0.5) AS f1,
       retrain.accuracy(score, label, 0.5) AS accuracy
  FROM preds;

-- Thresholds: infinite ones are ordered; NaN is an error; NULL skips rows.
SELECT retrain.confusion(score, label, '-Infinity') AS all_positive,
       retrain.confusion(score, label, 'Infinity') AS all_negative
  FROM preds;
SELECT retrain.confusion(score, label, 'NaN') FROM preds;
SELECT retrain.f1(score, label, NULL) AS null_threshold FROM preds;
SELECT retrain.confusion(score, label, 0.5) FROM (VALUES ('NaN'::float8, true)) v(score, label);

-- Undefined metrics are NULL, never 0 and never an error.
SELECT retrain.precision(predicted, label) AS nothing_predicted_positive,
       retrain.recall(predicted, label) AS recall_defined
  FROM (VALUES (false, true), (false, false)) v(predicted, label);
SELECT retrain.recall(predicted, label) AS nothing_actually_positive,
       retrain.precision(predicted, label) AS precision_zero
  FROM (VALUES (true, false), (false, false)) v(predicted, label);
SELECT retrain.f1(predicted, label) AS only_true_negatives
  FROM (VALUES (false, false), (false, false)) v(predicted, label);
SELECT retrain.f1(predicted, label) AS no_true_positive_is_zero
  FROM (VALUES (true, false), (false, true)) v(predicted, label);
SELECT retrain.confusion(predicted, label) AS no_rows, retrain.accuracy(predicted, label) AS accuracy_no_rows
  FROM preds WHERE false;

-- Per-day matrices add up to the whole: the + operator.
SELECT day, retrain.confusion(predicted, label) FROM preds GROUP BY day ORDER BY day;
SELECT (SELECT retrain.confusion(predicted, label) FROM preds WHERE day = 1)
       OPERATOR(retrain.+)
       (SELECT retrain.confusion(predicted, label) FROM preds WHERE day = 2) AS summed;

-- Functions over a retrain.confusion value.
SELECT retrain.precision(c), retrain.recall(c), retrain.f1(c), retrain.accuracy(c),
       retrain.fbeta(c, 0) AS fbeta_0_is_precision,
       retrain.fbeta(c, 1) AS fbeta_1_is_f1,
       retrain.fbeta(c, 2) AS f2,            -- 5 * 3 / (5 * 3 + 4 * 1 + 2)
       retrain.fbeta(c, 0.5) AS f_half       -- 1.25 * 3 / (1.25 * 3 + 0.25 * 1 + 2)
  FROM (SELECT ROW(3, 2, 1, 2)::retrain.confusion AS c) x;
SELECT retrain.precision(ROW(0, 0, 5, 5)::retrain.confusion) AS undefined_precision,
       retrain.f1(ROW(0, 0, 0, 5)::retrain.confusion) AS undefined_f1,
       retrain.fbeta(ROW(0, 0, 0, 5)::retrain.confusion, 2) AS undefined_fbeta,
       retrain.accuracy(ROW(0, 0, 0, 0)::retrain.confusion) AS undefined_accuracy;
SELECT retrain.precision(ROW(1, NULL, 0, 0)::retrain.confusion) AS null_field,
       retrain.f1(NULL::retrain.confusion) AS null_matrix,
       ROW(1, 2, 3, 4)::retrain.confusion OPERATOR(retrain.+) NULL AS plus_null;
SELECT retrain.recall(ROW(1, 2, -3, 4)::retrain.confusion);
SELECT retrain.fbeta(ROW(1, 2, 3, 4)::retrain.confusion, -1);
SELECT retrain.fbeta(ROW(1, 2, 3, 4)::retrain.confusion, 'NaN');
SELECT retrain.fbeta(ROW(1, 2, 3, 4)::retrain.confusion, 'Infinity');
SELECT ROW(9223372036854775807, 0, 0, 0)::retrain.confusion OPERATOR(retrain.+) ROW(1, 0, 0, 0)::retrain.confusion;
