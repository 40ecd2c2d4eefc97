"""The generic sweep figures (aigid.figures): real matplotlib and Optuna on hand-built trial records."""
import math

import numpy as np
import pytest
from PIL import Image

from aigid import figures
from aigid.trials import FAILED, FINISHED, Trial

MASKS = [(0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0), (0.1, 0.3)]  # sweep order, not sorted
LRS = [1e-4, 3e-4, 1e-3]
KEY = "test/mean/acc"


def score(trial):
    return trial.final.get(KEY, math.nan)


def make(config, acc=None, status=FINISHED):
    history = ({"epoch": 1, KEY: acc} if acc is not None else {"epoch": 1},) if status == FINISHED else ()
    final = history[-1] if history else {}
    return Trial(" ".join(f"{k}={v}" for k, v in config.items()), config, status, final=final, history=history)


def acc_of(mask_index, lr_index, seed):
    """Strongly driven by the mask ratio, barely by the learning rate or the seed."""
    return 0.55 + 0.08 * mask_index + 0.002 * lr_index + 0.004 * seed


@pytest.fixture
def grid():
    """5 mask ratios × 3 learning rates × 2 seeds; seed 1's tuples come back as lists (a JSON round
    trip); plus a failed trial and a finished one without the score."""
    trials = [
        make({"mask_ratio": list(m) if seed else m, "lr": lr, "seed": seed}, acc_of(i, j, seed))
        for i, m in enumerate(MASKS) for j, lr in enumerate(LRS) for seed in (0, 1)
    ]
    trials.append(make({"mask_ratio": MASKS[0], "lr": LRS[0], "seed": 2}, status=FAILED))
    trials.append(make({"mask_ratio": MASKS[1], "lr": LRS[1], "seed": 2}))  # NaN score
    return trials


def assert_png(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert width >= 400 and height >= 250
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_cell_means_are_seed_means_in_sweep_order(grid):
    matrix, rows, cols = figures.cell_means(grid, "mask_ratio", "lr", score, rows=MASKS)
    assert rows == MASKS and cols == LRS
    assert matrix.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            assert matrix[i, j] == pytest.approx((acc_of(i, j, 0) + acc_of(i, j, 1)) / 2)


def test_cell_means_leave_missing_points_empty(grid):
    matrix, _, _ = figures.cell_means(grid, "mask_ratio", "lr", score, rows=MASKS + [(0.9, 1.0)])
    assert np.isnan(matrix[-1]).all() and np.isfinite(matrix[:-1]).all()


def test_importance_ranks_the_driving_axis_first(grid):
    found = figures.importances(grid, ["lr", "mask_ratio", "backbone"], score)
    assert list(found)[0] == "mask_ratio"
    assert found["mask_ratio"] > 0.8 > found["lr"]
    assert "backbone" not in found  # a field with one value (here absent) has nothing to explain


def test_constant_score_has_no_importance(grid, tmp_path):
    flat = [make(t.config, 0.7) for t in grid if t.finished]
    assert figures.importances(flat, ["mask_ratio", "lr"], score) == {}  # fANOVA would raise on zero variance
    assert figures.param_importance(flat, ["mask_ratio", "lr"], score, title="t", path=str(tmp_path / "i.png")) is None
    assert_png(figures.grid_heatmap(flat, "mask_ratio", "lr", score, title="t", path=str(tmp_path / "h.png"),
                                    score_label="s", chance=None))


def test_heatmap_writes_a_png(grid, tmp_path):
    path = figures.grid_heatmap(grid, "mask_ratio", "lr", score, title="mask × lr", path=str(tmp_path / "h.png"),
                                score_label="Avg. ACC (%)", synthetic=True)
    assert path == str(tmp_path / "h.png")
    assert_png(path)


def test_heatmap_without_chance(grid, tmp_path):
    assert_png(figures.grid_heatmap(grid, "lr", "mask_ratio", score, title="t", path=str(tmp_path / "h.png"),
                                    score_label="score", chance=None))


def test_parallel_coordinates_and_importance_write_pngs(grid, tmp_path):
    assert_png(figures.parallel_coordinates(grid, ["mask_ratio", "lr"], score, title="t",
                                            path=str(tmp_path / "p.png"), score_label="Avg. ACC (%)"))
    assert_png(figures.param_importance(grid, ["mask_ratio", "lr"], score, title="t", path=str(tmp_path / "i.png")))


def test_curve_over_tuple_string_and_numeric_axes(grid, tmp_path):
    points = figures.curve_points(grid, "mask_ratio", score, values=MASKS)
    assert [v for v, _ in points] == MASKS  # sweep order, lists read back as tuples
    assert [len(s) for _, s in points] == [6, 6, 6, 6, 6]
    named = [make({"backbone": b, "seed": s}, 0.6 + 0.1 * i) for i, b in enumerate(["ViT-L-14", "ViT-B-32"])
             for s in (0, 1)]
    assert [v for v, _ in figures.curve_points(named, "backbone", score)] == ["ViT-L-14", "ViT-B-32"]
    for axis, trials in (("mask_ratio", grid), ("lr", grid), ("backbone", named)):
        assert_png(figures.curve(trials, axis, score, title=axis, path=str(tmp_path / f"{axis}.png"),
                                 score_label="Avg. ACC (%)"))


def test_curve_draws_one_line_per_value_of_a_second_field(tmp_path, monkeypatch):
    """LoL Table 2 as curves: volume on a log axis, one line per backbone (each with its seeds)."""
    volumes = [12, 24, 48]
    trials = [make({"train_volume": v, "backbone": b, "seed": s}, 0.5 + 0.1 * i + 0.05 * j + 0.01 * s)
              for i, v in enumerate(volumes) for j, b in enumerate(["aigid-tiny-rn", "aigid-tiny-vit"]) for s in (0, 1)]
    drawn = {}
    save = figures.save

    def keep(fig, path):
        drawn[path] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        return save(fig, path)

    monkeypatch.setattr(figures, "save", keep)
    path = figures.curve(trials, "train_volume", score, by="backbone", title="t", path=str(tmp_path / "v.png"),
                         score_label="Avg. ACC (%)")
    assert_png(path)
    assert sorted(drawn[path]) == ["backbone=aigid-tiny-rn", "backbone=aigid-tiny-vit", "chance (50 %)"]
    plain = figures.curve(trials, "train_volume", score, title="t", path=str(tmp_path / "w.png"), score_label="s")
    assert sorted(drawn[plain]) == ["chance (50 %)", "mean ± std over seeds", "trial"]


def test_nothing_to_draw_returns_none_and_writes_nothing(grid, tmp_path):
    one = [t for t in grid if t.finished][:1]
    path = str(tmp_path / "x.png")
    assert figures.grid_heatmap(one, "mask_ratio", "lr", score, title="t", path=path, score_label="s") is None
    assert figures.parallel_coordinates(one, ["lr"], score, title="t", path=path, score_label="s") is None
    assert figures.curve(one, "lr", score, title="t", path=path, score_label="s") is None
    one_lr = [t for t in grid if t.config["lr"] == LRS[0]]
    assert figures.grid_heatmap(one_lr, "mask_ratio", "lr", score, title="t", path=path, score_label="s") is None
    assert figures.curve(one_lr, "lr", score, title="t", path=path, score_label="s") is None
    two = [t for t in grid if t.finished][:2]
    assert figures.importances(two, ["mask_ratio", "lr"], score) == {}
    assert figures.param_importance(two, ["mask_ratio", "lr"], score, title="t", path=path) is None
    failed = [make({"lr": lr}, status=FAILED) for lr in LRS]
    assert figures.curve(failed, "lr", score, title="t", path=path, score_label="s") is None
    assert not (tmp_path / "x.png").exists()


def test_sweep_figures_pick_by_number_of_varying_axes(grid, tmp_path):
    two = figures.sweep_figures(grid, {"mask_ratio": MASKS, "lr": LRS, "seed": [0]}, score, str(tmp_path / "a"),
                                name="mask_lr", score_label="Avg. ACC (%)")
    assert [p.rsplit("/", 1)[1] for p in two] == ["mask_lr_parallel.png", "mask_lr_importance.png",
                                                  "mask_lr_heatmap.png"]
    one_axis = [t for t in grid if t.config["lr"] == LRS[0]]
    one = figures.sweep_figures(one_axis, {"mask_ratio": MASKS, "lr": [LRS[0]]}, score, str(tmp_path / "b"),
                                name="mask", score_label="Avg. ACC (%)", synthetic=True)
    assert [p.rsplit("/", 1)[1] for p in one] == ["mask_parallel.png", "mask_importance.png", "mask_curve.png"]
    for path in two + one:
        assert_png(path)
    assert figures.sweep_figures(grid, {"lr": [LRS[0]]}, score, str(tmp_path / "c"), name="none",
                                 score_label="s") == []


# ------------------------------------------------------------------ robustness
JPEG = ["none", "jpeg=90", "jpeg=50", "jpeg=10"]  # clean, then weak to strong (RINE Table 5's kind of axis)


def robust(detector, perturbation, seed):
    """A detector whose ACC and AP fall with the JPEG quality; the RINE stand-in falls less."""
    drop = {"none": 0, "jpeg=90": 0.02, "jpeg=50": 0.1, "jpeg=10": 0.3, "blur=3": 0.15, "noise=5:20@0.5": 0.05}
    acc = 0.95 - drop[perturbation] * (0.5 if detector == "rine" else 1) + 0.01 * seed
    config = {"detector": detector, "test_perturb": perturbation, "seed": seed}
    history = ({"epoch": 1, "test/mean/acc": acc, "test/mean/ap": min(1.0, acc + 0.03)},)
    return Trial(" ".join(f"{k}={v}" for k, v in config.items()), config, FINISHED, final=history[0], history=history)


def test_strengths_are_numeric_only_for_one_kind_at_fixed_values():
    assert figures.strengths(JPEG) == ("jpeg quality", {"jpeg=90": 90.0, "jpeg=50": 50.0, "jpeg=10": 10.0})
    assert figures.strengths(["none", "blur=1", "blur=3"]) == ("blur sigma", {"blur=1": 1.0, "blur=3": 3.0})
    for mixed in (["jpeg=90", "blur=3"], ["jpeg=30:90"], ["jpeg=30@0.5"], ["jpeg=30+blur=1"]):
        assert figures.strengths(mixed) is None


def test_robustness_draws_acc_and_ap_per_detector_against_the_perturbation(tmp_path):
    trials = [robust(d, p, s) for d in ("univfd", "rine") for p in JPEG for s in (0, 1)]
    path = figures.robustness(trials, "detector", str(tmp_path / "jpeg.png"), "Stand-in: ACC and AP under JPEG")
    assert_png(path)
    specs = ["none", "blur=3", "noise=5:20@0.5", "jpeg=10"]  # not one kind: the specs label the x axis
    labelled = figures.robustness([robust(d, p, 0) for d in ("univfd", "rine") for p in specs], "detector",
                                  str(tmp_path / "mixed.png"), "Stand-in: RINE Table 5's kind of grid",
                                  perturbations=specs, synthetic=True)
    assert_png(labelled)
    points = figures.curve_points([t for t in trials if t.config["detector"] == "univfd"], "test_perturb",
                                  lambda t: t.last("test/mean/acc"), values=JPEG)
    assert [v for v, _ in points] == JPEG and points[0][1] == [0.95, 0.96]  # seeds pooled, in the order given
    assert figures.robustness(trials[:2], "detector", str(tmp_path / "none.png"), "one perturbation") is None
    assert not (tmp_path / "none.png").exists()
