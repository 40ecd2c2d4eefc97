"""Sweep plans: grids and fixed settings expand once into exactly the trials the tables read."""
import runpy
from pathlib import Path

import pytest

from aigid.errors import ConfigError
from aigid.methods import LOL
from trainables.arguments import parse_settings
from trainables.launcher import base_overrides
from trainables.sweep import Grid, Offline, Sweep, expand, grid

SWEEPS = Path(__file__).parent.parent / "sweeps"


def test_rine_training_runs_only_the_trials_its_table_reads():
    sweep = runpy.run_path(str(SWEEPS / "rine_training.py"))["SWEEP"]
    points = expand(sweep, False, {}, seeds=1)
    duration = [p for p in points if p["epochs"] == 15]
    size = [p for p in points if p["epochs"] == 1]
    assert len(points) == 18 and len(duration) == 9 and len(size) == 9
    assert {p["train_fraction"] for p in duration} == {1.0} and {p["paper_config"] for p in size} == {1}
    assert {p["train_fraction"] for p in size} == {0.2, 0.5, 0.8}  # 100 % is epoch 1 of the §5.4 trial


def test_offline_values_fixed_settings_seeds_and_no_duplicates():
    sweep = Sweep(name="x", method=LOL, table=str, fixed={"epochs": Offline(20, 3)},
                  plan=(Grid({"lr": Offline([1e-5, 1e-4], [1e-3])}), Grid({"lr": [1e-3]})))
    assert expand(sweep, True, {"epochs": 3}, seeds=2) == [{"epochs": 3, "lr": 1e-3, "seed": 0},
                                                           {"epochs": 3, "lr": 1e-3, "seed": 1}]
    assert [p["lr"] for p in expand(sweep, False, {}, seeds=1)] == [1e-5, 1e-4, 1e-3]
    assert sweep.axes(False) == {"lr": [1e-5, 1e-4, 1e-3]}


def test_presets_give_way_to_the_plan_but_explicit_flags_clash_with_it():
    sweep = Sweep(name="x", method=LOL, table=str, plan=grid(epochs=[1, 2]))
    assert "epochs" in base_overrides(sweep, parse_settings(sweep, []))  # LoL's offline preset, replaced per point
    with pytest.raises(ConfigError, match="swept by this grid"):
        base_overrides(sweep, parse_settings(sweep, ["--epochs", "3"]))


def test_optuna_needs_a_single_grid():
    sweep = runpy.run_path(str(SWEEPS / "rine_training.py"))["SWEEP"]
    with pytest.raises(ValueError, match="samples one grid"):
        sweep.single_grid(False)


def test_variants_replace_the_plan_by_flag():
    module = runpy.run_path(str(SWEEPS / "rine_grid.py"))
    settings = parse_settings(module["SWEEP"], ["--all-settings"])
    assert settings.variant == "--all-settings"
    assert len(expand(module["ALL_SETTINGS"], False, {}, seeds=1)) == 288


@pytest.mark.parametrize("argv, message", [
    (["--gpus-per-trial", "2.5"], "above 1 use whole GPUs"),
    (["--max-concurrent", "-1"], "must be >= 0"),
])
def test_invalid_shares_and_caps_are_refused(argv, message, capsys):
    sweep = Sweep(name="x", method=LOL, table=str, plan=grid(lr=[1e-3]))
    with pytest.raises(SystemExit):
        parse_settings(sweep, argv)
    assert message in capsys.readouterr().err


def test_a_trial_no_node_can_hold_is_one_line_before_launch(ray_session, small_genimage, tmp_path, capsys):
    from trainables.launcher import main

    sweep = Sweep(name="too_big", method=LOL, table=str, plan=grid(lr=[1e-3]))
    with pytest.raises(SystemExit) as exit_info:
        main(sweep, ["--data", str(small_genimage), "--pretrained", "none", "--backbone", "aigid-tiny-rn",
                     "--set", "train_volume=None", "--gpus-per-trial", "2", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db",
                     "--storage", str(tmp_path / "results")])
    assert exit_info.value.code == 2
    assert "asks for 1 CPU and 2 GPU but no node" in capsys.readouterr().err
