"""Detection metrics as the papers report them: ACC at 0.5, AP, real/fake accuracy.

Scores are probabilities that an image is fake (label 1). Accuracies and AP are
fractions in [0, 1]; tables multiply by 100.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping

import numpy as np


def average_precision(scores, labels) -> float:
    """Area under the precision-recall curve as a step sum, sum_n (R_n - R_{n-1}) P_n.

    This is scikit-learn's `average_precision_score` definition (the one the detection
    papers use): tied scores form one threshold, so the order of ties cannot change it.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_pos = np.cumsum(labels)[last_of_tie]
    predicted_pos = last_of_tie + 1
    precision = true_pos / predicted_pos
    recall = true_pos / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(scores, labels, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of fake-probabilities `scores` against `labels` (NaN when empty)."""
    p = np.clip(np.asarray(scores, dtype=np.float64).ravel(), eps, 1 - eps)
    y = np.asarray(labels).ravel().astype(np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))) if y.size else float("nan")


def binary_metrics(scores, labels, threshold: float = 0.5) -> dict[str, float]:
    """ACC at `threshold`, AP, accuracy on the real and on the fake images alone, and the mean
    binary cross-entropy `loss` (continuous where ACC saturates: a tie-break for selection)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(int)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.size} vs {labels.size}")
    predicted = (scores >= threshold).astype(int)
    correct = predicted == labels
    real, fake = labels == 0, labels == 1
    return {
        "acc": float(correct.mean()) if correct.size else float("nan"),
        # AP ranks fakes above reals: on a one-class set (DF's fake-only columns) it says nothing.
        "ap": average_precision(scores, labels) if real.any() and fake.any() else float("nan"),
        "real_acc": float(correct[real].mean()) if real.any() else float("nan"),
        "fake_acc": float(correct[fake].mean()) if fake.any() else float("nan"),
        "loss": log_loss(scores, labels),
        "n": int(labels.size),
    }


MEAN = "mean"  # the subset name of the papers' averages over test subsets


def subset_key(subset: str, metric: str, prefix: str = "test") -> str:
    """The flat metric name of one subset's metric: `test/<subset>/<metric>` (`test/mean/acc` for Avg. ACC)."""
    return f"{prefix}/{subset}/{metric}"


def split_subset_key(key: str) -> tuple[str, str, str] | None:
    """(prefix, subset, metric) of a `subset_key`, or None for any other metric name."""
    parts = key.split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def subsets_in(keys, metric: str = "acc", prefix: str = "test") -> list[str]:
    """The test subsets (not the mean) that `keys` hold `metric` for, sorted."""
    found = {split[1] for split in map(split_subset_key, keys)
             if split and split[0] == prefix and split[2] == metric and split[1] != MEAN}
    return sorted(found)


@dataclass(frozen=True)
class PaperTestSets:
    """The test sets a paper's tables average, per dataset layout, and where the paper lists them.

    The papers' Avg. ACC / AP is a mean over a fixed list (RINE's 20 UFD sets, GenDet's 19): a
    test folder the paper did not use (UFD's `whichfaceisreal`) is reported as its own column but
    never enters the mean, so our averages and the paper's cover the same sets.
    """

    by_layout: Mapping[str, tuple[str, ...]]
    source: str

    def paper(self, layout: str) -> tuple[str, ...] | None:
        """The paper's list on a `layout` dataset; None where the paper used no dataset of that layout."""
        return self.by_layout.get(layout)

    def averaged(self, layout: str, found: Collection[str]) -> list[str]:
        """Of the `found` test sets, those the mean covers: the paper's (in its order); on a layout the
        paper never used, or data holding none of the paper's sets, every set found."""
        paper = [s for s in self.paper(layout) or () if s in found]
        return paper or sorted(found)


def per_subset_summary(per_subset: dict[str, dict[str, float]], prefix: str = "test",
                       averaged: Collection[str] | None = None) -> dict[str, float]:
    """Flatten per-subset metrics to `test/<subset>/<metric>` and add the papers' averages.

    `test/mean/acc` and `test/mean/ap` are unweighted means over the `averaged` subsets (all of
    them when None; see `PaperTestSets`), so a large test subset does not dominate.
    """
    flat: dict[str, float] = {}
    for subset, metrics in sorted(per_subset.items()):
        for key, value in metrics.items():
            flat[subset_key(subset, key, prefix)] = value
    counted = [m for subset, m in per_subset.items() if averaged is None or subset in averaged]
    for key in ("acc", "ap", "real_acc", "fake_acc"):
        values = [m[key] for m in counted if key in m and not np.isnan(m[key])]
        if values:
            flat[subset_key(MEAN, key, prefix)] = float(np.mean(values))
    return flat


def held_out_summary(metrics_of, tests: dict, val=None, averaged: Collection[str] | None = None) -> dict[str, float]:
    """`per_subset_summary` of `metrics_of(part)` over the test parts (the mean over `averaged`),
    plus `val/acc`, `val/ap` and, where `metrics_of` gives it, `val/loss` when a validation part is
    given (what model selection reads)."""
    report = per_subset_summary({subset: metrics_of(part) for subset, part in tests.items()}, averaged=averaged)
    if val is not None:
        metrics = metrics_of(val)
        report.update({f"val/{k}": metrics[k] for k in ("acc", "ap", "loss") if k in metrics})
    return report


def mean_std(values) -> tuple[float, float]:
    """Mean and population std, as the papers' "mean (± std)" over epochs or seeds."""
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std())
