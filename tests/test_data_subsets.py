"""Balanced, seeded, nested subsets for data-volume sweeps."""
import random

import pytest

from aigid.data.layouts import DataError, Sample
from aigid.data.subsets import fitting_volumes, nested_subsample

POOL = [Sample(f"/d/real_{i:04d}.png", 0, "sdv14", "train") for i in range(900)] + [
    Sample(f"/d/fake_{i:04d}.png", 1, "sdv14", "train") for i in range(1000)
]


def _labels(samples):
    return [s.label for s in samples].count(0), [s.label for s in samples].count(1)


def test_balanced_and_odd_extra_goes_to_fake():
    assert _labels(nested_subsample(POOL, 400)) == (200, 200)
    assert _labels(nested_subsample(POOL, 7)) == (3, 4)


def test_nested_for_one_seed():
    sizes = (7, 100, 400, 800, 1800)
    subsets = [set(nested_subsample(POOL, n, seed=5)) for n in sizes]
    assert all(small < large for small, large in zip(subsets, subsets[1:]))
    assert [len(s) for s in subsets] == list(sizes)


def test_deterministic_and_independent_of_input_order():
    shuffled = POOL[:]
    random.Random(1).shuffle(shuffled)
    first = nested_subsample(POOL, 400, seed=2)
    assert first == nested_subsample(shuffled, 400, seed=2)
    assert first == sorted(first, key=lambda s: s.path)
    assert set(first) != set(nested_subsample(POOL, 400, seed=3))


def test_too_large_names_what_is_there():
    with pytest.raises(DataError, match=r"1000 real \+ 1000 fake.*only 900 real and 1000 fake.*n <= 1800"):
        nested_subsample(POOL, 2000)
    with pytest.raises(DataError, match=">= 1"):
        nested_subsample(POOL, 0)


def test_fitting_volumes():
    assert fitting_volumes([100, 1800, 1801, 1802, 4000], POOL) == ([100, 1800, 1801], [1802, 4000])
