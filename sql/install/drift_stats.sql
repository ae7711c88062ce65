-- Drift statistics (src/drift_*.c): quantile_edges, histogram,
-- histogram_missing, psi, js_distance, category_counts, ks_2samp, ks_pvalue.
--
-- The aggregates skip NULL and NaN values (drift reports count them as
-- missing); bad edges, distributions or parameters are errors (22023).

-- @replace

-- quantile_edges: every value kept until the final function.
CREATE OR REPLACE FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8, integer)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_accum';
CREATE OR REPLACE FUNCTION @extschema@._quantile_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_combine';
CREATE OR REPLACE FUNCTION @extschema@._quantile_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_serial';
CREATE OR REPLACE FUNCTION @extschema@._quantile_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_deserial';
CREATE OR REPLACE FUNCTION @extschema@._quantile_edges_final(internal)
    RETURNS pg_catalog.float8[] LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_edges_final';
COMMENT ON FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8, integer) IS
    'Transition function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_combine(internal, internal) IS
    'Combine function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_serial(internal) IS
    'Serialization function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_deserial(bytea, internal) IS
    'Deserialization function of quantile_edges (internal)';
COMMENT ON FUNCTION @extschema@._quantile_edges_final(internal) IS
    'Final function of quantile_edges (internal)';

-- The final function sorts the state in place, keeping its multiset.
CREATE OR REPLACE AGGREGATE @extschema@.quantile_edges(value pg_catalog.float8, bins integer) (
    SFUNC = @extschema@._quantile_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._quantile_edges_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._quantile_combine,
    SERIALFUNC = @extschema@._quantile_serial,
    DESERIALFUNC = @extschema@._quantile_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.quantile_edges(pg_catalog.float8, integer) IS
    'Interior bin edges at the quantiles k/bins, k = 1..bins-1, interpolated as percentile_cont does, ascending, duplicates removed';

-- An aggregate cannot have a defaulted argument: the one-argument form
-- takes deciles (the C function reads bins when it has the argument).
CREATE OR REPLACE FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_quantile_accum';
COMMENT ON FUNCTION @extschema@._quantile_accum(internal, pg_catalog.float8) IS
    'Transition function of quantile_edges(value), bins = 10 (internal)';
CREATE OR REPLACE AGGREGATE @extschema@.quantile_edges(value pg_catalog.float8) (
    SFUNC = @extschema@._quantile_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._quantile_edges_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._quantile_combine,
    SERIALFUNC = @extschema@._quantile_serial,
    DESERIALFUNC = @extschema@._quantile_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.quantile_edges(pg_catalog.float8) IS
    'Interior decile edges: quantile_edges(value, 10)';

-- histogram and the psi aggregate: one count per bucket.
CREATE OR REPLACE FUNCTION @extschema@._histogram_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8[])
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_accum';
CREATE OR REPLACE FUNCTION @extschema@._psi_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[])
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_accum';
CREATE OR REPLACE FUNCTION @extschema@._hist_combine(@extschema@.agg_state, @extschema@.agg_state)
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_hist_combine';
CREATE OR REPLACE FUNCTION @extschema@._histogram_final(@extschema@.agg_state)
    RETURNS bigint[] LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_final';
CREATE OR REPLACE FUNCTION @extschema@._psi_final(@extschema@.agg_state)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_final';
COMMENT ON FUNCTION @extschema@._histogram_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8[]) IS
    'Transition function of histogram (internal)';
COMMENT ON FUNCTION @extschema@._psi_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[]) IS
    'Transition function of the psi aggregate (internal)';
COMMENT ON FUNCTION @extschema@._hist_combine(@extschema@.agg_state, @extschema@.agg_state) IS
    'Combine function of histogram and the psi aggregate (internal)';
COMMENT ON FUNCTION @extschema@._histogram_final(@extschema@.agg_state) IS
    'Final function of histogram (internal)';
COMMENT ON FUNCTION @extschema@._psi_final(@extschema@.agg_state) IS
    'Final function of the psi aggregate (internal)';

CREATE OR REPLACE AGGREGATE @extschema@.histogram(value pg_catalog.float8, edges pg_catalog.float8[]) (
    SFUNC = @extschema@._histogram_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._histogram_final,
    COMBINEFUNC = @extschema@._hist_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.histogram(pg_catalog.float8, pg_catalog.float8[]) IS
    'Counts per bucket, length(edges) + 1 of them; a value is in bucket i when exactly i edges are <= it (width_bucket)';

CREATE OR REPLACE FUNCTION @extschema@._histogram_missing_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8[])
    RETURNS @extschema@.agg_state LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_missing_accum';
CREATE OR REPLACE FUNCTION @extschema@._histogram_missing_final(@extschema@.agg_state)
    RETURNS bigint[] LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_histogram_missing_final';
COMMENT ON FUNCTION @extschema@._histogram_missing_accum(@extschema@.agg_state, pg_catalog.float8, pg_catalog.float8[]) IS
    'Transition function of histogram_missing (internal)';
COMMENT ON FUNCTION @extschema@._histogram_missing_final(@extschema@.agg_state) IS
    'Final function of histogram_missing (internal)';

-- What a drift report needs of a numeric feature in one aggregate: the
-- histogram and, after it, how many values were missing.
CREATE OR REPLACE AGGREGATE @extschema@.histogram_missing(value pg_catalog.float8, edges pg_catalog.float8[]) (
    SFUNC = @extschema@._histogram_missing_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._histogram_missing_final,
    COMBINEFUNC = @extschema@._hist_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.histogram_missing(pg_catalog.float8, pg_catalog.float8[]) IS
    'histogram(value, edges) followed by one more count: the NULL and NaN values';

CREATE OR REPLACE AGGREGATE @extschema@.psi(value pg_catalog.float8, edges pg_catalog.float8[], expected pg_catalog.float8[]) (
    SFUNC = @extschema@._psi_accum,
    STYPE = @extschema@.agg_state,
    FINALFUNC = @extschema@._psi_final,
    COMBINEFUNC = @extschema@._hist_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.psi(pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[]) IS
    'Population stability index of the values, binned by edges, against an expected distribution (epsilon 0.0001)';

CREATE OR REPLACE FUNCTION @extschema@.psi(expected pg_catalog.float8[], actual pg_catalog.float8[],
                                epsilon pg_catalog.float8 DEFAULT 0.0001)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_arrays';
COMMENT ON FUNCTION @extschema@.psi(pg_catalog.float8[], pg_catalog.float8[], pg_catalog.float8) IS
    'Population stability index sum((a - e) ln(a / e)) of two distributions (counts or proportions); empty buckets count epsilon';

-- The drift trigger's PSI of a numeric feature from jsonb (C): the
-- baseline's expected distribution and a window's counts, which end with
-- the missing values' count.
CREATE OR REPLACE FUNCTION @extschema@._counts_psi(expected jsonb, counts jsonb)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_counts_psi';
COMMENT ON FUNCTION @extschema@._counts_psi(jsonb, jsonb) IS
    'PSI of a baseline''s expected distribution and a window''s counts (JSON arrays, the counts ending with the missing values), NULL when no value was counted (internal)';

CREATE OR REPLACE FUNCTION @extschema@.js_distance(expected pg_catalog.float8[], actual pg_catalog.float8[],
                                        base pg_catalog.float8 DEFAULT NULL)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_js_distance';
COMMENT ON FUNCTION @extschema@.js_distance(pg_catalog.float8[], pg_catalog.float8[], pg_catalog.float8) IS
    'Jensen-Shannon distance of two distributions (scipy.spatial.distance.jensenshannon); natural logarithms unless base is given';

-- Categorical values.
CREATE OR REPLACE FUNCTION @extschema@._category_accum(internal, pg_catalog.text)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_accum';
CREATE OR REPLACE FUNCTION @extschema@._category_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_combine';
CREATE OR REPLACE FUNCTION @extschema@._category_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_serial';
CREATE OR REPLACE FUNCTION @extschema@._category_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_deserial';
CREATE OR REPLACE FUNCTION @extschema@._category_counts_final(internal)
    RETURNS jsonb LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_category_counts_final';
COMMENT ON FUNCTION @extschema@._category_accum(internal, pg_catalog.text) IS
    'Transition function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_combine(internal, internal) IS
    'Combine function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_serial(internal) IS
    'Serialization function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_deserial(bytea, internal) IS
    'Deserialization function of category_counts (internal)';
COMMENT ON FUNCTION @extschema@._category_counts_final(internal) IS
    'Final function of category_counts (internal)';

CREATE OR REPLACE AGGREGATE @extschema@.category_counts(value pg_catalog.text) (
    SFUNC = @extschema@._category_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._category_counts_final,
    COMBINEFUNC = @extschema@._category_combine,
    SERIALFUNC = @extschema@._category_serial,
    DESERIALFUNC = @extschema@._category_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.category_counts(pg_catalog.text) IS
    'Counts of each distinct value as a jsonb object {"category": count, ...}; NULL values are skipped';

CREATE OR REPLACE FUNCTION @extschema@.psi(expected jsonb, actual jsonb, epsilon pg_catalog.float8 DEFAULT 0.0001)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_psi_jsonb';
COMMENT ON FUNCTION @extschema@.psi(jsonb, jsonb, pg_catalog.float8) IS
    'Population stability index of two category distributions (jsonb objects of counts or proportions) over the union of their categories';

-- Kolmogorov-Smirnov: the ranking state of auc, reference values first.
CREATE OR REPLACE FUNCTION @extschema@._ks_accum(internal, pg_catalog.float8, boolean)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_ks_accum';
CREATE OR REPLACE FUNCTION @extschema@._ks_2samp_final(internal)
    RETURNS pg_catalog.float8 LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_ks_2samp_final';
COMMENT ON FUNCTION @extschema@._ks_accum(internal, pg_catalog.float8, boolean) IS
    'Transition function of ks_2samp (internal)';
COMMENT ON FUNCTION @extschema@._ks_2samp_final(internal) IS
    'Final function of ks_2samp (internal)';

CREATE OR REPLACE AGGREGATE @extschema@.ks_2samp(value pg_catalog.float8, is_reference boolean) (
    SFUNC = @extschema@._ks_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._ks_2samp_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = @extschema@._rank_combine,
    SERIALFUNC = @extschema@._rank_serial,
    DESERIALFUNC = @extschema@._rank_deserial,
    PARALLEL = SAFE
);
CREATE OR REPLACE FUNCTION @extschema@.ks_pvalue(d pg_catalog.float8, n1 bigint, n2 bigint)
    RETURNS pg_catalog.float8 LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_ks_pvalue';
COMMENT ON FUNCTION @extschema@.ks_pvalue(pg_catalog.float8, bigint, bigint) IS
    'Asymptotic two-sided p-value of a two-sample Kolmogorov-Smirnov statistic d between samples of n1 and n2 values (scipy.stats.ks_2samp, method asymp)';

COMMENT ON AGGREGATE @extschema@.ks_2samp(pg_catalog.float8, boolean) IS
    'Two-sample Kolmogorov-Smirnov statistic D between the reference values and the others (scipy.stats.ks_2samp)';

-- The check cycle's numeric feature counts: histogram_missing of each
-- named feature of a jsonb features column, in one pass over each row's
-- jsonb (the same counts as one histogram_missing(_as_float8(features->>f),
-- edges) per feature, several times faster).  edges holds every feature's
-- edges one after the other; ends[i] is one past the last of names[i]'s.
-- COST: a row's call does the work of ten features' (each a lookup, a
-- conversion and a binning), and the planner should weigh it so when it
-- decides on a parallel scan.
CREATE OR REPLACE FUNCTION @extschema@._feature_hists_accum(internal, jsonb, text[], pg_catalog.float8[], integer[])
    RETURNS internal LANGUAGE C PARALLEL SAFE COST 30
    AS 'MODULE_PATHNAME', 'retrain_feature_hists_accum';
CREATE OR REPLACE FUNCTION @extschema@._feature_hists_combine(internal, internal)
    RETURNS internal LANGUAGE C PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_feature_hists_combine';
CREATE OR REPLACE FUNCTION @extschema@._feature_hists_serial(internal)
    RETURNS bytea LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_feature_hists_serial';
CREATE OR REPLACE FUNCTION @extschema@._feature_hists_deserial(bytea, internal)
    RETURNS internal LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_feature_hists_deserial';
CREATE OR REPLACE FUNCTION @extschema@._feature_hists_final(internal)
    RETURNS jsonb LANGUAGE C STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_feature_hists_final';
COMMENT ON FUNCTION @extschema@._feature_hists_accum(internal, jsonb, text[], pg_catalog.float8[], integer[]) IS
    'Transition function of _feature_histograms (internal)';
COMMENT ON FUNCTION @extschema@._feature_hists_combine(internal, internal) IS
    'Combine function of _feature_histograms (internal)';
COMMENT ON FUNCTION @extschema@._feature_hists_serial(internal) IS
    'Serialization function of _feature_histograms (internal)';
COMMENT ON FUNCTION @extschema@._feature_hists_deserial(bytea, internal) IS
    'Deserialization function of _feature_histograms (internal)';
COMMENT ON FUNCTION @extschema@._feature_hists_final(internal) IS
    'Final function of _feature_histograms (internal)';

CREATE OR REPLACE AGGREGATE @extschema@._feature_histograms(features jsonb, names text[], edges pg_catalog.float8[],
                                                             ends integer[]) (
    SFUNC = @extschema@._feature_hists_accum,
    STYPE = internal,
    FINALFUNC = @extschema@._feature_hists_final,
    COMBINEFUNC = @extschema@._feature_hists_combine,
    SERIALFUNC = @extschema@._feature_hists_serial,
    DESERIALFUNC = @extschema@._feature_hists_deserial,
    PARALLEL = SAFE,
    -- about ten features' histograms (see the rollups' states)
    SSPACE = 4096
);
COMMENT ON AGGREGATE @extschema@._feature_histograms(jsonb, text[], pg_catalog.float8[], integer[]) IS
    'histogram_missing of each named numeric feature of a jsonb features column, as {"feature": [counts..., missing]} (internal)';
