"""Search beyond the grid: Optuna's TPE over the paper's axes and ASHA early stopping, on real Ray."""
import runpy
from pathlib import Path

import pytest
from mlflow import MlflowClient
from ray import tune

from trainables.launcher import main
from trainables.sweep import Sweep, grid
from aigid.methods import LOL
from trainables.trainable import decode
from trainables.search import optuna_axis

FAST = ["--pretrained", "none", "--backbone", "aigid-tiny-rn", "--set", "train_volume=None", "--set", "test_limit=4"]
TABLE = runpy.run_path(str(Path(__file__).parent.parent / "sweeps" / "lol_mask_grid.py"))["table"]


def test_axes_become_ranges_or_choices_and_tuples_round_trip():
    assert isinstance(optuna_axis([0.1, 0.2, 0.4, 0.8]), tune.search.sample.Float)
    choice = optuna_axis([(0.0, 0.2), (0.6, 0.8)])
    assert choice.categories == ["(0.0, 0.2)", "(0.6, 0.8)"]
    assert decode({"mask_ratio": "(0.6, 0.8)", "backbone": "RN50"}) == {"mask_ratio": (0.6, 0.8), "backbone": "RN50"}
    assert optuna_axis([1, 2, 4]).categories == [1, 2, 4]


def test_optuna_with_asha_runs_and_records_the_search(ray_session, small_genimage, tmp_path, capsys):
    sweep = Sweep(name="search_optuna", method=LOL, table=TABLE,
                  plan=grid(mask_ratio=[(0.0, 0.2), (0.6, 0.8)], aspect_ratio=[(1.0, 1.0), (0.33, 3.0)]))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trials = main(sweep, ["--data", str(small_genimage), "--search", "optuna", "--num-samples", "4",
                          "--scheduler", "asha", "--set", "epochs=3", "--mlflow-uri", uri,
                          "--storage", str(tmp_path / "results"), *FAST])
    assert len(trials) == 4 and all(t.finished for t in trials)
    assert all(isinstance(t.config["mask_ratio"], tuple) for t in trials)
    out = capsys.readouterr().out
    assert "best by mean test/mean/acc over the last 5 epochs (LoL §4.3" in out
    stopped = [t for t in trials if t.final["epoch"] < 3]
    if stopped:
        assert f"{len(stopped)} trial(s) stopped early" in out
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("search_optuna").experiment_id
    parent = next(r for r in client.search_runs([experiment]) if "mlflow.parentRunId" not in r.data.tags)
    assert parent.data.params["search"] == "optuna" and parent.data.params["scheduler"] == "asha"
    assert parent.data.params["num_samples"] == "4"


def test_optuna_refuses_seeds(small_genimage, capsys):
    sweep = Sweep(name="x", method=LOL, table=TABLE, plan=grid(mask_ratio=[(0.0, 0.2)]))
    with pytest.raises(SystemExit) as exit_info:
        main(sweep, ["--data", str(small_genimage), "--search", "optuna", "--seeds", "3", *FAST])
    assert exit_info.value.code == 2
    assert "--num-samples instead" in capsys.readouterr().err
