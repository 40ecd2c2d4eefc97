"""A real multi-node Ray cluster (head + 2 workers, loopback only, private netns): `ray job submit`,
a worker node killed mid-sweep, a driver stopped and resumed. See tests/cluster_harness.py."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aigid.data.synthetic import make_synthetic
from cluster_harness import TRIALS

HARNESS = Path(__file__).parent / "cluster_harness.py"


def runs_of(client, run_name, sweep="lol_cross_generator"):
    experiment = client.get_experiment_by_name(sweep).experiment_id
    parent = [r for r in client.search_runs([experiment], filter_string=f"tags.aigid_run = '{run_name}'")
              if "mlflow.parentRunId" not in r.data.tags]
    assert len(parent) == 1, f"expected one parent run for {run_name}, got {len(parent)}"
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent[0].info.run_id}'")
    return parent[0], children


KILL, SHARE_NOTHING = "kill_worker_then_stop_and_resume_driver", "offline_smoke_on_nodes_sharing_nothing"


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """Both scenarios run on one cluster, started once (a start costs tens of seconds of `ray start`s):
    the shared-nothing sweep first, as it needs both workers alive, then the one that kills a worker.
    -> (workdir, {scenario: what it observed})."""
    workdir = tmp_path_factory.mktemp("cluster")
    make_synthetic(workdir / KILL / "data", n_train=8, n_test=4)
    done = subprocess.run(["unshare", "-n", sys.executable, str(HARNESS), str(workdir), SHARE_NOTHING, KILL],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_cluster_survives_a_dead_worker_and_a_stopped_driver(observed):
    workdir, out = observed[0] / KILL, observed[1][KILL]
    assert out["refused_returncode"] != 0 and "node-local filesystem" in out["refused_log"]

    # A worker node died mid-sweep: its trials resumed from their checkpoints on the other node.
    assert out["killed_raylets"] == 1
    assert out["kill_status"] == "SUCCEEDED", out["kill_log"][-30000:]
    assert f"{TRIALS}/{TRIALS} trials done" in out["kill_log"]
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    parent, children = runs_of(client, "killed-worker")
    assert len(children) == TRIALS and all(c.info.status == "FINISHED" for c in children)
    assert parent.info.status == "FINISHED"
    assert all(c.data.tags.get("node_id") for c in children)  # where each trial ran is recorded

    # The driver was stopped after a trial finished; --resume finished the rest without rerunning it.
    assert out["stop_status"] == "STOPPED"
    first_done = next(line.split("[aigid] ")[1].split(" finished (")[0] for line in out["stopped_log"].splitlines() if "finished (" in line)
    assert out["resume_returncode"] == 0, out["resume_log"][-3000:]
    assert "resuming" in out["resume_log"]
    assert not [line for line in out["resume_log"].splitlines() if " epoch " in line and first_done in line]
    parent, children = runs_of(client, "stopped-driver")
    assert len(children) == TRIALS and all(c.info.status == "FINISHED" for c in children)
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_offline_smoke_sweep_runs_on_nodes_that_share_no_disk(observed):
    """`ray job submit` of the offline LoL smoke sweep (no --data) to a head and two workers that each
    have a private /tmp: the stand-in the driver generated is regenerated on the workers, and only
    the declared storage, cache and MLflow store are shared."""
    workdir, out = observed[0] / SHARE_NOTHING, observed[1][SHARE_NOTHING]
    assert out["returncode"] == 0, out["log"]
    assert f"{TRIALS}/{TRIALS} trials done" in out["log"], out["log"]
    assert out["data_path"].startswith("/tmp/") and not out["data_visible_outside_the_head"]  # the head's /tmp was its own
    assert "does not have the synthetic stand-in" in out["log"]  # so the workers made their own copy
    parent, children = runs_of(MlflowClient(f"sqlite:///{workdir}/mlflow.db"), "shared-nothing", "lol_mask_grid")
    assert len(children) == TRIALS and all(c.info.status == "FINISHED" for c in children)
    assert parent.info.status == "FINISHED"
    assert len({c.data.tags["node_id"] for c in children}) == 2  # both workers ran trials
