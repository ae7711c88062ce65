"""The retrain request queue across sessions: what pg_regress cannot show.

- racing request_retrain() calls on one model leave exactly one open
  request, holding every reason;
- racing trainers claim each open request exactly once (FOR UPDATE SKIP
  LOCKED);
- a new request sends NOTIFY retrain_requests with a JSON payload, at commit.
- an answer committed while a check cycle's transaction runs keeps the
  cycle from making the same request again.
"""

import json
import threading
import time

import psycopg

from testlib import connect, run_suite, run_threads, scalar, train_until


def test_racing_requests_make_one_open_request():
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        conn.execute("SELECT retrain.register_model('queue_race', 'binary_classification')")

    def requester(i):
        with connect() as conn:
            for k in range(50):
                conn.execute("SELECT retrain.request_retrain('queue_race', %s)", (f"client {i} #{k}",))

    run_threads(4, requester)
    with connect() as conn:
        rows = conn.execute("SELECT id, jsonb_array_length(reasons) FROM retrain.requests "
                            "WHERE model = 'queue_race' AND status IN ('open', 'claimed')").fetchall()
        assert len(rows) == 1, rows
        assert rows[0][1] == 200, rows  # every reason joined the one request
        ok = scalar(conn, "SELECT ok FROM retrain.verify_log()")
        assert ok


def test_racing_trainers_claim_each_request_once():
    models = [f"queue_claim_{i}" for i in range(30)]
    with connect() as conn:
        for m in models:
            conn.execute("SELECT retrain.register_model(%s, 'regression')", (m,))
            conn.execute("SELECT retrain.request_retrain(%s, 'test')", (m,))
    claimed = []
    lock = threading.Lock()

    def trainer(i):
        with connect() as conn:
            while True:
                row = conn.execute("SELECT id, model FROM retrain.claim_request(%s)", (f"t{i}",)).fetchone()
                if row is None:
                    return
                with lock:
                    claimed.append(row)
                conn.execute("SELECT retrain.finish_request(%s, 'failed', message => 'test')", (row[0],))

    run_threads(4, trainer)
    ours = [r for r in claimed if r[1] in models]
    assert len(ours) == len(models), len(ours)
    assert len({r[0] for r in ours}) == len(models)  # no request claimed twice


def test_new_request_notifies_at_commit():
    with connect() as admin, connect() as listener:
        admin.execute("SELECT retrain.register_model('queue_notify', 'binary_classification')")
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN retrain_requests")
        with admin.transaction():
            request_id = scalar(admin, "SELECT retrain.request_retrain('queue_notify', 'drift')")
            listener.execute("SELECT 1")
            assert got == []
        listener.execute("SELECT 1")
        assert len(got) == 1, got
        channel, payload = got[0]
        doc = json.loads(payload)
        assert channel == "retrain_requests"
        assert doc["request_id"] == request_id and doc["model"] == "queue_notify"
        assert doc["reasons"][0]["reason"] == "drift"
        # joining the open request sends nothing new
        admin.execute("SELECT retrain.request_retrain('queue_notify', 'again')")
        listener.execute("SELECT 1")
        assert len(got) == 1, got


def test_racing_check_cycles_keep_one_open_request():
    """Three sessions run the check cycle over and over while a trainer claims
    and finishes, as the worker, a pg_cron job and a person might."""
    with connect() as conn:
        for i in range(5):
            m = f"queue_cycle_{i}"
            conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (m,))
            conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', repeat('a', 64), '{}')", (m,))
            conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green')", (m,))
            conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"schedule": {"interval": "1 second"}}}')""", (m,))
    # long enough for the trainer to get the write lock between cycles that
    # hold it across every model of the database (run_checks() in one
    # transaction), however many models the suites before left
    deadline = time.monotonic() + 12
    unexpected = []

    def cycler(i):
        with connect() as conn:
            while time.monotonic() < deadline:
                conn.execute("SELECT retrain.run_checks()")

    def trainer(i):
        with connect() as conn:
            train_until(conn, deadline)

    run_threads(4, lambda i: (trainer if i == 3 else cycler)(i))
    with connect() as conn:
        worst = scalar(conn, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM retrain.requests "
                             "WHERE status IN ('open', 'claimed') GROUP BY model) x")
        assert worst <= 1, worst
        assert scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model LIKE 'queue_cycle_%' "
                            "AND status = 'done'") >= 5
        # (other suites' models may fail on purpose: only these count)
        assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE event = 'check_failed' "
                            "AND model LIKE 'queue_cycle_%'") == 0
        assert scalar(conn, "SELECT ok FROM retrain.verify_log()")
    assert not unexpected, unexpected

def test_answer_committed_during_a_cycle_stays_in_flight():
    """The demo's flake: a cycle's transaction starts, the trainer then
    commits its answer (request done, version registered), and the cycle
    reads both.  now() is older than the answer's finished_at, yet the
    answer is in flight: the production version's trigger that made the
    request must not make the same request again."""
    with connect() as conn:
        m = "queue_in_flight"
        conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (m,))
        conn.execute("SELECT retrain.register_version(%s, 'v1', 's3://m', repeat('a', 64), '{}')", (m,))
        conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green')", (m,))
        conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"schedule": {"interval": "1 second"}}}')""", (m,))
        rid = scalar(conn, "SELECT retrain.request_retrain(%s, 'drift')", (m,))
        # the queue is shared: claim, and set aside, what earlier tests left
        while (row := conn.execute("SELECT id FROM retrain.claim_request('t')").fetchone())[0] != rid:
            conn.execute("SELECT retrain.finish_request(%s, 'failed', message => 'not this test''s')", row)
        conn.execute("SELECT retrain.register_version(%s, 'v2', 's3://m2', repeat('b', 64), '{}')", (m,))
        time.sleep(1.1)  # the schedule of the production version v1 is due
        with connect() as cycle:
            with cycle.transaction():
                cycle.execute("SELECT now()")  # the cycle's transaction has begun
                conn.execute("SELECT retrain.finish_request(%s, 'done', 'v2')", (rid,))
                cycle.execute("SELECT retrain.run_checks()")
                decided = scalar(cycle, "SELECT details FROM retrain.log WHERE model = %s AND event = 'checked' "
                                        "ORDER BY id DESC LIMIT 1", (m,))
                fired, eligible, detail = cycle.execute(
                    "SELECT fired, eligible, detail->'eligibility'->'in_flight' FROM retrain.check(%s) "
                    "WHERE trigger = 'schedule'", (m,)).fetchone()
        # the schedule is due, but the answer is on its way: no request
        assert fired and not eligible, (fired, eligible)
        # (logged as held back: fired, not eligible)
        assert decided == {"fired": [], "request": None, "held": ["schedule"]}, decided
        assert scalar(conn, "SELECT count(*) FROM retrain.requests WHERE model = %s AND status = 'open'", (m,)) == 0
        assert detail is not None and detail["request"] == rid and detail["version"] == "v2", detail


def test_finish_refuses_foreign_states():
    with connect() as conn:
        conn.execute("SELECT retrain.register_model('queue_states', 'binary_classification')")
        rid = scalar(conn, "SELECT retrain.request_retrain('queue_states', 'x')")
        try:
            conn.execute("SELECT retrain.finish_request(%s, 'done')", (rid,))
        except psycopg.Error as e:
            assert e.sqlstate == "55000", e.sqlstate
        else:
            raise AssertionError("finishing an unclaimed request as done must fail")


def test_a_long_history_keeps_each_check_cheap():
    """Every check of a model asks for its last failures_reset event and its
    finished requests (cooldown, failed trainings in a row).  A year of
    cycles leaves tens of thousands of log rows and hundreds of requests a
    model: each question is answered from an index on what it asks, not by
    reading the model's whole history (nor every model's requests)."""
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        conn.execute("SELECT retrain.register_model(m, 'binary_classification') "
                     "FROM unnest('{queue_history, queue_other}'::text[]) m")
        conn.execute("SELECT retrain._log('queue_history', NULL, 'checked', '{}') FROM generate_series(1, 5000)")
        conn.execute("SELECT retrain._log('queue_history', NULL, 'failures_reset', '{\"reason\": \"t\"}')")
        conn.execute("""INSERT INTO retrain.requests (model, status, requested_by, requested_at, finished_at)
                        SELECT m, CASE WHEN i % 4 = 0 THEN 'failed' ELSE 'done' END, current_user,
                               now() - i * interval '1 hour', now() - i * interval '1 hour' + interval '10 minutes'
                          FROM generate_series(1, 5000) i, unnest('{queue_history, queue_other}'::text[]) m""")
        conn.execute("ANALYZE retrain.log, retrain.requests")
        plans = {}
        for name, query in {
            "log": "SELECT max(l.at) FROM retrain.log l WHERE l.model = 'queue_history' "
                   "AND l.event = 'failures_reset' AND l.at <= now()",
            "requests": "SELECT count(*) FROM retrain.requests q WHERE q.model = 'queue_history' "
                        "AND q.status = 'failed' AND q.finished_at <= now() AND q.finished_at > now() - interval '1 day'",
        }.items():
            plans[name] = "\n".join(r[0] for r in conn.execute("EXPLAIN (COSTS OFF) " + query).fetchall())
        assert "log_model_event_at" in plans["log"], plans["log"]
        assert "requests_model_status" in plans["requests"], plans["requests"]
        # and the answer: no failure since the last finished training
        failures = scalar(conn, "SELECT retrain._training_failures('queue_history', "
                                "retrain.effective_policy('queue_history'), now())")
        assert failures["failures"] == 0 and failures["failing"] is False, failures
        assert scalar(conn, "SELECT ok FROM retrain.verify_log()")


run_suite(globals())
