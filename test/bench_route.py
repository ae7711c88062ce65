"""Benchmark of route() (issue: registry, rollout and sticky routing).

pgbench -M prepared with 2 clients runs the same number of transactions of
each script; the ratio of the two wall times is the inverse of the ratio of
their throughputs.  route() must serve at least as many calls per second as
the plain primary-key read of retrain.deployments an application would
otherwise make; it reads a per-backend cache, invalidated at commit.
"""

import os
import subprocess
import tempfile

from bench import Case

TRANSACTIONS = int(os.environ.get("RETRAIN_BENCH_ROUTE_TX", "200000"))

PK_READ = """\\set u random(1, 1000000)
SELECT production_version FROM retrain.deployments WHERE model = 'bench_route';
"""
ROUTE = """\\set u random(1, 1000000)
SELECT retrain.route('bench_route', :u);
"""


def pgbench(script):
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as f:
        f.write(script)
        f.flush()
        subprocess.run([os.path.join(os.environ["RETRAIN_PGBIN"], "pgbench"), "-n", "-M", "prepared",
                        "-c", "2", "-j", "2", "-t", str(TRANSACTIONS // 2), "-f", f.name,
                        os.environ["PGDATABASE"]],
                       check=True, capture_output=True, text=True)


def cases(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS retrain")
    if not conn.execute("SELECT count(*) FROM retrain.models WHERE name = 'bench_route'").fetchone()[0]:
        conn.execute("SELECT retrain.register_model('bench_route', 'binary_classification')")
        for v, c in (("v1", "a"), ("v2", "b")):
            conn.execute("SELECT retrain.register_version('bench_route', %s, 's3://m', %s, '{}')",
                         (v, c * 64))
        conn.execute("SELECT retrain.promote('bench_route', 'v1', 'blue_green')")
        conn.execute("SELECT retrain.promote('bench_route', 'v2')")  # a canary at 10%
    return [Case(f"route() x {TRANSACTIONS}, pgbench -M prepared -c 2",
                 lambda: pgbench(ROUTE), lambda: pgbench(PK_READ),
                 "SELECT production_version FROM deployments WHERE model = $1",
                 target=1.0, runs=3)]
