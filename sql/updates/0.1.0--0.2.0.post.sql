-- retrain 0.1.0 to 0.2.0, after the @replace sections: what needs objects
-- they create.

-- Every role may ask for the latest check results; the table's row
-- security decides what it sees.
GRANT SELECT ON @extschema@.check_results_latest TO PUBLIC;

-- Figures of every model: for the monitoring role the GRANT recipe makes.
REVOKE ALL ON @extschema@._latest_results, @extschema@.metrics_versions, @extschema@.metrics_triggers,
              @extschema@.metrics_features, @extschema@.metrics_models, @extschema@.metrics_log FROM PUBLIC;
