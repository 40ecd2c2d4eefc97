"""Faults at the trust boundary: files a researcher did not write (a planted checkpoint or weights
file, a hand-edited config) and a read-only command that must not write. Each fault is injected for
real; each case recovers or stops with one line that names cause and fix (issue 21, items 13-16)."""
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from aigid import checkpoints
from aigid.cli import main as aigid
from aigid.errors import ConfigError
from aigid.methods import LOL
from aigid.methods.gendet import GenDetConfig
from aigid.methods.lol import LoLConfig, LoLTrainer
from aigid.trials import FINISHED, Trial, point_name
from trainables.launcher import main
from trainables.sweep import Sweep, grid

REPO = Path(__file__).parent.parent


class Payload:
    """What a planted pickle runs when unpickled: it creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant(path: Path, marker: Path) -> None:
    """A checkpoint-shaped pickle that runs a command on a plain torch.load."""
    torch.save({"state_dict": Payload(marker)}, path)


# ------------------------------------------------------------------ 15, 16: pickles that run code
def test_a_planted_checkpoint_is_refused_unread_in_one_line(tmp_path):
    planted, marker = tmp_path / "trainer.pt", tmp_path / "ran"
    plant(planted, marker)
    with pytest.raises(checkpoints.UnsafeCheckpoint) as refused:
        checkpoints.load(planted, fix="delete it")
    message = str(refused.value)
    assert "\n" not in message and "asks to run posix.system" in message and message.endswith("; delete it")
    assert not marker.exists()


def test_pretrained_weights_that_run_code_stop_the_real_cli_with_one_line(small_genimage, tmp_path):
    planted, marker = tmp_path / "weights.pt", tmp_path / "ran"
    plant(planted, marker)
    run = subprocess.run([sys.executable, "-m", "aigid.cli", "train", "lol", "--data", str(small_genimage),
                          "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--set", "backbone=aigid-tiny-rn",
                          "--set", f"pretrained={planted}", "--set", "test_limit=1", "--set", "train_volume=None"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"error: {planted} is not a weights-only checkpoint")
    assert "--pretrained none" in run.stderr and not marker.exists()


def interrupted_lol():
    """LoL whose trials stop after their first checkpoint unless restored from one: a sweep to resume."""

    class Interrupted(LoLTrainer):
        restored = False

        def load_state_dict(self, state):
            super().load_state_dict(state)
            self.restored = True

        def run(self):
            for result in super().run():
                yield result  # the adapter checkpoints this epoch end before asking for more
                if not self.restored:
                    raise RuntimeError("interrupted on purpose")

    return dataclasses.replace(LOL, trainer_cls=Interrupted)


@pytest.mark.slow
def test_resume_fails_only_the_trial_whose_checkpoint_was_planted(ray_session, small_genimage, tmp_path, capsys):
    """The planted trial fails with a one-line reason, not the sweep with exit 2: the refusal happens
    inside that trial (only it reads its checkpoint), and the other trials' work is not lost."""
    sweep = Sweep(name="trust_resume", method=interrupted_lol(), plan=grid(mask_ratio=[(0.2, 0.4)]),
                  table=lambda trials: "table")
    argv = ["--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage", str(tmp_path / "results"),
            "--name", "planted", "--data", str(small_genimage), "--seeds", "2", "--max-failures", "0",
            "--pretrained", "none", "--backbone", "aigid-tiny-rn", "--set", "train_volume=None",
            "--set", "test_limit=4", "--set", "epochs=2"]
    def run(*extra):
        """The sweep's trials as its report wrote them; it exits 1 while any trial failed."""
        with pytest.raises(SystemExit) as exit_info:
            main(sweep, [*argv, *extra])
        assert exit_info.value.code == 1
        report = tmp_path / "results" / "planted" / "report" / "trials.json"
        return [Trial.from_dict(t) for t in json.loads(report.read_text())]

    assert [t.status for t in run()] == ["failed", "failed"]  # both interrupted after epoch 1
    trial_params = (tmp_path / "results" / "planted").glob("*/params.json")
    seed0 = next(p.parent for p in trial_params if json.loads(p.read_text())["seed"] == 0)
    marker = tmp_path / "ran"
    plant(sorted(seed0.glob("checkpoint_*"))[-1] / "trainer.pt", marker)

    trials = {t.config["seed"]: t for t in run("--resume", "planted")}
    assert trials[1].status == FINISHED and [e["epoch"] for e in trials[1].history] == [1, 2]
    assert trials[0].status == "failed" and not marker.exists()
    assert "is not a weights-only checkpoint: it asks to run posix.system" in trials[0].error
    assert "let only trusted users write to --storage" in trials[0].error and "\n" not in trials[0].error
    assert "FAILED (aigid.checkpoints.UnsafeCheckpoint:" in capsys.readouterr().out


# ------------------------------------------------------------------ 14: a config file out of range
CORRUPTED = [
    ({"lr": math.inf}, "lr must be in (0, 1]"),
    ({"lr": 1e12}, "lr must be in (0, 1]"),
    ({"beta1": math.nan}, "beta1 must be in [0, 1), got nan"),
    ({"crop": 10 ** 12}, "crop must be in (0, 4096]"),
    ({"aspect_ratio": [0.5, math.inf]}, "aspect_ratio must be a finite number, got (0.5, inf)"),
    ({"epochs": 1e12}, "epochs takes int, got 1000000000000.0"),
]


@pytest.mark.parametrize("corrupted, reason", CORRUPTED)
def test_a_best_config_with_infinity_nan_or_absurd_values_stops_with_one_line(
        corrupted, reason, small_genimage, tmp_path, capsys):
    best = tmp_path / "best_config.json"
    best.write_text(json.dumps({**LoLConfig().to_flat(), **LOL.offline, **corrupted}))  # Infinity, NaN as JSON writes them
    assert aigid(["train", "lol", "--data", str(small_genimage), "--config", str(best)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {reason}")


def test_infinity_is_refused_where_a_range_check_would_pass_it():
    with pytest.raises(ConfigError, match=r"^alpha must be a finite number, got inf$"):
        GenDetConfig.from_flat({"alpha": math.inf})  # `alpha >= 0` holds for inf
    with pytest.raises(ConfigError, match=r"^classifier_lr must be in \(0, 1\]"):
        GenDetConfig.from_flat({"classifier_lr": 2.0})


# ------------------------------------------------------------------ 13: `aigid results` writes nothing
def finished_sweep(folder: Path, uri: str) -> Path:
    """A finished lol_mask_grid sweep's report folder and MLflow parent run, as a sweep writes them."""
    from mlflow import MlflowClient

    from trainables.results import sweeps_by_name
    from trainables.summary import report
    from trainables.tracking import experiment_id, parent_run

    sweep, axes = sweeps_by_name()["lol_mask_grid"], {"mask_ratio": [(0.2, 0.4), (0.6, 0.8)],
                                                      "aspect_ratio": [(1.0, 1.0), (0.33, 3.0)]}
    trials = []
    for i, (mask, aspect) in enumerate((m, a) for m in axes["mask_ratio"] for a in axes["aspect_ratio"]):
        config = {**LoLConfig().to_flat(), "mask_ratio": mask, "aspect_ratio": aspect}
        history = tuple({"epoch": e, "test/mean/acc": 0.6 + 0.05 * i, "test/mean/ap": 0.7, "score": 0.6 + 0.05 * i}
                        for e in range(1, 6))
        trials.append(Trial(point_name(config, list(axes)), config, FINISHED, history[-1], history))
    client = MlflowClient(uri)
    parent = parent_run(client, experiment_id(client, sweep.name), "lol_mask_grid-trust", {}, {})
    report_dir = folder / "results" / "lol_mask_grid-trust" / "report"
    report(sweep, trials, client, parent, {"run": "lol_mask_grid-trust", "axes": axes, "synthetic": True,
                                           "data_root": None}, folder=str(report_dir))
    return report_dir


def tree(root: Path) -> dict:
    """Every file and folder under `root` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_results_writes_nothing_in_the_working_directory_or_beside_the_sweep(tmp_path, monkeypatch, capsys):
    sweep_dir, elsewhere = tmp_path / "sweep", tmp_path / "elsewhere"
    sweep_dir.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(sweep_dir)  # where a sweep runs: its MLflow store and artifacts
    uri = f"sqlite:///{sweep_dir}/mlflow.db"
    report_dir = finished_sweep(sweep_dir, uri)
    capsys.readouterr()
    for where in (sweep_dir, elsewhere):
        monkeypatch.chdir(where)
        for target in (str(report_dir), "lol_mask_grid"):  # the report folder, and the sweep in MLflow
            before = tree(tmp_path)
            assert aigid(["results", target, "--mlflow-uri", uri]) == 0
            assert tree(tmp_path) == before
            out = capsys.readouterr().out
            assert "LoL Table 3" in out and "best config: {" in out
            drawn = Path(out.split("figures in ", 1)[1].split(":", 1)[0])
            assert drawn.parent == Path(tempfile.gettempdir()) and drawn.name.startswith("aigid-results-")
            assert (drawn / "lol_mask_grid_heatmap.png").stat().st_size > 1000
            shutil.rmtree(drawn)
    assert aigid(["results", str(report_dir), "--out", str(elsewhere / "figures")]) == 0
    assert (elsewhere / "figures" / "lol_mask_grid_heatmap.png").exists()
