"""GenDet evaluation: test images perturbed in their own view set, `GENDET.evaluate` reproducing the
trainer's report from a checkpoint, and testing on another dataset (Tables 6-7's test_root).

The trained runs are real (aigid-tiny-vit on the synthetic GenImage stand-in, in-process, the
same prepare/trainer path a sweep takes); the view-set tests read generated feature tables.
"""
import json
from dataclasses import replace

import pytest
import torch

from aigid.data.index import DataError, DatasetIndex
from aigid.errors import ConfigError
from aigid.methods import GENDET
from aigid.methods.gendet import GenDetConfig, check_data, feature_requests
from aigid.methods.gendet.evaluate import detector_of
from aigid.methods.gendet.trainer import eval_view_name, train_view_name
from aigid.methods.spec import PrepareContext
from test_gendet import make_data, trainer

PERTURB = "jpeg=30"  # GenDet Table 4's strongest JPEG


@pytest.fixture(scope="module")
def trained(small_genimage, tmp_path_factory):
    """A finished tiny GenDet on SD v1.4 tested under jpeg=30: its config, index, last report and checkpoint."""
    from aigid import checkpoints
    from aigid.data.layouts import scan

    index = scan(small_genimage, "genimage")
    config = GENDET.resolve({**GENDET.offline, **GENDET.smoke, "test_subsets": ("sdv14", "adm"),
                             "test_perturb": PERTURB}, index)
    context = PrepareContext(str(tmp_path_factory.mktemp("cache")), log=lambda line: None)
    run = GENDET.trainer(config, index, GENDET.prepare(index, [config], context))
    last = list(run.run())[-1]
    path = tmp_path_factory.mktemp("state") / "gendet.pt"
    checkpoints.save(run.state_dict(), path)
    return config, index, last, checkpoints.load(path, fix="a test's own checkpoint")


def test_evaluate_reproduces_every_test_metric_of_the_trainers_last_report_reading_no_training_image(trained, tmp_path):
    config, index, last, state = trained
    cache = tmp_path / "fresh-cache"
    metrics = GENDET.evaluate(config, state, index, PrepareContext(str(cache), log=lambda line: None))
    expected = {k: v for k, v in last.items() if k.startswith("test/")}
    assert set(metrics) == set(expected) and "test/sdv14/acc" in metrics and "test/mean/ap" in metrics
    for key, value in expected.items():
        exact = key.endswith(("/acc", "/real_acc", "/fake_acc", "/n"))
        assert metrics[key] == value if exact else metrics[key] == pytest.approx(value, abs=1e-9), key
    (entry,) = [e for e in cache.iterdir() if (e / "meta.json").is_file()]  # one feature pass: the test images
    meta = json.loads((entry / "meta.json").read_text())
    tests = {s.path for subset in ("sdv14", "adm") for s in index.select(index.test_split, subsets=[subset])}
    assert set(meta["paths"]) == tests and meta["request"]["perturb"]["spec"].endswith(PERTURB)


def test_evaluate_loads_the_networks_whole_or_names_the_key(trained, tmp_path):
    config, index, _, state = trained
    context = PrepareContext(str(tmp_path / "cache"), log=lambda line: None)
    missing = {**state, "model": {k: v for k, v in state["model"].items() if k != "classifier.fc.weight"}}
    with pytest.raises(ConfigError, match="lacks 'classifier.fc.weight'"):
        GENDET.evaluate(config, missing, index, context)
    key = "student.tokens.proj.weight"
    misshapen = {**state, "model": {**state["model"], key: torch.zeros(3, 3)}}
    with pytest.raises(ConfigError, match=f"'{key}' has shape \\[3, 3\\]"):
        GENDET.evaluate(config, misshapen, index, context)


def test_the_detector_scored_is_the_one_the_trainers_last_report_used():
    config = GenDetConfig(rotations=1, teacher_epochs=2, classifier_epochs=1).for_layout("ufd")
    assert detector_of(config, {"epoch": len(config.schedule)}) == "gendet"
    assert detector_of(config, {"epoch": 2}) == "teacher"  # mid-run: the teacher's head reported
    assert detector_of(replace(config, variant="teacher"), {"epoch": 2}) == "teacher"
    with pytest.raises(ConfigError, match="has run 0 of"):
        detector_of(config, {"epoch": 0})


def test_the_trainer_evaluates_the_detector_its_variant_ends_with_by_default():
    assert trainer({"variant": "teacher"}).evaluate() == trainer({"variant": "teacher"}).evaluate("teacher")
    assert trainer().evaluate() == trainer().evaluate("gendet") != trainer().evaluate("teacher")


def test_a_perturbation_grid_keeps_one_clean_training_view_set_and_one_test_view_set_per_perturbation():
    index, _ = make_data()
    base = GenDetConfig(backbone="aigid-tiny-vit", pretrained=None)
    configs = [replace(base, test_perturb=p).for_layout(index.layout) for p in ("none", "blur=3", "downscale=64")]
    requests = feature_requests(configs, index)
    assert len(requests) == 4
    train = requests[train_view_name(configs[0])]
    assert train.perturb == "none" and all("/train/" in p for p in train.paths)
    for config in configs:
        test = requests[eval_view_name(config)]
        assert test.perturb == config.test_perturb and test.root == index.root
        assert all("/test/" in p for p in test.paths)
    described = [requests[eval_view_name(c)].describe() for c in configs]
    assert "perturb" not in described[0] and described[1]["perturb"] != described[2]["perturb"]  # cached apart
    clean_elsewhere = replace(configs[0], perturb_seed=7)
    assert eval_view_name(clean_elsewhere) == eval_view_name(configs[0])  # clean images: one view set, any seed


def test_a_synthetic_test_dataset_pairs_only_with_the_synthetic_stand_in():
    index, _ = make_data()
    real = DatasetIndex(index.root, index.layout, False, index.samples)
    config = GenDetConfig(test_root="synthetic").for_layout("ufd")
    with pytest.raises(DataError, match="pairs only with the synthetic training stand-in"):
        check_data(config, real)


def test_test_root_scores_the_other_datasets_sets_instead_and_averages_all_of_them(small_genimage, tmp_path):
    from aigid.data.layouts import scan
    from aigid.data.synthetic import make_synthetic

    other = make_synthetic(tmp_path / "cross", layout="ufd", n_train=1, n_test=2)
    index = scan(small_genimage, "genimage")
    config = GENDET.resolve({**GENDET.offline, **GENDET.smoke, "test_root": str(other)}, index)
    context = PrepareContext(str(tmp_path / "cache"), log=lambda line: None)
    last = list(GENDET.trainer(config, index, GENDET.prepare(index, [config], context)).run())[-1]
    sets = {"progan", "stylegan", "crn", "deepfake"}  # the stand-in UFD's test sets, none of GenImage's
    assert {k.split("/")[1] for k in last if k.startswith("test/")} == sets | {"mean"}
    mean = sum(last[f"test/{s}/acc"] for s in sets) / len(sets)
    assert last["test/mean/acc"] == pytest.approx(mean)


# ------------------------------------------------------------------ the sweeps: real launcher, Ray, MLflow
def sweep(name):
    import runpy
    from pathlib import Path

    return runpy.run_path(str(Path(__file__).parent.parent / "sweeps" / f"{name}.py"))["SWEEP"]


@pytest.fixture(scope="module")
def offline_dir(tmp_path_factory, stand_ins):
    """One working folder for both sweeps, with the synthetic GenImage stand-in they train on."""
    folder = tmp_path_factory.mktemp("offline")
    stand_ins(folder, "genimage")
    return folder


def smoke(name, folder, capsys):
    from trainables.launcher import main

    trials = main(sweep(name), ["--smoke", "--mlflow-uri", f"sqlite:///{folder}/mlflow.db", "--storage",
                                str(folder / "results"), "--cache-dir", str(folder / "cache")])
    return trials, capsys.readouterr().out


@pytest.mark.slow
def test_table4_degradations_move_a_trained_stand_ins_test_metrics(ray_session, offline_dir, monkeypatch, capsys):
    from aigid.data.perturb import GENDET_TABLE4

    monkeypatch.chdir(offline_dir)
    trials, out = smoke("gendet_robustness", offline_dir, capsys)
    by_perturb = {t.config["test_perturb"]: t for t in trials}
    assert all(t.finished for t in trials) and set(by_perturb) == {"none", *(p.spec() for p in GENDET_TABLE4.values())}
    assert "8 view set(s) computed" in out  # the training images once, the test images once per degradation
    clean = by_perturb.pop("none")
    assert clean.config["train_subset"] == "sdv14"
    assert {k.split("/")[1] for k in clean.epochs[-1] if k.startswith("test/")} == {"sdv14", "mean"}
    for spec, trial in by_perturb.items():  # every degradation reaches the scores: the test BCE moves, if only a
        # little on the stand-in (jpeg=65 moved it by 9.5e-5 on one CPU, 1e-4 on another); 1e-6 allows float noise
        assert abs(trial.last("test/sdv14/loss") - clean.last("test/sdv14/loss")) > 1e-6, spec
    moved = [s for s, t in by_perturb.items() if (t.last("test/sdv14/acc"), t.last("test/sdv14/ap"))
             != (clean.last("test/sdv14/acc"), clean.last("test/sdv14/ap"))]
    assert "downscale=64" in moved or "jpeg=30" in moved, moved
    assert "GenDet Table 4" in out and "JPEG (q=30)" in out and "87.6" in out  # ours, with the paper's beside it


@pytest.mark.slow
def test_tables6_7_train_on_sd14_and_score_the_other_dataset_only(ray_session, offline_dir, monkeypatch, capsys):
    from trainables.launcher import main

    monkeypatch.chdir(offline_dir)
    (trial,), out = smoke("gendet_cross_dataset", offline_dir, capsys)
    assert trial.finished and trial.config["train_subset"] == "sdv14"
    reported = {k.split("/")[1] for k in trial.epochs[-1] if k.startswith("test/")}
    assert reported == {"progan", "stylegan", "crn", "deepfake", "mean"}  # the stand-in UFD's sets, no GenImage set
    assert "GenDet Table 6" in out and "GenDet Table 7" in out and "cogview2" in out and "85.8" in out and "98.3" in out
    with pytest.raises(SystemExit) as exit_info:
        main(sweep("gendet_cross_dataset"), ["--data", str(offline_dir / "aigid_data" / "synthetic-genimage")])
    assert exit_info.value.code == 2 and "gendet_cross_dataset with --data needs --test-data" in capsys.readouterr().err
