"""Detection metrics as the papers report them: ACC at 0.5, AP, real/fake accuracy.

Scores are probabilities that an image is fake (label 1). Accuracies and AP are
fractions in [0, 1]; tables multiply by 100.
"""
from __future__ import annotations

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


def binary_metrics(scores, labels, threshold: float = 0.5) -> dict[str, float]:
    """ACC at `threshold`, AP, and accuracy on the real and on the fake images alone."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(int)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.size} vs {labels.size}")
    predicted = (scores >= threshold).astype(int)
    correct = predicted == labels
    real, fake = labels == 0, labels == 1
    return {
        "acc": float(correct.mean()) if correct.size else float("nan"),
        "ap": average_precision(scores, labels),
        "real_acc": float(correct[real].mean()) if real.any() else float("nan"),
        "fake_acc": float(correct[fake].mean()) if fake.any() else float("nan"),
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


def per_subset_summary(per_subset: dict[str, dict[str, float]], prefix: str = "test") -> dict[str, float]:
    """Flatten per-subset metrics to `test/<subset>/<metric>` and add the papers' averages.

    `test/mean/acc` and `test/mean/ap` are unweighted means over subsets ("Avg. ACC / AP"),
    so a large test subset does not dominate.
    """
    flat: dict[str, float] = {}
    for subset, metrics in sorted(per_subset.items()):
        for key, value in metrics.items():
            flat[subset_key(subset, key, prefix)] = value
    for key in ("acc", "ap", "real_acc", "fake_acc"):
        values = [m[key] for m in per_subset.values() if key in m and not np.isnan(m[key])]
        if values:
            flat[subset_key(MEAN, key, prefix)] = float(np.mean(values))
    return flat


def held_out_summary(metrics_of, tests: dict, val=None) -> dict[str, float]:
    """`per_subset_summary` of `metrics_of(part)` over the test parts, plus `val/acc` and `val/ap`
    when a validation part is given (what model selection reads)."""
    report = per_subset_summary({subset: metrics_of(part) for subset, part in tests.items()})
    if val is not None:
        metrics = metrics_of(val)
        report.update({"val/acc": metrics["acc"], "val/ap": metrics["ap"]})
    return report


def mean_std(values) -> tuple[float, float]:
    """Mean and population std, as the papers' "mean (± std)" over epochs or seeds."""
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std())
