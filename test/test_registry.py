"""The registry and routing across sessions: what pg_regress cannot show.

- bucket() against an independent MurmurHash3 implementation and its
  published test vectors;
- a committed change reaching the next route() of another session, whose
  per-backend cache it invalidates, and nothing reaching it before commit;
- NOTIFY retrain_deployments with the model's name;
- races of promotions, advances, rollbacks and traffic changes from several
  connections, after which the invariants hold and the log chain verifies;
- appends to the log from several connections at once, for different
  models, each in a subtransaction of a long transaction as run_checks()
  makes them: one chain, no id skipped; under REPEATABLE READ an append
  after another's commit fails to serialise, never forks the chain.
"""

import random
import threading

import psycopg

from testlib import connect, expect_error, run_suite, run_threads, scalar

SHA = {v: c * 64 for v, c in zip(["v1", "v2", "v3", "v4", "v5", "v6"], "abcdef")}


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, written from the algorithm's description."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    mask = 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed & mask
    nblocks = len(data) // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = rotl((k * c1) & mask, 15) * c2 & mask
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & mask
    tail = data[4 * nblocks:]
    k = 0
    for i, b in enumerate(tail):
        k ^= b << (8 * i)
    if tail:
        h ^= rotl((k * c1) & mask, 15) * c2 & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def test_murmur3_reference_vectors():
    # published values of MurmurHash3_x86_32
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"", 1) == 0x514E28B7
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723


def test_bucket_matches_reference():
    rng = random.Random(20261122)
    keys = [("churn", "member-1"), ("", ""), ("model", "ünïcode"), ("m", "x" * 1000)]
    alphabet = "abcXYZ019:-_ éü中"
    keys += [("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))),
              "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))))
             for _ in range(2000)]
    with connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
        got = conn.execute(
            "SELECT retrain.bucket(m, u) FROM unnest(%s::text[], %s::text[]) AS k(m, u)",
            ([m for m, _ in keys], [u for _, u in keys])).fetchall()
    for (m, u), (b,) in zip(keys, got):
        want = murmur3_32(f"{m}:{u}".encode("utf-8")) % 10000
        assert b == want, f"bucket({m!r}, {u!r}) = {b}, expected {want}"


def setup_model(conn, name, versions=("v1", "v2", "v3")):
    conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (name,))
    for v in versions:
        conn.execute("SELECT retrain.register_version(%s, %s, 's3://m', %s, '{\"f1\": 0.9}')",
                     (name, v, SHA[v]))
    conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green')", (name,))


def test_committed_change_reaches_other_sessions():
    with connect() as admin, connect() as app:
        setup_model(admin, "cache_model")
        units = [f"user-{i}" for i in range(2000)]
        route = "SELECT count(*) FROM unnest(%s::text[]) u WHERE retrain.route('cache_model', u) = 'v2'"
        assert scalar(app, route, (units,)) == 0  # the app's cache now holds the row
        # not visible before commit
        with admin.transaction():
            admin.execute("SELECT retrain.promote('cache_model', 'v2')")
            admin.execute("SELECT retrain.set_traffic('cache_model', 50)")
            assert scalar(app, route, (units,)) == 0
        # visible at the next call after commit
        n = scalar(app, route, (units,))
        assert 900 < n < 1100, n
        assert n == sum(murmur3_32(f"cache_model:{u}".encode()) % 10000 < 5000 for u in units)
        admin.execute("SELECT retrain.rollback('cache_model', 'test')")
        assert scalar(app, route, (units,)) == 0
        assert scalar(app, "SELECT retrain.route('cache_model', 'x')") == "v1"


def test_notify_on_every_deployment_change():
    with connect() as admin, connect() as listener:
        payloads = []
        listener.add_notify_handler(lambda n: payloads.append((n.channel, n.payload)))
        listener.execute("LISTEN retrain_deployments")
        with admin.transaction():
            setup_model(admin, "notify_model")
            listener.execute("SELECT 1")
            assert payloads == [], payloads  # nothing before commit
        admin.execute("SELECT retrain.force('notify_model', 'fallback')")
        listener.execute("SELECT 1")  # let the connection take what arrived
        # one per committing transaction: registration with promotion, then force
        assert payloads == [("retrain_deployments", "notify_model")] * 2, payloads


def test_races_keep_invariants_and_log_chain():
    """Promotions, advances, rollbacks and traffic changes race on one model
    from four connections; every call either succeeds or is refused cleanly."""
    with connect() as admin:
        setup_model(admin, "race_model", versions=("v1", "v2", "v3", "v4", "v5", "v6"))
    errors = []
    unexpected = []
    ops = [
        lambda c, r: c.execute("SELECT retrain.promote('race_model', %s)", (r.choice(["v2", "v3", "v4", "v5", "v6"]),)),
        lambda c, r: c.execute("SELECT retrain.promote('race_model', %s, 'blue_green')", (r.choice(["v2", "v3", "v4", "v5", "v6"]),)),
        lambda c, r: c.execute("SELECT retrain.advance('race_model')"),
        lambda c, r: c.execute("SELECT retrain.rollback('race_model', 'race')"),
        lambda c, r: c.execute("SELECT retrain.set_traffic('race_model', %s)", (r.choice([5, 25, 75]),)),
        lambda c, r: c.execute("SELECT retrain.force('race_model', %s)", (r.choice(["auto", "candidate", "production"]),)),
        lambda c, r: c.execute("SELECT retrain.promote('race_model', %s, 'shadow')", (r.choice(["v2", "v3", "v4", "v5", "v6"]),)),
    ]

    def worker(seed):
        rng = random.Random(seed)
        try:
            with connect() as conn:
                for _ in range(300):
                    try:
                        rng.choice(ops)(conn, rng)
                    except psycopg.Error as e:
                        # refusals are fine: wrong state, or nothing to roll back
                        if e.sqlstate not in ("55000",):
                            unexpected.append(f"{e.sqlstate}: {e}")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not unexpected, unexpected[:5]

    with connect() as conn:
        d = conn.execute("SELECT production_version, canary_version, shadow_version, previous_version "
                         "FROM retrain.deployments WHERE model = 'race_model'").fetchone()
        stages = dict(conn.execute("SELECT version, stage FROM retrain.model_versions "
                                   "WHERE model = 'race_model'").fetchall())
        # stages agree with deployments: one version per serving stage, shadow
        # and standby included
        for i, stage in enumerate(("production", "canary", "shadow", "previous")):
            holders = [v for v, s in stages.items() if s == stage]
            assert holders == ([d[i]] if d[i] else []), (stage, d, stages)
        open_periods = scalar(conn, "SELECT count(*) FROM retrain.production_history "
                                    "WHERE model = 'race_model' AND ended_at IS NULL")
        assert open_periods == (1 if d[0] else 0), open_periods
        last = scalar(conn, "SELECT version FROM retrain.production_history "
                            "WHERE model = 'race_model' ORDER BY seq DESC LIMIT 1")
        assert last == d[0], (last, d)
        ok, bad, checked = conn.execute("SELECT * FROM retrain.verify_log()").fetchone()
        assert ok, f"log chain broken at {bad} after {checked} rows"
        changes = dict(conn.execute("SELECT event, count(*) FROM retrain.log WHERE model = 'race_model' "
                                    "GROUP BY event").fetchall())
        # the race really raced: every kind of change happened many times
        for event in ("promoted", "advanced", "rolled_back", "traffic_changed", "forced"):
            assert changes.get(event, 0) >= 20, changes


def test_concurrent_appends_keep_one_chain():
    """Each connection appends 150 events for its own model, in one
    transaction, each append in a subtransaction (as run_checks() does for
    every model); another appends one event per transaction.  They wait for
    each other's commit (retrain's write lock) and chain on to its head."""
    with connect() as conn:
        first = scalar(conn, "SELECT coalesce(max(id), 0) FROM retrain.log")
    # all start together, and each holds the log a while half-way, so that
    # the others' appends wait for its commit
    start = threading.Barrier(4)

    def appender(i):
        with connect() as conn:
            start.wait()
            if i < 3:
                conn.execute("DO $$ BEGIN FOR i IN 1..150 LOOP BEGIN "
                             "PERFORM retrain._log('chain_' || %s, NULL, 'chain_test', jsonb_build_object('i', i)); "
                             "IF i = 75 THEN PERFORM pg_sleep(0.2); END IF; "
                             "EXCEPTION WHEN raise_exception THEN NULL; END; END LOOP; END $$" % i)
            else:
                for k in range(150):
                    conn.execute("SELECT retrain._log('chain_single', NULL, 'chain_test', jsonb_build_object('i', %s))",
                                 (k,))

    run_threads(4, appender)
    with connect() as conn:
        ok, bad, checked = conn.execute("SELECT * FROM retrain.verify_log()").fetchone()
        assert ok, f"log chain broken at {bad} after {checked} rows"
        ids = [r[0] for r in conn.execute("SELECT id FROM retrain.log WHERE id > %s ORDER BY id", (first,))]
        assert ids == list(range(first + 1, first + 601)), (len(ids), ids[:3], ids[-3:])
        head = conn.execute("SELECT last_id, last_hash FROM retrain.log_head").fetchone()
        last = conn.execute("SELECT id, hash FROM retrain.log ORDER BY id DESC LIMIT 1").fetchone()
        assert head == last, (head, last)


def test_repeatable_read_append_never_forks_the_chain():
    """A REPEATABLE READ transaction whose snapshot predates another's
    append cannot append after it: it fails to serialise (40001)."""
    with connect() as rr, connect() as other:
        rr.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        rr.execute("SELECT count(*) FROM retrain.log")  # the snapshot is taken
        other.execute("SELECT retrain._log('chain_rr', NULL, 'chain_test', '{}')")
        expect_error(rr, "SELECT retrain._log('chain_rr', NULL, 'chain_test', '{}')", "40001")
        rr.execute("ROLLBACK")
        ok, bad, checked = other.execute("SELECT * FROM retrain.verify_log()").fetchone()
        assert ok, f"log chain broken at {bad} after {checked} rows"


run_suite(globals())
