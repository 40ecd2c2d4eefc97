"""The APN sweep scripts through the real launcher, a real local Ray and a real MLflow store."""
import runpy
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aigid.methods import APN
from trainables.launcher import main
from trainables.sweep import Sweep, grid

SWEEPS = Path(__file__).parent.parent / "sweeps"
QUICK = ["--set", "train_volume=8", "--set", "test_limit=4", "--set", "batch_size=4", "--set", "q_batch_size=4",
         "--set", "crop=32", "--set", "feature_dim=16", "--set", "q_hidden=16"]


def load_sweep(name):
    return runpy.run_path(str(SWEEPS / f"{name}.py"))["SWEEP"]


def test_grids_are_the_papers(small_genimage, capsys):
    argv = ["--data", str(small_genimage), "--dry-run", "--set", "freq_backbone='tiny-resnet'"]
    assert main(load_sweep("apn_proposals"), argv) == []
    assert main(load_sweep("apn_ablation"), argv) == []
    out = capsys.readouterr().out
    assert "apn_proposals: 6 trials" in out and "{'num_proposals': 25, 'seed': 0}" in out
    assert "apn_ablation: 7 trials" in out and "{'ablation': 'no_decomposition', 'seed': 0}" in out


@pytest.mark.parametrize("sweep,argv,message", [
    ("apn_ablation", ["--set", "num_proposals=0"], "num_proposals (K) must be >= 1"),
    ("apn_proposals", ["--set", "feature_dim=255"], "feature_dim (C) must be an even number"),
    ("apn_proposals", ["--set", "ablation='no_everything'"], "ablation must be one of"),
    ("apn_proposals", ["--set", "train_subset='dalle'"], "train_subset 'dalle'"),
    ("apn_cross_scene", [], "apn_cross_scene with --data needs --test-data"),
    ("apn_cross_scene", ["--set", "test_root='synthetic'"], "pairs only with the synthetic training stand-in"),
])
def test_bad_input_fails_before_any_trial(small_genimage, tmp_path, sweep, argv, message, capsys):
    small = tmp_path / "copy"  # a non-synthetic root: the marker file is not copied
    shutil.copytree(small_genimage, small, ignore=shutil.ignore_patterns("AIGID_SYNTHETIC.json"))
    with pytest.raises(SystemExit) as exit_info:
        main(load_sweep(sweep), ["--data", str(small), "--dry-run", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_proposal_sweep_runs_on_ray_and_logs_nested_runs_to_mlflow(ray_session, tmp_path, offline_cwd, capsys):
    offline_cwd("genimage")
    sweep = Sweep(name="apn_e2e", method=APN, plan=grid(num_proposals=[1, 2]),
                  table=load_sweep("apn_proposals").table, doc="e2e test")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trials = main(sweep, ["--smoke", "--mlflow-uri", uri, "--storage", str(tmp_path / "results"),
                          "--cache-dir", str(tmp_path / "cache"), *QUICK])
    assert len(trials) == 2 and all(t.finished and len(t.history) == 1 for t in trials)
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "APN Table 4(b)" in out

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("apn_e2e").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2 and parents[0].info.status == "FINISHED"
    assert {c.data.params["num_proposals"] for c in children} == {"1", "2"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"test/mean/acc", "test/sdv14/acc", "train/mi", "train/q_loss"} <= set(child.data.metrics)


def test_cross_scene_sweep_tests_on_the_synthetic_lsun_bedroom_scene(ray_session, tmp_path, offline_cwd, capsys):
    offline_cwd("genimage")
    sweep = load_sweep("apn_cross_scene")
    trials = main(sweep, ["--smoke", "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage",
                          str(tmp_path / "results"), "--set", "num_proposals=1", *QUICK])
    assert sorted(t.config["train_subset"] for t in trials) == ["adm", "midjourney", "sdv14"]
    for t in trials:
        final = t.history[-1]
        tested = {k.split("/")[1] for k in final if k.startswith("test/") and k.endswith("/acc")}
        assert tested == {t.config["train_subset"], "mean"}  # in-domain only
        assert "test_lsun_bedroom/mean/acc" in final  # the same generator in DF's LSUN-Bedroom (sdv14 -> sdv1)
    assert "APN Table 3" in capsys.readouterr().out
