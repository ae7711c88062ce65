-- retrain 0.1.0 to 0.2.0: what the @replace sections of sql/install/ cannot
-- do by themselves (they follow this file in the built upgrade script).

-- Functions whose arguments changed: the new ones are created by the
-- feature files.  (Internal functions: no site grants to keep.)
DROP FUNCTION @extschema@._run_owner_check(name, text);
DROP FUNCTION @extschema@._lock_model(text, text);
-- renamed: intervals are bounded now, not only positive
DROP FUNCTION @extschema@._positive_interval(text);

COMMENT ON COLUMN @extschema@.log.actor IS
    'the login that made the change (the session''s user); details->>''role'' names the role it acted as, when another';

-- A pg_cron job scheduled by 0.1.0 ran the whole cycle in one transaction;
-- it runs the cycle procedure now, one model per transaction.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'UPDATE cron.job SET command = $1 WHERE jobname = $2 AND command = $3'
          USING 'CALL @extschema@.run_cycle()', 'retrain-checks',
                'SELECT retrain.run_checks(); SELECT count(*) FROM retrain.guard_rollouts()';
    END IF;
END
$$;
