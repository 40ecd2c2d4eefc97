"""The RINE sweeps through the real launcher, a real local Ray and a real MLflow store."""
import runpy
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aigid.data.synthetic import make_synthetic
from trainables.launcher import main
from trainables.sweep import Sweep, grid
from aigid.methods import RINE

SWEEPS = Path(__file__).parent.parent / "sweeps"


def load(name):
    return runpy.run_path(str(SWEEPS / f"{name}.py"))


@pytest.fixture(scope="module")
def small_ufd(tmp_path_factory):
    return str(make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=2, n_test=1))


@pytest.mark.parametrize("name, trials", [("rine_grid", 48), ("rine_ablation", 12), ("rine_training", 18)])
def test_sweeps_list_the_papers_grids(name, trials, small_ufd, capsys):
    assert main(load(name)["SWEEP"], ["--data", small_ufd, "--dry-run"]) == []
    out = capsys.readouterr().out
    assert f"{trials} trials" in out and "(SYNTHETIC)" in out
    if name == "rine_grid":
        assert "'q': 4, 'proj_dim': 1024, 'xi': 0.8" in out  # the paper's q × d' × ξ


@pytest.mark.parametrize("argv, message", [
    (["--set", "q=0"], "q must be an integer >= 1"),
    (["--set", "xi=-1"], "swept by this grid"),
    (["--set", "classes=3"], "classes must be one of"),
    (["--backbone", "ViT-Q-99"], "unknown backbone"),
    (["--backbone", "aigid-tiny-rn", "--pretrained", "none"], "is a ResNet"),
])
def test_bad_input_fails_before_any_trial(argv, message, small_ufd, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(load("rine_ablation" if "q=0" in argv else "rine_grid")["SWEEP"], ["--data", small_ufd, *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_grid_runs_on_ray_logs_to_mlflow_and_reuses_the_feature_cache(ray_session, tmp_path, offline_cwd, monkeypatch,
                                                                    capsys):
    offline_cwd("ufd")
    monkeypatch.setenv("AIGID_STACK", "1")  # the ξ pairs stack on this CPU too (the default stacks on a GPU only)
    rine = load("rine_grid")
    sweep = Sweep(name="rine_e2e", method=RINE, plan=grid(q=[1, 2], xi=[0.1, 0.2]), table=rine["table"],
                  figures=rine["box_plots"], doc="e2e test")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    argv = ["--smoke", "--mlflow-uri", uri, "--storage", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
            "--set", "proj_dim=8"]
    trials = main(sweep, argv)
    assert len(trials) == 4 and all(t.finished for t in trials)
    out = capsys.readouterr().out
    assert "features computed once for 4 trials" in out and "4 of the 4 trials train in 2 stack(s)" in out
    assert not any((tmp_path / "cache" / ".sweeps").iterdir())  # the stacks' scratch goes once the sweep finished
    # the paper's rule (test ACC + AP) and the held-out one side by side; the mean over the paper's sets
    assert "test ACC+AP (§4.4)" in out and "val ACC+AP" in out
    assert "AVG: mean over 4 of the paper's 20 test sets" in out and "the data lacks stylegan2" in out

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("rine_e2e")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    for q in ("1", "2"):  # each ξ pair is its own two runs, trained once as one stack by one of them
        pair = [c.data.metrics for c in children if c.data.params["q"] == q]
        assert [m["stack/members"] for m in pair] == [2, 2] and sorted(m["stack/trained_here"] for m in pair) == [0, 1]
        assert pair[0]["train/loss"] != pair[1]["train/loss"]
    assert {"val/acc", "test/mean/acc", "test/progan/ap", "test/deepfake/acc"} <= set(children[0].data.metrics)
    assert {"summary.txt", "fig3_backbones.png", "fig4_q_dprime.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}

    again = Sweep(name="rine_e2e", method=RINE, plan=grid(q=[4]), table=rine["table"], doc="e2e test")
    assert len(main(again, [*argv, "--set", "select_on='val'"])) == 1
    out = capsys.readouterr().out
    assert "feature store hit" in out and "val/acc + val/ap after the last epoch" in out
