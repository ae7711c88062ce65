-- retrain 0.1.0 to 0.2.0, after the @replace sections: what needs objects
-- they create.

-- Every role may ask for the latest check results; the table's row
-- security decides what it sees.
GRANT SELECT ON @extschema@.check_results_latest TO PUBLIC;

-- Figures of every model: for the monitoring role the GRANT recipe makes.
REVOKE ALL ON @extschema@._latest_results, @extschema@.metrics_versions, @extschema@.metrics_triggers,
              @extschema@.metrics_features, @extschema@.metrics_models, @extschema@.metrics_log FROM PUBLIC;

-- The support functions over internal that the aggregates replaced in place
-- no longer use (they use retrain.agg_state now); the mean-loss ones the
-- rollups' partial aggregates use are kept.
DROP FUNCTION @extschema@._confusion_accum(internal, boolean, boolean);
DROP FUNCTION @extschema@._confusion_score_accum(internal, pg_catalog.float8, boolean, pg_catalog.float8);
DROP FUNCTION @extschema@._confusion_combine(internal, internal);
DROP FUNCTION @extschema@._confusion_serial(internal);
DROP FUNCTION @extschema@._confusion_deserial(bytea, internal);
DROP FUNCTION @extschema@._confusion_final(internal);
DROP FUNCTION @extschema@._precision_final(internal);
DROP FUNCTION @extschema@._recall_final(internal);
DROP FUNCTION @extschema@._f1_final(internal);
DROP FUNCTION @extschema@._accuracy_final(internal);
DROP FUNCTION @extschema@._r2_accum(internal, pg_catalog.float8, pg_catalog.float8);
DROP FUNCTION @extschema@._r2_final(internal);
DROP FUNCTION @extschema@._histogram_accum(internal, pg_catalog.float8, pg_catalog.float8[]);
DROP FUNCTION @extschema@._histogram_missing_accum(internal, pg_catalog.float8, pg_catalog.float8[]);
DROP FUNCTION @extschema@._psi_accum(internal, pg_catalog.float8, pg_catalog.float8[], pg_catalog.float8[]);
DROP FUNCTION @extschema@._hist_combine(internal, internal);
DROP FUNCTION @extschema@._hist_serial(internal);
DROP FUNCTION @extschema@._hist_deserial(bytea, internal);
DROP FUNCTION @extschema@._histogram_final(internal);
DROP FUNCTION @extschema@._histogram_missing_final(internal);
DROP FUNCTION @extschema@._psi_final(internal);
