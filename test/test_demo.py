"""make demo's story, checked: test/demo.py runs in a scratch server of its
own (its worker and roles must not touch the test cluster), and each
milestone is asserted from the database afterwards: the drift and the F1 drop
detected by the worker, the request made and answered, v2 in production
after a guarded canary, v3 rolled back by the guard for its latency, and a
valid log chain.
"""

import os
import sys
import tempfile

from testlib import ScratchCluster, run_demo, run_suite, scalar

HERE = os.path.dirname(os.path.abspath(__file__))


def test_demo_milestones():
    with ScratchCluster(shared_preload_libraries="'pg_cron,retrain'") as cluster, \
            tempfile.TemporaryDirectory() as artifacts:
        run = run_demo(cluster, artifacts)
        assert "demo: drift detected" in run.stdout

        with cluster.connect("retrain") as conn:
            # the worker (not a person) asked, for the drift and the F1 drop
            worker_request = conn.execute(
                "SELECT id, status, version, reasons->0->>'trigger' FROM retrain.requests "
                "WHERE model = 'churn' AND requested_by = 'postgres'").fetchall()
            assert len(worker_request) == 1, worker_request
            _, status, version, triggers = worker_request[0]
            assert status == "done" and version == "v2", worker_request
            assert set(triggers.split(", ")) >= {"drift", "performance"}, triggers
            # no open request left, none made while v2 was on its way
            assert scalar(conn, "SELECT count(*) FROM retrain.requests WHERE status IN ('open', 'claimed')") == 0
            assert scalar(conn, "SELECT count(*) FROM retrain.requests") == 3

            # v1, then v2 after a guarded canary, and v3 rolled back for latency
            assert conn.execute("SELECT production_version, previous_version, canary_version "
                                "FROM retrain.deployments WHERE model = 'churn'").fetchone() == ("v2", "v1", None)
            stages = dict(conn.execute("SELECT version, stage FROM retrain.model_versions WHERE model = 'churn'"))
            assert stages == {"v1": "previous", "v2": "production", "v3": "rolled_back"}, stages
            advanced = conn.execute("SELECT details->>'to', actor FROM retrain.log WHERE model = 'churn' "
                                    "AND event = 'advanced' AND version = 'v2' ORDER BY id").fetchall()
            assert advanced == [("50", "postgres"), ("100", "postgres")], advanced
            reason = scalar(conn, "SELECT details->>'reason' FROM retrain.log WHERE model = 'churn' "
                                  "AND event = 'rolled_back' AND version = 'v3'")
            assert reason.startswith("rollout guard: p99 latency"), reason
            # the freeze during the incident: from v3's promotion to after its rollback, and no
            # advance of v3 got through it
            freeze = conn.execute(
                "SELECT f.id, r.id, u.id FROM retrain.log f, retrain.log r, retrain.log u "
                "WHERE f.model = 'churn' AND f.event = 'frozen' AND r.model = 'churn' AND r.event = 'rolled_back' "
                "AND r.version = 'v3' AND u.model = 'churn' AND u.event = 'unfrozen'").fetchall()
            assert len(freeze) == 1 and freeze[0][0] < freeze[0][1] < freeze[0][2], freeze
            assert scalar(conn, "SELECT count(*) FROM retrain.log WHERE model = 'churn' AND event = 'advanced' "
                                "AND version = 'v3'") == 0
            assert "[retrain_events]" in run.stdout and "frozen by olivia: INC-4711" in run.stdout

            # two sign-offs per release, by the two demo roles
            approvals = conn.execute("SELECT version, array_agg(approver::text ORDER BY capacity) "
                                     "FROM retrain.approvals WHERE model = 'churn' GROUP BY version "
                                     "ORDER BY version").fetchall()
            assert approvals == [(v, ["bob", "alice"]) for v in ("v1", "v2", "v3")], approvals

            # lineage of every version, checked against the artifacts
            for uri, sha, commit, seed, data_range in conn.execute(
                    "SELECT artifact_uri, artifact_sha256, code_commit, seed, data_range "
                    "FROM retrain.model_versions WHERE model = 'churn'"):
                sys.path.insert(0, HERE)
                import trainer

                trainer.load(uri, sha)  # raises when the SHA-256 does not match
                assert commit and seed == 42 and not data_range.isempty

            assert conn.execute("SELECT ok FROM retrain.verify_log()").fetchone() == (True,)


if __name__ == "__main__":
    run_suite(globals())
