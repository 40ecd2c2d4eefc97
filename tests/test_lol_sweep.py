"""The LoL sweep scripts through the real launcher, a real local Ray and a real MLflow store."""
import runpy
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aigid.data.layouts import SUBSET_IDS, scan

from trainables.launcher import main
from trainables.sweep import Sweep, grid
from aigid.methods import LOL

SWEEPS = Path(__file__).parent.parent / "sweeps"


def load_sweep(name):
    return runpy.run_path(str(SWEEPS / f"{name}.py"))["SWEEP"]


def test_mask_grid_lists_the_papers_15_cells(small_genimage, capsys):
    assert main(load_sweep("lol_mask_grid"), ["--data", str(small_genimage), "--dry-run", "--backbone",
                                               "aigid-tiny-rn", "--pretrained", "none", "--set", "train_volume=None"]) == []
    out = capsys.readouterr().out
    assert "15 trials" in out and "(SYNTHETIC)" in out
    assert "'mask_ratio': (0.8, 1.0), 'aspect_ratio': (0.33, 3.0)" in out


@pytest.mark.parametrize("argv,message", [
    (["--data", "/no/such/folder"], "does not exist"),
    (["--set", "mask_ratio=(0.1, 0.2)"], "swept by this grid"),
    (["--set", "lr=0"], "lr must be in (0, 1]"),
    (["--backbone", "RN5O"], "unknown backbone"),
    (["--set", "train_subset='dalle'"], "train_subset 'dalle'"),
    (["--set", "masc_ratio=1"], "unknown LoLConfig option"),
])
def test_bad_input_fails_before_any_trial(small_genimage, argv, message, capsys):
    argv = argv if "--data" in argv else ["--data", str(small_genimage), "--pretrained", "none", *argv]
    with pytest.raises(SystemExit) as exit_info:
        main(load_sweep("lol_mask_grid"), argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_data_volume_sweep_keeps_only_volumes_that_fit(small_genimage, capsys):
    module = runpy.run_path(str(SWEEPS / "lol_data_volume.py"))
    points = [{"train_volume": v, "backbone": "aigid-tiny-rn"} for v in (4, 8, 16, 32)]
    kept, note = module["keep_fitting_volumes"](points, scan(small_genimage))
    assert [p["train_volume"] for p in kept] == [4, 8, 16] and "dropped volumes [32]" in note
    with pytest.raises(SystemExit):  # none of the paper's volumes fits 16 training images
        main(module["SWEEP"], ["--data", str(small_genimage), "--dry-run", "--pretrained", "none"])
    assert "no volume of [400, 800" in capsys.readouterr().err


def test_sweep_runs_on_ray_and_logs_nested_runs_to_mlflow(ray_session, tmp_path, offline_cwd, capsys):
    offline_cwd("genimage")
    sweep = Sweep(name="lol_e2e", method=LOL, plan=grid(mask_ratio=[(0.0, 0.2), (0.6, 0.8)]),
                  table=load_sweep("lol_mask_grid").table, doc="e2e test")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trials = main(sweep, ["--smoke", "--mlflow-uri", uri, "--storage", str(tmp_path / "results"),
                          "--set", "epochs=2"])
    assert len(trials) == 2 and all(t.finished for t in trials)
    assert all(len(t.history) == 2 for t in trials)
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "LoL Table 3" in out and "(0.6, 0.8)" in out
    assert "prepared once for 2 trials" in out and "decoded once" in out

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lol_e2e")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].data.tags["synthetic"] == "true" and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["trials/finished"] == 2 and "best/test/mean/acc" in parents[0].data.metrics
    assert parents[0].data.tags["best.mask_ratio"] in {"(0.0, 0.2)", "(0.6, 0.8)"}
    assert {c.data.params["mask_ratio"] for c in children} == {"(0.0, 0.2)", "(0.6, 0.8)"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"test/mean/acc", "test/mean/ap", "test/sdv14/acc", "test/wukong/ap"} <= set(child.data.metrics)
        history = client.get_metric_history(child.info.run_id, "test/mean/acc")
        assert sorted(m.step for m in history) == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"summary.txt", "trials.json"} <= artifacts


def test_cross_generator_trains_biggan_at_its_lower_lr(small_genimage):
    """§4.2: 5e-7 for the BigGAN trial, 5e-6 for the seven others (with --data: the paper's values)."""
    from trainables.arguments import parse_settings
    from trainables.launcher import validate

    sweep = load_sweep("lol_cross_generator")
    launch = validate(sweep, parse_settings(sweep, ["--data", str(small_genimage), "--backbone", "aigid-tiny-rn",
                                                    "--pretrained", "none", "--set", "train_volume=None"]))
    lr = {c.train_subset: c.lr for c in launch.configs}
    assert lr == {s: 5e-7 if s == "biggan" else 5e-6 for s in SUBSET_IDS}


@pytest.mark.slow
def test_fig2_draws_avg_acc_against_training_steps_from_mid_epoch_evaluations(ray_session, tmp_path, offline_cwd):
    """The offline Fig. 2 sweep: three settings, evaluated every 2 steps (6 steps an epoch on the stand-in);
    the mid-epoch rows reach each trial's history, MLflow (epoch_end 0, the training step) and the figure."""
    offline_cwd("genimage")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trials = main(load_sweep("lol_fig2"), ["--mlflow-uri", uri, "--storage", str(tmp_path / "results"), "--name", "f2",
                                           "--set", "epochs=1", "--set", "eval_every_steps=2", "--set", "test_limit=4"])
    assert len(trials) == 3 and all(t.finished for t in trials)
    for trial in trials:
        mid = [row for row in trial.history if not row["epoch_end"]]
        assert [row["step"] for row in mid] == [2, 4] and len(trial.epochs) == 1 and trial.epochs[0]["step"] == 6
        assert all("test/mean/acc" in row for row in mid)
    assert {t.config["backbone"] for t in trials} == {"tv-resnet18", "aigid-tiny-rn"}
    assert (tmp_path / "results" / "f2" / "report" / "fig2_steps.png").stat().st_size > 10_000
    client = MlflowClient(uri)
    child = next(r for r in client.search_runs([client.get_experiment_by_name("lol_fig2").experiment_id])
                 if "mlflow.parentRunId" in r.data.tags)
    flags = client.get_metric_history(child.info.run_id, "epoch_end")
    steps = client.get_metric_history(child.info.run_id, "step")
    assert [m.value for m in sorted(flags, key=lambda m: m.step)] == [0, 0, 1]
    assert [m.value for m in sorted(steps, key=lambda m: m.step)] == [2, 4, 6]


@pytest.mark.slow
def test_robustness_trains_and_tests_each_trial_under_its_perturbation(ray_session, tmp_path, offline_cwd, capsys):
    """Table A4 cut to one volume x {blur, crop}: one decoded entry per perturbation, each trial's config carries
    it on both sides, and the table prints the paper's numbers beside ours."""
    import dataclasses

    offline_cwd("genimage")
    sweep = load_sweep("lol_robustness")
    plan = tuple(dataclasses.replace(part, axes={"train_volume": [16]}) for part in sweep.plan
                 if part.fixed["test_perturb"].startswith(("blurk", "crop")))
    trials = main(dataclasses.replace(sweep, plan=plan),
                  ["--smoke", "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage", str(tmp_path / "results"),
                   "--set", "epochs=1", "--set", "test_limit=4"])
    assert len(trials) == 2 and all(t.finished for t in trials)
    assert {t.config["test_perturb"] for t in trials} == {"blurk=3,5,7,9;sigma=4@0.5", "crop=0.05:0.2@0.5"}
    assert all(t.config["train_perturb"] == t.config["test_perturb"] for t in trials)
    out = capsys.readouterr().out
    assert out.count("decoded once for every trial") == 2 and "LoL Table A4" in out and "the paper's Table A4" in out
    assert "76.4 / 86.8" in out  # the paper's 1,600-image blur cell


@pytest.mark.slow
def test_fig_a7_draws_acc_and_ap_matrices_under_the_combined_perturbation(ray_session, tmp_path, offline_cwd, capsys):
    offline_cwd("genimage")
    trials = main(load_sweep("lol_cross_generator"), ["--fig-a7", "--smoke", "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db",
                                                      "--storage", str(tmp_path / "results"), "--name", "a7",
                                                      "--set", "epochs=1", "--set", "test_limit=4"])
    assert sorted(t.config["train_subset"] for t in trials) == ["biggan", "sdv14"] and all(t.finished for t in trials)
    combined = "noise=5:20+blurk=3,5,7,9;sigma=4+jpeg=10:75+crop=0.05:0.2@0.5"
    assert all(t.config["train_perturb"] == t.config["test_perturb"] == combined for t in trials)
    out = capsys.readouterr().out
    assert "LoL Fig. A7 (ACC)" in out and "LoL Fig. A7 (AP)" in out
    for metric in ("acc", "ap"):
        assert (tmp_path / "results" / "a7" / "report" / f"figA7_{metric}_matrix.png").stat().st_size > 10_000
