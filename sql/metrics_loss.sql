--
-- Mean-loss metrics: retrain.brier and retrain.log_loss over (score, label);
-- retrain.mae, retrain.rmse and retrain.r2 over (predicted, actual).
--

-- scikit-learn's example: brier_score_loss([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3])
-- = 0.0375; log loss -(ln 0.9 + ln 0.9 + ln 0.8 + ln 0.7) / 4 = 0.19763...
SELECT retrain.brier(score, label), retrain.log_loss(score, label)
  FROM (VALUES (0.1, false), (0.9, true), (0.8, true), (0.3, false)) v(score, label);

-- Certain and right costs nothing; certain and wrong costs 1 (Brier) and
-- -ln(1e-15) = 34.54 (log loss, after clipping).
SELECT retrain.brier(score, label) AS brier_right, retrain.log_loss(score, label) AS log_loss_right
  FROM (VALUES (1.0, true), (0.0, false)) v(score, label);
SELECT retrain.brier(score, label) AS brier_wrong, retrain.log_loss(score, label) AS log_loss_wrong
  FROM (VALUES (0.0, true), (1.0, false)) v(score, label);

-- Many rows: log loss batches its logarithms; a long run of each kind of
-- likelihood must give the closed form.  600 rows at p = 0.25 (true) and 400
-- at p = 0.999 (true): mean = (600 ln 4 - 400 ln 0.999) / 1000.
SELECT abs(retrain.log_loss(score, true) - (600 * ln(4) - 400 * ln(0.999)) / 1000) < 1e-15 AS batched_ok
  FROM (SELECT CASE WHEN i <= 600 THEN 0.25 ELSE 0.999 END AS score FROM generate_series(1, 1000) i) s;
-- Small p for negatives keeps its digits: -ln(1 - 1e-12) = 1.0000000000005e-12,
-- also in batches of near-certain rows.
SELECT retrain.log_loss(1e-12, false) AS tiny_loss;
SELECT retrain.log_loss(1e-12, false) AS tiny_loss_1000_rows FROM generate_series(1, 1000);
-- A long run of confident mistakes: the product of likelihoods would
-- underflow after 20 rows, so batches close early; each row costs
-- -ln(1e-15) = 34.538776394910684.
SELECT abs(retrain.log_loss(1e-15, true) - 34.538776394910684) < 1e-13 AS no_underflow
  FROM generate_series(1, 1000);

-- Probabilities only: outside [0, 1], infinite or NaN scores are errors.
SELECT retrain.brier(score, label) FROM (VALUES (1.5, true)) v(score, label);
SELECT retrain.log_loss(score, label) FROM (VALUES (-0.1, false)) v(score, label);
SELECT retrain.brier('Infinity', true);
SELECT retrain.log_loss('NaN', true);

-- scikit-learn's regression example: y_true = [3, -0.5, 2, 7],
-- y_pred = [2.5, 0.0, 2, 8]: MAE 0.5, RMSE sqrt(0.375), R^2 0.9486...
SELECT retrain.mae(predicted, actual), retrain.rmse(predicted, actual), retrain.r2(predicted, actual)
  FROM (VALUES (2.5, 3), (0.0, -0.5), (2, 2), (8, 7)) v(predicted, actual);
-- R^2 is not symmetric: the prediction comes first.
SELECT retrain.r2(actual, predicted) AS swapped
  FROM (VALUES (2.5, 3), (0.0, -0.5), (2, 2), (8, 7)) v(predicted, actual);

-- R^2: 1 for a perfect fit, 0 for predicting the mean, negative when worse.
SELECT retrain.r2(actual, actual) AS perfect, retrain.r2(2.5, actual) AS mean_prediction,
       retrain.r2(10, actual) AS worse_than_mean
  FROM (VALUES (1.0), (2.0), (3.0), (4.0)) v(actual);

-- R^2 is undefined for constant actual values (however they round) and for
-- one row; MAE and RMSE are not.
SELECT retrain.r2(predicted, actual) AS constant_actuals, retrain.mae(predicted, actual)
  FROM (VALUES (0.1, 0.1), (0.2, 0.1), (0.3, 0.1)) v(predicted, actual);
SELECT retrain.r2(1, 2) AS one_row, retrain.rmse(1, 2) AS rmse_one_row;

-- A large offset does not cost R^2 its digits.
SELECT abs(retrain.r2(1e9 + predicted, 1e9 + actual) - retrain.r2(predicted, actual)) < 1e-9 AS shift_invariant
  FROM (SELECT i + sin(i) AS predicted, i::float8 AS actual FROM generate_series(1, 1000) i) s;

-- Regression metrics need finite values.
SELECT retrain.mae('Infinity', 1);
SELECT retrain.rmse(1, '-Infinity');
SELECT retrain.r2('NaN', 1);

-- NULL rows are skipped; no rows give NULL.
SELECT retrain.mae(predicted, actual), retrain.brier(0.5, label)
  FROM (VALUES (1.0, 2.0, true), (NULL, 5.0, NULL), (3.0, NULL, false)) v(predicted, actual, label);
SELECT retrain.mae(1, 2) AS no_rows, retrain.rmse(1, 2), retrain.r2(1, 2), retrain.brier(0.5, true),
       retrain.log_loss(0.5, true)
  FROM (SELECT 1) x WHERE false;
