--
-- retrain.agg_state: the transition type of the confusion family, the
-- mean-loss metrics, the histograms and psi.  Its text form is what Citus
-- ships between nodes, so it round-trips exactly, and every value made from
-- outside is checked before any function reads it.
--

CREATE TABLE agg_state_rows AS
SELECT i, i % 7 / 6.0::float8 AS score, i % 3 = 0 AS label,
       i * 0.25::float8 AS predicted, i * 0.25::float8 + (i % 5 - 2) AS actual
  FROM generate_series(1, 1000) i;

-- An aggregate over the type without a final function returns the state
-- itself: its text form names the kind and the layout's version.
CREATE AGGREGATE agg_state_f1_partial(boolean, boolean) (
    SFUNC = retrain._confusion_accum, STYPE = retrain.agg_state);
CREATE AGGREGATE agg_state_rmse_partial(float8, float8) (
    SFUNC = retrain._rmse_accum, STYPE = retrain.agg_state);
CREATE AGGREGATE agg_state_psi_partial(float8, float8[], float8[]) (
    SFUNC = retrain._psi_accum, STYPE = retrain.agg_state);
SELECT agg_state_f1_partial(score >= 0.5, label) AS confusion_state FROM agg_state_rows;

-- The text form round-trips to the same state, and the final functions
-- give from it what the aggregates give from the rows.
CREATE TEMP TABLE agg_states AS
SELECT agg_state_f1_partial(score >= 0.5, label)::text AS c,
       agg_state_rmse_partial(predicted, actual)::text AS l,
       agg_state_psi_partial(score, '{0.25,0.5}', '{1,2,1}')::text AS h
  FROM agg_state_rows;
SELECT c::retrain.agg_state::text = c AS confusion_round_trip,
       l::retrain.agg_state::text = l AS loss_round_trip,
       h::retrain.agg_state::text = h AS histogram_round_trip,
       left(l, 7) AS loss_prefix, left(h, 12) AS histogram_prefix
  FROM agg_states;
SELECT retrain._f1_final(c::retrain.agg_state) = (SELECT retrain.f1(score >= 0.5, label) FROM agg_state_rows) AS f1_same,
       retrain._rmse_final(l::retrain.agg_state) = (SELECT retrain.rmse(predicted, actual) FROM agg_state_rows) AS rmse_same,
       retrain._psi_final(h::retrain.agg_state) = (SELECT retrain.psi(score, '{0.25,0.5}', '{1,2,1}') FROM agg_state_rows) AS psi_same
  FROM agg_states;
-- the binary form: the kind and version bytes, then the text's bytes
SELECT substr(retrain.agg_state_send(c::retrain.agg_state), 1, 2) AS kind_and_version,
       substr(retrain.agg_state_send(c::retrain.agg_state), 3) = decode(split_part(c, ':', 3), 'hex') AS same_bytes
  FROM agg_states;
SELECT NULL::retrain.agg_state IS NULL AS null_state;

-- Text that is not a state: 22P02 for the syntax, 22P03 for bytes that do
-- not make a state, 0A000 for a layout version this build does not know.
SELECT 'precision:1:00'::retrain.agg_state;
SELECT 'confusion'::retrain.agg_state;
SELECT 'confusion:x:00'::retrain.agg_state;
SELECT 'confusion:1:000'::retrain.agg_state;
SELECT 'confusion:1:zz'::retrain.agg_state;
SELECT 'confusion:2:00'::retrain.agg_state;
SELECT 'confusion:1:0000000000000001'::retrain.agg_state;
SELECT ('confusion:1:' || repeat('00', 32) || '00')::retrain.agg_state;
SELECT ('confusion:1:ffffffffffffffff' || repeat('00', 24))::retrain.agg_state;
-- a loss state whose pending log-loss product is 2 (no data gives one)
SELECT ('loss:1:' || repeat('00', 21) || repeat('00', 16) || '4000000000000000' || repeat('00', 72))::retrain.agg_state;
-- a histogram whose edges descend, or claim more bytes than there are
SELECT ('histogram:1:00000001' || '00000000' || '3ff0000000000000' || repeat('00', 24))::retrain.agg_state
    AS one_edge_ok;
SELECT ('histogram:1:00000002' || '00000000' || '4000000000000000' || '3ff0000000000000' || repeat('00', 32))::retrain.agg_state;
SELECT ('histogram:1:7fffffff' || '00000000')::retrain.agg_state;

-- A state of one kind is never read as another: by a final function, or by
-- a transition function of an aggregate that starts from another kind's
-- INITCOND (test_citus.py hands a combine function one on a coordinator).
-- Combine functions, like transition functions, run only in aggregates.
SELECT retrain._mean_loss_final(c::retrain.agg_state) FROM agg_states;
SELECT retrain._hist_combine(l::retrain.agg_state, h::retrain.agg_state) FROM agg_states;
CREATE AGGREGATE agg_state_wrong_start(float8, boolean) (
    SFUNC = retrain._brier_accum, STYPE = retrain.agg_state,
    FINALFUNC = retrain._mean_loss_final,
    INITCOND = 'confusion:1:0000000000000001000000000000000200000000000000030000000000000004');
SELECT agg_state_wrong_start(score, label) FROM agg_state_rows;

-- A transition function changes its state in place, so it runs only as an
-- aggregate's: called directly it would change its argument.
SELECT retrain._confusion_accum(c::retrain.agg_state, true, true) FROM agg_states;
SELECT retrain._confusion_accum(NULL, true, true);

-- Starting from a valid INITCOND of the right kind works, and counts on.
CREATE AGGREGATE agg_state_count_on(boolean, boolean) (
    SFUNC = retrain._confusion_accum, STYPE = retrain.agg_state,
    FINALFUNC = retrain._confusion_final,
    INITCOND = 'confusion:1:0000000000000001000000000000000200000000000000030000000000000004');
SELECT agg_state_count_on(score >= 0.5, label) AS counted_on FROM agg_state_rows;
SELECT retrain.confusion(score >= 0.5, label) AS from_the_rows FROM agg_state_rows;

DROP AGGREGATE agg_state_f1_partial(boolean, boolean);
DROP AGGREGATE agg_state_rmse_partial(float8, float8);
DROP AGGREGATE agg_state_psi_partial(float8, float8[], float8[]);
DROP AGGREGATE agg_state_wrong_start(float8, boolean);
DROP AGGREGATE agg_state_count_on(boolean, boolean);
DROP TABLE agg_state_rows;
