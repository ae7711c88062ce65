"""Security: the attacks of a security review, each refused.

A scratch server preloads pg_cron and retrain (its worker in database
postgres).  The GRANT recipe of docs/operations.md is set up with two teams,
each an operator login owning its model and schema (sec_a_ops, sec_b_ops),
and a trainer, a reviewer, an approver, an application, an analyst, a person
who trains and reviews (sec_alice) and an outsider (sec_mallory).  Team A's
operator supplies hostile code in its model's checks and source, and the
check cycle runs it three ways: a direct call by a superuser, the
background worker, and the pg_cron job.  After each, nobody became
superuser, team B's model is untouched, the session that ran the code kept
its settings, and the refusal is on record.

Then the attacks that need no cycle: signing as a group, removing the gates
instead of overriding them, writing another team's baseline, reading through
error messages; a 20-second owner check that must not hold up another
team's state changes; and the log anchored outside its tables.
"""

import json
import os
import time

from testlib import ScratchCluster, expect_error, run_suite, scalar, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = None
LOGINS = ["sec_a_ops", "sec_b_ops", "sec_trainer1", "sec_rev1", "sec_appr1", "sec_app1", "sec_ana1", "sec_alice",
          "sec_mallory"]
RECIPE_ROLES = ["ml_operator", "ml_reviewers", "product_owners", "ml_trainer", "ml_app", "ml_analyst", "churn_team"]


def cluster():
    """The suite's scratch server, started on first use (stopped by the last test)."""
    global CLUSTER
    if CLUSTER is None:
        c = ScratchCluster(shared_preload_libraries="'pg_cron,retrain'", max_worker_processes="16")
        c.settings.update({"cron.database_name": "'postgres'", "cron.host": f"'{c.dir}'",
                           "retrain.naptime": "1", "retrain.worker_enabled": "off",
                           "retrain.check_timeout": "'10s'", "log_min_messages": "warning"})
        CLUSTER = c.__enter__()
    return CLUSTER


def db(user="postgres", **kwargs):
    return cluster().connect("postgres", user=user, **kwargs)


# --------------------------------------------------------------------------
# Two teams and their hostile code
# --------------------------------------------------------------------------

SETUP = r"""
CREATE ROLE sec_a_ops LOGIN IN ROLE ml_operator;
CREATE ROLE sec_b_ops LOGIN IN ROLE ml_operator;
CREATE ROLE sec_trainer1 LOGIN IN ROLE ml_trainer, sec_a_ops;
CREATE ROLE sec_rev1 LOGIN IN ROLE ml_reviewers;
CREATE ROLE sec_appr1 LOGIN IN ROLE product_owners;
CREATE ROLE sec_app1 LOGIN IN ROLE ml_app;
CREATE ROLE sec_ana1 LOGIN IN ROLE ml_analyst;
CREATE ROLE sec_alice LOGIN IN ROLE ml_trainer, ml_reviewers, sec_a_ops;
CREATE ROLE sec_mallory LOGIN;
CREATE SCHEMA sec_a AUTHORIZATION sec_a_ops;
CREATE SCHEMA sec_b AUTHORIZATION sec_b_ops;
-- an old database where every role may create in public (PostgreSQL 14 and before)
GRANT CREATE ON SCHEMA public TO PUBLIC;
"""

# Team A's code, created by team A's operator in its own schema.
TEAM_A_CODE = r"""
-- the escape: a temporary table whose deferred trigger fires at the session's COMMIT
CREATE FUNCTION sec_a.make_me_superuser() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE sec_a_ops SUPERUSER;
    RETURN NULL;
END
$$;
CREATE FUNCTION sec_a.escape() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS sec_bait (x integer);
    CREATE CONSTRAINT TRIGGER sec_bait_trigger AFTER INSERT ON sec_bait
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sec_a.make_me_superuser();
    INSERT INTO sec_bait VALUES (1);
    RETURN true;
END
$$;
-- the same with a table of its own
CREATE TABLE sec_a.bait (x integer);
CREATE CONSTRAINT TRIGGER bait_trigger AFTER INSERT ON sec_a.bait
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sec_a.make_me_superuser();
CREATE FUNCTION sec_a.escape_own_table() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_a.bait VALUES (1);
    RETURN true;
END
$$;
-- borrowed identity: the session's identity acting on team B's model
CREATE FUNCTION sec_a.promote_b() RETURNS boolean LANGUAGE sql
    BEGIN ATOMIC SELECT retrain.promote('sec_b', 'v2', 'blue_green', override_reason => 'pwned') IS NOT NULL; END;
CREATE FUNCTION sec_a.policy_b() RETURNS boolean LANGUAGE sql
    BEGIN ATOMIC SELECT retrain.set_policy('sec_b', '{}') IS NOT NULL; END;
CREATE FUNCTION sec_a.register_pwn() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM retrain.register_model('sec_pwn', 'regression');
    RETURN true;
END
$$;
-- settings that stay
CREATE FUNCTION sec_a.settings() RETURNS boolean LANGUAGE sql
    BEGIN ATOMIC SELECT set_config('default_transaction_read_only', 'on', false) IS NOT NULL
                    AND set_config('extra_float_digits', '-15', false) IS NOT NULL
                    AND set_config('statement_timeout', '1', false) IS NOT NULL; END;
-- a session advisory lock on retrain's own write lock
CREATE FUNCTION sec_a.hold_lock() RETURNS boolean LANGUAGE sql
    BEGIN ATOMIC SELECT pg_advisory_lock(32199484592351598) IS NOT NULL; END;
CREATE TABLE sec_a.feedback (severity text);
INSERT INTO sec_a.feedback VALUES ('minor');
CREATE VIEW sec_a.source AS
    SELECT 'v1'::text AS version, now() - interval '1 hour' AS predicted_at, 0.5::float8 AS score,
           sec_a.escape() AS escaped;
"""

# The outsider's operator in public, which a check using "=" on text would pick
# before pg_catalog's if public came first in its search_path.
MALLORY_CODE = r"""
CREATE SEQUENCE public.sec_hits;
GRANT USAGE ON SEQUENCE public.sec_hits TO PUBLIC;
CREATE FUNCTION public.sec_eq(a text, b text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT nextval('public.sec_hits') > 0 AND a OPERATOR(pg_catalog.=) b $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.sec_eq);
"""

ATTACK_CHECKS = {
    "escape": "SELECT sec_a.escape()",
    "escape_own_table": "SELECT sec_a.escape_own_table()",
    "promote_b": "SELECT sec_a.promote_b()",
    "policy_b": "SELECT sec_a.policy_b()",
    "register_pwn": "SELECT sec_a.register_pwn()",
    "settings": "SELECT sec_a.settings()",
    "hold_lock": "SELECT sec_a.hold_lock()",
    "operator": "SELECT count(*) >= 0 FROM sec_a.feedback WHERE severity = 'minor'",
}


def register(conn, model, owner):
    conn.execute(f"SET SESSION AUTHORIZATION {owner}")
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (model,))
    conn.execute("RESET SESSION AUTHORIZATION")
    # (versions come from a trainer; here the superuser stands in)
    for v, sha in (("v1", "a"), ("v2", "b")):
        conn.execute("SELECT retrain.register_version(%s, %s, 's3://m/' || %s, repeat(%s, 64), '{\"f1\": 0.8}')",
                     (model, v, v, sha))
    conn.execute(f"SET SESSION AUTHORIZATION {owner}")
    conn.execute("SELECT retrain.set_policy(%s, %s)", (model, json.dumps({
        "gates": [{"metric": "f1", "op": ">=", "value": 0.9}],
        "approvals": {"reviewer": "ml_reviewers", "approver": "product_owners"},
        "triggers": {"schedule": {"interval": "1 day"}}})))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'first release')", (model,))
    conn.execute("RESET SESSION AUTHORIZATION")


def test_setup_two_teams():
    with db() as conn:
        for role in LOGINS + RECIPE_ROLES:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute("CREATE EXTENSION retrain")
        conn.execute("CREATE EXTENSION pg_cron")
        recipe = open(os.path.join(HERE, "..", "docs", "operations.md"), encoding="utf-8").read()
        conn.execute(recipe.split("<!-- grant recipe -->", 1)[1].split("```sql", 1)[1].split("```", 1)[0])
        conn.execute(SETUP)
        register(conn, "sec_a", "sec_a_ops")
        register(conn, "sec_b", "sec_b_ops")
        # team A's checks: every attack, and a model reading a hostile source
        conn.execute("SET SESSION AUTHORIZATION sec_a_ops")
        conn.execute(TEAM_A_CODE)
        conn.execute("SELECT retrain.register_model('sec_a_src', 'binary_classification')")
        conn.execute("RESET SESSION AUTHORIZATION")
        conn.execute("SELECT retrain.register_version('sec_a_src', 'v1', 's3://v1', repeat('c', 64), '{}')")
        conn.execute("SET SESSION AUTHORIZATION sec_a_ops")
        conn.execute("SELECT retrain.promote('sec_a_src', 'v1', 'blue_green', override_reason => 'first')")
        conn.execute("SELECT retrain.set_source('sec_a_src', 'sec_a.source')")
        conn.execute("SELECT retrain.set_policy('sec_a_src', '{\"triggers\": {\"drift\": {}, \"confidence\": {\"min\": 0.9}}}')")
        conn.execute("RESET SESSION AUTHORIZATION")
        conn.execute("SET SESSION AUTHORIZATION sec_mallory")
        conn.execute(MALLORY_CODE)
        conn.execute("RESET SESSION AUTHORIZATION")
        # the schedule is due at every cycle: the checks run, and would make a request
        conn.execute("UPDATE retrain.models SET created_at = now() - interval '30 days'")
        conn.execute("UPDATE retrain.model_versions SET registered_at = now() - interval '10 days'")
        assert scalar(conn, "SELECT count(*) FROM retrain.models") == 3


def set_attacks(checks):
    """Team A's operator puts checks into its model's policy."""
    with db("sec_a_ops") as conn:
        policy = scalar(conn, "SELECT policy FROM retrain.models WHERE name = 'sec_a'")
        policy["eligibility"] = {"checks": checks}
        conn.execute("SELECT retrain.set_policy('sec_a', %s)", (json.dumps(policy),))


def violations(conn):
    """What the attacks achieved, if anything: nobody may have escalated,
    team B's model and policy must be untouched, no model registered under
    a borrowed identity, the outsider's operator never run."""
    found = []
    if scalar(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = 'sec_a_ops'"):
        found.append("team A's operator became superuser")
    b = conn.execute("SELECT production_version, previous_version FROM retrain.deployments "
                     "WHERE model = 'sec_b'").fetchone()
    if b != ("v1", None):
        found.append(f"team B's deployment changed: {b}")
    if not scalar(conn, "SELECT policy ? 'gates' FROM retrain.models WHERE name = 'sec_b'"):
        found.append("team B's policy was replaced")
    if scalar(conn, "SELECT count(*) FROM retrain.models WHERE name = 'sec_pwn'"):
        found.append("a model was registered with a borrowed identity")
    if scalar(conn, "SELECT is_called FROM public.sec_hits"):
        found.append("the outsider's operator ran in team A's check")
    return found


def session_left_alone(conn):
    """What owner code left in the session that ran it."""
    found = []
    for setting, value in (("default_transaction_read_only", "off"), ("extra_float_digits", "1"),
                           ("statement_timeout", "0")):
        if scalar(conn, f"SHOW {setting}") != value:
            found.append(f"{setting} is {scalar(conn, f'SHOW {setting}')}")
    if scalar(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"):
        found.append("an advisory lock stayed with the session")
    if scalar(conn, "SELECT to_regclass('pg_temp.sec_bait')") is not None:
        found.append("a temporary table stayed in the session")
    return found


def cycle_effects(conn, since_log_id):
    """What the cycle logged for each model since a log id."""
    return conn.execute("SELECT model, event, details FROM retrain.log WHERE id > %s ORDER BY id",
                        (since_log_id,)).fetchall()


def check_failures(conn):
    """The failed checks of model sec_a, as check() reports them now (the
    cycle logs only fired triggers)."""
    return scalar(conn, "SELECT detail->'eligibility'->'failed_checks' FROM retrain.check('sec_a') "
                        "WHERE trigger = 'schedule'")


def test_attacks_through_a_direct_call():
    set_attacks(ATTACK_CHECKS)
    with db() as conn:
        since = scalar(conn, "SELECT coalesce(max(id), 0) FROM retrain.log")
        conn.execute("SELECT retrain.run_checks()")
        conn.execute("SELECT * FROM retrain.guard_rollouts()")
        # the session that ran the checks kept its settings and holds no lock
        left = session_left_alone(conn)
    with db() as conn:
        problems = left + violations(conn)
        assert not problems, problems
        failed = check_failures(conn)
        for name in ("escape", "escape_own_table", "promote_b", "policy_b", "register_pwn"):
            assert name in failed, (name, failed)
        assert "security-restricted operation" in failed["escape"], failed["escape"]
        assert "42501" in failed["promote_b"] and "42501" in failed["register_pwn"], failed
        # the source model's read failed on the escape, and was logged
        events = [(m, e) for m, e, _ in cycle_effects(conn, since)]
        assert ("sec_a_src", "check_failed") in events, events
        assert ("sec_b", "checked") in events, events


def test_attacks_through_the_worker():
    with db() as conn:
        since = scalar(conn, "SELECT coalesce(max(id), 0) FROM retrain.log")
        conn.execute("ALTER SYSTEM SET retrain.worker_enabled = on")
        conn.execute("SELECT pg_reload_conf()")
        # three cycles: settings left by one would break the next ones
        wait_for("three worker cycles", lambda: scalar(
            conn, "SELECT count(*) FROM retrain.log WHERE id > %s AND model = 'sec_b' AND event = 'checked' "
                  "AND actor = 'postgres'", (since,)) >= 3, timeout=60)
        conn.execute("ALTER SYSTEM SET retrain.worker_enabled = off")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(1.5)
        problems = violations(conn)
        assert not problems, problems
        effects = cycle_effects(conn, since)
        # the refusals are on record: the failed checks of each cycle
        logged = [d.get("failed_checks", {}) for m, e, d in effects if m == "sec_a" and e == "checked"]
        assert logged and all(f.get("escape") == "failed (SQLSTATE 42501)" and
                              f.get("promote_b") == "failed (SQLSTATE 42501)" for f in logged), logged[:1]
        # team b's model was only looked at: checked, and its new production
        # version watched (rollback.watch), never acted on
        assert not [e for e in effects if e[0] == "sec_b" and e[1] != "checked"
                    and not (e[1] == "guard" and e[2].get("decision") in ("wait", "hold"))], effects
        assert [e for e in effects if e[0] == "sec_a_src" and e[1] == "check_failed"], effects
        # team A's own model goes on being checked, with its attacks failing
        assert [e for e in effects if e[0] == "sec_a" and e[1] == "checked"], effects


def test_attacks_through_pg_cron():
    with db() as conn:
        since = scalar(conn, "SELECT coalesce(max(id), 0) FROM retrain.log")
        job = scalar(conn, "SELECT retrain.schedule_checks('* * * * *')")
        # the job runs as the extension's owner, the role that scheduled it
        assert scalar(conn, "SELECT username FROM cron.job WHERE jobid = %s", (job,)) == "postgres"
        wait_for("the pg_cron job's run", lambda: scalar(
            conn, "SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND status IN ('succeeded', 'failed')",
            (job,)), timeout=90, interval=1)
        status = conn.execute("SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s",
                              (job,)).fetchone()
        assert status[0] == "succeeded", status
        assert scalar(conn, "SELECT retrain.unschedule_checks()") is True
        problems = violations(conn)
        assert not problems, problems
        assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE id > %s AND model = 'sec_b' "
                            "AND event = 'checked'", (since,)) >= 1
        refused = scalar(conn, "SELECT details->'failed_checks' FROM retrain.log WHERE id > %s "
                               "AND model = 'sec_a' AND event = 'checked' AND actor = 'postgres' "
                               "ORDER BY id DESC LIMIT 1", (since,))
        assert "42501" in refused["register_pwn"], refused


def test_the_log_keeps_no_data_of_the_owner():
    """Every role reads the log: an owner check's error that quotes a value
    of the owner's table is kept there as its SQLSTATE only; the owner's
    members see the message in check()."""
    with db("sec_a_ops") as conn:
        conn.execute("CREATE TABLE sec_a.secrets (s text)")
        conn.execute("INSERT INTO sec_a.secrets VALUES ('s3cr3t')")
    set_attacks({"leaky": "SELECT (SELECT s FROM sec_a.secrets)::integer > 0"})
    with db() as conn:
        since = scalar(conn, "SELECT coalesce(max(id), 0) FROM retrain.log")
        conn.execute("SELECT retrain.run_checks()")
        logged = conn.execute("SELECT details::text FROM retrain.log WHERE id > %s", (since,)).fetchall()
        assert logged and not any("s3cr3t" in d for (d,) in logged), logged
    with db("sec_a_ops") as conn:
        assert "s3cr3t" in check_failures(conn)["leaky"]
    with db("sec_ana1") as conn:
        assert not scalar(conn, "SELECT count(*) FROM retrain.log WHERE details::text LIKE '%%s3cr3t%%'")
    set_attacks({})


def test_signing_as_a_group():
    with db("sec_alice") as conn:
        conn.execute("SELECT retrain.register_version('sec_a', 'v3', 's3://v3', repeat('d', 64), '{\"f1\": 0.95}')")
        conn.execute("SET ROLE ml_reviewers")
        expect_error(conn, "SELECT retrain.approve('sec_a', 'v3', 'reviewer')", "42501", match="registered")
        conn.execute("RESET ROLE")
    with db("sec_rev1") as conn:
        conn.execute("SET ROLE ml_reviewers")
        conn.execute("SELECT retrain.approve('sec_a', 'v3', 'reviewer')")
    with db() as conn:
        # the person is on record, with the group they acted as
        row = conn.execute("SELECT approver FROM retrain.approvals WHERE model = 'sec_a' AND version = 'v3'").fetchone()
        assert row == ("sec_rev1",), row
        logged = conn.execute("SELECT actor, details->>'role' FROM retrain.log WHERE model = 'sec_a' "
                              "AND event = 'approved' ORDER BY id DESC LIMIT 1").fetchone()
        assert logged == ("sec_rev1", "ml_reviewers"), logged


def test_removing_the_gates_is_not_an_override():
    with db("sec_b_ops") as conn:
        expect_error(conn, "SELECT retrain.set_policy('sec_a', '{\"gates\": [], \"approvals\": {}}')", "42501")
        expect_error(conn, "SELECT retrain.promote('sec_a', 'v2', 'blue_green')", "42501")
        expect_error(conn, "SELECT retrain.rollback('sec_a', 'not mine')", "42501")
        expect_error(conn, "SELECT retrain.request_retrain('sec_a', 'not mine')", "42501")
        expect_error(conn, "SELECT * FROM retrain.check('sec_a')", "42501")
        # and another team's cycle leaves this team's models alone
        assert scalar(conn, "SELECT count(*) FROM retrain.guard_rollouts() WHERE model NOT LIKE 'sec_b%'") == 0
    with db("sec_a_ops") as conn:
        # the owner may relax its own policy: logged with the before and after documents
        before = scalar(conn, "SELECT policy FROM retrain.models WHERE name = 'sec_a'")
        conn.execute("SELECT retrain.set_policy('sec_a', %s)",
                     (json.dumps(dict(before, gates=[], approvals={})),))
        details = scalar(conn, "SELECT details FROM retrain.log WHERE model = 'sec_a' AND event = 'policy_set' "
                               "ORDER BY id DESC LIMIT 1")
        assert details["before"]["gates"] == before["gates"] and details["policy"]["gates"] == []
        assert len(details["relaxed"]) == 3, details["relaxed"]  # one gate, two sign-offs
        conn.execute("SELECT retrain.set_policy('sec_a', %s)", (json.dumps(before),))


def test_writing_another_teams_baseline():
    profile = json.dumps([{"feature": "x", "kind": "numeric", "edges": [1], "expected": [-1, 2],
                           "row_count": 10, "missing_share": 0}])
    good = json.dumps([{"feature": "x", "kind": "numeric", "edges": [1], "expected": [0.5, 0.5],
                        "row_count": 10, "missing_share": 0}])
    with db("sec_trainer1") as conn:
        expect_error(conn, "SELECT retrain._store_baseline('sec_b', 'v1', %s)", "42501", (good,))
        expect_error(conn, "SELECT retrain._store_baseline('sec_a', 'v1', %s)", "22023", (profile,))
        expect_error(conn, "SELECT retrain._store_baseline('sec_a', 'v9', %s)", "42704", (good,))
        expect_error(conn, "SELECT retrain._store_baseline('sec_none', 'v1', %s)", "42704", (good,))
        assert scalar(conn, "SELECT retrain._store_baseline('sec_a', 'v1', %s)", (good,)) == 1
    with db() as conn:
        assert scalar(conn, "SELECT count(*) FROM retrain.baselines WHERE model = 'sec_b'") == 0


def test_reading_through_error_messages():
    with db() as conn:
        pid = scalar(conn, "SELECT retrain.log_prediction('sec_b', 'v1', 'u1', 0.5, "
                           "predicted_at => '2026-03-04 05:06:07+00')")
    with db("sec_app1") as conn:
        expect_error(conn, "SELECT count(*) FROM retrain.predictions", "42501")
        e = expect_error(conn, "SELECT retrain.log_outcome(%s, true, '2026-01-01')", "22023", (pid,))
        assert "2026-03-04" not in str(e) and "05:06:07" not in str(e), str(e)


def test_a_slow_check_holds_up_no_other_team():
    """A 20-second owner check on one model, while the worker runs the
    cycle: another team's request, rollback and force each wait at most 1 s;
    the slow model is stopped by retrain.check_timeout (10 s here)."""
    set_attacks({"slow": "SELECT pg_sleep(20) IS NOT NULL"})
    with db() as conn:
        # a canary of team B, so that its rollback has something to do
        conn.execute("SET SESSION AUTHORIZATION sec_b_ops")
        conn.execute("SELECT retrain.promote('sec_b', 'v2', 'canary', override_reason => 'test')")
        conn.execute("RESET SESSION AUTHORIZATION")
        since = scalar(conn, "SELECT coalesce(max(id), 0) FROM retrain.log")
        conn.execute("ALTER SYSTEM SET retrain.worker_enabled = on")
        conn.execute("SELECT pg_reload_conf()")
        wait_for("the worker in the slow check", lambda: scalar(
            conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'retrain worker' "
                  "AND query LIKE '%%checks of model sec_a'"), timeout=30, interval=0.1)
        time.sleep(1)
        delays = {}
        with db("sec_b_ops") as other:
            for name, sql in (("request_retrain", "SELECT retrain.request_retrain('sec_b', 'during a slow check')"),
                              ("rollback", "SELECT retrain.rollback('sec_b', 'during a slow check')"),
                              ("force", "SELECT retrain.force('sec_b', 'fallback')"),
                              ("force auto", "SELECT retrain.force('sec_b', 'auto')")):
                started = time.monotonic()
                other.execute(sql)
                delays[name] = time.monotonic() - started
        print("    delays during a 20 s owner check: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in delays.items()))
        assert max(delays.values()) < 1.0, delays
        # the slow model ran out of retrain.check_timeout, logged, and the cycle went on
        failure = wait_for("the slow model's timeout", lambda: conn.execute(
            "SELECT details FROM retrain.log WHERE id > %s AND model = 'sec_a' AND event = 'check_failed'",
            (since,)).fetchone(), timeout=30)
        assert "retrain.check_timeout" in failure[0]["message"], failure
        wait_for("the cycle after the slow model", lambda: scalar(
            conn, "SELECT count(*) FROM retrain.log l WHERE l.id > (SELECT max(id) FROM retrain.log "
                  "WHERE model = 'sec_a' AND event = 'check_failed') AND l.model = 'sec_b' AND event = 'checked'"),
            timeout=30)
        conn.execute("ALTER SYSTEM SET retrain.worker_enabled = off")
        conn.execute("SELECT pg_reload_conf()")
    set_attacks({})


def test_the_log_is_anchored_outside_its_tables():
    with db() as conn:
        head = conn.execute("SELECT head_id, head_hash FROM retrain._anchor_log()").fetchone()
        assert f"retrain log head: id {head[0]}, hash {head[1]} (check cycle)" in cluster().log()
        assert scalar(conn, "SELECT ok FROM retrain.verify_log(%s, %s)", head) is True
        # a superuser cuts the tail and rewrites the head: the chain alone
        # still verifies, against the recorded head it does not
        conn.execute("ALTER TABLE retrain.log DISABLE TRIGGER log_append_only")
        conn.execute("DELETE FROM retrain.log WHERE id > %s - 3", (head[0],))
        conn.execute("UPDATE retrain.log_head SET last_id = l.id, last_hash = l.hash FROM retrain.log l "
                     "WHERE l.id = (SELECT max(id) FROM retrain.log)")
        conn.execute("ALTER TABLE retrain.log ENABLE TRIGGER log_append_only")
        assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
        row = conn.execute("SELECT ok, first_bad_id FROM retrain.verify_log(%s, %s)", head).fetchone()
        # the first row the recorded head had and the log no longer has
        assert row == (False, head[0] - 2), row


def test_stop_the_cluster():
    global CLUSTER
    if CLUSTER is not None:
        CLUSTER.__exit__(None, None, None)
        CLUSTER = None


if __name__ == "__main__":
    try:
        run_suite(globals())
    finally:
        if CLUSTER is not None:
            CLUSTER.__exit__(None, None, None)
