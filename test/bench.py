"""make bench: how fast retrain's functions are, as ratios to a baseline of the same run.

Each test/bench_*.py module defines cases(conn) returning a list of Case.
A case times its candidate and its baseline alternately, RETRAIN_BENCH_RUNS
times each (default 5; a slow reference point may ask for fewer) after one
warm-up of each (the baseline first in the first, third, ... runs, the
candidate first in the others), and prints both medians and their ratio.
Timing both in the same run, on the same data, makes the ratio meaningful
on any machine; absolute times are printed for information only.

A case may state a target (the ratio must stay at or below it), a floor
(the ratio must be at least it, for "ours is N times faster" claims, where the
candidate is the slow way), or an allowance (the candidate's median must stay
within allowed(baseline median) seconds, for budgets such as "3 times the
baseline plus 5 ms a model").  A case may also name a prepare callable, run
untimed before each timing of its candidate (new rows for a cycle to fold),
and a during callable, which starts work that runs while the candidate is
timed and returns the callable that ends it (a cycle a promote() waits
for).  A missed target or floor is printed and makes the
run exit non-zero.  Cases with neither are reported for reference.

RETRAIN_BENCH_ONLY=checks,route runs only those modules (bench_checks.py,
bench_route.py).
"""

import glob
import importlib.util
import os
import statistics
import sys
import time

import psycopg

RUNS = int(os.environ.get("RETRAIN_BENCH_RUNS", "5"))


class Case:
    """One comparison.  candidate and baseline are SQL text or Python callables."""

    def __init__(self, name, candidate, baseline, baseline_name, target=None, floor=None,
                 settings=None, runs=None, allowed=None, allowed_name=None, prepare=None, during=None):
        self.name = name
        self.candidate = candidate
        self.baseline = baseline
        self.baseline_name = baseline_name
        self.target = target
        self.floor = floor
        self.settings = settings or {}
        self.runs = runs or RUNS  # fewer for slow reference points
        self.allowed = allowed
        self.allowed_name = allowed_name
        self.prepare = prepare
        self.during = during


def timed(conn, work):
    started = time.perf_counter()
    if callable(work):
        work()
    else:
        cur = conn.execute(work)
        if cur.description:
            cur.fetchall()
    return time.perf_counter() - started


def timed_candidate(conn, case):
    if case.during is None:
        return timed(conn, case.candidate)
    finish = case.during()
    try:
        return timed(conn, case.candidate)
    finally:
        finish()


def run_case(conn, case):
    for key, value in case.settings.items():
        conn.execute(f"SET {key} = {value}")
    try:
        timed(conn, case.baseline)
        if case.runs > 1:
            if case.prepare:
                case.prepare()
            timed_candidate(conn, case)
        base, cand = [], []
        for run in range(case.runs):
            if case.prepare:
                case.prepare()
            # in turn first and second after the preparation: the second
            # of two writes pays for the first's (its dirty buffers, its
            # WAL), and was the candidate's lot alone (COPY into the log:
            # 1.11 to 1.18 times the baseline second, 1.01 to 1.04 first)
            if run % 2 == 0:
                base.append(timed(conn, case.baseline))
                cand.append(timed_candidate(conn, case))
            else:
                cand.append(timed_candidate(conn, case))
                base.append(timed(conn, case.baseline))
    finally:
        for key in case.settings:
            conn.execute(f"RESET {key}")
    b, c = statistics.median(base), statistics.median(cand)
    return c, b, c / b


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    modules = sorted(glob.glob(os.path.join(here, "bench_*.py")))
    only = os.environ.get("RETRAIN_BENCH_ONLY")
    if only:
        wanted = {f"bench_{name.strip()}.py" for name in only.split(",")}
        modules = [m for m in modules if os.path.basename(m) in wanted]
        if not modules:
            print(f"RETRAIN_BENCH_ONLY={only}: no such benchmark module", file=sys.stderr)
            return 2
    sys.path.insert(0, here)
    missed = 0
    ran = 0
    print(f"median of {RUNS} runs each; ratio = candidate / baseline, same run, same data")
    with psycopg.connect(dbname=os.environ["PGDATABASE"], autocommit=True) as conn:
        for path in modules:
            name = os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            print(f"\n== {name}")
            print(f"{'case':44} {'median':>10} {'baseline':>10} {'ratio':>8}  verdict")
            for case in module.cases(conn):
                cand, base, ratio = run_case(conn, case)
                ran += 1
                verdict = "reference"
                if case.target is not None:
                    ok = ratio <= case.target
                    verdict = f"{'ok' if ok else 'MISSED'} (target <= {case.target}x)"
                    missed += not ok
                elif case.allowed is not None:
                    ok = cand <= case.allowed(base)
                    verdict = (f"{'ok' if ok else 'MISSED'} (within {case.allowed(base) * 1000:.0f} ms: "
                               f"{case.allowed_name})")
                    missed += not ok
                elif case.floor is not None:
                    ok = ratio >= case.floor
                    verdict = f"{'ok' if ok else 'MISSED'} (floor >= {case.floor}x)"
                    missed += not ok
                print(f"{case.name:44} {cand * 1000:8.1f}ms {base * 1000:8.1f}ms {ratio:7.2f}x  "
                      f"{verdict}   [baseline: {case.baseline_name}]")
                sys.stdout.flush()
    if not ran:
        print("no benchmark cases")
    print(f"\n{ran} cases, {missed} missed their target")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
