"""make demo: a whole retraining runbook, carried out by retrain on a real
(small) churn model, through the extension's public SQL only.

1. The model and its policy, from the reference runbooks.
2. Sixteen weeks of synthetic member data with a drift three weeks ago; the
   trainer (test/trainer.py, scikit-learn) trains version 1, which passes
   its gates, gets two sign-offs and goes to production blue-green.
3. Six weeks of traffic served through route() and logged, outcomes
   arrive; the background worker sees the drift and the F1 drop and makes a
   retrain request; the trainer answers it with version 2; gates, two
   sign-offs, canary 10% -> 50% -> 100% advanced by the rollout guard.
4. Version 3 has a latency regression: the on-call operator freezes the
   model during the incident (no advance gets through), and the guard still
   rolls the canary back.
5. The timeline from retrain.log, verify_log(), the manifest and the final
   deployments row.  Throughout, the event stream (LISTEN retrain_events)
   is printed as it arrives, as an on-call bridge would post it.

Connects with the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER: a
superuser); the server must preload retrain.  Exits non-zero when a
milestone is not reached.  Days of history are replayed with their
timestamps; the live part (steps 3 to 4) runs in real time with the
policy's dwell times shortened to seconds.
"""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import numpy as np
import psycopg
from psycopg.rows import dict_row

import trainer as churn

HERE = os.path.dirname(os.path.abspath(__file__))
DAY = timedelta(days=1)
HISTORY_DAYS = 112          # member snapshots kept in the feature store
V1_DATA_ENDS_DAYS_AGO = 42  # version 1 was trained on the 70 days before this
DRIFT_DAYS_AGO = 21         # a product change: support calls triple, and churn follows logins instead
MEMBERS_PER_DAY = 400
LABELLED_SHARE = 0.10       # outcomes confirmed by the retention team
LIVE_LABELLED_SHARE = 0.02
TIMEOUT = 90                # seconds any one milestone may take

POLICY = {
    # the evaluation gate of the runbooks (precision: see README's note)
    "gates": [{"metric": "f1", "op": ">=", "relative": -0.01},
              {"metric": "auc", "op": ">=", "relative": -0.005},
              {"metric": "precision", "op": ">=", "value": 0.80},
              {"metric": "latency_p99_ms", "op": "<", "value": 1000}],
    # dual sign-off
    "approvals": {"reviewer": "ml_reviewers", "approver": "product_owners"},
    # canary 10% -> 50% -> 100%; the runbooks dwell a day or two per step,
    # the demo 12 seconds
    "rollout": {"steps": [10, 50, 100], "dwell": ["12 seconds", "12 seconds"]},
    # roll back on error rate > 2% or p99 latency +50%
    "rollback": {"max_error_rate": 0.02, "max_latency_increase": 0.5, "latency_percentile": 99,
                 "min_predictions": 100},
    # retrain on PSI > 0.25, F1 drop > 0.05, 10% more labelled data, and weekly
    "triggers": {"drift": {"psi": 0.25, "aggregate": "max", "window": "7 days"},
                 "performance": {"metric": "f1", "max_drop": 0.05, "min_labels": 200, "window": "7 days"},
                 "data_growth": {"share": 0.10},
                 "schedule": {"every": "week", "weekday": "sunday", "at": "02:00"}},
    # at least 25 new labels since the last training
    "eligibility": {"min_new_labels": 25},
}


OUTPUT = threading.Lock()   # the event stream prints from its own thread


def say(text=""):
    with OUTPUT:
        print(text, flush=True)


def step(title):
    say()
    say(f"=== {title}")


def text(v):
    """A value as psql shows it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def show(conn, sql, params=None):
    """Print a query's result as psql would, aligned."""
    cur = conn.execute(sql, params)
    names = [d.name for d in cur.description]
    rows = [[text(v) for v in (r.values() if isinstance(r, dict) else r)] for r in cur.fetchall()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = ["  " + " | ".join(n.ljust(w) for n, w in zip(names, widths)),
             "  " + "-+-".join("-" * w for w in widths)]
    lines += ["  " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    say("\n".join(lines))


def wait_for(what, predicate, timeout=TIMEOUT):
    """Poll predicate until it returns something true; fail the demo after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not happen within {timeout} s")


def connect(person=None):
    """A session of the superuser, or of a person (as if they had logged in)."""
    conn = psycopg.connect(autocommit=True, row_factory=dict_row)
    if person:
        conn.execute(f"SET SESSION AUTHORIZATION {person}")
    return conn


# --------------------------------------------------------------------------
# Synthetic members
# --------------------------------------------------------------------------

def members(rng, n, drifted):
    """n member snapshots; after the drift, support calls are common and
    churn follows logins instead of calls."""
    tenure = rng.gamma(2.0, 12.0, n).clip(1, 72).round()
    charges = rng.normal(65, 20, n).clip(20, 120).round(2)
    calls = rng.poisson(np.where(drifted, 3.5, 1.2))
    logins = rng.poisson(12, n)
    plan = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    effect = np.array([1.0, 0.0, -1.0])[plan]
    before = 1.5 - 0.14 * tenure + 0.06 * (charges - 65) + 3.0 * calls - 0.40 * logins + effect
    after = 13.0 - 0.14 * tenure + 0.07 * (charges - 65) + 0.3 * calls - 1.3 * logins + effect
    z = np.where(drifted, after, before)
    churned = rng.random(n) < 1 / (1 + np.exp(-z))
    return [{"tenure_months": float(t), "monthly_charges": float(c), "support_calls": float(s),
             "logins_30d": float(lg), "plan": churn.PLANS[p], "churned": bool(y)}
            for t, c, s, lg, p, y in zip(tenure, charges, calls, logins, plan, churned)]


def generate_history(conn, rng, now):
    conn.execute("CREATE SCHEMA demo")
    conn.execute("CREATE TABLE demo.members (member_id text, snapshot_at timestamptz, tenure_months float8, "
                 "monthly_charges float8, support_calls float8, logins_30d float8, plan text, churned boolean)")
    n = HISTORY_DAYS * MEMBERS_PER_DAY
    start = now - HISTORY_DAYS * DAY
    at = [start + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, HISTORY_DAYS * 86400, n))]
    drift_at = now - DRIFT_DAYS_AGO * DAY
    rows = members(rng, n, np.array([t >= drift_at for t in at]))
    with conn.cursor().copy("COPY demo.members FROM STDIN") as copy:
        for i, (t, r) in enumerate(zip(at, rows)):
            copy.write_row([f"m{i:06d}", t, r["tenure_months"], r["monthly_charges"], r["support_calls"],
                            r["logins_30d"], r["plan"], r["churned"]])
    conn.execute("CREATE INDEX ON demo.members (snapshot_at)")
    conn.execute("ANALYZE demo.members")
    return n


# --------------------------------------------------------------------------
# Serving: route(), the model of the routed version, log_prediction()
# --------------------------------------------------------------------------

class Server:
    """What the churn application does per request: ask retrain which
    version serves this member, score with that version's artifact (checked
    against the registry's SHA-256), log the prediction."""

    def __init__(self, rng):
        self.conn = connect("churn_app")
        self.rng = rng
        self.artifacts = {}

    def artifact(self, version):
        if version not in self.artifacts:
            row = self.conn.execute("SELECT artifact_uri, artifact_sha256 FROM retrain.model_versions "
                                    "WHERE model = 'churn' AND version = %s", (version,)).fetchone()
            self.artifacts[version] = churn.load(row["artifact_uri"], row["artifact_sha256"])
        return self.artifacts[version]

    def serve(self, keys, rows, at=None):
        """Serve a batch of requests; at: their timestamps (replay) or now."""
        versions = [r["v"] for r in self.conn.execute(
            "SELECT retrain.route('churn', k) AS v FROM unnest(%s::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i",
            (keys,))]
        scores = np.zeros(len(rows))
        latency = np.exp(self.rng.normal(np.log(18.0), 0.25, len(rows)))  # network and service time
        for v in set(versions):
            idx = [i for i, x in enumerate(versions) if x == v]
            art = self.artifact(v)
            started = time.perf_counter()
            scores[idx] = churn.predict_proba(art, [rows[i] for i in idx])
            latency[idx] += (time.perf_counter() - started) * 1000 / len(idx) + art["lookup_ms"]
        error = self.rng.random(len(rows)) < 0.003  # the fallback was served
        features = [json.dumps({k: r[k] for k in churn.FEATURES}) for r in rows]
        ids = [r["id"] for r in self.conn.execute(
            "SELECT retrain.log_prediction('churn', v, k, s, l, e, f::jsonb, coalesce(t, now())) AS id "
            "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::float8[], %s::boolean[], %s::text[], "
            "%s::timestamptz[]) WITH ORDINALITY AS u(v, k, s, l, e, f, t, i) ORDER BY i",
            (versions, keys, scores.tolist(), latency.round(2).tolist(), error.tolist(), features,
             at or [None] * len(rows)))]
        return ids, versions

    def outcomes(self, ids, labels, observed=None):
        """Log outcomes, observed now or at the given times (a backfill)."""
        self.conn.execute("SELECT count(retrain.log_outcome(i, l, coalesce(o, now()))) "
                          "FROM unnest(%s::bigint[], %s::boolean[], %s::timestamptz[]) u(i, l, o)",
                          (ids, labels, observed or [None] * len(ids)))


class EventStream(threading.Thread):
    """What a Slack or PagerDuty bridge would post: LISTEN retrain_events,
    each payload printed as it arrives (docs/apps.md has the bridge)."""

    def __init__(self, model):
        super().__init__(daemon=True)
        self.model = model
        self.conn = psycopg.connect(autocommit=True)
        self.conn.add_notify_handler(self.post)
        self.conn.execute("LISTEN retrain_events")
        self.stopping = threading.Event()
        self.seen = []

    def post(self, n):
        e = json.loads(n.payload)
        if e["model"] != self.model:
            return
        self.seen.append(e["event"])
        version = f" {e['version']}" if e["version"] else ""
        say(f"  [retrain_events] {e['at'][11:19]} {e['event']}{version} by {e['actor']}: {e['reason'] or ''}")

    def run(self):
        # a round trip delivers what has arrived
        while not self.stopping.wait(0.2):
            self.conn.execute("SELECT 1")

    def stop(self):
        self.stopping.set()
        self.join()
        self.conn.execute("SELECT 1")
        self.conn.close()


class LiveTraffic(threading.Thread):
    """Requests from today's members, ten times a second, until stopped."""

    def __init__(self, seed):
        super().__init__(daemon=True)
        self.server = Server(np.random.default_rng(seed))
        self.rng = np.random.default_rng(seed + 1)
        self.stopping = threading.Event()
        self.served = 0
        self.error = None

    def run(self):
        try:
            while not self.stopping.is_set():
                rows = members(self.rng, 40, np.ones(40, dtype=bool))
                keys = [f"live-{k}" for k in self.rng.integers(0, 10**9, len(rows))]
                ids, _ = self.server.serve(keys, rows)
                labelled = [i for i in range(len(ids)) if self.rng.random() < LIVE_LABELLED_SHARE]
                self.server.outcomes([ids[i] for i in labelled], [rows[i]["churned"] for i in labelled])
                self.served += len(rows)
                self.stopping.wait(0.1)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def stop(self):
        self.stopping.set()
        self.join()
        if self.error:
            raise self.error


# --------------------------------------------------------------------------
# The story
# --------------------------------------------------------------------------

def setup_roles(admin):
    """The GRANT recipe of docs/operations.md, run as written there, and the
    demo's people and services in its roles."""
    with open(os.path.join(HERE, "..", "docs", "operations.md"), encoding="utf-8") as f:
        recipe = f.read().split("<!-- grant recipe -->", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    admin.execute(recipe)
    for sql in [
        "CREATE ROLE olivia IN ROLE ml_operator, churn_team",
        "CREATE ROLE alice IN ROLE ml_reviewers", "CREATE ROLE bob IN ROLE product_owners",
        "CREATE ROLE trainer LOGIN IN ROLE ml_trainer, churn_team", "CREATE ROLE churn_app IN ROLE ml_app",
        # the trainer reads the feature store
        "GRANT USAGE ON SCHEMA demo TO ml_trainer",
        "GRANT SELECT ON demo.members TO ml_trainer",
    ]:
        admin.execute(sql)


def run_trainer(*args):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "trainer.py"), "--model", "churn", *args])


def release(op, alice, bob, version, strategy):
    """Gates, two sign-offs, promote: the release steps of the runbooks."""
    say(f"retrain.evaluate('churn', '{version}'): the evaluation gate")
    show(op, "SELECT gate, round(required::numeric, 4) AS required, round(observed::numeric, 4) AS observed, passed "
             "FROM retrain.evaluate('churn', %s)", (version,))
    alice.execute("SELECT retrain.approve('churn', %s, 'reviewer', 'reproduced from the lineage; metrics checked')",
                  (version,))
    bob.execute("SELECT retrain.approve('churn', %s, 'approver', 'go')", (version,))
    say("approved by alice (reviewer, ml_reviewers) and bob (approver, product_owners)")
    started = op.execute("SELECT retrain.promote('churn', %s, %s) AS s", (version, strategy)).fetchone()["s"]
    say(f"retrain.promote('churn', '{version}', '{strategy}') -> {started}")


def show_version(conn, version):
    show(conn, "SELECT version, artifact_uri, left(artifact_sha256, 16) || '…' AS sha256, code_commit, seed, "
               "data_range, metrics FROM retrain.model_versions WHERE model = 'churn' AND version = %s", (version,))


def guard_events(conn, after_id):
    return conn.execute("SELECT id, to_char(at, 'HH24:MI:SS') AS at, event, version, details FROM retrain.log "
                        "WHERE model = 'churn' AND id > %s AND event IN ('advanced', 'rolled_back') ORDER BY id",
                        (after_id,)).fetchall()


def last_log_id(conn):
    return conn.execute("SELECT coalesce(max(id), 0) AS id FROM retrain.log").fetchone()["id"]


def main():
    rng = np.random.default_rng(20261122)
    admin = connect()
    dbname = admin.execute("SELECT current_database() AS d").fetchone()["d"]
    now = admin.execute("SELECT date_trunc('minute', now()) AS t").fetchone()["t"]

    step("1. The extension, the worker, the model and its policy")
    admin.execute("CREATE EXTENSION IF NOT EXISTS retrain")
    say(admin.execute("SELECT retrain.version() AS v").fetchone()["v"])
    # The worker checks every second here (default 60) in this database.
    admin.execute(f"ALTER SYSTEM SET retrain.database = '{dbname}'")
    admin.execute("ALTER SYSTEM SET retrain.naptime = 1")
    admin.execute("SELECT pg_reload_conf()")
    wait_for("the retrain worker's start in this database", lambda: admin.execute(
        "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'retrain worker' AND datname = current_database()"
    ).fetchone())
    say(f"background worker: retrain.database = '{dbname}', retrain.naptime = 1 s "
        "(pg_stat_activity shows it as 'retrain worker')")
    n = generate_history(admin, rng, now)
    setup_roles(admin)
    events = EventStream("churn")
    events.start()
    say("the on-call bridge listens on retrain_events; what it would post is printed as [retrain_events]")
    op, alice, bob = connect("olivia"), connect("alice"), connect("bob")
    op.execute("SELECT retrain.register_model('churn', 'binary_classification', 'member churn in the next month')")
    op.execute("SELECT retrain.set_owner('churn', 'churn_team')")
    op.execute("SELECT retrain.set_policy('churn', %s)", (json.dumps(POLICY),))
    say("model churn (binary_classification), registered by olivia (ml_operator) for churn_team, its owner; "
        "its policy:")
    for key in ("gates", "approvals", "rollout", "rollback", "triggers", "eligibility"):
        say(f"  {key}: {json.dumps(POLICY[key])}")

    step("2. Sixteen weeks of member data; version 1 trained, checked, signed, released")
    say(f"demo.members: {n} labelled member snapshots, {MEMBERS_PER_DAY} a day for {HISTORY_DAYS} days; "
        f"from {DRIFT_DAYS_AGO} days ago support calls triple and churn follows logins instead")
    op.execute("SELECT retrain.request_retrain('churn', 'initial model')")
    as_of = (now - V1_DATA_ENDS_DAYS_AGO * DAY).isoformat()
    say(f"trainer: one request, data of the 70 days up to {as_of[:10]}")
    if run_trainer("--once", "--as-of", as_of, "--days", "70").wait(timeout=TIMEOUT) != 0:
        raise SystemExit("demo: the trainer failed on version 1")
    show_version(op, "v1")
    release(op, alice, bob, "v1", "blue_green")
    show(op, "SELECT model, production_version, canary_version, canary_percent FROM retrain.deployments")

    step("3. Six weeks of traffic through route(); the worker sees the drift; version 2 rolls out")
    loop = run_trainer("--days", str(DRIFT_DAYS_AGO))
    say(f"trainer: listening on retrain_requests (pid {loop.pid}), training on the latest {DRIFT_DAYS_AGO} days")
    server = Server(np.random.default_rng(7))
    replay = admin.execute(
        "SELECT member_id, snapshot_at, tenure_months, monthly_charges, support_calls, logins_30d, plan, churned "
        "FROM demo.members WHERE snapshot_at >= %s ORDER BY snapshot_at",
        (now - V1_DATA_ENDS_DAYS_AGO * DAY,)).fetchall()
    # served, and the outcomes the retention team confirmed a day after each
    # prediction, in one transaction: the worker sees the six weeks at once,
    # never the predictions without their labels (it would then ask for the
    # drift alone, and the F1 drop would only join the request)
    ids = []
    with server.conn.transaction():
        for i in range(0, len(replay), 2000):
            chunk = replay[i:i + 2000]
            got, _ = server.serve([r["member_id"] for r in chunk], chunk, at=[r["snapshot_at"] for r in chunk])
            ids += got
        labelled = [i for i in range(len(ids)) if rng.random() < LABELLED_SHARE]
        server.outcomes([ids[i] for i in labelled], [replay[i]["churned"] for i in labelled],
                        [min(replay[i]["snapshot_at"] + DAY, now) for i in labelled])
    say(f"{len(ids)} predictions logged with their times, all routed to v1; "
        f"labels for {LABELLED_SHARE:.0%} of them, each observed a day later")
    say(f"retrain.check('churn', at => {DRIFT_DAYS_AGO + 1} days ago), before the drift:")
    show(op, "SELECT trigger, fired, round(observed::numeric, 4) AS observed, round(threshold::numeric, 4) AS threshold, "
             "eligible FROM retrain.check('churn', %s)", (now - (DRIFT_DAYS_AGO + 1) * DAY,))
    say("retrain.check('churn'), now:")
    show(op, "SELECT trigger, fired, round(observed::numeric, 4) AS observed, round(threshold::numeric, 4) AS threshold, "
             "eligible FROM retrain.check('churn')")
    say("the drift, feature by feature (PSI against v1's training baseline):")
    show(op, "SELECT f.key AS feature, round(f.value::numeric, 4) AS psi FROM retrain.check('churn') c, "
             "jsonb_each_text(c.detail->'by_feature') f WHERE c.trigger = 'drift' ORDER BY f.value::float8 DESC")
    request = wait_for("the worker's retrain request", lambda: op.execute(
        "SELECT * FROM retrain.requests WHERE model = 'churn' AND requested_by <> 'olivia'").fetchone())
    say(f"the worker made request {request['id']} at {request['requested_at']:%H:%M:%S}:")
    for reason in request["reasons"]:
        say(f"  {reason['reason']}  (by {reason['by']})")
    done = wait_for("the trainer's answer", lambda: op.execute(
        "SELECT * FROM retrain.requests WHERE id = %s AND status IN ('done', 'failed')", (request["id"],)).fetchone())
    if done["status"] != "done":
        raise SystemExit(f"demo: training failed: {done['message']}")
    say(f"request {done['id']} {done['status']}: {done['version']}, {done['message']}")
    show_version(op, done["version"])
    release(op, alice, bob, "v2", "canary")
    live = LiveTraffic(11)
    live.start()
    say("live traffic: about 400 requests a second, routed by retrain.route(); the rollout guard decides")
    mark = last_log_id(op)

    def rolled_out():
        nonlocal mark
        for e in guard_events(op, mark):
            mark = e["id"]
            d = e["details"]
            say(f"  {e['at']}  {e['event']} {e['version']}: {float(d.get('from')):g}% -> {d.get('to')}%"
                if e["event"] == "advanced" else f"  {e['at']}  {e['event']}: {d}")
        return op.execute("SELECT 1 FROM retrain.deployments WHERE model = 'churn' AND production_version = 'v2' "
                          "AND canary_version IS NULL").fetchone()
    wait_for("v2's rollout to 100%", rolled_out)
    say("v2 is in production")
    show(op, "SELECT model, production_version, previous_version, canary_version, canary_percent FROM retrain.deployments")

    step("4. Version 3, with a latency regression, is rolled back by the guard")
    loop.terminate()
    loop.wait()
    op.execute("SELECT retrain.request_retrain('churn', 'try the live support-ticket lookup (branch tickets-lookup)')")
    say("trainer: the tickets-lookup branch adds a 70 ms feature lookup per request")
    if run_trainer("--once", "--days", str(DRIFT_DAYS_AGO), "--lookup-ms", "70").wait(timeout=TIMEOUT) != 0:
        raise SystemExit("demo: the trainer failed on version 3")
    mark = last_log_id(op)
    release(op, alice, bob, "v3", "canary")
    # checkout pages: the on-call operator halts new deployments at once
    op.execute("SELECT retrain.freeze('churn', 'INC-4711: checkout p99 latency alert')")
    say("olivia (on call) freezes the model: retrain.freeze('churn', 'INC-4711: checkout p99 latency alert')")
    try:
        op.execute("SELECT retrain.advance('churn')")
        raise SystemExit("demo: advance() went through a freeze")
    except psycopg.errors.ObjectNotInPrerequisiteState as e:
        say(f"retrain.advance('churn') while frozen: {e.diag.message_primary} ({e.diag.sqlstate}); "
            f"{e.diag.message_detail}")
    rollback = wait_for("v3's rollback", lambda: op.execute(
        "SELECT to_char(at, 'HH24:MI:SS') AS at, details->>'reason' AS reason FROM retrain.log "
        "WHERE model = 'churn' AND id > %s AND event = 'rolled_back' AND version = 'v3'", (mark,)).fetchone())
    say(f"  {rollback['at']}  the guard rolled v3 back, frozen or not: {rollback['reason']}")
    op.execute("SELECT retrain.unfreeze('churn', 'INC-4711 resolved: v3 rolled back')")
    show(op, "SELECT production_version, canary_version, frozen_reason FROM retrain.deployments WHERE model = 'churn'")
    live.stop()
    say(f"live traffic stopped after {live.served} requests; today's report (retrain.report, daily buckets):")
    show(op, "SELECT version, predictions, round(mean_confidence::numeric, 3) AS confidence, "
             "round(p99_latency_ms::numeric, 1) AS p99_ms, round(error_rate::numeric, 4) AS error_rate, "
             "round(labelled_share::numeric, 3) AS labelled "
             "FROM retrain.report('churn', date_trunc('day', now(), 'UTC'), now() + interval '1 second') "
             "ORDER BY version")

    step("5. The audit trail")
    say("retrain.log, without the worker's routine rows (checks that fired nothing, guard holds):")
    show(op, """
        SELECT to_char(at, 'HH24:MI:SS') AS at, event, coalesce(version, '') AS version, actor,
               left(CASE event
                    WHEN 'model_registered' THEN d->>'task'
                    WHEN 'policy_set' THEN 'keys: ' || (SELECT string_agg(k, ', ') FROM jsonb_object_keys(d->'policy') k)
                    WHEN 'retrain_requested' THEN format('request %s: %s', d->>'request', d->'reasons'->-1->>'reason')
                    WHEN 'retrain_claimed' THEN format('request %s by %s', d->>'request', d->>'worker')
                    WHEN 'retrain_finished' THEN format('request %s %s: %s', d->>'request', d->>'status', d->>'message')
                    WHEN 'registered' THEN format('f1 %s, auc %s; sha256 %s…; commit %s; seed %s', d->'metrics'->>'f1',
                                                  d->'metrics'->>'auc', left(d->>'artifact_sha256', 12),
                                                  d->>'code_commit', d->>'seed')
                    WHEN 'baseline_captured' THEN format('%s features profiled', d->>'features')
                    WHEN 'evaluated' THEN CASE WHEN (d->>'passed')::boolean THEN 'all gates passed' ELSE 'gates failed' END
                                          || coalesce(' against ' || (d->>'against'), '')
                    WHEN 'approved' THEN format('%s: %s', d->>'capacity', d->>'comment')
                    WHEN 'promoted' THEN d->>'strategy' || coalesce(' at ' || (d->>'canary_percent') || '%', '')
                    WHEN 'advanced' THEN format('%s%% -> %s%%', trim_scale((d->>'from')::numeric), d->>'to')
                    WHEN 'guard' THEN format('%s: %s', d->>'decision', d->>'reason')
                    WHEN 'checked' THEN format('fired: %s; request %s', d->>'fired', d->>'request')
                    WHEN 'trigger_unusable' THEN format('%s cannot be evaluated: %s', d->>'trigger', d->>'reason')
                    WHEN 'trigger_usable' THEN format('%s can be evaluated again', d->>'trigger')
                    ELSE coalesce(d->>'reason', '') END, 100) AS what
          FROM retrain.log, LATERAL (SELECT details AS d) x
         WHERE model = 'churn'
           AND NOT (event = 'checked' AND details->'fired' = '[]')
           AND NOT (event = 'guard' AND details->>'decision' IN ('hold', 'wait'))
         ORDER BY id""")
    show(op, "SELECT * FROM retrain.verify_log()")
    say("retrain.manifest('churn'):")
    say(json.dumps(op.execute("SELECT retrain.manifest('churn') AS m").fetchone()["m"], indent=2, default=str))
    show(op, "SELECT * FROM retrain.deployments WHERE model = 'churn'")
    events.stop()
    wanted = {"retrain_requested", "retrain_claimed", "retrain_finished", "promoted", "advanced", "frozen",
              "rolled_back", "unfrozen"}
    if not wanted <= set(events.seen):
        raise SystemExit(f"demo: the event stream missed {sorted(wanted - set(events.seen))}")
    say(f"the event stream carried {len(events.seen)} events for churn")
    say()
    say("demo: drift detected, request made and answered, v2 in production, v3 frozen during an incident and "
        "rolled back, every step on the event stream, log chain valid")


if __name__ == "__main__":
    main()
