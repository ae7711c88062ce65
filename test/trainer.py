"""The demo's trainer: the trainer loop of docs/monitoring.md, for real.

It listens on retrain_requests, claims a request, trains a churn model with
scikit-learn on the labelled member snapshots of a date range, saves the
artifact, and registers the version with its offline metrics, lineage
(artifact path and SHA-256, code commit, seed, data snapshot and range,
features) and baseline, then finishes the request, all in one transaction.

    trainer.py --model churn --days 21 [--as-of TIMESTAMP] [--once]
               [--lookup-ms 0] [--artifacts DIR]

--as-of sets the end of the training data (default: now), --days its length.
--once handles one request (waiting for it) and exits.  --lookup-ms adds a
per-request feature lookup to the model (it is in the artifact and in its
offline latency): how the demo's version 3 gets its latency regression.
Connects with the libpq environment (PGHOST, PGPORT, PGDATABASE) as --user.
"""

import argparse
import hashlib
import json
import os
import select
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import joblib
import numpy as np
import psycopg
from psycopg.rows import dict_row
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "logins_30d"]
FEATURES = NUMERIC + ["plan"]
SEED = 42
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


PLANS = ["basic", "plus", "premium"]


def to_matrix(rows):
    """Feature dicts to the model's input: the numbers, and the plan one-hot
    (basic is the reference level)."""
    return np.array([[float(r[k]) for k in NUMERIC] + [float(r["plan"] == p) for p in PLANS[1:]]
                     for r in rows])


def load(path, sha256):
    """An artifact, after checking it is the one the registry names."""
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"{path}: SHA-256 does not match the registry")
    return joblib.load(path)


def predict_proba(artifact, rows):
    """Probabilities of churn for rows (feature dicts)."""
    return artifact["pipeline"].predict_proba(to_matrix(rows))[:, 1]


def code_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fetch(conn, start, end):
    """The labelled member snapshots of [start, end)."""
    rows = conn.execute(
        "SELECT tenure_months, monthly_charges, support_calls, logins_30d, plan, churned "
        "FROM demo.members WHERE snapshot_at >= %s AND snapshot_at < %s ORDER BY member_id, snapshot_at",
        (start, end)).fetchall()
    return [{k: r[k] for k in FEATURES} for r in rows], np.array([r["churned"] for r in rows])


def offline_latency_p99(artifact, sample):
    """p99 of single-request scoring, lookup included, in ms: what a gate
    on latency_p99_ms compares."""
    times = []
    for row in sample:
        started = time.perf_counter()
        predict_proba(artifact, [row])
        times.append((time.perf_counter() - started) * 1000 + artifact["lookup_ms"])
    return float(np.percentile(times, 99))


def train(conn, model_name, start, end, lookup_ms, artifacts):
    X, y = fetch(conn, start, end)
    if len(X) < 1000 or y.all() or not y.any():
        raise RuntimeError(f"not enough labelled data in [{start}, {end}): {len(X)} rows")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=SEED, stratify=y)
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("classify", LogisticRegression(C=1.0, max_iter=1000, random_state=SEED))])
    pipeline.fit(to_matrix(X_train), y_train)
    artifact = {"pipeline": pipeline, "features": FEATURES, "lookup_ms": lookup_ms}
    p = predict_proba(artifact, X_test)
    predicted = p >= 0.5
    metrics = {
        "f1": round(float(f1_score(y_test, predicted)), 4),
        "auc": round(float(roc_auc_score(y_test, p)), 4),
        "precision": round(float(precision_score(y_test, predicted)), 4),
        "recall": round(float(recall_score(y_test, predicted)), 4),
        "latency_p99_ms": round(offline_latency_p99(artifact, X_test[:300]), 2),
        "test_rows": len(X_test),
    }
    # The release artifact's name follows the reference policy:
    # model_<task>_v{major}.YYYYMMDDTHHMMSSZ.joblib
    version = "v%d" % (conn.execute("SELECT count(*) + 1 AS n FROM retrain.model_versions WHERE model = %s",
                                    (model_name,)).fetchone()["n"])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(artifacts, exist_ok=True)
    path = os.path.join(artifacts, f"model_{model_name}_{version}.{stamp}.joblib")
    joblib.dump(artifact, path)
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return {"version": version, "path": path, "sha": sha, "metrics": metrics,
            "params": {"algorithm": "LogisticRegression", "C": 1.0, "threshold": 0.5, "lookup_ms": lookup_ms,
                       "train_rows": len(X_train)},
            "train_rows": X_train}


def listen_for_requests(conn):
    """LISTEN on retrain_requests.  The event returned is set by every
    notification, also one that arrives while another query runs (psycopg
    hands those to handlers only, never to a later conn.notifies())."""
    woken = threading.Event()
    conn.add_notify_handler(lambda _note: woken.set())
    conn.execute("LISTEN retrain_requests")
    return woken


def wait_for_request(conn, woken, timeout=30.0):
    """Sleep until a request may be open: a notification arrived (during an
    earlier query, or now), or timeout seconds passed.  Either way the caller
    polls the queue again, so a notification lost any other way delays a
    request by timeout at most."""
    if not woken.is_set() and select.select([conn.fileno()], [], [], timeout)[0]:
        conn.execute("SELECT 1")  # reads what arrived, which runs the handler
    woken.clear()


def handle(conn, request, args):
    end = args.as_of or datetime.now(timezone.utc)
    start = end - timedelta(days=args.days)
    print(f"trainer: claimed request {request['id']} for {request['model']}: "
          f"{'; '.join(r['reason'] for r in request['reasons'])}", flush=True)
    try:
        run = train(conn, request["model"], start, end, args.lookup_ms, args.artifacts)
    except Exception as e:  # noqa: BLE001 - the request records any failure
        conn.execute("SELECT retrain.finish_request(%s, 'failed', NULL, %s)", (request["id"], str(e)))
        print(f"trainer: request {request['id']} failed: {e}", flush=True)
        return
    with conn.transaction():
        # the version, its baseline and the request's end commit together
        conn.execute(
            "SELECT retrain.register_version(%s, %s, %s, %s, %s, %s, %s, %s, %s, tstzrange(%s, %s), %s)",
            (request["model"], run["version"], run["path"], run["sha"], json.dumps(run["metrics"]),
             json.dumps(run["params"]), code_commit(), SEED,
             f"demo.members where snapshot_at in [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC",
             start, end, FEATURES))
        conn.execute("CREATE TEMP TABLE training_rows (tenure_months float8, monthly_charges float8, "
                     "support_calls float8, logins_30d float8, plan text) ON COMMIT DROP")
        with conn.cursor().copy("COPY training_rows FROM STDIN") as copy:
            for row in run["train_rows"]:
                copy.write_row([row[k] for k in FEATURES])
        conn.execute("SELECT retrain.capture_baseline(%s, %s, 'training_rows', %s)",
                     (request["model"], run["version"], FEATURES))
        conn.execute("SELECT retrain.finish_request(%s, 'done', %s, %s)",
                     (request["id"], run["version"], f"trained on {len(run['train_rows'])} rows"))
    print(f"trainer: registered {run['version']} ({run['path']}, sha256 {run['sha'][:12]}...) "
          f"metrics {run['metrics']}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="churn")
    parser.add_argument("--user", default="trainer")
    parser.add_argument("--days", type=float, default=21)
    parser.add_argument("--as-of", type=lambda s: datetime.fromisoformat(s))
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--lookup-ms", type=float, default=0.0)
    parser.add_argument("--artifacts", default=os.path.join(os.environ.get("RETRAIN_TMP", "/tmp"), "artifacts"))
    args = parser.parse_args()

    conn = psycopg.connect(user=args.user, autocommit=True, row_factory=dict_row)
    woken = listen_for_requests(conn)
    worker = f"trainer@{socket.gethostname()}:{os.getpid()}"
    while True:
        request = conn.execute("SELECT * FROM retrain.claim_request(%s)", (worker,)).fetchone()
        if request is None or request["id"] is None:
            wait_for_request(conn, woken)
            continue
        handle(conn, request, args)
        if args.once:
            return


if __name__ == "__main__":
    main()
