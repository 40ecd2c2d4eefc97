"""Balanced, seeded, nested training subsets for data-volume sweeps.

Nested means that, for one seed, the n-image subset contains every smaller one: each class
is shuffled once and subsets are prefixes, so a volume curve measures data, not luck.
"""
from __future__ import annotations

import numpy as np

from aigid.data.index import FAKE, REAL, DataError, Sample


def _per_label(n: int) -> dict[int, int]:
    """n//2 real and the rest fake: an odd n gives the extra image to the fake class."""
    return {REAL: n // 2, FAKE: n - n // 2}


def _available(samples) -> dict[int, int]:
    return {label: sum(s.label == label for s in samples) for label in (REAL, FAKE)}


def nested_subsample(samples: list[Sample], n: int, seed: int = 0) -> list[Sample]:
    """n samples, balanced real/fake, sorted by path; independent of the input's order."""
    if n < 1:
        raise DataError(f"subset size must be >= 1, got {n}")
    want, have = _per_label(n), _available(samples)
    if any(want[label] > have[label] for label in want):
        raise DataError(
            f"asked for {n} images ({want[REAL]} real + {want[FAKE]} fake) but only "
            f"{have[REAL]} real and {have[FAKE]} fake are available; use n <= {2 * min(have.values())}"
        )
    chosen = []
    for label, k in want.items():
        pool = sorted((s for s in samples if s.label == label), key=lambda s: (s.path, s.subset, s.group))
        order = np.random.default_rng([seed, label]).permutation(len(pool))
        chosen += [pool[i] for i in order[:k]]
    return sorted(chosen, key=lambda s: (s.path, s.subset, s.group, s.label))


def fitting_volumes(volumes, samples) -> tuple[list[int], list[int]]:
    """Split volumes into those whose balanced subset fits in `samples` and those that don't."""
    have = _available(samples)
    kept, dropped = [], []
    for n in volumes:
        fits = n >= 1 and all(k <= have[label] for label, k in _per_label(n).items())
        (kept if fits else dropped).append(n)
    return kept, dropped


def training_subset(index, subset: str, volume: int | None, seed: int, group: str | None = None) -> list[Sample]:
    """One generator subset's training images (within one `group`, e.g. a DiffusionForensics scene, if
    given), balanced-nested-subsampled to `volume` (None = all)."""
    available = index.subsets(index.train_split)
    if subset not in available:
        raise DataError(f"train_subset '{subset}' is not in {index.root} "
                        f"(split '{index.train_split}' has: {', '.join(available) or 'nothing'})")
    samples = index.select(index.train_split, subsets=[subset], groups=None if group is None else [group])
    if not samples:
        scenes = sorted({s.group for s in index.select(index.train_split, subsets=[subset])})
        raise DataError(f"train_subset '{subset}' has no training images in '{group}' of {index.root} "
                        f"(it has: {', '.join(scenes)})")
    return samples if volume is None else nested_subsample(samples, volume, seed=seed)


REAL_SET = "real"  # the column of a test split's real images, scored once (DiffusionForensics tables)


def reals_apart(per_subset: dict[str, list[Sample]]) -> dict[str, list[Sample]]:
    """DiffusionForensics' columns (APN Table 2): `real`, every real test image once, then each
    generator's fake images alone. DF pairs one real folder with every generator; scoring the pairs
    would count the reals once per generator."""
    reals = {s.path: s for samples in per_subset.values() for s in samples if s.label == REAL}
    return {REAL_SET: [reals[p] for p in sorted(reals)],
            **{subset: [s for s in samples if s.label == FAKE] for subset, samples in per_subset.items()}}


def test_subsets(index, wanted=None, limit: int | None = None, group: str | None = None) -> dict[str, list[Sample]]:
    """Test images per subset (within one `group`, e.g. a DiffusionForensics scene, if given):
    the `wanted` subsets, else all; each capped to `limit` images (balanced, nested)."""
    groups = None if group is None else [group]
    available = sorted({s.subset for s in index.select(index.test_split, groups=groups)})
    wanted = list(wanted or available)
    missing = sorted(set(wanted) - set(available))
    if missing:
        where = f"'{group}' of " if group else ""
        raise DataError(f"test subset(s) {missing} are not in {where}{index.root} "
                        f"(split '{index.test_split}' has: {', '.join(available) or 'nothing'})")
    selected = {}
    for subset in wanted:
        samples = index.select(index.test_split, subsets=[subset], groups=groups)
        selected[subset] = samples if limit is None or len(samples) <= limit else nested_subsample(samples, limit, seed=0)
    return selected
