"""Prometheus, as the runbooks publish model health: Debian's
prometheus-postgres-exporter with docs/postgres_exporter.yaml, logged in as
the GRANT recipe's retrain_monitor.

- against the demo's data (test/demo.py run in a scratch server), a scrape
  of /metrics on 127.0.0.1 has every series the queries file names, with
  the values of the views behind them, and no scrape error;
- with 100 more models (two versions each, a drift trigger over ten
  features, a cycle run), a scrape takes under 200 ms (median of 7);
- a hot standby of that server (pg_basebackup) serves the same series.
"""

import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

import psycopg

from testlib import ScratchCluster, run_as_owner, run_demo, run_suite

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = os.path.join(HERE, "..", "docs", "postgres_exporter.yaml")
EXPORTER = shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter"
SERIES = {
    "retrain_version": ("predictions", "labelled", "invalid", "error_rate", "latency_p50_ms", "latency_p95_ms",
                        "latency_p99_ms", "metric_value", "window_seconds", "age_seconds"),
    "retrain_trigger": ("fired", "usable", "eligible", "observed", "threshold", "age_seconds"),
    "retrain_feature": ("psi",),
    "retrain_model": ("canary_share", "frozen", "open_requests", "claimed_requests", "training_failing",
                      "training_failures", "check_failing", "checked_age_seconds"),
    "retrain_log": ("ok", "verified", "age_seconds", "head_id", "rows_unverified"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """The exporter on 127.0.0.1, with retrain's queries and none of its
    default metrics, logged in as retrain_monitor."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.port = free_port()

    def __enter__(self):
        env = dict(os.environ, DATA_SOURCE_NAME=(f"host={self.cluster.dir} port={self.cluster.port} "
                                                 "user=retrain_monitor dbname=retrain sslmode=disable"))
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([EXPORTER, f"--extend.query-path={QUERIES}",
                                      f"--web.listen-address=127.0.0.1:{self.port}",
                                      "--disable-default-metrics", "--disable-settings-metrics"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the exporter did not start: " + self.output())
                time.sleep(0.1)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def scrape(self):
        """The samples of /metrics: {(name, frozenset(labels)): value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            text = r.read().decode()
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r'([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)', line)
            assert m, line
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples[(m.group(1), labels)] = float(m.group(3))
        return samples

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        return False


def value(samples, name, **labels):
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def assert_series(samples, conn):
    """Every column of every query is exported, for every row of its view,
    with the view's value; and the exporter reports no failed query."""
    assert value(samples, "pg_exporter_last_scrape_error") == 0.0
    for (name, labels), v in samples.items():
        if name.startswith("pg_exporter_user_queries_load_error"):
            assert v == 0.0, (name, labels)
    rows = conn.execute("SELECT model, version, predictions, error_rate, latency_p99_ms, metric_value "
                        "FROM retrain.metrics_versions").fetchall()
    assert rows, "no version health"
    for model, version, predictions, error_rate, p99, metric_value in rows:
        assert value(samples, "retrain_version_predictions", model=model, version=version) == predictions
        for col, want in (("error_rate", error_rate), ("latency_p99_ms", p99), ("metric_value", metric_value)):
            got = value(samples, f"retrain_version_{col}", model=model, version=version)
            assert (want is None and got != got) or got == want, (model, version, col, got, want)
    for model, trigger, fired in conn.execute("SELECT model, trigger, fired FROM retrain.metrics_triggers"):
        got = value(samples, "retrain_trigger_fired", model=model, trigger=trigger)
        assert (fired is None and got != got) or got == fired, (model, trigger, got, fired)
    for model, feature, psi in conn.execute("SELECT model, feature, psi FROM retrain.metrics_features"):
        assert value(samples, "retrain_feature_psi", model=model, feature=feature) == psi
    for model, share, frozen, open_ in conn.execute("SELECT model, canary_share, frozen, open_requests "
                                                     "FROM retrain.metrics_models"):
        assert value(samples, "retrain_model_canary_share", model=model) == share
        assert value(samples, "retrain_model_frozen", model=model) == frozen
        assert value(samples, "retrain_model_open_requests", model=model) == open_
    for query, columns in SERIES.items():
        for col in columns:
            assert any(n == f"{query}_{col}" for n, _ in samples), f"no {query}_{col}"


def add_models(conn, n):
    """n models of two versions each (production and a 10% canary), a
    drift trigger over ten features, an hour of traffic, and a cycle."""
    conn.execute("CREATE TABLE exp_training AS SELECT " + ", ".join(
        f"(i * {k + 3} % 100)::float8 AS f{k}" for k in range(10)) + " FROM generate_series(1, 2000) i")
    features = ", ".join(f"'f{k}', (i * {k + 7} %% 100)::float8" for k in range(10))
    for i in range(n):
        m = f"exp_{i:03d}"
        conn.execute("SELECT retrain.register_model(%s, 'binary_classification')", (m,))
        for v in ("v1", "v2"):
            conn.execute("SELECT retrain.register_version(%s, %s, 's3://m/' || %s, "
                         "encode(sha256(convert_to(%s || %s, 'UTF8')), 'hex'), '{}')", (m, v, v, m, v))
            conn.execute("SELECT retrain.capture_baseline(%s, %s, 'exp_training', "
                         "ARRAY['f0','f1','f2','f3','f4','f5','f6','f7','f8','f9'])", (m, v))
        conn.execute("SELECT retrain.promote(%s, 'v1', 'blue_green', override_reason => 'test')", (m,))
        conn.execute("SELECT retrain.promote(%s, 'v2', 'canary', override_reason => 'test')", (m,))
        conn.execute("""SELECT retrain.set_policy(%s, '{"triggers": {"drift": {"psi": 0.2, "window": "1 day"}}}')""",
                     (m,))
        conn.execute(f"""INSERT INTO retrain.predictions (model, version, unit_key, predicted_at, logged_at, score,
                                                         latency_ms, error, features)
                         SELECT %s, CASE WHEN i %% 10 = 0 THEN 'v2' ELSE 'v1' END, 'u' || i, t, t, (i %% 97) / 97.0,
                                1 + i %% 40, i %% 50 = 0, jsonb_build_object({features})
                           FROM generate_series(1, 400) i,
                                LATERAL (SELECT now() - interval '30 minutes' + i * interval '3 seconds') x(t)""", (m,))
    conn.execute("""INSERT INTO retrain.outcomes (prediction_id, label)
                    SELECT id, score > 0.4 FROM retrain.predictions WHERE model LIKE 'exp\\_%' AND id % 4 = 0""")
    # the cycle as the worker runs it, as of a time when all of it arrived
    conn.execute("SELECT retrain.run_checks(now() + interval '10 minutes')")


def test_exporter_series_on_the_demo_scale_and_a_standby():
    with ScratchCluster(shared_preload_libraries="'pg_cron,retrain'") as cluster, \
            tempfile.TemporaryDirectory() as artifacts:
        run_demo(cluster, artifacts)
        # the figures stay as the demo left them while they are compared
        with cluster.connect() as admin:
            admin.execute("ALTER SYSTEM SET retrain.worker_enabled = off")
            admin.execute("SELECT pg_reload_conf()")
        with cluster.connect("retrain") as conn:
            # (the demo ran the GRANT recipe, retrain_monitor included)
            assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'retrain_monitor'").fetchone()[0]
            conn.execute("SELECT retrain.verify_log()")
            # the demo's traffic spans weeks of simulated time: a dashboard
            # of it counts them all; and the cycle folds rows once they are
            # older than the rollups' settle time (5 minutes), which the
            # demo's minute is not: a cycle as of ten minutes on
            conn.execute("SELECT retrain.set_policy('churn', jsonb_set(retrain.effective_policy('churn'), "
                         "'{results,health_window}', '\"400 days\"'))")
            conn.execute("SELECT retrain.run_checks(now() + interval '10 minutes')")
            with Exporter(cluster) as exporter:
                samples = exporter.scrape()
                assert_series(samples, conn)
                # the demo's story, as a dashboard shows it
                assert value(samples, "retrain_model_frozen", model="churn") == 0.0
                assert value(samples, "retrain_log_ok", kind="full") == 1.0
                assert {ls for n, ls in samples if n == "retrain_feature_psi"}, "no PSI series"

                add_models(conn, 100)
                assert conn.execute("SELECT count(*) FROM retrain.metrics_versions").fetchone()[0] >= 200
                assert_series(exporter.scrape(), conn)
                times = []
                for _ in range(7):
                    started = time.perf_counter()
                    exporter.scrape()
                    times.append(time.perf_counter() - started)
                median = statistics.median(times)
                print(f"    a scrape of {len(samples)} demo samples, then 101 models: "
                      f"median {median * 1000:.1f} ms (of {', '.join(f'{t * 1000:.0f}' for t in times)})")
                assert median < 0.2, times

            # a hot standby of the same server serves the same series
            standby = os.path.join(cluster.dir, "standby")
            run_as_owner(f"{cluster.bin}/pg_basebackup", "-D", standby, "-h", cluster.dir, "-p", str(cluster.port),
                         "-U", "postgres", "-R", "-X", "stream", "-c", "fast")
            sock = os.path.join(cluster.dir, "standby_socket")
            run_as_owner("mkdir", "-m", "700", sock)
            run_as_owner("tee", "-a", os.path.join(standby, "postgresql.conf"),
                         input=f"unix_socket_directories = '{sock}'\nshared_preload_libraries = ''\n"
                               "hot_standby = on\n")
            run_as_owner(f"{cluster.bin}/pg_ctl", "-D", standby, "-l", os.path.join(cluster.dir, "standby.log"),
                         "-w", "-t", "60", "start")
            try:
                replica = type("Replica", (), {"dir": sock, "port": cluster.port})()
                with psycopg.connect(host=sock, port=cluster.port, user="postgres", dbname="retrain",
                                     autocommit=True) as sconn:
                    assert sconn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                    deadline = time.monotonic() + 30
                    while sconn.execute("SELECT count(*) FROM retrain.metrics_versions").fetchone()[0] < 200:
                        assert time.monotonic() < deadline, "the standby did not catch up"
                        time.sleep(0.2)
                    with Exporter(replica) as exporter:
                        assert_series(exporter.scrape(), sconn)
            finally:
                run_as_owner(f"{cluster.bin}/pg_ctl", "-D", standby, "-m", "fast", "-w", "stop", check=False)


if __name__ == "__main__":
    run_suite(globals())
