"""RINE Table 6's sweep: ten-crop scores on another dataset (--test-data), through the real launcher,
a real local Ray and a real MLflow store."""
import runpy
from pathlib import Path

import pytest

from aigid.data.synthetic import make_synthetic
from trainables.launcher import main

SWEEP = runpy.run_path(str(Path(__file__).parent.parent / "sweeps" / "rine_synthbuster.py"))["SWEEP"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """A training stand-in with 1+1 images per test set, and a test stand-in (another seed) with 2+2."""
    base = tmp_path_factory.mktemp("roots")
    return (str(make_synthetic(base / "train", layout="ufd", n_train=2, n_test=1)),
            str(make_synthetic(base / "synthbuster", layout="ufd", seed=1, n_train=1, n_test=2)))


def test_with_data_the_test_dataset_is_required(roots, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(SWEEP, ["--data", roots[0], "--dry-run"])
    assert exit_info.value.code == 2 and "rine_synthbuster with --data needs --test-data" in capsys.readouterr().err


@pytest.mark.slow
def test_the_model_is_scored_ten_crop_on_the_test_dataset(ray_session, roots, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    trials = main(SWEEP, ["--data", roots[0], "--test-data", roots[1], "--smoke", "--backbone", "aigid-tiny-vit",
                          "--pretrained", "none", "--set", "proj_dim=8",
                          "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage", str(tmp_path / "results"),
                          "--cache-dir", str(tmp_path / "cache")])
    (trial,) = trials
    assert trial.finished and trial.config["test_crops"] == 10 and trial.config["test_root"] == roots[1]
    assert trial.final["test/progan/n"] == 4  # the test dataset's 2 + 2 images, not the training root's 1 + 1
    out = capsys.readouterr().out
    assert "RINE Table 6" in out and "ProGAN (4-class)" in out
    assert "feature pass: 12 view set(s)" in out  # 1 training view (--smoke: 1 epoch), val, 10 test crops
