"""`aigid eval`: a trial's checkpoint, a sweep's best trial and the authors' released files, scored on a tiny
synthetic UFD tree with the tiny random-init ViT, in process, through the real command."""
import argparse
import json
import runpy
from pathlib import Path

import pytest
import torch

from aigid import checkpoints
from aigid.cli import main
from aigid.data.synthetic import make_synthetic
from aigid.methods import UNIVFD
from aigid.methods.rine.config import RINEConfig
from aigid.train_cli import build
from aigid.trials import best_point
from trainables.launcher import main as sweep_main
from trainables.sweep import Sweep, grid

TINY = ["backbone='aigid-tiny-vit'", "pretrained=None", "batch_size=8", "epochs=2", "lr=0.03"]


def only_test_keys(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith("test/")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small UFD tree, the shared cache, and a checkpoint of an in-process `aigid train univfd` with its last report."""
    tmp = tmp_path_factory.mktemp("eval")
    root = str(make_synthetic(tmp / "ufd", layout="ufd", n_train=4, n_test=2))
    cache = str(tmp / "cache")
    args = argparse.Namespace(data=root, layout=None, config=None, set=TINY, device="cpu", workers=0, cache_dir=cache)
    _, _, trainer = build(UNIVFD, args)
    last = list(trainer.run())[-1]
    path = tmp / "trainer.pt"
    checkpoints.save(trainer.state_dict(), path)
    return root, cache, path, last


def evaluate(trained, tmp_path, *argv) -> tuple[int, dict | None]:
    """`aigid eval univfd ARGV` on the tree, its exit status and the metrics its trials.json records."""
    root, cache, _, _ = trained
    out = tmp_path / "out"
    code = main(["eval", "univfd", *argv, "--data", root, "--cache-dir", cache, "--workers", "0", "--device", "cpu",
                 "--out", str(out)])
    return code, json.loads((out / "trials.json").read_text())[0]["final"] if code == 0 else None


def test_a_trial_checkpoint_scores_what_its_run_reported_and_a_perturbation_moves_it(trained, tmp_path, capsys):
    _, _, path, last = trained
    code, metrics = evaluate(trained, tmp_path, "--checkpoint", str(path))
    assert code == 0 and set(metrics) == set(only_test_keys(last)) and len(metrics) > 20
    for key, value in only_test_keys(last).items():
        assert metrics[key] == value if key.endswith(("/acc", "/n")) else metrics[key] == pytest.approx(value, abs=1e-9)
    out = capsys.readouterr().out
    assert "feature store hit" in out  # the training run's test view set, not a new backbone pass
    assert "mean over 4 of the paper's 19 test sets" in out and "Protocol choices" in out
    assert {"config.json", "summary.txt", "table1.csv", "trials.json", "sweep.json"} <= {
        p.name for p in (tmp_path / "out").iterdir()}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["backbone"] == "aigid-tiny-vit"

    code, blurred = evaluate(trained, tmp_path / "blurred", "--checkpoint", str(path), "--perturb", "blur=9")
    assert code == 0 and blurred["test/mean/ap"] != metrics["test/mean/ap"]
    assert "perturbed blur=9" in capsys.readouterr().out


def test_the_authors_released_probe_format_at_the_tiny_models_width(trained, tmp_path):
    _, _, path, _ = trained
    probe = checkpoints.load(path, fix="")["model"]  # {'weight': [1, 32], 'bias': [1]}, as fc_weights.pth
    torch.save(probe, tmp_path / "fc_weights.pth")
    _, from_trial = evaluate(trained, tmp_path / "trial", "--checkpoint", str(path))
    code, released = evaluate(trained, tmp_path / "released", "--checkpoint", str(tmp_path / "fc_weights.pth"),
                              "--backbone", "aigid-tiny-vit", "--pretrained", "none")
    assert code == 0 and released == from_trial


@pytest.mark.parametrize("state, argv, message", [
    ({"alpha": torch.zeros(1, 4, 8), "proj1.1.weight": torch.zeros(8, 32)}, [],
     "looks like a RINE head (mever-team/rine ckpt/model_*_trainable.pth), not a univfd checkpoint: "
     "evaluate it with `aigid eval rine`"),
    ({"weight": torch.zeros(1, 16), "bias": torch.zeros(1)}, ["--backbone", "aigid-tiny-vit", "--pretrained", "none"],
     "'weight' has shape [1, 16], a UnivFD probe on the 32-d embedding of aigid-tiny-vit expects [1, 32]"),
    ({"weight": torch.zeros(1, 32)}, [], "is not a UnivFD probe (WisconsinAIVision/UniversalFakeDetect "
                                         "pretrained_weights/fc_weights.pth): its keys are weight"),
    ({"model": {"weight": torch.zeros(1, 32)}}, [], "lacks 'bias': a UnivFD probe on the 32-d embedding of "
                                                    "aigid-tiny-vit expects it with shape [1]"),
    ({"config": RINEConfig().to_flat(), "model": {}}, [], "is a rine trial's checkpoint (its config is rine's): "
                                                          "evaluate it with `aigid eval rine`"),
])
def test_a_file_of_another_method_or_shape_exits_2_on_one_line(trained, tmp_path, capsys, state, argv, message):
    if "model" in state and "config" not in state:  # a trial's checkpoint of this method, its probe half there
        state = {**checkpoints.load(trained[2], fix=""), **state}
    torch.save(state, tmp_path / "file.pth")
    code, _ = evaluate(trained, tmp_path, "--checkpoint", str(tmp_path / "file.pth"), *argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_a_bad_perturbation_exits_2_listing_the_valid_ones(trained, tmp_path, capsys):
    code, _ = evaluate(trained, tmp_path, "--checkpoint", str(trained[2]), "--perturb", "jpg=30")
    err = capsys.readouterr().err
    assert code == 2 and "unknown step 'jpg=30'; valid: jpeg=<quality" in err and err.count("\n") == 1


@pytest.mark.slow
def test_from_a_sweeps_run_folder_scores_its_best_trial_as_the_sweep_reported(ray_session, trained, tmp_path,
                                                                              monkeypatch, capsys):
    """A real two-trial UnivFD sweep (univfd_baseline's table) on Ray with MLflow; eval --from its run folder."""
    monkeypatch.chdir(tmp_path)
    root, cache, _, _ = trained
    baseline = runpy.run_path(str(Path(__file__).parent.parent / "sweeps" / "univfd_baseline.py"))
    sweep = Sweep(name="univfd_eval", method=UNIVFD, plan=grid(lr=[3e-3, 3e-2]), table=baseline["table"], doc="eval")
    argv = ["--data", root, "--storage", str(tmp_path / "results"), "--cache-dir", cache, "--name", "run",
            "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", *(a for s in TINY[:-1] for a in ("--set", s))]  # lr is swept
    trials = sweep_main(sweep, argv)
    here, _ = best_point(trials)
    best = max(here, key=lambda t: t.score)
    capsys.readouterr()
    code, metrics = evaluate(trained, tmp_path, "--from", str(tmp_path / "results" / "run"))
    assert code == 0 and metrics == only_test_keys(best.final)  # bit for bit: the sweep's cached test features
    out = capsys.readouterr().out
    assert f"best trial {best.name!r} of run" in out
    assert f"test/mean/acc: the sweep reported {best.final['test/mean/acc']:.6f}, eval gives " \
           f"{best.final['test/mean/acc']:.6f}" in out
