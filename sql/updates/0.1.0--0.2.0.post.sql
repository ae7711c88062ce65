-- retrain 0.1.0 to 0.2.0, after the @replace sections: what needs objects
-- they create.

-- Every role may ask for the latest check results; the table's row
-- security decides what it sees.
GRANT SELECT ON @extschema@.check_results_latest TO PUBLIC;
