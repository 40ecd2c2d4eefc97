"""Faults during a sweep: a failing trial, a crash retried from its checkpoint, a killed driver, a
reused or unsafe run name, a changed resume, two sweeps at once on a fresh MLflow store."""
import dataclasses
import functools
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from ray import tune
from ray.train._internal.session import _TrainingResult
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial as TuneTrial

from aigid.methods import LOL
from aigid.methods.lol import LoLTrainer
from aigid.trials import Trial
from trainables.launcher import main
from aigid.errors import StorageError
from trainables.recovery import repair, repair_state_files
from trainables.tracking import connect
from trainables.sweep import Sweep, grid

REPO = Path(__file__).parent.parent
FAST = ["--pretrained", "none", "--backbone", "aigid-tiny-rn", "--set", "train_volume=None", "--set", "test_limit=4"]


def child_runs(uri, experiment_name):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def crashing_lol(marker: Path, fail_seed: int | None, *, mid_epoch: bool = False, fixed: Path | None = None):
    """LoL with a trainer made to crash once after its first checkpoint (or, `mid_epoch`, after the
    first uncheckpointed mid-epoch result that follows one), or always for `fail_seed` (until the
    file `fixed` exists)."""

    class CrashOnce(LoLTrainer):
        def __init__(self, config, *args, **kwargs):
            if config.seed == fail_seed and not (fixed and fixed.exists()):
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


def exit_status(run, capsys) -> tuple[int, str, str]:
    """A sweep's exit status (0 if it returned) and what it printed."""
    try:
        run()
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def parent_of(client, children):
    (parent,) = [r for r in client.search_runs([children[0].info.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    return parent


def test_a_failing_trial_fails_the_sweep_and_finishes_when_resumed(ray_session, small_genimage, tmp_path, capsys):
    """Issue 21 (3, 4, 5, 7): the others finish and the sweep exits 1 naming the error; the name cannot be
    run again without --resume, nor resumed with other settings; once fixed, --resume finishes the failed
    trial and clears its error in MLflow."""
    marker, fixed = tmp_path / "crashed", tmp_path / "fixed"
    marker.touch()  # no simulated crash: only the broken config fails
    method = crashing_lol(marker, fail_seed=1, fixed=fixed)
    argv = ["--data", str(small_genimage), "--seeds", "2", "--set", "epochs=1", "--max-failures", "0",
            "--name", "faulty"]
    code, out, err = exit_status(lambda: run_sweep(tmp_path, method, argv, "faults_failing"), capsys)
    assert code == 1
    assert "broken on purpose" in out  # the reason is in the printed summary
    assert err.splitlines() == [  # after the table: the count, then the first error of each kind
        "error: 1 of 2 trials failed (each after 0 retries, --max-failures); fix the cause and rerun them with "
        "--resume faulty",
        "  1 × ValueError, first in mask_ratio=(0.2, 0.4) s1: ValueError: this trial's config is broken on purpose"]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client, children = child_runs(uri, "faults_failing")
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "broken on purpose" in failed.data.tags["error"]
    assert parent_of(client, children).data.metrics["trials/failed"] == 1

    for again, refusal in (([], "error: faulty exists; --resume faulty or a new --name"),
                           (["--resume", "--set", "test_limit=2"],
                            "error: --resume faulty with other settings than it was started with "
                            "(base.test_limit: 4 -> 2)")):
        code, out, err = exit_status(lambda: run_sweep(tmp_path, method, [*argv, *again], "faults_failing"), capsys)
        assert code == 2 and err.startswith(refusal) and err.count("\n") == 1, err
    assert len(child_runs(uri, "faults_failing")[1]) == 2  # refused before any trial started

    fixed.touch()
    _, trials = run_sweep(tmp_path, method, [*argv, "--resume"], "faults_failing")
    assert [t.status for t in trials] == ["finished", "finished"]
    client, children = child_runs(uri, "faults_failing")
    assert len(children) == 2 and all(c.info.status == "FINISHED" and "error" not in c.data.tags for c in children)
    parent = parent_of(client, children)
    assert parent.data.metrics["trials/failed"] == 0 and parent.info.status == "FINISHED"


@pytest.mark.parametrize("flag, name", [("--name", "../../escaped"), ("--name", "/tmp/abs"), ("--resume", ".."),
                                        ("--name", "a b")])
def test_a_run_name_that_is_not_one_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                                   flag, name):
    """Issue 21 (10): the run would land outside --storage."""
    monkeypatch.chdir(tmp_path)  # where the synthetic data and the default MLflow store would be written
    code, _, err = exit_status(lambda: run_sweep(tmp_path / "in", LOL, [flag, name], "faults_name"), capsys)
    assert code == 2 and err.startswith(f"error: {flag} {name!r} is not a run name") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


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


def tune_trial_with_checkpoints(tmp_path, progress_of: dict[int, int | None]) -> TuneTrial:
    """A Tune trial whose folder holds `checkpoint_<i>` for each key (with a progress file at that
    count of results, or none: an upload cut short), and whose recorded checkpoint, the first, is gone."""
    tune.register_trainable("train_repair", lambda config: None)
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="sweep", trial_dir_name="lol_r_00000")
    trial = TuneTrial("train_repair", config={}, storage=storage, trial_id="r_00000")
    recorded = Path(trial.path, "checkpoint_000000")
    recorded.mkdir(parents=True)
    for index, iteration in progress_of.items():
        folder = Path(trial.path, f"checkpoint_{index:06d}")
        folder.mkdir()
        if iteration is not None:
            epochs = [{"epoch": e, "epoch_end": True, "training_iteration": e} for e in range(1, iteration + 1)]
            (folder / "progress.json").write_text(json.dumps({"training_iteration": iteration, "epochs": epochs}))
    trial.run_metadata.checkpoint_manager.register_checkpoint(
        _TrainingResult(tune.Checkpoint(str(recorded)), {"training_iteration": 1}))
    trial.storage.current_checkpoint_index = 0
    recorded.rmdir()  # Tune deleted it on registering the next one; the killed driver never recorded that
    return trial


def test_a_trial_whose_recorded_checkpoint_is_gone_restores_from_its_newest_complete_one(tmp_path):
    trial = tune_trial_with_checkpoints(tmp_path, {1: 2, 2: None})
    repair(trial)
    assert trial.checkpoint.path.endswith("checkpoint_000001")  # checkpoint_000002 lacks its progress file
    assert trial.latest_checkpoint_result.metrics["training_iteration"] == 2  # Tune counts on from there
    assert trial.storage.current_checkpoint_index == 1  # the next checkpoint is written after it, not over it


def test_a_trial_with_no_checkpoint_left_starts_again(tmp_path):
    trial = tune_trial_with_checkpoints(tmp_path, {1: None})
    repair(trial)
    assert trial.checkpoint is None


def test_a_state_file_cut_short_by_the_kill_is_restored_from_the_drivers_intact_copy(tmp_path):
    run_dir, name = tmp_path / "results" / "interrupted", "experiment_state-2026-11-25_10-00-00.json"
    run_dir.mkdir(parents=True)
    (run_dir / name).write_text('{"trial_data": [["{\\"stub')  # the copy into --storage, cut short
    (run_dir / "basic-variant-state-2026-11-25_10-00-00.json").write_bytes(pickle.dumps({"trials": 15}))  # whole
    staged = tmp_path / "ray" / "session_1" / "artifacts" / "2026-11-25_10-00-00" / "interrupted" / "driver_artifacts"
    staged.mkdir(parents=True)
    (staged / name).write_text('{"trial_data": []}')
    repair_state_files(str(run_dir), str(tmp_path / "ray"))
    assert json.loads((run_dir / name).read_text()) == {"trial_data": []}
    (run_dir / name).write_text("")  # cut short again, and now no intact copy is left
    (staged / name).write_text("{")
    with pytest.raises(StorageError, match=f"state file {name} was cut short.*new --name"):
        repair_state_files(str(run_dir), str(tmp_path / "ray"))


def open_fresh_store(uri, start, answers):
    start.wait()  # every process opens the store at the same moment
    try:
        connect(uri)
        answers.put("ok")
    except Exception as error:  # noqa: BLE001 — the test reports whatever went wrong
        answers.put(f"{type(error).__name__}: {error}")


def test_sweeps_opening_a_fresh_sqlite_store_at_once_all_get_it(tmp_path):
    """Issue 21 (12): without the lock one of them failed in MLflow's table migration
    ('duplicate column name: step'); forked, so each starts with the imports done. The store's folder
    is new too: a sweep makes it."""
    forked = multiprocessing.get_context("fork")
    start, answers = forked.Barrier(3), forked.Queue()
    uri = f"sqlite:///{tmp_path}/new/folder/mlflow.db"
    processes = [forked.Process(target=open_fresh_store, args=(uri, start, answers)) for _ in range(3)]
    for process in processes:
        process.start()
    assert [answers.get(timeout=300) for _ in processes] == ["ok"] * 3
    for process in processes:
        process.join(timeout=60)


@pytest.fixture(scope="module")
def small_ufd(tmp_path_factory):
    from aigid.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=8, n_test=4)


@pytest.mark.slow
def test_two_sweeps_at_once_on_a_fresh_store_and_one_killed_in_its_preparation(small_ufd, tmp_path):
    """Issue 21 (6, 12): two GenDet sweeps, each with its own local Ray, run at once on one SQLite store
    (the fresh store's race: the test above); one is killed during its feature pass. The other finishes, and the killed one resumes:
    it prepares again and runs its trials. Each has its own parent with its own four children."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    def argv(name):
        return [sys.executable, str(REPO / "sweeps" / "gendet_ablation.py"), "--smoke", "--data", str(small_ufd),
                "--backbone", "aigid-tiny-vit", "--pretrained", "none", "--mlflow-uri", uri, "--storage",
                str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), "--name", name]

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = functools.partial(subprocess.Popen, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed, other = start(argv("killed")), None
    for line in killed.stdout:
        if "[aigid] MLflow:" in line:  # its Ray is up (two Rays starting in the same second timed out here)
            other = start(argv("other"))
        if "feature pass:" in line:
            os.killpg(killed.pid, signal.SIGKILL)  # the driver, its pass and the local Ray it started
            break
    killed.wait(timeout=60)
    assert not tune.Tuner.can_restore(str(tmp_path / "results" / "killed"))  # it died before its Tuner started
    out, _ = other.communicate(timeout=600)
    assert other.returncode == 0, out[-3000:]

    resumed = subprocess.run([*argv("killed"), "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "interrupted before any trial started" in resumed.stdout and "GenDet Tables 1-2" in resumed.stdout
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("gendet_ablation").experiment_id])
    parents = {r.data.tags["aigid_run"]: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(parents) == ["killed", "other"]
    for parent in parents.values():
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert parent.info.status == "FINISHED" and len(children) == 4
        assert all(c.info.status == "FINISHED" for c in children)
