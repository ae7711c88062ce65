--
-- Applications' own request ids (issue 16): log_prediction() with a
-- request id, unique per model; log_outcome() by model and request id; a
-- COPY of predictions with their ids, then outcomes by id, with no
-- prediction ids handed back.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET TIME ZONE 'UTC';

SELECT retrain.register_model('req', 'binary_classification');
SELECT retrain.register_model('req_reg', 'regression');
SELECT retrain.register_version('req', 'v1', 's3://m/v1', repeat('a', 64), '{}');
SELECT retrain.register_version('req_reg', 'v1', 's3://m/v1', repeat('b', 64), '{}');

-- The fifth argument: a text is the request id, a number the latency;
-- request_id => names it.
SELECT retrain.log_prediction('req', 'v1', 'u1', 0.9, 'r-1') > 0 AS logged;
SELECT retrain.log_prediction('req', 'v1', 'u2', 0.2, 12.5) > 0 AS logged;
SELECT retrain.log_prediction('req', 'v1', 'u3', 0.4, request_id => 'r-3', latency_ms => 7) > 0 AS logged;
SELECT retrain.log_prediction('req', 'v1', 'u4', 0.6, latency_ms => 8) > 0 AS logged;
SELECT unit_key, request_id, latency_ms FROM retrain.predictions WHERE model = 'req' ORDER BY unit_key;

-- Unique per model: the same id again is refused, naming both; another
-- model may use it; an empty id is no id.
SELECT retrain.log_prediction('req', 'v1', 'u5', 0.5, 'r-1');
SELECT retrain.log_prediction('req_reg', 'v1', 'u5', 3.5, 'r-1') > 0 AS other_model;
SELECT retrain.log_prediction('req', 'v1', 'u6', 0.5, '');
-- predictions without an id are as many as ever
SELECT count(*) FROM (SELECT retrain.log_prediction('req', 'v1', 'x' || i, 0.5) FROM generate_series(1, 3) i) x;

-- Outcomes by request id: a label for a classifier, a number for a
-- regression, each form's checks as by prediction id.
SELECT retrain.log_outcome('req', 'r-1', true);
SELECT retrain.log_outcome('req_reg', 'r-1', 4.0);
SELECT p.model, p.request_id, o.label, o.actual, o.model AS outcome_model
  FROM retrain.outcomes o JOIN retrain.predictions p ON p.id = o.prediction_id
 WHERE p.request_id = 'r-1' ORDER BY p.model;
SELECT retrain.log_outcome('req', 'r-1', false);
SELECT retrain.log_outcome('req', 'r-404', true);
SELECT retrain.log_outcome('req', 'r-3', 1.5);
SELECT retrain.log_outcome('req', NULL::text, true);
SELECT retrain.log_outcome(NULL::text, 'r-3', true);
SELECT retrain.log_outcome('req', 'r-3', true, '2001-01-01');
-- by prediction id, as before
SELECT retrain.log_outcome((SELECT id FROM retrain.predictions WHERE request_id = 'r-3'), true);

-- Bulk: predictions by COPY with their request ids, then their outcomes
-- by request id.
COPY retrain.predictions (model, version, unit_key, score, request_id) FROM STDIN;
req	v1	c1	0.1	batch-1
req	v1	c2	0.8	batch-2
req	v1	c3	0.7	batch-3
\.
SELECT count(*) FROM (SELECT retrain.log_outcome('req', 'batch-' || i, i % 2 = 0) FROM generate_series(1, 3) i) x;
SELECT p.request_id, o.label FROM retrain.predictions p JOIN retrain.outcomes o ON o.prediction_id = p.id
 WHERE p.request_id LIKE 'batch-%' ORDER BY 1;
-- a COPY that repeats an id of the same day is refused whole (23505, by
-- the day partition's unique index, whose name holds the date)
\set VERBOSITY sqlstate
COPY retrain.predictions (model, version, unit_key, score, request_id) FROM STDIN;
req	v1	c4	0.1	batch-4
req	v1	c5	0.8	batch-1
\.
\set VERBOSITY default
SELECT count(*) AS batch_4 FROM retrain.predictions WHERE request_id = 'batch-4';
-- a day's partition holds an id once; a COPY into another day can repeat it
-- (no unique index spans partitions), and an outcome by that id is then
-- refused, not given to one of the two at random
COPY retrain.predictions (model, version, unit_key, score, request_id, predicted_at) FROM STDIN;
req	v1	c6	0.3	batch-1	1999-01-01 00:00+00
\.
SELECT retrain.log_outcome('req', 'batch-1', true);
SELECT retrain.log_prediction('req', 'v1', 'c7', 0.4, request_id => 'batch-1', predicted_at => '1998-01-01');
-- no request id (NULL) is the prediction without one
SELECT retrain.log_prediction('req', 'v1', 'c8', 0.4, request_id => NULL) IS NOT NULL AS logged;
SELECT count(*) AS without_id FROM retrain.predictions WHERE model = 'req' AND unit_key = 'c8' AND request_id IS NULL;

-- Who may: the new forms are not for PUBLIC, as the old ones.
CREATE ROLE req_nobody;
SET SESSION AUTHORIZATION req_nobody;
SELECT retrain.log_prediction('req', 'v1', 'u9', 0.5, 'r-9');
SELECT retrain.log_outcome('req', 'r-3', true);
RESET SESSION AUTHORIZATION;
DROP ROLE req_nobody;
