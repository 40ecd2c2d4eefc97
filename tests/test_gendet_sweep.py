"""The GenDet sweeps through the real launcher, a real local Ray and a real MLflow store."""
import runpy
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aigid.data.synthetic import make_synthetic
from aigid.report import tables_of
from aigid.trials import FINISHED, Trial
from trainables.launcher import main

SWEEPS = Path(__file__).parent.parent / "sweeps"


def load(name):
    return runpy.run_path(str(SWEEPS / f"{name}.py"))["SWEEP"]


@pytest.fixture(scope="module")
def small_ufd(tmp_path_factory):
    return str(make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=2, n_test=1))


@pytest.mark.parametrize("name, trials, shown", [
    ("gendet_margin_alpha", 9, "{'margin': 4.0, 'alpha': 1.0, 'seed': 0}"),
    ("gendet_ablation", 4, "{'variant': 'ts_fake', 'seed': 0}"),
])
def test_sweeps_list_the_papers_grids(name, trials, shown, small_ufd, capsys):
    assert main(load(name), ["--data", small_ufd, "--dry-run"]) == []
    out = capsys.readouterr().out
    assert f"{trials} trials on ufd data" in out and shown in out


def test_genimage_is_a_dataset_too_with_its_own_learning_rates(small_genimage, small_ufd, capsys):
    assert main(load("gendet_margin_alpha"), ["--data", str(small_genimage), "--dry-run"]) == []
    out = capsys.readouterr().out
    assert "9 trials on genimage data" in out
    assert "genimage defaults of the paper: {'student_lr': 1e-05, 'classifier_lr': 0.001, 'train_subset': 'sdv14'}" in out
    main(load("gendet_margin_alpha"), ["--data", small_ufd, "--dry-run"])
    assert "ufd defaults of the paper: {'student_lr': 0.0001, 'classifier_lr': 1e-05, 'train_subset': 'progan'}" in (
        capsys.readouterr().out)


def test_undecodable_images_stop_the_sweep_at_the_feature_pass_with_one_line(ray_session, tmp_path, capsys):
    root = make_synthetic(tmp_path / "synthetic", layout="ufd", n_train=1, n_test=1)
    for image in (f for f in root.rglob("*") if f.is_file() and f.suffix != ".json"):
        image.write_bytes(b"not an image")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(SystemExit) as exit_info:
        main(load("gendet_ablation"), ["--data", str(root), "--backbone", "aigid-tiny-vit", "--pretrained", "none",
                                       "--mlflow-uri", uri, "--storage", str(tmp_path / "results"),
                                       "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "gendet could not prepare the sweep: none of the" in err
    client = MlflowClient(uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("gendet_ablation").experiment_id])
    assert parent.info.status == "FAILED"


@pytest.mark.parametrize("argv, message", [
    (["--set", "margin=0"], "margin must be in (0, 4]"),
    (["--set", "margin=-2"], "margin must be in (0, 4]"),
    (["--set", "alpha=-1"], "alpha must be >= 0"),
    (["--set", "rotations=0"], "rotations must be an integer >= 1"),
    (["--set", "epochs=3"], "GenDet has no single epoch count"),
    (["--scheduler", "asha"], "cannot rank gendet trials early"),
    (["--set", "width=100", "--set", "heads=3"], "width 100 is not divisible by heads 3"),
    (["--set", "tokens='patch'", "--backbone", "aigid-tiny-rn", "--pretrained", "none"], "is a ResNet"),
    (["--set", "train_subset='stylegan'"], "train_subset 'stylegan' is not in"),
])
def test_bad_input_fails_before_any_trial(argv, message, small_ufd, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(load("gendet_ablation"), ["--data", small_ufd, *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_dataset_outside_the_paper_asks_for_the_per_dataset_settings(tmp_path, capsys):
    df = make_synthetic(tmp_path / "synthetic", layout="diffusionforensics", n_train=1, n_test=1)
    with pytest.raises(SystemExit):
        main(load("gendet_ablation"), ["--data", str(df)])
    assert "set train_subset, student_lr, classifier_lr yourself" in capsys.readouterr().err


def test_table5_grid_runs_on_ray_logs_to_mlflow_and_shares_one_feature_pass(ray_session, tmp_path, offline_cwd, capsys):
    offline_cwd("ufd")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    argv = ["--smoke", "-v", "--mlflow-uri", uri, "--storage", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    trials = main(load("gendet_margin_alpha"), argv)
    assert len(trials) == 9 and all(t.finished for t in trials)
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "features computed once for 9 trials: 2 view set(s) computed" in out
    assert "GenDet Table 5" in out and "94.42 / 95.64" in out  # ours, with the paper's beside it
    assert all(len(t.history) == 5 for t in trials)  # --smoke: 1 teacher epoch, 1 rotation of (a, b, c), 1 classifier epoch
    assert "epoch 5/5 " in out

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("gendet_margin_alpha").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 9 and all(c.info.status == "FINISHED" for c in children)
    assert {(c.data.params["margin"], c.data.params["alpha"]) for c in children} == {
        (m, a) for m in ("1.0", "2.0", "4.0") for a in ("0.01", "0.1", "1.0")}
    assert {"test/mean/acc", "test/mean/ap", "test/progan/acc", "train/augmenter_loss"} <= set(children[0].data.metrics)
    assert {"summary.txt", "summary.md", "tables.tex", "table1.csv", "best_config.json",
            "gendet_margin_alpha_heatmap.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "[aigid] re-run it: aigid train gendet --config " in out

    # `aigid results` re-prints the finished sweep from MLflow, or from its report folder, creating no run.
    from aigid.cli import main as aigid

    report = next((tmp_path / "results").glob("gendet_margin_alpha-*/report"))
    runs_before = len(client.search_runs([parent.info.experiment_id]))
    assert aigid(["results", "gendet_margin_alpha", "--mlflow-uri", uri, "--out", str(tmp_path / "again")]) == 0
    shown = capsys.readouterr().out
    assert "GenDet Table 5" in shown and "SYNTHETIC" in shown and "best config: {" in shown
    assert (tmp_path / "again" / "gendet_margin_alpha_heatmap.png").stat().st_size > 10_000
    assert aigid(["results", str(report), "--compare", parent.info.run_name, "--mlflow-uri", uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("A: gendet_margin_alpha-") and "B: gendet_margin_alpha-" in lines[0]
    assert sum("GenDet Table 5" in line for line in lines) == 1 and lines[2].count("GenDet Table 5") == 2
    assert len(client.search_runs([parent.info.experiment_id])) == runs_before
    assert aigid(["results", "no_such_sweep", "--mlflow-uri", uri]) == 2
    assert "no sweep found for 'no_such_sweep'" in capsys.readouterr().err

    assert len(main(load("gendet_ablation"), argv)) == 4
    out = capsys.readouterr().out
    assert "feature store hit" in out and "Teacher-Student AD w/fake" in out
    assert "epoch 1/1 " in out and "epoch 3/3 " in out  # teacher alone: 1 epoch; ts_real: 1 + 1 + 1


def test_one_gendet_run_without_ray_reads_the_feature_cache_the_sweeps_use(small_ufd, tmp_path, capsys):
    from aigid.cli import main as aigid

    argv = ["train", "gendet", "--data", small_ufd, "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
            "--set", "backbone='aigid-tiny-vit'", "--set", "pretrained=none", "--set", "rotations=1",
            "--set", "teacher_epochs=1", "--set", "classifier_epochs=1", "--set", "batch_size=8"]
    assert aigid([*argv, "--save", str(tmp_path / "gendet.pt")]) == 0
    out = capsys.readouterr().out
    assert "gendet on ufd (SYNTHETIC)" in out and "epoch 5/5" in out and "test/mean/acc" in out
    assert len([entry for entry in (tmp_path / "cache").iterdir() if (entry / "meta.json").is_file()]) == 2  # train, test
    assert aigid([*argv, "--set", "margin=0"]) == 2 and "margin must be in (0, 4]" in capsys.readouterr().err


def test_table5_lists_optuna_trials_that_fall_between_the_grid_cells():
    table = runpy.run_path(str(SWEEPS / "gendet_margin_alpha.py"))["table"]
    trial = Trial("off grid", {"margin": 2.7, "alpha": 0.3}, FINISHED,
                  history=({"test/mean/acc": 0.6, "test/mean/ap": 0.7},))
    out = "\n\n".join(map(str, tables_of(table([trial]))))
    assert "trials off the grid" in out and "2.7     0.3    60.0 (±0.0) / 70.0 (±0.0)" in out
