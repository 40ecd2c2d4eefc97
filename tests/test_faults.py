"""Faults during a sweep: a failing trial, a crash retried from its checkpoint, a killed driver."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from aigid.methods import LOL
from aigid.methods.lol import LoLTrainer
from aigid.trials import Trial
from trainables.launcher import main
from trainables.sweep import Sweep, grid

REPO = Path(__file__).parent.parent
FAST = ["--pretrained", "none", "--backbone", "aigid-tiny-rn", "--set", "train_volume=None", "--set", "test_limit=4"]


def child_runs(uri, experiment_name):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def crashing_lol(marker: Path, fail_seed: int | None, *, mid_epoch: bool = False):
    """LoL with a trainer made to crash once after its first checkpoint (or, `mid_epoch`, after the
    first uncheckpointed mid-epoch result that follows one), or always for `fail_seed`."""

    class CrashOnce(LoLTrainer):
        def __init__(self, config, *args, **kwargs):
            if config.seed == fail_seed:
                raise ValueError("this trial's config is broken on purpose")
            super().__init__(config, *args, **kwargs)

        def run(self):
            for result in super().run():
                yield result
                if mid_epoch and (result["epoch_end"] or self.epoch < 1):
                    continue
                if not marker.exists():
                    marker.touch()
                    raise RuntimeError("simulated crash")

    return dataclasses.replace(LOL, trainer_cls=CrashOnce)


def run_sweep(tmp_path, method, argv, name):
    sweep = Sweep(name=name, method=method, plan=grid(mask_ratio=[(0.2, 0.4)]), table=lambda trials: "table")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return uri, main(sweep, ["--mlflow-uri", uri, "--storage", str(tmp_path / "results"), *FAST, *argv])


def test_a_failing_trial_is_reported_and_the_others_finish(ray_session, small_genimage, tmp_path, capsys):
    marker = tmp_path / "crashed"
    marker.touch()  # no simulated crash: only the broken config fails
    uri, trials = run_sweep(tmp_path, crashing_lol(marker, fail_seed=1),
                            ["--data", str(small_genimage), "--seeds", "2", "--set", "epochs=1", "--max-failures", "0"],
                            "faults_failing")
    assert sorted(t.status for t in trials) == ["failed", "finished"]
    assert "broken on purpose" in capsys.readouterr().out  # the reason is in the printed summary
    _, children = child_runs(uri, "faults_failing")
    statuses = sorted(c.info.status for c in children)
    assert statuses == ["FAILED", "FINISHED"]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "broken on purpose" in failed.data.tags["error"]


def test_a_crashed_trial_is_retried_from_its_last_checkpoint(ray_session, small_genimage, tmp_path):
    marker = tmp_path / "crashed"
    uri, trials = run_sweep(tmp_path, crashing_lol(marker, fail_seed=None),
                            ["--data", str(small_genimage), "--set", "epochs=2", "--max-failures", "1"],
                            "faults_retry")
    assert marker.exists()  # it did crash once
    assert [t.status for t in trials] == ["finished"]
    assert trials[0].final["epoch"] == 2
    client, children = child_runs(uri, "faults_retry")
    assert len(children) == 1 and children[0].info.status == "FINISHED"  # one run, not one per attempt
    steps = [m.step for m in client.get_metric_history(children[0].info.run_id, "epoch")]
    assert sorted(steps) == [1, 2]


def test_a_result_redone_after_a_retry_is_logged_once(ray_session, small_genimage, tmp_path):
    marker = tmp_path / "crashed"
    uri, trials = run_sweep(tmp_path, crashing_lol(marker, fail_seed=None, mid_epoch=True),
                            ["--data", str(small_genimage), "--set", "epochs=2", "--set", "eval_every_steps=1",
                             "--max-failures", "1"], "faults_redo")
    assert marker.exists() and [t.status for t in trials] == ["finished"]
    client, (child,) = child_runs(uri, "faults_redo")
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "epoch")]
    assert sorted(steps) == list(range(1, len(steps) + 1))  # the mid-epoch result redone after the crash: once


@pytest.mark.slow
def test_a_killed_driver_resumes_without_rerunning_finished_trials(small_genimage, tmp_path):
    """The 15-trial Table 3 grid, its driver killed after the first trial finished, then resumed:
    one MLflow parent (more children than a lookup page), one child per trial, every step once."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    argv = [sys.executable, str(REPO / "sweeps" / "lol_mask_grid.py"), "--data", str(small_genimage), "--mlflow-uri",
            uri, "--storage", str(tmp_path / "results"), "--name", "interrupted", "--max-concurrent", "2",
            "--set", "epochs=2", "-v", *FAST]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    finished = None
    deadline = time.monotonic() + 240
    for line in driver.stdout:  # the driver's own progress lines tell when a trial has finished
        if "finished (" in line:
            finished = line.split("[aigid] ")[1].split(" finished (")[0]
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
            break
        assert time.monotonic() < deadline, "no trial finished in time"
    driver.wait(timeout=60)
    assert finished is not None

    resumed = subprocess.run([*argv, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "LoL Table 3" in resumed.stdout
    trained_again = [line for line in resumed.stdout.splitlines() if f"[aigid] {finished} epoch " in line]
    assert trained_again == []  # the finished trial did not train again
    assert resumed.stdout.count(" epoch ") >= 2 * 13  # the unfinished ones did
    client, children = child_runs(uri, "lol_mask_grid")
    assert len(children) == 15 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "epoch")]
        assert sorted(steps) == [1, 2]  # each step once, across the driver's restart
    parents = [r for r in client.search_runs([children[0].info.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # The score of a trial restored from its checkpoint still ranks by the paper's rule over all its
    # epochs (the epoch-end history travels with the checkpoint), not just those after the restart.
    report = json.loads((tmp_path / "results" / "interrupted" / "report" / "trials.json").read_text())
    for trial in map(Trial.from_dict, report):
        assert trial.score == pytest.approx(np.mean(trial.last_epochs("test/mean/acc")))
        assert len(trial.history) == 2
