"""The event stream (issue 14, item 11): NOTIFY retrain_events carries, at
commit, one JSON payload per logged event a person may need to act on, and
nothing for routine ones; the older channels keep working.
"""

import json
import time

from testlib import connect, run_suite, scalar


def events_of(listener, got, model):
    """The payloads received so far for one model, after a round trip."""
    listener.execute("SELECT 1")
    return [json.loads(p) for c, p in got if c == "retrain_events" and json.loads(p)["model"] == model]


def test_events_arrive_at_commit_with_the_log_row():
    with connect() as admin, connect() as listener:
        admin.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN retrain_events")
        listener.execute("LISTEN retrain_requests")
        admin.execute("SELECT retrain.register_model('ev_model', 'binary_classification')")
        # a gate the versions do not meet: promoting them is an override
        admin.execute("""SELECT retrain.set_policy('ev_model', '{"gates": [{"metric": "auc", "op": ">=", "value": 0.9}]}')""")
        for v in ("v1", "v2"):
            admin.execute("SELECT retrain.register_version('ev_model', %s, 's3://m', encode(sha256(%s::bytea), 'hex'), '{}')", (v, v))
        with admin.transaction():
            admin.execute("SELECT retrain.promote('ev_model', 'v1', 'blue_green', override_reason => 'first release')")
            admin.execute("SELECT retrain.promote('ev_model', 'v2', 'canary', override_reason => 'try it')")
            assert events_of(listener, got, "ev_model") == [], "sent before commit"
        admin.execute("SELECT retrain.freeze('ev_model', 'incident 17')")
        admin.execute("SELECT retrain.rollback('ev_model', 'latency')")
        admin.execute("SELECT retrain.force('ev_model', 'fallback')")
        request = scalar(admin, "SELECT retrain.request_retrain('ev_model', 'new data')")
        admin.execute("SELECT retrain.request_retrain('ev_model', 'new data, again')")  # a join: routine
        admin.execute("SELECT retrain.unfreeze('ev_model', 'resolved')")
        time.sleep(0.2)
        events = events_of(listener, got, "ev_model")
        assert [e["event"] for e in events] == [
            "promoted", "promoted", "frozen", "rolled_back", "forced", "retrain_requested", "unfrozen"], events
        by_event = {e["event"]: e for e in events}
        assert events[0]["reason"] == "blue_green, override: first release"
        assert by_event["frozen"]["reason"] == "incident 17"
        assert by_event["rolled_back"]["reason"] == "latency" and by_event["rolled_back"]["version"] == "v2"
        assert by_event["retrain_requested"]["reason"] == "new data"
        assert by_event["forced"]["reason"] == "mode fallback"
        # each payload names its log row, which holds the rest
        for e in events:
            row = admin.execute("SELECT event, model, actor FROM retrain.log WHERE id = %s", (e["id"],)).fetchone()
            assert row == (e["event"], "ev_model", e["actor"]), (row, e)
            assert set(e) == {"id", "event", "model", "version", "actor", "reason", "at"}, e
        # routine events (registration, checks, joins) send nothing; the
        # older channel still announces the request
        assert not [e for e in events if e["event"] in ("registered", "model_registered", "checked")]
        assert any(c == "retrain_requests" and json.loads(p)["request_id"] == request for c, p in got)


def test_a_failing_check_and_an_unusable_trigger_are_announced():
    with connect() as admin, connect() as listener:
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN retrain_events")
        admin.execute("SELECT retrain.register_model('ev_unusable', 'binary_classification')")
        admin.execute("""SELECT retrain.set_policy('ev_unusable', '{"triggers": {"drift": {}}}')""")
        # a model whose source is gone: its check fails
        admin.execute("CREATE TABLE public.ev_src (version text, predicted_at timestamptz, score float8)")
        admin.execute("SELECT retrain.register_model('ev_broken', 'binary_classification')")
        admin.execute("SELECT retrain.register_version('ev_broken', 'v1', 's3://m', repeat('a', 64), '{}')")
        admin.execute("SELECT retrain.promote('ev_broken', 'v1', 'blue_green', override_reason => 'test')")
        admin.execute("SELECT retrain.set_source('ev_broken', 'public.ev_src')")
        admin.execute("""SELECT retrain.set_policy('ev_broken', '{"triggers": {"confidence": {"min": 0.6}}}')""")
        admin.execute("DROP TABLE public.ev_src")
        admin.execute("SELECT retrain.run_checks()")
        admin.execute("SELECT retrain.run_checks()")  # the same reason: logged and sent once
        events = events_of(listener, got, "ev_unusable")
        assert [(e["event"], e["reason"]) for e in events] == [
            ("trigger_unusable", "drift: no production version")], events
        failed = [e for e in events_of(listener, got, "ev_broken") if e["event"] != "promoted"]
        assert [e["event"] for e in failed] == ["check_failed", "check_failed"], failed
        assert "SQLSTATE 42P01" in failed[0]["reason"], failed[0]
        # the model reads retrain.predictions again: later suites' cycles pass
        admin.execute("SELECT retrain.set_source('ev_broken', NULL)")


def test_a_schedule_reminder_is_announced_once():
    """remind_before: the cycle sends one reminder per occurrence on the
    stream ("PagerDuty receives a reminder 24 hours before the window")."""
    with connect() as admin, connect() as listener:
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN retrain_events")
        admin.execute("SELECT retrain.register_model('ev_remind', 'regression')")
        admin.execute("UPDATE retrain.models SET created_at = '2026-01-01 00:00+00' WHERE name = 'ev_remind'")
        admin.execute("""SELECT retrain.set_policy('ev_remind', '{"triggers": {"schedule": [
            {"name": "window", "every": "month", "weekday": "saturday", "nth": 1, "at": "06:00",
             "remind_before": "24 hours"}]}}')""")
        # the first Saturday of August 2026 is the 1st: reminded on 31 July 06:00
        for at in ("2026-07-31 05:59+00", "2026-07-31 06:00+00", "2026-07-31 07:00+00"):
            admin.execute("SELECT retrain.run_checks(%s)", (at,))
        events = [e for e in events_of(listener, got, "ev_remind") if e["event"] == "reminder"]
        assert len(events) == 1, events
        assert events[0]["reason"].startswith("schedule:window at 2026-08-01"), events[0]
        row = admin.execute("SELECT details->>'occurrence' FROM retrain.log WHERE id = %s", (events[0]["id"],)).fetchone()
        assert row is not None


if __name__ == "__main__":
    run_suite(globals())
